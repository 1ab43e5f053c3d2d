"""Reason marks (issue 17): where in an example the model should not look, or where the evidence is.

A person who agrees with a label but not with the model's reason marks regions of the example:

* ``"not_reason"``: the model should not rely on this (a watermark, a corner mark, a name);
* ``"reason"``: the evidence is here.

Images are marked with boxes ``(top, left, bottom, right)`` in the model-input pixel grid, end
exclusive (``image[top:bottom, left:right]``); texts with word indices into ``text.split()``.

Marks are append-only events in the ledger's ``reason_events`` table, written through
``Ledger.mark_reason`` / ``Ledger.undo_reason`` with the same guarantees as label decisions (the
annotator role, optimistic concurrency on the example's latest *reason* event, undo as a stack).
This module holds the public record, the input checks, and reading the marks in force:

    from labels import Ledger
    from labels.reasons import current_reason_marks, box_mask
    marks = current_reason_marks(Ledger(), "shapes-shortcut")      # example_id -> [ReasonMark]
    mask = box_mask(marks["img_7"][0].boxes, 32, 32)               # bool 32x32

No streamlit here: the pages draw and collect, this decides.
"""
from __future__ import annotations

import math
import operator
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from foundation.errors import WorkbenchError
from labels.schema import UNDO_MARK, ReasonEvent

if TYPE_CHECKING:  # the ledger imports this module for its checks
    from labels.ledger import Ledger

NOT_REASON, REASON = "not_reason", "reason"
KINDS = (NOT_REASON, REASON)
KIND_TITLES = {NOT_REASON: "not a reason", REASON: "the reason"}

# Bounds that keep one event small and a hostile import cheap: a mark is a person's few strokes.
MAX_BOXES = 64
MAX_WORDS = 2000
MAX_COORDINATE = 65_536  # larger than any model input the workbench accepts (~25 megapixels)
MAX_WORD_INDEX = 1_000_000


@dataclass(frozen=True)
class ReasonMark:
    """A mark in force on one example (an event not undone)."""

    dataset: str
    example_id: str
    kind: str  # "not_reason" (model should not rely on this) or "reason" (evidence is here)
    boxes: tuple[tuple[int, int, int, int], ...] = ()  # (top, left, bottom, right), input pixels, end exclusive
    words: tuple[int, ...] = ()  # indices into text.split() of the example's text
    event_id: int | None = None
    annotator: str | None = None

    @property
    def title(self) -> str:
        return KIND_TITLES.get(self.kind, self.kind)


# --- reading ----------------------------------------------------------------------------------


def current_reason_marks(ledger: "Ledger", dataset: str) -> dict[str, list[ReasonMark]]:
    """example_id -> the marks in force on it (after undos), oldest first; examples without any are absent."""
    return marks_in_force(reversed(ledger.reason_history(dataset)))


def marks_in_force(events: Iterable[ReasonEvent]) -> dict[str, list[ReasonMark]]:
    """Fold events (oldest first) into the marks not undone, per example, oldest first."""
    events = list(events)
    undone = {event.supersedes for event in events if event.action == UNDO_MARK}
    marks: dict[str, list[ReasonMark]] = {}
    for event in events:
        if event.action == UNDO_MARK or event.id in undone:
            continue
        marks.setdefault(event.example_id, []).append(to_mark(event))
    return marks


def to_mark(event: ReasonEvent) -> ReasonMark:
    return ReasonMark(dataset=event.dataset, example_id=event.example_id, kind=str(event.kind),
                      boxes=event.boxes, words=event.words, event_id=event.id, annotator=event.annotator)


def undo_target(events: list[ReasonEvent]) -> ReasonEvent | None:
    """The newest mark of one example's events (oldest first) that no undo has removed yet."""
    undone = {event.supersedes for event in events if event.action == UNDO_MARK}
    for event in reversed(events):
        if event.action != UNDO_MARK and event.id not in undone:
            return event
    return None


# --- masks ------------------------------------------------------------------------------------


def box_mask(boxes: Iterable[Iterable[int]], height: int, width: int) -> np.ndarray:
    """bool (height, width): True inside any box, each clipped to the grid (a box outside adds nothing)."""
    mask = np.zeros((int(height), int(width)), dtype=bool)
    for top, left, bottom, right in boxes:
        top, left = max(int(top), 0), max(int(left), 0)
        bottom, right = min(int(bottom), int(height)), min(int(right), int(width))
        if top < bottom and left < right:
            mask[top:bottom, left:right] = True
    return mask


def word_mask(words: Iterable[int], n_words: int) -> np.ndarray:
    """bool (n_words,): True at the marked word indices (indices past the end are ignored)."""
    mask = np.zeros(int(n_words), dtype=bool)
    for index in words:
        if 0 <= int(index) < n_words:
            mask[int(index)] = True
    return mask


def marked_words(text: str, words: Iterable[int]) -> list[str]:
    """The marked words of `text`, in text order (indices past the end are ignored)."""
    tokens = str(text).split()
    return [tokens[i] for i in sorted(set(words)) if 0 <= i < len(tokens)]


def box_from_ranges(x_range: Iterable[float], y_range: Iterable[float], height: int,
                    width: int) -> tuple[int, int, int, int] | None:
    """The input-pixel box (top, left, bottom, right; end exclusive) that a box selection covers on an
    image drawn with pixel centres at integer coordinates (pixel j spans j-0.5 .. j+0.5, as plotly's
    image trace draws it): every pixel the selection overlaps, clipped to the grid; None when it
    misses the image. The ranges may come in either order (the drag direction)."""
    try:
        x0, x1 = sorted(float(v) for v in x_range)
        y0, y1 = sorted(float(v) for v in y_range)
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in (x0, x1, y0, y1)):
        return None
    left, right = max(0, math.floor(x0 + 0.5)), min(int(width), math.ceil(x1 + 0.5))
    top, bottom = max(0, math.floor(y0 + 0.5)), min(int(height), math.ceil(y1 + 0.5))
    if left >= right or top >= bottom:
        return None
    return top, left, bottom, right


# --- checks (one-sentence messages, raised before anything is written) ---------------------------


def check_kind(kind: Any) -> str:
    if kind not in KINDS:
        raise WorkbenchError(f"Unknown reason mark kind {kind!r}; choose 'not_reason' (the model should "
                             "not rely on this) or 'reason' (the evidence is here).")
    return str(kind)


def check_boxes(boxes: Any) -> tuple[tuple[int, int, int, int], ...]:
    """Boxes as a tuple of 4-int tuples, each non-negative with top < bottom and left < right."""
    if isinstance(boxes, (str, bytes)) or not isinstance(boxes, Iterable):
        raise WorkbenchError("The boxes must be a list of (top, left, bottom, right) integer boxes.")
    boxes = list(boxes)
    if len(boxes) > MAX_BOXES:
        raise WorkbenchError(f"A reason mark holds at most {MAX_BOXES} boxes, not {len(boxes)}; save them in parts.")
    checked = []
    for number, box in enumerate(boxes, start=1):
        values = _ints(box, f"Box {number}")
        if len(values) != 4:
            raise WorkbenchError(f"Box {number} has {len(values)} numbers; give four: top, left, bottom, right.")
        top, left, bottom, right = values
        if min(values) < 0 or max(values) > MAX_COORDINATE:
            raise WorkbenchError(f"Box {number} {tuple(values)} has a coordinate outside 0..{MAX_COORDINATE}; "
                                 "use pixel positions in the model input.")
        if not (top < bottom and left < right):
            raise WorkbenchError(f"Box {number} {tuple(values)} is empty: it needs top < bottom and left < right "
                                 "(bottom and right are exclusive).")
        checked.append((top, left, bottom, right))
    return tuple(checked)


def check_words(words: Any) -> tuple[int, ...]:
    """Word indices as a sorted tuple without repeats, each a non-negative integer."""
    if isinstance(words, (str, bytes)) or not isinstance(words, Iterable):
        raise WorkbenchError("The words must be a list of word positions (integers counted from 0).")
    values = _ints(words, "The word positions")
    if len(values) > MAX_WORDS:
        raise WorkbenchError(f"A reason mark holds at most {MAX_WORDS} words, not {len(values)}; save them in parts.")
    if values and (min(values) < 0 or max(values) > MAX_WORD_INDEX):
        raise WorkbenchError(f"Word positions are counted from 0 and at most {MAX_WORD_INDEX}; "
                             f"{min(values) if min(values) < 0 else max(values)} is not.")
    return tuple(sorted(set(values)))


def check_mark(kind: Any, boxes: Any, words: Any) -> tuple[str, tuple[tuple[int, int, int, int], ...], tuple[int, ...]]:
    """(kind, boxes, words) checked; a mark needs at least one box or one word."""
    kind, boxes, words = check_kind(kind), check_boxes(boxes), check_words(words)
    if not boxes and not words:
        raise WorkbenchError("A reason mark needs at least one box (images) or one word (texts).")
    return kind, boxes, words


def _ints(values: Any, what: str) -> list[int]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise WorkbenchError(f"{what} must be a list of integers.")
    out = []
    for value in values:
        # operator.index takes Python and NumPy integers and refuses floats ("3.5" is no pixel);
        # bools are ints to Python but never a coordinate.
        if isinstance(value, (bool, np.bool_)):
            raise WorkbenchError(f"{what} must be integers, not {value!r}.")
        try:
            out.append(operator.index(value))
        except TypeError:
            raise WorkbenchError(f"{what} must be integers, not {value!r}.") from None
    return out
