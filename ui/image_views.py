"""The method tabs of the Explain image page: Grad-CAM, SHAP, LIME and Compare.

Each tab body is a fragment: changing a method's settings reruns that tab alone, not the
prediction above it or the other methods. Results come from `workbench.api.explain`, cached
per (model version, input, method, parameters, class, seed), so a repeat is instant.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st

from explainers import render
from models.loaded import LoadedModel
from ui import compare_views, method_params, text_views
from ui.explanation_footer import comparison_report_button, explanation_footer

HOW_IT_WORKS = {
    "gradcam": "Warm colours mark the regions that raised the score of the chosen class most. Grad-CAM is "
               "coarse: it sees the last convolutional layer's grid, not single pixels. Grad-CAM++ spreads the "
               "credit over several parts of the object.",
    "shap": "SHAP hides regions (blurred or painted over) in many combinations and shares the change in the "
            "class probability fairly among them. Orange regions raised the probability, blue ones lowered it.",
    "lime": "LIME switches superpixels on and off at random, fits a weighted linear model to the model's answers "
            "and shows its weights. Orange superpixels raised the probability, blue ones lowered it.",
}


@dataclass(frozen=True)
class ImageTask:
    """What every tab explains: one image, one class, shown at one size and opacity."""

    model: LoadedModel
    pixels: np.ndarray  # the chosen image (uint8 RGB, any size; api.explain resizes it)
    display: np.ndarray  # the same image enlarged for the screen
    target: int
    target_md: str  # the class name, escaped for Markdown
    alpha: float
    ground_truth: Any = None  # object / cue masks of a sample image, for the trust panel

    def compute(self, chosen: method_params.MethodChoice, spinner: bool = True) -> method_params.Computed:
        run = method_params.compute_with_spinner if spinner else method_params.compute
        return run(self.model, chosen, self.pixels, self.target)


def gradcam_choice() -> method_params.MethodChoice:
    return method_params.choice("image", method_params.value("image", "cam_method"))


@st.fragment
def gradcam_section(task: ImageTask) -> None:
    picture, settings = st.columns([1, 1], gap="large")
    with settings:
        st.radio("Method", ["gradcam", "gradcam++"], horizontal=True, key="cam_method",
                 format_func=method_params.TITLES.get)
        colormap = st.selectbox("Colour map", list(render.COLORMAPS), key="colormap")
        st.caption(HOW_IT_WORKS["gradcam"])
    with picture:
        result = task.compute(gradcam_choice())
        overlay = render.overlay_heatmap(task.display, result.explanation.values, alpha=task.alpha, colormap=colormap)
        # The caption starts with the method's name ("gradcam for …"): the browser tests find the overlay by it.
        st.image(overlay, caption=f"{result.explanation.method} for “{task.target_md}” · {result.caption()}",
                 width=360)
    explanation_footer(task.model, result.explanation, task.pixels, task.ground_truth, key="trust_gradcam")


@st.fragment
def perturbation_section(task: ImageTask, method: str) -> None:
    """SHAP or LIME: settings on the right, the signed map on the left."""
    picture, settings = st.columns([1, 1], gap="large")
    with settings:
        chosen = method_params.shap_widgets("image") if method == "shap" else method_params.lime_widgets("image")
        st.caption(HOW_IT_WORKS[method])
        st.html(text_views.legend_html())
    with picture:
        result = task.compute(chosen)
        # Over a grey copy of the image, so orange and blue read as the map's colours, not the picture's.
        overlay = render.overlay_heatmap(compare_views.grey_underlay(task.display), result.explanation.values,
                                         alpha=task.alpha, signed=True)
        st.image(overlay, caption=f"{chosen.title} for “{task.target_md}” · {result.caption()}", width=360)
    st.caption(f"Settings: {chosen.describe()}.")
    explanation_footer(task.model, result.explanation, task.pixels, task.ground_truth, key=f"trust_{method}")


@st.fragment
def compare_section(task: ImageTask, with_gradcam: bool) -> None:
    """Every method with its current settings, computed one after the other with progress."""
    methods = ([gradcam_choice()] if with_gradcam else []) + [method_params.choice("image", m) for m in ("shap", "lime")]
    results: list[Any] = []
    with st.status(f"Explaining “{task.target_md}” with {len(methods)} methods…", expanded=True) as status:
        progress = st.progress(0.0)
        for i, method in enumerate(methods):
            progress.progress(i / len(methods), text=f"{i + 1}/{len(methods)}: {method.describe()}…")
            if method.method == "shap":
                method_params.wait_for_shap_warm_up()
            results.append(task.compute(method, spinner=False))
            st.write(f"{method.title}: {results[-1].caption()}")
        progress.progress(1.0, text="done")
        status.update(label=f"{len(methods)} explanations of “{task.target_md}” ready", state="complete",
                      expanded=False)
    compare_views.image_comparison(
        task.display, [r.explanation for r in results], [m.title for m in methods],
        [r.caption() for r in results], task.alpha,
    )
    st.caption("Settings: " + " · ".join(m.describe() for m in methods) + ". Change them in each method's tab.")
    explanations = [r.explanation for r in results]
    titles = [m.title for m in methods]
    comparison_report_button(task.model, explanations, titles, task.pixels,
                             compare_views.agreements(explanations, titles), key="image_compare_report")
