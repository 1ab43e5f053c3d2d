"""AppTest of the Explain image page: a dataset sample, an upload, a refused upload."""
import re
from pathlib import Path

import pytest

from tests.app.conftest import start_app
from ui import kit

EXAMPLES = Path(__file__).resolve().parents[2] / "sample_data" / "examples"


@pytest.fixture
def app():
    at = start_app(image_model="shapes")
    assert not at.exception, at.exception
    return at


def _image_captions(at):
    return [caption for element in at.get("image") for caption in element.captions]


def test_sample_shows_prediction_and_gradcam(app):
    assert app.title[0].value.endswith("Explain image")
    markdown = " ".join(m.value for m in app.markdown)
    assert "The model says" in markdown
    # The class probabilities as HTML bars (no plotly: its script delayed the first map, issue 18) and,
    # under the overlay, the trust panel's randomisation cascade and curves. (The third chart is the
    # folded reason-marking panel's picture, issue 17: tested in test_explain_reasons.)
    assert any('aria-label="Class probabilities' in h.proto.body for h in app.get("html"))
    assert len([c for c in app.get("plotly_chart") if not str(c.key or "").startswith("reason_plot:")]) == 2
    assert any("Can I trust this gradcam map?" in m.value for m in app.markdown)
    # Grad-CAM's randomisation check runs with the figures: its verdict, metric and curve.
    [check] = [m.value for m in app.markdown if m.value.startswith("**Randomisation check.**")]
    assert "top layer (head)" in check
    [sanity] = [metric for metric in app.metric if metric.label == "Sanity check"]
    assert sanity.value in {"passes", "passes in part", "fails"}
    assert any(metric.label == "On the object" for metric in app.metric)  # shapes have ground-truth masks
    assert any(button.label.startswith("⬇️ Download report") for button in app.get("download_button"))
    app.number_input(key="sample_index_shapes_test").set_value(5).run()
    assert not app.exception
    # The target selector lists the model's classes; picking one re-explains for it.
    app.selectbox(key="target_class").set_value("square").run()
    assert not app.exception
    assert any("for “square”" in caption for caption in _image_captions(app))


def test_uploaded_image_is_explained(app):
    app.radio(key="image_source").set_value("Upload an image").run()
    data = (EXAMPLES / "shape_star.png").read_bytes()
    app.file_uploader(key="image_upload").set_value(("star.png", data, "image/png")).run()
    assert not app.exception
    assert not app.error
    assert "The model says" in " ".join(m.value for m in app.markdown)


def test_refused_upload_shows_one_clear_error(app):
    app.radio(key="image_source").set_value("Upload an image").run()
    app.file_uploader(key="image_upload").set_value(("notes.png", b"this is not an image", "image/png")).run()
    assert not app.exception
    assert len(app.error) == 1
    assert "image" in app.error[0].value.lower()


# --- a model without convolutions ---------------------------------------------------------------


@pytest.fixture
def dense_app(workspace, tmp_path):
    """The page on a registered image model with no convolution layer, explaining an upload."""
    from tests.explainers import tiny_models
    from workbench import user_models

    path = tmp_path / "dense.keras"
    tiny_models.dense_only_image_model().save(path)
    user_models.register(path, classes=list(tiny_models.IMAGE_CLASSES), overrides={"rescales_inputs": True},
                         name="tiny-dense")
    at = start_app(image_model="tiny-dense", image_lime_num_samples=100)
    assert not at.exception, at.exception
    data = (EXAMPLES / "shape_star.png").read_bytes()
    at.file_uploader(key="image_upload").set_value(("star.png", data, "image/png")).run()
    assert not at.exception, at.exception
    return at


def _open_tab(at, view: str) -> None:
    """Switch tabs as a click does: the tab state and its query parameter (the tabs are bound to the URL)."""
    at.session_state["image_view"] = view
    at.query_params["image_view"] = view
    at.run()
    assert not at.exception, at.exception


def test_gradcam_tab_says_why_it_is_unavailable(dense_app):
    assert [tab.label for tab in dense_app.tabs] == ["Grad-CAM", "SHAP", "LIME", "Compare"]
    assert [i.value for i in dense_app.info] == [
        "Grad-CAM needs a convolution layer, and this model has none. Try SHAP or LIME."]
    assert not _image_captions(dense_app)[1:]  # no map: only the input is drawn
    _open_tab(dense_app, "Compare")  # the comparison runs the methods that can run
    assert [c.split(" · ")[0] for c in _image_captions(dense_app)[1:]] == ["SHAP", "LIME"]
    assert not dense_app.info


# --- SHAP in rounds -------------------------------------------------------------------------------

ROUNDS_CAPTION = re.compile(r"^(refining…|stable after|full budget:|not stable within the budget)")


def _rounds_captions(at) -> list[str]:
    return [c.value for c in at.caption if ROUNDS_CAPTION.match(c.value)]


def _latest(method: str):
    """The explanation the page just drew: the most recently used cache entry of the method."""
    from workbench import cache

    return [e for e in cache.EXPLANATIONS._items.values() if e.method == method][-1]


def test_shap_tab_says_how_many_evaluations_the_rounds_used_and_offers_the_full_budget(app):
    _open_tab(app, "SHAP")
    latest = _latest("shap")
    extras = latest.extras
    assert extras["budget"] == 500 and extras["stopped"] in {"stable", "budget"}
    used = extras["evaluations_used"]
    # The wording for each way rounds end is tested in tests/ui/test_rounds_caption.py.
    [caption] = _rounds_captions(app)
    assert caption == kit.rounds_caption(latest) and f"{used}" in caption.replace(",", "")
    assert caption.startswith("stable after" if extras["stopped"] == "stable" else ("stable after", "not stable"))
    assert 0 < used <= 500
    # The full budget, for a reproducible report: every round runs.
    app.checkbox(key="image_shap_stopping").check().run()
    assert not app.exception, app.exception
    full = _latest("shap").extras
    assert full["stopped"] == "budget" and full["rounds"] == 1 and full["evaluations_used"] >= used
    [caption] = _rounds_captions(app)
    assert caption.startswith("full budget: ") and f"{full['evaluations_used']}" in caption
    assert any("full budget" in c.value for c in app.caption if c.value.startswith("Settings: "))
