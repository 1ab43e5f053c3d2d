"""The retrain recipe: snapshot the corrected data, fine-tune the current version, publish a candidate.

    result = retrain("digits", created_by="alice")
    result.candidate, result.before["accuracy"], result.after["accuracy"]

The parent version is never touched: the new weights are written as a new immutable
version (a *candidate*) that becomes current only when someone promotes it.
"""
from __future__ import annotations

import contextlib
import platform
import time
from dataclasses import dataclass, fields, replace
from typing import Any, Callable, ContextManager, Sequence

from foundation import access
from foundation.access import Identity
from foundation.errors import WorkbenchError
from models import store, training
from models.reason_training import ReasonConfig, reason_fine_tune
from models.manifest import Corrections, Lineage, Manifest, Metrics, Training
from workbench import datasets, first_page, snapshots


@dataclass(frozen=True)
class RetrainResult:
    model: str
    candidate: str
    parent: str
    labels_changed: int
    data_snapshot_hash: str
    before: dict[str, Any]
    after: dict[str, Any]
    seconds: float
    manifest: Manifest

    def summary(self) -> dict[str, Any]:
        """The JSON the CLI prints: names the new version and gives before/after test metrics."""
        return {
            "model": self.model,
            "candidate": self.candidate,
            "parent": self.parent,
            "labels_changed": self.labels_changed,
            "data_snapshot_hash": self.data_snapshot_hash,
            "before": self.before,
            "after": self.after,
            "seconds": self.seconds,
        }


def training_split(manifest: Manifest, dataset: str | None = None) -> str:
    """The split a version learns from, and the ledger's corrections are applied to.

    A retrained version records it; otherwise the shipped labels as the Review page shows
    them first: `train_noisy` (flipped labels included) where the dataset (default: the
    version's own) has one.
    """
    if manifest.lineage.train_split:
        return manifest.lineage.train_split
    dataset = dataset or manifest.dataset
    if dataset and datasets.NOISY_SPLIT in datasets.splits(dataset):
        return datasets.NOISY_SPLIT
    return datasets.TRAIN_SPLIT


def recipe_config(manifest: Manifest | None) -> training.TrainConfig:
    """The training configuration a version recorded ("same recipe as training"); defaults otherwise.

    Used whole except `limit`: a version trained on a subset is fine-tuned on all the data.
    None (no version to copy) gives the defaults.
    """
    recorded_training = None if manifest is None else manifest.training
    recorded = dict((recorded_training.config if recorded_training else None) or {})
    known = {f.name for f in fields(training.TrainConfig)}
    values = {key: value for key, value in recorded.items() if key in known and key != "limit"}
    if "image_filters" in values:
        values["image_filters"] = tuple(values["image_filters"])
    return replace(training.TrainConfig(), **values)


def evaluation_splits(dataset: str) -> list[str]:
    """Clean held-out splits: "val" plus every test split (e.g. shapes-shortcut's test_nocue)."""
    return [s for s in datasets.splits(dataset) if s == "val" or s.startswith("test")]


def evaluate_all(keras_model: Any, dataset: str, pixel_scale: float = 1.0, io: Any = None) -> dict[str, Any]:
    return {split: training.evaluate(keras_model, datasets.load(dataset, split), pixel_scale=pixel_scale, io=io)
            for split in evaluation_splits(dataset)}


def retrain(
    name: str,
    *,
    dataset: str | None = None,
    split: str | None = None,
    config: training.TrainConfig | None = None,
    created_by: str = "cli",
    ledger: Any = None,
    parent: str | None = None,
    callbacks: Sequence[Any] = (),
    log: Callable[[str], None] = lambda _: None,
    publishing: Callable[[], ContextManager[Any]] = contextlib.nullcontext,
    actor: Identity | None = None,
    reason: ReasonConfig | None = None,
) -> RetrainResult:
    """Fine-tune `parent` (default: the current version) on the corrected data; publish a candidate.

    `config` defaults to the parent's own recorded recipe (`recipe_config`). `publishing` wraps the final write, so a job can defer cancellation until the new
    version is either fully there or not there at all. When the ledger holds "not a reason" marks
    on examples of the training data, the fine-tuning is the reason-corrected one
    (`models.reason_training`, settings `reason`, default: the parent's recorded ones, else
    `ReasonConfig()`), and the manifest's training entry records them. Raises AccessDenied unless `actor` (default:
    the local operator; a job passes whoever started it) is a maintainer.
    """
    access.acting(actor, access.RETRAIN)
    import keras
    import tensorflow as tf

    from labels import Ledger

    started = time.perf_counter()
    parent = parent or store.current_version(name)
    parent_manifest = store.manifest(name, parent)
    config = config or recipe_config(parent_manifest)
    # A user model that expects 0..1 pixels is trained and measured on 0..1 pixels.
    config = replace(config, pixel_scale=parent_manifest.input.pixel_scale)
    dataset = dataset or parent_manifest.dataset
    if not dataset:
        raise WorkbenchError(f"model {name!r} does not record its dataset; pass --dataset.")
    if tuple(datasets.load(dataset, "val").classes) != parent_manifest.classes:
        raise WorkbenchError(f"the classes of dataset {dataset!r} differ from those of model {name!r}.")
    split = split or training_split(parent_manifest, dataset)

    log(f"snapshot of {dataset}/{split} with the ledger's corrections ...")
    snapshot = snapshots.take_snapshot(dataset, split, ledger or Ledger())
    train = training._limited(snapshots.load_snapshot(snapshot), config.limit)
    log(f"snapshot {snapshot.hash[:12]}: {snapshot.size} examples, {snapshot.labels_changed} labels changed")

    loaded = store.load(name, parent)  # verifies the parent's sha256
    model = loaded.keras_model
    before = evaluate_all(model, dataset, config.pixel_scale, loaded.io)
    marks = reason_marks(ledger or Ledger(), train)
    recipe, recorded = "fine_tune", training.config_dict(config)
    if marks:
        reason = reason or recorded_reason(parent_manifest)
        log(f"{name} {parent}: test accuracy {before['test']['accuracy']:.4f}; {len(marks)} examples marked "
            f"'not a reason': reason-corrected fine-tuning (penalty {reason.penalty}) ...")
        _reason_fine_tune(model, train, marks, loaded.io, reason, log)
        recipe = "reason_fine_tune"
        recorded = {**recorded, "reason": {**reason.to_dict(), "marked_examples": len(marks),
                                           "reason_event_id": _newest_reason_event(ledger or Ledger(), dataset)}}
    else:
        log(f"{name} {parent}: test accuracy {before['test']['accuracy']:.4f}; fine-tuning ...")
        training.fine_tune(model, train, datasets.load(dataset, "val"), config, callbacks, io=loaded.io)
    after = evaluate_all(model, dataset, config.pixel_scale, loaded.io)
    log(f"fine-tuned: test accuracy {after['test']['accuracy']:.4f}")

    seconds = round(time.perf_counter() - started, 1)
    manifest = Manifest(
        # Inherited unchanged from the parent:
        modality=parent_manifest.modality, classes=parent_manifest.classes, input=parent_manifest.input,
        recipe=parent_manifest.recipe, intended_use=parent_manifest.intended_use,
        gradcam_layer=parent_manifest.gradcam_layer, vocabulary_size=parent_manifest.vocabulary_size,
        output=parent_manifest.output,
        # What this fine-tuning did:
        dataset=dataset,
        lineage=Lineage(
            parent=parent, train_split=split, data_snapshot_hash=snapshot.hash, data_hash=snapshot.hash,
            labels_changed=snapshot.labels_changed,
            corrections=Corrections(ledger_event_id=snapshot.ledger_event_id, snapshot_size=snapshot.size),
        ),
        metrics=Metrics.from_dict(after),
        parent_metrics=Metrics.from_dict(before, path="parent_metrics"),
        training=Training(recipe=recipe, config=recorded, seconds=seconds,
                          command=f"workbench retrain --model {name}"),
        created_by=created_by,
        created_at=store.now_iso(),
        created_as="candidate",
        software={"keras": keras.__version__, "tensorflow": tf.__version__, "python": platform.python_version()},
    )
    with publishing():
        published = store.publish_version(name, model, manifest)
    log(f"published candidate {name} {published.version}")
    if first_page.store_for_version(name, published.version) is not None:  # shown at once once promoted
        log(f"{name} {published.version}: first page stored")
    return RetrainResult(
        model=name, candidate=published.version, parent=parent, labels_changed=snapshot.labels_changed,
        data_snapshot_hash=snapshot.hash, before=before["test"], after=after["test"], seconds=seconds,
        manifest=published.info,
    )


def reason_marks(ledger: Any, train: Any) -> dict[int, Any]:
    """Row index in `train` -> its "not a reason" marks merged: a bool H x W mask (images) or a
    tuple of word indices (texts). Rows without such marks are absent; "the reason" marks are not
    used for training (the penalty only says where the model should not look)."""
    from foundation.types import Modality
    from labels.reasons import NOT_REASON, box_mask, current_reason_marks

    by_id = current_reason_marks(ledger, train.name)
    merged: dict[int, Any] = {}
    for row, example_id in enumerate(train.ids):
        not_reason = [m for m in by_id.get(str(example_id), []) if m.kind == NOT_REASON]
        if not not_reason:
            continue
        if train.modality is Modality.TEXT:
            words = tuple(sorted({int(w) for m in not_reason for w in m.words}))
            if words:
                merged[row] = words
        else:
            height, width = train.x[row].shape[:2]
            mask = box_mask([box for m in not_reason for box in m.boxes], height, width)
            if mask.any():
                merged[row] = mask
    return merged


def recorded_reason(manifest: Manifest | None) -> ReasonConfig:
    """The reason settings a version recorded (so a retrain repeats them); the defaults otherwise."""
    config = (manifest.training.config if manifest is not None and manifest.training else None) or {}
    recorded = config.get("reason") or {}
    known = {f.name for f in fields(ReasonConfig)}
    return replace(ReasonConfig(), **{k: v for k, v in recorded.items() if k in known})


def _newest_reason_event(ledger: Any, dataset: str) -> int | None:
    history = ledger.reason_history(dataset)
    return history[0].id if history else None


def _reason_fine_tune(model: Any, train: Any, marks: dict[int, Any], io: Any, reason: ReasonConfig,
                      log: Callable[[str], None]) -> None:
    from foundation.types import Modality

    text = train.modality is Modality.TEXT
    per_row = [marks.get(row, () if text else None) for row in range(len(train))]
    x = list(train.x) if text else train.x
    reason_fine_tune(model, x, train.y, per_row, io, reason, log=log)


def pending_corrections(name: str, ledger: Any = None) -> dict[str, Any]:
    """How the ledger's labels for `name`'s training data differ now, and since the version in use.

    `labels_changed`: examples whose label differs from the original now; `not_in_current`:
    corrections (or undos) the version in use has not learned from yet.
    """
    from labels import Ledger

    version = store.current_version(name)
    manifest = store.manifest(name, version)
    dataset, split = manifest.dataset, training_split(manifest)
    if not dataset:
        return {"version": version, "dataset": None, "split": split, "labels_changed": 0, "not_in_current": 0}
    now = {c.example_id: c.current for c in snapshots.label_changes(datasets.load(dataset, split), ledger or Ledger())}
    trained_snapshot = snapshots.find_snapshot(dataset, manifest.lineage.data_snapshot_hash or "")
    trained = trained_snapshot.changed_labels() if trained_snapshot else {}
    differing = {eid for eid in set(now) | set(trained) if now.get(eid) != trained.get(eid)}
    return {"version": version, "dataset": dataset, "split": split, "labels_changed": len(now),
            "not_in_current": len(differing)}
