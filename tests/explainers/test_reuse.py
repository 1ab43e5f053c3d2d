"""Issue 13's reuse: nothing is recomputed when only the class or the colour map changes.

- a second request with the same settings (a colour map change reruns the page's fragment with
  the same settings) is served from the core's cache: no model call, the same explanation;
- another class of the same image reuses LIME's segmentation and SHAP's partition tree;
- LIME's rows pasted in the model's float space give exactly the pixel-pasted batch's labels.
"""
from __future__ import annotations

import numpy as np
import pytest

from explainers import lime_explainer, render, shap_explainer
from explainers.lime_explainer import (
    LIMEExplainer,
    RowScorer,
    _batched_lime_image_explainer,
    paste_superpixels,
    segment_image,
)
from explainers.perturb import forward_fn
from explainers.shap_explainer import SHAPExplainer, warm_up_shap
from models.loaded import LoadedModel
from tests.explainers import tiny_models
from workbench import api


class CountingModel(LoadedModel):
    """A real tiny model that counts the images its forward pass scores."""

    scored = 0

    def forward(self, batch: np.ndarray) -> np.ndarray:
        self.scored += len(batch)
        return super().forward(batch)


def counting_model(name: str) -> CountingModel:
    base = tiny_models.loaded_image_model(name=name)
    return CountingModel(name=base.name, version=base.version, manifest=dict(base.manifest),
                         keras_model=base.keras_model)


@pytest.fixture(scope="module", autouse=True)
def _warm_shap():
    warm_up_shap()


def _textured(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.zeros((tiny_models.IMAGE_SIZE, tiny_models.IMAGE_SIZE, 3), np.uint8)
    image[:4] = rng.integers(0, 256, 3)
    image[4:] = rng.integers(0, 256, 3)
    return image


@pytest.mark.parametrize("method, params", [
    ("shap", {"max_evals": 200, "masker": "blur"}),
    ("lime", {"num_samples": 200, "segmentation": "slic", "n_segments": 4}),
])
def test_the_same_request_again_makes_no_model_call_and_a_colour_map_only_changes_the_drawing(method, params):
    model = counting_model(f"reuse-{method}")
    image = tiny_models.random_images(1, seed=7)[0]
    first = api.explain_input(model, method, image, 1, seed=0, params=params)
    scored = model.scored
    assert scored > 0
    again = api.explain_input(model, method, image, 1, seed=0, params=params)
    assert model.scored == scored  # no model call
    assert again.explanation is first.explanation
    jet = render.overlay_heatmap(image, again.explanation.values, colormap="jet")
    viridis = render.overlay_heatmap(image, again.explanation.values, colormap="viridis")
    assert not np.array_equal(jet, viridis) and model.scored == scored


def test_another_class_reuses_the_segmentation_and_the_partition_tree():
    model = tiny_models.loaded_image_model(name="reuse-classes")
    image = _textured(3)
    runs = lime_explainer.segmentation_runs
    lime = [api.explain(model, "lime", [image], [target], num_samples=100, segmentation="quickshift")[0]
            for target in (0, 1, 2)]
    assert lime_explainer.segmentation_runs - runs <= 1  # once per image and settings (0: cached earlier)
    assert all(np.array_equal(e.extras["segments"], lime[0].extras["segments"]) for e in lime)
    assert [e.target for e in lime] == [0, 1, 2]
    SHAPExplainer(model, max_evals=60)  # builds (or finds) the tree for this shape
    builds = shap_explainer.partition_tree_builds
    maskers = []
    for target in (0, 1, 2):
        explainer = SHAPExplainer(model, max_evals=60)
        explainer.explain([image], [target])
        maskers.append(explainer._masker)
    assert shap_explainer.partition_tree_builds == builds
    assert all(m.clustering is maskers[0].clustering for m in maskers)
    assert not maskers[0].clustering.flags.writeable


def test_the_shared_partition_tree_is_shaps_own():
    import shap

    shape = (tiny_models.IMAGE_SIZE, tiny_models.IMAGE_SIZE, 3)
    np.testing.assert_array_equal(shap_explainer.image_masker("blur(8,8)", shape).clustering,
                                  shap.maskers.Image("blur(8,8)", shape).clustering)


@pytest.mark.parametrize("hide_color", [None, 17])
def test_rows_pasted_in_the_model_float_space_score_like_pasted_pixels(hide_color):
    model = tiny_models.loaded_image_model(name="reuse-rows")
    image = _textured(5)
    image[::2, ::2] = 200
    segments = segment_image(image, "slic", n_segments=6)
    fudged = image.copy() if hide_color is None else np.full_like(image, hide_color)
    if hide_color is None:
        for s in np.unique(segments):
            fudged[segments == s] = image[segments == s].mean(axis=0)
    pixels = _batched_lime_image_explainer(random_state=4)
    data, labels = pixels.data_labels(image, fudged, segments, forward_fn(model), 40, batch_size=16)
    floats = _batched_lime_image_explainer(random_state=4)
    floats.row_scorer = RowScorer(model, 16)
    float_data, float_labels = floats.data_labels(image, fudged, segments, forward_fn(model), 40, batch_size=16)
    np.testing.assert_array_equal(float_data, data)
    np.testing.assert_array_equal(float_labels, labels)


def test_lime_rounds_score_each_pool_row_once():
    model = counting_model("reuse-pool")
    image = _textured(9)
    explanation = LIMEExplainer(model, num_samples=300, segmentation="slic", n_segments=4).explain([image], [0])[0]
    # One forward call for the input's own probabilities, then each scored row once.
    assert model.scored == 1 + explanation.extras["evaluations_used"]


def test_another_class_of_the_same_image_refits_lime_on_the_rows_already_scored():
    model = counting_model("reuse-lime-classes")
    image = _textured(11)
    explainer = LIMEExplainer(model, num_samples=300, segmentation="slic", n_segments=4)
    first = explainer.explain([image], [0], seed=2)[0]
    before = model.scored
    second = LIMEExplainer(model, num_samples=300, segmentation="slic", n_segments=4).explain([image], [1], seed=2)[0]
    used_first, used_second = first.extras["evaluations_used"], second.extras["evaluations_used"]
    # One call for the input's own probabilities; perturbations only beyond those scored for class 0.
    assert model.scored - before == 1 + max(0, used_second - used_first)
    assert second.extras["reused_samples"] == min(used_first, used_second) > 0
    # The same map as a fresh pool would give: scoring is deterministic.
    fresh = counting_model("reuse-lime-fresh")
    again = LIMEExplainer(fresh, num_samples=300, segmentation="slic", n_segments=4).explain([image], [1], seed=2)[0]
    np.testing.assert_allclose(second.values, again.values, rtol=1e-6, atol=1e-9)
    assert again.extras["evaluations_used"] == used_second


@pytest.mark.parametrize("mask_value", ["blur(8,8)", "blur(3,5)", "inpaint_telea"])
def test_the_shap_masks_are_painted_exactly_as_shaps_own_image_masker_paints_them(mask_value):
    import shap

    shape = (tiny_models.IMAGE_SIZE, tiny_models.IMAGE_SIZE, 3)
    image = tiny_models.random_images(1, seed=12)[0].astype(np.float32)
    masks = np.random.default_rng(5).random((6, int(np.prod(shape)))) < 0.5
    masks[0], masks[1] = True, False  # nothing hidden, everything hidden
    ours = shap_explainer.image_masker(mask_value, shape)
    theirs = shap.maskers.Image(mask_value, shape)
    painted = ours.paint(masks, image, ours.fill(image))
    for mask, row in zip(masks, painted):
        np.testing.assert_array_equal(row, theirs(mask, image)[0][0])
    # What Partition hands the model function is the mask itself, a copy it may keep.
    (passed,) = ours(masks[2], image)
    assert passed.shape == (1, masks.shape[1]) and np.array_equal(passed[0], masks[2])
    assert not np.shares_memory(passed, masks)


def test_shap_rounds_paint_and_score_each_mask_once_and_the_inpaint_map_is_shaps():
    import shap

    from explainers.perturb import forward_fn

    model = counting_model("reuse-shap-masks")
    image = tiny_models.random_images(1, seed=13)
    rounds = SHAPExplainer(model, max_evals=400, masker="inpaint").explain(image, [1], seed=6)[0]
    # Random pixels on the tiny CNN: the map keeps changing, so every round runs up to the budget.
    assert rounds.extras["rounds"] > 1 and rounds.extras["stopped"] == "budget"
    # One forward call for the input's own probabilities, then each distinct mask once over all rounds.
    assert model.scored == 1 + rounds.extras["evaluations_used"]
    fixed = SHAPExplainer(model, max_evals=400, masker="inpaint", stopping="budget").explain(image, [1], seed=6)[0]
    shape = (tiny_models.IMAGE_SIZE, tiny_models.IMAGE_SIZE, 3)
    with shap_explainer.seeded_global_numpy(6):
        library = shap.explainers.Partition(forward_fn(model), shap.maskers.Image("inpaint_telea", shape))(
            image.astype(np.float32), max_evals=400, batch_size=fixed.params["batch_size"],
            outputs=np.array([1]), silent=True)
    np.testing.assert_allclose(fixed.values, library.values[0][..., 0].sum(axis=-1), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(rounds.values, fixed.values)


def test_pasted_superpixel_batches_are_in_c_order_so_the_scorer_never_copies_them():
    segments = np.arange(36, dtype=np.int32).reshape(6, 6) % 5
    image = np.random.default_rng(1).random((6, 6, 3)).astype(np.float32)
    rows = np.random.default_rng(2).integers(0, 2, size=(7, 5))
    batch = paste_superpixels(image, image + 1, segments, rows)
    assert batch.flags.c_contiguous and batch.shape == (7, 6, 6, 3)
    for row, pasted in zip(rows, batch):
        hidden = row[segments] == 0
        np.testing.assert_array_equal(pasted, np.where(hidden[..., None], image + 1, image))


def test_forgetting_computed_results_makes_the_same_lime_request_segment_and_score_again():
    from workbench import cache

    model = counting_model("reuse-forget")
    image = _textured(21)
    settings = dict(seed=3, num_samples=200, segmentation="slic", n_segments=4)
    first = api.explain(model, "lime", [image], [0], use_cache=False, **settings)[0]
    scored = model.scored
    api.explain(model, "lime", [image], [0], use_cache=False, **settings)
    assert model.scored == scored + 1  # only the input's own probabilities: the pool was reused
    segmented = lime_explainer.segmentation_runs
    cache.forget_computed()
    again = api.explain(model, "lime", [image], [0], use_cache=False, **settings)[0]
    assert model.scored == scored + 1 + 1 + again.extras["evaluations_used"]
    assert lime_explainer.segmentation_runs == segmented + 1  # segmented afresh, as a new image would be
    np.testing.assert_allclose(again.values, first.values, rtol=1e-6, atol=1e-9)
