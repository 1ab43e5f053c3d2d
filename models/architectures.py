"""Model builders. Every model takes raw inputs (uint8-range images or raw strings) and
outputs class probabilities, so a saved `.keras` file is usable on its own."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

IMAGE_SIZE = 64
BACKBONE_NAME = "backbone"
KERAS_APPLICATIONS = {"mobilenetv2": "MobileNetV2", "resnet50": "ResNet50"}
# ImageNet channel means in BGR order, as used by ResNet50's "caffe" preprocessing.
_CAFFE_MEANS_BGR = (103.939, 116.779, 123.68)


@dataclass(frozen=True)
class ImageArchitecture:
    filters: tuple[int, ...] = (32, 64, 64, 96)
    dropout: float = 0.3


@dataclass(frozen=True)
class TextArchitecture:
    max_tokens: int = 4000
    sequence_length: int = 24
    embedding_dim: int = 32
    filters: int = 64
    kernel_size: int = 3
    dropout: float = 0.3


def build_backbone(config: ImageArchitecture, input_shape: tuple[int, int, int]) -> keras.Model:
    """A small conv feature extractor (its last layer is the Grad-CAM layer)."""
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for i, filters in enumerate(config.filters):
        # Batch normalisation: without it the net never leaves chance level on the shapes,
        # whose colourful, noisy backgrounds swamp the shape signal at the start of training.
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{i + 1}")(x)
        x = keras.layers.BatchNormalization(momentum=0.9, name=f"bn{i + 1}")(x)
        x = keras.layers.Activation("relu", name=f"relu{i + 1}")(x)
        if i < len(config.filters) - 1:
            x = keras.layers.MaxPooling2D(name=f"pool{i + 1}")(x)
    return keras.Model(inputs, x, name=BACKBONE_NAME)


def attach_head(
    backbone: keras.Model,
    n_classes: int,
    *,
    input_shape: tuple[int, int, int],
    preprocessing: list[keras.layers.Layer],
    dropout: float,
) -> keras.Model:
    """Input -> preprocessing -> nested backbone -> pooled features -> softmax head."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for layer in preprocessing:
        x = layer(x)
    x = backbone(x)
    # Max pooling: a small object must not be averaged away by a large background.
    x = keras.layers.GlobalMaxPooling2D(name="features")(x)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs, name="classifier")


def build_image_classifier(n_classes: int, config: ImageArchitecture = ImageArchitecture()) -> keras.Model:
    shape = (IMAGE_SIZE, IMAGE_SIZE, 3)
    return attach_head(
        build_backbone(config, shape),
        n_classes,
        input_shape=shape,
        preprocessing=[keras.layers.Rescaling(1.0 / 255, name="rescale")],
        dropout=config.dropout,
    )


def _caffe_preprocessing() -> keras.layers.Layer:
    """RGB [0,255] -> BGR minus ImageNet means, as a frozen 1x1 convolution (no Lambda layer)."""
    layer = keras.layers.Conv2D(3, 1, use_bias=True, trainable=False, name="caffe_preprocess")
    layer.build((None, None, None, 3))
    kernel = np.zeros((1, 1, 3, 3), dtype=np.float32)
    for out_channel, in_channel in enumerate((2, 1, 0)):
        kernel[0, 0, in_channel, out_channel] = 1.0
    layer.set_weights([kernel, -np.asarray(_CAFFE_MEANS_BGR, dtype=np.float32)])
    return layer


def applications_backbone(
    name: str, input_shape: tuple[int, int, int], weights_path: Path | None
) -> tuple[keras.Model, list[keras.layers.Layer]]:
    """A Keras applications base with weights from a local file (never from the internet)."""
    key = name.lower()
    if key not in KERAS_APPLICATIONS:
        raise ValueError(f"unknown backbone {name!r}; choose digits, {', '.join(KERAS_APPLICATIONS)}")
    constructor = getattr(keras.applications, KERAS_APPLICATIONS[key])
    base = constructor(include_top=False, weights=None, input_shape=input_shape)
    if weights_path is not None:
        base.load_weights(str(weights_path))
    if key == "mobilenetv2":
        preprocessing = [keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")]
    else:
        preprocessing = [_caffe_preprocessing()]
    return base, preprocessing


def build_text_classifier(
    vocabulary: list[str], n_classes: int, config: TextArchitecture = TextArchitecture()
) -> keras.Model:
    """Raw strings in; the vocabulary lives inside the model (TextVectorization)."""
    vectorize = keras.layers.TextVectorization(
        max_tokens=config.max_tokens,
        output_sequence_length=config.sequence_length,
        standardize="lower_and_strip_punctuation",
        split="whitespace",
        vocabulary=vocabulary,
        name="vectorize",
    )
    inputs = keras.Input(shape=(1,), dtype="string", name="text")
    x = vectorize(inputs)
    x = keras.layers.Embedding(len(vectorize.get_vocabulary()), config.embedding_dim, name="embed")(x)
    x = keras.layers.Conv1D(
        config.filters, config.kernel_size, padding="same", activation="relu", name="conv1d"
    )(x)
    x = keras.layers.GlobalMaxPooling1D(name="features")(x)
    x = keras.layers.Dropout(config.dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs, name="text_classifier")


def build_vocabulary(texts: list[str], max_tokens: int) -> list[str]:
    """Most frequent tokens first (ties alphabetical), deterministic, excluding pad/OOV."""
    from collections import Counter

    from foundation.tokens import tokenize

    counts = Counter(token for text in texts for token in tokenize(text))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [token for token, _ in ranked[: max_tokens - 2]]
