"""Your model & data: register your own .keras model and import your own images or texts."""
import streamlit as st

from ui import byo_widgets

st.title("📦 Your model & data")
st.write("Bring a model and data of your own: once registered or imported they work like the samples "
         "(explanations, review, retraining, versions).")
model_tab, data_tab = st.tabs(["Your model", "Your data"])
with model_tab:
    byo_widgets.register_model_section()
with data_tab:
    byo_widgets.import_data_section()
