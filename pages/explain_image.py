"""Explain image: pick or upload an image, see the prediction and where the model looked."""
import streamlit as st

from explainers import registry, render
from ui import compare_views, image_inputs, method_params, sidebar, text_views, widgets
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
target_md = text_views.markdown_literal(target)  # class names can be anything: shown literally
display = render.upscale_for_display(chosen.pixels)
has_gradcam = "gradcam" in registry.available(model)

tabs = st.tabs(["Grad-CAM", "SHAP", "LIME", "Compare"], key="image_view", on_change="rerun",
               bind="query-params")  # shareable links: ?image_view=Compare
gradcam_tab, shap_tab, lime_tab, compare_tab = tabs


def gradcam_choice() -> method_params.MethodChoice:
    return method_params.choice("image", method_params.value("image", "cam_method"))


@st.fragment
def gradcam_section() -> None:
    picture, settings = st.columns([1, 1], gap="large")
    with settings:
        st.radio("Method", ["gradcam", "gradcam++"], horizontal=True, key="cam_method",
                 format_func=method_params.TITLES.get)
        colormap = st.selectbox("Colour map", list(render.COLORMAPS), key="colormap")
        st.caption("Warm colours mark the regions that raised the score of the chosen class most. "
                   "Grad-CAM is coarse: it sees the last convolutional layer's grid, not single pixels. "
                   "Grad-CAM++ spreads the credit over several parts of the object.")
    with picture:
        result = method_params.compute_with_spinner(model, gradcam_choice(), chosen.pixels, target_index)
        overlay = render.overlay_heatmap(display, result.explanation.values, alpha=alpha, colormap=colormap)
        # The caption starts with the method's name ("gradcam for …"): the browser tests find the overlay by it.
        st.image(overlay, caption=f"{result.explanation.method} for “{target_md}” · {result.caption()}", width=360)


HOW_IT_WORKS = {
    "shap": "SHAP hides regions (blurred or painted over) in many combinations and shares the change in the "
            "class probability fairly among them. Orange regions raised the probability, blue ones lowered it.",
    "lime": "LIME switches superpixels on and off at random, fits a weighted linear model to the model's answers "
            "and shows its weights. Orange superpixels raised the probability, blue ones lowered it.",
}


@st.fragment
def perturbation_section(method: str) -> None:
    picture, settings = st.columns([1, 1], gap="large")
    with settings:
        chosen_method = method_params.shap_widgets("image") if method == "shap" else method_params.lime_widgets("image")
        st.caption(HOW_IT_WORKS[method])
        st.html(text_views.legend_html())
    with picture:
        result = method_params.compute_with_spinner(model, chosen_method, chosen.pixels, target_index)
        # Over a grey copy of the image, so orange and blue read as the map's colours, not the picture's.
        overlay = render.overlay_heatmap(compare_views.grey_underlay(display), result.explanation.values,
                                         alpha=alpha, signed=True)
        st.image(overlay, caption=f"{chosen_method.title} for “{target_md}” · {result.caption()}", width=360)
    st.caption(f"Settings: {chosen_method.describe()}.")


@st.fragment
def compare_section() -> None:
    methods = ([gradcam_choice()] if has_gradcam else []) + [method_params.choice("image", m) for m in ("shap", "lime")]
    with st.status(f"Explaining “{target_md}” with {len(methods)} methods…", expanded=True) as status:
        progress = st.progress(0.0)
        results = []
        for i, method in enumerate(methods):
            progress.progress(i / len(methods), text=f"{i + 1}/{len(methods)}: {method.describe()}…")
            if method.method == "shap":
                method_params.wait_for_shap_warm_up()
            results.append(method_params.compute(model, method, chosen.pixels, target_index))
            st.write(f"{method.title}: {results[-1].caption()}")
        progress.progress(1.0, text="done")
        status.update(label=f"{len(methods)} explanations of “{target_md}” ready", state="complete", expanded=False)
    compare_views.image_comparison(
        display, [r.explanation for r in results], [m.title for m in methods],
        [r.caption() for r in results], alpha,
    )
    st.caption("Settings: " + " · ".join(m.describe() for m in methods) + ". Change them in each method's tab.")


with gradcam_tab:
    if gradcam_tab.open is not False:
        if has_gradcam:
            gradcam_section()
        else:
            st.info("Grad-CAM needs a convolution layer, and this model has none. Try SHAP or LIME.")
with shap_tab:
    if shap_tab.open is not False:
        perturbation_section("shap")
with lime_tab:
    if lime_tab.open is not False:
        perturbation_section("lime")
with compare_tab:
    if compare_tab.open is not False:
        compare_section()
