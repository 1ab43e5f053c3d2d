"""Under every single explanation: its trust panel and a one-file HTML report."""
from __future__ import annotations

from typing import Any

import streamlit as st

from foundation.types import Explanation, Modality
from models.loaded import LoadedModel
from ui.report_button import report_download_button
from ui.trust_panel import render_trust_panel
from workbench import api, reports


def explanation_footer(model: LoadedModel, explanation: Explanation, item: Any, ground_truth: Any = None,
                       *, key: str) -> None:
    """Trust figures (on by default, switchable) and the report of this explanation.

    item: the raw input (an image at any size, or the cleaned text); images are resized to
    the model's input here, as they were for the explanation.
    """
    model_input = api.prepare_images(model, [item])[0] if model.modality is Modality.IMAGE else item
    sections = [reports.model_section(model), reports.explanation_section(explanation, model_input)]
    if st.toggle("Measure how far to trust this map", value=True, key=f"{key}_on",
                 help="Deletion/insertion curves against a random order, localisation where the truth is "
                      "known and (for Grad-CAM) a sanity check. About a second."):
        report = render_trust_panel(model, explanation, model_input, ground_truth, key=key)
        sections.append(reports.trust_section(
            {k: round(float(v), 4) for k, v in report.figures.items()}, text=report.verdict))
    report_download_button(f"{explanation.method} explanation of {model.name} {model.version}", sections,
                           key=f"{key}_report")


def comparison_report_button(model: LoadedModel, explanations: list[Explanation], titles: list[str], item: Any,
                             agreement_rows: list[Any], *, key: str) -> None:
    """The compare view as one HTML report: every method's map and how far each pair agrees."""
    model_input = api.prepare_images(model, [item])[0] if model.modality is Modality.IMAGE else item
    sections = [reports.model_section(model)]
    sections += [reports.explanation_section(e, model_input, title=t) for e, t in zip(explanations, titles)]
    if agreement_rows:
        sections.append(reports.table_section("Agreement between methods", [
            {"pair": f"{row.first} vs {row.second}", "rank correlation": round(float(row.rank_correlation), 3),
             "top overlap (IoU)": round(float(row.top_overlap), 3)} for row in agreement_rows]))
    target = explanations[0].target_label if explanations else ""
    report_download_button(f"Comparison of explanations for {target} ({model.name} {model.version})", sections,
                           key=key)
