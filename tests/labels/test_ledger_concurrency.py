"""Check-and-append is atomic across threads and across processes, on SQLite files and PostgreSQL."""
from __future__ import annotations

import contextlib
import multiprocessing
import sys
import threading
import types
from concurrent.futures import ThreadPoolExecutor

import pytest

from labels import Ledger, StaleEditError
from tests.labels import ledger_workers

THREADS = 8
PROCESSES = 4
PER_WORKER = 25


def test_threads_appending_distinct_examples_lose_nothing(ledger: Ledger) -> None:
    barrier = threading.Barrier(THREADS)

    def work(worker: int) -> list[int]:
        barrier.wait(timeout=30)
        return [ledger.record("ds", f"t{worker}-{i}", "cat", expected_event_id=None,
                              annotator=f"worker{worker}").id
                for i in range(PER_WORKER)]

    with ThreadPoolExecutor(THREADS) as pool:
        ids = [i for chunk in pool.map(work, range(THREADS)) for i in chunk]

    assert len(set(ids)) == THREADS * PER_WORKER
    assert ledger.count("ds") == THREADS * PER_WORKER
    original = {f"t{w}-{i}": "dog" for w in range(THREADS) for i in range(PER_WORKER)}
    assert set(ledger.current_labels("ds", original).values()) == {"cat"}


def test_threads_racing_on_one_example_exactly_one_wins_each_round(ledger: Ledger) -> None:
    expected = None
    for round_ in range(5):
        barrier = threading.Barrier(THREADS)

        def work(worker: int, seen: int | None = expected) -> tuple[str, int, str]:
            barrier.wait(timeout=30)
            try:
                event = ledger.record("ds", "shared", f"label{worker}", expected_event_id=seen,
                                      annotator=f"worker{worker}")
                return "won", event.id, event.annotator
            except StaleEditError as err:
                return "stale", err.latest.id, err.latest.annotator

        with ThreadPoolExecutor(THREADS) as pool:
            outcomes = list(pool.map(work, range(THREADS)))

        winners = [o for o in outcomes if o[0] == "won"]
        assert len(winners) == 1, f"round {round_}: {outcomes}"
        _, winner_id, winner = winners[0]
        # Every loser was shown the winner's decision, not some older one.
        assert all(o[1:] == (winner_id, winner) for o in outcomes if o[0] == "stale")
        assert ledger.latest_event("ds", "shared").id == winner_id
        expected = winner_id
    assert ledger.count("ds") == 5


@contextlib.contextmanager
def _no_main_script():
    """A spawned child re-runs the parent's main script before its target; after an AppTest that
    script is the last page or app.py the test ran. Children start from a blank main instead."""
    saved = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = saved


def _run_processes(target, args_for) -> list[tuple]:
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter, like a second app server
    barrier, results = ctx.Barrier(PROCESSES), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args_for(w), barrier, results))
             for w in range(PROCESSES)]
    with _no_main_script():
        for proc in procs:
            proc.start()
    try:
        outcomes = [results.get(timeout=60) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=30)
    assert not [o for o in outcomes if o[0] == "error"], outcomes
    return outcomes


@pytest.mark.slow
def test_processes_appending_distinct_examples_lose_nothing(ledger: Ledger, db_url: str) -> None:
    outcomes = _run_processes(ledger_workers.append_distinct,
                              lambda w: (db_url, "ds", w, PER_WORKER))

    ids = [i for outcome in outcomes for i in outcome[2]]
    assert len(set(ids)) == PROCESSES * PER_WORKER
    assert ledger.count("ds") == PROCESSES * PER_WORKER
    assert {e.annotator for e in ledger.history("ds")} == {f"worker{w}" for w in range(PROCESSES)}


@pytest.mark.slow
def test_processes_racing_on_one_example_exactly_one_wins(ledger: Ledger, db_url: str) -> None:
    seen = ledger.record("ds", "shared", "seed", expected_event_id=None, annotator="setup")

    outcomes = _run_processes(ledger_workers.race_on_one,
                              lambda w: (db_url, "ds", "shared", seen.id, w))

    winners = [o for o in outcomes if o[0] == "won"]
    assert len(winners) == 1, outcomes
    _, worker, winner_id, annotator = winners[0]
    assert sorted(o[0] for o in outcomes) == ["stale"] * (PROCESSES - 1) + ["won"]
    assert all(o[2:] == (winner_id, annotator) for o in outcomes if o[0] == "stale")
    assert ledger.count("ds") == 2
    assert ledger.current_label("ds", "shared", "orig") == f"label-from-{worker}"
