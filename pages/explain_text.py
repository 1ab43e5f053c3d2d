"""Explain text: type, paste or pick a headline; see the prediction and which words drove it."""
import streamlit as st

from explainers import registry
from ui import method_params, sidebar, text_views, widgets
from ui.compare_views import agreement_table, agreements
from workbench import api, datasets, inputs
from workbench.errors import InputError

st.title("📝 Explain text")
model = sidebar.selected_model("text")
if model is None:
    st.stop()
method_params.keep_state("text")

dataset_name = model.manifest.get("dataset")
samples = [str(t) for t in datasets.load(dataset_name, "test").x[:200]] if dataset_name in datasets.names() else []
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
                          help="Every method explains evidence for this class (the predicted one when the text changes).")
with right:
    chart = widgets.probability_chart(model.classes, probabilities).update_yaxes(type="category")
    st.plotly_chart(chart, width="stretch", key="text_probs")

tokens = model.tokenize(text)
words = text_views.display_words(model, text, tokens)
available = registry.available(model)
methods = [m for m in ("gradcam", "shap", "lime") if m in available]
titles = {"gradcam": "Grad-CAM", "shap": "SHAP", "lime": "LIME"}

st.subheader("Which words mattered")
tabs = st.tabs([titles[m] for m in methods] + ["Compare"], key="text_view", on_change="rerun",
               bind="query-params")  # shareable links: ?text_view=SHAP


@st.fragment
def method_section(method: str) -> None:
    if method == "gradcam":
        st.radio("Variant", ["gradcam", "gradcam++"], horizontal=True, key=method_params.key("text", "cam_method"),
                 format_func=method_params.TITLES.get)
        chosen = method_params.choice("text", method_params.value("text", "cam_method"))
    elif method == "shap":
        chosen = method_params.shap_widgets("text")
    else:
        chosen = method_params.lime_widgets("text")
    result = method_params.compute_with_spinner(model, chosen, text, target)
    text_views.show_token_explanation(result.explanation, words, key=f"text_bars_{method}")
    st.caption(f"{chosen.describe()} · for “{text_views.markdown_literal(model.classes[target])}” · {result.caption()}. "
               "Orange words pushed the model towards this class, blue words away from it; "
               "hover a word for its value.")


@st.fragment
def compare_section() -> None:
    chosen = [method_params.choice("text", m if m != "gradcam" else method_params.value("text", "cam_method"))
              for m in methods]
    progress = st.progress(0.0, text="Explaining with every method…")
    rows = []
    for i, choice in enumerate(chosen):
        progress.progress(i / len(chosen), text=f"Running {choice.describe()}…")
        if choice.method == "shap":
            method_params.wait_for_shap_warm_up()
        result = method_params.compute(model, choice, text, target)
        rows.append((choice.title, result.caption(), result.explanation))
    progress.empty()
    text_views.show_token_comparison(rows, words)
    st.caption("Each method's values are divided by its own largest |value|, so all share one colour scale. "
               "Change a method's settings in its own tab.")
    if len(rows) > 1:
        agreement_table(agreements([r[2] for r in rows], [r[0] for r in rows]), "words")


for method, tab in zip(methods, tabs):
    with tab:
        if tab.open is not False:
            method_section(method)
with tabs[-1]:
    if tabs[-1].open is not False:
        compare_section()
