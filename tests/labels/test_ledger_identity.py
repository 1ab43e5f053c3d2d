"""Issue 15: the ledger refuses label writes without the annotator role and records who acted
(subject, e-mail, role); a ledger made before these columns existed is migrated without losing events."""
from __future__ import annotations

import pytest
from sqlalchemy import Column, MetaData, Table, create_engine, insert, text

from foundation import access
from foundation.access import AccessDenied, Identity
from labels import Ledger, schema
from labels.engine import dispose_engine, write_transaction

ALICE = Identity(subject="oidc|alice", email="alice@example.org", name="Alice", role="annotator", signed_in=True)
VIC = Identity(subject="oidc|vic", email="vic@example.org", name="Vic", role="viewer", signed_in=True)


def test_a_viewer_is_refused_every_label_write_and_nothing_is_stored(ledger: Ledger) -> None:
    message = "vic@example.org is a viewer; correcting labels needs the annotator role"
    with pytest.raises(AccessDenied, match=message):
        ledger.record("pets", "a", "dog", expected_event_id=None, annotator="Vic", actor=VIC)
    with pytest.raises(AccessDenied, match=message):
        ledger.flag_ambiguous("pets", "a", expected_event_id=None, annotator="Vic", actor=VIC)
    ledger.record("pets", "a", "dog", expected_event_id=None, annotator="Alice", actor=ALICE)
    latest = ledger.latest_event("pets", "a")
    with pytest.raises(AccessDenied, match=message):
        ledger.undo("pets", "a", annotator="Vic", expected_event_id=latest.id, actor=VIC)
    with pytest.raises(AccessDenied, match=message):
        ledger.import_corrections_csv("pets", b"example_id,new_label\nb,cat\n", classes=["cat", "dog"],
                                      known_ids=["a", "b"], annotator="Vic", actor=VIC)
    assert ledger.count("pets") == 1


def test_every_event_records_who_acted_and_with_which_role(ledger: Ledger, monkeypatch) -> None:
    monkeypatch.delenv(access.ROLES_ENV, raising=False)
    monkeypatch.setenv(access.OPERATOR_ENV, "olga")
    first = ledger.record("pets", "a", "dog", expected_event_id=None, annotator="Alice", actor=ALICE)
    undo = ledger.undo("pets", "a", annotator="Alice", expected_event_id=first.id, actor=ALICE)
    local = ledger.record("pets", "b", "cat", expected_event_id=None, annotator="olga")  # the CLI: no actor given
    ledger.import_corrections_csv("pets", b"example_id,new_label\nc,cat\n", classes=["cat", "dog"],
                                  known_ids=["a", "b", "c"], annotator="Alice", actor=ALICE)
    stored = {event.id: event for event in ledger.history("pets")}
    assert len(stored) == 4
    for event in (stored[first.id], stored[undo.id]):
        assert (event.actor_subject, event.actor_email, event.actor_role) == ("oidc|alice", "alice@example.org", "annotator")
    assert (stored[local.id].actor_subject, stored[local.id].actor_email, stored[local.id].actor_role) == (
        "local:olga", None, "admin")
    imported = max(stored)
    assert stored[imported].action == "import" and stored[imported].actor_email == "alice@example.org"
    assert "Alice (alice@example.org) changed it to 'dog'" in stored[first.id].describe()
    history_csv = ledger.export_history("pets", "csv").decode()
    assert "actor_email" in history_csv.splitlines()[0] and "oidc|alice" in history_csv
    labels_json = ledger.export_labels("pets", {"a": "cat", "b": "dog"}, "json").decode()
    assert '"last_actor_role": "admin"' in labels_json


def _old_table(meta: MetaData) -> Table:
    """label_events as the first release created it: without the actor columns."""
    return Table("label_events", meta, *[Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
                                         for c in schema.label_events.columns if c.name not in schema.ADDED_COLUMNS],
                 sqlite_autoincrement=True)


def test_an_older_ledger_gains_the_columns_and_keeps_every_event(db_url: str) -> None:
    from datetime import datetime, timezone

    engine = create_engine(db_url)
    old = _old_table(MetaData())
    guards = schema._SQLITE_GUARDS if engine.dialect.name == "sqlite" else schema._POSTGRES_GUARDS
    with engine.begin() as conn:
        old.create(conn)
        for ddl in guards:
            conn.execute(ddl)
        conn.execute(insert(old), [
            {"dataset": "pets", "example_id": eid, "previous_label": None, "new_label": "dog", "action": "set",
             "annotator": "old-timer", "created_at": datetime(2025, 1, 1, tzinfo=timezone.utc)}
            for eid in ("a", "b")])
    engine.dispose()
    Ledger._created.discard(db_url)

    ledger = Ledger(db_url)  # migrates
    Ledger(db_url).create_all()  # a second start finds nothing to add
    before = ledger.history("pets")
    assert [(e.example_id, e.annotator, e.actor_email) for e in before] == [("b", "old-timer", None),
                                                                             ("a", "old-timer", None)]
    event = ledger.record("pets", "a", "cat", expected_event_id=before[1].id, annotator="Alice", actor=ALICE)
    assert ledger.latest_event("pets", "a").actor_email == "alice@example.org" and event.previous_label == "dog"
    assert ledger.count("pets") == 3
    with pytest.raises(Exception, match="append-only"):  # the guards survived the migration
        with write_transaction(ledger.engine, "pets") as conn:
            conn.execute(text("UPDATE label_events SET annotator = 'x'"))
    dispose_engine(db_url)
