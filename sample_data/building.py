"""Small helpers that turn generated arrays into read-only `Dataset` splits."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from foundation.dataset import Dataset
from foundation.types import Modality


def readonly(array: np.ndarray) -> np.ndarray:
    """The array itself, locked: cached splits are shared, so nobody may write into them."""
    array = np.ascontiguousarray(array)
    array.flags.writeable = False
    return array


def make_ids(prefix: str, count: int, start: int = 0) -> tuple[str, ...]:
    return tuple(f"{prefix}-{i:05d}" for i in range(start, start + count))


def take_split(
    name: str,
    split: str,
    modality: Modality,
    classes: tuple[str, ...],
    ids: Sequence[str],
    x: Any,
    y: np.ndarray,
    index: np.ndarray,
    *,
    masks: np.ndarray | None = None,
    cue_masks: np.ndarray | None = None,
    rationales: Sequence[tuple[str, ...]] | None = None,
) -> Dataset:
    """The examples at `index` (in that order) as one locked split."""
    index = np.asarray(index, dtype=np.int64)
    if modality is Modality.TEXT:
        split_x: Any = [x[i] for i in index]
    else:
        split_x = readonly(np.asarray(x)[index])
    return Dataset(
        name=name,
        split=split,
        modality=modality,
        classes=classes,
        ids=tuple(ids[i] for i in index),
        x=split_x,
        y=readonly(np.asarray(y, dtype=np.int64)[index]),
        masks=None if masks is None else readonly(masks[index]),
        cue_masks=None if cue_masks is None else readonly(cue_masks[index]),
        rationales=None if rationales is None else tuple(tuple(rationales[i]) for i in index),
    )
