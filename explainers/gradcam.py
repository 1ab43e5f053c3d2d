"""Grad-CAM and Grad-CAM++ as small pure steps around one batched forward+backward pass.

Grad-CAM (Selvaraju et al. 2017): with A the feature maps of the last convolution and
y the model's score for the target class,
    w_k = mean over positions of dy/dA_k           (channel_weights)
    cam = ReLU(sum_k w_k A_k)                      (weighted_activation_map)
Grad-CAM++ (Chattopadhyay et al. 2018) replaces w_k by a positive-gradient sum weighted
per position (plus_plus_weights), which spreads credit over several object instances.

The score y is, by default, the target class's score *before* the output activation, as in
the paper and the keras.io recipe (which removes the last softmax): the last Dense layer's
pre-activation (the input of a Softmax/Activation layer), the logit itself for models that
emit logits, and for one-unit binary heads the signed logit (z for the second class, -z for
the first). The Grad-CAM++ closed form below assumes exactly such a piecewise-linear score.
`score="probability"` takes the gradient of the class probability instead (what this module
did before); a model whose output layer is not one of those falls back to it, and says so in
`extras["score"]`.

The forward+backward pass is one compiled `tf.function` per explainer, so a big model's
backward pass costs about what its forward pass does rather than an eager layer-by-layer run.

Image maps are resized to the model's input size and divided by their maximum, so they lie
in [0, 1] with 0 meaning "no evidence"; the maximum before that division is kept in
`extras["raw_max"]` (a map that is zero everywhere stays zero). Text values are the map at
the token positions the model reads, normalised the same way.
"""
from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, replace
from typing import Any, Callable, ClassVar, Sequence

import cv2
import numpy as np

from explainers.base import Explainer
from explainers.params import MethodParams, param
from explainers.registry import register
from foundation.types import Explanation, Modality
from models.layers import build_activation_model, find_last_conv_layer, has_pre_activation, output_layer_path, pre_activation, resolve_layer_path

# Inputs per forward+backward pass: bounds the memory held by activations and gradients.
CHUNK_SIZE = 64


# --- pure steps (numpy in, numpy out; arrays are N x positions... x K) -----------------------


def _spatial_axes(array: np.ndarray) -> tuple[int, ...]:
    if array.ndim < 3:
        raise ValueError(f"expected a batch of feature maps (N, positions..., channels), got shape {array.shape}")
    return tuple(range(1, array.ndim - 1))


def channel_weights(grads: np.ndarray) -> np.ndarray:
    """Grad-CAM channel weights: the gradient averaged over positions, N x K."""
    grads = np.asarray(grads, dtype=np.float64)
    return grads.mean(axis=_spatial_axes(grads))


def plus_plus_weights(grads: np.ndarray, acts: np.ndarray) -> np.ndarray:
    """Grad-CAM++ channel weights, N x K.

    With the score taken as S = exp(y), the 2nd and 3rd derivatives of S are exp(y) times
    the 2nd and 3rd powers of g = dy/dA (the network is piecewise linear in A), and the
    exp(y) factors cancel in
        alpha_ij^k = g_ij^2 / (2 g_ij^2 + sum_ab A_ab^k g_ij^3)
        w_k        = sum_ij alpha_ij^k ReLU(g_ij)
    A position whose denominator is 0 (zero gradient) gets alpha = 0. The common exp(y)
    factor left on ReLU(dS/dA) is dropped: it scales every weight alike and the map is
    normalised afterwards.
    """
    grads = np.asarray(grads, dtype=np.float64)
    acts = np.asarray(acts, dtype=np.float64)
    if grads.shape != acts.shape:
        raise ValueError(f"gradients {grads.shape} and activations {acts.shape} must have the same shape")
    axes = _spatial_axes(grads)
    g2 = grads**2
    g3 = g2 * grads
    denominator = 2.0 * g2 + acts.sum(axis=axes, keepdims=True) * g3
    alpha = np.divide(g2, denominator, out=np.zeros_like(g2), where=denominator != 0)
    return (alpha * np.maximum(grads, 0.0)).sum(axis=axes)


def weighted_activation_map(acts: np.ndarray, weights: np.ndarray, *, relu: bool = True) -> np.ndarray:
    """sum_k w_k A_k for each input (N x positions...), clipped at 0 unless relu=False."""
    acts = np.asarray(acts, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    _spatial_axes(acts)
    if weights.shape != (acts.shape[0], acts.shape[-1]):
        raise ValueError(f"weights must be N x K = {(acts.shape[0], acts.shape[-1])}, got {weights.shape}")
    # Broadcast the weights over the position axes.
    expanded = weights.reshape((acts.shape[0],) + (1,) * (acts.ndim - 2) + (acts.shape[-1],))
    summed = (acts * expanded).sum(axis=-1)
    return np.maximum(summed, 0.0) if relu else summed


def normalise_map(values: np.ndarray) -> np.ndarray:
    """Divide by the maximum so the map lies in [0, 1]; a map with no positive value becomes 0."""
    values = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    peak = float(values.max()) if values.size else 0.0
    if peak <= 0.0:
        return np.zeros_like(values)
    return np.clip(values / peak, 0.0, 1.0)


def resize_and_normalise(cam: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A 2-D map resized (bilinear) to size = (height, width), then scaled to [0, 1]."""
    cam = np.asarray(cam, dtype=np.float32)
    if cam.ndim != 2:
        raise ValueError(f"expected a 2-D map, got shape {cam.shape}")
    height, width = int(size[0]), int(size[1])
    # cv2 takes (width, height).
    resized = cv2.resize(cam, (width, height), interpolation=cv2.INTER_LINEAR)
    return normalise_map(resized)


def token_values(cam_row: np.ndarray, n_tokens: int, sequence_length: int = 0) -> np.ndarray:
    """The map at the first n_tokens positions, scaled to [0, 1].

    With Conv1D padding="same" after a TextVectorization of output_sequence_length L, the
    map has L positions and position i is token i. A shorter map (a pooling layer before
    the convolution) is stretched linearly to L positions first, an approximation.
    """
    cam_row = np.asarray(cam_row, dtype=np.float64)
    length = sequence_length or len(cam_row)
    if len(cam_row) != length and len(cam_row) > 1:
        source = np.linspace(0.0, 1.0, len(cam_row))
        cam_row = np.interp(np.linspace(0.0, 1.0, length), source, cam_row)
    elif len(cam_row) != length:
        cam_row = np.full(length, cam_row[0] if len(cam_row) else 0.0)
    return normalise_map(cam_row[:n_tokens])


WEIGHTINGS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "gradcam": lambda grads, acts: channel_weights(grads),
    "gradcam++": plus_plus_weights,
}


# --- the one forward+backward pass ------------------------------------------------------------


@dataclass(frozen=True)
class _Pass:
    activations: np.ndarray  # N x positions... x K
    gradients: np.ndarray  # d score / d activations, same shape
    probabilities: np.ndarray  # N x classes
    targets: np.ndarray  # N, the class each score was taken for


def _model_tensor(model: Any, inputs: Sequence[Any]) -> Any:
    return model.model_tensor(model.to_model_input(inputs))


LOGIT, PROBABILITY = "logit", "probability"
_PASSES: "weakref.WeakKeyDictionary[Any, dict[tuple[str, str], _GradientPass]]" = weakref.WeakKeyDictionary()
SCORES = {LOGIT: "the class score before softmax (the paper's choice)",
          PROBABILITY: "the class probability"}


def _gradient_pass(model: Any, layer: str, score: str) -> _GradientPass:
    """The pass for (model, layer, score), built once per loaded model: tracing a big model's
    graph takes seconds, so every explainer on the same model shares the traced function."""
    passes = _PASSES.setdefault(model, {})
    key = (layer, score)
    if key not in passes:
        passes[key] = _GradientPass(model, layer, score)
    return passes[key]


class _GradientPass:
    """The compiled forward+backward pass of one Grad-CAM setting (layer, score) on one model."""

    def __init__(self, model: Any, layer: str, score: str = LOGIT) -> None:
        import tensorflow as tf

        # The traced function keeps the Keras model and its IO, never the LoadedModel itself,
        # so the per-model cache (_PASSES, weakly keyed) lets a loaded model go.
        keras_model, io = model.keras_model, model.io
        kind = io.output_kind
        self.score = score
        score_path = None
        if score == LOGIT and kind in ("softmax", "sigmoid"):
            score_path = output_layer_path(keras_model)
            score_layer = resolve_layer_path(keras_model, score_path)[-1] if score_path else None
            if score_layer is None or not has_pre_activation(score_layer):
                self.score, score_path = PROBABILITY + " (the output layer's score before softmax is not readable)", None
        activation_fn = build_activation_model(keras_model, layer, score_layer_path=score_path)
        one_unit = kind in ("sigmoid", "binary-logit")
        use_logit = self.score == LOGIT

        def class_scores(raw: Any, received: Any) -> Any:
            """N x K scores the gradient is taken of."""
            if not use_logit:
                return io.probabilities(raw)
            logits = raw if received is None else pre_activation(score_layer, received)
            return tf.concat([-logits, logits], axis=-1) if one_unit else logits

        # No autograph: every branch here is on Python values (the model's structure), none on a
        # tensor, and converting the source was most of a fresh server's first Grad-CAM (issue 18).
        @tf.function(reduce_retracing=True, autograph=False)
        def run(tensor: Any, requested: Any) -> tuple[Any, Any, Any, Any]:
            with tf.GradientTape() as tape:
                acts, raw, *received = activation_fn(tensor, watch=tape.watch)
                probs = io.probabilities(raw)
                predicted = tf.argmax(probs, axis=-1, output_type=tf.int32)
                chosen = tf.where(requested >= 0, requested, predicted)
                scores = tf.gather(class_scores(raw, received[0] if received else None), chosen, axis=1, batch_dims=1)
            # Each input's score depends only on its own activations (inference mode), so the
            # gradient of the batch's scores holds every input's own gradient.
            grads = tape.gradient(scores, acts)
            if grads is None:
                raise ValueError("the model's output does not depend on the Grad-CAM layer; choose another layer")
            return acts, grads, probs, chosen

        self._run = run

    def __call__(self, model: Any, inputs: Sequence[Any], targets: np.ndarray) -> _Pass:
        """One pass for a chunk. targets[i] == -1 means "the class the model predicts"."""
        import tensorflow as tf

        tensor = _model_tensor(model, inputs)
        with model.lock:
            acts, grads, probs, chosen = self._run(tensor, tf.constant(targets, dtype=tf.int32))
        return _Pass(
            activations=np.asarray(acts, dtype=np.float64),
            gradients=np.asarray(grads, dtype=np.float64),
            probabilities=np.asarray(probs, dtype=np.float64),
            targets=np.asarray(chosen, dtype=np.int64),
        )


def _requested_targets(targets: Sequence[int] | None, n: int, n_classes: int) -> np.ndarray:
    if targets is None:
        return np.full(n, -1, dtype=np.int64)
    chosen = np.asarray([int(t) for t in targets], dtype=np.int64)
    if len(chosen) != n:
        raise ValueError(f"got {len(chosen)} targets for {n} inputs; give one target per input")
    if chosen.size and (chosen.min() < 0 or chosen.max() >= n_classes):
        raise ValueError(f"targets must be class indices from 0 to {n_classes - 1}, got {chosen.tolist()}")
    return chosen


def _values_for(model: Any, cam: np.ndarray, raw_input: Any) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """The explanation values for one input: image map at input size, or one value per token."""
    if model.modality is Modality.TEXT:
        tokens = tuple(model.tokenize(str(raw_input)))
        return token_values(cam, len(tokens), model.sequence_length), tokens
    return resize_and_normalise(cam, model.image_size), None


def _label(model: Any, target: int) -> str:
    classes = model.classes
    return str(classes[target]) if 0 <= target < len(classes) else str(target)


# --- explainers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class GradCAMParams(MethodParams):
    """Grad-CAM and Grad-CAM++ read one convolution layer; the rest is deterministic (no seed)."""

    layer: str | None = param(
        None, str, "Convolution layer", optional=True, shown=False,
        help="The path of the convolution layer whose maps are weighted, e.g. backbone/conv; "
             "by default the model card's choice, else the last convolution.",
    )
    score: str = param(
        LOGIT, str, "Score", choices=SCORES, shown=False,
        help="Which score's gradient weighs the maps: the class score before softmax (as in the paper "
             "and the keras.io recipe), or the class probability.",
    )


class _GradCAMBase(Explainer):
    modalities: ClassVar[frozenset[Modality]] = frozenset({Modality.IMAGE, Modality.TEXT})
    Params = GradCAMParams
    variant: ClassVar[str]

    def __init__(self, model: Any, layer: str | None = None, score: str = LOGIT) -> None:
        super().__init__(model, layer=layer, score=score)
        with model.lock:
            self.layer = find_last_conv_layer(
                model.keras_model, layer or model.info.gradcam_layer, modality=model.modality
            )
            self._pass = _gradient_pass(model, self.layer, self.settings.score)
        # Record the layer actually read, so the record reproduces it even if the card changes.
        self.settings = replace(self.settings, layer=self.layer)

    @classmethod
    def unavailable_reason(cls, model: Any) -> str | None:
        """Only for models with a convolution of the modality's kind (Conv2D images, Conv1D text)
        that Grad-CAM can read."""
        reason = super().unavailable_reason(model)
        if reason is not None:
            return reason
        chosen = model.info.gradcam_layer
        try:
            path = find_last_conv_layer(model.keras_model, chosen, modality=model.modality)
        except ValueError as exc:
            if chosen is None:  # the search found no convolution at all
                return f"{cls.title} needs a convolution layer, and this model has none. Try SHAP or LIME."
            return f"{cls.title} cannot use the layer the model card names: {exc}. Try SHAP or LIME."
        try:
            build_activation_model(model.keras_model, path)  # refuses e.g. subclassed models
        except ValueError as exc:
            return f"{cls.title} cannot read this model: {exc}. Try SHAP or LIME."
        return None

    def explain(
        self, inputs: Sequence[Any], targets: Sequence[int] | None = None, *, seed: int = 0
    ) -> list[Explanation]:
        """One forward+backward pass per chunk of CHUNK_SIZE inputs; deterministic (seed is recorded only)."""
        started = time.perf_counter()
        n = len(inputs)
        requested = _requested_targets(targets, n, len(self.model.classes))
        weighting = WEIGHTINGS[self.variant]
        rows: list[tuple[np.ndarray, int, float]] = []
        for start in range(0, n, CHUNK_SIZE):
            stop = min(start + CHUNK_SIZE, n)
            result = self._pass(self.model, inputs[start:stop], requested[start:stop])
            cams = weighted_activation_map(result.activations, weighting(result.gradients, result.activations))
            for i in range(stop - start):
                target = int(result.targets[i])
                rows.append((cams[i], target, float(result.probabilities[i, target])))
        elapsed = time.perf_counter() - started

        explanations = []
        for raw_input, (cam, target, probability) in zip(inputs, rows):
            values, tokens = _values_for(self.model, cam, raw_input)
            explanations.append(
                Explanation(
                    method=self.name,
                    modality=self.model.modality,
                    target=target,
                    target_label=_label(self.model, target),
                    values=values,
                    model_name=self.model.name,
                    model_version=self.model.version,
                    # The batch shares one pass, so each input is charged an equal share.
                    seconds=elapsed / max(n, 1),
                    params=self.params,
                    seed=seed,
                    tokens=tokens,
                    extras={
                        "variant": self.variant,
                        "score": self._pass.score,
                        "raw_max": float(cam.max()) if cam.size else 0.0,
                        "probability": probability,
                        "feature_map_shape": tuple(cam.shape),
                        "batch_seconds": elapsed,
                        "batch_size": n,
                    },
                )
            )
        return explanations


@register
class GradCAM(_GradCAMBase):
    name = "gradcam"
    title = "Grad-CAM"
    variant = "gradcam"
    order = 10  # one pass per batch: the fastest method, first


@register
class GradCAMPlusPlus(_GradCAMBase):
    name = "gradcam++"
    title = "Grad-CAM++"
    variant = "gradcam++"
    variant_of = "gradcam"
    order = 11


def gradcam_parts(
    model: Any, image: Any, target: int | None = None, *, layer: str | None = None, variant: str = "gradcam",
    score: str = LOGIT,
) -> dict[str, Any]:
    """Every intermediate of Grad-CAM for one input, for teaching.

    Keys: layer, target, target_label, probabilities (K classes), activations and
    gradients (positions... x channels), weights (channels), weighted_sum (before ReLU),
    cam (after ReLU), values (the explanation's values), raw_max, tokens (text only), score
    (which score's gradient was taken). `image` may also be a text for a text model.
    """
    if variant not in WEIGHTINGS:
        raise ValueError(f"unknown Grad-CAM variant {variant!r}; choose one of {', '.join(WEIGHTINGS)}")
    with model.lock:
        path = find_last_conv_layer(model.keras_model, layer or model.info.gradcam_layer, modality=model.modality)
        gradient_pass = _gradient_pass(model, path, score)
    requested = _requested_targets(None if target is None else [target], 1, len(model.classes))
    result = gradient_pass(model, [image], requested)
    weights = WEIGHTINGS[variant](result.gradients, result.activations)
    weighted_sum = weighted_activation_map(result.activations, weights, relu=False)[0]
    cam = np.maximum(weighted_sum, 0.0)
    values, tokens = _values_for(model, cam, image)
    chosen = int(result.targets[0])
    return {
        "layer": path,
        "variant": variant,
        "target": chosen,
        "target_label": _label(model, chosen),
        "probabilities": result.probabilities[0],
        "activations": result.activations[0],
        "gradients": result.gradients[0],
        "weights": weights[0],
        "weighted_sum": weighted_sum,
        "cam": cam,
        "values": values,
        "raw_max": float(cam.max()) if cam.size else 0.0,
        "tokens": tokens,
        "score": gradient_pass.score,
    }
