"""Declared method parameters: validation, defaults per modality, the record that reproduces a
result, and the registry exposing each method's declaration."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from explainers import metrics, registry
from explainers.lime_explainer import LIMEParams
from explainers.params import MethodParams, ParameterError, describe, labelled, param
from explainers.shap_explainer import SHAPParams
from foundation.errors import WorkbenchError
from foundation.types import Modality
from tests.explainers import tiny_models

CHEAP = {"shap": {"max_evals": 40}, "lime": {"num_samples": 60}, "shap-gradient": {"nsamples": 8}}


@dataclass(frozen=True)
class ToyParams(MethodParams):
    budget: int = param(10, int, "Budget", minimum=1, maximum=100, summary="{value} steps")
    shape: str = param("a", str, "Shape", choices={"a": "Ay", "b": "Bee"}, modalities=frozenset({Modality.IMAGE}))
    size: int = param(3, int, "Size", minimum=1, maximum=9, when={"shape": "b"}, summary="size {value}")
    width: float | None = param(None, float, "Width", by_modality={Modality.IMAGE: 0.5, Modality.TEXT: 5.0})


def test_values_are_converted_and_checked():
    built = ToyParams.build({"budget": "12", "width": "2"}, Modality.IMAGE)
    assert built.budget == 12 and built.width == 2.0
    for bad, match in [({"budget": 0}, "budget must be at least 1"), ({"budget": 101}, "at most 100"),
                       ({"budget": 2.5}, "whole number"), ({"budget": True}, "budget"),
                       ({"shape": "c"}, "shape must be one of a, b"), ({"nope": 1}, "unknown parameter 'nope'")]:
        with pytest.raises(ParameterError, match=match):
            ToyParams.build(bad, Modality.IMAGE)


def test_parameter_errors_are_user_errors_and_value_errors():
    assert issubclass(ParameterError, WorkbenchError) and issubclass(ParameterError, ValueError)


def test_defaults_may_differ_per_modality():
    assert ToyParams.build({}, Modality.IMAGE).width == 0.5
    assert ToyParams.build({}, Modality.TEXT).width == 5.0
    assert ToyParams.build({"width": None}, Modality.TEXT).width == 5.0
    assert LIMEParams.defaults(Modality.IMAGE)["num_samples"] == 1000
    assert LIMEParams.defaults(Modality.TEXT)["num_samples"] == 5000


def test_the_record_holds_only_what_applies():
    image = ToyParams.build({}, Modality.IMAGE)
    assert image.recorded(Modality.IMAGE) == {"budget": 10, "shape": "a", "width": 0.5}
    assert ToyParams.build({"shape": "b"}, Modality.IMAGE).recorded(Modality.IMAGE)["size"] == 3
    assert ToyParams.build({}, Modality.TEXT).recorded(Modality.TEXT) == {"budget": 10, "width": 5.0}


def test_command_line_assignments_are_parsed_against_the_declaration():
    assert ToyParams.parse(["budget=7", "shape=b", "width=none"]) == {"budget": 7, "shape": "b", "width": None}
    with pytest.raises(ParameterError, match="name=value"):
        ToyParams.parse(["budget"])
    with pytest.raises(ParameterError, match="unknown parameter 'colour'; this method takes: budget"):
        ToyParams.parse(["colour=red"])
    with pytest.raises(ParameterError, match="at most 100"):
        ToyParams.parse(["budget=1000"])


def test_summaries_and_labels_come_from_the_declaration():
    assert describe(ToyParams, {"budget": 5, "shape": "a", "size": 4}) == ["5 steps"]
    assert describe(ToyParams, {"budget": 5, "shape": "b", "size": 4}) == ["5 steps", "size 4"]
    assert describe(SHAPParams, {"max_evals": 1500, "masker": "inpaint"}) == ["1,500 evaluations", "inpaint masker"]
    assert describe(LIMEParams, {"num_samples": 200, "segmentation": "slic", "n_segments": 20}) == [
        "200 samples", "SLIC, about 20 segments"]
    assert describe(LIMEParams, {"segmentation": "quickshift"}) == ["quickshift segments"]
    assert labelled(SHAPParams, {"masker": "inpaint", "batch_size": None, "other": 1}) == {
        "Masker": "Inpaint (Telea)", "Batch size": "chosen for the model", "other": 1}


def test_every_registered_method_declares_its_parameters():
    for name, cls in registry.all_methods().items():
        params_class = registry.params_class(name)
        assert params_class is cls.Params and issubclass(params_class, MethodParams)
        for field_name, spec in params_class.specs().items():
            assert spec.label and spec.help, (name, field_name)
            low, high = spec.widget_range()
            assert spec.minimum is None or low is None or spec.minimum <= low, (name, field_name)
            assert spec.maximum is None or high is None or high <= spec.maximum, (name, field_name)
    assert registry.params_class("shap") is SHAPParams
    with pytest.raises(KeyError):
        registry.params_class("magic")


def test_explainers_refuse_unknown_and_out_of_bounds_parameters():
    model = tiny_models.loaded_image_model()
    with pytest.raises(ParameterError, match="n_segments must be at least 1"):
        registry.get("lime")(model, n_segments=0)
    with pytest.raises(TypeError):  # the constructors keep their explicit keywords
        registry.get("shap")(model, evals=10)


@pytest.mark.parametrize("name", ["gradcam", "gradcam++", "shap", "shap-gradient", "lime"])
@pytest.mark.parametrize("modality", [Modality.IMAGE, Modality.TEXT], ids=lambda m: m.value)
def test_the_recorded_params_rebuild_the_same_explanation(name, modality):
    model = tiny_models.loaded_image_model() if modality is Modality.IMAGE else tiny_models.loaded_text_model()
    cls = registry.get(name)
    if not cls.supports(model):
        pytest.skip(f"{name} does not apply to {modality.value} models")
    item = list(tiny_models.random_images(1, seed=5)) if modality is Modality.IMAGE else ["the movie was good"]
    first = cls(model, **CHEAP.get(name, {})).explain(item, [1], seed=3)[0]
    assert set(first.params) <= set(cls.Params.specs())
    assert metrics.constructor_params(name, first) == dict(first.params)
    again = cls(model, **metrics.constructor_params(name, first)).explain(item, [1], seed=3)[0]
    assert dict(again.params) == dict(first.params)
    np.testing.assert_array_equal(first.values, again.values)
