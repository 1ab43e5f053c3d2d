"""Issue 17: reason marks are append-only ledger events with the guarantees of label decisions
(identity, undo, optimistic concurrency, export/import), on SQLite and PostgreSQL."""
from __future__ import annotations

import csv
import io
import json
import threading
from datetime import datetime, timezone

import numpy as np
import pytest
from sqlalchemy import Column, MetaData, Table, create_engine, insert, inspect, text

from foundation.access import AccessDenied, Identity
from foundation.errors import WorkbenchError
from labels import Ledger, StaleEditError, schema
from labels.engine import dispose_engine, write_transaction
from labels.export import LABEL_COLUMNS, REASON_MARK_COLUMNS
from labels.reasons import (
    MAX_BOXES,
    MAX_WORDS,
    ReasonMark,
    box_mask,
    current_reason_marks,
    marked_words,
    word_mask,
)

ALICE = Identity(subject="oidc|alice", email="alice@example.org", name="Alice", role="annotator", signed_in=True)
VIC = Identity(subject="oidc|vic", email="vic@example.org", name="Vic", role="viewer", signed_in=True)
IDS = ["a", "b", "c", "=evil"]


def test_a_mark_round_trips_and_is_in_force(ledger: Ledger) -> None:
    event = ledger.mark_reason("shapes", "a", "not_reason", boxes=[(0, 0, 4, 4), [10, 12, 16, 20]],
                               annotator="Alice", expected_event_id=None, note="corner mark", actor=ALICE)
    words = ledger.mark_reason("reviews", "t1", "reason", words=[5, 2, 2], annotator="Alice",
                               expected_event_id=None, actor=ALICE)

    assert event.boxes == ((0, 0, 4, 4), (10, 12, 16, 20)) and event.words == ()
    assert words.words == (2, 5)  # sorted, without repeats
    assert ledger.latest_reason_event("shapes", "a") == event
    assert current_reason_marks(ledger, "shapes") == {"a": [ReasonMark(
        "shapes", "a", "not_reason", ((0, 0, 4, 4), (10, 12, 16, 20)), (), event.id, "Alice")]}
    assert current_reason_marks(ledger, "reviews")["t1"][0].words == (2, 5)
    stored = ledger.reason_history("shapes")[0]
    assert (stored.actor_subject, stored.actor_email, stored.actor_role) == ("oidc|alice", "alice@example.org",
                                                                            "annotator")
    assert stored.note == "corner mark" and stored.created_at.tzinfo is not None
    assert "Alice (alice@example.org) marked 2 boxes as not a reason" in stored.describe()
    # Marks are not label events: the label ledger is untouched.
    assert ledger.count("shapes") == 0 and ledger.latest_event("shapes", "a") is None


def test_marks_and_label_decisions_do_not_make_each_other_stale(ledger: Ledger) -> None:
    label = ledger.record("shapes", "a", "circle", expected_event_id=None, annotator="Alice")
    mark = ledger.mark_reason("shapes", "a", "reason", boxes=[(1, 1, 3, 3)], annotator="Alice",
                              expected_event_id=None)
    ledger.record("shapes", "a", "square", expected_event_id=label.id, annotator="Alice")
    ledger.mark_reason("shapes", "a", "not_reason", boxes=[(0, 0, 2, 2)], annotator="Alice",
                       expected_event_id=mark.id)
    assert len(current_reason_marks(ledger, "shapes")["a"]) == 2


def test_a_stale_mark_is_refused_and_names_the_other_mark(ledger: Ledger) -> None:
    first = ledger.mark_reason("shapes", "a", "not_reason", boxes=[(0, 0, 4, 4)], annotator="bob",
                               expected_event_id=None)
    with pytest.raises(StaleEditError, match="bob marked 1 box as not a reason") as caught:
        ledger.mark_reason("shapes", "a", "reason", boxes=[(5, 5, 8, 8)], annotator="carol",
                           expected_event_id=None)
    assert caught.value.latest.id == first.id
    with pytest.raises(StaleEditError):
        ledger.undo_reason("shapes", "a", annotator="carol", expected_event_id=first.id + 1000)
    # Retrying with the id the error carries applies it deliberately.
    ledger.mark_reason("shapes", "a", "reason", boxes=[(5, 5, 8, 8)], annotator="carol",
                       expected_event_id=caught.value.latest.id)
    assert [m.annotator for m in current_reason_marks(ledger, "shapes")["a"]] == ["bob", "carol"]


def test_undo_removes_the_newest_mark_then_the_one_before_then_refuses(ledger: Ledger) -> None:
    one = ledger.mark_reason("shapes", "a", "not_reason", boxes=[(0, 0, 4, 4)], annotator="A", expected_event_id=None)
    two = ledger.mark_reason("shapes", "a", "reason", boxes=[(4, 4, 8, 8)], annotator="A", expected_event_id=one.id)
    ledger.mark_reason("shapes", "b", "reason", boxes=[(4, 4, 8, 8)], annotator="A", expected_event_id=None)

    undo = ledger.undo_reason("shapes", "a", annotator="A", expected_event_id=two.id)
    assert undo.supersedes == two.id and undo.action == "undo"
    assert [m.event_id for m in current_reason_marks(ledger, "shapes")["a"]] == [one.id]
    assert "removed a reason mark" in undo.describe()
    undo2 = ledger.undo_reason("shapes", "a", annotator="A", expected_event_id=undo.id)
    assert undo2.supersedes == one.id
    marks = current_reason_marks(ledger, "shapes")
    assert "a" not in marks and len(marks["b"]) == 1  # the other example keeps its mark
    with pytest.raises(WorkbenchError, match="every mark is already removed"):
        ledger.undo_reason("shapes", "a", annotator="A", expected_event_id=undo2.id)
    with pytest.raises(WorkbenchError, match="it has no reason marks"):
        ledger.undo_reason("shapes", "zzz", annotator="A", expected_event_id=None)
    assert len(ledger.reason_history("shapes")) == 5


def test_a_viewer_is_refused_and_nothing_is_stored(ledger: Ledger) -> None:
    message = "vic@example.org is a viewer; correcting labels needs the annotator role"
    with pytest.raises(AccessDenied, match=message):
        ledger.mark_reason("shapes", "a", "reason", boxes=[(0, 0, 1, 1)], annotator="Vic",
                           expected_event_id=None, actor=VIC)
    mark = ledger.mark_reason("shapes", "a", "reason", boxes=[(0, 0, 1, 1)], annotator="Alice",
                              expected_event_id=None, actor=ALICE)
    with pytest.raises(AccessDenied, match=message):
        ledger.undo_reason("shapes", "a", annotator="Vic", expected_event_id=mark.id, actor=VIC)
    with pytest.raises(AccessDenied, match=message):
        ledger.import_reason_marks("shapes", b'example_id,kind,boxes,words\nb,reason,"[[0,0,1,1]]",[]\n',
                                   known_ids=IDS, annotator="Vic", actor=VIC)
    assert len(ledger.reason_history("shapes")) == 1


@pytest.mark.parametrize("kwargs, message", [
    (dict(kind="maybe", boxes=[(0, 0, 1, 1)]), "Unknown reason mark kind 'maybe'"),
    (dict(kind="reason"), "needs at least one box"),
    (dict(kind="reason", boxes=[(0, 0, 1)]), "Box 1 has 3 numbers"),
    (dict(kind="reason", boxes=[(4, 0, 2, 3)]), r"Box 1 \(4, 0, 2, 3\) is empty"),
    (dict(kind="reason", boxes=[(0, 5, 2, 5)]), "is empty"),
    (dict(kind="reason", boxes=[(-1, 0, 2, 3)]), "outside 0..65536"),
    (dict(kind="reason", boxes=[(0, 0, 2.5, 3)]), "must be integers, not 2.5"),
    (dict(kind="reason", boxes=[(0, True, 2, 3)]), "must be integers, not True"),
    (dict(kind="reason", boxes="0,0,1,1"), "must be a list of"),
    (dict(kind="reason", boxes=[(0, 0, 1, 1)] * (MAX_BOXES + 1)), f"at most {MAX_BOXES} boxes"),
    (dict(kind="reason", words=[-2]), "counted from 0"),
    (dict(kind="reason", words=["3"]), "must be integers, not '3'"),
    (dict(kind="reason", words=list(range(MAX_WORDS + 1))), f"at most {MAX_WORDS} words"),
    (dict(kind="reason", words=[1], note="x" * 3000), "note is longer"),
])
def test_bad_marks_are_refused_before_writing(ledger: Ledger, kwargs: dict, message: str) -> None:
    with pytest.raises(WorkbenchError, match=message):
        ledger.mark_reason("shapes", "a", annotator="A", expected_event_id=None, **kwargs)
    with pytest.raises(WorkbenchError, match="example id is empty"):
        ledger.mark_reason("shapes", " ", "reason", words=[1], annotator="A", expected_event_id=None)
    assert ledger.reason_history("shapes") == []


def test_numpy_integers_are_accepted(ledger: Ledger) -> None:
    event = ledger.mark_reason("shapes", "a", "reason", boxes=[np.array([1, 2, 3, 4])], words=[np.int64(3)],
                               annotator="A", expected_event_id=None)
    assert event.boxes == ((1, 2, 3, 4),) and event.words == (3,)


def test_the_database_refuses_to_rewrite_marks(ledger: Ledger) -> None:
    ledger.mark_reason("shapes", "a", "reason", words=[1], annotator="A", expected_event_id=None)
    for statement in ("UPDATE reason_events SET kind = 'x'", "DELETE FROM reason_events"):
        with pytest.raises(Exception, match="append-only"):
            with write_transaction(ledger.engine, "shapes") as conn:
                conn.execute(text(statement))
    assert len(ledger.reason_history("shapes")) == 1


def test_box_mask_is_end_exclusive_and_clipped() -> None:
    mask = box_mask([(1, 2, 3, 5), (6, 6, 100, 100), (50, 50, 60, 60)], 8, 8)
    assert mask.dtype == bool and mask.shape == (8, 8)
    assert mask[1:3, 2:5].all() and mask[6:, 6:].all()
    assert mask.sum() == 2 * 3 + 2 * 2  # the box past the grid adds nothing; row 3 and column 5 are outside
    assert not box_mask([], 4, 4).any()
    assert word_mask([0, 2, 9], 4).tolist() == [True, False, True, False]
    assert marked_words("the cat sat down", [3, 1, 7]) == ["cat", "down"]


def test_marks_export_and_import_round_trip_in_csv_and_json(ledger: Ledger, tmp_path) -> None:
    one = ledger.mark_reason("shapes", "a", "not_reason", boxes=[(0, 0, 4, 4)], annotator="Alice",
                             expected_event_id=None, note="=HYPERLINK(1)")
    ledger.mark_reason("shapes", "=evil", "reason", words=[0, 3], annotator="Alice", expected_event_id=None)
    two = ledger.mark_reason("shapes", "a", "reason", boxes=[(5, 5, 9, 9), (1, 1, 2, 2)], annotator="Alice",
                             expected_event_id=one.id)
    ledger.undo_reason("shapes", "a", annotator="Alice", expected_event_id=two.id)  # not exported

    as_csv = ledger.export_reason_marks("shapes", "csv")
    as_json = ledger.export_reason_marks("shapes", "json")
    rows = list(csv.reader(io.StringIO(as_csv.decode(), newline="")))
    assert rows[0] == list(REASON_MARK_COLUMNS) and len(rows) == 3
    assert not [cell for row in rows for cell in row if cell.startswith(("=", "+", "-", "@"))]
    assert json.loads(as_json)[0]["boxes"] == [[0, 0, 4, 4]]
    history = json.loads(ledger.export_reason_history("shapes", "json"))
    assert [r["action"] for r in history] == ["mark", "mark", "mark", "undo"]

    def shape(marks: dict) -> dict:
        return {eid: [(m.kind, m.boxes, m.words) for m in ms] for eid, ms in marks.items()}

    for fmt, data in (("csv", as_csv), ("json", as_json)):
        other = Ledger(f"sqlite:///{tmp_path / f'other_{fmt}.sqlite'}")
        report = other.import_reason_marks("shapes", data, known_ids=IDS, annotator="Bob")
        assert report.ok and report.imported == 2, report.summary()
        assert report.summary() == "Imported 2 reason mark(s)."
        assert shape(current_reason_marks(other, "shapes")) == shape(current_reason_marks(ledger, "shapes"))
        imported = other.reason_history("shapes", "a")[0]
        assert imported.action == "import" and imported.annotator == "Bob" and imported.note == "=HYPERLINK(1)"
        # An imported mark can be undone like any other.
        other.undo_reason("shapes", "a", annotator="Bob", expected_event_id=imported.id)
        assert "a" not in current_reason_marks(other, "shapes")
        dispose_engine(other.url)


def test_importing_the_same_marks_twice_adds_nothing_the_second_time(ledger: Ledger) -> None:
    """Marks identical to one in force (or repeated in the file) are skipped and counted; an undone
    mark is not in force, so importing it again restores it."""
    ledger.mark_reason("shapes", "a", "not_reason", boxes=[(0, 0, 4, 4)], annotator="A", expected_event_id=None)
    data = (b'example_id,kind,boxes,words\n'
            b'a,not_reason,"[[0,0,4,4]]",[]\n'      # in force already
            b'a,reason,"[[0,0,4,4]]",[]\n'          # same box, other kind: a new mark
            b'b,reason,"[[1,1,3,3]]",[]\n'
            b'b,reason,"[[1,1,3,3]]",[]\n')         # twice in the file
    first = ledger.import_reason_marks("shapes", data, known_ids=IDS, annotator="B")
    assert (first.imported, first.skipped) == (2, 2)
    assert first.summary() == "Imported 2 reason mark(s) (2 already in force, skipped)."
    again = ledger.import_reason_marks("shapes", data, known_ids=IDS, annotator="B")
    assert (again.imported, again.skipped) == (0, 4) and len(ledger.reason_history("shapes")) == 3
    [b_mark] = current_reason_marks(ledger, "shapes")["b"]
    ledger.undo_reason("shapes", "b", annotator="B", expected_event_id=ledger.reason_history("shapes", "b")[0].id)
    restored = ledger.import_reason_marks("shapes", data, known_ids=IDS, annotator="B")
    assert (restored.imported, restored.skipped) == (1, 3)
    assert [(m.kind, m.boxes) for m in current_reason_marks(ledger, "shapes")["b"]] == [(b_mark.kind, b_mark.boxes)]


def test_a_bad_marks_file_imports_nothing_and_reports_every_line(ledger: Ledger) -> None:
    data = (b'example_id,kind,boxes,words\n'
            b'a,reason,"[[0,0,4,4]]",[]\n'
            b'nobody,reason,"[[0,0,4,4]]",[]\n'
            b'b,maybe,"[[0,0,4,4]]",[]\n'
            b'c,reason,"[[4,0,2,4]]",[]\n'
            b'c,reason,[oops,[]\n'
            b'c,reason,,\n')
    report = ledger.import_reason_marks("shapes", data, known_ids=IDS, annotator="A")
    assert not report.ok and report.imported == 0
    lines = {p.line: p.message for p in report.problems}
    assert set(lines) == {3, 4, 5, 6, 7}
    assert "unknown example_id 'nobody'" in lines[3] and "Unknown reason mark kind" in lines[4]
    assert "is empty" in lines[5] and "not a JSON list" in lines[6] and "at least one box" in lines[7]
    assert ledger.reason_history("shapes") == []
    bad_header = ledger.import_reason_marks("shapes", b"example_id,label\n", known_ids=IDS, annotator="A")
    assert "unknown column 'label'" in bad_header.summary()
    bad_json = ledger.import_reason_marks("shapes", b'[{"example_id": "a", "kind": "reason", "boxes": 3}]',
                                          known_ids=IDS, annotator="A")
    assert "boxes must be a list" in bad_json.summary()
    assert ledger.reason_history("shapes") == []


def test_the_label_exports_are_unchanged_by_marks(ledger: Ledger) -> None:
    ledger.record("shapes", "a", "circle", expected_event_id=None, annotator="A")
    ledger.mark_reason("shapes", "a", "reason", words=[1], annotator="A", expected_event_id=None)
    rows = json.loads(ledger.export_labels("shapes", {"a": "square", "b": "circle"}, "json"))
    assert set(rows[0]) == set(LABEL_COLUMNS) and rows[0]["current_label"] == "circle"
    history = json.loads(ledger.export_history("shapes", "json"))
    assert len(history) == 1 and history[0]["action"] == "set" and set(history[0]) == set(schema.FIELDS)


def test_an_older_ledger_without_the_marks_table_opens_and_gains_it(db_url: str) -> None:
    engine = create_engine(db_url)
    old = Table("label_events", MetaData(), *[
        Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
        for c in schema.label_events.columns if c.name not in schema.ADDED_COLUMNS], sqlite_autoincrement=True)
    with engine.begin() as conn:
        old.create(conn)
        conn.execute(insert(old), [{"dataset": "shapes", "example_id": "a", "previous_label": None,
                                    "new_label": "circle", "action": "set", "annotator": "old-timer",
                                    "created_at": datetime(2025, 1, 1, tzinfo=timezone.utc)}])
        assert "reason_events" not in inspect(conn).get_table_names()
    engine.dispose()
    Ledger._created.discard(db_url)

    ledger = Ledger(db_url)
    Ledger(db_url).create_all()  # a second start finds nothing to add
    assert [e.annotator for e in ledger.history("shapes")] == ["old-timer"]
    ledger.mark_reason("shapes", "a", "not_reason", boxes=[(0, 0, 2, 2)], annotator="A", expected_event_id=None)
    assert list(current_reason_marks(ledger, "shapes")) == ["a"]
    with pytest.raises(Exception, match="append-only"):
        with write_transaction(ledger.engine, "shapes") as conn:
            conn.execute(text("DELETE FROM reason_events"))
    dispose_engine(db_url)


def test_threads_racing_to_mark_one_example_exactly_one_wins(ledger: Ledger) -> None:
    barrier, outcomes = threading.Barrier(4), []

    def race(worker: int) -> None:
        barrier.wait(timeout=30)
        try:
            ledger.mark_reason("shapes", "a", "reason", words=[worker], annotator=f"w{worker}", expected_event_id=None)
            outcomes.append("won")
        except StaleEditError:
            outcomes.append("stale")

    threads = [threading.Thread(target=race, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["stale", "stale", "stale", "won"]
    assert len(ledger.reason_history("shapes")) == 1


def test_a_box_selection_maps_to_the_pixels_it_overlaps() -> None:
    from labels.reasons import box_from_ranges

    # Pixel j spans j-0.5 .. j+0.5: the whole 8x8 image, dragged in either direction.
    assert box_from_ranges([-0.5, 7.5], [7.5, -0.5], 8, 8) == (0, 0, 8, 8)
    assert box_from_ranges([1.2, 2.9], [0.4, 0.6], 8, 8) == (0, 1, 2, 4)
    assert box_from_ranges([1.5, 1.5000001], [0.0, 0.1], 8, 8) == (0, 2, 1, 3)  # touching pixel 1's edge only
    assert box_from_ranges([-30, -10], [0, 3], 8, 8) is None  # left of the image
    assert box_from_ranges([5, 90], [5, 90], 8, 8) == (5, 5, 8, 8)  # clipped
    assert box_from_ranges([float("nan"), 1], [0, 1], 8, 8) is None
    assert box_from_ranges([1], [0, 1], 8, 8) is None
