"""Every dataset the workbench knows: the shipped samples and the ones users imported.

Pages, the CLI and jobs call this module rather than `sample_data` directly, so an
imported dataset gets every feature a sample dataset has.

Imported datasets (written by `workbench.imports.commit`) live in the workspace as
`datasets/<name>/`: manifest.json plus one file per split, train/val/test (no
train_noisy: their labels are the user's own). Images are `<split>.npz` (uint8 x, int y,
string ids and sources; read without pickle), texts `<split>.json`. They are immutable
once written, so a loaded split is cached per import.
"""
from __future__ import annotations

import functools
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np

import sample_data
from foundation import config
from foundation.dataset import Dataset
from foundation.errors import WorkbenchError
from foundation.types import Modality

IMPORTED_SPLITS = ("train", "val", "test")
IMPORTED_DIR = "datasets"
MANIFEST_FILE = "manifest.json"


# 20,000 generated shapes (one "test" split): the scale check for the Dataset page.
LARGE_SHAPES = "shapes-20k"


def names() -> list[str]:
    builtin = list(sample_data.DATASET_NAMES) + [LARGE_SHAPES]
    return builtin + [n for n in imported_names() if n not in builtin]


def imported_names() -> list[str]:
    from models.inspect import NAME_PATTERN

    root = config.workspace_dir() / IMPORTED_DIR
    if not root.is_dir():
        return []
    # Hidden folders are imports still being written (or abandoned); never visible.
    return sorted(p.name for p in root.iterdir() if NAME_PATTERN.match(p.name) and (p / MANIFEST_FILE).is_file())


def is_imported(name: str) -> bool:
    return name not in sample_data.DATASET_NAMES and name != LARGE_SHAPES and name in imported_names()


def imported_folder(name: str) -> Path:
    return config.workspace_dir() / IMPORTED_DIR / name


def imported_manifest(name: str) -> dict[str, Any]:
    _check(name)
    if not is_imported(name):
        raise WorkbenchError(f"{name!r} is a sample dataset, not an imported one.")
    with open(imported_folder(name) / MANIFEST_FILE, encoding="utf-8") as handle:
        return json.load(handle)


def splits(name: str) -> tuple[str, ...]:
    _check(name)
    if is_imported(name):
        return IMPORTED_SPLITS
    if name == LARGE_SHAPES:
        return ("test",)
    return tuple(sample_data.splits(name))


def classes(name: str) -> tuple[str, ...]:
    _check(name)
    if is_imported(name):
        return tuple(imported_manifest(name)["classes"])
    return tuple(sample_data.classes("shapes" if name == LARGE_SHAPES else name))


def modality(name: str) -> Modality:
    _check(name)
    if is_imported(name):
        return Modality(imported_manifest(name)["modality"])
    return sample_data.modality("shapes" if name == LARGE_SHAPES else name)


def load(name: str, split: str) -> Dataset:
    _check(name)
    if split not in splits(name):
        raise WorkbenchError(f"dataset {name!r} has no split {split!r}; choose one of {', '.join(splits(name))}.")
    if is_imported(name):
        manifest = imported_manifest(name)
        with _LOCK:
            return _load_imported(str(imported_folder(name)), name, split, manifest["import_id"])
    if name == LARGE_SHAPES:
        from workbench.dataset_view import large_shapes_dataset  # lazy: dataset_view imports this module

        return large_shapes_dataset()
    return sample_data.load(name, split)


def _check(name: str) -> None:
    if name not in names():
        raise WorkbenchError(f"there is no dataset named {name!r}; choose one of {', '.join(names())}.")


_LOCK = threading.RLock()


@functools.lru_cache(maxsize=16)
def _load_imported(folder: str, name: str, split: str, import_id: str) -> Dataset:
    """One split of an imported dataset (cached per import id: a re-import under the same name is new)."""
    root = Path(folder)
    with open(root / MANIFEST_FILE, encoding="utf-8") as handle:
        manifest = json.load(handle)
    modality_ = Modality(manifest["modality"])
    class_names = tuple(manifest["classes"])
    if modality_ is Modality.IMAGE:
        with np.load(root / f"{split}.npz", allow_pickle=False) as data:
            x = np.array(data["x"], dtype=np.uint8)
            y = np.array(data["y"], dtype=np.int64)
            ids = tuple(str(i) for i in data["ids"])
        x.setflags(write=False)
    else:
        with open(root / f"{split}.json", encoding="utf-8") as handle:
            data = json.load(handle)
        x = [str(t) for t in data["texts"]]
        y = np.asarray(data["labels"], dtype=np.int64)
        ids = tuple(str(i) for i in data["ids"])
    y.setflags(write=False)
    return Dataset(name=name, split=split, modality=modality_, classes=class_names, ids=ids, x=x, y=y)
