"""Batch: predict and explain a zip of images or a CSV of texts; download a CSV and the overlays."""
import streamlit as st

from ui import batch_widgets as bw
from ui import sidebar

st.title("🗂️ Batch")
model = sidebar.selected_model(None)
if model is None:
    st.stop()

st.caption(f"Every input is predicted by **{model.name} {model.version}** and its predicted class explained; "
           "inputs are processed in batches. Unreadable inputs are listed, not fatal.")
items = bw.choose_inputs(model)
if items is None:
    st.stop()
method = bw.choose_method(model)
bw.run_button(model, items, method)
bw.results(model)
