"""The trust panel shown under an explanation: figures, a one-sentence verdict, the curves on demand.

It renders what the core measured (`ExplainedInput.trust()`, cached per model version,
explanation, input and ground truth); it measures nothing itself.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from foundation.types import Modality
from workbench import warmup
from workbench.explaining import SANITY_THRESHOLD, ExplainedInput, TrustReport

_LEVEL_ICON = {"good": "✅", "mixed": "🟡", "poor": "⚠️", "warning": "🚩"}


def curves_figure(report: TrustReport) -> go.Figure:
    """Deletion and insertion curves (solid) with their random-order references (dotted)."""
    curves = report.curves
    x = curves.fractions * 100
    figure = go.Figure()
    lines = [
        ("Deletion", curves.deletion[0], "#c0392b", "solid"),
        ("Deletion, random order", curves.random_deletion[0], "#c0392b", "dot"),
        ("Insertion", curves.insertion[0], "#2471a3", "solid"),
        ("Insertion, random order", curves.random_insertion[0], "#2471a3", "dot"),
    ]
    for name, y, colour, dash in lines:
        figure.add_trace(go.Scatter(x=x, y=y, name=name, mode="lines", line=dict(color=colour, dash=dash),
                                    hovertemplate="%{x:.0f}%: %{y:.3f}<extra>" + name + "</extra>"))
    figure.update_layout(
        height=300, margin=dict(l=10, r=10, t=10, b=10), legend=dict(orientation="h", y=-0.25),
        xaxis=dict(title="% of the input removed (deletion) or restored (insertion)"),
        yaxis=dict(title="probability of the class", range=[0, 1.02]),
    )
    return figure


def _area_metric(column: Any, label: str, value: float, reference: float, *, lower_is_better: bool, help: str) -> None:
    column.metric(label, f"{value:.2f}", delta=f"{value - reference:+.2f} vs random",
                  delta_color="inverse" if lower_is_better else "normal", help=help)


def trust_panel(result: ExplainedInput, *, key: str = "trust") -> TrustReport:
    """Show how far to trust one explanation, right under it; returns the TrustReport.

    Renders the deletion/insertion areas against a random order, localisation and sanity
    figures where they apply, a one-sentence verdict, and the curves in an expander.
    Measured on the first request (about a second for Grad-CAM on the sample models), then
    served from the core's cache. key: a prefix for widget keys when several panels share a page.
    """
    report = _measure(result)
    figures = report.figures
    unit = "words" if result.model.modality is Modality.TEXT else "pixels"
    explanation = result.explanation
    with st.container(border=True):
        st.markdown(f"**Can I trust this {explanation.method} map?** {_LEVEL_ICON.get(report.level, '')}")
        columns = st.columns(4)
        _area_metric(columns[0], "Deletion area", figures["deletion_auc"], figures["random_deletion_auc"],
                     lower_is_better=True, help=f"Remove the most important {unit} first and watch the probability fall. "
                "Smaller is better; the difference is against removing them in random order.")
        _area_metric(columns[1], "Insertion area", figures["insertion_auc"], figures["random_insertion_auc"],
                     lower_is_better=False, help=f"Start from a blank input and restore the most important {unit} first. "
                "Larger is better; the difference is against a random order.")
        _localisation_metric(columns[2], figures)
        if "sanity_rank_correlation" in figures:
            value = figures["sanity_rank_correlation"]
            columns[3].metric("Sanity check", "fails" if report.sanity and report.sanity.flagged else "passes",
                              help="Scramble the model's top layers and explain again. A trustworthy map changes; "
                              f"this one kept a rank correlation of {value:.2f} (flagged above {SANITY_THRESHOLD}).")
        else:
            agreement = [v for k, v in figures.items() if k.startswith("agreement_") and k.endswith("_rank")]
            if agreement:
                columns[3].metric("Agreement", f"{np.mean(agreement):.2f}",
                                  help="Rank correlation with the other methods' maps (1 = same ordering).")
        st.markdown(report.verdict)
        with st.expander("Show curves"):
            st.plotly_chart(curves_figure(report), key=f"{key}_curves", width="stretch")
            st.caption(f"Removed {unit} become {report.curves.baseline}. Computed in {report.seconds:.2f} s.")
    return report


def _measure(result: ExplainedInput) -> TrustReport:
    """The trust figures, with a "measuring…" note in their place meanwhile. The map above was sent
    to the browser before this runs, so measuring never delays the map."""
    with st.spinner(f"Can I trust this {result.explanation.method} map? measuring…"), warmup.busy():
        return result.trust()


def _localisation_metric(column: Any, figures: dict[str, float]) -> None:
    if "cue_mass" in figures:
        column.metric("On the corner mark", f"{figures['cue_mass']:.0%}",
                      help=f"Share of the map on the planted mark, which covers {figures['cue_share']:.1%} of the image.")
    elif "mask_mass" in figures:
        column.metric("On the object", f"{figures['mask_mass']:.0%}",
                      delta=f"{figures['mask_mass'] - figures['mask_share']:+.0%} vs uniform",
                      help="Share of the map that lies on the object (uniform map: the object's share of the image). "
                      f"Peak on the object: {'yes' if figures.get('pointing_game', 0) >= 0.5 else 'no'} "
                      f"(a random point hits it, with the pointing game's tolerance, "
                      f"{figures.get('pointing_chance', 0):.0%} of the time).")
    elif "rationale_overlap" in figures:
        column.metric("Top words that matter", f"{figures['rationale_overlap']:.0%}",
                      delta=f"{figures['rationale_overlap'] - figures['rationale_chance']:+.0%} vs chance",
                      help="Share of the highest-ranked words that are the words carrying the sentiment.")
