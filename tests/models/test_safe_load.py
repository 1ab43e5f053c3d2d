"""Safe model loading: good .keras files load; everything that could run code is refused."""
import json
import zipfile

import keras
import numpy as np
import pytest

from foundation.errors import ModelError
from models.safe_load import inspect_keras_archive, load_keras_model


def _small_model():
    inputs = keras.Input(shape=(4,))
    outputs = keras.layers.Dense(2, activation="softmax")(inputs)
    return keras.Model(inputs, outputs)


def test_a_plain_keras_file_loads_and_predicts_the_same(tmp_path):
    model = _small_model()
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = load_keras_model(path)
    x = np.arange(8, dtype="float32").reshape(2, 4)
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6)


def test_h5_is_refused_with_advice(tmp_path):
    path = tmp_path / "old.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(ModelError, match="legacy HDF5.*model.keras"):
        load_keras_model(path)


def test_lambda_layer_is_refused_before_loading(tmp_path):
    inputs = keras.Input(shape=(4,))
    outputs = keras.layers.Lambda(lambda t: t * 2)(inputs)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ModelError, match="Lambda layer"):
        inspect_keras_archive(path)


def test_unknown_custom_object_is_refused(tmp_path):
    path = tmp_path / "custom.keras"
    _small_model().save(path)
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    config["config"]["layers"][1]["module"] = "evil_package.layers"
    config["config"]["layers"][1]["class_name"] = "Backdoor"
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    with pytest.raises(ModelError, match="custom object.*Backdoor"):
        load_keras_model(path)


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04broken"])
def test_garbage_files_are_refused(tmp_path, content):
    path = tmp_path / "broken.keras"
    path.write_bytes(content)
    with pytest.raises(ModelError):
        load_keras_model(path)


def test_wrong_extension_is_refused(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(b"\x80\x04")
    with pytest.raises(ModelError, match="not a .keras"):
        load_keras_model(path)
