"""Fine-tuning that corrects the model's reason, not only its label (issue 17).

"Right for the Right Reasons" (Ross, Hughes & Doshi-Velez, 2017): next to the usual
cross-entropy, penalise the model's input gradients inside regions a person marked as "not a
reason", so the model stops relying on them:

    loss = CE(y, p(x)) + λ · Σ_marked ( mask · ∂Σ_k log p_k(x) / ∂x )²  / batch size

Images: x is the image scaled to 0..1 (whatever preprocessing the model expects, the gradient is
taken per unit of the 0..1 image, so λ means the same for a model that rescales inside and one
that takes 0..1 or caffe inputs); the mask is a bool H x W per example. Texts: the gradient is
taken with respect to the outputs of the model's (first) Embedding layer at the token positions
of the marked words (indices into ``text.split()``), its square summed over the embedding dimension.

Optional counterfactual augmentation adds, for every marked example, a copy with the marked
region painted in the image's border colour (the median of its outermost pixels) or, for texts,
with the marked words removed, under the same label.

Only marked rows pay for the second derivative: each batch runs the cross-entropy on all its rows
and the input-gradient penalty on its marked rows only, so the penalty costs little when few
examples are marked. Works on any Keras model `models.model_io.ModelIO` can feed (Rescaling inside
the model, 0..1 or caffe inputs outside it, softmax, logits or one-unit heads, string or token-id
text models), not only the sample models.

    from models.reason_training import ReasonConfig, reason_fine_tune
    history = reason_fine_tune(keras_model, images, labels, masks, io, ReasonConfig(penalty=1.0))
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

import numpy as np

from foundation.errors import WorkbenchError
from foundation.types import Modality
from models.model_io import ModelIO


@dataclass(frozen=True)
class ReasonConfig:
    """The recipe of a reason-corrected fine-tuning; recorded in the new version's manifest."""

    # Defaults chosen on shapes-shortcut with 50 marks (see the README's simulate-reason table):
    # λ 0.3 with clipnorm 1 and the marked rows seen 3 times per epoch gave the best no-cue
    # accuracy with clean test accuracy within a point; λ 1 without clipping lost 1.2 points.
    penalty: float = 0.3  # λ, the weight of the input-gradient penalty
    epochs: int = 4
    learning_rate: float = 1e-4
    batch_size: int = 64
    seed: int = 0
    counterfactual: bool = True  # add a copy of each marked example with the marked part removed
    # Each marked example (and its counterfactual copy) is seen this many times per epoch.
    mark_repeats: int = 3
    # Each counterfactual copy alone is seen this many times per epoch (on top of mark_repeats):
    # the copies are the few examples that show the class without the shortcut.
    counterfactual_repeats: int = 1
    # Clip each update's gradient norm (Adam's clipnorm): the penalty's second-order gradients spike.
    clipnorm: float | None = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"method": "right-for-the-right-reasons (Ross et al. 2017)", **asdict(self)}


def counterfactual_image(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A copy of `image` (H x W x C) with `mask` painted in the median colour of the image border.

    The border stands for "background" without knowing the dataset: the marked part is replaced by
    what surrounds the content, not by a colour the model never saw."""
    out = np.array(image, copy=True)
    border = np.concatenate([out[0], out[-1], out[:, 0], out[:, -1]])
    out[np.asarray(mask, dtype=bool)] = np.median(border, axis=0).astype(out.dtype)
    return out


def counterfactual_text(text: str, words: Sequence[int]) -> str:
    """`text` without the marked words (indices into `text.split()`)."""
    drop = {int(i) for i in words}
    return " ".join(word for i, word in enumerate(str(text).split()) if i not in drop)


def _gradient_scale(io: ModelIO) -> float:
    """d(model input) / d(image in 0..1): 255 for a model that rescales inside, 1 for 0..1 input."""
    zero = io.image_tensor(np.zeros((1, 1, 1, 3), np.float32))
    full = io.image_tensor(np.full((1, 1, 1, 3), 255.0, np.float32))
    return float(np.mean(np.abs(full - zero)))


def _find_embedding(model: Any) -> Any:
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.Embedding):
            return layer
        if getattr(layer, "layers", None):
            found = _find_embedding(layer)
            if found is not None:
                return found
    return None


def _word_positions(text: str, io: ModelIO, length: int) -> list[list[int]]:
    """For each word of `text.split()`, the token positions it occupies in the model's input row.

    Mirrors how the input is made: standardise each word (punctuation alone vanishes), drop words a
    token-id model without an OOV id skips, truncate to `length`, shift for "pre" padding."""
    from models.model_io import standardize_and_split

    per_word: list[list[int]] = []
    position = 0
    for word in str(text).split():
        tokens = standardize_and_split(word, io.standardize)
        if io.token_ids and io.oov_id is None:
            tokens = [t for t in tokens if t in io._ids]
        per_word.append(list(range(position, position + len(tokens))))
        position += len(tokens)
    used = min(position, length)
    offset = length - used if (io.token_ids and io.padding == "pre") else 0
    return [[offset + p for p in positions if p < length] for positions in per_word]


def text_token_mask(texts: Sequence[str], words: Sequence[Sequence[int]], io: ModelIO, length: int) -> np.ndarray:
    """N x length float32: 1 at the token positions of each text's marked words."""
    mask = np.zeros((len(texts), length), np.float32)
    for row, (text, marked) in enumerate(zip(texts, words)):
        positions = _word_positions(text, io, length)
        for index in marked:
            if 0 <= int(index) < len(positions):
                mask[row, positions[int(index)]] = 1.0
    return mask


class _Capture:
    """Wraps an Embedding layer's call so the training step can differentiate with respect to its output."""

    def __init__(self, layer: Any) -> None:
        self.layer, self.outputs, self._call = layer, [], layer.call

    def __enter__(self) -> "_Capture":
        def call(*args: Any, **kwargs: Any) -> Any:
            out = self._call(*args, **kwargs)
            self.outputs.append(out)
            return out

        self.layer.call = call
        return self

    def __exit__(self, *exc: Any) -> None:
        # Remove the instance attribute so the class's own call is back.
        try:
            del self.layer.call
        except AttributeError:
            self.layer.call = self._call


def reason_fine_tune(
    keras_model: Any,
    x: Any,
    y: Sequence[int],
    marks: Sequence[Any],
    io: ModelIO,
    config: ReasonConfig = ReasonConfig(),
    *,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, list[float]]:
    """Fine-tune `keras_model` in place on (x, y) with the input-gradient penalty on the marks.

    `x`: N x H x W x C pixels in 0..255 (RGB), or N texts. `marks[i]`: for images a bool H x W
    "not a reason" mask (all False, or None, for an unmarked example); for texts the indices of the
    marked words in `text.split()` (empty for unmarked). Every layer with weights is trained (Dropout
    and BatchNorm in inference mode, as in the paper's fine-tuning of a trained model); the same
    `config.seed` gives the same weights. Returns per-epoch means of the cross-entropy and penalty.
    """
    import keras
    import tensorflow as tf

    text = io.modality is Modality.TEXT
    y = np.asarray(y, dtype=np.int64)
    n = len(y)
    if len(marks) != n or (len(x) != n):
        raise WorkbenchError(f"{n} labels, {len(x)} inputs and {len(marks)} marks: give one of each per example.")
    keras.utils.set_random_seed(config.seed)
    rng = np.random.default_rng(config.seed)

    if text:
        texts = [str(t) for t in x]
        words = [tuple(int(i) for i in (m or ())) for m in marks]
        marked = [i for i, w in enumerate(words) if w]
        rows_x = texts + [counterfactual_text(texts[i], words[i]) for i in marked] if config.counterfactual else list(texts)
        embedding = _find_embedding(keras_model)
        if embedding is None and marked and config.penalty > 0:
            raise WorkbenchError("this text model has no Embedding layer to take the reason penalty's gradient at; "
                                 "retrain with the penalty at 0 (counterfactual copies only).")
    else:
        images = np.asarray(x)
        masks = np.zeros(images.shape[:3], bool)
        for i, m in enumerate(marks):
            if m is not None:
                masks[i] = np.asarray(m, dtype=bool)
        marked = [i for i in range(n) if masks[i].any()]
        copies = [counterfactual_image(images[i], masks[i]) for i in marked] if config.counterfactual else []
        rows_x = np.concatenate([images, np.asarray(copies, images.dtype)]) if copies else images
    copy_of = marked if config.counterfactual else []
    rows_y = np.concatenate([y, y[copy_of]]) if copy_of else y
    # Counterfactual copies carry no mark: the marked part is gone from them.
    row_marked = np.zeros(len(rows_y), bool)
    row_marked[marked] = True
    row_source = np.concatenate([np.arange(n), np.asarray(copy_of, np.int64)]) if copy_of else np.arange(n)
    # Marked examples and their copies repeated `mark_repeats` times per epoch.
    special = np.concatenate([np.asarray(marked, np.int64), np.arange(n, len(rows_y))]).astype(np.int64)
    copies = np.arange(n, len(rows_y), dtype=np.int64)
    epoch_rows = np.concatenate([np.arange(len(rows_y))] + [special] * max(config.mark_repeats - 1, 0)
                                + [copies] * max(config.counterfactual_repeats - 1, 0))

    # Model inputs, prepared once.
    if text:
        prepared = io.text_input(rows_x)
        length = None
    else:
        prepared = io.image_tensor(rows_x)
        scale = np.float32(_gradient_scale(io))
    for layer in keras_model.layers:
        layer.trainable = True  # Keras 3: this also reaches nested models' layers
    variables = keras_model.trainable_variables
    optimizer = keras.optimizers.Adam(config.learning_rate, clipnorm=config.clipnorm)
    penalty = tf.constant(float(config.penalty), tf.float32)
    capture = None

    def log_probabilities(raw: Any) -> Any:
        p = io.probabilities(raw)
        return tf.math.log(tf.clip_by_value(tf.cast(p, tf.float32), 1e-7, 1.0))

    def cross_entropy(logp: Any, yb: Any) -> Any:
        return -tf.reduce_mean(tf.gather(logp, yb, axis=1, batch_dims=1))

    # One trace per step kind: the batch and the number of marked rows in it vary.
    if text:
        plain_signature = None
    else:
        pixels = tf.TensorSpec([None, *prepared.shape[1:]], tf.float32)
        plain_signature = [pixels, tf.TensorSpec([None], tf.int64)]

    @tf.function(input_signature=plain_signature, reduce_retracing=True)
    def plain_step(xb, yb):  # a batch without marked rows (some layers refuse an empty batch)
        with tf.GradientTape() as tape:
            ce = cross_entropy(log_probabilities(keras_model(xb, training=False)), yb)
        optimizer.apply_gradients(zip(tape.gradient(ce, variables), variables))
        return ce, tf.constant(0.0)

    if not text:
        @tf.function(input_signature=[*plain_signature, pixels, tf.TensorSpec([None, *prepared.shape[1:3]], tf.float32),
                                      tf.TensorSpec([], tf.float32)])
        def step(xb, yb, xm, mm, rows):
            with tf.GradientTape() as outer:
                ce = cross_entropy(log_probabilities(keras_model(xb, training=False)), yb)
                with tf.GradientTape() as inner:
                    inner.watch(xm)
                    total = tf.reduce_sum(log_probabilities(keras_model(xm, training=False)))
                g = inner.gradient(total, xm) * scale
                rrr = tf.reduce_sum(tf.square(g * mm[..., None])) / rows
                loss = ce + penalty * rrr
            optimizer.apply_gradients(zip(outer.gradient(loss, variables), variables))
            return ce, rrr
    else:
        capture = _Capture(embedding) if embedding is not None else None

        def step(xb, yb, xm, mm, rows):  # eager: the captured embedding output is a live tensor
            with tf.GradientTape() as outer:
                ce = cross_entropy(log_probabilities(keras_model(xb, training=False)), yb)
                with tf.GradientTape() as inner, capture:
                    capture.outputs.clear()
                    total = tf.reduce_sum(log_probabilities(keras_model(xm, training=False)))
                emb = capture.outputs[-1]
                # Squared gradient norm per token position (summed over the embedding dimension).
                g = tf.reduce_sum(tf.square(inner.gradient(total, emb)), axis=-1)
                width = min(int(g.shape[1]), int(mm.shape[1]))
                rrr = tf.reduce_sum(g[:, :width] * mm[:, :width]) / rows
                loss = ce + penalty * rrr
            optimizer.apply_gradients(zip(outer.gradient(loss, variables), variables))
            return ce, rrr

    history: dict[str, list[float]] = {"cross_entropy": [], "penalty": []}
    started = time.perf_counter()
    for epoch in range(config.epochs):
        order = epoch_rows[rng.permutation(len(epoch_rows))]
        ces, rrrs = [], []
        for start in range(0, len(order), config.batch_size):
            batch = order[start:start + config.batch_size]
            with_mark = batch[row_marked[batch]]
            rows = tf.constant(float(len(batch)), tf.float32)
            xb = io.tf_tensor(prepared[batch])
            yb = tf.constant(rows_y[batch], tf.int64)
            if not len(with_mark) or (text and capture is None):
                ce, rrr = plain_step(xb, yb)
            elif text:
                xm = io.tf_tensor(prepared[with_mark])
                if length is None:
                    length = _sequence_length(keras_model, embedding, xm)
                mm = tf.constant(text_token_mask([rows_x[i] for i in with_mark],
                                                 [words[row_source[i]] for i in with_mark], io, length))
                ce, rrr = step(xb, yb, xm, mm, rows)
            else:
                xm = tf.constant(prepared[with_mark], tf.float32)
                mm = tf.constant(masks[row_source[with_mark]].astype(np.float32))
                ce, rrr = step(xb, yb, xm, mm, rows)
            ces.append(float(ce))
            rrrs.append(float(rrr))
        history["cross_entropy"].append(float(np.mean(ces)))
        history["penalty"].append(float(np.mean(rrrs)))
        log(f"reason fine-tuning epoch {epoch + 1}/{config.epochs}: cross-entropy {np.mean(ces):.4f}, "
            f"penalty {np.mean(rrrs):.5f} ({time.perf_counter() - started:.0f} s)")
    return history


def _sequence_length(keras_model: Any, embedding: Any, batch: Any) -> int:
    """The token positions the embedding sees, read from one forward pass."""
    with _Capture(embedding) as capture:
        keras_model(batch[:1], training=False)
    return int(capture.outputs[-1].shape[1])


def input_gradient_mass(keras_model: Any, x: np.ndarray, masks: np.ndarray, io: ModelIO) -> np.ndarray:
    """Per image: the share of Σ (∂Σ log p / ∂x)² that falls inside its mask (what the penalty lowers)."""
    import tensorflow as tf

    batch = tf.constant(io.image_tensor(np.asarray(x)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(batch)
        p = tf.clip_by_value(tf.cast(io.probabilities(keras_model(batch, training=False)), tf.float32), 1e-7, 1.0)
        total = tf.reduce_sum(tf.math.log(p))
    energy = tf.reduce_sum(tf.square(tape.gradient(total, batch)), axis=-1).numpy()
    masks = np.asarray(masks, bool)
    inside = (energy * masks).sum(axis=(1, 2))
    return inside / np.maximum(energy.sum(axis=(1, 2)), 1e-30)


def token_gradient_energy(keras_model: Any, texts: Sequence[str], io: ModelIO) -> np.ndarray:
    """N x L: per token position, Σ over the embedding dimension of (∂Σ log p / ∂embedding)²
    (what the text penalty lowers at the marked words)."""
    import tensorflow as tf

    embedding = _find_embedding(keras_model)
    if embedding is None:
        raise WorkbenchError("this text model has no Embedding layer.")
    batch = io.tf_tensor(io.text_input([str(t) for t in texts]))
    with tf.GradientTape() as tape, _Capture(embedding) as capture:
        p = tf.clip_by_value(tf.cast(io.probabilities(keras_model(batch, training=False)), tf.float32), 1e-7, 1.0)
        total = tf.reduce_sum(tf.math.log(p))
    return tf.reduce_sum(tf.square(tape.gradient(total, capture.outputs[-1])), axis=-1).numpy()

