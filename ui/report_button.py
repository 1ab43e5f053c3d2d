"""One button any page can show to download a self-contained HTML report (see `workbench.reports`)."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import streamlit as st

from workbench import reports

Sections = Sequence[reports.Section]


def report_download_button(
    title: str,
    sections: Sections | Callable[[], Sections],
    *,
    key: str | None = None,
    subtitle: str = "",
    label: str = "⬇️ Download report (HTML)",
    help: str | None = "One HTML file with every image embedded: opens offline in any browser and prints well.",
) -> None:
    """A download button for `reports.build_report(title, sections)`.

    Pass a zero-argument callable instead of the sections to build the report only when the
    button is clicked (Streamlit runs it in a separate thread then), for reports with many images.
    """
    if callable(sections):
        make = sections

        def data() -> bytes:
            return reports.build_report(title, make(), subtitle=subtitle)
    else:
        data = reports.build_report(title, sections, subtitle=subtitle)
    st.download_button(label, data=data, file_name=reports.report_filename(title), mime="text/html",
                       key=key, help=help, on_click="ignore", icon=None)
