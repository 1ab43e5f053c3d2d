"""Dataset: how a model does on a whole split — metrics, confusions, an embedding map, failure slices."""
import streamlit as st

from ui import dataset_widgets as dw
from ui import kit, sidebar
from workbench import dataset_view

st.title("📊 Dataset")
model = sidebar.selected_model(None)
if model is None:
    st.stop()

choice = dw.choose_split(model)
if choice is None:
    st.stop()
dataset = dw.load_dataset(*choice)
dw.reset_on_change(dataset)
outputs = dw.outputs(model, dataset)
result = dataset_view.metrics(outputs, dataset)
dw.metrics_block(result, outputs)

st.subheader("Confusion matrix")
dw.confusion_section(result, dataset, outputs)

st.subheader("Embedding map")
dw.embedding_map(model, dataset, outputs)

st.subheader("Example")
index, explanation = dw.example_panel(model, dataset, outputs)

st.subheader("Where the model fails most")
slices, table = dw.failure_slices(dataset, outputs, result)

kit.report_button(
    f"Dataset report: {model.name} {model.version} on {dataset.name} {dataset.split}",
    dw.report_sections(model, dataset, outputs, result, table, index, explanation),
    key="dataset_report",
)
