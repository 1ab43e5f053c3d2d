"""The core's one call for "explain this input": a typed result with the explanation, the
model-sized input it explained, its trust figures on request and its report sections."""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Sequence

import numpy as np
import pytest

from explainers.base import Explainer
from foundation.types import Explanation, Modality
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


def test_a_comparison_warns_when_a_method_in_rounds_had_not_settled(model):
    from explainers.rounds import RoundResult, run_rounds

    image = tiny_models.random_images(1, seed=8)[0]
    gradcam = api.explain_input(model, "gradcam", image, target=0)
    lime = api.explain_input(model, "lime", image, target=0, params={"num_samples": 60, "stopping": "budget"})
    assert api.compare([gradcam, lime], ["Grad-CAM", "LIME"]).unsettled_note() is None  # the full budget asked for
    rng = np.random.default_rng(0)
    maps = [rng.normal(size=30) for _ in range(3)]  # three unrelated maps: the rounds never settle
    record = run_rounds([20, 40, 60], lambda b: RoundResult(maps[b // 20 - 1], None, b))[1]

    def unsettled_copy(result):
        return dataclasses.replace(result, explanation=dataclasses.replace(
            result.explanation, extras={**result.explanation.extras, **record}))

    one = api.compare([gradcam, unsettled_copy(lime)], ["Grad-CAM", "LIME"])
    assert one.unsettled_titles == ["LIME"]
    assert one.unsettled_note() == (
        "LIME did not settle within the budget (its map still changed between the last two rounds), so part of "
        "any disagreement below may be sampling noise: raise the budget to check.")
    assert one.report_sections()[-1].paragraphs == (one.unsettled_note(),)  # the report says so too
    two = api.compare([gradcam, unsettled_copy(lime), unsettled_copy(lime)], ["Grad-CAM", "SHAP", "LIME"])
    assert two.unsettled_note().startswith("SHAP and LIME did not settle within the budget (their maps still")


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


# --- the randomisation check with the trust figures ------------------------------------------------


class _IntensityExplainer(Explainer):
    """A map of the picture's grey level: it never asks the model anything."""

    name = "intensity-test"
    title = "Intensity"
    modalities: ClassVar[frozenset[Modality]] = frozenset({Modality.IMAGE})
    on_pages = False

    def explain(self, inputs: Sequence[Any], targets: Sequence[int] | None = None, *, seed: int = 0) -> list[Explanation]:
        return [Explanation(method=self.name, modality=Modality.IMAGE, target=int(t), target_label="",
                            values=np.asarray(image, np.float64).mean(axis=2), model_name=self.model.name,
                            model_version=self.model.version, seconds=0.01, seed=seed)
                for image, t in zip(inputs, targets or [0] * len(inputs))]


@pytest.fixture
def intensity_method():
    from explainers import registry

    registry.register(_IntensityExplainer)
    yield _IntensityExplainer.name
    registry._REGISTRY.pop(_IntensityExplainer.name, None)


def test_gradcam_trust_carries_the_cascade(model):
    result = api.explain_input(model, "gradcam", tiny_models.random_images(1, seed=12)[0])
    assert result.sanity_is_cheap
    report = result.trust()
    cascade = result.sanity(compute=False)  # measured with the figures
    assert cascade is not None and cascade.layers == ("probs", "conv") and cascade.n_inputs == 1
    assert report.figures["sanity_top_layer_similarity"] == pytest.approx(cascade.top_similarity)
    assert report.figures["sanity_lowest_similarity"] == pytest.approx(cascade.lowest_similarity)
    assert "sanity_rank_correlation" not in report.figures  # the old two-layers-at-once check is gone
    assert result.sanity() is cascade  # cached


def test_lime_runs_the_check_only_on_request_and_then_reports_it(model):
    result = api.explain_input(model, "lime", tiny_models.random_images(1, seed=13)[0], target=0,
                               params={"num_samples": 60})
    assert not result.sanity_is_cheap
    assert "sanity_top_layer_similarity" not in result.trust().figures
    assert result.sanity(compute=False) is None
    assert result.sanity_seconds() == pytest.approx(result.explanation.seconds * 2 * 2)
    cascade = result.sanity()
    assert cascade.method == "lime" and cascade.cascade.spearman.shape == (2, 1)
    # The next estimate for this model and method uses the time a step really took.
    assert result.sanity_seconds() == pytest.approx(cascade.seconds / cascade.explanations * 2 * 2)
    assert result.trust().figures["sanity_top_layer_similarity"] == pytest.approx(cascade.top_similarity)


def test_a_map_that_ignores_the_model_turns_the_verdict_into_a_warning(model, intensity_method):
    result = api.explain_input(model, intensity_method, tiny_models.random_images(1, seed=14)[0], target=0)
    assert result.trust().level != "warning"  # not measured yet: the curves' verdict
    cascade = result.sanity()
    assert cascade.flagged and cascade.top_similarity == pytest.approx(1.0)
    report = result.trust()
    assert report.level == "warning" and report.verdict.startswith("Be careful, this map fails the randomisation check: the map stays")
    assert result.report_sections(report)[-1].facts["sanity_lowest_similarity"] == pytest.approx(1.0)
