"""Measure what correcting the review queue's top buys, end to end (`workbench simulate-review`).

It lives in the core, not in the command line, so the CLI only parses and prints and any other
caller (a notebook, a benchmark) runs exactly the same experiment.

On a dataset's flipped-label copy (`train_noisy`):

1. train a model on the noisy labels with the sample recipe -> version of `<model>-noisy`;
2. rank the training examples with the review queue (`labels.queue.audit`, most likely
   label errors first), exactly as the Review page orders them;
3. a scripted reviewer looks at the top N and, where the given label is wrong, records the true
   label (from the clean split) in a ledger of its own (`simulations/<run>/labels.sqlite`, so a
   user's real ledger is never touched), as annotator "simulated-reviewer";
4. retrain from those corrections (the same recipe as `workbench retrain`) -> a candidate;
5. measure two arms with the SAME fine-tuning seeds: the corrected labels, and a control (the
   same fine-tuning on the uncorrected labels), so the gain can be told apart from the extra
   epochs and from seed noise. Each arm is reported per seed with mean and spread, and the
   paired difference (corrected minus control, seed by seed) with its own mean and spread:
   pairing removes the part of the seed noise both arms share.
"""
from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any, Callable, Sequence

import numpy as np

from foundation.dataset import dataset_hash
from foundation.errors import WorkbenchError
from workbench import datasets

REVIEWER = "simulated-reviewer"


# -- the noisy starting model ----------------------------------------------------------------

def _train_from_recipe(recipe: str, train: Any, val: Any, config: Any) -> Any:
    from models import store, training

    if recipe == "scratch":
        return training.train_image_from_scratch(train, val, config)
    if recipe == "transfer":
        digits = store.version_path("digits", store.ZOO_VERSION) / store.MODEL_FILE
        backbone, preprocessing = training.digits_backbone(digits)
        return training.transfer_image_model(backbone, preprocessing, train, val, config)
    if recipe == "text":
        return training.train_text(train, val, config)
    raise WorkbenchError(f"model recipe {recipe!r} cannot be simulated; use a sample model.")


def noisy_model(source: str, config: Any, log: Callable[[str], None]) -> tuple[str, str]:
    """`<source>-noisy` at a version trained on the noisy labels with this config (reused if present)."""
    from models import store, training
    from models.manifest import Lineage, Manifest, Metrics, Training

    name = f"{source}-noisy"
    wanted = training.config_dict(config)
    if name in store.model_names():
        for version in store.all_version_ids(name):
            manifest = store.manifest(name, version)
            simulation = manifest.simulation or {}  # this command's own record
            ours = simulation.get("role") == "noisy-base" and simulation.get("config") == wanted
            # The shipped twin (workbench train --noisy) is the same recipe on the same labels.
            shipped = (manifest.lineage.parent is None and manifest.lineage.train_split == datasets.NOISY_SPLIT
                       and manifest.training is not None and manifest.training.config == wanted)
            if ours or shipped:
                log(f"reusing {name} {version} (trained on the noisy labels)")
                return name, version
    parent = store.manifest(source, store.ZOO_VERSION)
    dataset, recipe = parent.dataset, parent.recipe or "scratch"
    train = training._limited(datasets.load(dataset, datasets.NOISY_SPLIT), config.limit)
    val = datasets.load(dataset, "val")
    log(f"training {name} on {len(train)} examples with ~5% flipped labels ...")
    started = time.perf_counter()
    model = _train_from_recipe(recipe, train, val, config)
    from workbench.retrain import evaluate_all

    metrics = Metrics.from_dict(evaluate_all(model, dataset))
    manifest = Manifest(
        # Inherited from the shipped model:
        modality=parent.modality, classes=parent.classes, input=parent.input, dataset=parent.dataset,
        recipe=parent.recipe, gradcam_layer=parent.gradcam_layer, vocabulary_size=parent.vocabulary_size,
        lineage=Lineage(parent=None, train_split=datasets.NOISY_SPLIT, labels_changed=0,
                        data_hash=dataset_hash(train)),
        metrics=metrics,
        intended_use=f"Simulation only: {source}'s recipe trained on the flipped-label copy of {dataset}.",
        training=Training(recipe=recipe, config=wanted, seconds=round(time.perf_counter() - started, 1),
                          command=f"workbench simulate-review --model {source}"),
        simulation={"role": "noisy-base", "config": wanted, "source": source},
        created_by=REVIEWER, created_at=store.now_iso(),
    )
    return name, store.publish_version(name, model, manifest).version


# -- ranking ---------------------------------------------------------------------------------

def rank_examples(model: Any, dataset: Any, ledger: Any) -> list[str]:
    """Example ids in review-queue order (most likely label error first), as the Review page ranks them."""
    from labels import queue

    result = queue.audit(model, dataset, ledger=ledger)
    return [str(eid) for eid in result.ranking("issue")["example_id"]]


# -- the simulated reviewer ------------------------------------------------------------------

def review(ledger: Any, model: Any, noisy: Any, clean: Any, ranked: list[str], budget: int) -> dict[str, Any]:
    """Look at the top `budget` ids; record the true label wherever the given one is wrong."""
    reviewed = ranked[:budget]
    position = {eid: i for i, eid in enumerate(noisy.ids)}
    batch = [noisy.x[position[eid]] for eid in reviewed]
    probabilities = model.predict_proba(batch) if batch else np.zeros((0, len(noisy.classes)))
    corrected = 0
    for eid, probs in zip(reviewed, probabilities):
        i = position[eid]
        given, true = noisy.classes[int(noisy.y[i])], clean.classes[int(clean.y[i])]
        if given == true:
            continue  # the reviewer confirms the label: nothing to record
        seen = ledger.latest_event(noisy.name, eid)
        ledger.record(noisy.name, eid, true, expected_event_id=seen.id if seen else None, annotator=REVIEWER,
                      model_name=model.name, model_version=model.version,
                      predicted_label=noisy.classes[int(probs.argmax())], confidence=float(probs.max()),
                      note="simulated review with the known true label")
        corrected += 1
    return {"reviewed": len(reviewed), "corrected": corrected, "flipped_total": len(noisy.flipped_ids),
            "queue_precision": round(corrected / len(reviewed), 4) if reviewed else None}


def test_scores(keras_model: Any, dataset: str) -> dict[str, float]:
    """Clean test accuracy and log loss (mean -log p(true class)): the loss also sees confidence."""
    from models import training

    test = datasets.load(dataset, "test")
    probabilities = np.asarray(keras_model.predict(training.as_model_input(test), batch_size=256, verbose=0),
                               dtype=np.float64)
    y = np.asarray(test.y, dtype=int)
    true = np.clip(probabilities[np.arange(len(y)), y], 1e-7, 1.0)
    return {"accuracy": round(float((probabilities.argmax(axis=1) == y).mean()), 4),
            "log_loss": round(float(-np.log(true).mean()), 4)}


def _finetuned_scores(name: str, version: str, train: Any, dataset: str, config: Any) -> dict[str, float]:
    """Clean test scores of `version` fine-tuned on `train` with `config` (measured, not published)."""
    from models import store, training

    keras_model = store.load(name, version).keras_model
    training.fine_tune(keras_model, train, datasets.load(dataset, "val"), config)
    return test_scores(keras_model, dataset)


ARMS = ("corrected", "uncorrected_finetune")  # the treatment and its control, in report order
METRICS = ("accuracy", "log_loss")


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Per-seed values with their mean, sample standard deviation (n-1; None for one seed) and range."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        raise WorkbenchError("no scores to summarise.")
    std = round(float(array.std(ddof=1)), 4) if array.size > 1 else None
    return {"values": [round(float(v), 4) for v in array], "mean": round(float(array.mean()), 4), "std": std,
            "min": round(float(array.min()), 4), "max": round(float(array.max()), 4)}


def paired_statistics(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per arm and metric the spread over seeds, and the seed-by-seed difference corrected - control.

    Only runs that measured both arms enter the paired difference, so every pair shares its seed.
    """
    arms = {arm: {metric: spread([run[arm][metric] for run in runs if arm in run]) for metric in METRICS}
            for arm in ARMS if any(arm in run for run in runs)}
    pairs = [run for run in runs if all(arm in run for arm in ARMS)]
    if not pairs:
        return {"seeds": [run["seed"] for run in runs], "arms": arms, "paired_difference": None}
    difference = {metric: spread([run["corrected"][metric] - run["uncorrected_finetune"][metric] for run in pairs])
                  for metric in METRICS}
    difference["seeds"] = [run["seed"] for run in pairs]
    return {"seeds": [run["seed"] for run in runs], "arms": arms, "paired_difference": difference}


def _control(name: str, base: str, noisy: Any, dataset: str, config: Any, log: Callable[[str], None]) -> dict:
    log(f"seed {config.seed}: control, the same fine-tuning on the uncorrected labels ...")
    return _finetuned_scores(name, base, noisy, dataset, config)


def _seed_run(name: str, base: str, dataset: str, corrected: Any, noisy: Any, config: Any, seed: int,
              control: bool, log: Callable[[str], None]) -> dict[str, Any]:
    """One further seed (not published): both arms fine-tuned from the noisy base with this same seed."""
    seeded = replace(config, seed=seed)
    log(f"seed {seed}: fine-tuning on the corrected labels ...")
    run: dict[str, Any] = {"seed": seed, "corrected": _finetuned_scores(name, base, corrected, dataset, seeded)}
    if control:
        run["uncorrected_finetune"] = _control(name, base, noisy, dataset, seeded, log)
    return run


def _mean(runs: list[dict[str, Any]], key: str) -> dict[str, float] | None:
    scores = [run[key] for run in runs if key in run]
    if not scores:
        return None
    return {metric: round(float(np.mean([s[metric] for s in scores])), 4) for metric in scores[0]}


def simulate_review(
    source: str,
    budget: int,
    *,
    config: Any = None,
    control: bool = True,
    repeats: int = 1,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Run the whole loop on `source`'s dataset; returns the measured numbers.

    Seeds are `config.seed` .. `config.seed + repeats - 1`, the same for both arms. The first
    seed's corrected model is the published candidate; the other seeds are measured, not published.
    """
    from foundation import config as wb_config
    from labels import Ledger
    from models import store, training
    from workbench import datasets, jobs, retrain, snapshots

    if budget < 1 or repeats < 1:
        raise WorkbenchError("the review budget and the number of repeats must be at least 1.")
    if source not in store.model_names() or store.ZOO_VERSION not in store.all_version_ids(source):
        raise WorkbenchError(f"{source!r} is not a sample model; choose one of digits, shapes, headlines.")
    started = time.perf_counter()
    config = config or sample_recipe(source)
    name, base = noisy_model(source, config, log)
    dataset = store.manifest(name, base).dataset
    noisy = training._limited(datasets.load(dataset, datasets.NOISY_SPLIT), config.limit)
    clean = training._limited(datasets.load(dataset, "train"), config.limit)
    model = store.load(name, base)
    run_dir = wb_config.workspace_subdir("simulations") / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"
    run_dir.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(f"sqlite:///{run_dir / 'labels.sqlite'}")
    ranked = rank_examples(model, noisy, ledger)
    log(f"ranked {len(ranked)} examples with the review queue; reviewing the top {budget} ...")
    outcome = review(ledger, model, noisy, clean, ranked, budget)
    log(f"{outcome['corrected']} of {outcome['reviewed']} reviewed labels were wrong and got corrected")

    log(f"seed {config.seed}: fine-tuning on the corrected labels (the published candidate) ...")
    with jobs.holding_lock(name, "simulation", created_by=REVIEWER):
        result = retrain.retrain(name, parent=base, split=datasets.NOISY_SPLIT, config=config, ledger=ledger,
                                 created_by=REVIEWER, log=log)
    before = test_scores(store.load(name, base).keras_model, dataset)
    runs = [{"seed": config.seed, "corrected": test_scores(store.load(name, result.candidate).keras_model, dataset)}]
    if control:
        runs[0]["uncorrected_finetune"] = _control(name, base, noisy, dataset, config, log)
    corrected = training._limited(
        snapshots.load_snapshot(snapshots.find_snapshot(dataset, result.data_snapshot_hash)), config.limit)
    for seed in range(config.seed + 1, config.seed + repeats):
        runs.append(_seed_run(name, base, dataset, corrected, noisy, config, seed, control, log))

    # The first seed's figures, under the keys earlier reports used.
    accuracy = {"noisy": result.before["accuracy"], "corrected": result.after["accuracy"]}
    log_loss = {"noisy": before["log_loss"], "corrected": runs[0]["corrected"]["log_loss"]}
    if control:
        accuracy["uncorrected_finetune"] = runs[0]["uncorrected_finetune"]["accuracy"]
        log_loss["uncorrected_finetune"] = runs[0]["uncorrected_finetune"]["log_loss"]
    report = {
        "model": name, "dataset": dataset, "budget": budget, **outcome,
        "noisy_version": base, "candidate": result.candidate, "labels_changed": result.labels_changed,
        "clean_test_accuracy": accuracy,
        "clean_test_log_loss": log_loss,
        "improvement": round(accuracy["corrected"] - accuracy["noisy"], 4),
        "runs": runs,
        "mean_over_seeds": {"corrected": _mean(runs, "corrected"),
                            "uncorrected_finetune": _mean(runs, "uncorrected_finetune")},
        **paired_statistics(runs),
        "test_examples": int(result.after.get("n", 0)),
        "ledger": str(run_dir / "labels.sqlite"),
        "seconds": round(time.perf_counter() - started, 1),
    }
    (run_dir / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report


def sample_recipe(name: str) -> Any:
    """The configuration the shipped model was trained with, so the noisy model matches it."""
    from models import store
    from workbench.retrain import recipe_config

    if name in store.model_names() and store.ZOO_VERSION in store.all_version_ids(name):
        return recipe_config(store.manifest(name, store.ZOO_VERSION))
    return recipe_config(None)  # simulate_review refuses the name with a clear message


