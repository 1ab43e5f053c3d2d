"""Small user-style Keras models and malicious model files, for the bring-your-own tests.

Each `save_*` function writes one `.keras` (or `.h5`) file into a folder and returns its path.
The malicious ones are crafted so that loading them naively could run code or crash; the
workbench must refuse every one with a ModelError before anything is deserialised.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import keras
import numpy as np

NESTED_SIZE = 64
NESTED_CLASSES = ["cat", "dog", "bird"]
CNN_SIZE = 32
CNN_CLASSES = ["left", "right"]
TEXT_CLASSES = ["negative", "positive"]
TEXT_VOCAB = ["good", "bad", "great", "awful", "movie", "plot"]
TEXT_LENGTH = 7


def nested_mobilenet() -> keras.Model:
    """Sequential: Rescaling -> MobileNetV2 base (random weights, nested) -> pooling -> softmax head."""
    keras.utils.set_random_seed(0)
    base = keras.applications.MobileNetV2(
        include_top=False, weights=None, alpha=0.35, input_shape=(NESTED_SIZE, NESTED_SIZE, 3)
    )
    model = keras.Sequential(
        [
            keras.Input((NESTED_SIZE, NESTED_SIZE, 3)),
            keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale"),
            base,
            keras.layers.GlobalAveragePooling2D(name="pool"),
            keras.layers.Dense(len(NESTED_CLASSES), activation="softmax", name="head"),
        ],
        name="nested",
    )
    _calibrate_batch_norm(model, base)
    return model


def _calibrate_batch_norm(model: keras.Model, base: keras.Model) -> None:
    """Set every BatchNormalization's moving statistics to those of one batch of noise images.

    With random weights and the default statistics (mean 0, variance 1) MobileNetV2's
    activations shrink to ~1e-11 by its last layer, so every gradient vanishes. One
    training-mode pass with momentum 0 makes inference see unit-scale activations,
    as after real training, without downloading pretrained weights.
    """
    images = np.random.default_rng(0).integers(0, 256, (16, NESTED_SIZE, NESTED_SIZE, 3)).astype("float32")
    norms = [layer for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    model(images, training=True)
    for layer, momentum in zip(norms, momenta):
        layer.momentum = momentum


def plain_cnn() -> keras.Model:
    """Sequential CNN with no rescaling layer (so whether it wants 0-1 or 0-255 must be asked)."""
    keras.utils.set_random_seed(1)
    return keras.Sequential(
        [
            keras.Input((CNN_SIZE, CNN_SIZE, 3)),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_a"),
            keras.layers.MaxPooling2D(name="pool_a"),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="last_conv"),
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(len(CNN_CLASSES), name="logits"),
            keras.layers.Softmax(name="probs"),
        ],
        name="plain_cnn",
    )


def text_model() -> keras.Model:
    keras.utils.set_random_seed(2)
    vectorize = keras.layers.TextVectorization(
        max_tokens=20, output_sequence_length=TEXT_LENGTH, vocabulary=TEXT_VOCAB, name="vec"
    )
    inputs = keras.Input(shape=(1,), dtype="string")
    x = vectorize(inputs)
    x = keras.layers.Embedding(len(TEXT_VOCAB) + 2, 4, name="embed")(x)
    x = keras.layers.Conv1D(3, 3, padding="same", activation="relu", name="text_conv")(x)
    x = keras.layers.GlobalMaxPooling1D()(x)
    outputs = keras.layers.Dense(len(TEXT_CLASSES), activation="softmax")(x)
    return keras.Model(inputs, outputs, name="text_user")


def save(model: keras.Model, folder: Path, name: str, classes: list[str] | None = None) -> Path:
    """Save a model (and optionally `<name>.classes.json` beside it)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.keras"
    model.save(path)
    if classes is not None:
        (folder / f"{name}.classes.json").write_text(json.dumps(classes), encoding="utf-8")
    return path


def tiny_dense() -> keras.Model:
    inputs = keras.Input((4, 4, 3))
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


# --------------------------------------------------------------------- malicious


def _rewrite_config(path: Path, change) -> Path:
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    change(config)
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def save_h5(folder: Path) -> Path:
    path = Path(folder) / "legacy.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    return path


def save_lambda(folder: Path) -> Path:
    inputs = keras.Input((4, 4, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    path = Path(folder) / "lambda.keras"
    model.save(path)
    return path


def save_custom_object(folder: Path) -> Path:
    """A Dense layer re-labelled as a class from an unknown package (loading would import it)."""
    path = save(tiny_dense(), folder, "custom")

    def change(config):
        layer = config["config"]["layers"][-1]
        layer["module"], layer["class_name"] = "evil_package.layers", "Backdoor"

    return _rewrite_config(path, change)


def save_os_system(folder: Path) -> Path:
    """A layer that claims to be os.system: the archive check must refuse the module."""
    path = save(tiny_dense(), folder, "os_system")

    def change(config):
        layer = config["config"]["layers"][-1]
        layer["module"], layer["class_name"] = "os", "system"

    return _rewrite_config(path, change)


def save_garbage(folder: Path) -> Path:
    path = Path(folder) / "garbage.keras"
    path.write_bytes(np.random.default_rng(0).bytes(2048))
    return path


def save_text_renamed(folder: Path) -> Path:
    path = Path(folder) / "notes.keras"
    path.write_text("this is not a model\n", encoding="utf-8")
    return path


def save_zip_without_config(folder: Path) -> Path:
    path = Path(folder) / "noconfig.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", "{}")
    return path


def save_broken_weights(folder: Path) -> Path:
    """A real config with its weights file replaced by junk: passes the archive check, fails safe loading."""
    path = save(tiny_dense(), folder, "broken_weights")
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    files["model.weights.h5"] = b"junk"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


MALICIOUS = {
    "h5": (save_h5, "legacy HDF5"),
    "lambda": (save_lambda, "Lambda layer"),
    "custom_object": (save_custom_object, "custom object"),
    "os_system": (save_os_system, "custom object"),
    "garbage": (save_garbage, "not a valid .keras archive"),
    "text_renamed": (save_text_renamed, "not a valid .keras archive"),
    "zip_without_config": (save_zip_without_config, "no readable model config"),
    "broken_weights": (save_broken_weights, "safe mode"),
}
