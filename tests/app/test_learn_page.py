"""AppTest of the Learn page: every tab renders on the real sample models; guess-then-reveal scores."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from models import store
from workbench import api, lessons

APP = str(Path(__file__).resolve().parents[2] / "app.py")
TABS = ["How Grad-CAM works", "How LIME works", "How SHAP works", "The shortcut lesson", "Guess, then reveal"]


@pytest.fixture(scope="module")
def page():
    for name in ("shapes", "shapes-shortcut", "headlines"):
        if name not in store.model_names():
            pytest.skip(f"sample model {name} is not in models/zoo (run `make zoo`)")
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.switch_page("pages/learn.py").run()
    assert not at.exception, at.exception
    return at


def _metric(at: AppTest, label: str) -> str:
    found = [m.value for m in at.metric if m.label == label]
    assert found, f"no metric {label!r}; have {[m.label for m in at.metric]}"
    return found[0]


def test_every_tab_renders(page):
    assert [tab.label for tab in page.tabs] == TABS
    assert not page.error
    texts = " ".join(md.value for md in page.markdown)
    for step in ("Step 1 · The feature maps", "Step 2 · Copies with patches hidden", "Step 3 · Fair shares that add up",
                 "1 · Its score on its own test images", "5 · Correct the reason, retrain, check again"):
        assert step in " ".join(h.value for h in page.subheader), step
    assert "Grad-CAM" in texts and "superpixels" in texts
    # The shortcut lesson carries a trust panel with its figures.
    assert _metric(page, "Deletion area") and _metric(page, "On the corner mark").endswith("%")


def test_shap_additivity_is_shown_with_matching_numbers(page):
    sentence = next(md.value for md in page.markdown if md.value.startswith("Sum of the four values"))
    numbers = [float(part.split("**")[0]) for part in sentence.split("**")[1::2] if part[:1] in "+-"]
    assert len(numbers) == 2 and numbers[0] == pytest.approx(numbers[1], abs=2e-4)


def test_guess_then_reveal_scores_picked_cells(page):
    at = page
    for cell in (0, 5, 6):
        at.checkbox(key=f"learn_guess_cell_{cell}").check()
    at.run()
    at.button(key="learn_guess_image_reveal").click().run()
    assert not at.exception, at.exception
    model = api.load_model("shapes")
    image = api.prepare_images(model, [lessons_dataset_image(model, 1)])[0]
    target = int(api.predict(model, [image])[0].argmax())
    explanation = api.explain(model, "gradcam", [image], [target])[0]
    expected = lessons.image_guess_score(explanation.values, [0, 5, 6], 4)
    assert _metric(at, "Explanation in your cells") == f"{expected.mass_share:.0%}"
    assert _metric(at, "Overlap with the top cells") == f"{expected.iou:.0%}"
    assert any("random pick of the same size would hold about 19%" in s.value for s in at.success)


def test_guess_then_reveal_scores_picked_words(page):
    at = page
    at.radio(key="learn_guess_kind").set_value("a headline").run()
    pills = at.pills[0]
    pills.set_value([0, 1]).run()
    at.button(key="learn_guess_text_reveal").click().run()
    assert not at.exception, at.exception
    model = api.load_model("headlines")
    text = lessons_dataset_text(model, 0)
    target = int(api.predict(model, [text])[0].argmax())
    explanation = api.explain(model, "gradcam", [text], [target])[0]
    expected = lessons.text_guess_score(explanation.values, [0, 1])
    assert _metric(at, "Explanation in your words") == f"{expected.mass_share:.0%}"


def lessons_dataset_image(model, index: int) -> np.ndarray:
    from workbench import datasets

    return np.asarray(datasets.load(model.info.dataset, "test").x[index])


def lessons_dataset_text(model, index: int) -> str:
    from workbench import datasets

    return str(datasets.load(model.info.dataset, "test").x[index])


@pytest.mark.slow
def test_the_class_marks_the_corner_as_not_a_reason(workspace):
    """Step 5: the offered pictures come ticked; untick one, save, and the ledger holds the other marks."""
    from labels import Ledger

    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.switch_page("pages/learn.py").run()
    assert not at.exception, at.exception
    ticks = [c for c in at.checkbox if str(c.key).startswith("learn_mark_")]
    assert len(ticks) == lessons.MARK_BATCH and all(c.value for c in ticks)
    assert any("**0** training pictures are marked" in m.value for m in at.markdown)
    ticks[0].uncheck().run()
    save = [b for b in at.button if str(b.key).startswith("learn_mark_save_")][0]
    assert f"on {lessons.MARK_BATCH - 1} pictures" in save.label
    save.click().run()
    assert not at.exception, at.exception
    marked = lessons.marked_examples(Ledger())
    assert len(marked) == lessons.MARK_BATCH - 1 and ticks[0].key.removeprefix("learn_mark_") not in marked
    assert any(f"Marked {lessons.MARK_BATCH - 1} pictures." in s.value for s in at.success)
    assert any(f"**{lessons.MARK_BATCH - 1}** training pictures are marked" in m.value for m in at.markdown)
    fresh = [c for c in at.checkbox if str(c.key).startswith("learn_mark_")]
    assert not {str(c.key) for c in fresh} & {f"learn_mark_{eid}" for eid in marked}  # the next batch
