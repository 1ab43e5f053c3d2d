"""Shapes with a planted shortcut: a magenta corner mark that, in the usual splits, means "circle".

A model trained here can score well on its own test split while looking only at the corner.
The extra split "test_nocue" puts the mark on a random quarter of the images regardless of
class, so a model that learnt the mark instead of the shape is caught out there.
"""
from __future__ import annotations

import numpy as np

from foundation.dataset import Dataset
from foundation.types import Modality
from sample_data.building import make_ids, take_split
from sample_data.shapes import CLASSES, ShapeStyle, generate_shapes
from sample_data.splits import stratified_split

NAME = "shapes-shortcut"
CUE_CLASS = "circle"
CUE_TOP, CUE_LEFT, CUE_SIDE = 2, 2, 6
CUE_COLOUR = (255, 0, 255)
CUE_RATE_IN_CLASS = 0.97  # "nearly all" circles carry the mark in train/val/test
NOCUE_RATE = 0.25  # share of "test_nocue" images that carry the mark, whatever their class
COUNT = 6000
NOCUE_COUNT = 450
SEED = 61016
SPLIT_SEED = 3001
CUE_SEED = 6

# The shapes here are a little harder than in "shapes": somewhat smaller, closer in colour to
# their background, and drawn over a few extra strokes and dots, so the mark is the cheapest
# way to spot a circle. They stay learnable, though: a first, much harder style (radius 7-13,
# contrast 45-100, five clutter strokes) left the model at chance on the other three classes
# (test accuracy 0.45), and the lesson needs a model that looks accurate on its own test data.
# The corner the mark occupies is kept free of objects, so object and cue masks never overlap.
HARD = ShapeStyle(
    min_radius=10.0,
    max_radius=19.0,
    min_contrast=80.0,
    clutter=3,
    keep_clear=CUE_TOP + CUE_SIDE + 2,
)


def cue_mask(size: int) -> np.ndarray:
    """Where the mark goes in a size x size image."""
    mask = np.zeros((size, size), dtype=bool)
    mask[CUE_TOP : CUE_TOP + CUE_SIDE, CUE_LEFT : CUE_LEFT + CUE_SIDE] = True
    return mask


def add_cue(images: np.ndarray, marked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A copy of `images` with the mark painted on the `marked` ones, and the N x H x W cue masks."""
    images = np.array(images, copy=True)
    marked = np.asarray(marked, dtype=bool)
    cue_masks = np.zeros(images.shape[:3], dtype=bool)
    cue_masks[marked] = cue_mask(images.shape[1])
    images[cue_masks] = CUE_COLOUR
    return images, cue_masks


def build() -> dict[str, Dataset]:
    """The splits "train", "val", "test" (mark means circle) and "test_nocue" (mark means nothing)."""
    x, y, masks = generate_shapes(COUNT + NOCUE_COUNT, SEED, style=HARD)
    ids = make_ids(NAME, COUNT + NOCUE_COUNT)
    marked = _choose_marked(y)
    x, cue_masks = add_cue(x, marked)
    indices = stratified_split(y[:COUNT], SPLIT_SEED)
    indices["test_nocue"] = np.arange(COUNT, COUNT + NOCUE_COUNT)
    return {
        split: take_split(
            NAME, split, Modality.IMAGE, CLASSES, ids, x, y, index, masks=masks, cue_masks=cue_masks
        )
        for split, index in indices.items()
    }


def _choose_marked(labels: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(CUE_SEED)
    marked = np.zeros(len(labels), dtype=bool)
    main = labels[:COUNT]
    marked[:COUNT] = (main == CLASSES.index(CUE_CLASS)) & (rng.random(COUNT) < CUE_RATE_IN_CLASS)
    # Exactly a quarter of the extra split, picked without looking at the labels.
    chosen = rng.choice(NOCUE_COUNT, size=int(round(NOCUE_RATE * NOCUE_COUNT)), replace=False)
    marked[COUNT + chosen] = True
    return marked
