"""Tiny Keras models with known weights, wrapped as LoadedModel, for explainer tests.

Every image model here computes the same function (so their explanations must agree):

    x = image / 255                      (Rescaling, manifest rescales_inputs=True)
    A = conv3x3_valid(x) + b             ("conv", 2 filters, linear)      -> 6 x 6 x 2
    R = relu(A)                          ("relu")
    g = mean over positions of R         (GlobalAveragePooling2D)
    p = softmax(g @ W + c)               (Dense, 3 classes)

laid out flat, as a Sequential around a nested base model, as a functional model around
a nested `backbone`, and with two pooling branches (a non-linear outer graph). The text
model is TextVectorization -> Embedding -> Conv1D(same) -> GlobalMaxPooling1D -> Dense.
Weights come from `image_weights()` / `text_weights()` so a test can redo the maths in numpy.
"""
from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np

from foundation.types import Modality
from models.loaded import LoadedModel
from models.manifest import InputSpec, Manifest

IMAGE_SIZE = 8
IMAGE_CLASSES = ["cat", "dog", "bird"]
TEXT_CLASSES = ["negative", "positive"]
TEXT_VOCAB = ["good", "bad", "great", "awful", "movie", "plot", "the", "was"]
SEQUENCE_LENGTH = 6
EMBED_DIM = 4
TEXT_FILTERS = 3


# --- weights ----------------------------------------------------------------------------


def image_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """Conv kernel (3,3,3,2), conv bias (2,), dense kernel (2,3), dense bias (3,).

    The conv bias is slightly negative so some conv outputs are below zero and the
    ReLU mask matters in the hand-computed gradient.
    """
    rng = np.random.default_rng(seed)
    return {
        "conv_kernel": rng.normal(0.0, 0.5, size=(3, 3, 3, 2)).astype(np.float32),
        "conv_bias": np.array([-0.2, 0.1], dtype=np.float32),
        "dense_kernel": np.array([[2.0, -1.0, 0.5], [-1.5, 1.0, 0.25]], dtype=np.float32),
        "dense_bias": np.array([0.1, 0.0, -0.1], dtype=np.float32),
    }


def text_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """Embedding (vocab+2, EMBED_DIM), conv kernel (3, EMBED_DIM, F), conv bias, dense kernel/bias."""
    rng = np.random.default_rng(seed)
    vocab_size = len(TEXT_VOCAB) + 2  # "" (padding) and "[UNK]" come first
    return {
        "embedding": rng.normal(0.0, 1.0, size=(vocab_size, EMBED_DIM)).astype(np.float32),
        "conv_kernel": rng.normal(0.0, 0.5, size=(3, EMBED_DIM, TEXT_FILTERS)).astype(np.float32),
        "conv_bias": np.array([0.05, -0.05, 0.0], dtype=np.float32),
        "dense_kernel": rng.normal(0.0, 1.0, size=(TEXT_FILTERS, len(TEXT_CLASSES))).astype(np.float32),
        "dense_bias": np.array([0.0, 0.1], dtype=np.float32),
    }


# --- layers shared by the image variants -------------------------------------------------


def _conv_layers(weights: dict[str, np.ndarray]) -> list[keras.layers.Layer]:
    conv = keras.layers.Conv2D(2, 3, padding="valid", name="conv")
    conv.build((None, IMAGE_SIZE, IMAGE_SIZE, 3))
    conv.set_weights([weights["conv_kernel"], weights["conv_bias"]])
    return [keras.layers.Rescaling(1.0 / 255, name="rescale"), conv, keras.layers.ReLU(name="relu")]


def _dense(weights: dict[str, np.ndarray], units_in: int = 2) -> keras.layers.Dense:
    dense = keras.layers.Dense(len(IMAGE_CLASSES), activation="softmax", name="probs")
    dense.build((None, units_in))
    kernel = weights["dense_kernel"]
    if units_in != kernel.shape[0]:  # the two-branch model concatenates [avg, max]
        kernel = np.concatenate([kernel, np.zeros((units_in - kernel.shape[0], kernel.shape[1]), np.float32)])
    dense.set_weights([kernel, weights["dense_bias"]])
    return dense


def _chain(x: Any, layers: Sequence[keras.layers.Layer]) -> Any:
    for layer in layers:
        x = layer(x)
    return x


def _image_input() -> Any:
    return keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 3), name="image")


# --- image models --------------------------------------------------------------------------


def flat_image_cnn(weights: dict[str, np.ndarray] | None = None) -> keras.Model:
    """(a) Functional, every layer at the top level; Grad-CAM layer path "conv"."""
    weights = weights or image_weights()
    inputs = _image_input()
    x = _chain(inputs, _conv_layers(weights))
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, _dense(weights)(x), name="tiny_flat")


def _base_model(weights: dict[str, np.ndarray], name: str) -> keras.Model:
    inputs = _image_input()
    return keras.Model(inputs, _chain(inputs, _conv_layers(weights)), name=name)


def sequential_nested_image_cnn(weights: dict[str, np.ndarray] | None = None) -> keras.Sequential:
    """(b) Sequential([Input, base, GAP, Dense]) like a Keras applications transfer model; path "base/conv"."""
    weights = weights or image_weights()
    return keras.Sequential(
        [
            _image_input(),
            _base_model(weights, "base"),
            keras.layers.GlobalAveragePooling2D(name="gap"),
            _dense(weights),
        ],
        name="tiny_sequential_nested",
    )


def functional_backbone_image_cnn(weights: dict[str, np.ndarray] | None = None) -> keras.Model:
    """(c) Functional with a nested `backbone` sub-model; path "backbone/conv"."""
    weights = weights or image_weights()
    inputs = _image_input()
    x = _base_model(weights, "backbone")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, _dense(weights)(x), name="tiny_backbone")


def _two_branch_head(x: Any, weights: dict[str, np.ndarray]) -> Any:
    avg = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    top = keras.layers.GlobalMaxPooling2D(name="gmp")(x)
    joined = keras.layers.Concatenate(name="concat")([avg, top])
    dense = _dense(weights, units_in=4)
    # Give the max branch non-zero weights too, so both branches carry gradient.
    kernel, bias = dense.get_weights()
    kernel[2:] = np.array([[0.3, -0.2, 0.1], [-0.4, 0.6, 0.2]], dtype=np.float32)
    dense.set_weights([kernel, bias])
    return dense(joined)


def flat_branching_image_cnn(weights: dict[str, np.ndarray] | None = None) -> keras.Model:
    """Flat model whose head has two pooling branches (avg and max) joined again."""
    weights = weights or image_weights()
    inputs = _image_input()
    x = _chain(inputs, _conv_layers(weights))
    return keras.Model(inputs, _two_branch_head(x, weights), name="tiny_flat_branching")


def backbone_branching_image_cnn(weights: dict[str, np.ndarray] | None = None) -> keras.Model:
    """The branching model with its conv part in a nested `backbone`: a non-linear outer graph."""
    weights = weights or image_weights()
    inputs = _image_input()
    x = _base_model(weights, "backbone")(inputs)
    return keras.Model(inputs, _two_branch_head(x, weights), name="tiny_backbone_branching")


def doubly_nested_image_cnn(weights: dict[str, np.ndarray] | None = None) -> keras.Sequential:
    """Sequential around a functional `outer` that itself wraps `backbone`; path "outer/backbone/conv"."""
    weights = weights or image_weights()
    inputs = _image_input()
    outer = keras.Model(inputs, _base_model(weights, "backbone")(inputs), name="outer")
    return keras.Sequential(
        [_image_input(), outer, keras.layers.GlobalAveragePooling2D(name="gap"), _dense(weights)],
        name="tiny_doubly_nested",
    )


def dense_only_image_model() -> keras.Model:
    """An image model without any convolution (Grad-CAM does not apply)."""
    inputs = _image_input()
    x = keras.layers.Flatten(name="flatten")(inputs)
    x = keras.layers.Dense(len(IMAGE_CLASSES), activation="softmax", name="probs")(x)
    return keras.Model(inputs, x, name="tiny_dense_only")


# --- text model ------------------------------------------------------------------------------


def text_cnn(weights: dict[str, np.ndarray] | None = None) -> keras.Model:
    """(d) string (N x 1) -> TextVectorization -> Embedding -> Conv1D(same) -> GlobalMaxPooling1D -> Dense."""
    weights = weights or text_weights()
    inputs = keras.Input(shape=(1,), dtype="string", name="text")
    vectorize = keras.layers.TextVectorization(
        max_tokens=len(TEXT_VOCAB) + 2,
        output_sequence_length=SEQUENCE_LENGTH,
        vocabulary=TEXT_VOCAB,
        name="vectorize",
    )
    embed = keras.layers.Embedding(len(TEXT_VOCAB) + 2, EMBED_DIM, name="embed")
    conv = keras.layers.Conv1D(TEXT_FILTERS, 3, padding="same", name="conv")
    dense = keras.layers.Dense(len(TEXT_CLASSES), activation="softmax", name="probs")
    x = vectorize(inputs)
    x = embed(x)
    x = conv(x)
    x = keras.layers.GlobalMaxPooling1D(name="gmp")(x)
    outputs = dense(x)
    model = keras.Model(inputs, outputs, name="tiny_text")
    embed.set_weights([weights["embedding"]])
    conv.set_weights([weights["conv_kernel"], weights["conv_bias"]])
    dense.set_weights([weights["dense_kernel"], weights["dense_bias"]])
    return model


def token_ids(tokens: Sequence[str]) -> np.ndarray:
    """The ids TextVectorization gives these tokens, padded/truncated to SEQUENCE_LENGTH."""
    index = {word: i + 2 for i, word in enumerate(TEXT_VOCAB)}
    ids = [index.get(token, 1) for token in tokens][:SEQUENCE_LENGTH]
    return np.array(ids + [0] * (SEQUENCE_LENGTH - len(ids)), dtype=np.int64)


# --- LoadedModel wrappers ----------------------------------------------------------------------


def loaded_image_model(
    keras_model: keras.Model | None = None,
    *,
    gradcam_layer: str | None = None,
    name: str = "tiny-image",
    version: str = "v1",
) -> LoadedModel:
    """Wrap an image model (default: flat_image_cnn()) with an image manifest."""
    manifest = Manifest(
        modality=Modality.IMAGE, classes=tuple(IMAGE_CLASSES), gradcam_layer=gradcam_layer,
        input=InputSpec(height=IMAGE_SIZE, width=IMAGE_SIZE, channels=3, rescales_inputs=True),
    )
    return LoadedModel(name=name, version=version, manifest=manifest.to_dict(),
                       keras_model=keras_model or flat_image_cnn())


def loaded_model_with_output(keras_model: keras.Model, output_kind: str, *, name: str = "tiny-output") -> LoadedModel:
    """An image model at the tiny size whose manifest records another output kind (e.g. "sigmoid")."""
    classes = ("no", "yes") if output_kind in ("sigmoid", "binary-logit") else tuple(IMAGE_CLASSES)
    manifest = Manifest(
        modality=Modality.IMAGE, classes=classes, output={"kind": output_kind},
        input=InputSpec(height=IMAGE_SIZE, width=IMAGE_SIZE, channels=3, rescales_inputs=True),
    )
    return LoadedModel(name=name, version="v1", manifest=manifest.to_dict(), keras_model=keras_model)


def loaded_text_model(
    keras_model: keras.Model | None = None,
    *,
    gradcam_layer: str | None = None,
    name: str = "tiny-text",
    version: str = "v1",
) -> LoadedModel:
    """Wrap a text model (default: text_cnn()) with a text manifest."""
    manifest = Manifest(modality=Modality.TEXT, classes=tuple(TEXT_CLASSES), gradcam_layer=gradcam_layer,
                        input=InputSpec(sequence_length=SEQUENCE_LENGTH))
    return LoadedModel(name=name, version=version, manifest=manifest.to_dict(), keras_model=keras_model or text_cnn())


def random_images(n: int, seed: int = 0) -> np.ndarray:
    """n uint8 RGB images at the tiny models' input size."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)


def colour_squares(n: int, seed: int, size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Grey images with a red, green or blue 3x3 square somewhere; the class is the colour."""
    rng = np.random.default_rng(seed)
    images = np.full((n, size, size, 3), 90, dtype=np.uint8)
    labels = rng.integers(0, 3, size=n)
    for image, label in zip(images, labels):
        top, left = rng.integers(0, size - 3, size=2)
        image[top: top + 3, left: left + 3] = 0
        image[top: top + 3, left: left + 3, label] = 255
    return images, labels


def trained_colour_model(test_count: int) -> tuple[LoadedModel, list[np.ndarray], np.ndarray]:
    """flat_image_cnn (conv -> relu -> GAP -> Dense) trained to name the square's colour, with
    `test_count` held-out images and their labels."""
    keras.utils.set_random_seed(0)
    images, labels = colour_squares(300, seed=1)
    model = flat_image_cnn()
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    model.fit(images.astype(np.float32), labels, epochs=15, batch_size=32, verbose=0)
    test_images, test_labels = colour_squares(test_count, seed=2)
    return loaded_image_model(model), list(test_images), test_labels
