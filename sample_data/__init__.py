"""The shipped sample datasets: loaders, deterministic generators and a stable content hash.

    >>> from sample_data import load
    >>> ds = load("shapes", "train")

Every split is generated (or, for digits, read from scikit-learn's bundled copy) on first use
and cached for the life of the process: repeat calls return the same read-only object.

Besides the four samples (`DATASET_NAMES`, each with train/val/test/train_noisy) the package
generates one scale-check set, `large_shapes()`: 20,000 shapes in a single "test" split. It
is kept apart because it has no training splits, no noisy copy and no sample model.
"""
from __future__ import annotations

import functools
import threading

from foundation.dataset import Dataset, dataset_hash
from sample_data import catalog, noisy, shapes
from sample_data.catalog import DATASET_NAMES, classes, modality, splits
from sample_data.noisy import write_flipped_files
from sample_data.shapes import LARGE_NAME as LARGE_SHAPES_NAME
from sample_data.shapes import LARGE_SPLIT as LARGE_SHAPES_SPLIT
from sample_data.shapes import NAME as SHAPES_NAME
from sample_data.shapes import generate_shapes

__all__ = [
    "DATASET_NAMES",
    "Dataset",
    "LARGE_SHAPES_NAME",
    "LARGE_SHAPES_SPLIT",
    "SHAPES_NAME",
    "classes",
    "dataset_hash",
    "generate_shapes",
    "large_shapes",
    "load",
    "modality",
    "splits",
    "write_flipped_files",
]


def load(name: str, split: str) -> Dataset:
    """One split of a sample dataset; raises KeyError naming the valid choices if either is unknown.

    Splits: "train", "val", "test", "train_noisy" (train with ~5% labels flipped), and for
    "shapes-shortcut" also "test_nocue". Treat the result as read-only: it is shared.
    """
    catalog.check_split(catalog.check_name(name), split)
    # Streamlit serves sessions from several threads; without the lock two of them could each
    # build a dataset on first use and end up holding different objects.
    with _BUILD_LOCK:
        return _load(name, split)


_BUILD_LOCK = threading.RLock()


@functools.lru_cache(maxsize=None)
def _load(name: str, split: str) -> Dataset:
    if split == "train_noisy":
        return noisy.noisy_split(_load(name, "train"))
    return catalog.clean_split(name, split)


def large_shapes() -> Dataset:
    """The scale-check set: 20,000 generated shapes with the classes of "shapes", split "test".

    Generated on first use (~7 s), then the same read-only object for the life of the process.
    """
    with _LARGE_LOCK:  # its own lock: building it must not hold up loading the samples
        return _large_shapes()


_LARGE_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def _large_shapes() -> Dataset:
    return shapes.build_large()
