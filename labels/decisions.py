"""A reviewer's decision on one queued example, written to the ledger.

"Keep label" is recorded too (a "set" to the label the example already has): the example
then counts as reviewed and leaves the queue, and the ledger shows who confirmed it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from foundation.access import Identity
from foundation.errors import WorkbenchError
from labels.ledger import Ledger
from labels.schema import AMBIGUOUS, SET, LabelEvent

KEEP, TAKE_MODEL, CHOOSE, FLAG = "keep", "model", "choose", "ambiguous"
KINDS = (KEEP, TAKE_MODEL, CHOOSE, FLAG)


@dataclass(frozen=True)
class Decision:
    kind: str  # one of KINDS
    label: str | None = None  # the chosen class, for CHOOSE

    def target_label(self, row: Mapping[str, Any]) -> str | None:
        """The label this decision gives the example (None for a flag, which keeps it)."""
        if self.kind == KEEP:
            return str(row["current_label"])
        if self.kind == TAKE_MODEL:
            return str(row["predicted_label"])
        if self.kind == CHOOSE:
            return self.label
        if self.kind == FLAG:
            return None
        raise WorkbenchError(f"unknown decision {self.kind!r}; choose one of {', '.join(KINDS)}.")

    def describe(self, row: Mapping[str, Any]) -> str:
        if self.kind == FLAG:
            return f"{row['example_id']} flagged as ambiguous"
        if self.kind == KEEP:
            return f"{row['example_id']} keeps '{row['current_label']}'"
        return f"{row['example_id']} changed from '{row['current_label']}' to '{self.target_label(row)}'"


def apply_decision(
    ledger: Ledger,
    dataset: str,
    row: Mapping[str, Any],
    decision: Decision,
    *,
    classes: Sequence[str],
    annotator: str,
    expected_event_id: int | None,
    model_name: str | None = None,
    model_version: str | None = None,
    note: str | None = None,
    actor: Identity | None = None,
) -> LabelEvent:
    """Record `decision` for the queue row `row` (needs example_id, current_label,
    predicted_label, confidence). Raises StaleEditError if the example changed since
    `expected_event_id` was read, WorkbenchError for a label that is not a class."""
    label = decision.target_label(row)
    if decision.kind != FLAG and label not in classes:
        raise WorkbenchError(f"'{label}' is not a class of {dataset}; choose one of {', '.join(classes)}.")
    return ledger.record(
        dataset, str(row["example_id"]), label,
        expected_event_id=expected_event_id, annotator=annotator,
        model_name=model_name, model_version=model_version,
        predicted_label=str(row["predicted_label"]), confidence=float(row["confidence"]),
        note=note, action=AMBIGUOUS if decision.kind == FLAG else SET, actor=actor,
    )
