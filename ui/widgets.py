"""Small reusable renderers (class probabilities, errors)."""
from __future__ import annotations

import html
from typing import Sequence

import streamlit as st


def probability_bars_html(classes: Sequence[str], probabilities: Sequence[float], top_k: int = 5) -> str:
    """The top classes as labelled horizontal bars, most probable first, in plain HTML (names escaped).

    Not a plotly chart: on a fresh page the browser first has to load and compile plotly's script,
    about 2 s on two busy cores, and meanwhile it drew nothing else, the Grad-CAM map below included
    (issue 18). These bars cost the browser nothing and read the same."""
    pairs = sorted(zip(classes, probabilities), key=lambda pair: -float(pair[1]))[:top_k]
    rows = []
    for name, probability in pairs:
        share = min(float(probability), 1.0) if float(probability) > 0 else 0.0  # -0.0 would print as such
        label = html.escape(str(name))
        rows.append(
            '<div role="listitem" style="display:flex;align-items:center;gap:0.6rem;margin:0.2rem 0">'
            # The name in full (wrapped), and never inside an attribute: a tooltip would put a hostile
            # name's escaped text inside a tag, where filters that look for handlers flag it.
            f'<span style="flex:0 0 30%;overflow-wrap:anywhere">{label}</span>'
            '<span style="flex:1;height:1.15rem;background:rgba(59,110,165,0.12);border-radius:3px">'
            f'<span style="display:block;width:{share * 100:.1f}%;height:100%;background:#3b6ea5;border-radius:3px">'
            '</span></span>'
            f'<span style="flex:0 0 3.6rem;text-align:right;font-variant-numeric:tabular-nums">{share:.1%}</span>'
            '</div>')
    return (f'<div role="list" aria-label="Class probabilities, the top {len(pairs)}" '
            f'style="margin:0.3rem 0 0.8rem 0">{"".join(rows)}</div>')


def show_error(message: str) -> None:
    st.error(message, icon="⚠️")
