"""Turn explanation values into pictures and HTML: heatmap overlays, token highlights, PNG bytes.

OpenCV + numpy only. Every image here is RGB uint8; OpenCV's colormaps and encoder work
in BGR, so the conversion happens at exactly those two places. Token HTML escapes every
token and attribute and contains no scripts or event handlers.
"""
from __future__ import annotations

import html
import math
from typing import Sequence

import cv2
import numpy as np

COLORMAPS = {
    "jet": cv2.COLORMAP_JET,
    "turbo": cv2.COLORMAP_TURBO,
    "viridis": cv2.COLORMAP_VIRIDIS,
    "inferno": cv2.COLORMAP_INFERNO,
}

# Diverging map for signed values: blue (against) - near white (0) - orange (for).
# Blue/orange stays distinguishable for the common red-green colour-vision deficiencies.
# Stops are (position in [-1, 1], RGB).
_DIVERGING_STOPS: tuple[tuple[float, tuple[int, int, int]], ...] = (
    (-1.0, (33, 84, 160)),
    (-0.5, (128, 170, 216)),
    (0.0, (247, 247, 247)),
    (0.5, (246, 178, 107)),
    (1.0, (196, 84, 10)),
)


def _diverging_lut() -> np.ndarray:
    """257 x 3 uint8 table; entry i is the colour of value (i - 128) / 128 (odd, so 0 has its own entry)."""
    positions = np.array([stop for stop, _ in _DIVERGING_STOPS])
    colours = np.array([rgb for _, rgb in _DIVERGING_STOPS], dtype=np.float64)
    samples = np.linspace(-1.0, 1.0, 257)
    table = np.stack([np.interp(samples, positions, colours[:, c]) for c in range(3)], axis=-1)
    return np.round(table).astype(np.uint8)


_DIVERGING_LUT = _diverging_lut()


def _finite(values: np.ndarray) -> np.ndarray:
    return np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)


def diverging_rgb(values: np.ndarray, max_abs: float | None = None) -> np.ndarray:
    """RGB uint8 colours (shape + (3,)) for signed values, symmetric around 0 (0 -> near white)."""
    values = _finite(values)
    scale = float(np.abs(values).max()) if max_abs is None and values.size else float(max_abs or 0.0)
    if scale <= 0.0:
        scaled = np.zeros_like(values)
    else:
        scaled = np.clip(values / scale, -1.0, 1.0)
    index = np.round((scaled + 1.0) * 128.0).astype(np.int64)
    return _DIVERGING_LUT[index]


def _as_uint8_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 RGB image, got shape {image.shape}")
    return image


def heatmap_to_rgb(
    heatmap: np.ndarray,
    size: tuple[int, int] | None = None,
    *,
    colormap: str = "jet",
    signed: bool = False,
    max_abs: float | None = None,
) -> np.ndarray:
    """The colour-mapped heatmap alone, H x W x 3 RGB uint8, optionally resized to size = (height, width).

    Unsigned maps are scaled over [0, max] (negative values count as 0) and use `colormap`;
    signed maps are scaled over [-m, m] with m = max_abs or max |value| and use the
    blue-white-orange diverging map.
    """
    heatmap = _finite(heatmap)
    if heatmap.ndim != 2:
        raise ValueError(f"expected a 2-D heatmap, got shape {heatmap.shape}")
    if size is not None and heatmap.shape != (int(size[0]), int(size[1])):
        heatmap = cv2.resize(
            heatmap.astype(np.float32), (int(size[1]), int(size[0])), interpolation=cv2.INTER_LINEAR
        ).astype(np.float64)
    if signed:
        return diverging_rgb(heatmap, max_abs)
    if colormap not in COLORMAPS:
        raise ValueError(f"unknown colormap {colormap!r}; choose one of {', '.join(COLORMAPS)}")
    clipped = np.maximum(heatmap, 0.0)
    peak = float(max_abs) if max_abs else float(clipped.max()) if clipped.size else 0.0
    scaled = np.clip(clipped / peak, 0.0, 1.0) if peak > 0.0 else np.zeros_like(clipped)
    grey = np.round(scaled * 255.0).astype(np.uint8)
    bgr = cv2.applyColorMap(grey, COLORMAPS[colormap])
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def overlay_heatmap(
    image: np.ndarray,
    heatmap: np.ndarray,
    *,
    alpha: float = 0.45,
    colormap: str = "jet",
    signed: bool = False,
) -> np.ndarray:
    """The image blended with its colour-mapped heatmap (resized to the image): RGB uint8.

    alpha 0 gives the image unchanged, 1 the colour map alone.
    """
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    image = _as_uint8_rgb(image)
    colours = heatmap_to_rgb(heatmap, image.shape[:2], colormap=colormap, signed=signed)
    blended = (1.0 - alpha) * image.astype(np.float64) + alpha * colours.astype(np.float64)
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)


def upscale_for_display(image: np.ndarray, min_side: int = 256) -> np.ndarray:
    """Enlarge a small image by a whole factor with nearest neighbour, so pixels stay crisp squares."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {image.dtype}")
    height, width = image.shape[:2]
    shortest = min(height, width)
    if shortest == 0 or shortest >= min_side:
        return image
    factor = math.ceil(min_side / shortest)
    return cv2.resize(image, (width * factor, height * factor), interpolation=cv2.INTER_NEAREST)


def png_bytes(image: np.ndarray) -> bytes:
    """PNG file bytes of an RGB (or greyscale) uint8 image."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise ValueError("could not encode the image as PNG")
    return encoded.tobytes()


# --- token highlighting -------------------------------------------------------------------------


def _text_colour(rgb: Sequence[int]) -> str:
    """Dark text on light backgrounds, white on dark ones (WCAG relative luminance)."""
    channels = []
    for value in rgb:
        c = value / 255.0
        channels.append(c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4)
    luminance = 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]
    # Pick whichever of near-black / white contrasts more with this background.
    contrast_dark = (luminance + 0.05) / (0.0137 + 0.05)  # #1a1a1a
    contrast_light = 1.05 / (luminance + 0.05)
    return "#1a1a1a" if contrast_dark >= contrast_light else "#ffffff"


def _css_rgb(rgb: Sequence[int]) -> str:
    return f"rgb({int(rgb[0])},{int(rgb[1])},{int(rgb[2])})"


def token_html(tokens: Sequence[str], values: Sequence[float], *, max_abs: float | None = None) -> str:
    """Tokens as HTML spans coloured by value (orange for, blue against), each with its value as title.

    Every token and attribute value is escaped; colours are scaled by max_abs (default:
    the largest |value|).
    """
    if len(tokens) != len(values):
        raise ValueError(f"got {len(tokens)} tokens and {len(values)} values; they must match")
    numbers = _finite(np.asarray(values, dtype=np.float64).reshape(-1))
    colours = diverging_rgb(numbers, max_abs)
    spans = []
    for token, value, rgb in zip(tokens, numbers, colours):
        style = (
            f"background-color:{_css_rgb(rgb)};color:{_text_colour(rgb)};"
            "padding:0.1em 0.25em;margin:0 0.1em;border-radius:0.25em"
        )
        spans.append(
            f'<span class="wb-token" style="{html.escape(style, quote=True)}" '
            f'title="{html.escape(f"{value:+.4f}", quote=True)}">{html.escape(str(token), quote=True)}</span>'
        )
    return '<div class="wb-tokens" style="line-height:2">' + " ".join(spans) + "</div>"


def diverging_legend_html(low_label: str = "against", high_label: str = "for") -> str:
    """A small gradient bar explaining the token colours, with escaped end labels."""
    stops = ", ".join(
        f"{_css_rgb(rgb)} {int(round((position + 1.0) * 50))}%" for position, rgb in _DIVERGING_STOPS
    )
    bar = (
        f'<span style="display:inline-block;width:10em;height:0.8em;vertical-align:middle;'
        f'border-radius:0.2em;background:linear-gradient(to right, {stops})"></span>'
    )
    return (
        '<div class="wb-legend" style="font-size:0.85em">'
        f"{html.escape(low_label, quote=True)} {bar} {html.escape(high_label, quote=True)}</div>"
    )
