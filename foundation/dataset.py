"""The dataset type every loader returns, and its content hash."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from foundation.types import Modality

SPLITS = ("train", "val", "test", "train_noisy")


@dataclass(frozen=True, eq=False)
class Dataset:
    """One split of one dataset.

    `x` is uint8 N x H x W x 3 (images) or a list of strings (text). `y` holds class indices.
    `ids` are stable strings unique across the dataset's splits (e.g. "digits-00042"); in the
    `train_noisy` split an id keeps the id of its clean twin, and `flipped_ids` lists the ids
    whose label was deliberately changed.
    """

    name: str
    split: str
    modality: Modality
    classes: tuple[str, ...]
    ids: tuple[str, ...]
    x: Any
    y: np.ndarray
    masks: np.ndarray | None = None  # images with ground truth: N x H x W bool object masks
    cue_masks: np.ndarray | None = None  # shortcut data: N x H x W bool where the planted cue is
    rationales: tuple[tuple[str, ...], ...] | None = None  # text: the words carrying the sentiment
    flipped_ids: frozenset[str] = field(default_factory=frozenset)

    def __len__(self) -> int:
        return len(self.ids)

    def index_of(self, example_id: str) -> int:
        return self.ids.index(example_id)


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
