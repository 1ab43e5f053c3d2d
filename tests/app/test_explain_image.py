"""AppTest of the Explain image page: a dataset sample, an upload, a refused upload."""
from pathlib import Path

import pytest

from tests.app.conftest import start_app

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
    # The probability chart and, under the overlay, the trust panel's curves.
    assert len(app.get("plotly_chart")) == 2
    assert any("Can I trust this gradcam map?" in m.value for m in app.markdown)
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
