"""The contract every registered explanation method keeps, for both modalities, on tiny real models.

For every method in explainers.registry.all_methods() and every tiny model it supports:
the result is one Explanation per input with the requested (or predicted) class, values of
the right shape (H x W at the model's size; one per token, with exactly the model's tokens),
finite, with the parameters and seed recorded; and a fixed seed gives the same values.
Budgets are tiny so the whole file runs in seconds.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from explainers import registry
from explainers.shap_explainer import warm_up_shap
from foundation.types import Explanation, Modality
from tests.explainers import tiny_models

# Small budgets per method: the contract, not the quality, is under test.
CHEAP = {
    "shap": {"max_evals": 60},
    "lime": {"num_samples": 120},
    "shap-gradient": {"nsamples": 16},
}
TEXTS = ["the movie was good", "bad plot, AWFUL movie!!", "the movie was good but the plot was awful and bad"]
EXPECTED_METHODS = {"gradcam", "gradcam++", "shap", "shap-gradient", "lime"}


@pytest.fixture(scope="module", autouse=True)
def _warm_shap():
    warm_up_shap()


@pytest.fixture(scope="module")
def models():
    return {Modality.IMAGE: tiny_models.loaded_image_model(), Modality.TEXT: tiny_models.loaded_text_model()}


def _inputs(model):
    if model.modality is Modality.IMAGE:
        return list(tiny_models.random_images(2, seed=3))
    return TEXTS


def _cases():
    methods = registry.all_methods()
    return [(name, modality) for name in sorted(methods) for modality in (Modality.IMAGE, Modality.TEXT)]


def test_every_expected_method_is_registered_for_some_modality():
    methods = registry.all_methods()
    assert EXPECTED_METHODS <= set(methods)
    for name, cls in methods.items():
        assert cls.name == name
        assert cls.title and cls.modalities


@pytest.mark.parametrize("name,modality", _cases(), ids=lambda v: getattr(v, "value", v))
def test_supports_matches_the_declared_modalities(models, name, modality):
    cls = registry.all_methods()[name]
    # Every tiny model has a convolution and a float input, so only the modality decides.
    assert cls.supports(models[modality]) == (modality in cls.modalities)


def test_gradcam_is_not_offered_for_a_model_without_a_convolution():
    dense = tiny_models.loaded_image_model(tiny_models.dense_only_image_model(), name="tiny-dense")
    available = registry.available(dense)
    assert "gradcam" not in available and "gradcam++" not in available
    assert {"shap", "lime"} <= set(available)


def _check_explanation(explanation, model, name, item, target, seed):
    assert isinstance(explanation, Explanation)
    assert explanation.method == name
    assert explanation.modality is model.modality
    assert explanation.target == target
    assert explanation.target_label == model.classes[target]
    assert explanation.model_name == model.name and explanation.model_version == model.version
    assert explanation.seconds >= 0.0
    assert np.all(np.isfinite(explanation.values))
    if model.modality is Modality.IMAGE:
        assert explanation.values.shape == model.image_size
        assert explanation.tokens is None
    else:
        # One value per token, and the tokens are exactly the ones the model reads.
        assert explanation.tokens == tuple(model.tokenize(item))
        assert explanation.values.shape == (len(explanation.tokens),)
    # Parameters are recorded and JSON-friendly, so the result can be reproduced and cached by key.
    assert explanation.params
    json.dumps(explanation.summary(), default=str)
    assert explanation.seed == seed


@pytest.mark.parametrize("name,modality", _cases(), ids=lambda v: getattr(v, "value", v))
def test_explanations_keep_the_contract(models, name, modality):
    model = models[modality]
    cls = registry.all_methods()[name]
    if not cls.supports(model):
        pytest.skip(f"{name} does not apply to {modality.value} models")
    inputs = _inputs(model)
    explainer = cls(model, **CHEAP.get(name, {}))

    # Requested targets are honoured, one explanation per input, in order.
    targets = [1, 0, 1][: len(inputs)]
    results = explainer.explain(inputs, targets, seed=7)
    assert len(results) == len(inputs)
    for explanation, item, target in zip(results, inputs, targets):
        _check_explanation(explanation, model, name, item, target, seed=7)

    # Without targets each input is explained for its predicted class.
    predicted = model.predict_proba(inputs).argmax(axis=1)
    chosen = explainer.explain(inputs, seed=7)
    assert [e.target for e in chosen] == [int(p) for p in predicted]


@pytest.mark.parametrize("name,modality", _cases(), ids=lambda v: getattr(v, "value", v))
def test_a_fixed_seed_gives_the_same_values(models, name, modality):
    model = models[modality]
    cls = registry.all_methods()[name]
    if not cls.supports(model):
        pytest.skip(f"{name} does not apply to {modality.value} models")
    item = _inputs(model)[:1]
    first = cls(model, **CHEAP.get(name, {})).explain(item, [1], seed=11)[0]
    # A fresh explainer, with the global generator disturbed in between, must not change it.
    np.random.seed(12345)
    np.random.random(17)
    second = cls(model, **CHEAP.get(name, {})).explain(item, [1], seed=11)[0]
    np.testing.assert_array_equal(first.values, second.values)
    assert first.tokens == second.tokens


def test_lime_image_depends_on_the_seed(models):
    # The determinism test above would pass for a method that ignored its seed entirely.
    model = models[Modality.IMAGE]
    cls = registry.get("lime")
    item = _inputs(model)[:1]
    a = cls(model, num_samples=120, segmentation="quickshift").explain(item, [1], seed=1)[0]
    b = cls(model, num_samples=120, segmentation="quickshift").explain(item, [1], seed=2)[0]
    assert not np.array_equal(a.values, b.values)
