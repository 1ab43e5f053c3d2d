"""The "train_noisy" splits: train with about 5% of labels deliberately flipped.

The flips are kept in committed files, `flipped/<name>.json`, so anyone can read which labels
are wrong without running code; `write_flipped_files` regenerates them from the generator and a
test checks the two never drift apart.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from foundation.atomic import write_text_atomic
from foundation.dataset import Dataset
from sample_data import catalog
from sample_data.building import readonly
from sample_data.splits import choose_flips

FLIPPED_DIR = Path(__file__).resolve().parent / "flipped"
_FLIP_SEEDS = {"digits": 5101, "shapes": 5102, "shapes-shortcut": 5103, "headlines": 5104}
_REGENERATE = "python -m sample_data flipped"


def flipped_path(name: str) -> Path:
    return FLIPPED_DIR / f"{catalog.check_name(name)}.json"


def flipped_payload(name: str) -> dict[str, Any]:
    """What `flipped/<name>.json` must hold, computed from the clean train split."""
    train = catalog.clean_split(name, "train")
    positions, given = choose_flips(train.y, len(train.classes), _FLIP_SEEDS[name])
    flipped = {
        train.ids[int(p)]: {"true": train.classes[int(train.y[p])], "given": train.classes[int(g)]}
        for p, g in zip(positions, given)
    }
    return {"dataset": name, "split": "train", "flipped": flipped}


def render_payload(payload: dict[str, Any]) -> str:
    """Plain JSON with one flipped example per line, so a review diff reads line by line."""
    entries = [
        f"    {json.dumps(example_id)}: {json.dumps(entry, sort_keys=True)}"
        for example_id, entry in payload["flipped"].items()
    ]
    body = "{\n" + ",\n".join(entries) + "\n  }" if entries else "{}"
    return (
        "{\n"
        f'  "dataset": {json.dumps(payload["dataset"])},\n'
        f'  "split": {json.dumps(payload["split"])},\n'
        f'  "flipped": {body}\n'
        "}\n"
    )


def write_flipped_files(names: Iterable[str] = catalog.DATASET_NAMES) -> list[Path]:
    """Regenerate `flipped/<name>.json` for every dataset (a developer task, never run by the app)."""
    written = []
    for name in names:
        path = flipped_path(name)
        _write_atomically(path, render_payload(flipped_payload(name)))
        written.append(path)
    return written


def read_flipped(name: str) -> dict[str, Any]:
    path = flipped_path(name)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; regenerate it with `{_REGENERATE}`")
    return json.loads(path.read_text(encoding="utf-8"))


def noisy_split(train: Dataset) -> Dataset:
    """`train` with the labels listed in its flipped file replaced by their wrong "given" label."""
    payload = read_flipped(train.name)
    position = {example_id: i for i, example_id in enumerate(train.ids)}
    y = np.array(train.y, dtype=np.int64)
    for example_id, entry in payload["flipped"].items():
        i = position.get(example_id)
        # A mismatch means the generator changed after the file was written.
        if i is None or train.classes[int(y[i])] != entry["true"]:
            raise RuntimeError(
                f"{flipped_path(train.name).name} does not match the {train.name} generator "
                f"(at {example_id}); regenerate it with `{_REGENERATE}`"
            )
        y[i] = train.classes.index(entry["given"])
    return dataclasses.replace(
        train, split="train_noisy", y=readonly(y), flipped_ids=frozenset(payload["flipped"])
    )


def _write_atomically(path: Path, text: str) -> None:
    # The file is committed and meant to be shared, so it is world-readable.
    write_text_atomic(path, text, mode=0o644)
