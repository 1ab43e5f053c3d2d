"""The append-only `label_events` table and the `LabelEvent` record read from it.

Every correction is a new row; nothing is ever updated or deleted (the database refuses it
with a trigger). A label is a class *name*. `None` in `previous_label` / `new_label` means
"the dataset's original label", which the ledger does not store: the caller supplies it.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from sqlalchemy import (
    DDL,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    event,
)
from sqlalchemy.types import TypeDecorator

# Actions a row can record. "ambiguous" flags an example without changing its label.
SET, UNDO, AMBIGUOUS, IMPORT = "set", "undo", "ambiguous", "import"
ACTIONS = (SET, UNDO, AMBIGUOUS, IMPORT)

MAX_NAME = 200  # dataset, example id, label, annotator, model name/version
MAX_NOTE = 2000


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone, so we add it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("label_events.created_at needs a timezone-aware datetime")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


metadata = MetaData()

label_events = Table(
    "label_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dataset", String(MAX_NAME), nullable=False),
    Column("example_id", String(MAX_NAME), nullable=False),
    Column("previous_label", String(MAX_NAME), nullable=True),
    Column("new_label", String(MAX_NAME), nullable=True),
    Column("action", String(16), nullable=False),
    Column("annotator", String(MAX_NAME), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("model_name", String(MAX_NAME), nullable=True),
    Column("model_version", String(MAX_NAME), nullable=True),
    Column("predicted_label", String(MAX_NAME), nullable=True),
    Column("confidence", Float, nullable=True),
    Column("note", Text, nullable=True),
    Column("supersedes", Integer, nullable=True),
    # Who acted (issue 15): the identity provider's subject and e-mail (the local operator's
    # "local:<name>" without sign-in) and the role they held. Added to older ledgers by
    # `missing_columns` + ADD COLUMN; their older rows read None here.
    Column("actor_subject", String(MAX_NAME), nullable=True),
    Column("actor_email", String(MAX_NAME), nullable=True),
    Column("actor_role", String(16), nullable=True),
    # Ids are never reused, even by SQLite after a crash: "latest by id" stays meaningful.
    sqlite_autoincrement=True,
)
# Serves "latest event per example" and per-example history without a table scan.
Index("ix_label_events_dataset_example_id", label_events.c.dataset, label_events.c.example_id,
      label_events.c.id)

def append_only_guards(table: Table) -> tuple[list[DDL], list[DDL]]:
    """(SQLite, PostgreSQL) triggers that refuse UPDATE and DELETE on `table`, attached to its creation.

    The database itself enforces append-only, so no future code path can rewrite history.
    """
    name = table.name
    sqlite = [
        DDL(f"CREATE TRIGGER IF NOT EXISTS {name}_no_{verb.lower()} BEFORE {verb} ON {name} "
            f"BEGIN SELECT RAISE(ABORT, '{name} is append-only'); END")
        for verb in ("UPDATE", "DELETE")
    ]
    postgres = [
        DDL(f"CREATE OR REPLACE FUNCTION {name}_append_only() RETURNS trigger AS $$ "
            f"BEGIN RAISE EXCEPTION '{name} is append-only'; END $$ LANGUAGE plpgsql"),
        DDL(f"CREATE TRIGGER {name}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
            f"ON {name} FOR EACH STATEMENT EXECUTE FUNCTION {name}_append_only()"),
    ]
    for ddl in sqlite:
        event.listen(table, "after_create", ddl.execute_if(dialect="sqlite"))
    for ddl in postgres:
        event.listen(table, "after_create", ddl.execute_if(dialect="postgresql"))
    return sqlite, postgres


_SQLITE_GUARDS, _POSTGRES_GUARDS = append_only_guards(label_events)


@dataclass(frozen=True)
class LabelEvent:
    """One row of the ledger. `new_label=None` means "back to the original label"."""

    id: int
    dataset: str
    example_id: str
    previous_label: str | None
    new_label: str | None
    action: str
    annotator: str
    created_at: datetime
    model_name: str | None = None
    model_version: str | None = None
    predicted_label: str | None = None
    confidence: float | None = None
    note: str | None = None
    supersedes: int | None = None
    actor_subject: str | None = None
    actor_email: str | None = None
    actor_role: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "LabelEvent":
        return cls(**{name: row[name] for name in FIELDS})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values; the time as ISO 8601 with its UTC offset."""
        values = asdict(self)
        values["created_at"] = self.created_at.isoformat()
        return values

    def describe(self) -> str:
        """A sentence for the UI, e.g. "alice changed it to 'cat' at 10:02 UTC on 2024-05-01"."""
        when = f"at {self.created_at:%H:%M} UTC on {self.created_at:%Y-%m-%d}"
        target = "the original label" if self.new_label is None else f"'{self.new_label}'"
        if self.action == UNDO:
            what = f"undid a change, restoring {target}"
        elif self.action == AMBIGUOUS:
            what = "flagged it as ambiguous"
        else:
            what = f"changed it to {target}"
        return f"{self.who} {what} {when}"

    @property
    def who(self) -> str:
        """The annotator, with the signed-in e-mail where the event records one that differs from the
        name (events before issue 15, and the local operator's, show the name alone)."""
        if self.actor_email and self.actor_email != self.annotator:
            return f"{self.annotator} ({self.actor_email})"
        return self.annotator


FIELDS = tuple(column.name for column in label_events.columns)
# Columns added after the first release, in order: a ledger created before them gets them added.
ADDED_COLUMNS = ("actor_subject", "actor_email", "actor_role")


def add_column_ddl(name: str, dialect: Any) -> str:
    """`ALTER TABLE ... ADD COLUMN` for one of ADDED_COLUMNS: nullable, no default, so no existing
    row is rewritten (and SQLite's append-only triggers, which watch UPDATE and DELETE, do not fire)."""
    column = label_events.c[name]
    return f"ALTER TABLE label_events ADD COLUMN {name} {column.type.compile(dialect=dialect)}"


# --- reason marks (issue 17) ------------------------------------------------------------------
# "Right for the right reasons": a person marks where, in an example, the model should not look
# ("not_reason") or where the evidence is ("reason"). A separate append-only table, so label
# events, their queries and their exports are untouched; a ledger made before it gets the table
# from `metadata.create_all` on open. Boxes and words are JSON arrays (portable across SQLite and
# PostgreSQL, read back without pickle); labels.reasons validates and decodes them.
MARK, UNDO_MARK, IMPORT_MARK = "mark", "undo", "import"
REASON_ACTIONS = (MARK, UNDO_MARK, IMPORT_MARK)

reason_events = Table(
    "reason_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dataset", String(MAX_NAME), nullable=False),
    Column("example_id", String(MAX_NAME), nullable=False),
    Column("action", String(16), nullable=False),
    Column("kind", String(16), nullable=True),  # None on an undo
    Column("boxes", Text, nullable=False),  # JSON [[top, left, bottom, right], ...]
    Column("words", Text, nullable=False),  # JSON [index, ...] into text.split()
    Column("annotator", String(MAX_NAME), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("note", Text, nullable=True),
    Column("supersedes", Integer, nullable=True),  # an undo names the mark it removes
    Column("actor_subject", String(MAX_NAME), nullable=True),
    Column("actor_email", String(MAX_NAME), nullable=True),
    Column("actor_role", String(16), nullable=True),
    sqlite_autoincrement=True,
)
Index("ix_reason_events_dataset_example_id", reason_events.c.dataset, reason_events.c.example_id,
      reason_events.c.id)

_REASON_SQLITE_GUARDS, _REASON_POSTGRES_GUARDS = append_only_guards(reason_events)


@dataclass(frozen=True)
class ReasonEvent:
    """One row of `reason_events`; `boxes` and `words` are decoded tuples."""

    id: int
    dataset: str
    example_id: str
    action: str
    kind: str | None
    boxes: tuple[tuple[int, int, int, int], ...]
    words: tuple[int, ...]
    annotator: str
    created_at: datetime
    note: str | None = None
    supersedes: int | None = None
    actor_subject: str | None = None
    actor_email: str | None = None
    actor_role: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "ReasonEvent":
        values = {name: row[name] for name in REASON_FIELDS}
        values["boxes"] = tuple(tuple(int(v) for v in box) for box in json.loads(values["boxes"] or "[]"))
        values["words"] = tuple(int(v) for v in json.loads(values["words"] or "[]"))
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values: boxes and words as lists, the time as ISO 8601 with its UTC offset."""
        values = asdict(self)
        values["boxes"] = [list(box) for box in self.boxes]
        values["words"] = list(self.words)
        values["created_at"] = self.created_at.isoformat()
        return values

    def describe(self) -> str:
        """A sentence for the UI, e.g. "alice marked 1 box as not a reason at 10:02 UTC on 2024-05-01"."""
        when = f"at {self.created_at:%H:%M} UTC on {self.created_at:%Y-%m-%d}"
        if self.action == UNDO_MARK:
            return f"{self.who} removed a reason mark {when}"
        parts = []
        if self.boxes:
            parts.append(f"{len(self.boxes)} box{'es' if len(self.boxes) != 1 else ''}")
        if self.words:
            parts.append(f"{len(self.words)} word{'s' if len(self.words) != 1 else ''}")
        what = " and ".join(parts) or "nothing"
        verb = "imported" if self.action == IMPORT_MARK else "marked"
        as_what = "the reason" if self.kind == "reason" else "not a reason"
        return f"{self.who} {verb} {what} as {as_what} {when}"

    @property
    def who(self) -> str:
        if self.actor_email and self.actor_email != self.annotator:
            return f"{self.annotator} ({self.actor_email})"
        return self.annotator


REASON_FIELDS = tuple(column.name for column in reason_events.columns)
