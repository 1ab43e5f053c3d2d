"""Handwritten digits: scikit-learn's bundled 8x8 scans (no download), upscaled to 64x64 RGB."""
from __future__ import annotations

import cv2
import numpy as np

from foundation.dataset import Dataset
from foundation.types import Modality
from sample_data.building import make_ids, take_split
from sample_data.splits import stratified_split

NAME = "digits"
CLASSES = tuple(str(d) for d in range(10))
SIZE = 64
SPLIT_SEED = 1797


def images_and_labels() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as uint8 N x 64 x 64 x 3 images and their class indices."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # The scans hold ink counts 0..16; stretch them to the full byte range before resizing.
    small = bunch.images.astype(np.float32) * (255.0 / 16.0)
    big = np.empty((len(small), SIZE, SIZE), dtype=np.float32)
    for i, image in enumerate(small):
        big[i] = cv2.resize(image, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
    # Cubic interpolation overshoots at stroke edges, hence the clip before the cast.
    grey = np.clip(np.rint(big), 0, 255).astype(np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    return rgb, bunch.target.astype(np.int64)


def build() -> dict[str, Dataset]:
    """The clean splits: "train", "val", "test"."""
    x, y = images_and_labels()
    ids = make_ids(NAME, len(y))
    return {
        split: take_split(NAME, split, Modality.IMAGE, CLASSES, ids, x, y, index)
        for split, index in stratified_split(y, SPLIT_SEED).items()
    }
