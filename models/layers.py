"""Find the convolution layer Grad-CAM looks at, and expose its activations next to the predictions.

A layer is named by a *path*: layer names joined by "/", one name per level of nesting.
"conv" is a top-level layer; "base/Conv_1" is the layer "Conv_1" inside the sub-model
"base" (a Keras applications base or our own `backbone`) that the outer model calls.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import keras

from foundation.types import Modality

# Grad-CAM needs a spatial feature map: the output of a 2-D convolution for images
# (N x h x w x K) or of a 1-D convolution for text (N x L x K). The separable and
# depthwise variants produce the same kind of map, so they count as well.
_IMAGE_CONVS: tuple[type, ...] = (
    keras.layers.Conv2D,
    keras.layers.SeparableConv2D,
    keras.layers.DepthwiseConv2D,
)
_TEXT_CONVS: tuple[type, ...] = (
    keras.layers.Conv1D,
    keras.layers.SeparableConv1D,
    keras.layers.DepthwiseConv1D,
)
# Rank of the feature map (batch included) each modality needs.
_MAP_RANK = {Modality.IMAGE: 4, Modality.TEXT: 3}

ActivationFn = Callable[..., tuple[Any, Any]]


def conv_types(modality: Modality | None = None) -> tuple[type, ...]:
    """The layer classes that count as "a convolution" for the modality (both when None)."""
    if modality is None:
        return _IMAGE_CONVS + _TEXT_CONVS
    return _IMAGE_CONVS if Modality(modality) is Modality.IMAGE else _TEXT_CONVS


def _is_submodel(layer: Any) -> bool:
    return isinstance(layer, keras.Model)


def _walk(model: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every layer with its path, nested models expanded in place (depth first, in model order)."""
    found = []
    for layer in model.layers:
        path = prefix + (layer.name,)
        found.append((path, layer))
        if _is_submodel(layer):
            found.extend(_walk(layer, path))
    return found


def find_last_conv_layer(
    model: Any, layer_path: str | None = None, *, modality: Modality | None = None
) -> str:
    """Path of the layer Grad-CAM should use.

    With `layer_path` (e.g. a manifest's "gradcam_layer") the path is validated and
    returned; otherwise the last convolution of the modality's kind is found, searching
    nested models. Raises ValueError with a message saying what is wrong.
    """
    if layer_path is not None:
        validate_layer_path(model, layer_path, modality=modality)
        return layer_path
    wanted = conv_types(modality)
    convs = [path for path, layer in _walk(model) if isinstance(layer, wanted)]
    if not convs:
        kind = {None: "Conv1D or Conv2D", Modality.IMAGE: "Conv2D", Modality.TEXT: "Conv1D"}[
            None if modality is None else Modality(modality)
        ]
        raise ValueError(
            f"model {model.name!r} has no {kind} layer, so Grad-CAM cannot be computed for it"
        )
    return "/".join(convs[-1])


def resolve_layer_path(model: Any, layer_path: str) -> list[Any]:
    """The chain of layers a path names: the sub-models it passes through, then the layer."""
    if not isinstance(layer_path, str) or not layer_path.strip("/"):
        raise ValueError(f"Grad-CAM layer path must be a non-empty string like 'conv' or 'base/conv', got {layer_path!r}")
    chain: list[Any] = []
    container = model
    names = layer_path.strip("/").split("/")
    for depth, name in enumerate(names):
        if depth > 0 and not _is_submodel(container):
            raise ValueError(
                f"Grad-CAM layer path {layer_path!r}: {container.name!r} is a "
                f"{type(container).__name__} layer, not a sub-model, so it has no layer {name!r}"
            )
        children = {layer.name: layer for layer in container.layers}
        if name not in children:
            where = "the model" if depth == 0 else f"sub-model {'/'.join(names[:depth])!r}"
            listing = ", ".join(children) or "(none)"
            raise ValueError(
                f"Grad-CAM layer path {layer_path!r}: {where} has no layer {name!r}; its layers are: {listing}"
            )
        container = children[name]
        chain.append(container)
    return chain


def validate_layer_path(model: Any, layer_path: str, *, modality: Modality | None = None) -> None:
    """Raise ValueError unless the path names a layer whose output is a spatial feature map."""
    target = resolve_layer_path(model, layer_path)[-1]
    try:
        rank = len(target.output.shape)
    except (AttributeError, ValueError) as exc:  # never called, or called more than once
        raise ValueError(f"Grad-CAM layer {layer_path!r} has no single output tensor ({exc})") from exc
    ranks = set(_MAP_RANK.values()) if modality is None else {_MAP_RANK[Modality(modality)]}
    if rank not in ranks:
        expected = " or ".join(str(r) for r in sorted(ranks))
        raise ValueError(
            f"Grad-CAM layer {layer_path!r} outputs a rank-{rank} tensor; a feature map of rank "
            f"{expected} (batch, positions..., channels) is needed, e.g. a convolution's output"
        )


# --- running a model while capturing one layer's output ------------------------------


def _graph_of(model: Any) -> Any:
    """The functional graph a model runs: Keras 3 Sequential keeps one in `_functional`."""
    graph = getattr(model, "_functional", None) if isinstance(model, keras.Sequential) else model
    if graph is None or not hasattr(graph, "_run_through_graph"):
        raise ValueError(
            f"model {model.name!r} is not a built functional or Sequential model "
            "(subclassed models are not supported by Grad-CAM; build it with keras.Input first)"
        )
    return graph


def _inference(op: Any) -> Callable[..., Any]:
    """Call an operation the way Functional.call does with training=False."""

    def call(*args: Any, **kwargs: Any) -> Any:
        if "training" in getattr(op, "_call_context_args", ()):
            kwargs["training"] = False
        return op(*args, **kwargs)

    return call


@dataclass(frozen=True)
class _Capture:
    """One tensor to record while the graph runs: the output (or input) of the last layer of `chain`."""

    chain: tuple[Any, ...]
    what: str = "output"  # or "input": what the layer receives
    watch: bool = True  # watch it on the tape (the Grad-CAM feature maps)

    def rest(self) -> _Capture:
        return _Capture(self.chain[1:], self.what, self.watch)


def _run_capturing(model: Any, captures: Sequence[_Capture], watch: Callable[[Any], None] | None) -> Callable[[Any], tuple[list[Any], Any]]:
    """f(x) -> ([one tensor per capture], output of model), re-running model's graph on x.

    The graph is executed node by node (what Functional.call does), with the node that
    calls a capture's first layer replaced: by a call that records that layer's output (or
    input) when it is the target, or by the same capture one level down when it is a
    sub-model. So any outer graph works, linear or not, and every layer's output still
    feeds the layers after it exactly as in the original model.
    """
    graph = _graph_of(model)
    heads = {id(c.chain[0]) for c in captures}

    def run(x: Any) -> tuple[list[Any], Any]:
        found: dict[int, list[Any]] = {i: [] for i in range(len(captures))}

        def intercept_for(op: Any) -> Callable[..., Any]:
            mine = [i for i, c in enumerate(captures) if c.chain[0] is op]
            nested = [i for i in mine if len(captures[i].chain) > 1]
            here = [i for i in mine if len(captures[i].chain) == 1]

            def intercept(*args: Any, **kwargs: Any) -> Any:
                for i in here:
                    if captures[i].what == "input":
                        found[i].append(args[0])
                if nested:
                    inner = _run_capturing(op, [captures[i].rest() for i in nested], watch)
                    recorded, output = inner(args[0])
                    for i, tensor in zip(nested, recorded):
                        found[i].append(tensor)
                else:
                    output = _inference(op)(*args, **kwargs)
                for i in here:
                    if captures[i].what == "output":
                        if watch is not None and captures[i].watch:
                            # Watch here, before anything downstream runs, so the gradient exists
                            # even when the layers around it are frozen (trainable=False).
                            watch(output)
                        found[i].append(output)
                return output

            return intercept

        def operation_fn(op: Any) -> Callable[..., Any]:
            return intercept_for(op) if id(op) in heads else _inference(op)

        predictions = graph._run_through_graph([x], operation_fn=operation_fn)
        if isinstance(predictions, (list, tuple)):
            if len(predictions) != 1:
                raise ValueError(f"model {model.name!r} has {len(predictions)} outputs; Grad-CAM needs one")
            predictions = predictions[0]
        for i, tensors in found.items():
            if len(tensors) != 1:
                raise ValueError(
                    f"layer {captures[i].chain[-1].name!r} runs {len(tensors)} times in model {model.name!r}; "
                    "Grad-CAM needs a layer that runs exactly once"
                )
        return [found[i][0] for i in range(len(captures))], predictions

    return run


def build_activation_model(model: Any, layer_path: str, *, score_layer_path: str | None = None) -> ActivationFn:
    """A callable `f(batch, watch=None) -> (activations, predictions)` for use inside a tape;
    with `score_layer_path`, `f` returns (activations, predictions, what that layer receives),
    from which the pre-activation score of an output layer is computed (`pre_activation`).

    `batch` is what the model takes (float images, token ids or an N x 1 string tensor). Pass
    `watch=tape.watch` so the activations are watched even in a frozen model. Works for
    functional and Sequential models, with the layers at the top level or inside nested
    sub-models at any depth, and outer graphs that are not a simple chain.
    """
    captures = [_Capture(tuple(resolve_layer_path(model, layer_path)))]
    if score_layer_path is not None:
        captures.append(_Capture(tuple(resolve_layer_path(model, score_layer_path)), "input", watch=False))
    _graph_of(model)  # fail now, not at the first call, for unsupported models

    def activation_model(batch: Any, watch: Callable[[Any], None] | None = None) -> tuple[Any, ...]:
        recorded, predictions = _run_capturing(model, captures, watch)(batch)
        return (recorded[0], predictions, *recorded[1:])

    return activation_model


# --- the score before the output activation -------------------------------------------


def output_layer_path(model: Any) -> str | None:
    """Path of the layer that produces the model's output (inside nested models), or None."""
    path: list[str] = []
    container = model
    for _ in range(32):  # nesting is shallow; the bound only guards against cycles
        outputs = getattr(container, "outputs", None) or []
        if len(outputs) != 1:
            return None
        history = getattr(outputs[0], "_keras_history", None)
        layer = getattr(history, "operation", None) if history else None
        if layer is None or not any(layer is child for child in getattr(container, "layers", [])):
            return None
        path.append(layer.name)
        if not _is_submodel(layer):
            return "/".join(path)
        container = layer
    return None


def has_pre_activation(layer: Any) -> bool:
    """Whether `pre_activation` knows the layer (a Dense, a Softmax or an Activation layer)."""
    return isinstance(layer, (keras.layers.Dense, keras.layers.Softmax, keras.layers.Activation))


def pre_activation(layer: Any, received: Any) -> Any | None:
    """The output layer's score before its softmax/sigmoid, from what it receives; None when
    the layer is not one whose pre-activation the workbench knows (a Dense, a Softmax or an
    Activation layer)."""
    from keras import ops

    if isinstance(layer, keras.layers.Dense):
        score = ops.matmul(received, layer.kernel)
        return score + layer.bias if layer.use_bias else score
    if isinstance(layer, (keras.layers.Softmax, keras.layers.Activation)):
        return received
    return None
