"""The report button any page can show, and the footer under every single explanation.

The footer is what sits under a map on the Explain pages: the trust panel (on by default,
switchable) and a one-file HTML report of that explanation. Both come from the core's
`ExplainedInput`; this module only lays them out.
"""
from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from ui.kit.trust import trust_panel
from workbench import reports
from workbench.explaining import Comparison, ExplainedInput

TRUST_HELP = ("Deletion/insertion curves against a random order, localisation where the truth is "
              "known and the cascading randomisation check (Grad-CAM at once; SHAP and LIME on request). About a second.")


def report_button(
    title: str,
    sections: Sequence[reports.Section],
    *,
    key: str | None = None,
    subtitle: str = "",
    label: str = "⬇️ Download report (HTML)",
    help: str | None = "One HTML file with every image embedded: opens offline in any browser and prints well.",
) -> None:
    """A download button for `reports.build_report(title, sections)`.

    The report is built on every run (a few milliseconds per figure). Streamlit's deferred
    (callable) downloads were tried and dropped: a click landing just after a rerun asked for
    a callable the server had already forgotten, and nothing downloaded.
    """
    data = reports.build_report(title, sections, subtitle=subtitle)
    st.download_button(label, data=data, file_name=reports.report_filename(title), mime="text/html",
                       key=key, help=help, on_click="ignore")


def explanation_footer(result: ExplainedInput, *, key: str) -> None:
    """Trust figures (after the map, on by default) and the report of this explanation."""
    trust = None
    if st.toggle("Measure how far to trust this map", value=True, key=f"{key}_on", help=TRUST_HELP):
        trust = trust_panel(result, key=key)
    report_button(result.report_title, result.report_sections(trust), key=f"{key}_report")


def comparison_report_button(comparison: Comparison, *, key: str) -> None:
    """The compare view as one HTML report: every method's map and how far each pair agrees."""
    report_button(comparison.report_title, comparison.report_sections(), key=key)
