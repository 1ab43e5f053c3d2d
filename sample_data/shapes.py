"""Generated shapes on varied backgrounds, each with its exact object mask.

Every image is drawn from its own random stream, seeded by (seed, index), so image `i` is the
same whatever `n` is asked for, and a large set is a superset of a small one.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from foundation.dataset import Dataset
from foundation.types import Modality
from sample_data.building import make_ids, readonly, take_split
from sample_data.splits import stratified_split

NAME = "shapes"
CLASSES = ("circle", "square", "triangle", "star")
SIZE = 64
COUNT = 6000
SEED = 20240
SPLIT_SEED = 3000

# The scale check: many more shapes of the same kind, one "test" split.
LARGE_NAME = "shapes-20k"
LARGE_SPLIT = "test"
LARGE_COUNT = 20_000
# Not the seed of the shipped shapes data: these images were never trained on.
LARGE_SEED = 20_000_777

# OpenCV draws with fixed-point coordinates: 4 fractional bits give sub-pixel placement.
_SHIFT = 4
_SCALE = 1 << _SHIFT
# Shape-specific size factors so the four classes cover similar areas (about 2 r^2):
# size alone should not give the class away.
_EXTENT = {"circle": 0.8, "square": 1.0, "triangle": 1.2, "star": 1.2}
_STAR_INNER = 0.5
_STREAM_LABELS = 0
_STREAM_IMAGES = 1


@dataclass(frozen=True)
class ShapeStyle:
    """How hard the images are: object size, contrast to the background, clutter."""

    min_radius: float = 11.0
    max_radius: float = 21.0
    min_contrast: float = 110.0  # RGB distance between object colour and the background beneath it
    max_contrast: float = math.inf
    clutter: int = 0  # extra strokes and dots drawn over every background
    keep_clear: int = 0  # side of the top-left square that no object may touch


PLAIN = ShapeStyle()


def generate_shapes(
    n: int, seed: int, *, style: ShapeStyle = PLAIN, start: int = 0, size: int = SIZE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`n` images (uint8 N x size x size x 3), labels (int64, indices into CLASSES) and masks (bool).

    Labels come in shuffled blocks of one of each class, so any run of examples is balanced.
    `start` offsets the example indices, e.g. to draw extra examples after an existing set.
    """
    labels = _balanced_labels(n, seed, start)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    masks = np.empty((n, size, size), dtype=bool)
    for offset, label in enumerate(labels):
        rng = np.random.default_rng([seed, _STREAM_IMAGES, start + offset])
        images[offset], masks[offset] = _render(rng, CLASSES[label], style, size)
    return images, labels, masks


def build() -> dict[str, Dataset]:
    """The clean splits: "train", "val", "test"."""
    x, y, masks = generate_shapes(COUNT, SEED)
    ids = make_ids(NAME, COUNT)
    return {
        split: take_split(NAME, split, Modality.IMAGE, CLASSES, ids, x, y, index, masks=masks)
        for split, index in stratified_split(y, SPLIT_SEED).items()
    }


def build_large() -> Dataset:
    """`LARGE_COUNT` freshly generated shapes (classes as `shapes`), split "test".

    Deterministic (fixed seed); ~7 s for 20,000. No masks are kept: at this size they would
    cost 80 MB for nothing the workbench shows.
    """
    x, y, _ = generate_shapes(LARGE_COUNT, LARGE_SEED)
    return Dataset(name=LARGE_NAME, split=LARGE_SPLIT, modality=Modality.IMAGE, classes=CLASSES,
                   ids=make_ids(LARGE_NAME, LARGE_COUNT), x=readonly(x), y=readonly(y))


def _balanced_labels(n: int, seed: int, start: int) -> np.ndarray:
    k = len(CLASSES)
    first_block, last_block = start // k, (start + n + k - 1) // k
    blocks = [
        np.random.default_rng([seed, _STREAM_LABELS, block]).permutation(k)
        for block in range(first_block, last_block)
    ]
    flat = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.int64)
    begin = start - first_block * k
    return flat[begin : begin + n].astype(np.int64)


def _render(rng: np.random.Generator, shape: str, style: ShapeStyle, size: int) -> tuple[np.ndarray, np.ndarray]:
    background = _background(rng, size)
    _draw_clutter(background, rng, style.clutter, size)
    alpha = _shape_alpha(rng, shape, style, size)
    mask = alpha >= 0.5
    colour = _pick_colour(rng, background[mask].mean(axis=0), style)
    # A faint grain on the object so it is not a perfectly flat fill.
    fill = colour + _noise(rng, (size, size, 1), 4.0)
    image = background + alpha[..., None] * (fill - background)
    return np.clip(image + 0.5, 0, 255).astype(np.uint8), mask


# --- backgrounds -------------------------------------------------------------------------------


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    kind = int(rng.integers(4))
    if kind == 0:
        return _solid(rng, size)
    if kind == 1:
        return _gradient(rng, size)
    if kind == 2:
        return _texture(rng, size)
    base = _solid(rng, size) if rng.random() < 0.5 else _gradient(rng, size)
    _draw_lines(base, rng, int(rng.integers(3, 9)), size)
    return base


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=3).astype(np.float32)


def _solid(rng: np.random.Generator, size: int) -> np.ndarray:
    image = np.empty((size, size, 3), dtype=np.float32)
    image[:] = _random_colour(rng)
    # Luminance grain (one value per pixel for all channels), like sensor noise on a flat wall.
    image += _noise(rng, (size, size, 1), 3.0)
    return image


def _noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    return rng.standard_normal(size=shape, dtype=np.float32) * np.float32(sigma)


def _gradient(rng: np.random.Generator, size: int) -> np.ndarray:
    start, end = _random_colour(rng), _random_colour(rng)
    angle = rng.uniform(0.0, 2.0 * math.pi)
    rows, cols = _grid(size)
    ramp = cols * np.float32(math.cos(angle)) + rows * np.float32(math.sin(angle))
    low, high = float(ramp.min()), float(ramp.max())
    ramp = (ramp - np.float32(low)) / np.float32(max(high - low, 1e-6))
    return start + ramp[..., None] * (end - start)


@functools.lru_cache(maxsize=4)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32)
    rows.flags.writeable = False
    cols.flags.writeable = False
    return rows, cols


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    # Smooth blotches: coarse random colours blown up with cubic interpolation.
    cells = int(rng.integers(3, 9))
    coarse = rng.uniform(0.0, 255.0, size=(cells, cells, 3)).astype(np.float32)
    blotches = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    base = _random_colour(rng)
    mix = np.float32(rng.uniform(0.3, 0.8))
    return mix * blotches + (np.float32(1.0) - mix) * base


def _draw_lines(
    image: np.ndarray, rng: np.random.Generator, count: int, size: int, max_thickness: int = 3
) -> None:
    ends = rng.integers(0, size, size=(count, 4)).tolist()
    colours = rng.integers(0, 256, size=(count, 3)).tolist()
    widths = rng.integers(1, max_thickness + 1, size=count).tolist()
    for (x1, y1, x2, y2), colour, width in zip(ends, colours, widths):
        cv2.line(image, (x1, y1), (x2, y2), colour, width, cv2.LINE_AA)


def _draw_clutter(image: np.ndarray, rng: np.random.Generator, count: int, size: int) -> None:
    if count <= 0:
        return
    # Thin strokes only: thick bars would hide the small objects they are meant to distract from.
    _draw_lines(image, rng, count, size, max_thickness=1)
    centres = rng.integers(0, size, size=(count, 2)).tolist()
    colours = rng.integers(0, 256, size=(count, 3)).tolist()
    for (x, y), colour in zip(centres, colours):
        cv2.circle(image, (x, y), 1, colour, -1, cv2.LINE_AA)


# --- the object --------------------------------------------------------------------------------


def _shape_alpha(rng: np.random.Generator, shape: str, style: ShapeStyle, size: int) -> np.ndarray:
    radius = rng.uniform(style.min_radius, style.max_radius)
    extent = radius * _EXTENT[shape]
    cx, cy = _place(rng, extent, style.keep_clear, size)
    angle = rng.uniform(0.0, 2.0 * math.pi)
    canvas = np.zeros((size, size), dtype=np.uint8)
    if shape == "circle":
        centre = (int(round(cx * _SCALE)), int(round(cy * _SCALE)))
        cv2.circle(canvas, centre, int(round(extent * _SCALE)), 255, -1, cv2.LINE_AA, _SHIFT)
    else:
        points = _polygon(shape, cx, cy, extent, angle)
        fixed = np.round(points * _SCALE).astype(np.int32).reshape(-1, 1, 2)
        cv2.fillPoly(canvas, [fixed], 255, cv2.LINE_AA, shift=_SHIFT)
    return canvas.astype(np.float32) / 255.0


def _place(rng: np.random.Generator, extent: float, keep_clear: int, size: int) -> tuple[float, float]:
    low, high = extent + 1.0, size - 2.0 - extent
    while True:
        cx, cy = rng.uniform(low, high, size=2)
        # The object must not reach into the reserved corner (where the shortcut cue goes).
        if keep_clear <= 0 or cx - extent > keep_clear or cy - extent > keep_clear:
            return float(cx), float(cy)


def _polygon(shape: str, cx: float, cy: float, extent: float, angle: float) -> np.ndarray:
    if shape == "square":
        corners, radii = 4, [extent]
    elif shape == "triangle":
        corners, radii = 3, [extent]
    elif shape == "star":
        corners, radii = 5, [extent, extent * _STAR_INNER]
    else:
        raise ValueError(f"unknown shape {shape!r}")
    count = corners * len(radii)
    steps = angle + 2.0 * math.pi * np.arange(count) / count
    lengths = np.resize(np.asarray(radii), count)
    return np.stack([cx + lengths * np.cos(steps), cy + lengths * np.sin(steps)], axis=1)


def _pick_colour(rng: np.random.Generator, beneath: np.ndarray, style: ShapeStyle) -> np.ndarray:
    """A random colour whose distance to the background under the object is within the style's range."""
    candidates = rng.integers(0, 256, size=(32, 3)).astype(np.float32)
    distance = np.linalg.norm(candidates - beneath, axis=1)
    fits = (distance >= style.min_contrast) & (distance <= style.max_contrast)
    if fits.any():
        return candidates[int(np.argmax(fits))]
    # No candidate fits: take the one closest to the allowed range.
    miss = np.maximum(style.min_contrast - distance, 0.0) + np.maximum(distance - style.max_contrast, 0.0)
    return candidates[int(np.argmin(miss))]
