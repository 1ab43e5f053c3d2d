"""The method tabs of the Explain image page: one per method the registry offers, and Compare.

Each tab body is a fragment: changing a method's settings reruns that tab alone, not the
prediction above it or the other methods. SHAP and LIME draw their first map after their first
round and redraw it as the rounds refine it, with how many evaluations they used. Results come from the core (`api.explain_input`),
cached per (model version, input, method, parameters, class, seed), so a repeat is instant.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import streamlit as st

from explainers import render
from foundation.types import Explanation
from models.loaded import LoadedModel
from ui import compare_views, kit, method_params, text_views
from ui.kit.running import OnRound
from workbench import api

HOW_IT_WORKS = {
    "gradcam": "Warm colours mark the regions that raised the score of the chosen class most. Grad-CAM is "
               "coarse: it sees the last convolutional layer's grid, not single pixels. Grad-CAM++ spreads the "
               "credit over several parts of the object.",
    "shap": "SHAP hides regions (blurred or painted over) in many combinations and shares the change in the "
            "class probability fairly among them. Orange regions raised the probability, blue ones lowered it.",
    "lime": "LIME switches superpixels on and off at random, fits a weighted linear model to the model's answers "
            "and shows its weights. Orange superpixels raised the probability, blue ones lowered it.",
}
# Maps that are never negative (evidence for the class only): drawn in a colour map over the picture.
UNSIGNED_METHODS = frozenset({"gradcam", "gradcam++"})


@dataclass(frozen=True)
class ImageTask:
    """What every tab explains: one image, one class, shown at one size and opacity."""

    model: LoadedModel
    model_input: np.ndarray  # the image as the model reads it (prepared once per rerun)
    display: np.ndarray  # the chosen image enlarged for the screen
    target: int
    target_md: str  # the class name, escaped for Markdown
    alpha: float
    ground_truth: Any = None  # object / cue masks of a sample image, for the trust panel

    def explain(self, chosen: method_params.MethodChoice, spinner: bool = True,
                on_round: OnRound | None = None) -> api.ExplainedInput:
        return kit.explain(self.model, chosen, self.model_input, self.target, self.ground_truth, spinner=spinner,
                           on_round=on_round)


def _caption(task: ImageTask, chosen: method_params.MethodChoice, result: api.ExplainedInput) -> str:
    # A colour-map caption starts with the method's name ("gradcam for …"): the browser tests find the overlay by it.
    name = result.explanation.method if chosen.method in UNSIGNED_METHODS else chosen.title
    return f"{name} for “{task.target_md}” · {result.caption()}"


@st.fragment
def method_section(task: ImageTask, method: str) -> None:
    """One method's tab: its settings on the right, its map over the image on the left, trust and report below."""
    signed = method not in UNSIGNED_METHODS
    picture, settings = st.columns([1, 1], gap="large")
    with settings:
        chosen = method_params.widgets("image", method)
        colormap = "jet" if signed else st.selectbox("Colour map", list(render.COLORMAPS), key="colormap")
        st.caption(HOW_IT_WORKS.get(method, ""))
        if signed:
            st.html(text_views.legend_html())
    with picture:
        # SHAP and LIME run in rounds: each round redraws this slot, the first map comes after the first one.
        slot = st.empty()

        def draw(explanation: Explanation, caption: str) -> None:
            overlay = kit.overlay_image(task.display, explanation.values, alpha=task.alpha, signed=signed,
                                        colormap=colormap)
            with slot.container():
                st.image(overlay, caption=caption, width=360)
                progress = kit.rounds_caption(explanation)
                if progress:
                    st.caption(progress)

        partial_caption = f"{chosen.title} for “{task.target_md}”"
        result = task.explain(chosen, on_round=lambda _, partial: draw(partial, partial_caption))
        draw(result.explanation, _caption(task, chosen, result))
    if signed:
        st.caption(f"Settings: {chosen.describe()}.")
    kit.explanation_footer(result, key=f"trust_{method}")


@st.fragment
def compare_section(task: ImageTask, tabs: Sequence[api.MethodTab]) -> None:
    """Every method that can run on the model, with its current settings, computed one after the other."""
    choices = [kit.current_choice("image", tab.method) for tab in tabs if tab.available]
    results: list[api.ExplainedInput] = []
    with st.status(f"Explaining “{task.target_md}” with {len(choices)} methods…", expanded=True) as status:
        progress = st.progress(0.0)
        for i, chosen in enumerate(choices):
            progress.progress(i / len(choices), text=f"{i + 1}/{len(choices)}: {chosen.describe()}…")
            results.append(task.explain(chosen, spinner=False))
            st.write(f"{chosen.title}: {results[-1].caption()}")
        progress.progress(1.0, text="done")
        status.update(label=f"{len(choices)} explanations of “{task.target_md}” ready", state="complete",
                      expanded=False)
    comparison = api.compare(results, [c.title for c in choices])
    compare_views.image_comparison(task.display, comparison, task.alpha)
    st.caption("Settings: " + " · ".join(c.describe() for c in choices) + ". Change them in each method's tab.")
    kit.comparison_report_button(comparison, key="image_compare_report")
