"""train_noisy splits, the committed flipped files, and dataset_hash."""
from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest

import sample_data
from foundation.dataset import Dataset
from foundation.types import Modality
from sample_data import noisy


@pytest.mark.parametrize("name", sample_data.DATASET_NAMES)
def test_committed_flipped_file_matches_regeneration(name: str) -> None:
    committed = noisy.flipped_path(name).read_text(encoding="utf-8")
    assert committed == noisy.render_payload(noisy.flipped_payload(name))
    payload = json.loads(committed)
    assert payload["dataset"] == name and payload["split"] == "train"


@pytest.mark.parametrize("name", sample_data.DATASET_NAMES)
def test_train_noisy_flips_about_five_percent(name: str) -> None:
    train = sample_data.load(name, "train")
    noisy_train = sample_data.load(name, "train_noisy")
    assert noisy_train.split == "train_noisy" and noisy_train.ids == train.ids
    assert noisy_train.x is train.x
    changed = {train.ids[i] for i in np.flatnonzero(noisy_train.y != train.y)}
    assert changed == set(noisy_train.flipped_ids)
    assert len(changed) == round(0.05 * len(train))
    assert not train.flipped_ids
    flipped = json.loads(noisy.flipped_path(name).read_text(encoding="utf-8"))["flipped"]
    for example_id, entry in flipped.items():
        i = train.index_of(example_id)
        assert entry["true"] == train.classes[train.y[i]] != entry["given"]
        assert noisy_train.classes[noisy_train.y[i]] == entry["given"]
    assert not noisy_train.y.flags.writeable


def test_flips_spread_over_every_class() -> None:
    noisy_train = sample_data.load("digits", "train_noisy")
    train = sample_data.load("digits", "train")
    flipped_true = train.y[np.isin(train.ids, sorted(noisy_train.flipped_ids))]
    assert len(np.unique(flipped_true)) >= 8


def test_noisy_split_refuses_a_file_that_no_longer_matches() -> None:
    train = sample_data.load("shapes", "train")
    first_flipped = train.index_of(min(sample_data.load("shapes", "train_noisy").flipped_ids))
    y = np.array(train.y)
    y[first_flipped] = (y[first_flipped] + 1) % len(train.classes)
    drifted = dataclasses.replace(train, y=y)
    with pytest.raises(RuntimeError, match="python -m sample_data flipped"):
        noisy.noisy_split(drifted)


def _tiny_text(texts: list[str], y: list[int], ids: tuple[str, ...] = ("a-1", "a-2")) -> Dataset:
    return Dataset(
        name="tiny", split="test", modality=Modality.TEXT, classes=("no", "yes"),
        ids=ids, x=texts, y=np.array(y, dtype=np.int64),
    )


def test_dataset_hash_follows_its_documented_layout() -> None:
    ds = _tiny_text(["up", "down"], [1, 0])
    expected = hashlib.sha256()
    for chunk in (b"text", b"no", b"yes", b"a-1", b"a-2", np.array([1, 0], "<i8").tobytes(), b"up", b"down"):
        expected.update(len(chunk).to_bytes(8, "little") + chunk)
    assert sample_data.dataset_hash(ds) == expected.hexdigest()


def test_dataset_hash_is_stable_and_sensitive() -> None:
    base = _tiny_text(["up", "down"], [1, 0])
    digest = sample_data.dataset_hash(base)
    assert digest == sample_data.dataset_hash(_tiny_text(["up", "down"], [1, 0]))
    assert digest != sample_data.dataset_hash(_tiny_text(["up", "down!"], [1, 0]))
    assert digest != sample_data.dataset_hash(_tiny_text(["up", "down"], [1, 1]))
    assert digest != sample_data.dataset_hash(_tiny_text(["up", "down"], [1, 0], ("a-1", "a-3")))
    # Field boundaries matter: moving a character between texts is a different dataset.
    assert digest != sample_data.dataset_hash(_tiny_text(["u", "pdown"], [1, 0]))

    images = sample_data.load("shapes", "val")
    image_digest = sample_data.dataset_hash(images)
    assert image_digest == sample_data.dataset_hash(dataclasses.replace(images, x=images.x.copy()))
    x = images.x.copy()
    x[100, 30, 30, 1] ^= 1
    assert image_digest != sample_data.dataset_hash(dataclasses.replace(images, x=x))
    assert sample_data.dataset_hash(sample_data.load("shapes", "train")) != sample_data.dataset_hash(
        sample_data.load("shapes", "train_noisy")
    )
