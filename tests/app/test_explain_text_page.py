"""AppTest of the Explain text page on the shipped headlines model: a sample headline, typed
text, every method's highlighted words lined up with the model's tokens, the Compare tab,
the cache, and refused input."""
from __future__ import annotations

import html
import re

import pytest

from foundation.tokens import tokenize
from tests.app.conftest import start_app
from ui import kit

PAGE = "pages/explain_text.py"
FAST = {"text_shap_max_evals": 120, "text_lime_num_samples": 500}
SPAN_TEXT = re.compile(r'<span class="wb-token"[^>]*title="([^"]*)"[^>]*>(.*?)</span>')


def _app(**state):
    at = start_app(PAGE, text_model="headlines", **FAST, **state)
    assert not at.exception, at.exception
    return at


def _highlighted(at) -> list[list[tuple[str, float]]]:
    """(word, value) pairs of every highlighted text on the page."""
    out = []
    for element in at.get("html"):
        if 'class="wb-tokens"' in element.proto.body:
            out.append([(html.unescape(w), float(html.unescape(v))) for v, w in SPAN_TEXT.findall(element.proto.body)])
    return out


def _captions(at) -> str:
    return " ".join(c.value for c in at.caption)


def _type(at, text: str):
    at.radio(key="text_source").set_value("Type or paste text").run()
    at.text_area(key="text_input").set_value(text).run()
    assert not at.exception, at.exception
    return at


def test_sample_headline_shows_prediction_and_aligned_words():
    at = _app()
    assert at.title[0].value.endswith("Explain text")
    sample = at.selectbox(key="text_sample")  # options are positions, shown as the headlines
    headline = sample.options[sample.index]
    assert "The model says" in " ".join(m.value for m in at.markdown)
    assert any('aria-label="Class probabilities' in h.proto.body for h in at.get("html"))  # HTML bars
    assert len(at.get("plotly_chart")) == 3  # strongest words, randomisation cascade, trust curves
    assert any("Can I trust this gradcam map?" in m.value for m in at.markdown)
    [words] = _highlighted(at)
    # One highlighted word per model token, each the original spelling of that token.
    assert [tokenize(w) for w, _ in words] == [[t] for t in tokenize(headline)]


@pytest.mark.parametrize("view", ["SHAP", "LIME"])
def test_typed_text_is_explained_by_each_method_for_the_chosen_class(view):
    at = _type(_app(text_view=view), "Acme shares soar after record profit")
    [words] = _highlighted(at)
    assert [w for w, _ in words] == ["Acme", "shares", "soar", "after", "record", "profit"]
    assert "The model says **positive**" in " ".join(m.value for m in at.markdown)
    # Explaining the opposite class turns the evidence around: "soar" argues against "negative".
    at.selectbox(key="text_target").set_value(0).run()
    assert not at.exception
    assert "for “negative”" in _captions(at)
    [against] = _highlighted(at)
    assert dict(against)["soar"] < 0 < dict(words)["soar"]


def test_changing_shap_budget_reruns_only_with_the_new_budget_and_repeats_come_from_cache():
    at = _app(text_view="SHAP")
    assert "120 evaluations" in _captions(at)
    at.number_input(key="text_shap_max_evals").set_value(200).run()
    assert not at.exception
    assert "200 evaluations" in _captions(at)
    at.number_input(key="text_shap_max_evals").set_value(120).run()
    assert "from cache" in _captions(at)


def test_compare_tab_puts_every_method_on_one_scale_with_agreement():
    at = _app(text_view="Compare")
    rows = _highlighted(at)
    assert len(rows) == 3  # Grad-CAM, SHAP, LIME
    assert all(len(r) == len(rows[0]) for r in rows)
    # Each method is scaled to its own largest |value| = 1.
    for row in rows:
        assert max(abs(v) for _, v in row) == pytest.approx(1.0, abs=1e-4)
    sentences = [m.value for m in at.markdown if m.value.startswith("- ")]
    assert len(sentences) == 3
    assert all("rank correlation" in s for s in sentences)
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 3


def test_empty_text_is_refused_with_one_message():
    at = _type(_app(), "   ")
    assert len(at.error) == 1
    assert "empty" in at.error[0].value.lower()
    assert not _highlighted(at)


def test_long_text_is_cut_to_the_models_length_with_a_notice():
    at = _type(_app(text_view="LIME"), " ".join(["profit"] * 30))
    assert any("only the first 24" in info.value for info in at.info)
    [words] = _highlighted(at)
    assert len(words) == 24


def _pick_duplicate_sample():
    """A sample list whose two headlines read the same but carry different rationales."""
    from types import SimpleNamespace

    import streamlit as st

    from ui import text_inputs

    data = SimpleNamespace(x=["Acme beats forecasts", "Acme beats forecasts"], rationales=(("beats",), ("forecasts",)))
    text, position = text_inputs._choose_sample(data)
    st.markdown(f"{text} | {position} | {' '.join(text_inputs.sample_rationale(data, position))}")


def test_identical_headlines_keep_their_own_rationale():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_pick_duplicate_sample)
    at.run()
    assert at.markdown[0].value == "Acme beats forecasts | 0 | beats"
    at.selectbox(key="text_sample").set_value(1).run()
    assert not at.exception, at.exception
    assert at.markdown[0].value == "Acme beats forecasts | 1 | forecasts"  # not the first row's words


ROUND_CAPTIONS = ("stable after", "full budget:", "not stable within the budget")


@pytest.mark.parametrize("view, method, budget", [("LIME", "lime", 500), ("SHAP", "shap", 120)])
def test_methods_in_rounds_say_how_many_evaluations_they_used_and_offer_the_full_budget(view, method, budget):
    from workbench import cache

    def latest():  # the explanation the page just drew: the most recently used cache entry of the method
        return [e for e in cache.EXPLANATIONS._items.values() if e.method == method][-1]

    at = _type(_app(text_view=view), "Acme shares soar after record profit")
    explanation = latest()
    extras = explanation.extras
    used = extras["evaluations_used"]
    assert extras["budget"] == budget and 0 < used <= budget
    # The wording for each way rounds end is tested in tests/ui/test_rounds_caption.py.
    rounds = [c.value for c in at.caption if c.value.startswith(ROUND_CAPTIONS)]
    assert rounds == [kit.rounds_caption(explanation)] and str(used) in rounds[0]
    assert rounds[0].startswith("stable after" if extras["stopped"] == "stable" else ("stable after", "not stable"))
    at.checkbox(key=f"text_{method}_stopping").check().run()
    assert not at.exception, at.exception
    full = latest().extras
    assert full["stopped"] == "budget" and full["rounds"] == 1
    [caption] = [c.value for c in at.caption if c.value.startswith(ROUND_CAPTIONS)]
    assert caption.startswith("full budget: ") and str(full["evaluations_used"]) in caption
    assert "full budget" in _captions(at)  # the settings line says so too
    assert len(_highlighted(at)) == 1  # the partial maps were replaced, not stacked
