"""Explain image: pick or upload an image, see the prediction and where the model looked."""
import streamlit as st

from explainers import render
from ui import image_inputs, sidebar, widgets
from workbench import api

st.title("🖼️ Explain image")
model = sidebar.selected_model("image")
if model is None:
    st.stop()

chosen = image_inputs.choose_image(model)
if chosen is None:
    st.stop()

probabilities = api.predict(model, [chosen.pixels])[0]
predicted = int(probabilities.argmax())

left, right = st.columns([1, 1], gap="large")
with left:
    st.subheader("Input")
    st.image(render.upscale_for_display(chosen.pixels), caption=chosen.caption, width=320)
with right:
    st.subheader("Prediction")
    st.markdown(f"The model says **{model.classes[predicted]}** ({probabilities[predicted]:.1%}).")
    st.plotly_chart(widgets.probability_chart(model.classes, probabilities), width="stretch")

st.subheader("Where the model looked")
c1, c2, c3, c4 = st.columns(4)
target = c1.selectbox("Explain class", model.classes, index=predicted, key="target_class",
                      help="Grad-CAM shows evidence for this class.")
method = c2.radio("Method", ["gradcam", "gradcam++"], horizontal=True, key="cam_method",
                  format_func=lambda m: {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++"}[m])
alpha = c3.slider("Overlay opacity", 0.0, 1.0, 0.45, 0.05, key="overlay_alpha")
colormap = c4.selectbox("Colour map", ["jet", "turbo", "viridis", "inferno"], key="colormap")

with st.spinner("Computing Grad-CAM…"):
    explanation = api.explain(model, method, [chosen.pixels], [model.classes.index(target)])[0]

display = render.upscale_for_display(chosen.pixels)
overlay = render.overlay_heatmap(display, explanation.values, alpha=alpha, colormap=colormap)
a, b = st.columns(2)
a.image(display, caption="Input", width=320)
b.image(overlay, caption=f"{explanation.method} for “{target}” · {explanation.seconds * 1000:.0f} ms", width=320)
st.caption("Warm colours mark the regions that raised the score of the chosen class most. "
           "Grad-CAM is coarse: it sees the last convolutional layer's grid, not single pixels.")
