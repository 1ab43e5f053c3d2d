"""Recording, deriving current labels, stale edits, undo, history and ambiguity flags."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import exc, text

from foundation.errors import WorkbenchError
from labels import Ledger, StaleEditError
from labels.engine import dispose_engine

ORIGINAL = {"a": "cat", "b": "dog", "c": "bird"}


def test_record_round_trips_every_field(ledger: Ledger) -> None:
    before = datetime.now(timezone.utc)
    event = ledger.record("pets", "a", "dog", expected_event_id=None, annotator="alice",
                          model_name="cnn", model_version="v3", predicted_label="dog",
                          confidence=0.875, note="ears")
    after = datetime.now(timezone.utc)

    assert ledger.history("pets") == [event]
    assert (event.previous_label, event.new_label, event.action) == (None, "dog", "set")
    assert (event.model_name, event.model_version, event.predicted_label) == ("cnn", "v3", "dog")
    assert event.confidence == 0.875 and event.note == "ears" and event.supersedes is None
    assert event.created_at.tzinfo == timezone.utc and before <= event.created_at <= after
    assert event.to_dict()["created_at"].endswith("+00:00")


def test_current_labels_come_from_the_latest_event_else_the_original(ledger: Ledger) -> None:
    first = ledger.record("pets", "a", "dog", expected_event_id=None, annotator="alice")
    ledger.record("pets", "a", "fox", expected_event_id=first.id, annotator="bob")
    ledger.record("pets", "b", "cat", expected_event_id=None, annotator="alice")
    ledger.record("pets", "zzz", "cat", expected_event_id=None, annotator="alice")
    ledger.record("other", "c", "cat", expected_event_id=None, annotator="alice")

    assert ledger.current_labels("pets", ORIGINAL) == {"a": "fox", "b": "cat", "c": "bird"}
    assert ledger.current_label("pets", "a", "cat") == "fox"
    assert ledger.current_label("pets", "c", "bird") == "bird"
    assert ledger.current_labels("empty", ORIGINAL) == ORIGINAL


def test_stale_edit_is_refused_and_shows_the_other_decision(ledger: Ledger) -> None:
    # Alice and Bob both opened example "a" with no correction; Bob saves first.
    bobs = ledger.record("pets", "a", "fox", expected_event_id=None, annotator="bob")

    with pytest.raises(StaleEditError) as refused:
        ledger.record("pets", "a", "dog", expected_event_id=None, annotator="alice")

    assert refused.value.latest == bobs
    assert "bob changed it to 'fox'" in str(refused.value)
    assert ledger.count("pets") == 1 and ledger.current_label("pets", "a", "cat") == "fox"
    # Alice decides to overwrite, knowingly.
    alices = ledger.record("pets", "a", "dog", expected_event_id=refused.value.latest.id,
                           annotator="alice")
    assert alices.previous_label == "fox"
    assert ledger.current_label("pets", "a", "cat") == "dog"


def test_expected_event_that_does_not_exist_is_stale(ledger: Ledger) -> None:
    with pytest.raises(StaleEditError) as refused:
        ledger.record("pets", "a", "dog", expected_event_id=41, annotator="alice")
    assert refused.value.latest is None
    assert ledger.count() == 0


def test_undo_walks_back_to_the_original_then_refuses(ledger: Ledger) -> None:
    cat_to_dog = ledger.record("pets", "a", "dog", expected_event_id=None, annotator="alice")
    dog_to_fox = ledger.record("pets", "a", "fox", expected_event_id=cat_to_dog.id, annotator="bob")

    first = ledger.undo("pets", "a", annotator="carol", expected_event_id=dog_to_fox.id)
    assert (first.action, first.previous_label, first.new_label, first.supersedes) == (
        "undo", "fox", "dog", dog_to_fox.id)
    assert ledger.current_label("pets", "a", "cat") == "dog"

    second = ledger.undo("pets", "a", annotator="carol", expected_event_id=first.id)
    assert (second.new_label, second.supersedes) == (None, cat_to_dog.id)
    assert ledger.current_label("pets", "a", "cat") == "cat"

    with pytest.raises(WorkbenchError, match="Nothing to undo .* already undone"):
        ledger.undo("pets", "a", annotator="carol", expected_event_id=second.id)
    assert ledger.count("pets") == 4


def test_undo_after_a_new_change_undoes_that_change_first(ledger: Ledger) -> None:
    e1 = ledger.record("pets", "a", "dog", expected_event_id=None, annotator="alice")
    e2 = ledger.record("pets", "a", "fox", expected_event_id=e1.id, annotator="alice")
    u1 = ledger.undo("pets", "a", annotator="alice", expected_event_id=e2.id)  # back to dog
    e4 = ledger.record("pets", "a", "owl", expected_event_id=u1.id, annotator="alice")

    u2 = ledger.undo("pets", "a", annotator="alice", expected_event_id=e4.id)
    u3 = ledger.undo("pets", "a", annotator="alice", expected_event_id=u2.id)

    assert (u2.supersedes, u2.new_label) == (e4.id, "dog")
    assert (u3.supersedes, u3.new_label) == (e1.id, None)
    assert ledger.current_label("pets", "a", "cat") == "cat"


def test_undo_of_nothing_and_stale_undo_are_refused(ledger: Ledger) -> None:
    with pytest.raises(WorkbenchError, match="Nothing to undo for example 'a': it has no corrections"):
        ledger.undo("pets", "a", annotator="alice", expected_event_id=None)
    event = ledger.record("pets", "a", "dog", expected_event_id=None, annotator="alice")
    with pytest.raises(StaleEditError):
        ledger.undo("pets", "a", annotator="bob", expected_event_id=None)
    assert ledger.history("pets") == [event]


def test_history_is_newest_first_and_filters(ledger: Ledger) -> None:
    a1 = ledger.record("pets", "a", "dog", expected_event_id=None, annotator="alice")
    b1 = ledger.record("pets", "b", "cat", expected_event_id=None, annotator="alice")
    a2 = ledger.record("pets", "a", "fox", expected_event_id=a1.id, annotator="bob")
    ledger.record("other", "a", "owl", expected_event_id=None, annotator="bob")

    assert [e.id for e in ledger.history("pets")] == [a2.id, b1.id, a1.id]
    assert [e.id for e in ledger.history("pets", "a")] == [a2.id, a1.id]
    assert [e.id for e in ledger.history("pets", limit=2)] == [a2.id, b1.id]
    assert ledger.history("pets", "c") == []


def test_ambiguous_flags_without_changing_the_label(ledger: Ledger) -> None:
    a1 = ledger.record("pets", "a", "dog", expected_event_id=None, annotator="alice")
    flag_a = ledger.record("pets", "a", "dog", expected_event_id=a1.id, annotator="bob",
                           action="ambiguous", note="could be a fox")
    flag_b = ledger.flag_ambiguous("pets", "b", expected_event_id=None, annotator="bob")

    assert (flag_a.previous_label, flag_a.new_label) == ("dog", "dog")
    assert flag_b.new_label is None  # still the original label
    assert ledger.flags("pets") == {"a": "could be a fox", "b": "ambiguous"}
    assert ledger.current_labels("pets", ORIGINAL) == {"a": "dog", "b": "dog", "c": "bird"}

    ledger.record("pets", "a", "fox", expected_event_id=flag_a.id, annotator="alice")
    ledger.undo("pets", "b", annotator="bob", expected_event_id=flag_b.id)
    assert ledger.flags("pets") == {}
    assert ledger.current_labels("pets", ORIGINAL) == {"a": "fox", "b": "dog", "c": "bird"}


def test_ambiguous_flag_cannot_smuggle_in_a_new_label(ledger: Ledger) -> None:
    a1 = ledger.record("pets", "a", "dog", expected_event_id=None, annotator="alice")
    with pytest.raises(WorkbenchError, match="keeps its label 'dog'"):
        ledger.record("pets", "a", "fox", expected_event_id=a1.id, annotator="bob",
                      action="ambiguous")
    assert ledger.count() == 1


@pytest.mark.parametrize("statement", ["UPDATE label_events SET new_label = 'x'",
                                       "DELETE FROM label_events"])
def test_the_database_refuses_to_rewrite_history(ledger: Ledger, statement: str) -> None:
    event = ledger.record("pets", "a", "dog", expected_event_id=None, annotator="alice")
    with pytest.raises(exc.DBAPIError, match="append-only"):
        with ledger.engine.begin() as conn:
            conn.execute(text(statement))
    assert ledger.history("pets") == [event]


@pytest.mark.parametrize("kwargs, message", [
    (dict(new_label=""), "new label is empty"),
    (dict(annotator=" "), "annotator name is empty"),
    (dict(new_label="x" * 201), "longer than 200"),
    (dict(confidence=float("nan")), "finite"),
    (dict(action="undo"), "Unknown action"),
    (dict(note="n" * 2001), "note is longer"),
])
def test_bad_values_are_refused_before_writing(ledger: Ledger, kwargs: dict, message: str) -> None:
    args = dict(new_label="dog", expected_event_id=None, annotator="alice") | kwargs
    with pytest.raises(WorkbenchError, match=message):
        ledger.record("pets", "a", **args)
    assert ledger.count() == 0


def test_create_all_is_idempotent(ledger: Ledger, db_url: str) -> None:
    event = ledger.record("pets", "a", "dog", expected_event_id=None, annotator="alice")
    ledger.create_all()
    Ledger(db_url).create_all()
    assert ledger.history("pets") == [event]


def test_default_database_is_a_wal_sqlite_file_in_the_workspace(workspace, monkeypatch, request) -> None:
    monkeypatch.delenv("WORKBENCH_DATABASE_URL", raising=False)
    ledger = Ledger()
    request.addfinalizer(lambda: dispose_engine(ledger.url))
    ledger.record("pets", "a", "dog", expected_event_id=None, annotator="alice")

    assert ledger.url == f"sqlite:///{workspace / 'labels.sqlite'}"
    assert (workspace / "labels.sqlite").is_file()
    with ledger.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_database_url_setting_wins(tmp_path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.sqlite'}"
    monkeypatch.setenv("WORKBENCH_DATABASE_URL", url)
    assert Ledger(create=False).url == url
