"""The dataset type every loader returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from explainers.types import Modality

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
