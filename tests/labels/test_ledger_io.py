"""CSV/JSON exports (formula-injection safe) and the all-or-nothing corrections import."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone

import pytest

from foundation.errors import InputError, WorkbenchError
from labels import ImportProblem, Ledger
from labels.csv_safety import neutralise_cell, restore_cell
from labels.export import HISTORY_COLUMNS, LABEL_COLUMNS

CLASSES = ["cat", "dog", "bird"]
ORIGINAL = {"a": "cat", "b": "dog", "c": "bird", "-neg": "cat"}
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def _csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


@pytest.mark.parametrize("raw, safe", [
    ("=1+1", "'=1+1"), ("+cmd", "'+cmd"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=x", "'\t=x"), ("\r=x", "'\r=x"), ("cat", "cat"), ("", ""), ("a=b", "a=b"),
])
def test_neutralise_cell_prefixes_only_formula_starts(raw: str, safe: str) -> None:
    assert neutralise_cell(raw) == safe
    assert restore_cell(safe) == raw


def test_neutralise_cell_leaves_non_strings_alone() -> None:
    assert [neutralise_cell(v) for v in (-0.5, 3, None)] == [-0.5, 3, None]
    assert restore_cell("'plain") == "'plain"  # an apostrophe we did not add stays


def test_history_csv_is_injection_safe(ledger: Ledger) -> None:
    ledger.record("pets", "=HYPERLINK(\"http://x\")", "dog", expected_event_id=None,
                  annotator="@mallory", note="+cmd|' /C calc'!A0", confidence=0.5)
    ledger.record("pets", "b", "-1", expected_event_id=None, annotator="alice", note="\t=1")

    rows = _csv_rows(ledger.export_history("pets", "csv"))

    assert rows[0] == list(HISTORY_COLUMNS)
    assert len(rows) == 3
    first = dict(zip(rows[0], rows[1]))
    assert first["example_id"] == "'=HYPERLINK(\"http://x\")"
    assert first["annotator"] == "'@mallory"
    assert first["note"] == "'+cmd|' /C calc'!A0"
    assert first["previous_label"] == "" and first["confidence"] == "0.5"
    assert dict(zip(rows[0], rows[2]))["new_label"] == "'-1"
    assert not [cell for row in rows for cell in row if cell.startswith(TRIGGERS)]


def test_history_json_is_valid_and_oldest_first(ledger: Ledger) -> None:
    first = ledger.record("pets", "a", "dog", expected_event_id=None, annotator="alice")
    second = ledger.record("pets", "a", "=x", expected_event_id=first.id, annotator="bob")

    rows = json.loads(ledger.export_history("pets", "json"))

    assert [r["id"] for r in rows] == [first.id, second.id]
    assert set(rows[0]) == set(HISTORY_COLUMNS)
    assert rows[0]["previous_label"] is None and rows[1]["previous_label"] == "dog"
    assert rows[1]["new_label"] == "=x"  # JSON is not a spreadsheet: values stay exact
    assert datetime.fromisoformat(rows[0]["created_at"]) == first.created_at
    assert datetime.fromisoformat(rows[0]["created_at"]).utcoffset() == timezone.utc.utcoffset(None)


def test_export_labels_lists_every_example_with_its_last_change(ledger: Ledger) -> None:
    a1 = ledger.record("pets", "a", "dog", expected_event_id=None, annotator="alice", note="ears")
    ledger.record("pets", "c", "bird", expected_event_id=None, annotator="bob")  # confirms original
    ledger.flag_ambiguous("pets", "b", expected_event_id=None, annotator="carol")

    rows = json.loads(ledger.export_labels("pets", ORIGINAL, "json"))
    as_csv = _csv_rows(ledger.export_labels("pets", ORIGINAL, "csv"))

    assert [r["example_id"] for r in rows] == ["a", "b", "c", "-neg"]
    a, b, c, neg = rows
    assert (a["original_label"], a["current_label"], a["changed"], a["ambiguous"]) == (
        "cat", "dog", True, False)
    assert (a["last_event_id"], a["last_annotator"], a["last_note"]) == (a1.id, "alice", "ears")
    assert (b["current_label"], b["changed"], b["ambiguous"], b["last_action"]) == (
        "dog", False, True, "ambiguous")
    assert (c["changed"], c["last_annotator"]) == (False, "bob")
    assert (neg["current_label"], neg["last_event_id"], neg["last_changed_at"]) == ("cat", None, None)
    assert as_csv[0] == list(LABEL_COLUMNS)
    assert as_csv[1][:5] == ["a", "cat", "dog", "true", "false"]
    assert as_csv[4][:4] == ["'-neg", "cat", "cat", "false"]


def test_unknown_export_format_is_refused(ledger: Ledger) -> None:
    with pytest.raises(WorkbenchError, match="Unknown export format 'xlsx'"):
        ledger.export_history("pets", "xlsx")


def _import(ledger: Ledger, data: bytes):
    return ledger.import_corrections_csv("pets", data, classes=CLASSES, known_ids=list(ORIGINAL),
                                         annotator="importer")


def test_bad_import_changes_nothing_and_reports_every_line(ledger: Ledger) -> None:
    ledger.record("pets", "a", "dog", expected_event_id=None, annotator="alice")
    before = ledger.count()
    data = (
        "example_id,new_label,note\n"        # 1
        "a,bird,fine row\n"                  # 2
        "zzz,cat,\n"                         # 3 unknown id
        "b,wolf,\n"                          # 4 unknown label
        "c,,\n"                              # 5 empty label
        "a,cat,\n"                           # 6 duplicate of line 2
        "b,cat,\"two\nline note\"\n"         # 7-8 one row over two lines: fine
        "c,dog\n"                            # 9 missing a cell
        ",,\n"                               # 10 filler row: ignored
        ",cat,\n"                            # 11 empty id
    ).encode()

    report = _import(ledger, data)

    assert not report.ok and report.imported == 0
    assert [(p.line, p.message.split(" ")[0]) for p in report.problems] == [
        (3, "unknown"), (4, "unknown"), (5, "new_label"), (6, "example_id"), (9, "expected"),
        (11, "example_id"),
    ]
    assert str(report.problems[3]) == "line 6: example_id 'a' already appears on line 2"
    assert "expected one of bird, cat, dog" in report.problems[1].message
    assert ledger.count() == before
    with pytest.raises(InputError, match="Nothing was imported: the file has 6 problem"):
        report.raise_for_problems()


@pytest.mark.parametrize("data, expected", [
    (b"", [ImportProblem(1, "the file is empty; expected a header row example_id,new_label[,note]")]),
    (b"example_id,new_label\n", [ImportProblem(2, "the file has a header but no corrections")]),
    (b"example_id,new_label\na,cat\nb,\xff\n",
     [ImportProblem(3, "the file is not UTF-8 text; save it as 'CSV UTF-8'")]),
    (b"id,label\na,cat\n", [
        ImportProblem(1, "unknown column 'id'; expected example_id,new_label[,note]"),
        ImportProblem(1, "unknown column 'label'; expected example_id,new_label[,note]"),
        ImportProblem(1, "missing column 'example_id'; expected example_id,new_label[,note]"),
        ImportProblem(1, "missing column 'new_label'; expected example_id,new_label[,note]"),
    ]),
    (b"example_id,new_label,new_label\na,cat,dog\n",
     [ImportProblem(1, "column 'new_label' appears more than once")]),
    # An unterminated quote would swallow the rest of the file into one cell.
    (b"example_id,new_label\na,cat\nb,\"dog\nc,cat\n", [(3, "this row cannot be read as CSV")]),
    (b"example_id,new_label\na,cat\nb,\"dog\"x\n", [(3, "this row cannot be read as CSV")]),
])
def test_unreadable_files_are_reported_with_line_numbers(ledger: Ledger, data: bytes,
                                                         expected: list) -> None:
    report = _import(ledger, data)
    assert report.imported == 0 and ledger.count() == 0
    if isinstance(expected[0], tuple):  # the csv module words the detail itself
        assert [(p.line, p.message[:len(m)]) for p, (_, m) in zip(report.problems, expected)] \
            == expected
        assert len(report.problems) == len(expected)
    else:
        assert list(report.problems) == expected


def test_good_import_appends_every_row_in_one_go(ledger: Ledger) -> None:
    seen = ledger.record("pets", "a", "dog", expected_event_id=None, annotator="alice")
    data = ("\ufeffExample_ID , New_Label,note\r\n"   # BOM, case and spaces as Excel writes them
            "a,bird,looks like a wren\r\n"
            "b, cat ,\r\n"
            "'-neg,dog,\r\n"                          # an id as our own CSV export writes it
            ).encode("utf-8")

    report = _import(ledger, data)

    assert report.ok and report.imported == 3 and report.summary() == "Imported 3 correction(s)."
    events = ledger.history("pets", limit=3)
    assert {e.action for e in events} == {"import"} and {e.annotator for e in events} == {"importer"}
    assert len({e.created_at for e in events}) == 1
    by_id = {e.example_id: e for e in events}
    assert (by_id["a"].previous_label, by_id["a"].new_label, by_id["a"].note) == (
        "dog", "bird", "looks like a wren")
    assert by_id["b"].previous_label is None and by_id["b"].note is None
    assert ledger.count() == 4
    assert ledger.current_labels("pets", ORIGINAL) == {"a": "bird", "b": "cat", "c": "bird",
                                                       "-neg": "dog"}
    # Imports overwrite, so a user holding the old event is now told it went stale.
    with pytest.raises(WorkbenchError):
        ledger.record("pets", "a", "cat", expected_event_id=seen.id, annotator="alice")
