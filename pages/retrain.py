"""Retrain: fine-tune a candidate version from the label corrections, in a background job."""
import streamlit as st

from foundation.errors import WorkbenchError
from ui import versions_widgets as vw
from workbench import jobs, retrain

st.title("🔁 Retrain")
name = st.session_state.get("any_model")
if not name:
    st.stop()

try:
    pending = retrain.pending_corrections(name)
except WorkbenchError as exc:
    st.error(str(exc), icon="⚠️")
    st.stop()
if pending["dataset"] is None:
    st.info(f"{name} does not record the dataset it learned from, so it cannot be retrained from label "
            f"corrections here. From the command line: `workbench retrain --model {name} --dataset NAME`.")
    st.stop()
st.markdown(f"**{vw.md(name)}**, version in use **{pending['version']}**, learns from "
            f"{vw.md(pending['dataset'])} ({vw.md(pending['split'])}).")
a, b = st.columns(2)
a.metric("Labels corrected in the ledger", pending["labels_changed"])
b.metric("Corrections the version in use has not learned", pending["not_in_current"])
st.caption("Retraining snapshots the data with every current correction, fine-tunes the version in use "
           "(frozen base first, early stopping on the validation split) and writes a *candidate*.")

active = jobs.active_job(name)
if active is not None:
    st.subheader("Retraining…")
    vw.live_progress(active["job_id"])
    st.stop()

vw.start_panel(name)
if notice := st.session_state.pop("versions_notice", None):
    st.success(notice)
latest = jobs.latest_job(name)
if latest is not None:
    vw.finished_job(name, latest)
