"""User text and class names never reach the page as HTML.

Adversarial words and class names go through render.token_html, the text views, and the
real Explain text page (AppTest, with a model whose class names are themselves attacks);
no markdown or HTML body may contain a live tag or event handler, while the attack text is
still shown (escaped), so the checks below are not passing vacuously.
"""
from __future__ import annotations

import html
import re

import numpy as np
import pytest

from explainers import render
from models import store
from tests.app.conftest import start_app
from tests.explainers import tiny_models
from ui import text_views

ATTACKS = [
    "<img src=x onerror=alert(1)>",
    '"><script>alert(1)</script>',
    "' onmouseover='alert(1)",
    "</span><b>bold</b>",
    "&lt;already-escaped&gt;",
]
EVIL_CLASSES = ["<img src=x onerror=alert(1)>", '"><script>alert(1)</script>']
EVIL_TEXT = '<img src=x onerror=alert(1)> "><script>alert(1)</script> good movie'
# A live tag that runs script, or any tag carrying an on...= event handler.
LIVE_MARKUP = re.compile(r"<\s*(script|img|iframe|svg)\b|<[^>]*\son\w+\s*=", re.IGNORECASE)
ALLOWED_TAGS = {"div", "span"}


def _tags(markup: str) -> set[str]:
    return {m.lower() for m in re.findall(r"</?\s*([a-zA-Z][a-zA-Z0-9]*)", markup)}


def test_token_html_escapes_every_attack_and_round_trips_the_text():
    values = np.linspace(-1.0, 1.0, len(ATTACKS))
    markup = render.token_html(ATTACKS, values)
    assert not LIVE_MARKUP.search(markup)
    assert _tags(markup) == ALLOWED_TAGS  # only the highlighter's own spans and div
    shown = re.findall(r'<span class="wb-token"[^>]*>(.*?)</span>', markup)
    assert [html.unescape(s) for s in shown] == ATTACKS  # what the reader sees is what was typed


def test_legend_labels_are_escaped():
    markup = render.diverging_legend_html(EVIL_CLASSES[0], EVIL_CLASSES[1])
    assert not LIVE_MARKUP.search(markup)
    assert "&lt;img src=x onerror=alert(1)&gt;" in markup


@pytest.mark.parametrize("attack", ATTACKS + ["[click](javascript:alert(1))", "$x$ :red[big] **bold**"])
def test_markdown_literal_leaves_no_markup(attack):
    escaped = text_views.markdown_literal(attack)
    assert "<" not in escaped and ">" not in escaped and '"' not in escaped
    # Every ASCII punctuation mark is either an entity or backslash-escaped.
    stripped = re.sub(r"&(lt|gt|amp|quot|#x27);|\\[!-/:-@\[-`{-~]", "", escaped)
    assert not re.search(r"[!-/:-@\[-`{-~]", stripped)


def test_strongest_words_chart_puts_the_strongest_on_top():
    figure = text_views.strongest_words_figure(["a", "b", "c", "a"], [0.1, -0.5, 0.3, 0.05], k=3)
    # Row 0 is the bottom: the weakest of the top 3 first, the strongest last (on top).
    assert list(figure.data[0].y) == [0, 1, 2] and list(figure.layout.yaxis.tickvals) == [0, 1, 2]
    assert list(figure.layout.yaxis.ticktext) == ["a", "c", "b"]
    assert list(figure.data[0].x) == [0.1, 0.3, -0.5]
    for_, against = text_views.FOR_COLOUR, text_views.AGAINST_COLOUR
    assert list(figure.data[0].marker.color) == [for_, for_, against]


def test_strongest_words_chart_labels_are_escaped():
    figure = text_views.strongest_words_figure(ATTACKS, np.arange(len(ATTACKS), dtype=float) - 2)
    labels = list(figure.layout.yaxis.ticktext)
    assert len(labels) == len(ATTACKS)
    assert all("<" not in label for label in labels)
    assert sorted(html.unescape(label) for label in labels) == sorted(ATTACKS)


# --- the real page --------------------------------------------------------------------------------


@pytest.fixture
def evil_text_model(workspace):
    """A text model whose class names are attacks, published into this test's workspace."""
    manifest = {
        "modality": "text",
        "classes": list(EVIL_CLASSES),
        "input": {"type": "text", "sequence_length": tiny_models.SEQUENCE_LENGTH},
        "intended_use": "escaping test",
    }
    store.publish_version("evil-classes", tiny_models.text_cnn(), manifest)
    return "evil-classes"


def _bodies(at) -> list[str]:
    """Every markdown-rendered or HTML body on the page, image captions and status labels included."""
    bodies = []
    for kind in ("markdown", "caption", "title", "header", "subheader", "info", "warning", "error", "success"):
        bodies += [element.value for element in getattr(at, kind)]
    bodies += [element.proto.body for element in at.get("html")]
    bodies += [caption for element in at.get("image") for caption in element.captions]
    bodies += [element.label for element in at.get("status")]
    bodies += [element.label for element in at.get("tab")]
    return [b for b in bodies if b]


@pytest.mark.parametrize("view", ["Grad-CAM", "SHAP", "LIME", "Compare"])
def test_explain_text_page_shows_attacks_as_text_only(evil_text_model, view):
    at = start_app("pages/explain_text.py", text_model=evil_text_model, text_view=view,
                   text_shap_max_evals=60, text_lime_num_samples=200)
    assert not at.exception, at.exception
    at.text_area(key="text_input").set_value(EVIL_TEXT).run()
    assert not at.exception, at.exception
    bodies = _bodies(at)
    offending = [b for b in bodies if LIVE_MARKUP.search(b)]
    assert not offending, offending
    # The attacks are on the page, escaped: the class name in the prediction sentence...
    everything = "\n".join(bodies)
    assert "&lt;img src\\=x onerror\\=alert\\(1\\)&gt;" in everything or "&lt;script&gt;" in everything
    # ...and the user's words in the highlighted text.
    highlighted = [b for b in bodies if 'class="wb-tokens"' in b]
    assert highlighted
    assert all(_tags(b) <= ALLOWED_TAGS for b in highlighted)
    assert "&lt;img" in highlighted[0] and "&lt;script&gt;" in highlighted[0]
