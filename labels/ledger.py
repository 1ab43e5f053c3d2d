"""The label ledger: an append-only log of human label corrections.

Semantics, in one place:

* Current label. The latest event (highest id) for (dataset, example_id) gives the label;
  its `new_label=None` means "the original label", which the caller supplies. With no event,
  the original label stands.
* Optimistic concurrency. Every write names the latest event the user saw
  (`expected_event_id`, None = "I saw no correction"). If someone else wrote since, the
  write is refused with `StaleEditError` carrying their event; retrying with
  `expected_event_id=err.latest.id` overwrites deliberately. Check and append happen in one
  transaction that excludes every other writer to the dataset, across threads and processes.
* Ambiguous. `action="ambiguous"` appends a flag event that keeps the label unchanged. The
  example counts as flagged while that event is its latest one; any later change or an undo
  of the flag clears it.
* Undo is a stack. It appends an "undo" event that restores the `previous_label` of the
  latest event that is neither an undo nor already undone (`supersedes` names it). Undoing
  again walks further back, down to the original label; with nothing left it raises.
  Undoing a flag removes the flag and keeps the label.
* Import appends every row of a valid file in one transaction; it overwrites regardless of
  what users saw (it is a bulk decision), and records `previous_label` per example.
* Reason marks (issue 17, labels/reasons.py) live in their own append-only table with the same
  rules: `mark_reason` names the example's latest *reason* event it saw, `undo_reason` removes
  the newest mark still in force, imports append in one transaction. They never touch labels.
"""
from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, func, insert, inspect, select, text

from foundation import access, config
from foundation.access import Identity
from foundation.errors import WorkbenchError
from labels import export, reasons
from labels.engine import get_engine, write_transaction
from labels.importer import ImportReport, parse_corrections, parse_reason_marks
from labels.schema import (
    ADDED_COLUMNS,
    AMBIGUOUS,
    IMPORT,
    IMPORT_MARK,
    MARK,
    MAX_NAME,
    MAX_NOTE,
    SET,
    UNDO,
    UNDO_MARK,
    LabelEvent,
    ReasonEvent,
    add_column_ddl,
    label_events,
    metadata,
    reason_events,
)

RECORDABLE_ACTIONS = (SET, AMBIGUOUS)
_t = label_events.c
_r = reason_events.c


class StaleEditError(WorkbenchError):
    """Someone changed the example after the user loaded it; `.latest` is their event."""

    def __init__(self, example_id: str, expected_event_id: int | None, latest: LabelEvent | None):
        self.example_id = example_id
        self.expected_event_id = expected_event_id
        self.latest = latest
        if latest is None:
            message = (f"Example '{example_id}' has no correction #{expected_event_id}; "
                       "reload it and try again.")
        else:
            message = (f"Since you opened '{example_id}', {latest.describe()}. "
                       "Keep theirs, or apply yours again to overwrite it.")
        super().__init__(message)

    def __reduce__(self) -> tuple:
        # Rebuild from the fields, so the error survives pickling to another process.
        return StaleEditError, (self.example_id, self.expected_event_id, self.latest)


class Ledger:
    """The ledger in the database at `url` (default: `foundation.config.database_url()`)."""

    _created: set[str] = set()

    def __init__(self, url: str | None = None, *, create: bool = True):
        self.url = url or config.database_url()
        self.engine = get_engine(self.url)
        if create and self.url not in Ledger._created:
            self.create_all()

    def create_all(self) -> None:
        """Create the table, index and append-only triggers if missing, and add the columns a ledger
        made by an older release lacks (safe to repeat; concurrent starters queue on the schema lock)."""
        with write_transaction(self.engine, "__schema__") as conn:
            metadata.create_all(conn, checkfirst=True)
            present = {column["name"] for column in inspect(conn).get_columns("label_events")}
            for name in ADDED_COLUMNS:
                if name not in present:
                    conn.execute(text(add_column_ddl(name, conn.dialect)))
        Ledger._created.add(self.url)

    # -- reading -----------------------------------------------------------------------

    def latest_event(self, dataset: str, example_id: str) -> LabelEvent | None:
        """The event a user should pass as `expected_event_id` (its `.id`) when editing."""
        with self.engine.connect() as conn:
            return _latest(conn, dataset, example_id)

    def latest_events(self, dataset: str) -> dict[str, LabelEvent]:
        """Latest event per corrected example of `dataset`, in one query."""
        with self.engine.connect() as conn:
            return _latest_in(conn, dataset)

    def current_label(self, dataset: str, example_id: str, original_label: str) -> str:
        return _label_after(self.latest_event(dataset, example_id), original_label)

    def current_labels(self, dataset: str, original: Mapping[str, str]) -> dict[str, str]:
        """Current label of every example in `original` (events for other ids are ignored)."""
        latest = self.latest_events(dataset)
        return {eid: _label_after(latest.get(eid), label) for eid, label in original.items()}

    def flags(self, dataset: str) -> dict[str, str]:
        """Examples flagged ambiguous -> the flag's note (or "ambiguous" when it had none)."""
        return {eid: event.note or "ambiguous"
                for eid, event in self.latest_events(dataset).items() if event.action == AMBIGUOUS}

    def history(self, dataset: str, example_id: str | None = None,
                limit: int | None = None) -> list[LabelEvent]:
        """Events newest first, for one example or the whole dataset."""
        query = select(label_events).where(_t.dataset == dataset).order_by(_t.id.desc())
        if example_id is not None:
            query = query.where(_t.example_id == example_id)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [LabelEvent.from_row(row._mapping) for row in conn.execute(query)]

    def count(self, dataset: str | None = None) -> int:
        query = select(func.count()).select_from(label_events)
        if dataset is not None:
            query = query.where(_t.dataset == dataset)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one()

    # -- writing -----------------------------------------------------------------------

    def record(
        self,
        dataset: str,
        example_id: str,
        new_label: str | None,
        *,
        expected_event_id: int | None,
        annotator: str,
        model_name: str | None = None,
        model_version: str | None = None,
        predicted_label: str | None = None,
        confidence: float | None = None,
        note: str | None = None,
        action: str = SET,
        actor: Identity | None = None,
    ) -> LabelEvent:
        """Append a correction ("set") or an ambiguity flag ("ambiguous"); see the module doc.

        For "ambiguous", `new_label` may be None or the current label; the stored label is
        the unchanged current one. Raises `StaleEditError` if `expected_event_id` is not
        the example's latest event, `AccessDenied` unless `actor` (default: the local operator)
        is at least an annotator.
        """
        who = access.acting(actor, access.LABEL)
        if action not in RECORDABLE_ACTIONS:
            raise WorkbenchError(f"Unknown action {action!r}: record() takes 'set' or 'ambiguous'; "
                                 "use undo() or import_corrections_csv() for the others.")
        _check_ids(dataset, example_id, annotator)
        if action == SET:
            _check_name(new_label, "The new label")
        elif new_label is not None:
            _check_name(new_label, "The label")
        values = {
            "model_name": _optional_name(model_name, "The model name"),
            "model_version": _optional_name(model_version, "The model version"),
            "predicted_label": _optional_name(predicted_label, "The predicted label"),
            "confidence": _check_confidence(confidence),
            "note": _check_note(note),
        }
        with write_transaction(self.engine, dataset) as conn:
            latest = _latest(conn, dataset, example_id)
            _check_fresh(example_id, expected_event_id, latest)
            current = latest.new_label if latest else None
            if action == AMBIGUOUS:
                if new_label is not None and current is not None and new_label != current:
                    raise WorkbenchError(
                        f"Flagging '{example_id}' as ambiguous keeps its label '{current}'; "
                        f"to change it to '{new_label}', record a 'set' instead.")
                new_label = current
            return _append(conn, dataset=dataset, example_id=example_id, previous_label=current,
                           new_label=new_label, action=action, annotator=annotator, **values, **_actor(who))

    def flag_ambiguous(self, dataset: str, example_id: str, *, expected_event_id: int | None,
                       annotator: str, note: str | None = None, actor: Identity | None = None) -> LabelEvent:
        """Mark an example ambiguous without changing its label."""
        return self.record(dataset, example_id, None, expected_event_id=expected_event_id,
                           annotator=annotator, note=note, action=AMBIGUOUS, actor=actor)

    def undo(self, dataset: str, example_id: str, *, annotator: str,
             expected_event_id: int | None, actor: Identity | None = None) -> LabelEvent:
        """Append an event restoring the label from before the latest change not yet undone."""
        who = access.acting(actor, access.LABEL)
        _check_ids(dataset, example_id, annotator)
        with write_transaction(self.engine, dataset) as conn:
            events = _example_events(conn, dataset, example_id)
            latest = events[-1] if events else None
            _check_fresh(example_id, expected_event_id, latest)
            target = _undo_target(events)
            if target is None:
                detail = "it has no corrections" if not events else "every correction is already undone"
                raise WorkbenchError(f"Nothing to undo for example '{example_id}': {detail}.")
            return _append(conn, dataset=dataset, example_id=example_id,
                           previous_label=latest.new_label, new_label=target.previous_label,
                           action=UNDO, annotator=annotator, supersedes=target.id, **_actor(who))

    def import_corrections_csv(self, dataset: str, data: bytes, *, classes: Sequence[str],
                               known_ids: Collection[str], annotator: str,
                               actor: Identity | None = None) -> ImportReport:
        """Validate the whole file; append every row in one transaction, or nothing at all."""
        who = access.acting(actor, access.LABEL)
        _check_name(dataset, "The dataset name")
        _check_name(annotator, "The annotator name")
        rows, problems = parse_corrections(data, classes=classes, known_ids=known_ids)
        if problems:
            return ImportReport(imported=0, problems=tuple(problems))
        now = _now()
        with write_transaction(self.engine, dataset) as conn:
            current = {eid: event.new_label for eid, event in _latest_in(conn, dataset).items()}
            conn.execute(insert(label_events), [
                _row(dataset=dataset, example_id=row.example_id,
                     previous_label=current.get(row.example_id), new_label=row.new_label,
                     action=IMPORT, annotator=annotator, note=row.note, created_at=now, **_actor(who))
                for row in rows
            ])
        return ImportReport(imported=len(rows))

    # -- reason marks (issue 17) ---------------------------------------------------------
    # Their own append-only table and their own event sequence per example: a mark never changes
    # the label, and a label decision never makes a mark stale (nor the other way round).

    def latest_reason_event(self, dataset: str, example_id: str) -> ReasonEvent | None:
        """The event to pass as `expected_event_id` (its `.id`) when marking or unmarking the example."""
        with self.engine.connect() as conn:
            return _latest_reason(conn, dataset, example_id)

    def reason_history(self, dataset: str, example_id: str | None = None) -> list[ReasonEvent]:
        """Reason events newest first (marks, undos, imports), for one example or the whole dataset."""
        query = select(reason_events).where(_r.dataset == dataset).order_by(_r.id.desc())
        if example_id is not None:
            query = query.where(_r.example_id == example_id)
        with self.engine.connect() as conn:
            return [ReasonEvent.from_row(row._mapping) for row in conn.execute(query)]

    def mark_reason(
        self,
        dataset: str,
        example_id: str,
        kind: str,
        *,
        boxes: Sequence[Sequence[int]] = (),
        words: Sequence[int] = (),
        annotator: str,
        expected_event_id: int | None,
        note: str | None = None,
        actor: Identity | None = None,
    ) -> ReasonEvent:
        """Append a reason mark: `kind` "not_reason" or "reason", image `boxes` (top, left, bottom, right;
        model-input pixels, end exclusive) and/or text `words` (indices into text.split()).

        `expected_event_id` is the example's latest reason event the user saw (None: they saw none);
        raises `StaleEditError` if someone marked or unmarked it since, `AccessDenied` unless `actor`
        (default: the local operator) is at least an annotator, `WorkbenchError` for bad input."""
        who = access.acting(actor, access.LABEL)
        _check_ids(dataset, example_id, annotator)
        kind, boxes, words = reasons.check_mark(kind, boxes, words)
        note = _check_note(note)
        with write_transaction(self.engine, dataset) as conn:
            _check_fresh(example_id, expected_event_id, _latest_reason(conn, dataset, example_id))
            return _append_reason(conn, dataset=dataset, example_id=example_id, action=MARK, kind=kind,
                                  boxes=boxes, words=words, annotator=annotator, note=note, **_actor(who))

    def undo_reason(self, dataset: str, example_id: str, *, annotator: str,
                    expected_event_id: int | None, actor: Identity | None = None) -> ReasonEvent:
        """Remove the example's newest mark still in force (appends an undo naming it); again for the one before."""
        who = access.acting(actor, access.LABEL)
        _check_ids(dataset, example_id, annotator)
        with write_transaction(self.engine, dataset) as conn:
            events = _reason_events_of(conn, dataset, example_id)
            _check_fresh(example_id, expected_event_id, events[-1] if events else None)
            target = reasons.undo_target(events)
            if target is None:
                detail = "it has no reason marks" if not events else "every mark is already removed"
                raise WorkbenchError(f"No reason mark to undo on example '{example_id}': {detail}.")
            return _append_reason(conn, dataset=dataset, example_id=example_id, action=UNDO_MARK, kind=None,
                                  boxes=(), words=(), annotator=annotator, supersedes=target.id, **_actor(who))

    def import_reason_marks(self, dataset: str, data: bytes, *, known_ids: Collection[str], annotator: str,
                            actor: Identity | None = None) -> ImportReport:
        """Validate a marks file (CSV or JSON, as `export_reason_marks` writes) whole; append its marks
        in one transaction, or nothing. Like a corrections import it is a bulk decision: it adds to the
        marks in force without checking what anyone saw. A mark identical to one in force (same
        example, kind, boxes and words), or repeated within the file, is skipped and counted, so
        importing the same file twice changes nothing."""
        who = access.acting(actor, access.LABEL)
        _check_name(dataset, "The dataset name")
        _check_name(annotator, "The annotator name")
        rows, problems = parse_reason_marks(data, known_ids=known_ids)
        if problems:
            return ImportReport(imported=0, problems=tuple(problems), noun="reason mark(s)")
        now = _now()
        with write_transaction(self.engine, dataset) as conn:
            # Read inside the transaction: the marks in force are those the new rows are compared with.
            events = [ReasonEvent.from_row(r._mapping)
                      for r in conn.execute(select(reason_events).where(_r.dataset == dataset).order_by(_r.id))]
            seen = {_mark_signature(mark.example_id, mark.kind, mark.boxes, mark.words)
                    for marks in reasons.marks_in_force(events).values() for mark in marks}
            new_rows = []
            for row in rows:
                signature = _mark_signature(row.example_id, row.kind, row.boxes, row.words)
                if signature not in seen:
                    seen.add(signature)
                    new_rows.append(row)
            if new_rows:
                conn.execute(insert(reason_events), [
                    _reason_row(dataset=dataset, example_id=row.example_id, action=IMPORT_MARK, kind=row.kind,
                                boxes=row.boxes, words=row.words, annotator=annotator, note=row.note,
                                created_at=now, **_actor(who))
                    for row in new_rows
                ])
        return ImportReport(imported=len(new_rows), noun="reason mark(s)", skipped=len(rows) - len(new_rows))

    def export_reason_history(self, dataset: str, fmt: str) -> bytes:
        """Every reason event of `dataset` (marks, undos, imports), oldest first."""
        rows = export.reason_history_rows(reversed(self.reason_history(dataset)), fmt)
        return export.serialise(rows, export.REASON_HISTORY_COLUMNS, fmt)

    def export_reason_marks(self, dataset: str, fmt: str) -> bytes:
        """The marks in force, one row each, oldest first: the file `import_reason_marks` reads back."""
        events = self.reason_history(dataset)[::-1]
        in_force = {mark.event_id for marks in reasons.marks_in_force(events).values() for mark in marks}
        rows = export.reason_mark_rows((event for event in events if event.id in in_force), fmt)
        return export.serialise(rows, export.REASON_MARK_COLUMNS, fmt)

    # -- exports -----------------------------------------------------------------------

    def export_history(self, dataset: str, fmt: str) -> bytes:
        """Every event of `dataset`, oldest first (the log read top to bottom)."""
        rows = export.history_rows(reversed(self.history(dataset)))
        return export.serialise(rows, export.HISTORY_COLUMNS, fmt)

    def export_labels(self, dataset: str, original: Mapping[str, str], fmt: str) -> bytes:
        """One row per example of `original`: original and current label, and the last change."""
        rows = export.label_rows(original, self.latest_events(dataset))
        return export.serialise(rows, export.LABEL_COLUMNS, fmt)


# -- helpers (module level so the transaction they run in is explicit) ------------------------

def _latest(conn: Connection, dataset: str, example_id: str) -> LabelEvent | None:
    query = (select(label_events).where(_t.dataset == dataset, _t.example_id == example_id)
             .order_by(_t.id.desc()).limit(1))
    row = conn.execute(query).first()
    return LabelEvent.from_row(row._mapping) if row else None


def _latest_in(conn: Connection, dataset: str) -> dict[str, LabelEvent]:
    newest = (select(func.max(_t.id).label("id")).where(_t.dataset == dataset)
              .group_by(_t.example_id).subquery())
    rows = conn.execute(select(label_events).join(newest, _t.id == newest.c.id))
    return {row.example_id: LabelEvent.from_row(row._mapping) for row in rows}


def _example_events(conn: Connection, dataset: str, example_id: str) -> list[LabelEvent]:
    query = (select(label_events).where(_t.dataset == dataset, _t.example_id == example_id)
             .order_by(_t.id))
    return [LabelEvent.from_row(row._mapping) for row in conn.execute(query)]


def _latest_reason(conn: Connection, dataset: str, example_id: str) -> ReasonEvent | None:
    query = (select(reason_events).where(_r.dataset == dataset, _r.example_id == example_id)
             .order_by(_r.id.desc()).limit(1))
    row = conn.execute(query).first()
    return ReasonEvent.from_row(row._mapping) if row else None


def _mark_signature(example_id: str, kind: str | None, boxes: Any, words: Any) -> tuple:
    """What makes two marks the same mark: example, kind, boxes and words (not who or when)."""
    return (example_id, kind, tuple(tuple(int(v) for v in box) for box in boxes), tuple(int(w) for w in words))


def _reason_events_of(conn: Connection, dataset: str, example_id: str) -> list[ReasonEvent]:
    query = (select(reason_events).where(_r.dataset == dataset, _r.example_id == example_id)
             .order_by(_r.id))
    return [ReasonEvent.from_row(row._mapping) for row in conn.execute(query)]


def _append_reason(conn: Connection, **values: Any) -> ReasonEvent:
    row = _reason_row(created_at=_now(), **values)
    event_id = conn.execute(insert(reason_events).values(row)).inserted_primary_key[0]
    return ReasonEvent.from_row({**row, "id": event_id})


def _reason_row(*, boxes: Sequence[Sequence[int]], words: Sequence[int], **values: Any) -> dict[str, Any]:
    defaults = dict(note=None, supersedes=None, actor_subject=None, actor_email=None, actor_role=None)
    return {**defaults, **values, "boxes": json.dumps([list(box) for box in boxes]), "words": json.dumps(list(words))}


def _undo_target(events: list[LabelEvent]) -> LabelEvent | None:
    undone = {event.supersedes for event in events if event.action == UNDO}
    for event in reversed(events):
        if event.action != UNDO and event.id not in undone:
            return event
    return None


def _label_after(event: LabelEvent | None, original_label: str) -> str:
    return original_label if event is None or event.new_label is None else event.new_label


def _check_fresh(example_id: str, expected_event_id: int | None, latest: LabelEvent | None) -> None:
    latest_id = latest.id if latest else None
    if latest_id != expected_event_id:
        raise StaleEditError(example_id, expected_event_id, latest)


def _append(conn: Connection, **values: Any) -> LabelEvent:
    row = _row(created_at=_now(), **values)
    event_id = conn.execute(insert(label_events).values(row)).inserted_primary_key[0]
    return LabelEvent(id=event_id, **row)


def _actor(who: Identity) -> dict[str, Any]:
    return {"actor_subject": who.subject[:MAX_NAME], "actor_email": (who.email or None) and who.email[:MAX_NAME],
            "actor_role": who.role}


def _row(**values: Any) -> dict[str, Any]:
    defaults = dict(model_name=None, model_version=None, predicted_label=None, confidence=None,
                    note=None, supersedes=None, actor_subject=None, actor_email=None, actor_role=None)
    return {**defaults, **values}


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _check_ids(dataset: str, example_id: str, annotator: str) -> None:
    _check_name(dataset, "The dataset name")
    _check_name(example_id, "The example id")
    _check_name(annotator, "The annotator name")


def _check_name(value: Any, what: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise WorkbenchError(f"{what} is empty; give a non-empty text value.")
    if len(value) > MAX_NAME:
        raise WorkbenchError(f"{what} is longer than {MAX_NAME} characters; shorten it.")


def _optional_name(value: str | None, what: str) -> str | None:
    if value is not None:
        _check_name(value, what)
    return value


def _check_note(note: str | None) -> str | None:
    if note is not None and len(note) > MAX_NOTE:
        raise WorkbenchError(f"The note is longer than {MAX_NOTE} characters; shorten it.")
    return note or None


def _check_confidence(confidence: float | None) -> float | None:
    if confidence is None:
        return None
    value = float(confidence)
    if not math.isfinite(value):
        raise WorkbenchError("The confidence must be a finite number.")
    return value
