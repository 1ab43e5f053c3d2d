"""Small reusable renderers (plotly charts, image pairs, errors)."""
from __future__ import annotations

from typing import Sequence

import plotly.graph_objects as go
import streamlit as st


def probability_chart(classes: Sequence[str], probabilities: Sequence[float], top_k: int = 5) -> go.Figure:
    pairs = sorted(zip(classes, probabilities), key=lambda p: -p[1])[:top_k]
    labels = [c for c, _ in pairs][::-1]
    values = [float(p) for _, p in pairs][::-1]
    figure = go.Figure(
        go.Bar(x=values, y=labels, orientation="h", text=[f"{v:.1%}" for v in values],
               textposition="auto", marker_color="#3b6ea5", hovertemplate="%{y}: %{x:.2%}<extra></extra>")
    )
    figure.update_layout(
        height=60 + 34 * len(labels), margin=dict(l=10, r=10, t=10, b=10),
        # Category axis: class names such as "1" must stay labels, not become numbers.
        xaxis=dict(range=[0, 1], tickformat=".0%", title=None), yaxis=dict(title=None, type="category"),
    )
    return figure


def show_error(message: str) -> None:
    st.error(message, icon="⚠️")
