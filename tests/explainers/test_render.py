"""Heatmap overlays, display upscaling, PNG bytes and escaped token HTML."""
from __future__ import annotations

import io
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from explainers.render import (
    diverging_legend_html,
    diverging_rgb,
    heatmap_to_rgb,
    overlay_heatmap,
    png_bytes,
    token_html,
    upscale_for_display,
)


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(16, 20, 3), dtype=np.uint8)


def test_alpha_extremes(image):
    heatmap = np.random.default_rng(1).random((4, 5))
    np.testing.assert_array_equal(overlay_heatmap(image, heatmap, alpha=0.0), image)
    pure = overlay_heatmap(image, heatmap, alpha=1.0, colormap="viridis")
    np.testing.assert_array_equal(pure, heatmap_to_rgb(heatmap, image.shape[:2], colormap="viridis"))
    half = overlay_heatmap(image, heatmap, alpha=0.5)
    colours = heatmap_to_rgb(heatmap, image.shape[:2]).astype(int)
    assert np.abs(half.astype(int) - (image.astype(int) + colours) / 2).max() <= 0.5
    with pytest.raises(ValueError):
        overlay_heatmap(image, heatmap, alpha=1.5)


def test_overlay_is_resized_to_the_image(image):
    out = overlay_heatmap(image, np.ones((3, 3)))
    assert out.shape == image.shape and out.dtype == np.uint8
    # Grey images are accepted and come back as RGB.
    assert overlay_heatmap(image[:, :, 0], np.ones((3, 3))).shape == image.shape


def test_colormaps_come_back_in_rgb_order():
    hot = heatmap_to_rgb(np.ones((2, 2)), colormap="jet")[0, 0].astype(int)
    cold = heatmap_to_rgb(np.array([[0.0, 1.0]]), colormap="jet")[0, 0].astype(int)
    assert hot[0] > 100 and hot[2] < 50  # jet's maximum is dark red
    assert cold[2] > 100 and cold[0] < 50  # and its minimum dark blue
    bright = heatmap_to_rgb(np.array([[0.0, 1.0]]), colormap="inferno")[0, 1].astype(int)
    assert bright[0] > bright[2]  # inferno ends in pale yellow: more red than blue
    # Unsigned maps are scaled over [0, max]: a doubled map looks the same; a zero map is all "low".
    ramp = np.array([[0.0, 0.5, 1.0]])
    np.testing.assert_array_equal(heatmap_to_rgb(ramp, colormap="turbo"), heatmap_to_rgb(2 * ramp, colormap="turbo"))
    zero = heatmap_to_rgb(np.zeros((2, 2)))
    np.testing.assert_array_equal(zero, np.broadcast_to(cold, zero.shape))
    with pytest.raises(ValueError, match="unknown colormap"):
        heatmap_to_rgb(ramp, colormap="rainbow")


def test_signed_map_is_white_at_zero_and_symmetric():
    colours = heatmap_to_rgb(np.array([[-2.0, 0.0, 2.0, 1.0]]), signed=True)[0].astype(int)
    negative, centre, positive, half = colours
    assert centre.min() >= 235  # near white
    assert negative[2] > negative[0] + 80  # blue side
    assert positive[0] > positive[2] + 80  # orange side
    assert positive.sum() < half.sum() < centre.sum()  # fades towards white
    np.testing.assert_array_equal(diverging_rgb(np.array([0.0, 5.0]), max_abs=10.0)[1], diverging_rgb(np.array([0.0, 0.5]), max_abs=1.0)[1])


def test_upscale_for_display_is_nearest_neighbour():
    small = np.arange(64 * 64 * 3, dtype=np.int64).reshape(64, 64, 3).astype(np.uint8)
    big = upscale_for_display(small)
    assert big.shape == (256, 256, 3) and big.dtype == np.uint8
    np.testing.assert_array_equal(big[::4, ::4], small)
    np.testing.assert_array_equal(big[3::4, 3::4], small)  # every pixel is a crisp 4x4 block
    assert upscale_for_display(small[:, :32]).shape == (512, 256, 3)  # whole factor of the short side
    large = np.zeros((300, 400, 3), dtype=np.uint8)
    assert upscale_for_display(large) is large


def test_png_bytes_round_trip_keeps_rgb(image):
    data = png_bytes(image)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    np.testing.assert_array_equal(decoded, image)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _parse(markup: str) -> _Collector:
    parser = _Collector()
    parser.feed(markup)
    parser.close()
    return parser


def test_token_html_escapes_every_token():
    tokens = ["<script>alert(1)</script>", '" onmouseover="alert(2)', "class='evil'", "a&b", "plain"]
    markup = token_html(tokens, [1.0, -0.5, 0.0, 0.25, -1.0])
    assert "<script" not in markup and "onmouseover=\"" not in markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markup and "&#x27;evil&#x27;" in markup
    parsed = _parse(markup)
    # Only our own tags and attributes survive parsing; the tokens come back as text.
    assert [tag for tag, _ in parsed.tags] == ["div"] + ["span"] * len(tokens)
    for _, attrs in parsed.tags[1:]:
        assert set(attrs) == {"class", "style", "title"} and attrs["class"] == "wb-token"
    assert [t for t in parsed.text if t.strip()] == tokens
    assert [attrs["title"] for _, attrs in parsed.tags[1:]] == ["+1.0000", "-0.5000", "+0.0000", "+0.2500", "-1.0000"]


def test_token_html_colours_and_contrast():
    parsed = _parse(token_html(["for", "neutral", "against"], [4.0, 0.0, -4.0]))
    styles = [attrs["style"] for _, attrs in parsed.tags[1:]]
    strong_for, neutral, strong_against = styles
    assert "color:#ffffff" in strong_against  # white text on dark blue
    assert "color:#1a1a1a" in neutral and "rgb(247,247,247)" in neutral
    # max_abs rescales: with a larger scale the same value is paler.
    pale = _parse(token_html(["for"], [4.0], max_abs=40.0)).tags[1][1]["style"]
    assert pale != strong_for
    with pytest.raises(ValueError, match="must match"):
        token_html(["a", "b"], [1.0])
    assert _parse(token_html([], [])).tags == [("div", {"class": "wb-tokens", "style": "line-height:2"})]


def test_legend_html_is_static_and_escaped():
    markup = diverging_legend_html("<b>no</b>", "yes & more")
    assert "<b>" not in markup and "&lt;b&gt;no&lt;/b&gt;" in markup and "yes &amp; more" in markup
    parsed = _parse(markup)
    assert [tag for tag, _ in parsed.tags] == ["div", "span"]
    assert all(set(attrs) <= {"class", "style"} for _, attrs in parsed.tags)
    assert [t.strip() for t in parsed.text if t.strip()] == ["<b>no</b>", "yes & more"]
