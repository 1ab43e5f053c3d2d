"""Explain text: type, paste or pick a headline; see the prediction and which words drove it."""
import streamlit as st

from ui import explain_reasons, kit, method_params, sidebar, text_inputs, text_views
from workbench import api

st.title("📝 Explain text")
model = sidebar.selected_model("text")
if model is None:
    st.stop()
method_params.keep_state("text")

chosen = text_inputs.choose_text(model)
if chosen is None:
    st.stop()
text = chosen.text

probabilities = api.predict(model, [text])[0]
predicted = int(probabilities.argmax())
left, right = st.columns([1, 1], gap="large")
with left:
    st.subheader("Prediction")
    kit.prediction_sentence(model.classes, probabilities)
    method_params.follow_prediction("text_target", model, text, predicted)
    target = st.selectbox("Explain class", range(len(model.classes)), key="text_target",
                          format_func=lambda i: model.classes[i],
                          help="Every method explains evidence for this class "
                               "(the predicted one when the text changes).")
with right:
    kit.probability_bars(model.classes, probabilities)

task = text_views.TextTask(model, text, tuple(text_views.display_words(model, text, model.tokenize(text))), target,
                           chosen.rationale)

st.subheader("Which words mattered")
# One tab per method the explainers offer for this model (shareable: ?text_view=SHAP), then Compare.
kit.method_tabs(api.method_tabs(model), key="text_view",
                show_method=lambda method: text_views.method_section(task, method),
                show_compare=lambda methods: text_views.compare_section(task, methods))

# Issue 17: mark the words the model should not rely on (dataset samples only; their own text).
explain_reasons.reason_section(model, chosen.example_text, chosen.dataset, chosen.split, chosen.example_id)
