"""Any explanation drawn the same way on every page: an image map over the picture, or words
coloured by their evidence.

Signed maps (SHAP, LIME: evidence for and against) go over a grey copy of the image, so orange
and blue read as the map's colours and not the picture's; unsigned maps (Grad-CAM) over the
picture itself, in a colour map. Words come from `render.token_html`, which escapes every one.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from explainers import render
from foundation.types import Explanation, Modality


def grey_underlay(image: np.ndarray) -> np.ndarray:
    """A grey copy of an RGB image (luminance in all three channels).

    Signed maps are drawn over it so that orange and blue read as the map's colours, not
    the picture's (a pink shape under orange is otherwise hard to tell from evidence).
    """
    image = np.asarray(image, dtype=np.uint8)
    luminance = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.repeat(np.clip(np.round(luminance), 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def overlay_image(display: np.ndarray, values: np.ndarray, *, alpha: float = 0.45, signed: bool = False,
                  colormap: str = "jet") -> np.ndarray:
    """The map blended over the display image: signed maps over its grey copy, in orange and blue."""
    if signed:
        return render.overlay_heatmap(grey_underlay(display), values, alpha=alpha, signed=True)
    return render.overlay_heatmap(display, values, alpha=alpha, colormap=colormap)


def display_image(image: np.ndarray, min_side: int = 256) -> np.ndarray:
    """An image enlarged for the screen (small model inputs would be a few pixels wide)."""
    return render.upscale_for_display(np.asarray(image), min_side)


def show_tokens(explanation: Explanation, *, where: Any = st, legend: bool = False) -> None:
    """The explained words coloured by their values (escaped HTML), with the legend if asked."""
    body = render.token_html(explanation.tokens, explanation.values)
    if legend:
        label = explanation.target_label
        body += render.diverging_legend_html(f"against {label}", f"for {label}")
    where.html(body)


def show_attribution(explanation: Explanation, image: Any = None, *, caption: str = "", width: int = 256,
                     where: Any = st) -> None:
    """One explanation as a page shows it in a row of examples: the overlay on `image` (its
    model-sized input, enlarged to `width`) for image models, highlighted words for text."""
    if explanation.modality is Modality.TEXT:
        show_tokens(explanation, where=where)
        if caption:
            where.caption(caption)
        return
    overlay = overlay_image(display_image(image, width), explanation.values)
    where.image(overlay, caption=caption or None, width=width)
