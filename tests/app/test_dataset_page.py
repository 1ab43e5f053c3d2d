"""AppTest of the Dataset page: metrics, confusion cell listing, example viewer, slices, text models."""
import base64
import json

import numpy as np
import pytest

from tests.app.conftest import start_app
from ui import dataset_widgets as dw

PAGE = "pages/dataset.py"


def _length(values) -> int:
    """Points in a plotly JSON array: a list, or plotly's typed array ({"dtype", "bdata" in base64})."""
    if isinstance(values, dict):
        return len(base64.b64decode(values["bdata"])) // np.dtype(values["dtype"]).itemsize
    return len(values)


def _markdown(at):
    return " ".join(m.value for m in at.markdown)


@pytest.fixture
def digits():
    at = start_app(PAGE, any_model="digits")
    assert not at.exception, at.exception
    return at


def test_metrics_confusion_cell_and_example(digits):
    at = digits
    assert at.title[0].value.endswith("Dataset")
    assert at.selectbox(key=dw.DATASET_KEY).value == "digits"
    assert at.selectbox(key=dw.SPLIT_KEY).value == "test"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Examples"] == "270"
    accuracy = float(metrics["Accuracy"].rstrip("%")) / 100
    assert 0.0 <= accuracy <= 1.0
    # The per-class table has one row per digit.
    assert len(at.dataframe[0].value) == 10
    # Choosing a diagonal cell lists that class's correct examples.
    at.selectbox(key=dw.TRUTH_KEY).set_value("3")
    at.selectbox(key=dw.PRED_KEY).set_value("3").run()
    assert not at.exception
    assert "Truth 3, predicted 3" in _markdown(at)
    # Opening an example shows its id, the prediction and a Grad-CAM overlay.
    at.number_input(key=dw.EXAMPLE_KEY).set_value(7).run()
    assert not at.exception
    assert "digits-" in _markdown(at) and "the model says" in _markdown(at)
    captions = [caption for element in at.get("image") for caption in element.captions]
    assert any(caption.startswith("gradcam for") for caption in captions), captions


def test_colourings_and_slices(digits):
    at = digits
    for colour in ("prediction", "correct", "queue", "label"):
        at.radio(key=dw.COLOUR_KEY).set_value(colour).run()
        assert not at.exception
        assert not at.warning, [w.value for w in at.warning]
    slices = at.dataframe[-1].value
    assert list(slices.columns[:5]) == ["family", "slice", "examples", "errors", "error_rate"]
    assert slices["error_rate"].is_monotonic_decreasing
    assert (slices["examples"] >= 20).all()
    at.number_input(key="dataset_min_slice").set_value(60).run()
    assert (at.dataframe[-1].value["examples"] >= 60).all()
    at.number_input(key="dataset_min_slice").set_value(270).run()  # no slice of the image split is that big
    assert not at.exception
    assert any("No slice is that large" in info.value for info in at.info)


def test_text_model_shows_token_attribution():
    at = start_app(PAGE, any_model="headlines")
    assert not at.exception, at.exception
    assert at.selectbox(key=dw.DATASET_KEY).value == "headlines"
    html = " ".join(element.proto.body for element in at.get("html"))
    assert "wb-token" in html
    families = set(at.dataframe[-1].value["family"])
    assert "negation" in families or "length" in families


def test_confusion_figure_cells_carry_their_classes():
    figure = dw.confusion_figure([[5, 1], [2, 7]], ["cat", "dog"])
    heatmap, markers = figure.data
    assert heatmap.type == "heatmap" and markers.type == "scatter"
    cells = {tuple(c): (x, y) for c, x, y in zip(markers.customdata, markers.x, markers.y)}
    assert cells[(1, 0)] == ("cat", "dog")  # truth dog (row 1), predicted cat (column 0)
    assert figure.layout.clickmode == "event+select"


def test_embedding_figure_uses_webgl_and_dataset_indices():
    import pandas as pd

    frame = pd.DataFrame({"index": [0, 1, 2], "example_id": ["a", "b", "c"], "x": [0.0, 1.0, 2.0],
                          "y": [0.0, 1.0, 0.5], "label": ["cat", "dog", "cat"], "prediction": ["cat", "cat", "cat"],
                          "correct": [True, False, True], "confidence": [0.9, 0.6, 0.8]})
    by_label = dw.embedding_figure(frame, "label")
    assert {t.type for t in by_label.data} == {"scattergl"}
    assert sorted(int(i) for t in by_label.data for i in t.customdata) == [0, 1, 2]
    by_prediction = dw.embedding_figure(frame, "prediction")  # only "cat" is predicted
    assert [t.name for t in by_prediction.data] == ["cat"]
    assert by_prediction.data[0].marker.color == next(t for t in by_label.data if t.name == "cat").marker.color
    by_correct = dw.embedding_figure(frame, "correct")
    assert [t.name for t in by_correct.data] == ["correct", "wrong"]
    assert list(by_correct.data[1].customdata) == [1]
    by_score = dw.embedding_figure(frame, "queue", np.array([0.1, 0.9, 0.2]))
    assert len(by_score.data) == 1 and list(by_score.data[0].marker.color) == [0.1, 0.9, 0.2]


def test_a_scale_set_draws_a_sample_and_lists_a_cell_from_the_store(monkeypatch):
    # A small lazily drawn scale set stands in for shapes-100k: the map's cap and the review queue's
    # limit are lowered so this split is "large" for both.
    from workbench import dataset_view

    monkeypatch.setenv(dataset_view.SCALE_SIZES_ENV, "240")
    monkeypatch.setattr(dataset_view, "MAP_POINTS", 100)
    monkeypatch.setattr(dataset_view, "QUEUE_LIMIT", 200)
    at = start_app(PAGE, any_model="shapes", **{dw.DATASET_KEY: "shapes-240"})
    assert not at.exception, at.exception
    assert at.selectbox(key=dw.DATASET_KEY).value == "shapes-240"
    assert {m.label: m.value for m in at.metric}["Examples"] == "240"
    captions = " ".join(c.value for c in at.caption)
    assert "Drawing 100 of 240 points" in captions, captions
    figure = json.loads(at.get("plotly_chart")[1].proto.spec)
    assert {trace["type"] for trace in figure["data"]} == {"scattergl"}
    assert sum(_length(trace["x"]) for trace in figure["data"]) == 100
    assert "queue" not in at.radio(key=dw.COLOUR_KEY).options
    at.selectbox(key=dw.TRUTH_KEY).set_value("star")
    at.selectbox(key=dw.PRED_KEY).set_value("star").run()
    assert not at.exception
    assert "Truth star, predicted star" in _markdown(at)
    thumbnails = [c for element in at.get("image") for c in element.captions if c.startswith("shapes-240-")]
    assert thumbnails and all(c.endswith(" star") for c in thumbnails), thumbnails


def test_a_large_split_is_computed_in_the_background(monkeypatch):
    import time

    from workbench import dataset_view

    monkeypatch.setenv(dataset_view.SCALE_SIZES_ENV, "160")
    monkeypatch.setattr(dataset_view, "BACKGROUND_FROM", 100)
    at = start_app(PAGE, any_model="shapes", **{dw.DATASET_KEY: "shapes-160"})
    assert not at.exception, at.exception
    assert any("keeps running if you leave the page" in info.value for info in at.info)
    assert not at.metric  # the run stopped: nothing below is drawn until the job is done
    deadline = time.monotonic() + 120
    while not at.metric and time.monotonic() < deadline:
        time.sleep(1)
        at.run()
    assert not at.exception, at.exception
    assert {m.label: m.value for m in at.metric}["Examples"] == "160"
