"""Penultimate-layer features of a model: the vector its softmax head reads.

The review queue trains fresh heads on these features (see `labels.queue`), so the base of
the model is run exactly once per dataset split. The feature layer is found generically:
the input of the model's last `Dense` layer (for the sample models that is the pooled
"features" output; the dropout in between is the identity at inference). Where that Dense
sits inside a nested sub-model (the keras.io "text classification from scratch" recipe wraps
its trained model in an outer one that adds the TextVectorization), the graph is re-run with
the sub-model's call replaced by one that records what the Dense receives, so the features
are still the penultimate layer's; the layer is named by its path ("model/dense_1"). A model
without any Dense layer falls back to the log of its output probabilities, which a fresh
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


def _is_submodel(layer: Any) -> bool:
    import keras

    return isinstance(layer, keras.Model)


def _dense_chains(model: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every Dense layer as the chain of layers leading to it (sub-models first), in model order."""
    import keras

    chains: list[tuple[Any, ...]] = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            chains.append(prefix + (layer,))
        elif _is_submodel(layer):
            chains.extend(_dense_chains(layer, prefix + (layer,)))
    return chains


def _last_dense_chain(keras_model: Any) -> tuple[Any, ...] | None:
    chains = _dense_chains(keras_model)
    return chains[-1] if chains else None


def _feature_tensor_of(dense: Any) -> tuple[Any, str] | None:
    """The tensor a Dense layer reads (past any dropout) in its own graph, and its producer's name."""
    try:
        tensor = dense.input
    except (AttributeError, ValueError):  # a layer called several times, or never
        return None
    layer = _producer(tensor)
    while layer is not None and type(layer).__name__ in _INFERENCE_IDENTITY:
        tensor = layer.input
        layer = _producer(tensor)
    return tensor, (layer.name if layer is not None else dense.name + ":input")


def _feature_tensor(keras_model: Any) -> tuple[Any, str] | None:
    """The tensor the last top-level Dense layer reads (past any dropout), and its layer name."""
    import keras

    dense = [layer for layer in keras_model.layers if isinstance(layer, keras.layers.Dense)]
    return _feature_tensor_of(dense[-1]) if dense else None


def feature_layer_name(keras_model: Any) -> str | None:
    """Path of the layer whose output feeds the last Dense layer ("inner/dense" when nested), or None."""
    chain = _last_dense_chain(keras_model)
    if chain is None:
        return None
    found = _feature_tensor_of(chain[-1])
    if found is None:
        return None
    return "/".join([layer.name for layer in chain[:-1]] + [found[1]])


# --- a last Dense inside a sub-model: re-run the graph, recording what the Dense receives ---


def _graph_of(model: Any) -> Any:
    """The functional graph a model runs (Keras 3 Sequential keeps one in `_functional`)."""
    import keras

    graph = getattr(model, "_functional", None) if isinstance(model, keras.Sequential) else model
    if graph is None or not hasattr(graph, "_run_through_graph"):
        raise ValueError(f"model {model.name!r} is not a built functional or Sequential model")
    return graph


def _inference(op: Any) -> Any:
    """Call an operation the way Functional.call does with training=False."""

    def call(*args: Any, **kwargs: Any) -> Any:
        if "training" in getattr(op, "_call_context_args", ()):
            kwargs["training"] = False
        return op(*args, **kwargs)

    return call


def _run_recording_input(model: Any, chain: tuple[Any, ...], x: Any, captured: list[Any]) -> Any:
    """model(x) at inference, appending to `captured` the input chain[-1] receives (chain[:-1]
    are the sub-models it is nested in, outermost first). Nothing about the model is changed."""
    head, rest = chain[0], chain[1:]

    def intercept(*args: Any, **kwargs: Any) -> Any:
        if rest:
            return _run_recording_input(head, rest, args[0], captured)
        captured.append(args[0])
        return _inference(head)(*args, **kwargs)

    outputs = _graph_of(model)._run_through_graph(
        [x], operation_fn=lambda op: intercept if op is head else _inference(op))
    if isinstance(outputs, (list, tuple)):
        if len(outputs) != 1:
            raise ValueError(f"model {model.name!r} has {len(outputs)} outputs")
        outputs = outputs[0]
    return outputs


def _nested_feature_fn(keras_model: Any, chain: tuple[Any, ...]) -> Any:
    """f(x) -> (what the nested last Dense receives, the model's output), run eagerly."""
    _graph_of(keras_model)  # fail now (subclassed models) rather than at the first batch
    for layer in chain[:-1]:
        _graph_of(layer)

    def run(x: Any, training: bool = False) -> tuple[Any, Any]:
        captured: list[Any] = []
        output = _run_recording_input(keras_model, chain, x, captured)
        if len(captured) != 1:
            raise ValueError(f"layer {chain[-1].name!r} runs {len(captured)} times in model {keras_model.name!r}")
        return captured[0], output

    return run


def _feature_model(keras_model: Any) -> tuple[Any, str]:
    """A callable returning (features, raw output) in one pass, and the feature layer's name."""
    import keras

    chain = _last_dense_chain(keras_model)
    name = feature_layer_name(keras_model) if chain is not None else None
    if chain is not None and name is not None:
        try:
            if len(chain) == 1:
                found = _feature_tensor(keras_model)
                if found is not None:
                    return keras.Model(keras_model.inputs, [found[0], keras_model.outputs[0]]), name
            else:
                return _nested_feature_fn(keras_model, chain), name
        except (AttributeError, ValueError, TypeError):
            pass  # e.g. a subclassed model: use the fallback below
    return _log_probability_model(keras_model), LOG_PROBABILITIES


def extract(model: Any, inputs: Sequence[Any], batch_size: int = BATCH_SIZE) -> ModelOutputs:
    """Run `model` (a LoadedModel) once over `inputs`; keep its features and probabilities."""
    n_classes = len(model.classes)
    if len(inputs) == 0:
        return ModelOutputs(np.zeros((0, 0), np.float32), np.zeros((0, n_classes), np.float32), "")
    with model.lock:
        both, layer = _feature_model(model.keras_model)
        try:
            return _run(model, both, layer, inputs, batch_size)
        except ValueError:
            if layer == LOG_PROBABILITIES:
                raise
            # e.g. the sub-model holding the last Dense runs twice per input: no single
            # penultimate layer, so the probabilities it is (the fallback) are used.
            both, layer = _log_probability_model(model.keras_model), LOG_PROBABILITIES
            return _run(model, both, layer, inputs, batch_size)


def _log_probability_model(keras_model: Any) -> Any:
    import keras

    output = keras_model.outputs[0]
    return keras.Model(keras_model.inputs, [output, output])


def _run(model: Any, both: Any, layer: str, inputs: Sequence[Any], batch_size: int) -> ModelOutputs:
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
