"""Explain image: pick or upload an image, see the prediction and where the model looked."""
import streamlit as st

from explainers import registry, render
from ui import image_inputs, image_views, method_params, sidebar, text_views, widgets
from workbench import api

st.title("🖼️ Explain image")
model = sidebar.selected_model("image")
if model is None:
    st.stop()
method_params.keep_state("image")

chosen = image_inputs.choose_image(model)
if chosen is None:
    st.stop()

probabilities = api.predict(model, [chosen.pixels])[0]
predicted = int(probabilities.argmax())

left, right = st.columns([1, 1], gap="large")
with left:
    st.subheader("Input")
    st.image(render.upscale_for_display(chosen.pixels), caption=chosen.caption, width=256)
with right:
    st.subheader("Prediction")
    st.markdown(f"The model says **{text_views.markdown_literal(model.classes[predicted])}** "
                f"({probabilities[predicted]:.1%}).")
    chart = widgets.probability_chart(model.classes, probabilities)
    st.plotly_chart(chart.update_yaxes(type="category"), width="stretch")  # class names like "1" stay labels

st.subheader("Why: where the model looked")
c1, c2 = st.columns(2)
method_params.follow_prediction("target_class", model, chosen.pixels, model.classes[predicted])
target = c1.selectbox("Explain class", model.classes, key="target_class",
                      help="Every method shows evidence for this class (the predicted one when the image changes).")
alpha = c2.slider("Overlay opacity", 0.0, 1.0, 0.45, 0.05, key="overlay_alpha")
target_index = model.classes.index(target)
task = image_views.ImageTask(model, chosen.pixels, render.upscale_for_display(chosen.pixels), target_index,
                             text_views.markdown_literal(target), alpha,  # class names are shown literally
                             chosen.ground_truth)
has_gradcam = "gradcam" in registry.available(model)

# Only the open tab runs (lazy tabs); each tab's body is a fragment with its own settings.
gradcam_tab, shap_tab, lime_tab, compare_tab = st.tabs(
    ["Grad-CAM", "SHAP", "LIME", "Compare"], key="image_view", on_change="rerun",
    bind="query-params",  # shareable links: ?image_view=Compare
)
with gradcam_tab:
    if gradcam_tab.open is not False:
        if has_gradcam:
            image_views.gradcam_section(task)
        else:
            st.info("Grad-CAM needs a convolution layer, and this model has none. Try SHAP or LIME.")
with shap_tab:
    if shap_tab.open is not False:
        image_views.perturbation_section(task, "shap")
with lime_tab:
    if lime_tab.open is not False:
        image_views.perturbation_section(task, "lime")
with compare_tab:
    if compare_tab.open is not False:
        image_views.compare_section(task, has_gradcam)
