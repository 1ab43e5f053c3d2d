"""Shared plumbing for the perturbation methods (SHAP, LIME): batched forward passes,
target choice and token spans. Images are brought to the model by the model itself
(`LoadedModel.prepare_images`, then `LoadedModel.image_tensor`), never here.

Perturbation methods evaluate the model on hundreds or thousands of variants of one
input. The fixed cost of a `keras.Model.predict` call dwarfs the model itself at that
scale, so every variant goes through `LoadedModel.forward` (a compiled tf.function) in
batches of hundreds.
"""
from __future__ import annotations

import contextlib
import re
import weakref
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from foundation.tokens import tokenize
from foundation.types import Modality

if TYPE_CHECKING:  # pragma: no cover
    from models.loaded import LoadedModel

# Variants per forward call: large enough that the per-call overhead vanishes. For 64x64
# images on 2 cores, 256 to 500 per call measured fastest (1,000 was ~1.7x slower: the
# 50 MB float batch falls out of cache); strings are small, so text takes 1,000.
IMAGE_BATCH_SIZE = 256
TEXT_BATCH_SIZE = 1000
DEFAULT_BATCH_SIZE = IMAGE_BATCH_SIZE
# Real-size models: the batch is sized from the model's activation memory instead, so that
# scoring on Keras (a model LiteRT refused, or while its conversion runs) stays well under
# 2 GB resident. A forward pass keeps a few layers' outputs alive at once; ACTIVATION_FACTOR
# times the largest layer output (plus the input) per image is the estimate. MobileNetV2 at
# 224: largest output 112 x 112 x 96 floats = 4.8 MB, so 20 MB per image and batches of 33
# (ResNet50: 48); the 64 x 64 sample models (2.1 MB per image) keep 256.
ACTIVATION_BUDGET_BYTES = 640 * 2**20
ACTIVATION_FACTOR = 4
MIN_IMAGE_BATCH_SIZE = 8

_NON_WHITESPACE = re.compile(r"\S+")


# --- inputs -------------------------------------------------------------------------------


def prepare_texts(texts: Any) -> np.ndarray:
    """Strings (list, tuple or array of any shape) -> the N x 1 object array `forward` expects."""
    if isinstance(texts, str):
        texts = [texts]
    return np.asarray([str(t) for t in np.asarray(texts, dtype=object).ravel()], dtype=object).reshape(-1, 1)


# --- forward passes -----------------------------------------------------------------------


def default_batch_size(model: "LoadedModel") -> int:
    """Perturbed inputs per model call: TEXT_BATCH_SIZE for text; for images, as many as fit
    ACTIVATION_BUDGET_BYTES by `activation_bytes_per_image`, between MIN_IMAGE_BATCH_SIZE and
    IMAGE_BATCH_SIZE."""
    if model.modality is Modality.TEXT:
        return TEXT_BATCH_SIZE
    return image_batch_size(activation_bytes_per_image(model))


def image_batch_size(bytes_per_image: int, budget: int = ACTIVATION_BUDGET_BYTES) -> int:
    return int(min(IMAGE_BATCH_SIZE, max(MIN_IMAGE_BATCH_SIZE, budget // max(1, int(bytes_per_image)))))


_ACTIVATION_BYTES: "weakref.WeakKeyDictionary[Any, int]" = weakref.WeakKeyDictionary()


def activation_bytes_per_image(model: "LoadedModel") -> int:
    """Estimated float32 bytes one image keeps alive in a forward pass: ACTIVATION_FACTOR x the
    largest layer output (nested models looked into) + the input. Computed once per loaded model."""
    try:
        return _ACTIVATION_BYTES[model]
    except (KeyError, TypeError):
        pass
    height, width = model.image_size
    input_floats = height * width * 3
    largest = _largest_output(model.keras_model)
    if largest is None:  # shapes unknown (a subclassed model): assume a 32-channel full-size layer
        largest = height * width * 32
    estimate = 4 * (ACTIVATION_FACTOR * max(largest, input_floats) + input_floats)
    with contextlib.suppress(TypeError):
        _ACTIVATION_BYTES[model] = estimate
    return estimate


def _largest_output(keras_model: Any) -> int | None:
    """The most floats any layer (of the model or its nested models) outputs per input, or None."""
    largest: int | None = None
    for layer in getattr(keras_model, "layers", None) or []:
        sizes = [_largest_output(layer)] if getattr(layer, "layers", None) else []
        try:
            outputs = layer.output
        except (AttributeError, ValueError):  # a layer called more than once, or never built
            outputs = None
        for tensor in outputs if isinstance(outputs, (list, tuple)) else [outputs]:
            shape = getattr(tensor, "shape", None)
            if shape is not None and all(d is not None for d in tuple(shape)[1:]):
                sizes.append(int(np.prod(tuple(shape)[1:], dtype=np.int64)))
        for size in sizes:
            if size is not None and (largest is None or size > largest):
                largest = size
    return largest


def batched_probabilities(
    model: "LoadedModel", prepared_inputs: np.ndarray, batch_size: int | None = None
) -> np.ndarray:
    """Class probabilities (N x K, float32) for an already prepared batch, in chunks of
    batch_size (default: default_batch_size(model)).

    Image models are scored by `models.runtime.scorer`: the model converted to LiteRT once
    (checked against Keras within models.runtime.TOLERANCE), Keras until then or when the
    conversion is refused or turned off. Predictions shown to users never come through here.
    """
    from models.runtime import scorer

    batch_size = default_batch_size(model) if batch_size is None else int(batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    n = len(prepared_inputs)
    if n == 0:
        return np.zeros((0, len(model.classes)), dtype=np.float32)
    forward = scorer(model) if model.modality is Modality.IMAGE else model.forward
    chunks = [forward(prepared_inputs[start : start + batch_size]) for start in range(0, n, batch_size)]
    return np.concatenate(chunks, axis=0)


def forward_fn(model: "LoadedModel", batch_size: int | None = None) -> Callable[[Any], np.ndarray]:
    """A numpy function for shap and lime: raw variants in, probabilities (N x K) out.

    Image models take float or uint8 images in 0..255 at the model's input size, N x H x W x 3
    (or one H x W x 3 image); text models take a string or a list/array of strings.
    """
    if model.modality is Modality.TEXT:

        def predict_texts(texts: Any) -> np.ndarray:
            return batched_probabilities(model, prepare_texts(texts), batch_size)

        return predict_texts

    def predict_images(images: Any) -> np.ndarray:
        # The variants are model-sized: the model's own image_tensor makes the float batch.
        return batched_probabilities(model, model.image_tensor(images), batch_size)

    return predict_images


# --- targets ------------------------------------------------------------------------------


def choose_targets(targets: Sequence[int] | None, probabilities: np.ndarray) -> list[int]:
    """The class to explain for each input: the requested one, or the predicted one when None."""
    n, n_classes = probabilities.shape
    if targets is None:
        return [int(i) for i in np.argmax(probabilities, axis=1)]
    chosen = [int(t) for t in targets]
    if len(chosen) != n:
        raise ValueError(f"got {len(chosen)} targets for {n} inputs; give one target per input")
    for target in chosen:
        if not 0 <= target < n_classes:
            raise ValueError(f"targets must be class indices from 0 to {n_classes - 1}, got {target}")
    return chosen


def class_label(model: "LoadedModel", target: int) -> str:
    classes = model.classes
    return str(classes[target]) if 0 <= target < len(classes) else str(target)


# --- text ---------------------------------------------------------------------------------


def token_spans(text: str, limit: int = 0) -> list[tuple[int, int, str]]:
    """(start, end, token) for each token the model reads, with offsets into the ORIGINAL text.

    The model lowercases, deletes punctuation and splits on whitespace, so a token is a
    whitespace-delimited run of the original text that keeps at least one character after
    punctuation removal ("<b>html</b>" is one token, "bhtmlb"; a lone "--" is none).
    `limit` > 0 keeps only the first `limit` tokens (the model's sequence length).
    """
    spans: list[tuple[int, int, str]] = []
    for match in _NON_WHITESPACE.finditer(text):
        words = tokenize(match.group())
        if not words:
            continue
        # Lowercasing never creates whitespace (checked over all of Unicode), so a run is one token.
        spans.append((match.start(), match.end(), "".join(words)))
        if limit and len(spans) == limit:
            break
    return spans


def model_token_spans(model: "LoadedModel", text: str) -> list[tuple[int, int, str]]:
    """token_spans for this model, checked against `model.tokenize` so the two can never drift apart."""
    spans = token_spans(text, model.sequence_length)
    expected = model.tokenize(text)
    if [token for _, _, token in spans] != list(expected):
        raise ValueError("token offsets do not match the model's tokenizer for this text")
    return spans
