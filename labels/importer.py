"""Parse and validate a corrections CSV (`example_id,new_label[,note]`), or a reason-marks file
(`example_id,kind,boxes,words[,note]`, CSV or JSON), before anything is written.

All problems are collected, each with its 1-based line number (the header is line 1), so
the user can fix the file in one pass. The ledger imports only a file with no problems.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Collection, Sequence

from foundation.errors import InputError, WorkbenchError
from labels.csv_safety import restore_cell
from labels.reasons import check_mark
from labels.schema import MAX_NAME, MAX_NOTE

MAX_IMPORT_BYTES = 20 * 1024 * 1024
REQUIRED_COLUMNS = ("example_id", "new_label")
OPTIONAL_COLUMNS = ("note",)
EXPECTED_HEADER = "example_id,new_label[,note]"


@dataclass(frozen=True)
class ImportProblem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class Correction:
    line: int
    example_id: str
    new_label: str
    note: str | None


@dataclass(frozen=True)
class ImportReport:
    """`imported` rows were appended, or none at all when `problems` is not empty."""

    imported: int
    problems: tuple[ImportProblem, ...] = ()
    noun: str = "correction(s)"  # what was imported, for the summary
    skipped: int = 0  # valid rows not appended because the same thing is already in force

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self, limit: int = 20) -> str:
        if self.ok:
            tail = f" ({self.skipped} already in force, skipped)" if self.skipped else ""
            return f"Imported {self.imported} {self.noun}{tail}."
        shown = "; ".join(str(p) for p in self.problems[:limit])
        more = len(self.problems) - limit
        tail = f"; and {more} more" if more > 0 else ""
        return (f"Nothing was imported: the file has {len(self.problems)} problem(s). "
                f"Fix them and import again: {shown}{tail}.")

    def raise_for_problems(self) -> None:
        if not self.ok:
            raise InputError(self.summary())


def parse_corrections(
    data: bytes, *, classes: Sequence[str], known_ids: Collection[str]
) -> tuple[list[Correction], list[ImportProblem]]:
    """Rows of a corrections file, and every problem found; use the rows only if there are none."""
    text, problem = _decode(data)
    if problem:
        return [], [problem]
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        return [], [ImportProblem(1, f"the header cannot be read as CSV ({exc})")]
    if header is None:
        return [], [ImportProblem(1, f"the file is empty; expected a header row {EXPECTED_HEADER}")]
    columns, problems = _parse_header(header)
    if problems:
        return [], problems
    return _parse_rows(reader, columns, set(classes), set(known_ids))


def _decode(data: bytes) -> tuple[str, ImportProblem | None]:
    if len(data) > MAX_IMPORT_BYTES:
        return "", ImportProblem(1, f"the file is larger than {MAX_IMPORT_BYTES // 2**20} MB; split it")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return "", ImportProblem(line, "the file is not UTF-8 text; save it as 'CSV UTF-8'")
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        return "", ImportProblem(line, "the file contains a NUL byte; it does not look like a CSV file")
    return text, None


def _parse_header(header: list[str]) -> tuple[list[str], list[ImportProblem]]:
    columns = [cell.strip().lower() for cell in header]
    problems = []
    for name in columns:
        if name not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS:
            problems.append(ImportProblem(1, f"unknown column {_show(name)}; expected {EXPECTED_HEADER}"))
    for name in REQUIRED_COLUMNS:
        if name not in columns:
            problems.append(ImportProblem(1, f"missing column '{name}'; expected {EXPECTED_HEADER}"))
    for name in sorted({c for c in columns if columns.count(c) > 1}):
        problems.append(ImportProblem(1, f"column {_show(name)} appears more than once"))
    return columns, problems


def _parse_rows(
    reader: "csv._reader", columns: list[str], classes: set[str], known_ids: set[str]
) -> tuple[list[Correction], list[ImportProblem]]:
    rows: list[Correction] = []
    problems: list[ImportProblem] = []
    first_line_of: dict[str, int] = {}
    last_line = reader.line_num
    while True:
        start = last_line + 1  # a quoted cell may span lines: report where the row starts
        try:
            cells = next(reader, None)
        except csv.Error as exc:
            problems.append(ImportProblem(start, f"this row cannot be read as CSV ({exc})"))
            break  # the reader cannot resynchronise after a malformed row
        if cells is None:
            break
        last_line = reader.line_num
        if all(not cell.strip() for cell in cells):
            continue  # blank lines and spreadsheet filler rows like ",,"
        if len(cells) != len(columns):
            problems.append(ImportProblem(start, f"expected {len(columns)} cells, found {len(cells)}"))
            continue
        row, row_problems = _parse_row(start, dict(zip(columns, cells)), classes, known_ids)
        problems.extend(row_problems)
        if row is None:
            continue
        if row.example_id in first_line_of:
            problems.append(ImportProblem(
                start, f"example_id {_show(row.example_id)} already appears on line "
                       f"{first_line_of[row.example_id]}"))
            continue
        first_line_of[row.example_id] = start
        rows.append(row)
    if not rows and not problems:
        problems.append(ImportProblem(2, "the file has a header but no corrections"))
    return rows, problems


def _parse_row(
    line: int, cells: dict[str, str], classes: set[str], known_ids: set[str]
) -> tuple[Correction | None, list[ImportProblem]]:
    problems = []
    example_id = _match(cells["example_id"].strip(), known_ids)
    new_label = _match(cells["new_label"].strip(), classes)
    note = (cells.get("note") or "").strip() or None
    if not example_id:
        problems.append(ImportProblem(line, "example_id is empty"))
    elif example_id not in known_ids:
        problems.append(ImportProblem(line, f"unknown example_id {_show(example_id)}"))
    elif len(example_id) > MAX_NAME:
        problems.append(ImportProblem(line, f"example_id is longer than {MAX_NAME} characters"))
    if not new_label:
        problems.append(ImportProblem(line, "new_label is empty"))
    elif new_label not in classes:
        problems.append(ImportProblem(
            line, f"unknown label {_show(new_label)}; expected one of {_list(sorted(classes))}"))
    elif len(new_label) > MAX_NAME:
        problems.append(ImportProblem(line, f"new_label is longer than {MAX_NAME} characters"))
    if note is not None and len(note) > MAX_NOTE:
        problems.append(ImportProblem(line, f"the note is longer than {MAX_NOTE} characters"))
    if problems:
        return None, problems
    return Correction(line, example_id, new_label, note), []


def _match(value: str, allowed: set[str]) -> str:
    # Accept values from our own exports, where a leading apostrophe guards against formulas.
    if value not in allowed and restore_cell(value) in allowed:
        return restore_cell(value)
    return value


def _show(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


def _list(values: list[str], limit: int = 10) -> str:
    shown = ", ".join(values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")



# --- reason marks (issue 17) ------------------------------------------------------------------

REASON_REQUIRED = ("example_id", "kind")
REASON_OPTIONAL = ("boxes", "words", "note")
# Columns our own marks export adds for provenance; an import reads past them (the importer is
# the one who acts, and is recorded as such).
REASON_PROVENANCE = ("event_id", "annotator", "created_at", "actor_email", "actor_role", "dataset")
REASON_HEADER = "example_id,kind,boxes,words[,note] (boxes and words as JSON lists)"


@dataclass(frozen=True)
class ReasonRow:
    line: int
    example_id: str
    kind: str
    boxes: tuple[tuple[int, int, int, int], ...]
    words: tuple[int, ...]
    note: str | None


def parse_reason_marks(data: bytes, *, known_ids: Collection[str]) -> tuple[list[ReasonRow], list[ImportProblem]]:
    """Rows of a reason-marks file (CSV, or JSON: a list of objects, as `Ledger.export_reason_marks`
    writes), and every problem found; use the rows only if there are none. A JSON file's "line" is
    the 1-based position of the object in the list."""
    text, problem = _decode(data)
    if problem:
        return [], [problem]
    if text.lstrip().startswith("["):
        records, problems = _json_records(text)
    else:
        records, problems = _csv_records(text)
    if problems:
        return [], problems
    known = set(known_ids)
    rows: list[ReasonRow] = []
    for line, cells in records:
        row, row_problems = _parse_reason(line, cells, known)
        problems.extend(row_problems)
        if row is not None:
            rows.append(row)
    if not rows and not problems:
        problems.append(ImportProblem(2, "the file has no reason marks"))
    return rows, problems


def _json_records(text: str) -> tuple[list[tuple[int, dict]], list[ImportProblem]]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return [], [ImportProblem(1, f"the file is not valid JSON ({str(exc)[:120]})")]
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        return [], [ImportProblem(1, "a JSON file must be a list of objects with example_id, kind, boxes, words")]
    problems = []
    allowed = REASON_REQUIRED + REASON_OPTIONAL + REASON_PROVENANCE
    for number, item in enumerate(value, start=1):
        unknown = sorted(set(item) - set(allowed))
        if unknown:
            problems.append(ImportProblem(number, f"unknown field {_show(str(unknown[0]))}; expected {REASON_HEADER}"))
    return list(enumerate(value, start=1)), problems


def _csv_records(text: str) -> tuple[list[tuple[int, dict]], list[ImportProblem]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        return [], [ImportProblem(1, f"the header cannot be read as CSV ({exc})")]
    if header is None:
        return [], [ImportProblem(1, f"the file is empty; expected a header row {REASON_HEADER}")]
    columns = [cell.strip().lower() for cell in header]
    problems = [ImportProblem(1, f"unknown column {_show(name)}; expected {REASON_HEADER}") for name in columns
                if name not in REASON_REQUIRED + REASON_OPTIONAL + REASON_PROVENANCE]
    problems += [ImportProblem(1, f"missing column '{name}'; expected {REASON_HEADER}")
                 for name in REASON_REQUIRED if name not in columns]
    problems += [ImportProblem(1, f"column {_show(name)} appears more than once")
                 for name in sorted({c for c in columns if columns.count(c) > 1})]
    if problems:
        return [], problems
    records: list[tuple[int, dict]] = []
    last_line = reader.line_num
    while True:
        start = last_line + 1
        try:
            cells = next(reader, None)
        except csv.Error as exc:
            problems.append(ImportProblem(start, f"this row cannot be read as CSV ({exc})"))
            break
        if cells is None:
            break
        last_line = reader.line_num
        if all(not cell.strip() for cell in cells):
            continue
        if len(cells) != len(columns):
            problems.append(ImportProblem(start, f"expected {len(columns)} cells, found {len(cells)}"))
            continue
        records.append((start, dict(zip(columns, cells))))
    return records, problems


def _parse_reason(line: int, cells: dict, known: set[str]) -> tuple[ReasonRow | None, list[ImportProblem]]:
    problems = []
    example_id = _match(str(cells.get("example_id") or "").strip(), known)
    if not example_id:
        problems.append(ImportProblem(line, "example_id is empty"))
    elif example_id not in known:
        problems.append(ImportProblem(line, f"unknown example_id {_show(example_id)}"))
    lists = {}
    for name in ("boxes", "words"):
        value = cells.get(name)
        if isinstance(value, str):  # CSV cells hold JSON text; empty means none
            try:
                value = json.loads(value) if value.strip() else []
            except (ValueError, RecursionError):
                problems.append(ImportProblem(line, f"{name} is not a JSON list such as "
                                                    f"{'[[0, 0, 4, 4]]' if name == 'boxes' else '[0, 3]'}"))
                continue
        lists[name] = [] if value is None else value
    note = cells.get("note")
    note = restore_cell(str(note).strip()) if note not in (None, "") else None
    if note is not None and len(note) > MAX_NOTE:
        problems.append(ImportProblem(line, f"the note is longer than {MAX_NOTE} characters"))
    if len(lists) == 2:
        try:
            kind, boxes, words = check_mark(str(cells.get("kind") or "").strip(), lists["boxes"], lists["words"])
        except WorkbenchError as error:
            problems.append(ImportProblem(line, str(error).rstrip(".")))
    if problems:
        return None, problems
    return ReasonRow(line, example_id, kind, boxes, words, note or None), []
