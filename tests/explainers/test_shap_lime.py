"""SHAP and LIME explainers on tiny real Keras models (no mocks).

Image models: the tiny 8x8 CNN from tiny_models, and a 32x32 "top-left" model built here
whose output depends only on the texture of the image's top-left quadrant, so the right
answer for where the evidence lies is known. Text: the tiny TextVectorization CNN
(sequence length 6).
"""
from __future__ import annotations

from dataclasses import replace

import keras
import numpy as np
import pytest
from scipy.stats import spearmanr

from explainers import registry
from explainers.lime_explainer import (
    LIMEExplainer,
    kernel_weights,
    lime_text_surrogate,
    masked_texts,
    paste_superpixels,
    sample_keep_masks,
    segment_image,
)
from explainers.perturb import batched_probabilities, forward_fn, prepare_texts, token_spans
from explainers.shap_explainer import SHAPExplainer, SHAPGradientExplainer, warm_up_shap
from foundation.tokens import tokenize
from foundation.types import Explanation, Modality
from models.loaded import LoadedModel
from models.manifest import InputSpec, Manifest
from tests.explainers import tiny_models

REGION_SIZE = 32
QUADRANT = REGION_SIZE // 2

TRICKY_TEXTS = [
    "The MOVIE was GOOD!!!",
    "  great   movie,  bad   plot  ",
    "<b>html</b> the plot",
    "don't... was it good?",
    "the movie was good but the plot was awful and bad",  # longer than the sequence length (6)
    "Ünïcode café — good",
]


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _warm_shap():
    warm_up_shap()


@pytest.fixture(scope="module")
def image_model() -> LoadedModel:
    return tiny_models.loaded_image_model()


@pytest.fixture(scope="module")
def text_model() -> LoadedModel:
    return tiny_models.loaded_text_model()


SCORED_WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot",
                "golf", "hotel", "india", "juliet", "kilo", "lima"]
SCORED_LENGTH = 16


@pytest.fixture(scope="module")
def scored_text_model() -> LoadedModel:
    """Each word has a known score (-1 .. 1 in SCORED_WORDS order); logit(class 0) is 16 x
    their mean over the 16 positions, so a word's evidence for class 0 grows with its score."""
    inputs = keras.Input(shape=(1,), dtype="string", name="text")
    vectorize = keras.layers.TextVectorization(vocabulary=SCORED_WORDS, output_sequence_length=SCORED_LENGTH)
    embed = keras.layers.Embedding(len(SCORED_WORDS) + 2, 1)
    pooled = keras.layers.GlobalAveragePooling1D()(embed(vectorize(inputs)))
    dense = keras.layers.Dense(2, activation="softmax")
    model = keras.Model(inputs, dense(pooled), name="scored_words")
    scores = np.linspace(-1.0, 1.0, len(SCORED_WORDS))
    embed.set_weights([np.concatenate([[0.0, 0.0], scores])[:, None].astype(np.float32)])  # pad, OOV, words
    dense.set_weights([np.array([[8.0, -8.0]], np.float32), np.zeros(2, np.float32)])
    manifest = Manifest(modality=Modality.TEXT, classes=("up", "down"), input=InputSpec(sequence_length=SCORED_LENGTH))
    return LoadedModel(name="scored-words", version="v1", manifest=manifest.to_dict(), keras_model=model)


def _scored_text() -> tuple[str, np.ndarray]:
    """All twelve words in a shuffled order, and each token's score."""
    order = np.random.default_rng(0).permutation(len(SCORED_WORDS))
    scores = np.linspace(-1.0, 1.0, len(SCORED_WORDS))
    return " ".join(SCORED_WORDS[i] for i in order), scores[order]


def _textured_image(seed: int = 0) -> np.ndarray:
    """A 4 x 4 grid of 8 x 8 blocks of random colours, each covered by a +-40 checkerboard.

    The blocks give SLIC superpixels that respect the quadrant border; the checkerboard is
    the texture the region model responds to (blurring or flattening it removes it).
    """
    rng = np.random.default_rng(seed)
    blocks = rng.integers(60, 197, size=(4, 4, 3))
    cell = REGION_SIZE // 4
    base = np.repeat(np.repeat(blocks, cell, axis=0), cell, axis=1)
    rows, cols = np.mgrid[:REGION_SIZE, :REGION_SIZE]
    checker = np.where((rows + cols) % 2 == 0, 40, -40)[:, :, None]
    return (base + checker).astype(np.uint8)


@pytest.fixture(scope="module")
def region_model() -> LoadedModel:
    """p(class 0) rises with the edge energy (|Laplacian|) of the top-left quadrant only.

    Rescaling -> Conv2D(+Laplacian, -Laplacian on the channel sum) -> ReLU (together |Lap|)
    -> Cropping2D to the top-left quadrant -> global average -> Dense softmax. Blurring,
    inpainting or flattening anything outside that quadrant cannot change the output
    (beyond the one-pixel rim the 3x3 kernel reads).
    """
    inputs = keras.Input(shape=(REGION_SIZE, REGION_SIZE, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    conv = keras.layers.Conv2D(2, 3, padding="same", name="edges")
    x = conv(x)
    laplacian = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float32)
    kernel = np.zeros((3, 3, 3, 2), dtype=np.float32)
    kernel[:, :, :, 0] = laplacian[:, :, None]
    kernel[:, :, :, 1] = -laplacian[:, :, None]
    conv.set_weights([kernel, np.zeros(2, np.float32)])
    x = keras.layers.ReLU()(x)
    x = keras.layers.Cropping2D(((0, REGION_SIZE - QUADRANT), (0, REGION_SIZE - QUADRANT)))(x)
    features = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(2, activation="softmax", name="probs")
    outputs = dense(features)
    model = keras.Model(inputs, outputs, name="top_left")
    # Scale so the textured image scores logit difference +3 and a flat quadrant -2.
    feature_model = keras.Model(inputs, features)
    energy = float(np.asarray(feature_model(_textured_image()[None].astype(np.float32))).sum())
    slope = 5.0 / energy
    dense.set_weights([np.array([[slope, 0.0], [slope, 0.0]], np.float32), np.array([-2.0, 0.0], np.float32)])
    manifest = Manifest(
        modality=Modality.IMAGE, classes=("textured", "flat"),
        input=InputSpec(height=REGION_SIZE, width=REGION_SIZE, channels=3, rescales_inputs=True),
    )
    return LoadedModel(name="top-left", version="v3", manifest=manifest.to_dict(), keras_model=model)


def _positive_share_top_left(values: np.ndarray) -> float:
    positive = np.clip(values, 0.0, None)
    return float(positive[:QUADRANT, :QUADRANT].sum() / positive.sum())


# --- shared helpers --------------------------------------------------------------------------


def test_batched_probabilities_match_predict_proba_for_any_batch_size(image_model):
    images = tiny_models.random_images(7, seed=3)
    prepared = image_model.to_model_input(list(images))
    expected = image_model.predict_proba(list(images))
    np.testing.assert_allclose(batched_probabilities(image_model, prepared, 3), expected, atol=1e-6)
    np.testing.assert_allclose(batched_probabilities(image_model, prepared, 1000), expected, atol=1e-6)
    assert batched_probabilities(image_model, prepared[:0], 10).shape == (0, 3)


def test_forward_fn_accepts_float_images_and_strings(image_model, text_model):
    images = tiny_models.random_images(4, seed=5)
    expected = image_model.predict_proba(list(images))
    np.testing.assert_allclose(forward_fn(image_model)(images.astype(np.float64)), expected, atol=1e-6)
    np.testing.assert_allclose(forward_fn(image_model)(images[0]), expected[:1], atol=1e-6)
    texts = ["good movie", "awful plot"]
    expected_text = text_model.predict_proba(texts)
    np.testing.assert_allclose(forward_fn(text_model)(np.array(texts, dtype=object)), expected_text, atol=1e-6)
    np.testing.assert_allclose(forward_fn(text_model)(texts[0]), expected_text[:1], atol=1e-6)


def test_prepare_images_divides_by_255_only_for_models_without_rescaling(image_model):
    info = image_model.info
    manifest = replace(info, input=replace(info.input, rescales_inputs=False))
    raw = LoadedModel(name="raw", version="v1", manifest=manifest.to_dict(), keras_model=image_model.keras_model)
    images = np.full((2, 8, 8, 3), 51.0, dtype=np.float32)
    assert image_model.image_tensor(images)[0, 0, 0, 0] == pytest.approx(51.0)
    assert raw.image_tensor(images)[0, 0, 0, 0] == pytest.approx(0.2)
    assert images[0, 0, 0, 0] == 51.0  # the caller's array is untouched
    assert prepare_texts(["a", "b"]).shape == (2, 1)


@pytest.mark.parametrize("text", TRICKY_TEXTS + ["", "... -- !!", "a.b,c d"])
def test_token_spans_index_the_original_text(text):
    spans = token_spans(text)
    assert [token for _, _, token in spans] == tokenize(text)
    for start, end, token in spans:
        assert tokenize(text[start:end]) == [token]
    assert [token for _, _, token in token_spans(text, 2)] == tokenize(text)[:2]


# --- SHAP (Partition) ------------------------------------------------------------------------


def test_shap_image_is_well_formed_additive_and_deterministic(image_model):
    images = tiny_models.random_images(2, seed=1)
    explainer = SHAPExplainer(image_model, max_evals=200, batch_size=64)
    first = explainer.explain(images, seed=4)
    again = explainer.explain(images, seed=4)
    probabilities = image_model.predict_proba(list(images))
    assert len(first) == 2
    for i, exp in enumerate(first):
        assert isinstance(exp, Explanation)
        assert exp.method == "shap" and exp.modality is Modality.IMAGE
        assert exp.values.shape == (tiny_models.IMAGE_SIZE, tiny_models.IMAGE_SIZE)
        assert exp.target == int(np.argmax(probabilities[i]))
        assert exp.target_label == tiny_models.IMAGE_CLASSES[exp.target]
        assert (exp.model_name, exp.model_version, exp.seed) == ("tiny-image", "v1", 4)
        assert exp.seconds > 0
        assert exp.params["max_evals"] == 200 and exp.params["batch_size"] == 64
        # The record is exactly the constructor's parameters; the seed is the explanation's own.
        assert exp.params == {"max_evals": 200, "masker": "blur", "blur": 8, "batch_size": 64, "stopping": "stable"}
        assert exp.extras["mask_value"] == "blur(8,8)"
        # Partition values are additive: they share out exactly f(x) - f(everything masked).
        assert exp.values.sum() == pytest.approx(probabilities[i, exp.target] - exp.base_value, abs=1e-4)
        np.testing.assert_array_equal(exp.values, again[i].values)
        assert exp.base_value == again[i].base_value


def test_shap_image_explains_the_requested_target_with_the_inpaint_masker(image_model):
    image = tiny_models.random_images(1, seed=2)
    exp = SHAPExplainer(image_model, max_evals=100, masker="inpaint").explain(image, targets=[2])[0]
    assert exp.target == 2 and exp.target_label == "bird"
    assert exp.params["masker"] == "inpaint"
    probability = image_model.predict_proba(list(image))[0, 2]
    assert exp.values.sum() == pytest.approx(probability - exp.base_value, abs=1e-4)


def test_shap_image_batch_equals_one_image_at_a_time(image_model):
    """Reusing one explainer across a batch gives what a fresh explainer gives per image."""
    images = tiny_models.random_images(3, seed=6)
    batch = SHAPExplainer(image_model, max_evals=100).explain(images, targets=[0, 0, 0])
    for i, exp in enumerate(batch):
        alone = SHAPExplainer(image_model, max_evals=100).explain(images[i : i + 1], targets=[0])[0]
        np.testing.assert_array_equal(exp.values, alone.values)
        assert exp.base_value == alone.base_value


def test_warm_up_is_cheap_once_compiled():
    assert warm_up_shap() < 2.0


def test_shap_rejects_unknown_settings(image_model):
    with pytest.raises(ValueError, match="masker"):
        SHAPExplainer(image_model, masker="zeros")
    with pytest.raises(ValueError, match="max_evals"):
        SHAPExplainer(image_model, max_evals=0)
    with pytest.raises(ValueError, match="targets"):
        SHAPExplainer(image_model).explain(tiny_models.random_images(1), targets=[5])


def test_shap_image_puts_the_evidence_in_the_region_the_model_reads(region_model):
    exp = SHAPExplainer(region_model).explain([_textured_image()], targets=[0])[0]
    assert exp.values.shape == (REGION_SIZE, REGION_SIZE)
    assert _positive_share_top_left(exp.values) > 0.9


def test_shap_text_tokens_align_with_the_model_and_values_are_additive(text_model):
    explainer = SHAPExplainer(text_model, max_evals=300)
    explanations = explainer.explain(TRICKY_TEXTS, seed=1)
    probabilities = text_model.predict_proba(TRICKY_TEXTS)
    for text, exp, probs in zip(TRICKY_TEXTS, explanations, probabilities):
        assert exp.tokens == tuple(text_model.tokenize(text))
        assert exp.values.shape == (len(exp.tokens),)
        assert len(exp.tokens) <= tiny_models.SEQUENCE_LENGTH
        # Additive against the model's output on the FULL text: the tokens past the
        # sequence length carry no value because the model never reads them.
        assert exp.values.sum() == pytest.approx(probs[exp.target] - exp.base_value, abs=1e-4)
    assert explanations[4].tokens == ("the", "movie", "was", "good", "but", "the")
    assert explanations[2].tokens[0] == "bhtmlb"
    again = explainer.explain(TRICKY_TEXTS, seed=1)
    for exp, other in zip(explanations, again):
        np.testing.assert_array_equal(exp.values, other.values)


def test_shap_text_handles_texts_with_one_or_no_tokens(text_model):
    one, none = SHAPExplainer(text_model).explain(["Good!", "?!"])
    assert one.tokens == ("good",) and none.tokens == () and none.values.shape == (0,)
    probs = text_model.predict_proba(["good", ""])
    assert one.values[0] == pytest.approx(probs[0, one.target] - probs[1, one.target], abs=1e-6)


# --- SHAP (Gradient) ------------------------------------------------------------------------


def test_shap_gradient_is_well_formed_deterministic_and_roughly_additive(image_model):
    images = tiny_models.random_images(2, seed=7)
    explainer = SHAPGradientExplainer(image_model, nsamples=300)
    first = explainer.explain(images, seed=3)
    again = explainer.explain(images, seed=3)
    other_seed = explainer.explain(images, seed=4)
    probabilities = image_model.predict_proba(list(images))
    for i, exp in enumerate(first):
        assert exp.method == "shap-gradient" and exp.values.shape == (8, 8)
        assert exp.params["nsamples"] == 300 and exp.seed == 3
        np.testing.assert_array_equal(exp.values, again[i].values)
        assert not np.array_equal(exp.values, other_seed[i].values)
        # Expected gradients are additive in expectation (sampling error remains).
        gap = float(probabilities[i, exp.target]) - exp.base_value
        assert exp.values.sum() == pytest.approx(gap, abs=0.1 * abs(gap) + 0.01)


def test_shap_gradient_puts_the_evidence_in_the_region_the_model_reads(region_model):
    exp = SHAPGradientExplainer(region_model).explain([_textured_image()], targets=[0])[0]
    assert _positive_share_top_left(exp.values) > 0.9


def test_registry_offers_each_method_for_the_right_modalities(image_model, text_model):
    assert registry.get("shap") is SHAPExplainer
    assert registry.get("shap-gradient") is SHAPGradientExplainer
    assert registry.get("lime") is LIMEExplainer
    assert {"shap", "shap-gradient", "lime"} <= set(registry.available(image_model))
    text_methods = set(registry.available(text_model))
    assert {"shap", "lime"} <= text_methods and "shap-gradient" not in text_methods
    assert SHAPExplainer.title == "SHAP (Partition)" and SHAPGradientExplainer.title == "SHAP (Gradient)"


# --- LIME images ----------------------------------------------------------------------------


def test_lime_image_weights_map_back_to_superpixels_exactly(region_model):
    explainer = LIMEExplainer(region_model, num_samples=300, n_segments=16)
    exp = explainer.explain([_textured_image(1)], seed=2)[0]
    segments = exp.extras["segments"]
    weights = exp.extras["weights"]
    assert segments.dtype == np.int32 and segments.shape == (REGION_SIZE, REGION_SIZE)
    assert sorted(weights) == list(range(int(segments.max()) + 1))
    for segment, weight in weights.items():
        assert np.all(exp.values[segments == segment] == np.float32(weight))
    assert exp.base_value == exp.extras["intercept"]
    assert -1.0 <= exp.extras["score"] <= 1.0
    assert exp.params["num_samples"] == 300 and exp.params["segmentation"] == "slic"
    assert exp.params["n_segments"] == 16 and exp.seed == 2
    assert exp.params["hide_color"] is None and exp.extras["masker"] == "superpixel mean"
    assert "kernel_size" not in exp.params  # quickshift's only


def test_lime_image_is_deterministic_per_seed(image_model):
    images = tiny_models.random_images(1, seed=9)
    explainer = LIMEExplainer(image_model, num_samples=200, n_segments=6)
    first = explainer.explain(images, seed=5)[0]
    again = explainer.explain(images, seed=5)[0]
    other = explainer.explain(images, seed=6)[0]
    np.testing.assert_array_equal(first.values, again.values)
    assert first.extras["weights"] == again.extras["weights"]
    assert not np.array_equal(first.values, other.values)


def test_lime_image_quickshift_and_constant_hide_color(image_model):
    images = tiny_models.random_images(1, seed=4)
    explainer = LIMEExplainer(image_model, num_samples=100, segmentation="quickshift", kernel_size=2, hide_color=0)
    exp = explainer.explain(images, targets=[1], seed=0)[0]
    assert exp.target == 1 and exp.values.shape == (8, 8)
    assert exp.params["segmentation"] == "quickshift" and exp.params["kernel_size"] == 2
    assert exp.params["hide_color"] == 0.0
    with pytest.raises(ValueError, match="segmentation"):
        LIMEExplainer(image_model, segmentation="grid")


def test_lime_image_puts_the_evidence_in_the_region_the_model_reads(region_model):
    exp = LIMEExplainer(region_model, n_segments=16).explain([_textured_image()], targets=[0])[0]
    assert _positive_share_top_left(exp.values) > 0.8


def test_batched_neighbourhood_equals_the_library_loop(region_model):
    """Our vectorised data_labels builds exactly the images LIME's own loop builds."""
    from lime import lime_image

    from explainers.lime_explainer import _batched_lime_image_explainer

    image = _textured_image(2)
    segments = segment_image(image, "slic", n_segments=9)
    fudged = image.copy()
    fudged[:] = 17
    seen: list[np.ndarray] = []

    def record(batch: np.ndarray) -> np.ndarray:
        seen.append(np.asarray(batch).copy())
        return forward_fn(region_model)(batch)

    library = lime_image.LimeImageExplainer(random_state=11)
    data, labels = library.data_labels(image, fudged, segments, record, 25, batch_size=25)
    library_images = np.concatenate(seen)
    seen.clear()
    ours = _batched_lime_image_explainer(random_state=11)
    our_data, our_labels = ours.data_labels(image, fudged, segments, record, 25, batch_size=10)
    np.testing.assert_array_equal(our_data, data)
    np.testing.assert_array_equal(np.concatenate(seen), library_images)
    np.testing.assert_allclose(our_labels, labels, atol=1e-6)
    assert paste_superpixels(image, fudged, segments, np.ones((1, 9), int))[0].tolist() == image.tolist()


# --- LIME text ------------------------------------------------------------------------------


def test_lime_text_tokens_align_and_results_are_deterministic(text_model):
    explainer = LIMEExplainer(text_model, num_samples=500)
    explanations = explainer.explain(TRICKY_TEXTS + ["?!"], seed=1)
    for text, exp in zip(TRICKY_TEXTS, explanations):
        assert exp.method == "lime" and exp.modality is Modality.TEXT
        assert exp.tokens == tuple(text_model.tokenize(text))
        assert exp.values.shape == (len(exp.tokens),)
        assert exp.params["num_samples"] == 500 and exp.params["kernel_width"] == 25.0
        assert exp.base_value == exp.extras["intercept"]
    assert explanations[-1].tokens == () and explanations[-1].values.shape == (0,)
    again = explainer.explain(TRICKY_TEXTS, seed=1)
    other = explainer.explain(TRICKY_TEXTS, seed=2)
    for exp, same, different in zip(explanations, again, other):
        np.testing.assert_array_equal(exp.values, same.values)
    assert not np.array_equal(explanations[0].values, other[0].values)


def test_lime_text_sampling_and_kernel_follow_lime():
    masks = sample_keep_masks(5, 4000, np.random.default_rng(0))
    assert masks[0].all()
    removed = (~masks[1:]).sum(axis=1)
    assert removed.min() == 1 and removed.max() == 5  # 1..d tokens removed, uniformly
    assert np.bincount(removed)[1:].min() > 4000 / 5 * 0.85
    # cosine distance to all-ones, x100: keeping 1 of 4 tokens -> cos = 1/2 -> distance 50.
    weights = kernel_weights(np.array([[1, 1, 1, 1], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=bool))
    np.testing.assert_allclose(weights, np.sqrt(np.exp(-np.array([0.0, 50.0, 100.0]) ** 2 / 25.0**2)))
    assert masked_texts(["a", "b", "c"], np.array([[True, False, True], [False, False, False]])) == ["a c", ""]


def test_native_lime_text_agrees_with_lime_text_explainer(scored_text_model):
    """Same text, same model function, LIME's own explainer with removal masking: same ranking."""
    from lime.lime_text import LimeTextExplainer

    text, scores = _scored_text()
    tokens = scored_text_model.tokenize(text)
    predict = forward_fn(scored_text_model)
    reference = LimeTextExplainer(bow=False, split_expression=r"\s+", mask_string="", random_state=0)
    result = reference.explain_instance(text, predict, labels=(0,), num_features=len(tokens), num_samples=1000)
    theirs = np.zeros(len(tokens))
    for feature, weight in result.as_map()[0]:
        theirs[feature] = weight
    ours = lime_text_surrogate(predict, tokens, 0, num_samples=1000, seed=0).weights
    assert spearmanr(ours, theirs).statistic >= 0.9
    np.testing.assert_allclose(ours, theirs, atol=0.15 * np.abs(theirs).max())
    # And both recover the word scores the model was built with.
    assert spearmanr(ours, scores).statistic >= 0.95


def test_shap_and_lime_text_rank_tokens_by_their_known_scores(scored_text_model):
    text, scores = _scored_text()
    shap_exp = SHAPExplainer(scored_text_model).explain([text], targets=[0])[0]
    lime_exp = LIMEExplainer(scored_text_model, num_samples=2000).explain([text], targets=[0])[0]
    assert spearmanr(shap_exp.values, scores).statistic >= 0.95
    assert spearmanr(lime_exp.values, scores).statistic >= 0.95
    # The highest-scoring word carries the most positive evidence for class 0.
    assert shap_exp.tokens[int(np.argmax(shap_exp.values))] == SCORED_WORDS[-1]
