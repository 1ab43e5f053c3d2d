"""The prediction block: one sentence with the top class, and the class-probability chart."""
from __future__ import annotations

from typing import Any, Sequence

import streamlit as st

from foundation.escaping import markdown_literal
from ui import widgets


def prediction_sentence(classes: Sequence[str], probabilities: Sequence[float]) -> None:
    """'The model says **circle** (97.1%).' (the class name shown literally, never as Markdown)."""
    predicted = max(range(len(classes)), key=lambda i: probabilities[i])
    st.markdown(f"The model says **{markdown_literal(classes[predicted])}** ({probabilities[predicted]:.1%}).")


def probability_chart(classes: Sequence[str], probabilities: Sequence[float], *, key: str | None = None) -> None:
    chart = widgets.probability_chart(classes, probabilities)
    st.plotly_chart(chart.update_yaxes(type="category"), width="stretch", key=key)  # class names like "1" stay labels


def prediction_block(classes: Sequence[str], probabilities: Any, *, key: str | None = None) -> None:
    """The sentence above the chart."""
    prediction_sentence(classes, probabilities)
    probability_chart(classes, probabilities, key=key)
