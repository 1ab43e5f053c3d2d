"""Scale-check shapes at any size, generated lazily: "shapes-100k" holds no images in memory.

100,000 images of 64 x 64 x 3 would be 1.2 GB as uint8 (4.9 GB as float32) and take about
35 s to draw. The Dataset page needs every image only once, for the batch pass that writes
its Parquet cache; afterwards it shows a few dozen thumbnails and one example at a time. So
`x` here is a read-only sequence that draws image `i` when asked (about 0.4 ms), and a slice
draws just that range. Image `i` is the same as in `shapes-20k` (same seed; the generator
seeds every image by its index), so the sets are supersets of each other.

The labels and ids are held (cheap); the content is pinned by `LazyShapes.fingerprint`
(generator, seed, size, count) instead of a hash of every pixel, which would mean drawing them all.
"""
from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from foundation.dataset import Dataset
from foundation.types import Modality
from sample_data import shapes
from sample_data.building import readonly

SPLIT = "test"
SEED = shapes.LARGE_SEED
# Bump when the drawing code changes what image `i` looks like: cached predictions then go stale.
GENERATOR_VERSION = "shapes-lazy-1"


def scale_name(n: int) -> str:
    """"shapes-100k" for 100,000, "shapes-5k" for 5,000, "shapes-1234" otherwise."""
    return f"shapes-{n // 1000}k" if n % 1000 == 0 and n >= 1000 else f"shapes-{n}"


def size_of(name: str) -> int | None:
    """The number of examples a scale-set name stands for, or None if it is not one."""
    if not name.startswith("shapes-"):
        return None
    tail = name[len("shapes-"):]
    try:
        n = int(tail[:-1]) * 1000 if tail.endswith("k") else int(tail)
    except ValueError:
        return None
    return n if n > 0 and scale_name(n) == name else None


class LazyShapes(Sequence):
    """`n` generated shape images (uint8 64 x 64 x 3), drawn on access; slices give an array."""

    def __init__(self, n: int, seed: int = SEED, size: int = shapes.SIZE) -> None:
        self.n, self.seed, self.size = int(n), int(seed), int(size)
        self.shape = (self.n, self.size, self.size, 3)
        self.dtype = np.dtype(np.uint8)
        self.ndim = 4
        self.fingerprint = f"{GENERATOR_VERSION}:{self.seed}:{self.size}:{self.n}"

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, slice):
            start, stop, step = key.indices(self.n)
            if step != 1:
                return self.take(np.arange(start, stop, step))
            return self._range(start, max(stop - start, 0))
        if isinstance(key, (list, tuple, np.ndarray)):
            return self.take(np.asarray(key, dtype=np.int64))
        index = int(key)
        if index < 0:
            index += self.n
        if not 0 <= index < self.n:
            raise IndexError(f"image {key} of {self.n}")
        return _one_image(self.seed, self.size, index)

    def take(self, indices: np.ndarray) -> np.ndarray:
        out = np.empty((len(indices), self.size, self.size, 3), dtype=np.uint8)
        for slot, index in enumerate(indices):
            out[slot] = self[int(index)]
        return out

    def _range(self, start: int, count: int) -> np.ndarray:
        images, _, _ = shapes.generate_shapes(count, self.seed, start=start, size=self.size)
        return images

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        # Whoever asks for the whole array gets it (1.2 GB at 100k): nothing in the Dataset page does.
        array = self._range(0, self.n)
        return array if dtype is None else array.astype(dtype)

    def __repr__(self) -> str:
        return f"LazyShapes(n={self.n}, seed={self.seed})"


@functools.lru_cache(maxsize=512)
def _one_image(seed: int, size: int, index: int) -> np.ndarray:
    images, _, _ = shapes.generate_shapes(1, seed, start=index, size=size)
    return readonly(images[0])


def scale_shapes(n: int) -> Dataset:
    """`n` lazily drawn shapes (classes of "shapes"), one split "test", named `scale_name(n)`."""
    if n <= 0:
        raise ValueError(f"a scale set needs at least one example, not {n}")
    with _LOCK:
        return _scale_shapes(int(n))


_LOCK = threading.Lock()


@functools.lru_cache(maxsize=4)
def _scale_shapes(n: int) -> Dataset:
    name = scale_name(n)
    labels = readonly(shapes._balanced_labels(n, SEED, 0))
    width = max(5, len(str(n - 1)))
    ids = tuple(f"{name}-{i:0{width}d}" for i in range(n))
    return Dataset(name=name, split=SPLIT, modality=Modality.IMAGE, classes=shapes.CLASSES, ids=ids,
                   x=LazyShapes(n), y=labels)
