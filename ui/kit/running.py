"""Explaining one input from a page: the core call, with a spinner that says what is happening."""
from __future__ import annotations

from typing import Any

import streamlit as st

from foundation.types import Modality
from models.loaded import LoadedModel
from ui import method_params
from workbench import api, warmup


def current_choice(prefix: str, method: str) -> method_params.MethodChoice:
    """A tab's method with its current settings, without rendering them: for a tab with variants
    (Grad-CAM's tab also offers Grad-CAM++) the variant the user picked there."""
    return method_params.choice(prefix, method_params.chosen_variant(prefix, method))


def explain(model: LoadedModel, chosen: method_params.MethodChoice, model_input: Any, target: int,
            ground_truth: Any = None, *, spinner: bool = True) -> api.ExplainedInput:
    """`api.explain_input` with the method and settings the user chose (cached in the core)."""
    if chosen.method == "shap":
        method_params.wait_for_shap_warm_up()
    if not spinner:
        return _explain(model, chosen, model_input, target, ground_truth)
    unit = "words" if model.modality is Modality.TEXT else "regions"
    with st.spinner(f"Running {chosen.describe()}: hiding {unit} and asking the model again…"):
        return _explain(model, chosen, model_input, target, ground_truth)


def _explain(model: LoadedModel, chosen: method_params.MethodChoice, model_input: Any, target: int,
             ground_truth: Any) -> api.ExplainedInput:
    with warmup.busy():  # someone waits for this map: shap's background warm-up holds back
        return api.explain_input(model, chosen.method, model_input, target, seed=chosen.seed,
                                 params=dict(chosen.params), ground_truth=ground_truth)
