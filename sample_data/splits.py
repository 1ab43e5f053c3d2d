"""Deterministic stratified splits and deliberate label flips shared by every dataset."""
from __future__ import annotations

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
