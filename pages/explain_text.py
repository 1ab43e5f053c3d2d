"""Explain text: type, paste or pick a headline; see the prediction and which words drove it."""
import streamlit as st

from explainers import registry
from foundation.errors import InputError
from ui import method_params, sidebar, text_views, widgets
from workbench import api, datasets, inputs

st.title("📝 Explain text")
model = sidebar.selected_model("text")
if model is None:
    st.stop()
method_params.keep_state("text")

dataset_name = model.manifest.get("dataset")
sample_data = datasets.load(dataset_name, "test") if dataset_name in datasets.names() else None
samples = [str(t) for t in sample_data.x[:200]] if sample_data is not None else []
sources = (["Pick a sample headline"] if samples else []) + ["Type or paste text"]
source = st.radio("Text", sources, horizontal=True, key="text_source", label_visibility="collapsed")
if source == "Pick a sample headline":
    raw = st.selectbox("Sample (test split)", samples, key="text_sample",
                       help="Test examples were never seen in training.")
else:
    st.session_state.setdefault("text_input", "Acme shares plunge after a surprise profit warning")
    raw = st.text_area("Your text", key="text_input", max_chars=5000, height=90,
                       help="Lower-cased and stripped of punctuation by the model, like its training data.")
try:
    cleaned = inputs.clean_text(raw or "", max_tokens=model.sequence_length or None)
except InputError as exc:
    widgets.show_error(str(exc))
    st.stop()
for notice in cleaned.notices:
    st.info(notice, icon="ℹ️")
text = cleaned.text

probabilities = api.predict(model, [text])[0]
predicted = int(probabilities.argmax())
left, right = st.columns([1, 1], gap="large")
with left:
    st.subheader("Prediction")
    st.markdown(f"The model says **{text_views.markdown_literal(model.classes[predicted])}** "
                f"({probabilities[predicted]:.1%}).")
    method_params.follow_prediction("text_target", model, text, predicted)
    target = st.selectbox("Explain class", range(len(model.classes)), key="text_target",
                          format_func=lambda i: model.classes[i],
                          help="Every method explains evidence for this class "
                               "(the predicted one when the text changes).")
with right:
    chart = widgets.probability_chart(model.classes, probabilities).update_yaxes(type="category")
    st.plotly_chart(chart, width="stretch", key="text_probs")

rationale = None
if source == "Pick a sample headline" and sample_data is not None and sample_data.rationales is not None:
    rationale = tuple(sample_data.rationales[samples.index(raw)])
task = text_views.TextTask(model, text, tuple(text_views.display_words(model, text, model.tokenize(text))), target,
                           rationale)
available = registry.available(model)
methods = [m for m in ("gradcam", "shap", "lime") if m in available]

st.subheader("Which words mattered")
# Only the open tab runs (lazy tabs); each tab's body is a fragment with its own settings.
tabs = st.tabs([method_params.TITLES[m] for m in methods] + ["Compare"], key="text_view", on_change="rerun",
               bind="query-params")  # shareable links: ?text_view=SHAP
for method, tab in zip(methods, tabs):
    with tab:
        if tab.open is not False:
            text_views.method_section(task, method)
with tabs[-1]:
    if tabs[-1].open is not False:
        text_views.compare_section(task, methods)
