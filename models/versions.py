"""Promote, roll back and discard model versions; compare two versions.

Statuses: "current" (the pointer names it), "candidate" (made by a retrain, not current and
never promoted), "shipped" (the zoo's v1 when it is not current) and "previous" (was in use
once). Every change of the pointer and every discard is appended to
`models/<name>/promotions.jsonl` in the workspace, one JSON object a line, never rewritten,
with who did it (`actor`: subject, e-mail, name, role). Each needs the maintainer role
(foundation/access.py); `actor` defaults to the local operator.
Changes to one model's versions are serialised by an advisory file lock, so a promote can
never point at a version a concurrent discard is deleting.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from foundation import access, config
from foundation.access import Identity
from foundation.atomic import fsync_dir
from foundation.errors import ModelError, WorkbenchError
from models import store
from models.manifest import Manifest
from models.safe_load import sha256_file

LOG_FILE = "promotions.jsonl"
CURRENT, CANDIDATE, SHIPPED, PREVIOUS = "current", "candidate", "shipped", "previous"


def _model_dir(name: str) -> Path:
    return config.workspace_subdir("models") / store.check_model_name(name)


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    folder = _model_dir(name)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".versions.lock", "a+") as handle:
        # flock is released by the kernel when the holder dies, so it can never go stale.
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# -- the promotion log -----------------------------------------------------------------------

def history(name: str) -> list[dict[str, Any]]:
    """Every promote / rollback / discard of `name`, oldest first."""
    return store.read_json_lines(_model_dir(name) / LOG_FILE)


def _append(name: str, event: dict[str, Any]) -> dict[str, Any]:
    event = dict(event, model=name, at=store.now_iso())
    store.append_durably(_model_dir(name) / LOG_FILE, event)
    return event


def _ever_current(name: str) -> set[str]:
    return {e["version"] for e in history(name) if e.get("action") in ("promote", "rollback")}


# -- statuses --------------------------------------------------------------------------------

def status(name: str, version: str) -> str:
    current = store.current_version(name)
    if version == current:
        return CURRENT
    if store.manifest(name, version).created_as == "candidate" and version not in _ever_current(name):
        return CANDIDATE
    if version == store.ZOO_VERSION and store.version_path(name, version).parent == config.ZOO_DIR:
        return SHIPPED
    return PREVIOUS


def candidates(name: str) -> list[str]:
    """Candidate versions, oldest first."""
    return [v for v in store.all_version_ids(name) if status(name, v) == CANDIDATE]


def newest_candidate(name: str) -> str | None:
    found = candidates(name)
    return found[-1] if found else None


def describe(name: str) -> list[dict[str, Any]]:
    """One row per version: status, lineage, data, headline metrics, integrity."""
    rows = []
    for version in store.all_version_ids(name):
        info = store.manifest(name, version)
        rows.append({
            "version": version,
            "status": status(name, version),
            "parent": info.lineage.parent,
            "created_at": info.created_at,
            "created_by": info.created_by,
            "labels_changed": info.lineage.labels_changed or 0,
            "data_snapshot_hash": info.lineage.data_snapshot_hash,
            "test_accuracy": info.metrics.test.accuracy,
            "val_accuracy": info.metrics.val.accuracy,
            "sha256": info.lineage.sha256,
        })
    return rows


# -- changes ---------------------------------------------------------------------------------

def _verify_file(name: str, version: str) -> None:
    folder = store.version_path(name, version)
    recorded = store.manifest(name, version)
    model_file = folder / (recorded.file or store.MODEL_FILE)
    sha256 = recorded.lineage.sha256
    if not model_file.is_file() or (sha256 and sha256_file(model_file) != sha256):
        raise ModelError(f"model {name} {version} does not match its recorded sha256; it cannot be put in use.")


def _point(name: str, version: str, action: str, by: str, actor: Identity | None) -> dict[str, Any]:
    who = access.acting(actor, access.PROMOTE if action == "promote" else access.ROLLBACK)
    store.check_version_id(version)  # before the lock: a refused id leaves no trace
    with _locked(name):
        previous = store.current_version(name)
        if version == previous:
            raise WorkbenchError(f"{name} {version} is already the version in use.")
        store.version_path(name, version)  # refuses unknown versions with a clear message
        if action == "rollback" and status(name, version) == CANDIDATE:
            raise WorkbenchError(f"{name} {version} is a candidate that was never in use; promote it instead.")
        _verify_file(name, version)
        store.set_current(name, version)
        return _append(name, {"action": action, "version": version, "previous": previous, "by": by,
                              "actor": who.record()})


def promote(name: str, version: str, *, by: str = "cli", actor: Identity | None = None) -> dict[str, Any]:
    """Make `version` (usually a candidate) the one in use; pages pick it up on their next run."""
    return _point(name, version, "promote", by, actor)


def rollback(name: str, version: str, *, by: str = "cli", actor: Identity | None = None) -> dict[str, Any]:
    """Return to a version that was in use before (or the shipped one)."""
    return _point(name, version, "rollback", by, actor)


def discard(name: str, version: str, *, by: str = "cli", actor: Identity | None = None) -> dict[str, Any]:
    """Delete a candidate: renamed to a hidden trash name first, so it vanishes in one step."""
    who = access.acting(actor, access.DISCARD)
    store.check_version_id(version)  # before the lock: a refused id leaves no trace
    with _locked(name):
        state = status(name, version)
        if state != CANDIDATE:
            raise WorkbenchError(
                f"{name} {version} is {'the version in use' if state == CURRENT else f'a {state} version'}; "
                "only candidates can be discarded (roll back instead)."
            )
        children = [v for v in store.all_version_ids(name) if v != version
                    and store.manifest(name, v).lineage.parent == version]
        if children:
            raise WorkbenchError(f"{name} {', '.join(children)} was fine-tuned from {version}; discard that first.")
        folder = store.version_path(name, version)
        sha = store.manifest(name, version).lineage.sha256
        trash = folder.parent / f".trash-{version}-{secrets.token_hex(4)}"
        os.rename(folder, trash)
        fsync_dir(folder.parent)
        shutil.rmtree(trash, ignore_errors=True)
        return _append(name, {"action": "discard", "version": version, "sha256": sha, "by": by,
                              "actor": who.record()})


# -- comparing two versions ------------------------------------------------------------------

def _class_metric(manifest: Manifest, split: str, cls: str, metric: str) -> float | None:
    row = manifest.metrics.get(split).per_class.get(cls)
    return None if row is None else getattr(row, metric)


def metrics_table(old: Manifest, new: Manifest, split: str = "test") -> list[dict[str, Any]]:
    """Overall and per-class metrics of two manifests side by side, with the change."""
    rows = [{"class": "(overall)", "metric": "accuracy",
             "old": old.metrics.get(split).accuracy, "new": new.metrics.get(split).accuracy}]
    for cls in new.classes:
        for metric in ("precision", "recall", "f1"):
            rows.append({"class": cls, "metric": metric,
                         "old": _class_metric(old, split, cls, metric), "new": _class_metric(new, split, cls, metric)})
    for row in rows:
        row["change"] = None if row["old"] is None or row["new"] is None else round(row["new"] - row["old"], 4)
    return rows


def confusion_difference(old: Manifest, new: Manifest, split: str = "test") -> np.ndarray | None:
    """new minus old confusion matrix (rows = truth); None if either manifest lacks one."""
    a, b = old.metrics.get(split).confusion, new.metrics.get(split).confusion
    if a is None or b is None or np.shape(a) != np.shape(b):
        return None
    return np.asarray(b, dtype=int) - np.asarray(a, dtype=int)


def fixed_and_broken(y_true: Sequence[int], old_pred: Sequence[int], new_pred: Sequence[int]) -> tuple[list[int], list[int]]:
    """Positions the new version gets right and the old got wrong (fixed), and the reverse (broken)."""
    y, a, b = (np.asarray(v, dtype=int) for v in (y_true, old_pred, new_pred))
    fixed = np.flatnonzero((a != y) & (b == y))
    broken = np.flatnonzero((a == y) & (b != y))
    return fixed.tolist(), broken.tolist()
