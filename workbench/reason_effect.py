"""Did retraining with reason marks work? Attribution inside the marked regions, before and after (issue 17).

Compare versions shows, for two versions of one image model:

* the examples that carry "not a reason" marks in the ledger: the share of the positive
  Grad-CAM mass (for the example's current label) inside the marked boxes, per version;
* a held-out set the marks never saw: the test split's examples with a planted cue, where the
  dataset ships the cue's masks (the shortcut sample), with the share on the cue;
* accuracy per version on the test split and, where the dataset ships one, its no-cue twin.

A share is only meaningful beside the region's area (a box covering 10 % of the image gets
about 10 % of a map that ignores it), so each group also reports the mean area share.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from foundation.types import Modality

NOCUE_SPLIT = "test_nocue"


@dataclass(frozen=True)
class GroupEffect:
    """One group of examples, the mean share of attribution in its regions for the old and the new version."""

    group: str  # what the examples are, said to the user
    n: int
    area_share: float  # mean share of the image the regions cover: the share a blind map would get
    share_old: float
    share_new: float


@dataclass(frozen=True)
class ReasonEffect:
    dataset: str
    groups: tuple[GroupEffect, ...]
    accuracy: dict[str, tuple[float, float]]  # split -> (old, new)
    note: str = ""  # why a group is missing, for the page


def region_shares(model: Any, images: Sequence[np.ndarray], targets: Sequence[int], masks: Sequence[np.ndarray],
                  batch: int = 64) -> np.ndarray:
    """Per image: the share of positive Grad-CAM mass (for `targets`) inside its bool mask (input grid)."""
    from explainers import metrics
    from workbench.explaining import explain

    shares: list[float] = []
    for start in range(0, len(images), batch):
        part = slice(start, start + batch)
        # use_cache=False: two versions may share a display name, the map cache must not mix them.
        maps = explain(model, "gradcam", list(images[part]), [int(t) for t in targets[part]], use_cache=False)
        shares.extend(float(metrics.cue_mass(m.values, mask)) for m, mask in zip(maps, masks[part]))
    return np.asarray(shares, dtype=np.float64)


def marked_examples(ledger: Any, dataset: Any) -> tuple[list[int], list[np.ndarray]]:
    """Rows of `dataset` (a split) with "not a reason" marks in force, and each row's union of marked boxes."""
    from labels.reasons import NOT_REASON, box_mask, current_reason_marks

    marks = current_reason_marks(ledger, dataset.name)
    height, width = np.asarray(dataset.x[0]).shape[:2]
    rows, masks = [], []
    for row, example_id in enumerate(dataset.ids):
        boxes = [box for mark in marks.get(str(example_id), []) if mark.kind == NOT_REASON for box in mark.boxes]
        if boxes:
            rows.append(row)
            masks.append(box_mask(boxes, height, width))
    return rows, masks


def reason_effect(old_model: Any, new_model: Any, split: Any, test: Any, nocue: Any | None,
                  ledger: Any) -> ReasonEffect:
    """The comparison for two loaded versions; `split` holds the marked examples (the training split)."""
    if old_model.modality is not Modality.IMAGE:
        return ReasonEffect(split.name, (), {}, "Shares inside marked regions are measured for image models so far; "
                                                 "marked words of a text model are not compared here yet.")
    groups = []
    rows, masks = marked_examples(ledger, split)
    if rows:
        groups.append(_group(f"marked ({split.split})", old_model, new_model,
                             [split.x[i] for i in rows], _targets(old_model, split, rows), masks))
    note = "" if rows else "No example of this dataset carries a “not a reason” mark yet: mark some on the Review page."
    cue_masks = getattr(test, "cue_masks", None)
    if cue_masks is not None:
        cued = np.flatnonzero(cue_masks.any(axis=(1, 2)))
        if len(cued):
            groups.append(_group("held-out: test with the cue",
                                 old_model, new_model, [test.x[i] for i in cued], _targets(old_model, test, cued),
                                 [cue_masks[i] for i in cued]))
    accuracy = {test.split: (_accuracy(old_model, test), _accuracy(new_model, test))}
    if nocue is not None:
        accuracy[nocue.split] = (_accuracy(old_model, nocue), _accuracy(new_model, nocue))
    return ReasonEffect(split.name, tuple(groups), accuracy, note)


def _group(title: str, old_model: Any, new_model: Any, images: list, targets: list[int],
           masks: list[np.ndarray]) -> GroupEffect:
    return GroupEffect(title, len(images), float(np.mean([m.mean() for m in masks])),
                       float(np.nanmean(region_shares(old_model, images, targets, masks))),
                       float(np.nanmean(region_shares(new_model, images, targets, masks))))


def _targets(model: Any, data: Any, rows: Sequence[int]) -> list[int]:
    """The model's class index of each row's label (the model may order its classes differently)."""
    return [list(model.classes).index(data.classes[int(data.y[i])]) for i in rows]


def _accuracy(model: Any, data: Any) -> float:
    predicted = np.asarray(model.predict_proba(list(data.x))).argmax(axis=1)
    truth = [data.classes[int(y)] for y in data.y]
    return float(np.mean([model.classes[int(p)] == t for p, t in zip(predicted, truth)]))
