"""The Compare view: every method's map for the same input and class, on one colour scale,
with how far each pair agrees in one plain sentence.

One colour scale: each map is divided by its own largest |value|, so every map runs from
-1 (strongest evidence against the class, blue) through 0 (white) to +1 (strongest evidence
for it, orange), and all are drawn with the same diverging colours. The methods measure in
different units (Grad-CAM is unitless and never negative, SHAP is probability per pixel,
LIME probability per superpixel), so a shared absolute scale would only show whose numbers
happen to be larger; the shared relative scale compares *where* each method puts its evidence.

Agreement (measured in the core, `workbench.explaining.agreements`): the rank correlation of the two maps over all
pixels (or words), and the overlap of their top regions: of the positions either method
ranks in its top 10% (top 20% of words for text), the share ranked there by both.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import streamlit as st

from explainers import render
from ui.kit.overlay import grey_underlay
from workbench.explaining import Comparison, PairAgreement, agreements

__all__ = ["PairAgreement", "agreement_sentence", "agreement_table", "agreements", "grey_underlay", "image_comparison",
           "legend", "normalised", "shared_scale_overlay", "unsettled_note"]

LEGEND = ("against the class", "for the class")


def normalised(values: np.ndarray) -> np.ndarray:
    """values / max |values|, in [-1, 1] (an all-zero map stays zero)."""
    values = np.nan_to_num(np.asarray(values, dtype=np.float64))
    peak = float(np.abs(values).max()) if values.size else 0.0
    return values / peak if peak > 0 else np.zeros_like(values)


def shared_scale_overlay(image: np.ndarray, values: np.ndarray, alpha: float) -> np.ndarray:
    """The grey image blended with the map drawn on the shared diverging scale [-1, 1]."""
    image = grey_underlay(image)
    colours = render.heatmap_to_rgb(normalised(values), image.shape[:2], signed=True, max_abs=1.0)
    blended = (1.0 - alpha) * image.astype(np.float64) + alpha * colours.astype(np.float64)
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)


def _strength(rho: float) -> str:
    if np.isnan(rho):
        return "cannot be compared"
    if rho >= 0.7:
        return "agree strongly"
    if rho >= 0.4:
        return "agree moderately"
    if rho >= 0.1:
        return "agree weakly"
    if rho > -0.1:
        return "do not agree"
    return "contradict each other"


def agreement_sentence(pair: PairAgreement, unit: str = "pixels") -> str:
    """One plain sentence, e.g. 'SHAP and LIME agree moderately: they rank the pixels in a
    similar order (rank correlation 0.52), and their top 10% regions share 31% of their pixels.'"""
    strength = _strength(pair.rank_correlation)
    if strength == "cannot be compared":
        return f"{pair.first} and {pair.second} cannot be compared: there is nothing to rank."
    if unit == "words":
        top = (f"they share {pair.shared} of their {pair.top_k} strongest words" if pair.top_k > 1
               else ("their strongest word is the same" if pair.shared else "their strongest words differ"))
    else:
        top = f"of the {unit} either one ranks in its top 10%, {pair.top_overlap:.0%} are in both"
    rho = pair.rank_correlation
    order = "a similar" if rho >= 0.1 else ("an unrelated" if rho > -0.1 else "the opposite")
    return (f"{pair.first} and {pair.second} {strength}: they rank the {unit} in {order} order "
            f"(rank correlation {pair.rank_correlation:+.2f}), and {top}.")


def legend() -> None:
    st.html(render.diverging_legend_html(*LEGEND))


def agreement_table(pairs: Sequence[PairAgreement], unit: str) -> None:
    st.markdown("**How far the methods agree**")
    st.dataframe(
        [
            {"Pair": f"{p.first} vs {p.second}", "Rank correlation": round(p.rank_correlation, 2),
             "Top overlap": round(p.top_overlap, 2)}
            for p in pairs
        ],
        hide_index=True, width="stretch",
        column_config={
            "Rank correlation": st.column_config.NumberColumn(
                help="Spearman correlation of the two maps: 1 = same order, 0 = unrelated, -1 = reversed."),
            "Top overlap": st.column_config.NumberColumn(
                help="Of the positions either method ranks in its top share, the fraction ranked there by both "
                     "(intersection over union)."),
        },
    )
    for pair in pairs:
        st.markdown(f"- {agreement_sentence(pair, unit)}")


def unsettled_note(comparison: Comparison) -> None:
    """A warning above the agreement table when a method's map had not settled."""
    note = comparison.unsettled_note()
    if note:
        st.caption(f"⚠️ {note}")


def image_comparison(display: np.ndarray, comparison: Comparison, alpha: float) -> None:
    """The maps side by side on the shared scale, the legend, and the agreement table."""
    columns = st.columns(len(comparison.results))
    for column, result, title in zip(columns, comparison.results, comparison.titles):
        column.image(shared_scale_overlay(display, result.explanation.values, alpha),
                     caption=f"{title} · {result.caption()}", width="stretch")
    legend()
    st.caption("Each map is divided by its own largest |value|, so all of them share one colour scale from "
               "−1 (blue, strongest evidence against the class) to +1 (orange, strongest evidence for it), "
               "drawn over a grey copy of the image. Grad-CAM has no negative side. The colours compare where "
               "each method puts its evidence, not how much: the methods measure in different units.")
    unsettled_note(comparison)
    agreement_table(comparison.agreements, "pixels")
