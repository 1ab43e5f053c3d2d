"""Shared plumbing for the perturbation methods (SHAP, LIME): batched forward passes,
target choice and token spans. Images are brought to the model by the model itself
(`LoadedModel.prepare_images`, then `LoadedModel.image_tensor`), never here.

Perturbation methods evaluate the model on hundreds or thousands of variants of one
input. The fixed cost of a `keras.Model.predict` call dwarfs the model itself at that
scale, so every variant goes through `LoadedModel.forward` (a compiled tf.function) in
batches of hundreds.
"""
from __future__ import annotations

import re
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

_NON_WHITESPACE = re.compile(r"\S+")


# --- inputs -------------------------------------------------------------------------------


def prepare_texts(texts: Any) -> np.ndarray:
    """Strings (list, tuple or array of any shape) -> the N x 1 object array `forward` expects."""
    if isinstance(texts, str):
        texts = [texts]
    return np.asarray([str(t) for t in np.asarray(texts, dtype=object).ravel()], dtype=object).reshape(-1, 1)


# --- forward passes -----------------------------------------------------------------------


def default_batch_size(model: "LoadedModel") -> int:
    return TEXT_BATCH_SIZE if model.modality is Modality.TEXT else IMAGE_BATCH_SIZE


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
