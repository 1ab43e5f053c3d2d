"""Loading `.keras` files safely: safe mode on, no Lambda layers, no unknown code."""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any, Iterator

from foundation.errors import ModelError

MAX_MODEL_BYTES = 200 * 1024 * 1024


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
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (KeyError, ValueError, zipfile.BadZipFile, OSError) as exc:
        raise ModelError(f"{path.name} has no readable model config ({exc.__class__.__name__}); save it again.") from None
    for layer in _walk_layer_configs(config):
        class_name = str(layer.get("class_name", ""))
        module = str(layer.get("module") or "keras")
        if class_name == "Lambda":
            raise ModelError(
                f"{path.name} contains a Lambda layer, which runs arbitrary Python code; "
                "replace it with built-in layers and save again."
            )
        if class_name == "__lambda__" or not (module.startswith("keras") or module in {"builtins", "numpy"}):
            raise ModelError(
                f"{path.name} uses a custom object ({class_name} from {module}) the workbench cannot load safely; "
                "rebuild the model from built-in Keras layers."
            )
    return config


def load_keras_model(path: Path) -> Any:
    """Load with `safe_mode=True` after the archive checks; every failure becomes a ModelError."""
    inspect_keras_archive(path)
    import keras

    try:
        return keras.saving.load_model(str(path), safe_mode=True, compile=False)
    except Exception as exc:  # keras raises many types; the user needs one clear sentence
        reason = str(exc).splitlines()[0][:200] if str(exc) else exc.__class__.__name__
        raise ModelError(f"{Path(path).name} could not be loaded in safe mode ({reason}); check the file.") from None
