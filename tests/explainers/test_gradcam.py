"""Grad-CAM / Grad-CAM++ against numpy re-derivations on tiny models with known weights."""
from __future__ import annotations

import cv2
import keras
import numpy as np
import pytest

from explainers import gradcam, registry
from explainers.gradcam import (
    GradCAM,
    GradCAMPlusPlus,
    channel_weights,
    gradcam_parts,
    plus_plus_weights,
    resize_and_normalise,
    weighted_activation_map,
)
from foundation.types import Modality
from models.layers import build_activation_model, find_last_conv_layer
from tests.explainers import tiny_models as tm

# --- the maths redone by hand in numpy (float64) ------------------------------------------------


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def _dprob_dpooled(p: np.ndarray, dense_kernel: np.ndarray, target: int) -> np.ndarray:
    # d softmax_t / d z_j = p_t (delta_tj - p_j); z = pooled @ W + c.
    onehot = np.eye(len(p))[target]
    return dense_kernel.astype(np.float64) @ (p[target] * (onehot - p))


def _dscore_dpooled(p: np.ndarray, dense_kernel: np.ndarray, target: int, score: str) -> np.ndarray:
    # The pre-softmax score z_t = pooled @ W[:, t] + c_t has gradient W[:, t] (the paper's choice).
    if score == "logit":
        return dense_kernel.astype(np.float64)[:, target]
    return _dprob_dpooled(p, dense_kernel, target)


def hand_image(image: np.ndarray, target: int | None = None, weights: dict | None = None,
               score: str = "logit") -> dict:
    """Forward and gradient of the tiny image CNN (conv -> relu -> GAP -> dense softmax)."""
    w = weights or tm.image_weights()
    x = image.astype(np.float64) / 255.0
    kernel = w["conv_kernel"].astype(np.float64)
    acts = np.zeros((6, 6, 2))
    for i in range(6):
        for j in range(6):
            acts[i, j] = np.tensordot(x[i : i + 3, j : j + 3, :], kernel, axes=3) + w["conv_bias"]
    pooled = np.maximum(acts, 0.0).mean(axis=(0, 1))
    z = pooled @ w["dense_kernel"].astype(np.float64) + w["dense_bias"]
    p = _softmax(z)
    t = int(np.argmax(p)) if target is None else target
    # The ReLU passes gradient only where the conv output is positive; GAP divides by 36.
    grads = _dscore_dpooled(p, w["dense_kernel"], t, score)[None, None, :] * (acts > 0) / 36.0
    weights_k = grads.mean(axis=(0, 1))
    weighted_sum = (acts * weights_k).sum(axis=-1)
    return {"acts": acts, "grads": grads, "p": p, "z": z, "target": t, "weights": weights_k,
            "weighted_sum": weighted_sum, "cam": np.maximum(weighted_sum, 0.0)}


def hand_plus_plus_cam(acts: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """Grad-CAM++ from the paper's closed form, written out position by position."""
    h, w, k = acts.shape
    weights = np.zeros(k)
    for c in range(k):
        total = acts[:, :, c].sum()
        for i in range(h):
            for j in range(w):
                g = grads[i, j, c]
                denominator = 2 * g**2 + total * g**3
                alpha = g**2 / denominator if denominator != 0 else 0.0
                weights[c] += alpha * max(g, 0.0)
    return np.maximum((acts * weights).sum(axis=-1), 0.0)


def expected_values(cam: np.ndarray) -> np.ndarray:
    resized = cv2.resize(cam.astype(np.float32), (tm.IMAGE_SIZE, tm.IMAGE_SIZE), interpolation=cv2.INTER_LINEAR)
    return resized / resized.max() if resized.max() > 0 else np.zeros_like(resized)


def hand_text(tokens: list[str], target: int | None = None, score: str = "logit") -> dict:
    """Embedding -> Conv1D(k=3, same) -> GlobalMaxPooling1D -> Dense softmax, by hand."""
    w = tm.text_weights()
    length = tm.SEQUENCE_LENGTH
    emb = w["embedding"].astype(np.float64)[tm.token_ids(tokens)]
    padded = np.vstack([np.zeros((1, tm.EMBED_DIM)), emb, np.zeros((1, tm.EMBED_DIM))])
    acts = np.stack(
        [np.tensordot(padded[pos : pos + 3], w["conv_kernel"].astype(np.float64), axes=2) + w["conv_bias"] for pos in range(length)]
    )
    p = _softmax(acts.max(axis=0) @ w["dense_kernel"].astype(np.float64) + w["dense_bias"])
    t = int(np.argmax(p)) if target is None else target
    # Max pooling sends each channel's gradient to its arg-max position only.
    grads = np.zeros_like(acts)
    grads[acts.argmax(axis=0), np.arange(acts.shape[1])] = _dscore_dpooled(p, w["dense_kernel"], t, score)
    cam = np.maximum(acts @ grads.mean(axis=0), 0.0)
    return {"cam": cam, "p": p, "target": t}


@pytest.fixture(scope="module")
def flat_model():
    return tm.loaded_image_model(tm.flat_image_cnn())


@pytest.fixture(scope="module")
def images():
    return tm.random_images(5, seed=3)


# --- pure steps on constant arrays --------------------------------------------------------------


def test_channel_weights_average_over_positions():
    grads = np.zeros((2, 3, 4, 2))
    grads[0, :, :, 0] = 0.5
    grads[0, 0, 0, 1] = 12.0  # one position of twelve
    grads[1] = -2.0
    np.testing.assert_allclose(channel_weights(grads), [[0.5, 1.0], [-2.0, -2.0]])
    # Text maps (N x L x K) average over the one position axis.
    np.testing.assert_allclose(channel_weights(np.full((1, 5, 3), 0.25)), [[0.25] * 3])
    with pytest.raises(ValueError):
        channel_weights(np.ones((2, 3)))


def test_weighted_activation_map_sums_channels_and_clips():
    acts = np.stack([np.full((2, 2), 1.0), np.full((2, 2), 3.0)], axis=-1)[None]  # 1 x 2 x 2 x 2
    np.testing.assert_allclose(weighted_activation_map(acts, np.array([[2.0, -1.0]])), np.zeros((1, 2, 2)))
    np.testing.assert_allclose(weighted_activation_map(acts, np.array([[2.0, -1.0]]), relu=False), np.full((1, 2, 2), -1.0))
    np.testing.assert_allclose(weighted_activation_map(acts, np.array([[2.0, 1.0]])), np.full((1, 2, 2), 5.0))
    with pytest.raises(ValueError):
        weighted_activation_map(acts, np.array([1.0, 2.0]))


def test_plus_plus_weights_on_constant_arrays():
    # g = 0.5 and A = 2 at all 4 positions: alpha = g^2 / (2 g^2 + 4*2*g^3) = 1/6,
    # w = 4 positions * 1/6 * 0.5 = 1/3.
    grads = np.full((1, 2, 2, 1), 0.5)
    acts = np.full((1, 2, 2, 1), 2.0)
    np.testing.assert_allclose(plus_plus_weights(grads, acts), [[1.0 / 3.0]])
    # Negative gradients contribute nothing; zero gradients must not divide by zero.
    assert plus_plus_weights(np.full((1, 2, 2, 1), -0.5), acts)[0, 0] == 0.0
    assert plus_plus_weights(np.zeros((1, 2, 2, 1)), acts)[0, 0] == 0.0
    # With all-zero activations alpha = 1/2, so w = 4 * 1/2 * 0.5 = 1.
    np.testing.assert_allclose(plus_plus_weights(grads, np.zeros_like(acts)), [[1.0]])
    with pytest.raises(ValueError):
        plus_plus_weights(grads, np.ones((1, 3, 3, 1)))


def test_resize_and_normalise():
    constant = resize_and_normalise(np.full((3, 3), 7.0), (8, 10))
    assert constant.shape == (8, 10)
    np.testing.assert_allclose(constant, 1.0)
    assert not resize_and_normalise(np.zeros((3, 3)), (8, 8)).any()
    ramp = resize_and_normalise(np.array([[0.0, 2.0], [4.0, 8.0]]), (4, 4))
    assert ramp.min() == 0.0 and ramp.max() == 1.0
    assert ramp[3, 3] == 1.0 and ramp[0, 0] == 0.0


# --- Grad-CAM on the tiny image CNN ---------------------------------------------------------------


def test_gradcam_matches_hand_computation(flat_model, images):
    explanations = GradCAM(flat_model).explain(images)
    assert len(explanations) == len(images)
    for image, explanation in zip(images, explanations):
        hand = hand_image(image)
        assert explanation.target == hand["target"]
        assert explanation.target_label == tm.IMAGE_CLASSES[hand["target"]]
        assert explanation.values.shape == (tm.IMAGE_SIZE, tm.IMAGE_SIZE)
        assert explanation.extras["raw_max"] == pytest.approx(hand["cam"].max(), rel=1e-5, abs=1e-9)
        assert explanation.extras["probability"] == pytest.approx(hand["p"][hand["target"]], rel=1e-5)
        np.testing.assert_allclose(explanation.values, expected_values(hand["cam"]), atol=1e-5)
        assert explanation.values.min() >= 0.0 and explanation.values.max() <= 1.0


def test_gradcam_parts_matches_hand_computation(flat_model, images):
    hand = hand_image(images[0], target=2)
    parts = gradcam_parts(flat_model, images[0], 2)
    assert parts["layer"] == "conv" and parts["target"] == 2 and parts["target_label"] == "bird"
    np.testing.assert_allclose(parts["activations"], hand["acts"], atol=1e-5)
    np.testing.assert_allclose(parts["gradients"], hand["grads"], atol=1e-7)
    np.testing.assert_allclose(parts["weights"], hand["weights"], atol=1e-8)
    np.testing.assert_allclose(parts["weighted_sum"], hand["weighted_sum"], atol=1e-7)
    np.testing.assert_allclose(parts["probabilities"], hand["p"], atol=1e-6)
    np.testing.assert_allclose(parts["cam"], hand["cam"], atol=1e-7)
    assert parts["raw_max"] == pytest.approx(hand["cam"].max(), rel=1e-5)
    np.testing.assert_allclose(parts["values"], expected_values(hand["cam"]), atol=1e-5)


def test_explicit_target_differs_from_default_argmax(flat_model, images):
    explainer = GradCAM(flat_model)
    default = explainer.explain(images[:3])
    predicted = [e.target for e in default]
    others = [(t + 1) % len(tm.IMAGE_CLASSES) for t in predicted]
    same = explainer.explain(images[:3], targets=predicted)
    other = explainer.explain(images[:3], targets=others)
    for image, d, s, o, t in zip(images, default, same, other, others):
        np.testing.assert_allclose(s.values, d.values, atol=1e-7)
        assert o.target == t and o.target_label == tm.IMAGE_CLASSES[t]
        hand = hand_image(image, target=t)
        assert o.extras["raw_max"] == pytest.approx(hand["cam"].max(), rel=1e-5, abs=1e-9)
        if hand["cam"].max() > 0:
            np.testing.assert_allclose(o.values, expected_values(hand["cam"]), atol=1e-5)
        assert not np.allclose(o.values, d.values)


def test_batched_equals_one_by_one_and_across_chunks(flat_model, images, monkeypatch):
    explainer = GradCAM(flat_model)
    batched = explainer.explain(images)
    singles = [explainer.explain(images[i : i + 1])[0] for i in range(len(images))]
    monkeypatch.setattr(gradcam, "CHUNK_SIZE", 2)  # 5 inputs -> chunks of 2, 2, 1
    chunked = explainer.explain(images)
    for b, s, c in zip(batched, singles, chunked):
        assert b.target == s.target == c.target
        np.testing.assert_allclose(b.values, s.values, atol=1e-6)
        np.testing.assert_allclose(b.values, c.values, atol=1e-6)


def test_explanation_records_method_params_and_time(flat_model, images):
    for cls, variant in ((GradCAM, "gradcam"), (GradCAMPlusPlus, "gradcam++")):
        (explanation,) = cls(flat_model).explain(images[:1], seed=7)
        assert explanation.method == variant and explanation.modality is Modality.IMAGE
        assert explanation.params == {"layer": "conv", "score": "logit"} and explanation.extras["variant"] == variant
        assert explanation.extras["score"] == "logit"
        assert explanation.seed == 7 and explanation.seconds > 0
        assert explanation.model_name == "tiny-image" and explanation.model_version == "v1"
    assert GradCAM(flat_model).explain([]) == []


def test_invalid_targets_are_refused(flat_model, images):
    explainer = GradCAM(flat_model)
    with pytest.raises(ValueError, match="one target per input"):
        explainer.explain(images[:2], targets=[0])
    with pytest.raises(ValueError, match="class indices"):
        explainer.explain(images[:1], targets=[3])


def test_gradcam_plus_plus_matches_hand_computation(flat_model, images):
    explanations = GradCAMPlusPlus(flat_model).explain(images[:3], targets=[0, 1, 2])
    for image, explanation in zip(images, explanations):
        hand = hand_image(image, target=explanation.target)
        cam = hand_plus_plus_cam(hand["acts"], hand["grads"])
        assert explanation.extras["raw_max"] == pytest.approx(cam.max(), rel=1e-4, abs=1e-9)
        if cam.max() > 0:
            np.testing.assert_allclose(explanation.values, expected_values(cam), atol=1e-5)


# --- nested models, frozen models, layer paths --------------------------------------------------


@pytest.mark.parametrize(
    ("builder", "path"),
    [
        (tm.sequential_nested_image_cnn, "base/conv"),
        (tm.functional_backbone_image_cnn, "backbone/conv"),
        (tm.doubly_nested_image_cnn, "outer/backbone/conv"),
    ],
)
def test_nested_models_give_the_flat_models_map(builder, path, flat_model, images):
    nested = tm.loaded_image_model(builder())
    assert find_last_conv_layer(nested.keras_model) == path
    for cls in (GradCAM, GradCAMPlusPlus):
        expected = cls(flat_model).explain(images)
        got = cls(nested).explain(images)
        for e, g in zip(expected, got):
            assert g.params["layer"] == path and g.target == e.target
            np.testing.assert_allclose(g.values, e.values, atol=1e-6)
            assert g.extras["raw_max"] == pytest.approx(e.extras["raw_max"], rel=1e-5)


def test_nested_backbone_in_a_branching_outer_graph(images):
    flat = GradCAM(tm.loaded_image_model(tm.flat_branching_image_cnn())).explain(images)
    nested = GradCAM(tm.loaded_image_model(tm.backbone_branching_image_cnn())).explain(images)
    for f, n in zip(flat, nested):
        assert n.params["layer"] == "backbone/conv"
        np.testing.assert_allclose(n.values, f.values, atol=1e-6)
        assert n.extras["raw_max"] == pytest.approx(f.extras["raw_max"], rel=1e-5)


def test_activation_model_predictions_equal_the_model(images):
    import tensorflow as tf

    model = tm.backbone_branching_image_cnn()
    acts, probs = build_activation_model(model, "backbone/conv")(tf.constant(images.astype(np.float32)))
    assert tuple(acts.shape) == (len(images), 6, 6, 2)
    np.testing.assert_allclose(np.asarray(probs), np.asarray(model(images.astype(np.float32))), atol=1e-6)


def test_frozen_model_still_has_gradients(flat_model, images):
    frozen = tm.sequential_nested_image_cnn()
    frozen.trainable = False
    expected = GradCAM(flat_model).explain(images[:2])
    got = GradCAM(tm.loaded_image_model(frozen)).explain(images[:2])
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g.values, e.values, atol=1e-6)


def test_layer_without_weights_upstream_still_has_gradients(flat_model, images):
    # The Rescaling output depends on no variable, so the tape records it only if watched.
    parts = gradcam_parts(flat_model, images[0], 1, layer="rescale")
    assert parts["activations"].shape == (tm.IMAGE_SIZE, tm.IMAGE_SIZE, 3)
    image = images[0].astype(np.float64)
    eps = 1e-3  # in rescaled units; the hand forward divides by 255
    for position in [(0, 0, 0), (4, 5, 1), (7, 7, 2)]:
        up, down = image.copy(), image.copy()
        up[position] += eps * 255
        down[position] -= eps * 255
        numeric = (hand_image(up, target=1)["z"][1] - hand_image(down, target=1)["z"][1]) / (2 * eps)
        assert parts["gradients"][position] == pytest.approx(numeric, rel=1e-3, abs=1e-7)


def test_explicit_layer_paths_are_validated():
    model = tm.sequential_nested_image_cnn()
    assert find_last_conv_layer(model, "base/conv") == "base/conv"
    assert find_last_conv_layer(model, "base/relu") == "base/relu"  # any spatial map is allowed
    with pytest.raises(ValueError, match="has no layer 'nope'; its layers are: .*conv"):
        find_last_conv_layer(model, "base/nope")
    with pytest.raises(ValueError, match="not a sub-model"):
        find_last_conv_layer(model, "gap/conv")
    with pytest.raises(ValueError, match="rank-2"):
        find_last_conv_layer(model, "gap")
    with pytest.raises(ValueError, match="rank-4"):
        find_last_conv_layer(model, "base/conv", modality=Modality.TEXT)
    with pytest.raises(ValueError, match="non-empty"):
        find_last_conv_layer(model, "")
    with pytest.raises(ValueError, match="no Conv1D"):
        find_last_conv_layer(model, modality=Modality.TEXT)


def test_manifest_layer_and_constructor_layer(images):
    nested = tm.sequential_nested_image_cnn()
    relu_map = GradCAM(tm.loaded_image_model(nested, gradcam_layer="base/relu")).explain(images[:1])[0]
    assert relu_map.params["layer"] == "base/relu"
    by_param = GradCAM(tm.loaded_image_model(nested), layer="base/relu").explain(images[:1])[0]
    np.testing.assert_allclose(by_param.values, relu_map.values)
    conv_map = GradCAM(tm.loaded_image_model(nested)).explain(images[:1])[0]
    # The ReLU map differs from the conv map: negative conv outputs are zeroed first.
    assert not np.allclose(relu_map.values, conv_map.values)
    with pytest.raises(ValueError, match="no layer 'missing'"):
        GradCAM(tm.loaded_image_model(nested, gradcam_layer="base/missing"))


def test_supports_and_registry():
    image = tm.loaded_image_model()
    dense_only = tm.loaded_image_model(tm.dense_only_image_model())
    text = tm.loaded_text_model()
    for cls in (GradCAM, GradCAMPlusPlus):
        assert cls.supports(image) and cls.supports(text)
        assert not cls.supports(dense_only)
    assert {"gradcam", "gradcam++"} <= set(registry.available(image))
    assert not {"gradcam", "gradcam++"} & set(registry.available(dense_only))
    assert registry.get("gradcam++") is GradCAMPlusPlus
    with pytest.raises(ValueError, match="no Conv2D"):
        GradCAM(dense_only)


# --- text ----------------------------------------------------------------------------------------


def test_text_values_match_hand_computation():
    model = tm.loaded_text_model()
    texts = ["The plot was AWFUL!!", "good movie", "great great plot, the movie was bad and long"]
    for cls in (GradCAM,):
        explanations = cls(model).explain(texts)
        for text, explanation in zip(texts, explanations):
            tokens = model.tokenize(text)
            assert explanation.tokens == tuple(tokens)
            assert len(explanation.values) == len(tokens) <= tm.SEQUENCE_LENGTH
            hand = hand_text(tokens)
            assert explanation.target == hand["target"]
            assert explanation.target_label == tm.TEXT_CLASSES[hand["target"]]
            real = hand["cam"][: len(tokens)]
            expected = real / real.max() if real.max() > 0 else np.zeros_like(real)
            np.testing.assert_allclose(explanation.values, expected, atol=1e-5)
    assert explanations[0].tokens == ("the", "plot", "was", "awful")
    assert len(explanations[2].tokens) == tm.SEQUENCE_LENGTH  # truncated like the model


def test_text_edge_cases():
    model = tm.loaded_text_model()
    (empty,) = GradCAM(model).explain(["!!!"])
    assert empty.tokens == () and empty.values.shape == (0,)
    (plus,) = GradCAMPlusPlus(model).explain(["zzz unknown words"], targets=[1])
    assert plus.tokens == ("zzz", "unknown", "words") and plus.target == 1 and len(plus.values) == 3
    parts = gradcam_parts(model, "good movie", 0)
    assert parts["tokens"] == ("good", "movie") and parts["activations"].shape == (tm.SEQUENCE_LENGTH, tm.TEXT_FILTERS)
    hand = hand_text(["good", "movie"], target=0)
    np.testing.assert_allclose(parts["cam"], hand["cam"], atol=1e-6)


def test_text_model_layer_kind():
    text = tm.text_cnn()
    assert find_last_conv_layer(text, modality=Modality.TEXT) == "conv"
    with pytest.raises(ValueError, match="no Conv2D"):
        find_last_conv_layer(text, modality=Modality.IMAGE)
    assert isinstance(text.get_layer("conv"), keras.layers.Conv1D)


def test_subclassed_models_are_not_supported():
    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(2, 3)
            self.pool = keras.layers.GlobalAveragePooling2D()
            self.probs = keras.layers.Dense(3, activation="softmax")

        def call(self, x):
            return self.probs(self.pool(self.conv(x)))

    model = Subclassed()
    model(np.zeros((1, tm.IMAGE_SIZE, tm.IMAGE_SIZE, 3), dtype=np.float32))
    loaded = tm.loaded_image_model(model)
    assert not GradCAM.supports(loaded)
    with pytest.raises(ValueError, match="subclassed models are not supported"):
        GradCAM(loaded)


def test_the_probability_score_is_an_option_and_matches_its_hand_computation(flat_model, images):
    explanations = GradCAM(flat_model, score="probability").explain(images)
    for image, explanation in zip(images, explanations):
        hand = hand_image(image, score="probability")
        assert explanation.extras["score"] == "probability"
        np.testing.assert_allclose(explanation.values, expected_values(hand["cam"]), atol=1e-5)


def test_logit_and_probability_scores_give_different_maps_where_the_softmax_bends(flat_model, images):
    # d p_t / d A mixes in every other class's weights (p_t (W_t - sum_j p_j W_j)); d z_t / d A does not.
    logit = hand_image(images[0], target=2)
    probability = hand_image(images[0], target=2, score="probability")
    assert not np.allclose(logit["weights"] / np.abs(logit["weights"]).max(),
                           probability["weights"] / np.abs(probability["weights"]).max(), atol=1e-3)


def test_one_unit_heads_use_the_signed_logit(workspace):
    """Sigmoid unit: class 1's score is z, class 0's is -z, so their channel weights are exact opposites."""
    keras.utils.set_random_seed(4)
    inputs = keras.Input((tm.IMAGE_SIZE, tm.IMAGE_SIZE, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(3, 3, name="conv")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="unit")(x)
    model = tm.loaded_model_with_output(keras.Model(inputs, outputs), "sigmoid")
    image = tm.random_images(1, seed=9)[0]
    one = gradcam_parts(model, image, 1)
    zero = gradcam_parts(model, image, 0)
    assert one["score"] == zero["score"] == "logit"
    np.testing.assert_allclose(one["gradients"], -zero["gradients"], atol=1e-7)
    # With GAP and a linear conv, dz/dA is the unit's weight over the 36 positions, everywhere.
    kernel = model.keras_model.get_layer("unit").kernel.numpy()[:, 0]
    np.testing.assert_allclose(one["gradients"], np.broadcast_to(kernel / 36.0, one["gradients"].shape), rtol=1e-5)
    np.testing.assert_allclose(one["probabilities"].sum(), 1.0, atol=1e-6)
