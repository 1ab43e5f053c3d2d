"""Fine-tuning that corrects the model's reason, not only its label (issue 17).

"Right for the Right Reasons" (Ross, Hughes & Doshi-Velez, 2017): next to the usual
cross-entropy, penalise the model's input gradients inside regions a person marked as "not a
reason", so the model stops relying on them:

    loss = CE(y, p(x)) + λ · Σ_marked ( mask · ∂Σ_k log p_k(x) / ∂x )²  / batch size
                       + γ · Σ_marked mean_k ( log p_k(x) - log p_k(x') )²  / batch size

where x' is x's pair without the marked part (the counterfactual-consistency term, γ
`consistency`: "counterfactual logit pairing", Garg et al. 2019, on log-probabilities).

Images: x is the image scaled to 0..1 (whatever preprocessing the model expects, the gradient is
taken per unit of the 0..1 image, so λ means the same for a model that rescales inside and one
that takes 0..1 or caffe inputs); the mask is a bool H x W per example. Texts: the gradient is
taken with respect to the outputs of the model's (first) Embedding layer at the token positions
of the marked words (indices into ``text.split()``), its square summed over the embedding dimension.

Optional counterfactual augmentation adds, for every marked example, a copy with the marked
region painted in the image's border colour (the median of its outermost pixels) or, for texts,
with the marked words removed, under the same label; and `transplants` copies of other examples
(another label) with the marked content pasted in at the same place (the marked words inserted),
under their own label, marked there and paired with the example they were made from.

Only marked rows pay for the second derivative: each batch runs the cross-entropy on all its rows
and the input-gradient penalty on its marked rows only, so the penalty costs little when few
examples are marked. Works on any Keras model `models.model_io.ModelIO` can feed (Rescaling inside
the model, 0..1 or caffe inputs outside it, softmax, logits or one-unit heads, string or token-id
text models), not only the sample models.

    from models.reason_training import ReasonConfig, reason_fine_tune
    history = reason_fine_tune(keras_model, images, labels, masks, io, ReasonConfig(penalty=1.0))
"""
from __future__ import annotations

import contextlib
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

    # Defaults measured on shapes-shortcut with 50 marks (see the README's simulate-reason table):
    # λ 0.3, clipnorm 1 and the marked rows seen 3 times per epoch, with the counterfactual-
    # consistency term (1) and one transplant per mark, over 8 epochs: test_nocue 0.971 / 0.967
    # (seeds 0 / 1) with clean test accuracy within a point. Without the last three, 0.947 / 0.938.
    penalty: float = 0.3  # λ, the weight of the input-gradient penalty
    # Once the shortcut stops paying, the model has to learn the real evidence (circle vs square
    # by shape): that takes more passes than unlearning the shortcut did.
    epochs: int = 8
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
    # Weight of the counterfactual-consistency term ("counterfactual logit pairing", Garg et al.
    # 2019): on each marked row, the mean over classes of the squared difference between the
    # log-probabilities with and without the marked part (and, for a transplant, with and without
    # the pasted part). "Not a reason" means the prediction should not move when that part goes;
    # the input-gradient penalty only says so locally, and with max pooling the input gradient on
    # the marked part is often exactly 0 while the part still decides the prediction.
    consistency: float = 1.0
    # Copies of *other* examples (another label, unmarked) with the marked content pasted in at
    # the same place, under their own label and marked there: "not a reason" also means the
    # content must not pull an example of another class towards the marked one's (the other half
    # of the intervention the counterfactual copies make; in the spirit of CAIPI's
    # counterexamples, Teso & Kersting 2019). How many per marked example.
    transplants: int = 1

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


def transplant_image(source: np.ndarray, mask: np.ndarray, host: np.ndarray) -> np.ndarray:
    """A copy of `host` with the pixels of `source` inside `mask` pasted in at the same place."""
    out = np.array(host, copy=True)
    where = np.asarray(mask, dtype=bool)
    out[where] = np.asarray(source)[where]
    return out


def transplant_text(source: str, words: Sequence[int], host: str) -> tuple[str, tuple[int, ...]]:
    """`host` with the marked words of `source` inserted (in order) where the first of them stood
    (or at the end of a shorter host); returns the new text and the inserted words' indices."""
    src, dst = str(source).split(), str(host).split()
    picked = [src[i] for i in sorted({int(i) for i in words}) if 0 <= i < len(src)]
    at = min(min((int(i) for i in words), default=0), len(dst))
    return " ".join(dst[:at] + picked + dst[at:]), tuple(range(at, at + len(picked)))


def _transplant_hosts(y: np.ndarray, marked: Sequence[int], per_mark: int,
                      rng: np.random.Generator) -> list[tuple[int, int]]:
    """(marked row, host row) pairs: `per_mark` hosts per marked row, drawn from the unmarked rows
    of another label (any unmarked row if there is none, no host if every row is marked)."""
    if per_mark < 1 or not len(marked):
        return []
    unmarked = np.setdiff1d(np.arange(len(y)), np.asarray(marked, np.int64))
    pairs = []
    for i in marked:
        others = unmarked[y[unmarked] != y[i]]
        pool = others if len(others) else unmarked
        if len(pool):
            pairs += [(int(i), int(j)) for j in rng.choice(pool, size=per_mark, replace=len(pool) < per_mark)]
    return pairs


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
    `config.seed` gives the same weights. Returns per-epoch means of the cross-entropy, the penalty and
    the consistency term.
    """
    import keras
    import tensorflow as tf

    text = io.modality is Modality.TEXT
    y = np.asarray(y, dtype=np.int64)
    n = len(y)
    if len(marks) != n or (len(x) != n):
        raise WorkbenchError(f"{n} labels, {len(x)} inputs and {len(marks)} marks: give one of each per example.")
    if config.consistency < 0 or config.transplants < 0:
        raise WorkbenchError("the consistency weight and the number of transplants must be >= 0.")
    keras.utils.set_random_seed(config.seed)
    rng = np.random.default_rng(config.seed)

    # The training rows: the examples, then (when asked) for every marked example a copy with the
    # marked part removed (same label, unmarked), then `transplants` copies of other examples with
    # the marked content pasted in (their own label, marked where the content now is). `pair[r]`
    # is the row to compare r with for the consistency term (-1: none).
    if text:
        texts = [str(t) for t in x]
        words = [tuple(int(i) for i in (m or ())) for m in marks]
        marked = [i for i, w in enumerate(words) if w]
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
    removed = marked if (config.counterfactual or config.consistency > 0) else []
    hosts = _transplant_hosts(y, marked, config.transplants, rng)
    if text:
        grafted = [transplant_text(texts[i], words[i], texts[j]) for i, j in hosts]
        rows_x = texts + [counterfactual_text(texts[i], words[i]) for i in removed] + [t for t, _w in grafted]
        row_words = words + [()] * len(removed) + [w for _t, w in grafted]
    else:
        extra = [counterfactual_image(images[i], masks[i]) for i in removed]
        extra += [transplant_image(images[i], masks[i], images[j]) for i, j in hosts]
        rows_x = np.concatenate([images, np.asarray(extra, images.dtype)]) if extra else images
        row_masks = np.concatenate([masks, np.zeros((len(removed), *masks.shape[1:]), bool),
                                    masks[[i for i, _j in hosts]].reshape(-1, *masks.shape[1:])])
    cf_rows = np.arange(n, n + len(removed), dtype=np.int64)
    tp_rows = np.arange(n + len(removed), n + len(removed) + len(hosts), dtype=np.int64)
    rows_y = np.concatenate([y, y[np.asarray(removed, np.int64)], y[np.asarray([j for _i, j in hosts], np.int64)]])
    row_marked = np.zeros(len(rows_y), bool)
    row_marked[marked] = True
    row_marked[tp_rows] = True
    pair = np.full(len(rows_y), -1, np.int64)
    pair[np.asarray(removed, np.int64)] = cf_rows
    pair[tp_rows] = [j for _i, j in hosts]
    # Marked examples, their copies and transplants repeated `mark_repeats` times per epoch; the
    # removal copies `counterfactual_repeats` more. Copies made only for the consistency term
    # (counterfactual off) are compared with, never trained on as rows of their own.
    trained_copies = cf_rows if config.counterfactual else np.zeros(0, np.int64)
    special = np.concatenate([np.asarray(marked, np.int64), trained_copies, tp_rows]).astype(np.int64)
    base_rows = np.concatenate([np.arange(n), trained_copies, tp_rows]).astype(np.int64)
    epoch_rows = np.concatenate([base_rows] + [special] * max(config.mark_repeats - 1, 0)
                                + [trained_copies] * max(config.counterfactual_repeats - 1, 0))

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
    consistency = tf.constant(float(config.consistency), tf.float32)
    pairing = config.consistency > 0  # known when tracing: no second forward pass without it
    capture = None

    def log_probabilities(raw: Any) -> Any:
        p = io.probabilities(raw)
        return tf.math.log(tf.clip_by_value(tf.cast(p, tf.float32), 1e-7, 1.0))

    def cross_entropy(logp: Any, yb: Any) -> Any:
        return -tf.reduce_mean(tf.gather(logp, yb, axis=1, batch_dims=1))

    def pair_term(logp_marked: Any, xp: Any, rows: Any) -> Any:
        """Σ over marked rows of the mean squared log-probability change to their pair, / batch rows."""
        if not pairing:
            return tf.constant(0.0)
        logp_pair = log_probabilities(keras_model(xp, training=False))
        return tf.reduce_sum(tf.reduce_mean(tf.square(logp_marked - logp_pair), axis=-1)) / rows

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
        return ce, tf.constant(0.0), tf.constant(0.0)

    if not text:
        @tf.function(input_signature=[*plain_signature, pixels, tf.TensorSpec([None, *prepared.shape[1:3]], tf.float32),
                                      pixels, tf.TensorSpec([], tf.float32)])
        def step(xb, yb, xm, mm, xp, rows):
            with tf.GradientTape() as outer:
                ce = cross_entropy(log_probabilities(keras_model(xb, training=False)), yb)
                with tf.GradientTape() as inner:
                    inner.watch(xm)
                    logp = log_probabilities(keras_model(xm, training=False))
                    total = tf.reduce_sum(logp)
                g = inner.gradient(total, xm) * scale
                rrr = tf.reduce_sum(tf.square(g * mm[..., None])) / rows
                pairs = pair_term(logp, xp, rows)
                loss = ce + penalty * rrr + consistency * pairs
            optimizer.apply_gradients(zip(outer.gradient(loss, variables), variables))
            return ce, rrr, pairs
    else:
        capture = _Capture(embedding) if embedding is not None else contextlib.nullcontext()

        def step(xb, yb, xm, mm, xp, rows):  # eager: the captured embedding output is a live tensor
            with tf.GradientTape() as outer:
                ce = cross_entropy(log_probabilities(keras_model(xb, training=False)), yb)
                with tf.GradientTape() as inner, capture:
                    if embedding is not None:
                        capture.outputs.clear()
                    logp = log_probabilities(keras_model(xm, training=False))
                    total = tf.reduce_sum(logp)
                if embedding is not None:
                    # Squared gradient norm per token position (summed over the embedding dimension).
                    g = tf.reduce_sum(tf.square(inner.gradient(total, capture.outputs[-1])), axis=-1)
                    width = min(int(g.shape[1]), int(mm.shape[1]))
                    rrr = tf.reduce_sum(g[:, :width] * mm[:, :width]) / rows
                else:  # no Embedding layer: only the penalty at 0 gets here
                    rrr = tf.constant(0.0)
                pairs = pair_term(logp, xp, rows)
                loss = ce + penalty * rrr + consistency * pairs
            optimizer.apply_gradients(zip(outer.gradient(loss, variables), variables))
            return ce, rrr, pairs

    history: dict[str, list[float]] = {"cross_entropy": [], "penalty": [], "consistency": []}
    started = time.perf_counter()
    for epoch in range(config.epochs):
        order = epoch_rows[rng.permutation(len(epoch_rows))]
        ces, rrrs, pairs = [], [], []
        for start in range(0, len(order), config.batch_size):
            batch = order[start:start + config.batch_size]
            with_mark = batch[row_marked[batch]]
            rows = tf.constant(float(len(batch)), tf.float32)
            xb = io.tf_tensor(prepared[batch])
            yb = tf.constant(rows_y[batch], tf.int64)
            # Every marked row has a pair when the consistency term is on (see `removed`).
            paired = pair[with_mark] if pairing else with_mark
            if not len(with_mark) or (text and embedding is None and not pairing):
                ce, rrr, agree = plain_step(xb, yb)
            elif text:
                xm = io.tf_tensor(prepared[with_mark])
                if length is None and embedding is not None:
                    length = _sequence_length(keras_model, embedding, xm)
                mm = tf.constant(text_token_mask([rows_x[i] for i in with_mark],
                                                 [row_words[i] for i in with_mark], io, length or 1))
                ce, rrr, agree = step(xb, yb, xm, mm, io.tf_tensor(prepared[paired]), rows)
            else:
                xm = tf.constant(prepared[with_mark], tf.float32)
                mm = tf.constant(row_masks[with_mark].astype(np.float32))
                ce, rrr, agree = step(xb, yb, xm, mm, tf.constant(prepared[paired], tf.float32), rows)
            ces.append(float(ce))
            rrrs.append(float(rrr))
            pairs.append(float(agree))
        history["cross_entropy"].append(float(np.mean(ces)))
        history["penalty"].append(float(np.mean(rrrs)))
        history["consistency"].append(float(np.mean(pairs)))
        log(f"reason fine-tuning epoch {epoch + 1}/{config.epochs}: cross-entropy {np.mean(ces):.4f}, "
            f"penalty {np.mean(rrrs):.5f}, consistency {np.mean(pairs):.5f} ({time.perf_counter() - started:.0f} s)")
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

