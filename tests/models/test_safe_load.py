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


def _with_config(path, edit):
    """Rewrite the archive at `path` with `edit(config) -> bytes` as its config.json."""
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    files["config.json"] = edit(json.loads(files["config.json"]))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize("module", ["keras.src.layers_evil", "kerasx.layers", "keras_evil", "keras.layers.x",
                                    "keras.src.saving", "os", ""])
def test_a_look_alike_module_is_refused(tmp_path, module):
    path = tmp_path / "lookalike.keras"
    _small_model().save(path)

    def edit(config):
        config["config"]["layers"][1]["module"] = module or None  # None reads as "keras": allowed
        return json.dumps(config).encode()

    _with_config(path, edit)
    if module:
        with pytest.raises(ModelError, match=f"custom object \\(Dense from {module}\\)"):
            inspect_keras_archive(path)
    else:
        inspect_keras_archive(path)


def test_every_module_a_real_model_writes_is_allowed(tmp_path):
    from models.safe_load import ALLOWED_MODULES, _walk_layer_configs

    inputs = keras.Input(shape=(8, 8, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(2, 3, kernel_regularizer=keras.regularizers.L2(0.1))(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.ops.mean(x, axis=(1, 2))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    path = tmp_path / "real.keras"
    model.save(path)
    config = inspect_keras_archive(path)
    assert {layer.get("module") for layer in _walk_layer_configs(config)} - {None} <= ALLOWED_MODULES


def test_an_oversized_config_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    from models import safe_load

    path = tmp_path / "big.keras"
    _small_model().save(path)
    limit = safe_load.MAX_CONFIG_BYTES
    _with_config(path, lambda config: json.dumps(dict(config, padding=" " * limit)).encode())
    parsed = []
    monkeypatch.setattr(safe_load.json, "loads", lambda data: parsed.append(data))
    with pytest.raises(ModelError, match=r"big.keras has a model config larger than 8 MB") as raised:
        load_keras_model(path)
    assert parsed == [] and "\n" not in str(raised.value)


def test_a_config_whose_declared_size_lies_is_read_only_up_to_the_bound(tmp_path, monkeypatch):
    from models import safe_load

    try:
        from tests.workbench.hostile import crafted_zip
    except ImportError:
        pytest.skip("run from the repository root")
    monkeypatch.setattr(safe_load, "MAX_CONFIG_BYTES", 1000)
    path = tmp_path / "lying.keras"
    path.write_bytes(crafted_zip([("config.json", b"[" * 5000, 10)]))
    with pytest.raises(ModelError):
        inspect_keras_archive(path)


def test_a_config_at_the_bound_is_still_read(tmp_path, monkeypatch):
    from models import safe_load

    path = tmp_path / "fits.keras"
    _small_model().save(path)
    with zipfile.ZipFile(path) as archive:
        size = len(archive.read("config.json"))
    monkeypatch.setattr(safe_load, "MAX_CONFIG_BYTES", size)
    assert inspect_keras_archive(path)["class_name"] == "Functional"
