"""Immutable, content-hashed snapshots of a training split with the ledger's corrections applied.

A snapshot is what a retrained version learned from, frozen: `snapshots/<dataset>/<hash>/`
in the workspace holds `data.npz` (ids, labels, images or texts; never pickled) and
`meta.json` (classes, which labels differ from the original and how). The folder name is
`sample_data.dataset_hash` of the content, so the same data always gets the same snapshot
and a snapshot is written at most once. It appears by a single rename of a hidden staging
folder, so a half-written snapshot is never visible, even if the writer is killed.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np

import sample_data
from foundation import config
from foundation.atomic import fsync_dir
from foundation.dataset import Dataset
from foundation.errors import WorkbenchError
from foundation.ids import check_path_id, is_path_id
from foundation.types import Modality
from models import store
from workbench import datasets

DATA_FILE = "data.npz"
META_FILE = "meta.json"


@dataclass(frozen=True)
class Change:
    example_id: str
    original: str
    current: str


@dataclass(frozen=True)
class Snapshot:
    dataset: str
    base_split: str
    hash: str
    path: Path
    size: int
    changes: tuple[Change, ...]
    ledger_event_id: int | None  # newest ledger event of the dataset when the snapshot was taken

    @property
    def labels_changed(self) -> int:
        return len(self.changes)

    def changed_labels(self) -> dict[str, str]:
        return {c.example_id: c.current for c in self.changes}


def _root(dataset: str) -> Path:
    return config.workspace_subdir("snapshots") / check_path_id(dataset, "dataset name")


def label_changes(base: Dataset, ledger: Any) -> list[Change]:
    """Examples of `base` whose current label (after the ledger's corrections) differs from it."""
    original = {eid: base.classes[int(label)] for eid, label in zip(base.ids, base.y)}
    current = ledger.current_labels(base.name, original)
    changes = []
    for eid in base.ids:
        label = current[eid]
        if label == original[eid]:
            continue
        if label not in base.classes:
            raise WorkbenchError(
                f"the correction of {eid!r} uses the label {label!r}, which is not a class of "
                f"{base.name!r} ({', '.join(base.classes)}); correct it again on the Review page."
            )
        changes.append(Change(eid, original[eid], label))
    return changes


def apply_changes(base: Dataset, changes: list[Change] | tuple[Change, ...]) -> Dataset:
    """A copy of `base` with the changed labels; data and ids untouched."""
    y = np.array(base.y, dtype=np.int64)
    position = {eid: i for i, eid in enumerate(base.ids)}
    for change in changes:
        y[position[change.example_id]] = base.classes.index(change.current)
    return replace(base, y=y)


def _newest_event_id(ledger: Any, dataset: str) -> int | None:
    newest = ledger.history(dataset, limit=1)
    return newest[0].id if newest else None


def take_snapshot(dataset: str, base_split: str, ledger: Any) -> Snapshot:
    """Freeze `dataset`/`base_split` with every current correction applied (reused if identical)."""
    base = datasets.load(dataset, base_split)
    event_id = _newest_event_id(ledger, dataset)
    changes = label_changes(base, ledger)
    corrected = apply_changes(base, changes)
    digest = sample_data.dataset_hash(corrected)
    target = _root(dataset) / digest
    if not (target / META_FILE).is_file():
        _write(target, corrected, _meta(corrected, base_split, digest, changes, event_id))
    return _snapshot_from_meta(target, _read_meta(target))


def _meta(ds: Dataset, base_split: str, digest: str, changes: list[Change], event_id: int | None) -> dict[str, Any]:
    from models.store import now_iso

    return {
        "hash": digest,
        "dataset": ds.name,
        "base_split": base_split,
        "modality": ds.modality.value,
        "classes": list(ds.classes),
        "size": len(ds),
        "labels_changed": len(changes),
        "changes": [{"id": c.example_id, "original": c.original, "current": c.current} for c in changes],
        "ledger_event_id": event_id,
        "created_at": now_iso(),
    }


def _arrays(ds: Dataset) -> dict[str, np.ndarray]:
    x = np.asarray(list(ds.x), dtype=str) if ds.modality is Modality.TEXT else np.asarray(ds.x, dtype=np.uint8)
    return {"ids": np.asarray(ds.ids, dtype=str), "y": np.asarray(ds.y, dtype=np.int64), "x": x}


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _write(target: Path, ds: Dataset, meta: dict[str, Any]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".staging-"))
    try:
        np.savez_compressed(staging / DATA_FILE, **_arrays(ds))
        (staging / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")
        for name in (DATA_FILE, META_FILE):
            _fsync_file(staging / name)
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / META_FILE).is_file():  # someone else wrote the same snapshot: keep theirs
                raise
        fsync_dir(target.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _read_meta(path: Path) -> dict[str, Any]:
    return json.loads((path / META_FILE).read_text(encoding="utf-8"))


def _snapshot_from_meta(path: Path, meta: Mapping[str, Any]) -> Snapshot:
    changes = tuple(Change(c["id"], c["original"], c["current"]) for c in meta["changes"])
    return Snapshot(meta["dataset"], meta["base_split"], meta["hash"], path, int(meta["size"]),
                    changes, meta.get("ledger_event_id"))


def find_snapshot(dataset: str, digest: str) -> Snapshot | None:
    """The snapshot with this hash, or None (e.g. a zoo version trained before snapshots)."""
    if not digest or not all(ch in "0123456789abcdef" for ch in digest) or not is_path_id(dataset):
        return None
    path = _root(dataset) / digest
    if not (path / META_FILE).is_file():
        return None
    return _snapshot_from_meta(path, _read_meta(path))


def load_snapshot(snapshot: Snapshot) -> Dataset:
    """The snapshot's examples as a Dataset; refuses one whose content no longer matches its hash."""
    meta = _read_meta(snapshot.path)
    with np.load(snapshot.path / DATA_FILE, allow_pickle=False) as data:
        ids, y, x = data["ids"], data["y"], data["x"]
    modality = Modality(meta["modality"])
    ds = Dataset(
        name=meta["dataset"],
        split=f"snapshot-{snapshot.hash[:12]}",
        modality=modality,
        classes=tuple(meta["classes"]),
        ids=tuple(str(i) for i in ids),
        x=[str(t) for t in x] if modality is Modality.TEXT else x,
        y=y.astype(np.int64),
    )
    if sample_data.dataset_hash(ds) != snapshot.hash:
        raise WorkbenchError(
            f"snapshot {snapshot.hash[:12]} of {snapshot.dataset!r} was changed on disk; "
            "delete its folder and retrain to take a fresh one."
        )
    return ds


def corrections_between(name: str, old: str, new: str) -> dict[str, str]:
    """Labels corrected in the data of `new` and not in that of `old`: example id -> new label."""
    def changed(version: str) -> dict[str, str]:
        manifest = store.manifest(name, version)
        snap = find_snapshot(manifest.dataset or "", manifest.lineage.data_snapshot_hash or "")
        return snap.changed_labels() if snap else {}

    before = changed(old)
    return {eid: label for eid, label in changed(new).items() if before.get(eid) != label}
