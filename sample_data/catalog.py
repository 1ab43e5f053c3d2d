"""Which datasets exist, their classes, modality and splits, and the cached clean splits."""
from __future__ import annotations

import functools
from typing import Callable

from foundation.dataset import Dataset
from foundation.types import Modality
from sample_data import digits, headlines, shapes, shortcut

DATASET_NAMES = (digits.NAME, shapes.NAME, shortcut.NAME, headlines.NAME)

_BUILDERS: dict[str, Callable[[], dict[str, Dataset]]] = {
    digits.NAME: digits.build,
    shapes.NAME: shapes.build,
    shortcut.NAME: shortcut.build,
    headlines.NAME: headlines.build,
}
_CLASSES = {
    digits.NAME: digits.CLASSES,
    shapes.NAME: shapes.CLASSES,
    shortcut.NAME: shapes.CLASSES,
    headlines.NAME: headlines.CLASSES,
}
_MODALITY = {
    digits.NAME: Modality.IMAGE,
    shapes.NAME: Modality.IMAGE,
    shortcut.NAME: Modality.IMAGE,
    headlines.NAME: Modality.TEXT,
}
_SPLITS = ("train", "val", "test", "train_noisy")
_EXTRA_SPLITS = {shortcut.NAME: ("test_nocue",)}


def check_name(name: str) -> str:
    if name not in _BUILDERS:
        raise KeyError(f"unknown sample dataset {name!r}; choose one of {', '.join(DATASET_NAMES)}")
    return name


def classes(name: str) -> tuple[str, ...]:
    return _CLASSES[check_name(name)]


def modality(name: str) -> Modality:
    return _MODALITY[check_name(name)]


def splits(name: str) -> tuple[str, ...]:
    """Every split `load` accepts for this dataset."""
    return _SPLITS + _EXTRA_SPLITS.get(check_name(name), ())


def check_split(name: str, split: str) -> str:
    allowed = splits(name)
    if split not in allowed:
        raise KeyError(f"dataset {name!r} has no split {split!r}; choose one of {', '.join(allowed)}")
    return split


def clean_split(name: str, split: str) -> Dataset:
    """A split with its true labels (every split except "train_noisy")."""
    return _clean_splits(check_name(name))[split]


@functools.lru_cache(maxsize=None)
def _clean_splits(name: str) -> dict[str, Dataset]:
    return _BUILDERS[name]()
