"""The core's one call for "explain this input": a typed result with the explanation, the
model-sized input it explained, its trust figures on request and its report sections."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.explainers import tiny_models
from workbench import api, cache, explaining

SIZE = tiny_models.IMAGE_SIZE


@pytest.fixture(scope="module")
def model():
    return tiny_models.loaded_image_model()


def test_explain_input_prepares_once_and_returns_a_frozen_result(model):
    big = np.kron(tiny_models.random_images(1, seed=4)[0], np.ones((3, 3, 1), np.uint8))  # 24 x 24
    result = api.explain_input(model, "gradcam", big, target=1)
    assert isinstance(result, explaining.ExplainedInput)
    assert result.model_input.shape == (SIZE, SIZE, 3) and result.model_input.dtype == np.uint8
    np.testing.assert_array_equal(result.model_input, api.prepare_input(model, big))
    assert result.explanation.target == 1 and result.explanation.values.shape == (SIZE, SIZE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.wall_seconds = 0.0  # type: ignore[misc]
    again = api.explain_input(model, "gradcam", big, target=1)
    assert again.from_cache and "from cache" in again.caption()


def test_trust_is_measured_on_request_once(model):
    mask = np.zeros((SIZE, SIZE), bool)
    mask[:4, :4] = True
    result = api.explain_input(model, "gradcam", tiny_models.random_images(1, seed=5)[0], ground_truth=mask)
    cache.TRUST.clear()
    first = result.trust()
    assert "mask_mass" in first.figures and first.method == "gradcam"
    assert result.trust() is first  # the core's cache, not a second measurement


def test_report_sections_carry_the_model_the_map_and_trust_when_given(model):
    result = api.explain_input(model, "gradcam", tiny_models.random_images(1, seed=6)[0])
    titles = [s.title for s in result.report_sections()]
    assert titles[0].startswith("Model tiny-image") and len(titles) == 2
    with_trust = result.report_sections(result.trust())
    assert with_trust[-1].title == "Trust figures" and "deletion_auc" in with_trust[-1].facts
    assert result.report_title == "gradcam explanation of tiny-image v1"


def test_rationale_words_become_ground_truth():
    truth = explaining.as_ground_truth(["good", "movie"])
    assert truth.rationale == ("good", "movie") and truth.mask is None
    assert explaining.as_ground_truth(None) is None


def test_compare_puts_methods_side_by_side_with_agreement(model):
    image = tiny_models.random_images(1, seed=7)[0]
    a = api.explain_input(model, "gradcam", image, target=0)
    b = api.explain_input(model, "gradcam++", image, target=0)
    comparison = api.compare([a, b], ["Grad-CAM", "Grad-CAM++"])
    [pair] = comparison.agreements
    assert (pair.first, pair.second) == ("Grad-CAM", "Grad-CAM++") and -1 <= pair.rank_correlation <= 1
    titles = [s.title for s in comparison.report_sections()]
    assert titles[1:] == ["Grad-CAM", "Grad-CAM++", "Agreement between methods"]
    with pytest.raises(ValueError):
        api.compare([], [])


def test_method_tabs_come_from_the_registry_with_short_unique_titles(model):
    tabs = api.method_tabs(model)
    names = [t.method for t in tabs]
    assert names[0] == "gradcam" and "gradcam++" not in names and "shap-gradient" not in names
    assert [t.title for t in tabs] == ["Grad-CAM", "SHAP", "LIME"]
    assert [t.title for t in api.method_tabs(tiny_models.loaded_text_model())] == ["Grad-CAM", "SHAP", "LIME"]


def test_a_method_that_cannot_run_keeps_its_tab_with_the_reason():
    dense = tiny_models.loaded_image_model(tiny_models.dense_only_image_model(), name="tiny-dense")
    tabs = api.method_tabs(dense)
    assert [(t.method, t.available) for t in tabs] == [("gradcam", False), ("shap", True), ("lime", True)]
    assert tabs[0].title == "Grad-CAM"
    assert tabs[0].unavailable_reason == ("Grad-CAM needs a convolution layer, and this model has none. "
                                          "Try SHAP or LIME.")
    assert all(t.unavailable_reason is None for t in tabs[1:])


def test_tabs_follow_the_explainers_declared_order_and_page_flag(model, monkeypatch):
    from explainers import registry

    shap_cls = registry.get("shap")
    monkeypatch.setattr(shap_cls, "order", 5)  # declared before Grad-CAM: its tab comes first
    assert [t.method for t in api.method_tabs(model)] == ["shap", "gradcam", "lime"]
    monkeypatch.setattr(shap_cls, "on_pages", False)
    assert [t.method for t in api.method_tabs(model)] == ["gradcam", "lime"]


def test_on_round_sees_each_partial_map_of_a_method_in_rounds_and_never_a_cached_one(model):
    image = tiny_models.random_images(1, seed=11)[0]
    seen = []
    result = api.explain_input(model, "shap", image, target=0, params={"max_evals": 400},
                               on_round=lambda index, partial: seen.append((index, partial)))
    extras = result.explanation.extras
    assert [index for index, _ in seen] == list(range(extras["rounds"]))
    assert [p.extras["stopped"] for _, p in seen[:-1]] == ["refining"] * (len(seen) - 1)
    assert seen[-1][1].extras["stopped"] == extras["stopped"] in {"stable", "budget"}
    assert all(p.values.shape == (SIZE, SIZE) for _, p in seen)
    np.testing.assert_array_equal(seen[-1][1].values, result.explanation.values)
    again = []
    api.explain_input(model, "shap", image, target=0, params={"max_evals": 400}, on_round=lambda *a: again.append(a))
    assert again == []  # from the cache: drawn at once
    # A method in one pass ignores the hook; the callers without it work as before.
    assert api.explain_input(model, "gradcam", image, on_round=lambda *a: again.append(a)).explanation.method
    assert again == []
