"""Small versions of the Keras models analysts bring, written the way public tutorials write them.

Issue 12's seven models, each shrunk to run on a CPU in seconds (fewer filters, small
inputs) but with the same *shape of interface* as the original recipe:

* `binary_from_scratch`  keras.io "Image classification from scratch": augmentation and
  Rescaling(1/255) inside, one logit unit (`Dense(1)`, trained with from_logits=True).
* `four_class_logits`    a 4-class CNN whose last Dense has no activation.
* `mnist_convnet`        keras.io "Simple MNIST convnet": 28 x 28 x 1 grey input, pixels
  divided by 255 *outside* the model, softmax over 10 digits.
* `text_from_scratch`    keras.io "Text classification from scratch", end to end: a string
  input, TextVectorization, then the trained model nested inside, one sigmoid unit.
* `token_id_bilstm`      keras.io "Bidirectional LSTM on IMDB": int token ids in, the
  vocabulary outside the model, one sigmoid unit.
* `resnet50_transfer`    the project's background worked example: a frozen ResNet50 base
  (random weights: nothing downloads) with Flatten/Dense(256)/Dropout/softmax on 32 x 32,
  `resnet50.preprocess_input` ("caffe") applied outside the model. About 95 MB on disk.
* `mobilenet_transfer`   the same recipe on a small MobileNetV2 base (-1..1 preprocessing
  outside the model), for the quick tests of family detection.
* `rgb_softmax`          the one kind that was always accepted: RGB, Rescaling, softmax.

`save_all(folder)` writes each as `<name>.keras` with `<name>.classes.json` beside it (and
`token_id_bilstm.vocab.txt`), and returns {name: path}.
"""
from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np

IMAGE_SIZE = 32
BINARY_CLASSES = ["cat", "dog"]
FOUR_CLASSES = ["circle", "square", "triangle", "star"]
DIGITS = [str(d) for d in range(10)]
SENTIMENT = ["negative", "positive"]
TRANSFER_CLASSES = ["airplane", "automobile", "bird"]
TEXT_LENGTH = 12
WORDS = ["good", "great", "fine", "bad", "awful", "poor", "movie", "plot", "actors", "music", "the", "a"]
# Index = token id, as TextVectorization.get_vocabulary() lists it: padding "", then the OOV token.
VOCABULARY = ["", "[UNK]", *WORDS]


def binary_from_scratch() -> keras.Model:
    keras.utils.set_random_seed(10)
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    x = keras.layers.RandomFlip("horizontal")(inputs)
    x = keras.layers.RandomRotation(0.1)(x)
    x = keras.layers.Rescaling(1.0 / 255)(x)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.SeparableConv2D(16, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.25)(x)
    outputs = keras.layers.Dense(1, activation=None)(x)
    return keras.Model(inputs, outputs)


def four_class_logits() -> keras.Model:
    keras.utils.set_random_seed(11)
    return keras.Sequential([
        keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3)),
        keras.layers.Rescaling(1.0 / 255),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(len(FOUR_CLASSES)),
    ])


def mnist_convnet() -> keras.Model:
    keras.utils.set_random_seed(12)
    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(8, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Conv2D(8, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(len(DIGITS), activation="softmax"),
    ])


def text_from_scratch() -> keras.Model:
    keras.utils.set_random_seed(13)
    vectorize = keras.layers.TextVectorization(max_tokens=50, output_mode="int", output_sequence_length=TEXT_LENGTH)
    vectorize.adapt(np.asarray([" ".join(WORDS), "good movie", "awful plot"]))
    ids = keras.Input((TEXT_LENGTH,), dtype="int64")
    x = keras.layers.Embedding(50, 8)(ids)
    x = keras.layers.Dropout(0.5)(x)
    x = keras.layers.Conv1D(8, 3, padding="valid", activation="relu", strides=1)(x)
    x = keras.layers.GlobalMaxPooling1D()(x)
    x = keras.layers.Dense(8, activation="relu")(x)
    x = keras.layers.Dropout(0.5)(x)
    predictions = keras.layers.Dense(1, activation="sigmoid", name="predictions")(x)
    model = keras.Model(ids, predictions)
    inputs = keras.Input(shape=(1,), dtype="string")
    return keras.Model(inputs, model(vectorize(inputs)))


def token_id_bilstm() -> keras.Model:
    keras.utils.set_random_seed(14)
    inputs = keras.Input(shape=(None,), dtype="int32")
    x = keras.layers.Embedding(len(VOCABULARY), 8)(inputs)
    x = keras.layers.Bidirectional(keras.layers.LSTM(8, return_sequences=True))(x)
    x = keras.layers.Bidirectional(keras.layers.LSTM(8))(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs)


def _transfer(base: keras.Model, n_classes: int) -> keras.Model:
    base.trainable = False
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    x = base(inputs, training=False)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(256, activation="relu")(x)
    x = keras.layers.Dropout(0.5)(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def resnet50_transfer() -> keras.Model:
    keras.utils.set_random_seed(15)
    base = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
    return _transfer(base, len(TRANSFER_CLASSES))


def mobilenet_transfer() -> keras.Model:
    keras.utils.set_random_seed(16)
    base = keras.applications.MobileNetV2(include_top=False, weights=None, alpha=0.35,
                                          input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
    return _transfer(base, len(TRANSFER_CLASSES))


def rgb_softmax() -> keras.Model:
    keras.utils.set_random_seed(17)
    return keras.Sequential([
        keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3)),
        keras.layers.Rescaling(1.0 / 255),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(len(FOUR_CLASSES), activation="softmax"),
    ])


# name -> (builder, classes); the quick set leaves out the 95 MB ResNet50.
KINDS = {
    "binary_from_scratch": (binary_from_scratch, BINARY_CLASSES),
    "four_class_logits": (four_class_logits, FOUR_CLASSES),
    "mnist_convnet": (mnist_convnet, DIGITS),
    "text_from_scratch": (text_from_scratch, SENTIMENT),
    "token_id_bilstm": (token_id_bilstm, SENTIMENT),
    "mobilenet_transfer": (mobilenet_transfer, TRANSFER_CLASSES),
    "rgb_softmax": (rgb_softmax, FOUR_CLASSES),
}
SLOW_KINDS = {"resnet50_transfer": (resnet50_transfer, TRANSFER_CLASSES)}
# What registration should find for each (output kind, preprocessing or text encoding).
EXPECTED = {
    "binary_from_scratch": ("binary-logit", "inside"),
    "four_class_logits": ("logits", "inside"),
    "mnist_convnet": ("softmax", "0-1"),
    "text_from_scratch": ("sigmoid", "strings"),
    "token_id_bilstm": ("sigmoid", "token_ids"),
    "mobilenet_transfer": ("softmax", "-1..1"),
    "rgb_softmax": ("softmax", "inside"),
    "resnet50_transfer": ("softmax", "caffe"),
}


def save(name: str, folder: Path) -> Path:
    """Build one kind and save it as `<name>.keras` with its class list (and vocabulary) beside it."""
    builder, classes = {**KINDS, **SLOW_KINDS}[name]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.keras"
    builder().save(path)
    (folder / f"{name}.classes.json").write_text(json.dumps(classes))
    if name == "token_id_bilstm":
        (folder / f"{name}.vocab.txt").write_text("\n".join(VOCABULARY) + "\n", encoding="utf-8")
    return path


def save_all(folder: Path, *, slow: bool = False) -> dict[str, Path]:
    names = list(KINDS) + (list(SLOW_KINDS) if slow else [])
    return {name: save(name, folder) for name in names}
