"""The prediction block: one sentence with the top class, and the class-probability bars."""
from __future__ import annotations

from typing import Any, Sequence

import streamlit as st

from foundation.escaping import markdown_literal
from ui import widgets


def prediction_sentence(classes: Sequence[str], probabilities: Sequence[float]) -> None:
    """'The model says **circle** (97.1%).' (the class name shown literally, never as Markdown)."""
    predicted = max(range(len(classes)), key=lambda i: probabilities[i])
    st.markdown(f"The model says **{markdown_literal(classes[predicted])}** ({probabilities[predicted]:.1%}).")


def probability_bars(classes: Sequence[str], probabilities: Sequence[float]) -> None:
    """The top classes' probabilities as bars (widgets.probability_bars_html)."""
    st.html(widgets.probability_bars_html(classes, probabilities))


def prediction_block(classes: Sequence[str], probabilities: Any) -> None:
    """The sentence above the bars."""
    prediction_sentence(classes, probabilities)
    probability_bars(classes, probabilities)
