"""The Explain text page's views: highlighted words, the legend, the strongest-words chart,
and the method and Compare tabs (each a fragment, so a method's settings rerun it alone).
SHAP and LIME redraw the highlighted words after each of their rounds, with the evaluations used.

Everything a user or a dataset wrote (the text, class names) is escaped before it reaches
HTML: the highlighted text comes from `render.token_html`, which escapes every word and
attribute, and is the only HTML these views emit. Markdown sentences take class names
through `markdown_literal`.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from explainers import render
from explainers.perturb import model_token_spans
from foundation.escaping import markdown_literal
from foundation.types import Explanation
from models.loaded import LoadedModel
from ui import kit, method_params
from ui.compare_views import agreement_table, normalised, unsettled_note
from ui.kit.running import OnRound
from ui.method_params import MethodChoice
from workbench import api

# Colour-blind-safe pair, the ends of render's diverging map: orange = for, blue = against.
FOR_COLOUR = "#c4540a"
AGAINST_COLOUR = "#2154a0"
STRONGEST = 10
LEGEND = ("against the class", "for the class")


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


def show_token_explanation(explanation: Explanation, words: Sequence[str], *, key: str, note: str | None = None) -> None:
    """Highlighted text with its legend (and a note under it, such as how far the rounds got),
    then the strongest-words chart."""
    if not words:
        st.info("None of these words is in the model's vocabulary view of the text, so there is nothing to colour.")
        return
    st.html(f'<div style="font-size:1.15em">{highlighted_html(words, explanation.values)}</div>' + legend_html())
    if note:
        st.caption(note)
    st.plotly_chart(strongest_words_figure(words, explanation.values), key=key, width="stretch")


def show_token_comparison(rows: Sequence[tuple[str, str, Explanation]], words: Sequence[str]) -> None:
    """Each method's highlighted text on one shared scale: values / max |value| per method."""
    for title, caption, explanation in rows:
        st.markdown(f"**{title}** · {caption}")
        st.html(highlighted_html(words, normalised(explanation.values), max_abs=1.0))
    st.html(legend_html())


# --- the method tabs of the Explain text page (each a fragment) -----------------------------------


@dataclass(frozen=True)
class TextTask:
    """What every tab explains: one (cleaned) text, its displayed words, one class."""

    model: LoadedModel
    text: str
    words: tuple[str, ...]  # the original spelling of each model token
    target: int
    rationale: tuple[str, ...] | None = None  # a sample headline's sentiment words, for the trust panel

    @property
    def target_md(self) -> str:
        return markdown_literal(self.model.classes[self.target])

    def explain(self, chosen: MethodChoice, spinner: bool = True, on_round: OnRound | None = None) -> api.ExplainedInput:
        return kit.explain(self.model, chosen, self.text, self.target, self.rationale, spinner=spinner,
                           on_round=on_round)


@st.fragment
def method_section(task: TextTask, method: str) -> None:
    """One method's settings, highlighted words and strongest-words chart, trust and report below."""
    chosen = method_params.widgets("text", method)
    # SHAP and LIME run in rounds: each round redraws this slot (the words only; the chart comes with the last).
    slot = st.empty()

    def draw_partial(_: int, partial: Explanation) -> None:
        with slot.container():
            if task.words:
                st.html(f'<div style="font-size:1.15em">{highlighted_html(task.words, partial.values)}</div>'
                        + legend_html())
            st.caption(kit.rounds_caption(partial) or "refining…")

    result = task.explain(chosen, on_round=draw_partial)
    with slot.container():
        show_token_explanation(result.explanation, task.words, key=f"text_bars_{method}",
                               note=kit.rounds_caption(result.explanation))
    st.caption(f"{chosen.describe()} · for “{task.target_md}” · {result.caption()}. "
               "Orange words pushed the model towards this class, blue words away from it; "
               "hover a word for its value.")
    kit.explanation_footer(result, key=f"trust_text_{method}")


@st.fragment
def compare_section(task: TextTask, tabs: Sequence[api.MethodTab]) -> None:
    """The highlighted words of every method that can run on the model, on one scale, then how far they agree."""
    chosen = [kit.current_choice("text", tab.method) for tab in tabs if tab.available]
    progress = st.progress(0.0, text="Explaining with every method…")
    results = []
    for i, choice in enumerate(chosen):
        progress.progress(i / len(chosen), text=f"Running {choice.describe()}…")
        results.append(task.explain(choice, spinner=False))
    progress.empty()
    comparison = api.compare(results, [c.title for c in chosen])
    show_token_comparison([(t, r.caption(), r.explanation) for t, r in zip(comparison.titles, results)], task.words)
    st.caption(f"Evidence for “{task.target_md}”. Each method's values are divided by its own largest |value|, "
               "so all share one colour scale. Change a method's settings in its own tab.")
    if comparison.agreements:
        unsettled_note(comparison)
        agreement_table(comparison.agreements, "words")
    kit.comparison_report_button(comparison, key="text_compare_report")
