"""Penultimate-layer features of a model: the vector its softmax head reads.

The review queue trains fresh heads on these features (see `labels.queue`), so the base of
the model is run exactly once per dataset split. The feature layer is found generically:
the input of the model's last top-level `Dense` layer (for the sample models that is the
pooled "features" output; the dropout in between is the identity at inference). A model
without such a layer falls back to the log of its output probabilities, which a fresh
softmax head can only recalibrate — cheaper and weaker, but it still ranks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np


BATCH_SIZE = 256
# Probabilities are clipped before the log so a hard 0 does not become -inf.
_LOG_FLOOR = 1e-7
LOG_PROBABILITIES = "log-probabilities"


@dataclass(frozen=True)
class ModelOutputs:
    """Features (N x D) and the model's own probabilities (N x K) for the same inputs."""

    features: np.ndarray
    probabilities: np.ndarray
    feature_layer: str  # the layer whose output the features are, or "log-probabilities"


# Layers that are the identity at inference: the features are read from before them.
_INFERENCE_IDENTITY = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
                       "GaussianDropout", "GaussianNoise", "AlphaDropout", "ActivityRegularization")


def _producer(tensor: Any) -> Any | None:
    history = getattr(tensor, "_keras_history", None)
    return history.operation if history is not None else None


def _feature_tensor(keras_model: Any) -> tuple[Any, str] | None:
    """The tensor the last top-level Dense layer reads (past any dropout), and its layer name."""
    import keras

    dense = [layer for layer in keras_model.layers if isinstance(layer, keras.layers.Dense)]
    if not dense:
        return None
    try:
        tensor = dense[-1].input
    except (AttributeError, ValueError):  # a layer called several times, or never
        return None
    layer = _producer(tensor)
    while layer is not None and type(layer).__name__ in _INFERENCE_IDENTITY:
        tensor = layer.input
        layer = _producer(tensor)
    return tensor, (layer.name if layer is not None else dense[-1].name + ":input")


def feature_layer_name(keras_model: Any) -> str | None:
    """Name of the layer whose output feeds the last Dense layer, or None if there is none."""
    found = _feature_tensor(keras_model)
    return found[1] if found else None


def _feature_model(keras_model: Any) -> tuple[Any, str]:
    """A model returning [features, probabilities] in one pass, and the feature layer's name."""
    import keras

    found = _feature_tensor(keras_model)
    if found is not None:
        try:
            return keras.Model(keras_model.inputs, [found[0], keras_model.outputs[0]]), found[1]
        except (AttributeError, ValueError, TypeError):
            pass  # e.g. a subclassed model: use the fallback below
    output = keras_model.outputs[0]
    return keras.Model(keras_model.inputs, [output, output]), LOG_PROBABILITIES


def extract(model: Any, inputs: Sequence[Any], batch_size: int = BATCH_SIZE) -> ModelOutputs:
    """Run `model` (a LoadedModel) once over `inputs`; keep its features and probabilities."""
    n_classes = len(model.classes)
    if len(inputs) == 0:
        return ModelOutputs(np.zeros((0, 0), np.float32), np.zeros((0, n_classes), np.float32), "")
    with model.lock:
        both, layer = _feature_model(model.keras_model)
        features, probabilities = [], []
        for start in range(0, len(inputs), batch_size):
            batch = model.to_model_input(inputs[start : start + batch_size])
            feats, raw = both(model.model_tensor(batch), training=False)
            probs = model.io.probabilities(np.asarray(raw, dtype=np.float32))
            if layer == LOG_PROBABILITIES:
                feats = probs
            features.append(np.asarray(feats, dtype=np.float32).reshape(len(batch), -1))
            probabilities.append(np.asarray(probs, dtype=np.float32))
    feats = np.concatenate(features)
    probs = np.concatenate(probabilities)
    if layer == LOG_PROBABILITIES:
        feats = np.log(np.clip(feats, _LOG_FLOOR, 1.0))
    return ModelOutputs(feats, probs, layer)
