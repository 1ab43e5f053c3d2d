"""Explaining one input from a page: the core call, with a spinner that says what is happening,
and the caption that says how far a method in rounds (SHAP, LIME) has got.

SHAP and LIME run in rounds of growing budget and stop once the map is stable (explainers.rounds).
A page passes `on_round` to draw each partial map as it arrives (the first one after the first
round, then refined), and writes `rounds_caption` under it: "refining… (200 of 500 evaluations)",
then "stable after 300 of 500 evaluations", "full budget: 500 evaluations" (asked for), or, when
the rounds spent the budget with the map still changing, a warning that its details may be noise.
"""
from __future__ import annotations

from typing import Any, Callable

import streamlit as st

from explainers.rounds import rounds_summary
from foundation.types import Explanation, Modality
from models.loaded import LoadedModel
from ui import method_params
from workbench import api, warmup

OnRound = Callable[[int, Explanation], None]


def current_choice(prefix: str, method: str) -> method_params.MethodChoice:
    """A tab's method with its current settings, without rendering them: for a tab with variants
    (Grad-CAM's tab also offers Grad-CAM++) the variant the user picked there."""
    return method_params.choice(prefix, method_params.chosen_variant(prefix, method))


def rounds_caption(explanation: Explanation) -> str | None:
    """How far the rounds got (`explainers.rounds.rounds_summary`); None for a method without rounds."""
    return rounds_summary(explanation.extras or {})


def explain(model: LoadedModel, chosen: method_params.MethodChoice, model_input: Any, target: int,
            ground_truth: Any = None, *, spinner: bool = True, on_round: OnRound | None = None) -> api.ExplainedInput:
    """`api.explain_input` with the method and settings the user chose (cached in the core);
    `on_round(round_index, partial_explanation)` sees each round's map of SHAP and LIME."""
    if chosen.method == "shap":
        method_params.wait_for_shap_warm_up()
    if not spinner:
        return _explain(model, chosen, model_input, target, ground_truth, on_round)
    unit = "words" if model.modality is Modality.TEXT else "regions"
    with st.spinner(f"Running {chosen.describe()}: hiding {unit} and asking the model again…"):
        return _explain(model, chosen, model_input, target, ground_truth, on_round)


def _explain(model: LoadedModel, chosen: method_params.MethodChoice, model_input: Any, target: int,
             ground_truth: Any, on_round: OnRound | None = None) -> api.ExplainedInput:
    with warmup.busy():  # someone waits for this map: shap's background warm-up holds back
        return api.explain_input(model, chosen.method, model_input, target, seed=chosen.seed,
                                 params=dict(chosen.params), ground_truth=ground_truth, on_round=on_round)
