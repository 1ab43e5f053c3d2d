"""The shipped sample datasets: loaders, deterministic generators and a stable content hash.

    >>> from sample_data import load
    >>> ds = load("shapes", "train")

Every split is generated (or, for digits, read from scikit-learn's bundled copy) on first use
and cached for the life of the process: repeat calls return the same read-only object.
"""
from __future__ import annotations

import functools
import hashlib
import threading

import numpy as np

from explainers.types import Modality
from sample_data import catalog, noisy
from sample_data.catalog import DATASET_NAMES, classes, modality, splits
from sample_data.noisy import write_flipped_files
from sample_data.shapes import generate_shapes
from sample_data.types import Dataset

__all__ = [
    "DATASET_NAMES",
    "Dataset",
    "classes",
    "dataset_hash",
    "generate_shapes",
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


def dataset_hash(ds: Dataset) -> str:
    """sha256 hex digest of a split's content: class names, ids, labels and data.

    Independent of the split's name, so a snapshot of the same examples hashes the same
    wherever it came from. Every field is length-prefixed so no two contents can collide by
    shifting bytes from one field to the next.
    """
    digest = hashlib.sha256()

    def add(chunk: bytes) -> None:
        digest.update(len(chunk).to_bytes(8, "little"))
        digest.update(chunk)

    add(ds.modality.value.encode())
    for name in ds.classes:
        add(name.encode("utf-8"))
    for example_id in ds.ids:
        add(example_id.encode("utf-8"))
    add(np.ascontiguousarray(ds.y, dtype="<i8").tobytes())
    if ds.modality is Modality.TEXT:
        for text in ds.x:
            add(str(text).encode("utf-8"))
    else:
        x = np.ascontiguousarray(ds.x)
        add(f"{x.dtype.str}{x.shape}".encode())
        add(x.tobytes())
    return digest.hexdigest()
