"""Loading `.keras` files safely: safe mode on, no Lambda layers, no unknown code.

Before Keras sees a file, its config.json is read (at most `MAX_CONFIG_BYTES`, whatever the
archive declares) and every object in it must come from a module on an exact allow-list
(`ALLOWED_MODULES`): a prefix test would let "keras.src.layers_evil" or "kerasx.layers" through.
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any, Iterator

from foundation.errors import ModelError

MAX_MODEL_BYTES = 200 * 1024 * 1024
# A real model's config is tens to hundreds of kilobytes (ResNet50: ~0.3 MB); parsing is bounded.
MAX_CONFIG_BYTES = 8 * 1024 * 1024

# The modules Keras 3 writes for its own built-in objects (public API names, plus the few
# internal ones it uses for objects without a public name); nothing else is loaded.
ALLOWED_MODULES = frozenset({
    "keras", "keras.layers", "keras.initializers", "keras.regularizers", "keras.constraints",
    "keras.activations", "keras.optimizers", "keras.optimizers.schedules", "keras.losses",
    "keras.metrics", "keras.dtype_policies",
    "keras.src.models.functional", "keras.src.models.sequential", "keras.src.models.model",
    "keras.src.ops.numpy", "keras.src.ops.nn", "keras.src.ops.math", "keras.src.ops.core",
    "keras.src.ops.image", "keras.src.ops.linalg",
    "builtins", "numpy",  # Keras resolves these only to its own built-in functions and dtypes
})


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _walk_layer_configs(node: Any) -> Iterator[dict]:
    if isinstance(node, dict):
        if "class_name" in node:
            yield node
        for value in node.values():
            yield from _walk_layer_configs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk_layer_configs(value)


def inspect_keras_archive(path: Path) -> dict:
    """Read config.json from a .keras archive and refuse what safe loading must not run."""
    path = Path(path)
    if path.suffix.lower() in {".h5", ".hdf5"}:
        raise ModelError(
            f"{path.name} is a legacy HDF5 model, which can run arbitrary code; "
            "re-save it with model.save('model.keras') and load that file."
        )
    if path.suffix.lower() != ".keras":
        raise ModelError(f"{path.name} is not a .keras model file; save the model with model.save('name.keras').")
    if not path.is_file():
        raise ModelError(f"{path} does not exist; check the path.")
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise ModelError(f"{path.name} is larger than {MAX_MODEL_BYTES // 2**20} MB; use a smaller model.")
    if not zipfile.is_zipfile(path):
        raise ModelError(f"{path.name} is not a valid .keras archive (damaged or not a Keras 3 file); save it again.")
    config = _read_config(path)
    try:
        _refuse_unsafe_objects(path, config)
    except RecursionError:
        raise ModelError(f"{path.name} has a model config nested too deeply to check; the file is refused.") from None
    return config


def _read_config(path: Path) -> Any:
    """config.json of the archive, refused before parsing when it is larger than the bound."""
    try:
        with zipfile.ZipFile(path) as archive:
            if archive.getinfo("config.json").file_size > MAX_CONFIG_BYTES:
                raise _config_too_large(path)
            with archive.open("config.json") as handle:
                data = handle.read(MAX_CONFIG_BYTES + 1)  # the declared size may lie
        if len(data) > MAX_CONFIG_BYTES:
            raise _config_too_large(path)
        return json.loads(data)
    except (KeyError, ValueError, RecursionError, zipfile.BadZipFile, OSError) as exc:
        raise ModelError(f"{path.name} has no readable model config ({exc.__class__.__name__}); save it again.") from None


def _config_too_large(path: Path) -> ModelError:
    return ModelError(
        f"{path.name} has a model config larger than {MAX_CONFIG_BYTES // 2**20} MB, far more than any "
        "real model needs; the file is refused."
    )


def _refuse_unsafe_objects(path: Path, config: Any) -> None:
    for layer in _walk_layer_configs(config):
        class_name = str(layer.get("class_name", ""))
        module = str(layer.get("module") or "keras")
        if class_name == "Lambda":
            raise ModelError(
                f"{path.name} contains a Lambda layer, which runs arbitrary Python code; "
                "replace it with built-in layers and save again."
            )
        if class_name == "__lambda__" or module not in ALLOWED_MODULES:
            raise ModelError(
                f"{path.name} uses a custom object ({class_name} from {module}) the workbench cannot load safely; "
                "rebuild the model from built-in Keras layers."
            )


def load_keras_model(path: Path) -> Any:
    """Load with `safe_mode=True` after the archive checks; every failure becomes a ModelError."""
    inspect_keras_archive(path)
    import keras

    try:
        return keras.saving.load_model(str(path), safe_mode=True, compile=False)
    except Exception as exc:  # keras raises many types; the user needs one clear sentence
        reason = str(exc).splitlines()[0][:200] if str(exc) else exc.__class__.__name__
        raise ModelError(f"{Path(path).name} could not be loaded in safe mode ({reason}); check the file.") from None
