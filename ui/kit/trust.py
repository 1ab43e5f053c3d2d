"""The trust panel shown under an explanation: figures, a one-sentence verdict, the randomisation
check as a small curve, the deletion/insertion curves on demand.

It renders what the core measured (`ExplainedInput.trust()` and `.sanity()`, cached per model
version, explanation, input and ground truth); it measures nothing itself.

The randomisation check (scramble the model layer by layer from the top and explain again) runs
with the figures for Grad-CAM, one backward pass per layer. For SHAP and LIME it re-runs the
whole method once per layer (10-30 s on the sample models), so it waits behind a button that
says how long it takes: a teacher in front of a class decides when the class waits for it, and
the next map they ask for is never slowed by a check running in the background on the same CPU.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from explainers.metrics import BASELINE_LABELS, BASELINES
from foundation.types import Modality
from workbench import preload, warmup
from workbench.explaining import SANITY_THRESHOLD, ExplainedInput, SanityCascade, TrustReport

START_UP_WAIT_S = 120.0
_LEVEL_ICON = {"good": "✅", "mixed": "🟡", "poor": "⚠️", "warning": "🚩"}
SANITY_HELP = ("Scramble the model's weighted layers one at a time from the top (the output layer) down and "
               "explain again each time, with the same settings, class and seed (Adebayo et al. 2018). A map of "
               "the model must change; one that stays the same describes the input, not the model. "
               f"Passes when the similarity falls below {SANITY_THRESHOLD} as soon as the top layer is scrambled.")


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


def sanity_figure(cascade: SanityCascade) -> go.Figure:
    """Similarity to the intact model's map as layers are scrambled from the top down (cumulative)."""
    steps = cascade.cascade
    x = ["none"] + [label if i == 0 else f"+ {label}" for i, label in enumerate(_short(steps.layers))]
    lines = [("Spearman, absolute maps", "spearman_abs", "#2471a3", "solid"),
             ("Spearman, signed maps", "spearman", "#7d3c98", "dot")]
    if np.allclose(steps.spearman, steps.spearman_abs):  # no negative values (Grad-CAM): one line, not two on top
        lines = [("Spearman rank correlation", "spearman_abs", "#2471a3", "solid")]
    if steps.ssim is not None:
        lines.append(("SSIM", "ssim", "#148f77", "dash"))
    figure = go.Figure()
    lowest = 0.0
    for name, field, colour, dash in lines:
        y = [1.0] + [float(v) for v in steps.mean(field)]
        lowest = min(lowest, *y)
        figure.add_trace(go.Scatter(x=x, y=y, name=name, mode="lines+markers", line=dict(color=colour, dash=dash),
                                    hovertemplate="%{x}: %{y:.2f}<extra>" + name + "</extra>"))
    figure.add_hline(y=SANITY_THRESHOLD, line=dict(color="#c0392b", width=1, dash="dash"),
                     annotation_text=f"same map above {SANITY_THRESHOLD}", annotation_position="top right",
                     annotation_font=dict(size=11, color="#c0392b"))
    figure.update_layout(
        height=260, margin=dict(l=10, r=10, t=10, b=10), legend=dict(orientation="h", y=-0.35),
        xaxis=dict(title="layers scrambled, from the top down", type="category"),
        yaxis=dict(title="similarity to the real map", range=[min(-0.05, lowest - 0.05), 1.08]),
    )
    return figure


def _short(paths: tuple[str, ...]) -> list[str]:
    """Layer paths without their nested model's prefix ("backbone/conv4" -> "conv4") where that stays unique."""
    short = [path.rsplit("/", 1)[-1] for path in paths]
    return short if len(set(short)) == len(short) else list(paths)


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
    baseline = _baseline_choice(result, key)
    report = _measure(result, baseline)
    cascade = result.sanity(compute=False)  # measured with the report (Grad-CAM) or on an earlier click
    unit = "words" if result.model.modality is Modality.TEXT else "pixels"
    with st.container(border=True):
        trust_figures(result.explanation.method, report.figures, report.level, report.verdict, unit,
                      (cascade.outcome, cascade.top_similarity) if cascade is not None else None)
        _sanity_section(result, cascade, key)
        with st.expander("Show curves"):
            st.plotly_chart(curves_figure(report), key=f"{key}_curves", width="stretch")
            st.caption(f"Removed {unit} become {report.curves.baseline}. Computed in {report.seconds:.2f} s.")
    return report


def trust_figures(method: str, figures: dict[str, float], level: str, verdict: str, unit: str,
                  sanity: tuple[str, float] | None) -> None:
    """The panel's heading, its four figures and the verdict, from measured values (the live panel's,
    or the start-up's first map, ui/first_page_view.py). sanity: (outcome, top-layer similarity)."""
    st.markdown(f"**Can I trust this {method} map?** {_LEVEL_ICON.get(level, '')}")
    columns = st.columns(4)
    _area_metric(columns[0], "Deletion area", figures["deletion_auc"], figures["random_deletion_auc"],
                 lower_is_better=True, help=f"Remove the most important {unit} first and watch the probability fall. "
                 "Smaller is better; the difference is against removing them in random order.")
    _area_metric(columns[1], "Insertion area", figures["insertion_auc"], figures["random_insertion_auc"],
                 lower_is_better=False, help=f"Start from a blank input and restore the most important {unit} first. "
                 "Larger is better; the difference is against a random order.")
    _localisation_metric(columns[2], figures)
    if sanity is not None:
        outcome, top_similarity = sanity
        columns[3].metric("Sanity check", outcome, help=SANITY_HELP + " With the top layer scrambled this map kept a "
                          f"similarity of {top_similarity:.2f}.")
    else:
        agreement = [v for k, v in figures.items() if k.startswith("agreement_") and k.endswith("_rank")]
        if agreement:
            columns[3].metric("Agreement", f"{np.mean(agreement):.2f}",
                              help="Rank correlation with the other methods' maps (1 = same ordering).")
    st.markdown(verdict)


def _baseline_choice(result: ExplainedInput, key: str) -> str:
    """What hidden pixels or words become in the deletion and insertion tests (default first).

    The choice matters: SHAP's image masker blurs and both SHAP and LIME remove words, so the
    default baselines give them a head start (see the README, "Which baseline?")."""
    choices = BASELINES[result.model.modality]
    unit = "words" if result.model.modality is Modality.TEXT else "pixels"
    column = st.columns([1, 2])[0]  # a small control: the panel below is what matters
    return column.selectbox(f"Hidden {unit} become", choices, key=f"{key}_baseline",
                        format_func=lambda name: BASELINE_LABELS.get(name, name),
                        help="The deletion and insertion tests hide the most important "
                        f"{unit} first. What replaces them changes the figures, and can change which method "
                        "looks best: SHAP's image masker itself blurs, and SHAP and LIME remove words.")


def _measure(result: ExplainedInput, baseline: str) -> TrustReport:
    """The trust figures, with a "measuring…" note in their place meanwhile. The map above was sent
    to the browser before this runs, so measuring never delays the map. On a fresh server the
    start-up is still paying the trust figures' first-call costs on this very map (workbench/preload.py,
    its second phase): wait for it rather than compete with it for the two cores."""
    with st.spinner(f"Can I trust this {result.explanation.method} map? measuring…"):
        preload.map_shown()  # the map is on screen: the start-up's trust phase may run now
        preload.wait(START_UP_WAIT_S)  # a start-up stuck beyond that: measure here all the same
        with warmup.busy():
            return result.trust(baseline)


def _sanity_section(result: ExplainedInput, cascade: SanityCascade | None, key: str) -> None:
    """The randomisation check's curve and verdict; for SHAP and LIME a button runs it first."""
    if cascade is None:
        seconds = max(1, round(result.sanity_seconds()))
        if not st.button(f"Run the randomisation check (about {seconds} s)", key=f"{key}_sanity", help=SANITY_HELP):
            return
        with st.spinner("Scrambling the model layer by layer and explaining again…"), warmup.busy():
            cascade = result.sanity()
        st.rerun()  # draw the panel again with the check's figures and verdict in place
    st.markdown(f"**Randomisation check.** {cascade.sentence()}", help=SANITY_HELP)
    st.plotly_chart(sanity_figure(cascade), key=f"{key}_sanity_curve", width="stretch")


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
