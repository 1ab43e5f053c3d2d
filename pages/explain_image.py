"""Explain image: pick or upload an image, see the prediction and where the model looked."""
import streamlit as st

from ui import (explain_reasons, first_page_view, image_inputs, image_views, kit, loaders, method_params, sidebar,
                text_views)
from workbench import api

st.title("🖼️ Explain image")
model = sidebar.selected_model("image", preview=first_page_view.preview)  # the start-up's first map meanwhile
if model is None:
    st.stop()
method_params.keep_state("image")

chosen = image_inputs.choose_image(model)
if chosen is None:
    st.stop()
model_input = loaders.prepared_input(model, chosen.pixels)  # once per rerun: every tab reuses it

probabilities = api.predict(model, [model_input])[0]
predicted = int(probabilities.argmax())

left, right = st.columns([1, 1], gap="large")
with left:
    st.subheader("Input")
    st.image(kit.display_image(chosen.pixels), caption=chosen.caption, width=256)
with right:
    st.subheader("Prediction")
    kit.prediction_block(model.classes, probabilities)

st.subheader("Why: where the model looked")
c1, c2 = st.columns(2)
method_params.follow_prediction("target_class", model, chosen.pixels, model.classes[predicted])
target = c1.selectbox("Explain class", model.classes, key="target_class",
                      help="Every method shows evidence for this class (the predicted one when the image changes).")
alpha = c2.slider("Overlay opacity", 0.0, 1.0, 0.45, 0.05, key="overlay_alpha")
task = image_views.ImageTask(model, model_input, kit.display_image(chosen.pixels), model.classes.index(target),
                             text_views.markdown_literal(target), alpha,  # class names are shown literally
                             chosen.ground_truth)

# One tab per method the explainers offer for this model (shareable: ?image_view=Compare), then Compare.
kit.method_tabs(api.method_tabs(model), key="image_view",
                show_method=lambda method: image_views.method_section(task, method),
                show_compare=lambda methods: image_views.compare_section(task, methods))

# Issue 17: mark what the model should not rely on, next to the map just seen (dataset samples only).
explain_reasons.reason_section(model, model_input, chosen.dataset, chosen.split, chosen.example_id)
