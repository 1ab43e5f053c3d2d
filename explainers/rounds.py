"""Perturbation explanations in rounds of growing budget, stopped once the map is stable.

Why: on a real-size model the forward pass dominates, and most maps stop changing long
before the fixed budget is spent. SHAP and LIME therefore run in rounds (SHAP 100 -> 200
-> 400 ... evaluations, LIME 150 -> 300 -> 600 ... samples, the last round always the
full budget) and stop when two consecutive maps agree: the top-10 % regions overlap with
intersection over union >= 0.9 AND the Spearman rank correlation is >= 0.95.

A round never pays again for work an earlier round did:
- SHAP: Partition's evaluations under a smaller budget are the evaluations of a larger
  budget up to its last batch (same seed, same batch size), so the model function is
  memoised (`MemoForward`, keyed by the mask for images) and a round only paints and
  evaluates the masks it adds;
- LIME: the whole perturbation matrix is drawn once (the same draws as the fixed budget)
  and round k fits on its first n_k rows, scoring only the rows not scored before.
So the model evaluations used are at most the fixed budget, and a run that reaches the
last round gives the fixed-budget map.

`run_rounds` is the loop; `on_round(round_index, partial_explanation)` lets a page show
the first map after round 0 and refine it.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from foundation.types import Explanation

TOP_FRACTION = 0.1
STABLE_IOU = 0.9
STABLE_SPEARMAN = 0.95
SHAP_FIRST_ROUND = 100
LIME_FIRST_ROUND = 150
# A preview round before the first: a coarser map drawn sooner (the first map should come
# within 2 s of the click on a 224 x 224 MobileNetV2, where 100 evaluations take about 1 s of
# forward passes alone on 2 cores). It is never compared with the round after it, so the
# stopping decisions (and the final map) are those of the rounds without it; its evaluations
# are a prefix of the next round's, so it costs model calls only where the two differ.
SHAP_PREVIEW_ROUND = 50
LIME_PREVIEW_ROUND = 60
STOPPING_LABELS = {"stable": "When the map is stable", "budget": "Full budget (reproducible)"}
# The page's callback: (round index, the explanation so far).
OnRound = Callable[[int, Explanation], None]


def stopping_param(what_grows: str) -> Any:
    """The `stopping` parameter SHAP and LIME declare alike ("stable" or "budget")."""
    from explainers.params import param

    return param(
        "stable", str, "Stop", choices=STOPPING_LABELS, shown=False,
        help=f"Run in rounds of growing {what_grows} and stop once the map stops changing, "
             "or always spend the full budget (reproducible reports).",
        summary={"budget": "full budget"},
    )


# --- agreement between two maps ---------------------------------------------------------


def top_indices(values: np.ndarray, fraction: float = TOP_FRACTION) -> np.ndarray:
    """Indices of the largest `fraction` of values (at least one); ties broken by position."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    k = max(1, int(np.ceil(fraction * flat.size)))
    return np.argsort(-flat, kind="stable")[:k]


def top_iou(a: np.ndarray, b: np.ndarray, fraction: float = TOP_FRACTION) -> float:
    """Intersection over union of the top-`fraction` features of two maps of the same shape."""
    first, second = set(top_indices(a, fraction).tolist()), set(top_indices(b, fraction).tolist())
    union = first | second
    return len(first & second) / len(union) if union else 1.0


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties given their average rank (as Spearman's rho needs)."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(flat, kind="stable")
    ranks = np.empty(flat.size, dtype=np.float64)
    ranks[order] = np.arange(1, flat.size + 1)
    _, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse.ravel(), weights=ranks)
    return sums[inverse.ravel()] / counts[inverse.ravel()]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps; 1 when both are constant, 0 when only one is."""
    ra, rb = _ranks(a), _ranks(b)
    da, db = ra - ra.mean(), rb - rb.mean()
    na, nb = float(np.sqrt((da * da).sum())), float(np.sqrt((db * db).sum()))
    if na == 0.0 or nb == 0.0:
        return 1.0 if na == nb else 0.0
    return float((da * db).sum() / (na * nb))


@dataclass(frozen=True)
class Agreement:
    iou: float
    spearman: float

    @property
    def stable(self) -> bool:
        return self.iou >= STABLE_IOU and self.spearman >= STABLE_SPEARMAN


def agreement(previous: np.ndarray, current: np.ndarray) -> Agreement:
    return Agreement(iou=top_iou(previous, current), spearman=spearman(previous, current))


# --- the rounds ---------------------------------------------------------------------------


def round_budgets(first: int, budget: int, preview: int | None = None) -> list[int]:
    """first, 2*first, 4*first ... below budget, then budget itself (just [budget] if first >= budget),
    after a `preview` round when one is given that is smaller than both."""
    budgets, size = [], int(first)
    while size < budget:
        budgets.append(size)
        size *= 2
    head = [int(preview)] if preview is not None and 0 < preview < min(int(first), int(budget)) else []
    return head + budgets + [int(budget)]


def round_plan(first: int, budget: int, preview: int | None = None) -> tuple[list[int], int]:
    """The budgets of `round_budgets` and how many of them are previews (0 or 1), for `run_rounds`."""
    budgets = round_budgets(first, budget, preview)
    return budgets, len(budgets) - len(round_budgets(first, budget))


@dataclass(frozen=True)
class RoundResult:
    """What one round produced: the map compared between rounds, and whatever the explainer keeps."""

    comparable: np.ndarray
    payload: Any
    evaluations: int  # model evaluations used so far (all rounds)


def run_rounds(
    budgets: list[int],
    compute: Callable[[int], RoundResult],
    notify: Callable[[int, RoundResult, dict[str, Any]], None] | None = None,
    previews: int = 0,
) -> tuple[RoundResult, dict[str, Any]]:
    """Run `compute(budget)` for each budget until two consecutive maps agree or the budgets end.

    The first `previews` rounds only show a map early: no round is compared with them.

    Returns the last round's result and the record for the Explanation's extras:
    evaluations_used, budget, rounds, stopped ("stable" or "budget") and round_agreement
    (one entry per round: budget, evaluations so far, iou and spearman with the previous map).
    `notify(round_index, result, record_so_far)` is called after every round.
    """
    history: list[dict[str, Any]] = []
    previous: RoundResult | None = None
    stopped = "budget"
    result: RoundResult | None = None
    for index, budget in enumerate(budgets):
        result = compute(budget)
        entry: dict[str, Any] = {"budget": int(budget), "evaluations": int(result.evaluations),
                                 "iou": None, "spearman": None}
        final = index == len(budgets) - 1
        stable = False
        if previous is not None and index > previews:
            measured = agreement(previous.comparable, result.comparable)
            entry.update(iou=measured.iou, spearman=measured.spearman)
            # Agreement in the last round changes nothing: the budget is spent either way.
            stable = measured.stable and not final
        history.append(entry)
        last = stable or final
        if stable:
            stopped = "stable"
        record = _record(budgets[-1], history, stopped if last else "refining", result.evaluations)
        if notify is not None:
            notify(index, result, record)
        if last:
            return result, record
        previous = result
    raise ValueError("run_rounds needs at least one budget")


def _record(budget: int, history: list[dict[str, Any]], stopped: str, evaluations: int) -> dict[str, Any]:
    return {"evaluations_used": int(evaluations), "budget": int(budget), "rounds": len(history),
            "stopped": stopped, "round_agreement": [dict(entry) for entry in history]}


def _last_agreement(record: Mapping[str, Any]) -> Agreement | None:
    """The agreement of a record's last compared pair of rounds; None if no round was compared
    (the full budget asked for, a preview and one round, or a method without rounds)."""
    compared = [entry for entry in record.get("round_agreement") or () if entry.get("spearman") is not None]
    if not compared:
        return None
    return Agreement(iou=float(compared[-1]["iou"]), spearman=float(compared[-1]["spearman"]))


def unsettled(record: Mapping[str, Any]) -> bool:
    """Whether a run in rounds spent its budget while its last two maps still disagreed (its finer
    details may then be sampling noise). False for a stable stop, a full budget asked for (nothing
    compared) and a method without rounds."""
    last = _last_agreement(record)
    return record.get("stopped") == "budget" and last is not None and not last.stable


def rounds_summary(record: Mapping[str, Any]) -> str | None:
    """How far a run in rounds got, for the line under its map and for reports: "refining… (200 of
    500 evaluations)", "stable after 300 of 500 evaluations", "full budget: 500 evaluations" (asked
    for), or a warning when the budget ran out with the map still changing. None for a method
    without rounds or a result recorded before rounds existed."""
    stopped, used, budget = record.get("stopped"), record.get("evaluations_used"), record.get("budget")
    if stopped is None or used is None or budget is None:
        return None
    used, budget = int(used), int(budget)
    if stopped == "refining":
        return f"refining… ({used:,} of {budget:,} evaluations)"
    last = _last_agreement(record)
    if stopped == "stable" or (last is not None and last.stable):  # the latter settled in the last round
        return f"stable after {used:,} of {budget:,} evaluations"
    # Repeated perturbations are scored once, so fewer evaluations than the budget can spend it.
    spent = f"{budget:,} evaluations" if used == budget else f"{used:,} of {budget:,} evaluations"
    if last is None:  # asked for (or one round was all the budget allowed)
        return f"full budget: {spent}"
    return (f"not stable within the budget ({spent}): the map still changed between the last two rounds, "
            "so its finer details may be noise")


def fixed_record(budget: int, evaluations: int) -> dict[str, Any]:
    """The same record for a run at the full fixed budget (one round, no comparison)."""
    return _record(budget, [{"budget": int(budget), "evaluations": int(evaluations), "iou": None, "spearman": None}],
                   "budget", evaluations)


# --- memoised model function ----------------------------------------------------------------


class MemoForward:
    """A batch model function that scores each distinct input once, across calls.

    Rows are keyed by their bytes (arrays; boolean ones packed to bits first) or their text
    (strings); `evaluations` counts the rows actually sent to the model.
    """

    def __init__(self, predict: Callable[[Any], np.ndarray]) -> None:
        self._predict = predict
        self._cache: dict[Any, np.ndarray] = {}
        self.evaluations = 0

    @staticmethod
    def _key(row: Any) -> Any:
        if isinstance(row, np.ndarray) and row.dtype != object:
            data = np.packbits(row) if row.dtype == bool else np.ascontiguousarray(row)
            return hashlib.blake2b(data.tobytes(), digest_size=16).digest()
        return str(np.asarray(row, dtype=object).ravel()[0]) if not isinstance(row, str) else row

    def __call__(self, inputs: Any) -> np.ndarray:
        rows = [inputs] if isinstance(inputs, str) else list(inputs)
        keys = [self._key(row) for row in rows]
        missing: dict[Any, int] = {}
        for index, key in enumerate(keys):
            if key not in self._cache and key not in missing:
                missing[key] = index
        if missing:
            fresh = [rows[i] for i in missing.values()]
            batch = np.stack(fresh) if isinstance(fresh[0], np.ndarray) and fresh[0].dtype != object else fresh
            scored = np.asarray(self._predict(batch))
            for key, out in zip(missing, scored):
                self._cache[key] = out
            self.evaluations += len(missing)
        return np.stack([self._cache[key] for key in keys])
