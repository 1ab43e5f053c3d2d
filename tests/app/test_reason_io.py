"""Issue 17: download and import a dataset's reason marks on the Review page (AppTest, real app,
real SQLite ledgers): marks exported from one workspace are imported into another and read back
through the Ledger API; a bad file stores nothing and says why in one sentence; an oversized file
is refused; a viewer cannot import."""
from __future__ import annotations

import json

from foundation import access
from labels import Ledger
from labels.reasons import current_reason_marks
from tests.app.conftest import start_app
from ui import reason_io
from workbench import datasets

PAGE = "pages/review.py"


def _review(annotator: str = "carol"):
    at = start_app(PAGE, any_model="digits", annotator=annotator)
    assert not at.exception, at.exception
    return at


def _uploader(at):
    [box] = [u for u in at.get("file_uploader") if str(u.key).startswith("reason_import_file:digits:")]
    return box


def _io_caption(at) -> str:
    return next(c.value for c in at.caption if "in force on" in c.value)


def _marks(dataset: str) -> list[tuple[str, str, tuple, tuple]]:
    return sorted((eid, m.kind, m.boxes, m.words) for eid, found in current_reason_marks(Ledger(), dataset).items()
                  for m in found)


def test_marks_exported_then_removed_import_back_as_they_were(workspace):
    train, test = datasets.load("digits", "train"), datasets.load("digits", "test")
    ledger = Ledger()
    ledger.mark_reason("digits", train.ids[0], "not_reason", boxes=[(0, 0, 8, 8)], annotator="alice", expected_event_id=None)
    seen = ledger.mark_reason("digits", test.ids[1], "reason", boxes=[(10, 12, 30, 40), (1, 1, 2, 2)],
                              annotator="bob", expected_event_id=None)
    ledger.mark_reason("digits", test.ids[1], "not_reason", boxes=[(5, 5, 6, 6)], annotator="bob", expected_event_id=seen.id)
    ledger.undo_reason("digits", test.ids[1], annotator="bob", expected_event_id=seen.id + 1)  # not exported
    exported = _marks("digits")
    assert len(exported) == 2
    at = _review()
    assert _io_caption(at).startswith("2 marks in force on 2 examples")
    buttons = {b.label: b for b in at.get("download_button")}
    assert not buttons["⬇️ Reason marks (CSV)"].disabled and not buttons["⬇️ Reason marks (JSON)"].disabled
    csv_file = Ledger().export_reason_marks("digits", "csv")  # what the CSV button sends
    assert json.loads(Ledger().export_reason_marks("digits", "json"))[0]["boxes"] == [[0, 0, 8, 8]]

    # Remove every mark (as a person would, with undo), then import the file back.
    for example_id in (train.ids[0], test.ids[1]):
        ledger.undo_reason("digits", example_id, annotator="carol",
                           expected_event_id=ledger.latest_reason_event("digits", example_id).id)
    at.run()
    assert _io_caption(at).startswith("0 marks in force on 0 examples")
    assert all(b.disabled for b in at.get("download_button") if b.label.startswith("⬇️ Reason marks"))
    assert at.button(key="reason_import").disabled  # no file yet
    _uploader(at).set_value(("digits-reason-marks.csv", csv_file, "text/csv")).run()
    at.button(key="reason_import").click().run()
    assert not at.exception, at.exception
    assert [s.value for s in at.success if "reason mark" in s.value] == [
        "Added 2 reason marks to digits from digits\\-reason\\-marks\\.csv."]
    assert _marks("digits") == exported  # the same marks, read back through the ledger
    assert [e.annotator for e in Ledger().reason_history("digits")[:2]] == ["carol", "carol"]  # who imported
    assert [e.action for e in Ledger().reason_history("digits")[:2]] == ["import", "import"]
    assert _uploader(at).value is None  # emptied: a rerun does not import the file again
    assert _io_caption(at).startswith("2 marks in force on 2 examples")

    # The same file again: nothing is added twice, and the page says so.
    events_before = len(Ledger().reason_history("digits"))
    _uploader(at).set_value(("digits-reason-marks.csv", csv_file, "text/csv")).run()
    at.button(key="reason_import").click().run()
    [said] = [s.value for s in at.success if "reason mark" in s.value]
    assert said.startswith("Added 0 reason marks") and "2 marks of the file were already in force" in said
    assert _io_caption(at).startswith("2 marks in force on 2 examples")
    assert len(Ledger().reason_history("digits")) == events_before


def test_a_bad_file_stores_nothing_and_says_why_in_one_sentence(workspace):
    good = datasets.load("digits", "train").ids[0]
    data = (f"example_id,kind,boxes,words\n{good},not_reason,\"[[0, 0, 4, 4]]\",[]\n"
            "[x](http://evil),not_reason,\"[[0, 0, 4, 4]]\",[]\n").encode()
    at = _review()
    _uploader(at).set_value(("marks.csv", data, "text/csv")).run()
    at.button(key="reason_import").click().run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error if "Nothing was imported" in e.value]
    assert len(errors) == 1
    assert "line 3\\: unknown example\\_id" in errors[0] and "\\[x\\]\\(http" in errors[0]  # the file's text, escaped
    assert Ledger().reason_history("digits") == []  # the good row was not stored either


def test_an_oversized_file_is_refused(workspace, monkeypatch):
    monkeypatch.setattr(reason_io, "MAX_IMPORT_BYTES", 2**20)  # the 20 MB bound, made small enough to test
    at = _review()
    _uploader(at).set_value(("big.json", b"[" + b" " * 2**20 + b"]", "application/json")).run()
    at.button(key="reason_import").click().run()
    assert any("larger than 1 MB" in e.value for e in at.error)
    assert Ledger().reason_history("digits") == []


def test_a_viewer_cannot_import(workspace, tmp_path, monkeypatch):
    roles = tmp_path / "roles.toml"
    roles.write_text('default = "viewer"\n')
    monkeypatch.setenv(access.ROLES_ENV, str(roles))
    at = _review()
    assert _uploader(at).disabled and at.button(key="reason_import").disabled
    assert any("needs the annotator role" in c.value for c in at.caption)
