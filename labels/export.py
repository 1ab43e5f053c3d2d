"""Ledger exports as CSV (spreadsheet-safe) or JSON bytes."""
from __future__ import annotations

import csv
import io
import json
from typing import Any, Iterable, Mapping, Sequence

from foundation.errors import WorkbenchError
from labels.csv_safety import neutralise_cell
from labels.schema import AMBIGUOUS, FIELDS, REASON_FIELDS, LabelEvent, ReasonEvent

FORMATS = ("csv", "json")
HISTORY_COLUMNS = FIELDS
LABEL_COLUMNS = (
    "example_id", "original_label", "current_label", "changed", "ambiguous",
    "last_event_id", "last_action", "last_annotator", "last_changed_at", "last_note",
    "last_actor_email", "last_actor_role",
)


def history_rows(events: Iterable[LabelEvent]) -> list[dict[str, Any]]:
    return [event.to_dict() for event in events]


def label_rows(original: Mapping[str, str], latest: Mapping[str, LabelEvent]) -> list[dict[str, Any]]:
    """One row per example of `original`, in its order, with what the ledger made of it."""
    rows = []
    for example_id, original_label in original.items():
        event = latest.get(example_id)
        current = original_label if event is None or event.new_label is None else event.new_label
        rows.append({
            "example_id": example_id,
            "original_label": original_label,
            "current_label": current,
            "changed": current != original_label,
            "ambiguous": event is not None and event.action == AMBIGUOUS,
            "last_event_id": event.id if event else None,
            "last_action": event.action if event else None,
            "last_annotator": event.annotator if event else None,
            "last_changed_at": event.created_at.isoformat() if event else None,
            "last_note": event.note if event else None,
            "last_actor_email": event.actor_email if event else None,
            "last_actor_role": event.actor_role if event else None,
        })
    return rows


def serialise(rows: list[dict[str, Any]], columns: Sequence[str], fmt: str) -> bytes:
    if fmt == "csv":
        return _to_csv(rows, columns)
    if fmt == "json":
        return json.dumps(rows, ensure_ascii=False, indent=1).encode("utf-8")
    raise WorkbenchError(f"Unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}.")


def _to_csv(rows: list[dict[str, Any]], columns: Sequence[str]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row[name]) for name in columns])
    return buffer.getvalue().encode("utf-8")


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return neutralise_cell(value)


# --- reason marks (issue 17) ------------------------------------------------------------------
# Every reason event (marks, undos, imports) oldest first, and the marks in force, one row each.
# The marks file is what `Ledger.import_reason_marks` reads back: boxes and words as JSON lists
# (in CSV a cell such as "[[0, 0, 4, 4]]", which no spreadsheet runs as a formula).
REASON_HISTORY_COLUMNS = REASON_FIELDS
REASON_MARK_COLUMNS = ("example_id", "kind", "boxes", "words", "note", "event_id", "annotator",
                       "created_at", "actor_email", "actor_role")


def reason_history_rows(events: Iterable[ReasonEvent], fmt: str) -> list[dict[str, Any]]:
    return [_reason_cells(event.to_dict(), fmt) for event in events]


def reason_mark_rows(events: Iterable[ReasonEvent], fmt: str) -> list[dict[str, Any]]:
    """One row per mark in force (`events` are those marks' own events, oldest first)."""
    rows = []
    for event in events:
        values = event.to_dict()
        rows.append(_reason_cells({
            "example_id": event.example_id, "kind": event.kind, "boxes": values["boxes"],
            "words": values["words"], "note": event.note, "event_id": event.id, "annotator": event.annotator,
            "created_at": values["created_at"], "actor_email": event.actor_email, "actor_role": event.actor_role,
        }, fmt))
    return rows


def _reason_cells(row: dict[str, Any], fmt: str) -> dict[str, Any]:
    # JSON keeps the lists; a CSV cell holds them as compact JSON text.
    if fmt == "csv":
        row = {**row, "boxes": json.dumps(row["boxes"]), "words": json.dumps(row["words"])}
    return row
