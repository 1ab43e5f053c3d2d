"""Code run in separate (spawned) processes by the concurrency tests; importable by name."""
from __future__ import annotations

from typing import Any


def append_distinct(url: str, dataset: str, worker: int, count: int, barrier: Any, results: Any) -> None:
    """Append `count` corrections to examples no other worker touches."""
    try:
        from labels import Ledger

        ledger = Ledger(url, create=False)
        ledger.count(dataset)  # connect before the barrier, so the writes really overlap
        barrier.wait(timeout=60)
        ids = [
            ledger.record(dataset, f"w{worker}-{i}", f"label{i % 3}", expected_event_id=None,
                          annotator=f"worker{worker}").id
            for i in range(count)
        ]
        results.put(("ok", worker, ids))
    except Exception as exc:  # report, so the parent fails with the reason instead of hanging
        results.put(("error", worker, repr(exc)))


def race_on_one(url: str, dataset: str, example_id: str, expected_event_id: int | None,
                worker: int, barrier: Any, results: Any) -> None:
    """Everyone edits the same example having seen the same event; report who won."""
    try:
        from labels import Ledger, StaleEditError

        ledger = Ledger(url, create=False)
        ledger.count(dataset)  # connect before the barrier, so the writes really overlap
        barrier.wait(timeout=60)
        try:
            event = ledger.record(dataset, example_id, f"label-from-{worker}",
                                  expected_event_id=expected_event_id, annotator=f"worker{worker}")
            results.put(("won", worker, event.id, event.annotator))
        except StaleEditError as err:
            results.put(("stale", worker, err.latest.id, err.latest.annotator))
    except Exception as exc:
        results.put(("error", worker, repr(exc)))
