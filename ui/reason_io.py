"""Download and import a dataset's reason marks (issue 17), on the Review page.

Download: the marks in force, one row each, as CSV or JSON (`Ledger.export_reason_marks`), built
when the button is clicked so the file holds the marks of that moment. Import: a file in the
same form (another workbench's download, or a spreadsheet) is validated whole by
`Ledger.import_reason_marks` against every example id of the dataset: one bad row and nothing is
stored. An import runs on its button, never on the upload itself (a rerun would import it again),
and empties the upload box afterwards.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

from foundation import access
from foundation.errors import WorkbenchError
from foundation.escaping import markdown_literal
from labels import Ledger, reasons
from labels.importer import MAX_IMPORT_BYTES
from ui import identity, loaders
from workbench import datasets

FLASH = "reason_io_flash"
NONCE = "reason_io_nonce"  # part of the upload box's key: a new key empties the box after an import
OPEN = "reason_io_open"
MAX_PROBLEMS_SHOWN = 3


def known_ids(dataset: str) -> set[str]:
    """Every example id of the dataset, over all its splits (marks may be on test examples too)."""
    return {str(example_id) for split in datasets.splits(dataset) for example_id in loaders.dataset(dataset, split).ids}


def marks_count(ledger: Ledger, dataset: str) -> tuple[int, int]:
    """(marks in force, examples carrying them) in the dataset."""
    marks = reasons.current_reason_marks(ledger, dataset)
    return sum(len(found) for found in marks.values()), len(marks)


def reason_marks_io(dataset: str, annotator: str, ledger: Ledger | None = None) -> None:
    """The folded "download or import" section for `dataset`'s reason marks."""
    ledger = ledger or Ledger()
    flash = st.session_state.get(FLASH)
    flash = flash if flash and flash[0] == dataset else None
    shown_name = markdown_literal(dataset, one_line=True)
    # Once a file is chosen or a message shown, the section stays open for the session: a rerun that
    # folded it again would hide the file, the button and the result from the person using them.
    if flash or st.session_state.get(_upload_key(dataset)) is not None:
        st.session_state[OPEN] = True
    with st.expander(f"⬇️⬆️ Reason marks of {shown_name}: download or import",
                     expanded=bool(st.session_state.get(OPEN))):
        if flash:
            st.session_state.pop(FLASH, None)
            (st.success if flash[1] == "success" else st.error)(flash[2])
        n_marks, n_examples = marks_count(ledger, dataset)
        st.caption(f"{n_marks} mark{'s' if n_marks != 1 else ''} in force on {n_examples} "
                   f"example{'s' if n_examples != 1 else ''}. The files list one mark per row (example_id, kind, "
                   "boxes, words, note, and who made it); an import reads the same columns back.")
        left, right, _ = st.columns([1, 1, 2])
        for column, fmt, mime in ((left, "csv", "text/csv"), (right, "json", "application/json")):
            column.download_button(
                f"⬇️ Reason marks ({fmt.upper()})", data=lambda fmt=fmt: ledger.export_reason_marks(dataset, fmt),
                file_name=f"{dataset}-reason-marks.{fmt}", mime=mime, key=f"reason_export_{fmt}",
                on_click="ignore", disabled=n_marks == 0,
                help="The marks in force now, one row each (undone marks are left out).")
        _import_box(dataset, annotator)


def _import_box(dataset: str, annotator: str) -> None:
    refused = identity.refusal(access.LABEL)
    locked = not annotator or refused is not None
    upload_key = _upload_key(dataset)
    uploaded = st.file_uploader(
        "Import reason marks (CSV or JSON, as downloaded here)", type=["csv", "json"], key=upload_key,
        max_upload_size=MAX_IMPORT_BYTES // 2**20, disabled=locked,
        help="Every row is checked first (known example ids, boxes inside the picture, word numbers); "
             "one bad row and nothing is stored. The marks are added to those in force, under your name: "
             "importing the same file twice adds them twice.")
    if refused:
        st.caption(f"🔒 {refused}")
    elif not annotator:
        st.caption("Type your name in the sidebar to import marks.")
    st.button("Import the marks", key="reason_import", type="primary", disabled=locked or uploaded is None,
              on_click=_import, args=({"dataset": dataset, "annotator": annotator, "upload_key": upload_key},))


def _upload_key(dataset: str) -> str:
    return f"reason_import_file:{dataset}:{st.session_state.get(NONCE, 0)}"


def _import(context: dict[str, Any]) -> None:
    """Button callback: validate and store the uploaded file, then say what happened in one sentence."""
    dataset, state = context["dataset"], st.session_state
    uploaded = state.get(context["upload_key"])
    if uploaded is None:
        return
    if uploaded.size > MAX_IMPORT_BYTES:  # the upload box's own limit too; said here in case it was raised
        state[FLASH] = (dataset, "error", f"Nothing was imported: the file is larger than "
                                          f"{MAX_IMPORT_BYTES // 2**20} MB; split it and import the parts.")
        return
    ledger, data, ids = Ledger(), uploaded.getvalue(), known_ids(dataset)
    try:
        report = ledger.import_reason_marks(dataset, data, known_ids=ids, annotator=context["annotator"],
                                            actor=identity.current())
    except WorkbenchError as error:  # a viewer, a broken roles file, a bad annotator name
        state[FLASH] = (dataset, "error", f"Nothing was imported: {markdown_literal(error)}")
        return
    if not report.ok:
        # The file's own text (ids, cells) is in the problems: shown literally, never as Markdown.
        state[FLASH] = (dataset, "error", markdown_literal(report.summary(limit=MAX_PROBLEMS_SHOWN)))
        return
    state[NONCE] = state.get(NONCE, 0) + 1  # an empty upload box: the same file is not imported twice by accident
    message = (f"Added {report.imported} reason mark{'s' if report.imported != 1 else ''} to "
               f"{markdown_literal(dataset, one_line=True)} from {markdown_literal(uploaded.name, one_line=True)}.")
    if report.skipped:
        message += (f" {report.skipped} mark{'s' if report.skipped != 1 else ''} of the file "
                    f"{'were' if report.skipped != 1 else 'was'} already in force (same example, kind and "
                    "region) and not added again.")
    state[FLASH] = (dataset, "success", message)
