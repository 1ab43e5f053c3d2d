"""Measure what marking "not a reason" buys, end to end (`workbench simulate-reason`, issue 17).

On a dataset that ships the masks of a planted cue (shapes-shortcut: a magenta corner mark that
means "circle" in train/val/test and nothing in test_nocue):

1. rank the cued training examples by how much of the current version's Grad-CAM mass (for the
   labelled class) falls on the cue, most first: the queue a reviewer would walk;
2. a scripted reviewer marks the bounding box of the cue as "not a reason" on the top `budget`
   examples, in a ledger of its own (`simulations/<run>/labels.sqlite`, so a user's ledger is never
   touched), as annotator "simulated-reviewer";
3. retrain from those marks (`workbench.retrain.retrain`, the reason-corrected fine-tuning of
   `models.reason_training`) -> a *candidate* version: the version in use is not replaced;
4. a control: the same fine-tuning (same seed, epochs, learning rate, data) without any mark,
   measured and not published, so the effect can be told apart from the extra epochs;
5. report test accuracy, test_nocue accuracy and cue attribution (mean share of positive
   Grad-CAM mass inside the cue mask, over the test examples that carry the cue) before and after,
   for both arms.
"""
from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any, Callable

import numpy as np

from foundation.errors import WorkbenchError
from workbench import reason_effect

REVIEWER = "simulated-reviewer"
QUICK_LIMIT = 192  # training examples in --quick runs (52 of them cued)
QUICK_BUDGET = 8
QUICK_EVAL = 24  # cued test examples whose Grad-CAM maps are measured in --quick runs
# --quick measures accuracy on every QUICK_STRIDE-th test and test_nocue example (300 and 150):
# a smoke run checks that the figures are measured, not their third digit, and three
# measurements of 1,350 images were a fifth of its time.
QUICK_STRIDE = 3


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, bottom, right), end exclusive, of a non-empty bool mask: what a reviewer draws."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        raise WorkbenchError("an empty mask has no box.")
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def attribution_queue(model: Any, train: Any) -> list[tuple[int, float]]:
    """(row, cue share) of the cued training examples, most Grad-CAM mass on the cue first."""
    cued = np.flatnonzero(train.cue_masks.any(axis=(1, 2)))
    shares = reason_effect.region_shares(model, [train.x[i] for i in cued], [int(train.y[i]) for i in cued],
                        [train.cue_masks[i] for i in cued])
    order = np.argsort(-np.nan_to_num(shares, nan=-1.0), kind="stable")
    return [(int(cued[k]), float(shares[k])) for k in order]


def mark_queue_top(ledger: Any, train: Any, queue: list[tuple[int, float]], budget: int) -> list[str]:
    """The scripted reviewer: "not a reason" on the cue's bounding box of the top `budget` rows."""
    from labels.reasons import NOT_REASON

    marked = []
    for row, _share in queue[:budget]:
        example_id = str(train.ids[row])
        seen = ledger.reason_history(train.name, example_id)
        ledger.mark_reason(train.name, example_id, NOT_REASON, boxes=[bounding_box(train.cue_masks[row])],
                           annotator=REVIEWER, expected_event_id=seen[0].id if seen else None,
                           note="simulated reviewer: the corner mark is not a reason")
        marked.append(example_id)
    return marked


def measure(model: Any, test: Any, nocue: Any, cue_rows: np.ndarray) -> dict[str, float]:
    """Test and test_nocue accuracy, and the mean cue share over the cued test rows `cue_rows`."""
    def accuracy(ds: Any) -> float:
        p = model.predict_proba(list(ds.x))
        return round(float((np.asarray(p).argmax(axis=1) == np.asarray(ds.y)).mean()), 4)

    shares = reason_effect.region_shares(model, [test.x[i] for i in cue_rows], [int(test.y[i]) for i in cue_rows],
                        [test.cue_masks[i] for i in cue_rows])
    return {"test_accuracy": accuracy(test), "test_nocue_accuracy": accuracy(nocue),
            "cue_attribution": round(float(np.nanmean(shares)), 4)}


def _every(data: Any, stride: int) -> Any:
    """Every `stride`-th example of `data` (all classes kept: the splits are not sorted by class)."""
    if stride <= 1:
        return data
    pick = slice(None, None, stride)
    x = data.x[pick] if isinstance(data.x, np.ndarray) else list(data.x)[pick]
    return replace(data, ids=tuple(data.ids[pick]), x=x, y=np.asarray(data.y)[pick],
                   masks=None if data.masks is None else data.masks[pick],
                   cue_masks=None if data.cue_masks is None else data.cue_masks[pick], rationales=None)


def _pair(before: dict[str, float], after: dict[str, float]) -> dict[str, dict[str, float]]:
    return {key: {"before": before[key], "after": after[key]} for key in before}


def simulate_reason(
    source: str,
    budget: int,
    *,
    reason: Any = None,
    quick: bool = False,
    control: bool = True,
    queue: str = "attribution",
    eval_limit: int | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Run the loop on `source` (a model whose dataset ships cue masks); returns the measured numbers.

    `queue`: "attribution" (most Grad-CAM mass on the cue first, the default) or "first" (the first
    cued examples in dataset order, the feasibility experiment's choice). `quick`: a tiny run for
    tests (192 training examples, at most 8 marks, 1 epoch, every third test and test_nocue
    example, 24 cued test maps)."""
    from foundation import config as wb_config
    from labels import Ledger
    from models import store, training
    from models.loaded import LoadedModel
    from models.reason_training import ReasonConfig, reason_fine_tune
    from workbench import datasets, jobs, retrain

    if budget < 1:
        raise WorkbenchError("the marking budget must be at least 1.")
    if queue not in ("attribution", "first"):
        raise WorkbenchError(f"unknown queue {queue!r}; choose attribution or first.")
    if source not in store.model_names():
        raise WorkbenchError(f"no model {source!r}; try shapes-shortcut.")
    started = time.perf_counter()
    reason = reason or ReasonConfig()
    limit = QUICK_LIMIT if quick else None
    if quick:
        budget, reason = min(budget, QUICK_BUDGET), replace(reason, epochs=1)
        eval_limit = eval_limit or QUICK_EVAL
    version = store.current_version(source)
    base = store.load(source, version)
    dataset = base.info.dataset
    if not dataset or "test_nocue" not in datasets.splits(dataset):
        raise WorkbenchError(f"model {source!r} is not trained on a dataset with a planted cue (a test_nocue split).")
    train = training._limited(datasets.load(dataset, datasets.TRAIN_SPLIT), limit)
    if limit:  # _limited drops the cue masks; the reviewer needs them
        train = replace(train, cue_masks=datasets.load(dataset, datasets.TRAIN_SPLIT).cue_masks[:limit])
    test, nocue = datasets.load(dataset, "test"), datasets.load(dataset, "test_nocue")
    if quick:
        test, nocue = _every(test, QUICK_STRIDE), _every(nocue, QUICK_STRIDE)
    if train.cue_masks is None or test.cue_masks is None:
        raise WorkbenchError(f"dataset {dataset!r} ships no cue masks for the scripted reviewer to mark.")
    cue_rows = np.flatnonzero(test.cue_masks.any(axis=(1, 2)))[:eval_limit]

    log(f"{source} {version}: ranking the {int(train.cue_masks.any(axis=(1, 2)).sum())} cued training examples "
        f"by Grad-CAM mass on the cue ...")
    ranked = attribution_queue(base, train)
    if queue == "first":
        ranked = sorted(ranked)
    run_dir = wb_config.workspace_subdir("simulations") / f"{time.strftime('%Y%m%d-%H%M%S')}-{source}-reason"
    run_dir.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(f"sqlite:///{run_dir / 'labels.sqlite'}")
    marked = mark_queue_top(ledger, train, ranked, budget)
    top_shares = [share for _row, share in ranked[:budget]]
    log(f"marked the corner mark 'not a reason' on {len(marked)} examples "
        f"(their cue share {np.mean(top_shares):.3f} on average); measuring the version in use ...")
    before = measure(base, test, nocue, cue_rows)
    log(f"before: {before}")

    config = replace(retrain.recipe_config(base.info), limit=limit)
    log("retraining with the marks (reason-corrected fine-tuning) ...")
    with jobs.holding_lock(source, "simulation", created_by=REVIEWER):
        result = retrain.retrain(source, parent=version, split=datasets.TRAIN_SPLIT, config=config, ledger=ledger,
                                 created_by=REVIEWER, log=log, reason=reason)
    after = measure(store.load(source, result.candidate), test, nocue, cue_rows)
    log(f"after: {after}")
    report: dict[str, Any] = {
        "model": source, "version": version, "candidate": result.candidate, "dataset": dataset,
        "split": datasets.TRAIN_SPLIT, "budget": budget, "marked": len(marked), "queue": queue,
        "train_examples": len(train), "test_examples": len(test), "test_nocue_examples": len(nocue),
        "cue_attribution_examples": int(len(cue_rows)),
        "settings": {**reason.to_dict(), "quick": quick},
        **_pair(before, after),
    }
    if control:
        log("control: the same fine-tuning without any mark ...")
        keras_model = store.load(source, version).keras_model
        reason_fine_tune(keras_model, train.x, train.y, [None] * len(train), base.io, reason, log=log)
        twin = LoadedModel(name=source, version=f"{version}-control", manifest=base.manifest,
                           keras_model=keras_model)
        report["control"] = _pair(before, measure(twin, test, nocue, cue_rows))
        log(f"control after: {report['control']}")
    report["ledger"] = str(run_dir / "labels.sqlite")
    report["seconds"] = round(time.perf_counter() - started, 1)
    (run_dir / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report
