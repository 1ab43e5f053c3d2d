"""Cascading and independent model randomisation (explainers.sanity) on tiny real Keras models."""
from __future__ import annotations

from typing import Any, ClassVar, Sequence

import numpy as np
import pytest

from explainers import sanity
from explainers.base import Explainer
from explainers.gradcam import GradCAM
from foundation.types import Explanation, Modality
from tests.explainers import tiny_models as tm

SIZE = tm.IMAGE_SIZE


class IntensityExplainer(Explainer):
    """An 'explanation' that reads only the picture (its grey level) and never the model."""

    name = "intensity"
    title = "Intensity"
    modalities: ClassVar[frozenset[Modality]] = frozenset({Modality.IMAGE})

    def explain(self, inputs: Sequence[Any], targets: Sequence[int] | None = None, *, seed: int = 0) -> list[Explanation]:
        return [Explanation(method=self.name, modality=Modality.IMAGE, target=int(t), target_label="",
                            values=np.asarray(image, np.float64).mean(axis=2) - 100.0,  # signed: some negative
                            model_name=self.model.name, model_version=self.model.version, seconds=0.01)
                for image, t in zip(inputs, targets or [0] * len(inputs))]


@pytest.fixture(scope="module")
def trained():
    """The tiny flat CNN trained to name the square's colour, and 8 held-out images."""
    loaded, test_images, _ = tm.trained_colour_model(8)
    return loaded, test_images


def _weights(model) -> list[np.ndarray]:
    return [np.array(w) for w in model.keras_model.get_weights()]


def test_the_cascade_goes_from_the_top_layer_down_one_step_per_weighted_layer(trained):
    model, images = trained
    result = sanity.sanity_cascade(model, GradCAM, images)
    assert result.layers == ("probs", "conv") == result.weighted_layers  # the Dense head first
    assert result.randomised_counts == (1, 2)
    assert result.cascade.spearman.shape == result.cascade.spearman_abs.shape == result.cascade.ssim.shape == (2, 8)
    assert result.independent.layers == ("probs", "conv")
    # Step 0 of both experiments randomises the head alone with the same seed: the same maps.
    np.testing.assert_allclose(result.independent.spearman[0], result.cascade.spearman[0])
    assert result.explanations == 8 + 2 * 2 * 8  # the intact maps, then 2 steps x 2 experiments
    only_top = sanity.sanity_cascade(model, GradCAM, images, max_layers=1, independent=False)
    assert only_top.layers == ("probs",) and only_top.independent is None


def test_randomising_the_head_alone_changes_gradcam(trained):
    """Grad-CAM's feature maps come from `conv`; a random head changes only the channel weights,
    and that already changes the map: it depends on the decision, not only on the features."""
    model, images = trained
    result = sanity.sanity_cascade(model, GradCAM, images)
    assert result.top_similarity < sanity.THRESHOLD
    assert result.verdict == sanity.DEPENDS and not result.flagged
    assert result.outcome == "passes" and result.sentence().startswith("Passes: scrambling only the top layer (probs)")
    assert np.all(result.cascade.statistic < 0.9)


def test_an_explanation_that_ignores_the_model_stays_the_same_at_every_step(trained):
    model, images = trained
    result = sanity.sanity_cascade(model, IntensityExplainer, images, [0] * len(images))
    for name in sanity.SIMILARITIES:
        np.testing.assert_allclose(result.cascade.values(name), 1.0)
        np.testing.assert_allclose(result.independent.values(name), 1.0)
    assert result.verdict == sanity.IGNORES and result.flagged
    assert result.outcome == "fails" and result.sentence().startswith("Fails: the map stays nearly the same")
    summary = result.to_dict()
    assert summary["verdict"] == "does not depend on the model" and summary["flagged"] is True
    assert [row["layers_randomised"] for row in summary["cascade"]] == [["probs"], ["probs", "conv"]]
    assert summary["cascade"][1]["ssim"] == {"mean": 1.0, "std": 0.0}


def test_the_original_model_is_untouched_and_the_check_repeats_exactly(trained):
    model, images = trained
    before, probabilities = _weights(model), model.predict_proba(images)
    first = sanity.sanity_cascade(model, GradCAM, images[:3], seed=4)
    for old, new in zip(before, _weights(model)):
        np.testing.assert_array_equal(old, new)
    np.testing.assert_allclose(model.predict_proba(images), probabilities)
    # The shared clone is reset to the original before each check: the same seed, the same numbers.
    again = sanity.sanity_cascade(model, GradCAM, images[:3], seed=4)
    np.testing.assert_array_equal(first.cascade.spearman, again.cascade.spearman)
    other_seed = sanity.sanity_cascade(model, GradCAM, images[:3], seed=5)
    assert not np.array_equal(first.cascade.spearman, other_seed.cascade.spearman)


def test_nested_models_are_randomised_layer_by_layer_inside_the_backbone():
    model = tm.loaded_image_model(tm.doubly_nested_image_cnn())
    images = tm.random_images(3, seed=1)
    result = sanity.sanity_cascade(model, GradCAM, list(images))
    assert result.layers == ("probs", "outer/backbone/conv")
    assert result.cascade.spearman.shape == (2, 3)
    # Once the only convolution is random too, Grad-CAM's map is no longer the intact one.
    assert result.cascade.statistic[-1] < 1.0


def test_a_text_model_keeps_its_vocabulary_and_gets_no_ssim():
    model = tm.loaded_text_model()
    texts = ["the movie was great", "awful plot", "good good bad movie"]
    original = GradCAM(model).explain(texts)
    result = sanity.sanity_cascade(model, GradCAM, texts, original=original)
    assert result.layers == ("probs", "conv", "embed")
    assert result.cascade.ssim is None and result.cascade.spearman.shape == (3, 3)
    assert result.to_dict()["cascade"][0]["ssim"] is None
    assert np.isfinite(result.cascade.spearman).all()
    # The clone reads the words as the original does: an empty vocabulary would map every word
    # to [UNK] and Grad-CAM would give every token the same value, so nothing could correlate.
    assert not np.allclose(result.cascade.spearman, 0.0)


def test_lime_on_text_runs_the_same_way():
    from explainers.lime_explainer import LIMEExplainer

    model = tm.loaded_text_model()
    params = sanity.cheap_params("lime", {"num_samples": 60, "stopping": "budget"})
    assert params["stopping"] == "stable"
    result = sanity.sanity_cascade(model, LIMEExplainer, ["the movie was great", "awful bad plot"], params=params,
                                   steps=2, independent=False)
    assert result.layers == ("probs", "embed")  # 2 steps spread over 3 layers: the top and the bottom
    assert result.randomised_counts == (1, 3)
    assert result.method == "lime" and result.cascade.spearman.shape == (2, 2)


def test_steps_are_spread_evenly_with_the_first_and_last_kept():
    assert sanity.step_indices(5, None) == [0, 1, 2, 3, 4]
    assert sanity.step_indices(5, 8) == [0, 1, 2, 3, 4]
    assert sanity.step_indices(10, 4) == [0, 3, 6, 9]
    assert sanity.step_indices(10, 1) == [0]
    with pytest.raises(ValueError):
        sanity.step_indices(0, None)


def test_the_estimate_counts_one_explanation_per_step_and_experiment(trained):
    model, images = trained
    [explanation] = IntensityExplainer(model).explain(images[:1], [0])
    assert sanity.estimate_seconds(explanation, model) == pytest.approx(0.01 * 2 * 2)
    assert sanity.estimate_seconds(explanation, model, independent=False, max_layers=1) == pytest.approx(0.01)


def test_the_clone_never_borrows_the_originals_converted_scorer():
    """The perturbation scorer keys a converted LiteRT copy on the manifest's sha256: a clone that
    kept it would score SHAP's and LIME's perturbations with the intact weights."""
    from models import runtime
    from models.loaded import LoadedModel

    base = tm.loaded_image_model()
    manifest = dict(base.info.to_dict(), sha256="ab" * 32)
    model = LoadedModel(name="tiny-with-file", version="v1", manifest=manifest, keras_model=base.keras_model)
    assert model.info.lineage.sha256 == "ab" * 32
    clone = sanity._clone_for(model).model
    assert clone.info.lineage.sha256 is None and "sha256" in runtime.unconverted_reason(clone)
    assert clone.keras_model is not model.keras_model and clone.version == "v1+randomised"


def test_a_tutorial_text_model_with_its_trained_model_nested_behind_textvectorization():
    """keras.io's end-to-end text recipe: string input, an adapted TextVectorization, then the trained
    model nested inside; the cascade walks into the nested model and the clone keeps the vocabulary."""
    from models.loaded import LoadedModel
    from models.manifest import InputSpec, Manifest
    from tests.models import tutorial_models as tut

    keras_model = tut.text_from_scratch()
    manifest = Manifest(modality=Modality.TEXT, classes=tuple(tut.SENTIMENT),
                        input=InputSpec(sequence_length=tut.TEXT_LENGTH))
    model = LoadedModel(name="tutorial-text", version="v1", manifest=manifest.to_dict(), keras_model=keras_model)
    before = _weights(model)
    result = sanity.sanity_cascade(model, GradCAM, ["good movie the plot", "awful music poor actors"])
    nested = keras_model.layers[-1].name  # the trained model, nested last
    assert result.layers[0] == f"{nested}/predictions" and len(result.layers) == len(result.weighted_layers) == 4
    assert all(layer.startswith(nested + "/") for layer in result.layers)
    assert result.cascade.ssim is None and np.isfinite(result.cascade.spearman).all()
    for old, new in zip(before, _weights(model)):
        np.testing.assert_array_equal(old, new)
