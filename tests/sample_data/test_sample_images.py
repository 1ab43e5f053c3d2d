"""The image datasets: digits, shapes and shapes-shortcut."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

import sample_data
from foundation.types import Modality
from sample_data import shortcut
from sample_data.shapes import CLASSES as SHAPE_CLASSES
from sample_data.shapes import PLAIN, generate_shapes

IMAGE_SETS = ("digits", "shapes", "shapes-shortcut")


def _clean_splits(name: str) -> list[sample_data.Dataset]:
    return [sample_data.load(name, split) for split in ("train", "val", "test")]


@pytest.mark.parametrize("name", IMAGE_SETS)
def test_image_splits_have_contract_shapes_and_types(name: str) -> None:
    for ds in _clean_splits(name):
        n = len(ds)
        assert ds.x.shape == (n, 64, 64, 3) and ds.x.dtype == np.uint8
        assert ds.y.shape == (n,) and ds.y.dtype == np.int64
        assert ds.y.min() >= 0 and ds.y.max() < len(ds.classes)
        assert ds.classes == sample_data.classes(name)
        assert ds.modality is sample_data.modality(name) is Modality.IMAGE
        assert all(example_id.startswith(f"{name}-") for example_id in ds.ids)
        if name == "digits":
            assert ds.masks is None
        else:
            assert ds.masks.shape == (n, 64, 64) and ds.masks.dtype == bool


@pytest.mark.parametrize("name", IMAGE_SETS)
def test_splits_are_disjoint_and_stratified(name: str) -> None:
    train, val, test = _clean_splits(name)
    ids = [set(ds.ids) for ds in (train, val, test)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    total = len(train) + len(val) + len(test)
    assert abs(len(train) / total - 0.70) < 0.01
    assert abs(len(val) / total - 0.15) < 0.01
    for label in range(len(train.classes)):
        counts = [int((ds.y == label).sum()) for ds in (train, val, test)]
        assert abs(counts[0] / sum(counts) - 0.70) < 0.02, counts


def test_digits_are_the_real_sklearn_digits_upscaled() -> None:
    from sklearn.datasets import load_digits

    original = load_digits()
    train, val, test = _clean_splits("digits")
    assert len(train) + len(val) + len(test) == 1797
    for ds in (train, test):
        for i in (0, len(ds) // 2, len(ds) - 1):
            index = int(ds.ids[i].split("-")[1])
            assert ds.y[i] == original.target[index]
            image = ds.x[i]
            assert (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()
            # Shrinking back to 8x8 must give back the 0..16 ink counts, scaled to 0..255.
            small = cv2.resize(image[..., 0].astype(np.float32), (8, 8), interpolation=cv2.INTER_AREA)
            assert np.abs(small - original.images[index] * 255 / 16).mean() < 20


def test_shapes_sizes_and_balance() -> None:
    train, val, test = _clean_splits("shapes")
    assert (len(train), len(val), len(test)) == (4200, 900, 900)
    assert SHAPE_CLASSES == ("circle", "square", "triangle", "star")
    assert np.bincount(train.y).tolist() == [1050, 1050, 1050, 1050]


def test_generate_shapes_is_deterministic_and_prefix_stable() -> None:
    first = generate_shapes(12, seed=7)
    again = generate_shapes(12, seed=7)
    for a, b in zip(first, again):
        assert np.array_equal(a, b)
    # Image i depends only on (seed, i): a later window reproduces the same examples.
    window = generate_shapes(4, seed=7, start=8)
    for whole, part in zip(first, window):
        assert np.array_equal(whole[8:12], part)
    other = generate_shapes(12, seed=8)
    assert not np.array_equal(first[0], other[0])
    # Any run of four consecutive examples holds one of each class.
    assert sorted(first[1][4:8].tolist()) == [0, 1, 2, 3]


def _ring(mask: np.ndarray, width: int = 3) -> np.ndarray:
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((2 * width + 1, 2 * width + 1), np.uint8))
    return grown.astype(bool) & ~mask


@pytest.mark.parametrize("name, min_gap", [("shapes", 100.0), ("shapes-shortcut", 45.0)])
def test_masks_cover_the_drawn_object(name: str, min_gap: float) -> None:
    ds = sample_data.load(name, "val")
    areas = ds.masks.sum(axis=(1, 2))
    assert areas.min() > 20 and areas.max() < 0.5 * 64 * 64
    gaps = []
    for image, mask in zip(ds.x.astype(np.float32), ds.masks):
        ring = _ring(mask)
        gaps.append(np.linalg.norm(image[mask].mean(axis=0) - image[ring].mean(axis=0)))
    # The object's colour differs from its immediate surroundings: the mask sits on the object.
    assert np.median(gaps) > min_gap
    assert np.mean(np.asarray(gaps) > 15) > 0.9


def test_mask_geometry_matches_the_class() -> None:
    ds = sample_data.load("shapes", "val")
    solidity: dict[str, list[float]] = {label: [] for label in ds.classes}
    for mask, label in zip(ds.masks, ds.y):
        points = np.argwhere(mask)[:, ::-1].astype(np.int32)
        hull_area = cv2.contourArea(cv2.convexHull(points)) + 1e-6
        solidity[ds.classes[label]].append(mask.sum() / hull_area)
    # A star is the only concave shape: far less of its hull is filled.
    assert np.median(solidity["star"]) < 0.8
    for label in ("circle", "square", "triangle"):
        assert np.median(solidity[label]) > 0.95, label


def test_plain_shapes_keep_their_contrast_floor() -> None:
    images, _, masks = generate_shapes(40, seed=11, style=PLAIN)
    for image, mask in zip(images.astype(np.float32), masks):
        inner = image[cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)]
        assert np.linalg.norm(inner.mean(axis=0) - image[_ring(mask)].mean(axis=0)) > 30


def _cued(ds: sample_data.Dataset) -> np.ndarray:
    return ds.cue_masks.any(axis=(1, 2))


def test_shortcut_cue_marks_circles_only_in_the_usual_splits() -> None:
    circle = SHAPE_CLASSES.index("circle")
    for ds in _clean_splits("shapes-shortcut"):
        cued = _cued(ds)
        assert cued[ds.y == circle].mean() > 0.93
        assert not cued[ds.y != circle].any()


def test_shortcut_cue_is_uncorrelated_in_test_nocue() -> None:
    ds = sample_data.load("shapes-shortcut", "test_nocue")
    cued = _cued(ds)
    assert len(ds) == 450 and cued.sum() == 112
    assert sorted(np.bincount(ds.y).tolist()) == [112, 112, 113, 113]
    for label in range(len(ds.classes)):
        assert 0.1 < cued[ds.y == label].mean() < 0.45
    assert not set(ds.ids) & set(sample_data.load("shapes-shortcut", "test").ids)


def test_shortcut_cue_pixels_and_masks() -> None:
    ds = sample_data.load("shapes-shortcut", "test_nocue")
    expected = np.zeros((64, 64), dtype=bool)
    expected[2:8, 2:8] = True
    cued = _cued(ds)
    assert all(np.array_equal(m, expected) for m in ds.cue_masks[cued])
    assert (ds.x[ds.cue_masks] == np.array(shortcut.CUE_COLOUR, dtype=np.uint8)).all()
    assert not (ds.masks & ds.cue_masks).any()
    # Uncued images do not carry the mark by accident.
    corner = ds.x[~cued][:, 2:8, 2:8].reshape(-1, 3)
    assert (corner != np.array(shortcut.CUE_COLOUR)).any(axis=1).mean() > 0.99


def test_shortcut_shapes_are_harder_than_plain_shapes() -> None:
    plain = sample_data.load("shapes", "val").masks.sum(axis=(1, 2))
    hard = sample_data.load("shapes-shortcut", "val").masks.sum(axis=(1, 2))
    assert np.median(hard) < 0.85 * np.median(plain)


def test_load_returns_the_same_read_only_object() -> None:
    first = sample_data.load("shapes", "train")
    assert sample_data.load("shapes", "train") is first
    for array in (first.x, first.y, first.masks):
        assert not array.flags.writeable
    with pytest.raises(ValueError):
        first.x[0, 0, 0, 0] = 1


def test_unknown_names_and_splits_raise_helpful_key_errors() -> None:
    with pytest.raises(KeyError, match="digits, shapes, shapes-shortcut, headlines"):
        sample_data.load("mnist", "train")
    with pytest.raises(KeyError, match="test_nocue"):
        sample_data.load("shapes-shortcut", "holdout")
    with pytest.raises(KeyError, match="no split 'test_nocue'"):
        sample_data.load("shapes", "test_nocue")
    assert sample_data.splits("shapes-shortcut")[-1] == "test_nocue"
    assert sample_data.DATASET_NAMES == ("digits", "shapes", "shapes-shortcut", "headlines")


def test_the_large_shapes_set_is_fresh_deterministic_and_read_only(monkeypatch) -> None:
    from sample_data import shapes

    monkeypatch.setattr(shapes, "LARGE_COUNT", 8)
    first, again = shapes.build_large(), shapes.build_large()
    np.testing.assert_array_equal(first.x, again.x)
    np.testing.assert_array_equal(first.y, again.y)
    assert (first.name, first.split, first.modality) == ("shapes-20k", "test", Modality.IMAGE)
    assert first.classes == SHAPE_CLASSES and first.ids == tuple(f"shapes-20k-{i:05d}" for i in range(8))
    x, y, _ = generate_shapes(8, shapes.LARGE_SEED)  # its own seed: never the shipped images
    np.testing.assert_array_equal(first.x, x)
    np.testing.assert_array_equal(first.y, y)
    assert shapes.LARGE_SEED != shapes.SEED
    assert first.masks is None and not first.x.flags.writeable and not first.y.flags.writeable
    assert "shapes-20k" not in sample_data.DATASET_NAMES  # not a sample: no training splits, no model
