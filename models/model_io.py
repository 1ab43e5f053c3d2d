"""How a model's inputs are made and its outputs read: preprocessing presets, grey models,
token-id text models and output kinds (softmax, logits, one-unit binary heads).

Why one module: users bring models written to many conventions (pixels in 0-1 or 0-255,
ImageNet "caffe" or "torch" normalisation, one grey channel, logits instead of
probabilities, a single sigmoid unit, integer token ids with the vocabulary outside the
model). The manifest records which convention a model follows; everything else in the
workbench sees one interface: uint8 RGB images or plain strings in, an N x K table of class
probabilities out. `ModelIO` turns one into the other and is the only place that does.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Mapping, Sequence

import numpy as np

from foundation.errors import ModelError
from foundation.types import Modality

# ---------------------------------------------------------------------- preprocessing

INSIDE, ZERO_ONE, ZERO_255, MINUS_ONE_ONE, CAFFE, TORCH, CUSTOM = (
    "inside", "0-1", "0-255", "-1..1", "caffe", "torch", "custom")

PRESETS: dict[str, str] = {
    INSIDE: "inside the model (it gets 0-255 pixels and rescales them itself)",
    ZERO_ONE: "0-1 (pixels divided by 255)",
    ZERO_255: "0-255 (pixels as they are)",
    MINUS_ONE_ONE: "-1 to 1 (Keras 'tf' mode: MobileNet, Inception, Xception, ResNet v2)",
    CAFFE: "caffe (BGR, ImageNet means subtracted: ResNet50/101/152, VGG16/19)",
    TORCH: "torch (0-1, then ImageNet mean and std: DenseNet)",
    CUSTOM: "custom per-channel mean and std (in 0-255 units)",
}
# Other spellings users type for the same presets (argparse cannot take "-1..1" after a space).
PRESET_ALIASES = {"tf": MINUS_ONE_ONE, "-1-1": MINUS_ONE_ONE, "minus1-1": MINUS_ONE_ONE, "-1..1": MINUS_ONE_ONE,
                  "model": INSIDE, "0..1": ZERO_ONE, "0..255": ZERO_255}

# keras.applications' own constants (imagenet_utils.preprocess_input), RGB order.
IMAGENET_MEAN_255 = (123.68, 116.779, 103.939)
IMAGENET_MEAN_01 = (0.485, 0.456, 0.406)
IMAGENET_STD_01 = (0.229, 0.224, 0.225)
# ITU-R BT.601 luma, what OpenCV and Pillow use for RGB -> grey.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def preset_name(value: str) -> str:
    """A preset's canonical name; ModelError naming the choices for anything else."""
    key = str(value).strip().lower()
    key = PRESET_ALIASES.get(key, key)
    if key not in PRESETS:
        raise ModelError(f"unknown preprocessing {value!r}; choose one of: {', '.join(PRESETS)} (or tf for -1..1).")
    return key


def _per_channel(values: Sequence[float] | None, channels: int, what: str) -> np.ndarray:
    if values is None:
        raise ModelError(f"custom preprocessing needs a {what} per channel; give {channels} number(s).")
    array = np.asarray([float(v) for v in values], dtype=np.float32)
    if array.shape != (channels,) or not np.all(np.isfinite(array)):
        raise ModelError(f"custom preprocessing needs {channels} finite {what} value(s), one per channel; got {list(values)}.")
    if what == "std" and np.any(array <= 0):
        raise ModelError("custom preprocessing needs every std to be above 0.")
    return array


@dataclass(frozen=True)
class Preprocessing:
    """One preset (with mean/std for "custom"), applied to float pixels in 0..255."""

    preset: str = INSIDE
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    channels: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "preset", preset_name(self.preset))
        if self.channels == 1 and self.preset in (CAFFE, TORCH):
            raise ModelError(f"the {self.preset} preset is for 3-channel colour models; a grey model takes "
                             "inside, 0-1, 0-255, -1..1 or custom.")
        if self.preset == CUSTOM:
            _per_channel(self.mean, self.channels, "mean")
            _per_channel(self.std, self.channels, "std")

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """N x H x W x C float32 in 0..255 (RGB order when C = 3) -> what the model takes. Never in place."""
        x = np.asarray(pixels, dtype=np.float32)
        if self.preset in (INSIDE, ZERO_255):
            return x.copy()
        if self.preset == ZERO_ONE:
            return x / np.float32(255.0)
        if self.preset == MINUS_ONE_ONE:
            return x / np.float32(127.5) - np.float32(1.0)
        if self.preset == CAFFE:
            return x[..., ::-1] - np.asarray(IMAGENET_MEAN_255[::-1], dtype=np.float32)
        if self.preset == TORCH:
            return (x / np.float32(255.0) - np.asarray(IMAGENET_MEAN_01, np.float32)) / np.asarray(IMAGENET_STD_01, np.float32)
        mean = _per_channel(self.mean, self.channels, "mean")
        std = _per_channel(self.std, self.channels, "std")
        return (x - mean) / std

    def describe(self) -> str:
        if self.preset == CUSTOM:
            return f"custom: (pixel - {list(self.mean or ())}) / {list(self.std or ())}"
        return PRESETS[self.preset]


def luminance(images: np.ndarray) -> np.ndarray:
    """N x H x W x 3 RGB -> N x H x W x 1 grey (BT.601 luma), float32."""
    rgb = np.asarray(images, dtype=np.float32)
    return (rgb @ np.asarray(LUMA_WEIGHTS, dtype=np.float32))[..., None]


# ---------------------------------------------------------------------- output kinds

SOFTMAX, LOGITS, SIGMOID, BINARY_LOGIT = "softmax", "logits", "sigmoid", "binary-logit"
OUTPUT_KINDS: dict[str, str] = {
    SOFTMAX: "K-way softmax (probabilities)",
    LOGITS: "K-way logits (the workbench applies the softmax)",
    SIGMOID: "one sigmoid unit: the probability of the second class",
    BINARY_LOGIT: "one logit unit: the workbench applies the sigmoid for the second class",
}


def check_output_kind(kind: str) -> str:
    if kind not in OUTPUT_KINDS:
        raise ModelError(f"unknown output kind {kind!r}; the workbench knows {', '.join(OUTPUT_KINDS)}.")
    return kind


def probabilities(raw: Any, kind: str) -> Any:
    """The model's raw output -> N x K class probabilities, with the same framework's ops
    (numpy in, numpy out; tensors and symbolic Keras tensors stay in the graph, so gradients
    flow through the softmax/sigmoid the workbench adds)."""
    if kind == SOFTMAX:
        return raw
    if isinstance(raw, np.ndarray):
        return _numpy_probabilities(raw, kind)
    from keras import ops

    if kind == LOGITS:
        return ops.softmax(raw, axis=-1)
    positive = ops.sigmoid(raw) if kind == BINARY_LOGIT else raw
    return ops.concatenate([1.0 - positive, positive], axis=-1)


def _numpy_probabilities(raw: np.ndarray, kind: str) -> np.ndarray:
    raw = raw.astype(np.float64)
    if kind == LOGITS:
        shifted = np.exp(raw - raw.max(axis=-1, keepdims=True))
        return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)
    positive = 1.0 / (1.0 + np.exp(-raw)) if kind == BINARY_LOGIT else raw
    return np.concatenate([1.0 - positive, positive], axis=-1).astype(np.float32)


# ------------------------------------------------------------------ token-id text

# What Keras' TextVectorization and common tokenizers call the out-of-vocabulary token.
OOV_TOKENS = ("[UNK]", "<unk>", "<UNK>", "[OOV]", "<OOV>", "<oov>", "UNK", "<unknown>")
STANDARDIZE_RULES = ("lower_and_strip_punctuation", "lower", "strip_punctuation", "none")
PADDING_SIDES = ("post", "pre")


def standardize_and_split(text: str, rule: str = "lower_and_strip_punctuation") -> list[str]:
    """Keras TextVectorization's standardisation rules, then a whitespace split."""
    from foundation.tokens import PUNCTUATION

    if rule not in STANDARDIZE_RULES:
        raise ModelError(f"unknown standardisation {rule!r}; choose one of {', '.join(STANDARDIZE_RULES)}.")
    text = str(text)
    if rule in ("lower_and_strip_punctuation", "lower"):
        text = text.lower()
    if rule in ("lower_and_strip_punctuation", "strip_punctuation"):
        text = PUNCTUATION.sub("", text)
    return text.split()


def find_oov_id(vocabulary: Sequence[str]) -> int | None:
    """The id of the vocabulary's out-of-vocabulary token, or None when it has none."""
    for token in OOV_TOKENS:
        if token in vocabulary:
            return list(vocabulary).index(token)
    return None


# ---------------------------------------------------------------------------- ModelIO


@dataclass(frozen=True)
class ModelIO:
    """Raw inputs -> model tensors, raw outputs -> probabilities, for one model's manifest entries."""

    modality: Modality
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    channels: int = 3
    output_kind: str = SOFTMAX
    # Token-id text models only (None for string-input models):
    vocabulary: tuple[str, ...] | None = None
    oov_id: int | None = None
    sequence_length: int = 0  # 0: not fixed, batches are padded to their longest text
    padding: str = "post"
    standardize: str = "lower_and_strip_punctuation"

    @classmethod
    def from_manifest(cls, manifest: Any) -> ModelIO:
        """From a `models.manifest.Manifest` (older manifests read as softmax, RGB, legacy pixel scale)."""
        spec = manifest.input
        channels = spec.channels or 3
        return cls(
            modality=manifest.modality,
            preprocessing=Preprocessing(spec.preprocessing_preset, spec.mean, spec.std, channels),
            channels=channels,
            output_kind=check_output_kind(manifest.output_kind),
            vocabulary=spec.vocabulary,
            oov_id=spec.oov_id,
            sequence_length=spec.sequence_length or 0,
            padding=spec.padding or "post",
            standardize=spec.standardize or "lower_and_strip_punctuation",
        )

    @property
    def token_ids(self) -> bool:
        return self.vocabulary is not None

    # --- images

    def image_tensor(self, pixels: Any) -> np.ndarray:
        """N x H x W x 3 RGB in 0..255 -> the float32 batch the model takes (grey models get luminance)."""
        batch = np.asarray(pixels, dtype=np.float32)
        if self.channels == 1:
            batch = luminance(batch)
        return self.preprocessing.apply(batch)

    # --- texts

    @cached_property
    def _ids(self) -> dict[str, int]:
        ids: dict[str, int] = {}
        for index, token in enumerate(self.vocabulary or ()):
            ids.setdefault(token, index)  # a repeated token keeps its first id
        return ids

    def tokens(self, text: str) -> list[str]:
        """The words the model reads, truncated to its sequence length."""
        tokens = standardize_and_split(text, self.standardize)
        return tokens[: self.sequence_length] if self.sequence_length else tokens

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Texts -> N x L int32 token ids (0 pads; unknown words get the OOV id, or are skipped without one)."""
        rows = []
        for text in texts:
            ids = [self._ids.get(token, self.oov_id) for token in self.tokens(text)]
            rows.append([i for i in ids if i is not None])
        length = self.sequence_length or max([len(r) for r in rows] + [1])
        batch = np.zeros((len(rows), length), dtype=np.int32)
        for i, row in enumerate(rows):
            row = row[:length]
            if row:
                if self.padding == "pre":
                    batch[i, length - len(row):] = row
                else:
                    batch[i, : len(row)] = row
        return batch

    def text_input(self, texts: Sequence[Any]) -> np.ndarray:
        """What a text model takes: token ids, or an N x 1 array of strings."""
        texts = [str(t) for t in texts]
        if self.token_ids:
            return self.encode(texts)
        return np.asarray(texts, dtype=object).reshape(-1, 1)

    def tf_tensor(self, batch: np.ndarray) -> Any:
        """A prepared batch as the tensor type the model's input takes."""
        import tensorflow as tf

        if self.modality is Modality.TEXT and not self.token_ids:
            return tf.constant(np.asarray(batch).astype(str))
        if self.token_ids:
            array = np.asarray(batch)
            if array.dtype.kind in "OUS":  # strings (e.g. perturbed texts): encode them here
                array = self.encode([str(t) for t in array.ravel()])
            return tf.convert_to_tensor(array, dtype=tf.int32)
        return tf.convert_to_tensor(batch, dtype=tf.float32)

    # --- outputs

    def probabilities(self, raw: Any) -> Any:
        return probabilities(raw, self.output_kind)

    def probability_model(self, keras_model: Any) -> Any:
        """A Keras model with the same input whose output is class probabilities (the model itself for softmax)."""
        if self.output_kind == SOFTMAX:
            return keras_model
        import keras

        return keras.Model(keras_model.inputs, self.probabilities(keras_model.outputs[0]))

    # --- training

    @property
    def binary(self) -> bool:
        return self.output_kind in (SIGMOID, BINARY_LOGIT)

    def loss(self) -> Any:
        """The loss that matches the output: binary cross-entropy for one unit, from_logits where it emits logits."""
        import keras

        if self.binary:
            return keras.losses.BinaryCrossentropy(from_logits=self.output_kind == BINARY_LOGIT)
        return keras.losses.SparseCategoricalCrossentropy(from_logits=self.output_kind == LOGITS)

    def accuracy_metric(self) -> Any:
        import keras

        if self.binary:
            return keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0 if self.output_kind == BINARY_LOGIT else 0.5)
        return keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    def targets(self, labels: Any) -> np.ndarray:
        """Class indices -> what the loss takes (an N x 1 float column for one-unit heads)."""
        labels = np.asarray(labels)
        return labels.astype(np.float32).reshape(-1, 1) if self.binary else labels


def legacy_io(modality: Modality, pixel_scale: float = 1.0) -> ModelIO:
    """The IO of models from before this module: softmax output, RGB, 0-255 or 0-1 pixels."""
    return ModelIO(modality=modality, preprocessing=Preprocessing(ZERO_ONE if pixel_scale != 1.0 else INSIDE))


def settings_from_answers(answers: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest input fields for a preprocessing answer: {"preprocessing": preset, "mean"?, "std"?}."""
    preset = preset_name(answers["preprocessing"])
    out: dict[str, Any] = {"preprocessing": preset}
    if preset == CUSTOM:
        out["mean"] = [float(v) for v in answers.get("mean") or ()]
        out["std"] = [float(v) for v in answers.get("std") or ()]
    return out
