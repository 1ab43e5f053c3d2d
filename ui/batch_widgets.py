"""Widgets of the Batch page: the upload, the method, the run with progress, the results and downloads."""
from __future__ import annotations

import shutil
import uuid
from typing import Any

import streamlit as st

from explainers import registry
from foundation import config
from foundation.errors import InputError, WorkbenchError
from foundation.types import Modality
from workbench import batch, inputs

ITEMS = "batch_items"  # (upload id, column, items, notes)
RESULT = "batch_result"  # (run key, BatchResult, csv bytes, zip bytes, overlay preview names)
PREVIEW = 8
METHOD_TITLES = {batch.NO_METHOD: "Predictions only"}


def choose_inputs(model: Any) -> list[batch.BatchInput] | None:
    """A zip of images (image models) or a CSV of texts (text models), read safely once per upload."""
    if model.modality is Modality.IMAGE:
        uploaded = st.file_uploader("A ZIP of images (PNG, JPEG, WebP, BMP)", type=["zip"], key="batch_zip",
                                    help="Folders inside the zip are fine; other files are skipped.")
        if uploaded is None:
            st.info("Upload a ZIP of images to predict and explain them all. "
                    "For larger jobs use `workbench explain-batch --model NAME FOLDER --out DIR`.")
            return None
        return _cached(uploaded.file_id, None, lambda: _read_zip(uploaded.getvalue(), uploaded.name))
    uploaded = st.file_uploader("A CSV file of texts", type=["csv", "txt"], key="batch_csv",
                                help="One text per row; choose the column below.")
    if uploaded is None:
        st.info("Upload a CSV with one text per row to predict and explain them all.")
        return None
    try:
        table = inputs.read_table_csv(uploaded.getvalue(), uploaded.name)
    except InputError as exc:
        st.error(str(exc), icon="⚠️")
        return None
    columns = batch.text_columns(table)
    if st.session_state.get("batch_text_column") not in columns:
        st.session_state["batch_text_column"] = batch.guess_text_column(table)
    column = st.selectbox("Column holding the text", columns, key="batch_text_column")
    return _cached(uploaded.file_id, column,
                   lambda: batch.texts_from_table(table, column, max_tokens=model.sequence_length))


def _cached(upload_id: str, column: str | None, read) -> list[batch.BatchInput] | None:
    stored = st.session_state.get(ITEMS)
    if stored is not None and stored[:2] == (upload_id, column):
        items = stored[2]
    else:
        try:
            with st.spinner("Reading the inputs…"):
                items = read()
        except InputError as exc:
            st.error(str(exc), icon="⚠️")
            return None
        st.session_state[ITEMS] = (upload_id, column, items)
        st.session_state.pop(RESULT, None)
    failed = sum(item.error is not None for item in items)
    st.caption(f"{len(items):,} inputs read" + (f", {failed:,} unreadable (listed in the results)." if failed else "."))
    if not items:
        st.warning("No usable input was found in the upload.")
        return None
    return items


def _read_zip(data: bytes, name: str) -> list[batch.BatchInput]:
    dest = config.workspace_subdir("tmp") / f"batch-{uuid.uuid4().hex}"
    try:
        result = inputs.extract_zip(data, dest, name=name)
        files = sorted(p for p in result.files if p.suffix.lower() in batch.IMAGE_SUFFIXES)
        return batch.read_image_files(files, root=dest)
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def choose_method(model: Any) -> str:
    """The method to explain every input with, or none; offered in the explainers' declared
    order, the order of the Explain pages' tabs (fastest first)."""
    methods = [batch.NO_METHOD] + list(registry.available(model))
    default = methods.index("gradcam") if "gradcam" in methods else 0
    return st.selectbox("Explanation", methods, index=default, key="batch_method",
                        format_func=lambda m: METHOD_TITLES[m] if m in METHOD_TITLES else registry.get(m).title,
                        help="Grad-CAM is the fastest; SHAP and LIME take seconds per input.")


def run_button(model: Any, items: list[batch.BatchInput], method: str) -> None:
    run_key = (model.name, model.version)
    if not st.button(f"▶ Explain {len(items):,} inputs", type="primary", key="batch_run"):
        return
    bar = st.progress(0.0, text="Starting…")

    def report(done: int, total: int, eta: float | None) -> None:
        left = f" · about {eta:.0f} s left" if eta is not None else ""
        bar.progress(done / total if total else 1.0, text=f"{done:,} of {total:,} inputs{left}")

    sink = batch.ZipSink() if method != batch.NO_METHOD else None
    try:
        result = batch.run_batch(model, items, method, overlays=sink, progress=report)
    except WorkbenchError as exc:
        bar.empty()
        st.error(str(exc), icon="⚠️")
        return
    zip_bytes = sink.getvalue() if sink is not None else None
    preview = list(sink.names[:PREVIEW]) if sink is not None else []
    st.session_state[RESULT] = (run_key, result, batch.results_csv_bytes(result), zip_bytes, preview)
    bar.empty()


def results(model: Any) -> None:
    stored = st.session_state.get(RESULT)
    if stored is None or stored[0] != (model.name, model.version):
        return  # nothing run yet, or run with another model
    _, result, csv_bytes, zip_bytes, preview = stored
    a, b, c, d = st.columns(4)
    a.metric("Explained", f"{result.n_ok:,}")
    b.metric("Unreadable", f"{result.n_failed:,}")
    c.metric("Seconds", f"{result.seconds:.1f}")
    d.metric("Inputs per second", f"{result.per_second:.1f}")
    st.dataframe(result.table, hide_index=True, width="stretch", height=min(420, 38 + 35 * len(result.table)))
    left, right = st.columns(2)
    left.download_button("⬇️ Results (CSV)", csv_bytes, file_name=f"batch-{model.name}.csv", mime="text/csv",
                         key="batch_download_csv", on_click="ignore")
    if zip_bytes is not None:
        right.download_button(f"⬇️ Overlays (ZIP, {result.overlays_written:,} files)", zip_bytes,
                              file_name=f"batch-{model.name}-{result.method}.zip", mime="application/zip",
                              key="batch_download_zip", on_click="ignore")
    if preview and model.modality is Modality.IMAGE:
        _preview(zip_bytes, preview)


def _preview(zip_bytes: bytes, names: list[str]) -> None:
    import io
    import zipfile

    st.caption("The first overlays:")
    columns = st.columns(len(names))
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        for column, name in zip(columns, names):
            column.image(archive.read(name), caption=name, width="stretch")
