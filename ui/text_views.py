"""Renderers for text explanations: highlighted words, the legend, the strongest-words chart.

Everything a user or a dataset wrote (the text, class names) is escaped before it reaches
HTML: the highlighted text comes from `render.token_html`, which escapes every word and
attribute, and is the only HTML these views emit. Markdown sentences take class names
through `markdown_literal`.
"""
from __future__ import annotations

import html
import string
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from explainers import render
from explainers.perturb import model_token_spans
from explainers.types import Explanation
from models.loaded import LoadedModel

# Colour-blind-safe pair, the ends of render's diverging map: orange = for, blue = against.
FOR_COLOUR = "#c4540a"
AGAINST_COLOUR = "#2154a0"
STRONGEST = 10
LEGEND = ("against the class", "for the class")

_HTML_SPECIAL = {"<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&#x27;"}


def markdown_literal(text: str) -> str:
    """`text` shown literally inside st.markdown: HTML characters as entities, every other
    ASCII punctuation mark backslash-escaped (no emphasis, links, math or directives)."""
    out = []
    for char in str(text):
        if char in _HTML_SPECIAL:
            out.append(_HTML_SPECIAL[char])
        elif char in string.punctuation:
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def display_words(model: LoadedModel, text: str, tokens: Sequence[str]) -> list[str]:
    """The words of the original text behind each model token (same order, same count), so
    the reader sees their own spelling; the model's tokens if the two cannot be lined up."""
    try:
        spans = model_token_spans(model, text)
    except ValueError:
        return list(tokens)
    words = [text[start:end] for start, end, _ in spans]
    return words if len(words) == len(tokens) else list(tokens)


def highlighted_html(words: Sequence[str], values: Sequence[float], max_abs: float | None = None) -> str:
    """Escaped HTML of the words coloured by value (render.token_html)."""
    return render.token_html(list(words), list(values), max_abs=max_abs)


def strongest_words_figure(words: Sequence[str], values: Sequence[float], k: int = STRONGEST) -> go.Figure:
    """Horizontal bars of the k words with the largest |value|, strongest on top;
    orange for the class, blue against it."""
    values = np.nan_to_num(np.asarray(values, dtype=np.float64))
    order = [int(i) for i in np.argsort(-np.abs(values), kind="stable")[:k]][::-1]
    # Plotly reads a few HTML tags in labels; escaped text is shown as typed.
    labels = [html.escape(str(words[i])) for i in order]
    # Numeric rows (0 = bottom) rather than categories: repeated words stay apart, order is kept.
    rows = list(range(len(order)))
    figure = go.Figure(
        go.Bar(
            x=[values[i] for i in order], y=rows, orientation="h",
            marker_color=[FOR_COLOUR if values[i] >= 0 else AGAINST_COLOUR for i in order],
            customdata=[[label, i + 1] for label, i in zip(labels, order)],
            hovertemplate="%{customdata[0]} (word %{customdata[1]}): %{x:+.4f}<extra></extra>",
        )
    )
    figure.update_layout(
        height=60 + 28 * max(len(order), 1), margin=dict(l=10, r=10, t=10, b=10),
        xaxis=dict(title="attribution (orange: for the class, blue: against)", zeroline=True,
                   zerolinecolor="#888"),
        yaxis=dict(title=None, tickmode="array", tickvals=rows, ticktext=labels, showgrid=False),
        showlegend=False,
    )
    return figure


def legend_html() -> str:
    return render.diverging_legend_html(*LEGEND)


def show_token_explanation(explanation: Explanation, words: Sequence[str], *, key: str) -> None:
    """Highlighted text with its legend, then the strongest-words chart."""
    if not words:
        st.info("None of these words is in the model's vocabulary view of the text, so there is nothing to colour.")
        return
    st.html(highlighted_html(words, explanation.values) + legend_html())
    st.plotly_chart(strongest_words_figure(words, explanation.values), key=key, width="stretch")


def show_token_comparison(rows: Sequence[tuple[str, str, Explanation]], words: Sequence[str]) -> None:
    """Each method's highlighted text on one shared scale: values / max |value| per method."""
    from ui.compare_views import normalised

    for title, caption, explanation in rows:
        st.markdown(f"**{title}** · {caption}")
        st.html(highlighted_html(words, normalised(explanation.values), max_abs=1.0))
    st.html(legend_html())
