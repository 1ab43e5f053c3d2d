"""One button any page can show to download a self-contained HTML report (see `workbench.reports`)."""
from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from workbench import reports


def report_download_button(
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
