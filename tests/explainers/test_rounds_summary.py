"""`rounds_summary`: what the line under a SHAP or LIME map (and its report) says about its rounds,
from the records `run_rounds` really writes."""
from __future__ import annotations

import numpy as np

from explainers.rounds import RoundResult, fixed_record, rounds_summary, run_rounds


def _rounds(maps: list[np.ndarray], budgets: list[int], used: list[int] | None = None) -> dict:
    """The record of run_rounds whose round k returns maps[k] after used[k] evaluations."""
    used = used or budgets

    def compute(budget: int) -> RoundResult:
        k = budgets.index(budget)
        return RoundResult(comparable=maps[k], payload=None, evaluations=used[k])

    return run_rounds(budgets, compute)[1]


def test_a_map_that_settles_early_says_after_how_many_evaluations():
    same = np.arange(100.0)
    record = _rounds([same, same, same], [150, 300, 1000])
    assert record["stopped"] == "stable"
    assert rounds_summary(record) == "stable after 300 of 1,000 evaluations"


def test_a_map_still_changing_when_the_budget_is_spent_is_flagged_as_possibly_noise():
    rng = np.random.default_rng(0)
    maps = [rng.normal(size=100) for _ in range(3)]  # unrelated maps: every comparison fails
    record = _rounds(maps, [150, 300, 1000])
    assert record["stopped"] == "budget"
    assert rounds_summary(record) == (
        "not stable within the budget (1,000 evaluations): the map still changed between the last two rounds, "
        "so its finer details may be noise")
    # Fewer model calls than the budget (repeated perturbations scored once) are said as such.
    record = _rounds(maps, [150, 300, 1000], used=[140, 280, 900])
    assert rounds_summary(record).startswith("not stable within the budget (900 of 1,000 evaluations)")


def test_a_map_that_settles_only_in_the_last_round_is_stable_at_the_budget():
    rng = np.random.default_rng(1)
    settled = np.arange(100.0)
    record = _rounds([rng.normal(size=100), settled, settled], [150, 300, 1000])
    assert record["stopped"] == "budget"  # the budget was spent either way
    assert rounds_summary(record) == "stable after 1,000 of 1,000 evaluations"


def test_the_full_budget_asked_for_and_rounds_never_compared_say_full_budget():
    assert rounds_summary(fixed_record(500, 500)) == "full budget: 500 evaluations"
    assert rounds_summary(fixed_record(500, 430)) == "full budget: 430 of 500 evaluations"
    # A preview round is never compared with the next, so one budget round after it compares nothing.
    rng = np.random.default_rng(2)
    record = run_rounds([60, 100], lambda b: RoundResult(rng.normal(size=50), None, b), previews=1)[1]
    assert rounds_summary(record) == "full budget: 100 evaluations"


def test_no_caption_for_a_method_without_rounds_and_refining_while_running():
    assert rounds_summary({}) is None
    seen: list[str | None] = []
    same = np.arange(100.0)

    def notify(index: int, result: RoundResult, record: dict) -> None:
        seen.append(rounds_summary(record))

    run_rounds([150, 300, 1000], lambda b: RoundResult(same, None, b), notify)
    assert seen == ["refining… (150 of 1,000 evaluations)", "stable after 300 of 1,000 evaluations"]
