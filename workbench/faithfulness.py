"""Deletion and insertion for several methods under several baselines: one table.

Why: blur (images) and token removal (text), the default baselines, are close to what the
SHAP and LIME maskers do themselves (SHAP: a box blur, or a "..." the model's
standardisation deletes; LIME: a hidden superpixel takes its mean colour, a hidden token is
dropped). A comparison of methods under that one baseline can favour the perturbation
methods. Here every input is explained once by every method (`workbench.api.explain`, so
cached results are reused) and every explanation is scored under every baseline, each
against the random-order reference computed under that same baseline.

The random-order reference does not depend on the method (it reads the input, the target,
the seed and the baseline only), so it is computed once per baseline and shared by every
method's row: the methods are compared with one and the same reference.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

from explainers import metrics
from foundation.errors import WorkbenchError
from foundation.types import Modality

# progress(done, total, message): one call before each explanation and each scoring pass.
Progress = Callable[[int, int, str], None]
DEFAULT_RANDOM_REPEATS = 3


def sample_inputs(model: Any, *, n: int, split: str = "test", seed: int = 0,
                  dataset: str | None = None) -> tuple[list[Any], np.ndarray, str]:
    """`n` examples of the model's dataset split, drawn without replacement with `seed` (in
    dataset order, as `workbench evaluate` draws them): (inputs, their indices, dataset name).
    Images come back at the model's input size."""
    from workbench import api, datasets

    if n < 1:
        raise WorkbenchError("n must be at least 1.")
    name = dataset or model.info.dataset
    if not name:
        raise WorkbenchError(f"model {model.name!r} does not say which dataset it was trained on; name a dataset.")
    data = datasets.load(name, split)
    if data.modality is not model.modality:
        raise WorkbenchError(f"dataset {name!r} holds {data.modality.value}s but model {model.name!r} reads "
                             f"{model.modality.value}s.")
    rng = np.random.default_rng(seed)
    indices = np.sort(rng.choice(len(data), size=min(n, len(data)), replace=False))
    if model.modality is Modality.TEXT:
        return [str(data.x[i]) for i in indices], indices, name
    return list(api.prepare_images(model, [data.x[i] for i in indices])), indices, name


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def _std(values: np.ndarray) -> float:
    return float(np.std(values)) if len(values) else float("nan")


def _paired_se(differences: np.ndarray) -> float:
    """Standard error of the mean of paired differences (0 for a single input)."""
    if len(differences) < 2:
        return 0.0 if len(differences) else float("nan")
    return float(np.std(differences, ddof=1) / np.sqrt(len(differences)))


def _row(method: str, curves: metrics.Curves, reference: metrics.Curves) -> dict[str, Any]:
    deletion, insertion = curves.deletion_auc, curves.insertion_auc
    random_deletion, random_insertion = reference.random_deletion_auc, reference.random_insertion_auc
    return {
        "method": method,
        "baseline": curves.baseline_name,
        "baseline_description": curves.baseline,
        "n": int(len(deletion)),
        "deletion_auc": _mean(deletion),
        "deletion_std": _std(deletion),
        "random_deletion_auc": _mean(random_deletion),
        "random_deletion_std": _std(random_deletion),
        # Gains are "better than random" for both tests: random - method for deletion (lower is better).
        "deletion_gain": _mean(random_deletion - deletion),
        "deletion_gain_se": _paired_se(random_deletion - deletion),
        "deletion_below_random": _mean((deletion < random_deletion).astype(float)),
        "insertion_auc": _mean(insertion),
        "insertion_std": _std(insertion),
        "random_insertion_auc": _mean(random_insertion),
        "random_insertion_std": _std(random_insertion),
        "insertion_gain": _mean(insertion - random_insertion),
        "insertion_gain_se": _paired_se(insertion - random_insertion),
        "insertion_above_random": _mean((insertion > random_insertion).astype(float)),
        # Per input, in input order: for paired comparisons between methods (`differences`).
        "deletion_areas": [float(v) for v in deletion],
        "insertion_areas": [float(v) for v in insertion],
    }


def _add_ranks(rows: list[dict[str, Any]]) -> None:
    """Per baseline, each method's place (1 = best): deletion by lowest area, insertion by highest."""
    for baseline in dict.fromkeys(row["baseline"] for row in rows):
        group = [row for row in rows if row["baseline"] == baseline]
        for key, rank_key, sign in (("deletion_auc", "deletion_rank", 1.0), ("insertion_auc", "insertion_rank", -1.0)):
            ordered = sorted(group, key=lambda row: sign * row[key])
            for place, row in enumerate(ordered, start=1):
                row[rank_key] = place


def faithfulness_table(
    model: Any,
    inputs: Sequence[Any],
    methods: Sequence[str],
    *,
    baselines: Sequence[str] | None = None,
    targets: Sequence[int] | None = None,
    steps: int = metrics.DEFAULT_STEPS,
    seed: int = 0,
    random_repeats: int = DEFAULT_RANDOM_REPEATS,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Deletion and insertion areas of every method under every baseline, one row each.

    inputs: images (any size) or texts. methods: registered names. baselines: names from
    `metrics.BASELINES[model.modality]` (None = all of them, the default first).
    targets: the class explained per input (None = the model's predicted class, the same for
    every method). params: per-method constructor parameters ({"shap": {"max_evals": 500}}).
    Each row: method, baseline, baseline_description, n, the mean and spread of each area and
    of its random-order reference (same baseline, `random_repeats` orders per input), the
    paired gain over random with its standard error, the share of inputs beating random, and
    deletion_rank / insertion_rank among the methods under that baseline (1 = best), and the
    per-input areas (deletion_areas, insertion_areas) for paired comparisons (`differences`).
    Rows come baseline by baseline, methods in the order given.
    """
    from workbench import api

    if not methods:
        raise WorkbenchError("name at least one method.")
    if random_repeats < 1:
        raise WorkbenchError("random_repeats must be at least 1: the table compares every method with random order.")
    names = list(metrics.BASELINES[model.modality]) if baselines is None else list(baselines)
    if not names:
        raise WorkbenchError("name at least one baseline.")
    names = [metrics.check_baseline(model.modality, name) for name in names]
    if model.modality is Modality.IMAGE:
        inputs = list(api.prepare_images(model, inputs))
    else:
        inputs = [str(t) for t in inputs]
    if not inputs:
        raise WorkbenchError("there are no inputs to score.")
    if targets is None:
        targets = [int(i) for i in model.predict_proba(inputs).argmax(axis=1)]
    targets = [int(t) for t in targets]
    params = params or {}
    report = progress or (lambda done, total, message: None)
    total = len(methods) * (1 + len(names))
    done = 0
    explanations: dict[str, list[Any]] = {}
    for method in methods:
        report(done, total, f"explaining {len(inputs)} inputs with {method}")
        explanations[method] = api.explain(model, method, inputs, targets, seed=seed, **dict(params.get(method, {})))
        done += 1
    rows: list[dict[str, Any]] = []
    for baseline in names:
        reference: metrics.Curves | None = None
        for method in methods:
            report(done, total, f"scoring {method} against {baseline}")
            # The first method's call also draws the random orders; the others reuse them.
            curves = metrics.deletion_insertion(
                model, inputs, explanations[method], targets=targets, steps=steps, baseline=baseline, seed=seed,
                random_repeats=random_repeats if reference is None else 0,
            )
            if reference is None:
                reference = curves
            rows.append(_row(method, curves, reference))
            done += 1
    report(done, total, "done")
    _add_ranks(rows)
    return rows


def rankings(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, list[str]]]:
    """{baseline: {"deletion": methods best first, "insertion": ...}} from faithfulness_table's rows."""
    out: dict[str, dict[str, list[str]]] = {}
    for baseline in dict.fromkeys(row["baseline"] for row in rows):
        group = [row for row in rows if row["baseline"] == baseline]
        out[baseline] = {
            test: [row["method"] for row in sorted(group, key=lambda row: row[f"{test}_rank"])]
            for test in ("deletion", "insertion")
        }
    return out


def differences(rows: Sequence[Mapping[str, Any]], reference: str) -> dict[str, dict[str, dict[str, float]]]:
    """Paired differences to the `reference` method, per baseline, over the same inputs:
    {baseline: {method: {"deletion": mean, "deletion_se": se, "insertion": mean, "insertion_se": se}}}.

    Signed so that positive = `method` better than the reference: reference area - method
    area for deletion (lower is better), method - reference for insertion. A ranking resting
    on a difference within about two standard errors is not a ranking.
    """
    out: dict[str, dict[str, dict[str, float]]] = {}
    for baseline in dict.fromkeys(row["baseline"] for row in rows):
        group = {row["method"]: row for row in rows if row["baseline"] == baseline}
        if reference not in group:
            raise WorkbenchError(f"no rows for {reference!r} under {baseline!r}.")
        base = group[reference]
        out[baseline] = {}
        for method, row in group.items():
            if method == reference:
                continue
            deletion = np.asarray(base["deletion_areas"]) - np.asarray(row["deletion_areas"])
            insertion = np.asarray(row["insertion_areas"]) - np.asarray(base["insertion_areas"])
            out[baseline][method] = {"deletion": _mean(deletion), "deletion_se": _paired_se(deletion),
                                     "insertion": _mean(insertion), "insertion_se": _paired_se(insertion)}
    return out
