"""Deterministic stratified splits and deliberate label flips shared by every dataset."""
from __future__ import annotations

from typing import Sequence

import numpy as np

# Fractions of each class that go to train and val; test takes the rest.
TRAIN_FRACTION = 0.70
VAL_FRACTION = 0.15
FLIP_FRACTION = 0.05


def stratified_split(labels: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Indices for "train", "val" and "test", about 70/15/15 within every class.

    Each split's indices are sorted so its examples keep their original order.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    # np.unique sorts, so classes are visited in a fixed order whatever the input order.
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_train = int(round(TRAIN_FRACTION * len(members)))
        n_val = int(round(VAL_FRACTION * len(members)))
        parts["train"].append(members[:n_train])
        parts["val"].append(members[n_train : n_train + n_val])
        parts["test"].append(members[n_train + n_val :])
    return {name: np.sort(np.concatenate(chunks)).astype(np.int64) for name, chunks in parts.items()}


def choose_flips(labels: np.ndarray, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions to corrupt (about 5%, sorted) and, for each, a label different from the true one."""
    labels = np.asarray(labels, dtype=np.int64)
    if n_classes < 2:
        raise ValueError("flipping labels needs at least two classes")
    rng = np.random.default_rng(seed)
    n_flip = int(round(FLIP_FRACTION * len(labels)))
    positions = np.sort(rng.choice(len(labels), size=n_flip, replace=False))
    # A non-zero offset modulo the class count can never land back on the true label.
    offsets = rng.integers(1, n_classes, size=n_flip)
    return positions, (labels[positions] + offsets) % n_classes


def grouped_split(groups: Sequence[str], strata: Sequence[str], seed: int) -> dict[str, np.ndarray]:
    """Indices for "train", "val" and "test" with every group wholly inside one split.

    Within each stratum (visited in sorted order) the groups are shuffled with `seed` and each
    goes, whole, to the split furthest below its 70/15/15 share of the stratum's examples; so
    every split gets a group of each stratum that has three or more. A group must lie in one
    stratum. Each split's indices are sorted so its examples keep their original order.
    """
    groups = np.asarray(groups)
    strata = np.asarray(strata)
    if groups.shape != strata.shape:
        raise ValueError("groups and strata must have one entry per example")
    rng = np.random.default_rng(seed)
    names = ("train", "val", "test")
    fractions = np.array([TRAIN_FRACTION, VAL_FRACTION, 1.0 - TRAIN_FRACTION - VAL_FRACTION])
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for stratum in np.unique(strata):
        in_stratum = strata == stratum
        members = np.unique(groups[in_stratum])
        if np.isin(members, groups[~in_stratum]).any():
            raise ValueError(f"a group of stratum {stratum!r} also appears in another stratum")
        target = fractions * int(in_stratum.sum())
        taken = np.zeros(len(names))
        for group in rng.permutation(members):
            index = np.flatnonzero(groups == group)
            # Furthest below its share; ties go to the earlier split (train, then val).
            split = int(np.argmax(target - taken))
            taken[split] += len(index)
            parts[names[split]].append(index)
    return {
        name: np.sort(np.concatenate(chunks or [np.empty(0, np.int64)])).astype(np.int64)
        for name, chunks in parts.items()
    }
