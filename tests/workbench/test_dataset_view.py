"""The dataset view's core: metrics, confusion cells, slices (hand-checked) and the on-disk cache."""
import dataclasses
import json
import types

import numpy as np
import pytest

from foundation.dataset import Dataset
from foundation.errors import WorkbenchError
from foundation.types import Modality
from models.manifest import Manifest
import sample_data
from sample_data import shapes as sample_shapes
from tests.explainers import tiny_models
from workbench import dataset_view as dv
from workbench import datasets


def _outputs(predicted, classes, dataset="toy", split="test"):
    """DatasetOutputs whose probabilities are one-hot on `predicted` (so confidence is 1)."""
    predicted = np.asarray(predicted)
    probabilities = np.eye(len(classes), dtype=np.float32)[predicted]
    return dv.DatasetOutputs(
        model_name="m", model_version="v1", dataset=dataset, split=split, classes=tuple(classes),
        probabilities=probabilities, projection=np.zeros((len(predicted), 2), np.float32), feature_layer="f",
        feature_dim=2, projection_method="pca", explained_variance=(1.0, 0.0), seconds=0.0)


def _image_dataset(images, y, classes=("a", "b"), cue_masks=None):
    ids = tuple(f"toy-{i:03d}" for i in range(len(y)))
    return Dataset(name="toy", split="test", modality=Modality.IMAGE, classes=tuple(classes), ids=ids,
                   x=np.asarray(images, dtype=np.uint8), y=np.asarray(y, dtype=np.int64), cue_masks=cue_masks)


def _text_dataset(texts, y, classes=("negative", "positive")):
    ids = tuple(f"txt-{i:03d}" for i in range(len(texts)))
    return Dataset(name="txt", split="test", modality=Modality.TEXT, classes=tuple(classes), ids=ids,
                   x=list(texts), y=np.asarray(y, dtype=np.int64))


# --- metrics and confusion cells ------------------------------------------------------------------------


def test_metrics_and_confusion_cells_by_hand():
    y = [0, 0, 0, 1, 1, 2]
    predicted = [0, 1, 0, 1, 2, 2]
    dataset = _image_dataset(np.zeros((6, 4, 4, 3)), y, classes=("a", "b", "c"))
    result = dv.metrics(_outputs(predicted, "abc"), dataset)
    assert result["accuracy"] == round(4 / 6, 4)
    assert result["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    table = dv.per_class_table(result).set_index("class")
    assert table.loc["a", "precision"] == 1.0 and table.loc["a", "recall"] == round(2 / 3, 4)
    assert table.loc["b", "precision"] == 0.5 and table.loc["b", "recall"] == 0.5
    assert table.loc["c", "precision"] == 0.5 and table.loc["c", "recall"] == 1.0
    assert list(table["support"]) == [3, 2, 1]
    assert dv.confusion_cell(y, predicted, 0, 1).tolist() == [1]
    assert dv.confusion_cell(y, predicted, 0, 0).tolist() == [0, 2]
    assert dv.confusion_cell(y, predicted, 2, 0).tolist() == []
    # Two off-diagonal cells hold 1 example; the first in reading order wins.
    assert dv.worst_cell(result["confusion"]) == (0, 1)
    assert dv.worst_cell([[3, 0], [0, 2]]) is None


def test_embedding_frame_marks_correctness():
    dataset = _image_dataset(np.zeros((3, 4, 4, 3)), [0, 1, 1])
    frame = dv.embedding_frame(_outputs([0, 0, 1], "ab"), dataset)
    assert frame["correct"].tolist() == [True, False, True]
    assert frame["label"].tolist() == ["a", "b", "b"] and frame["prediction"].tolist() == ["a", "a", "b"]
    assert frame["index"].tolist() == [0, 1, 2] and frame["example_id"].tolist() == list(dataset.ids)


# --- slices ---------------------------------------------------------------------------------------------------


def test_quantile_buckets_by_hand():
    buckets = dv.quantile_buckets(np.arange(1, 9), 4)
    assert [mask.nonzero()[0].tolist() for _, mask in buckets] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert buckets[0][0] == "Q1 of 4: 1–2"
    # All values equal: one bucket holding everything.
    (only,) = dv.quantile_buckets(np.full(5, 7.0), 4)
    assert only[1].all()


def test_image_properties_by_hand():
    grey = np.zeros((2, 2, 2, 3), dtype=np.uint8)
    grey[0] = 100  # flat grey: brightness 100, contrast 0
    grey[1, 0] = 0
    grey[1, 1] = 200  # half black, half 200: mean 100, std 100
    brightness, contrast = dv.image_properties(grey)
    np.testing.assert_allclose(brightness, [100, 100], atol=1e-3)
    np.testing.assert_allclose(contrast, [0, 100], atol=1e-3)


def _dark_and_bright():
    """40 flat images: 20 dark (10) then 20 bright (200); labels alternate a, b.

    The model is wrong exactly on the dark images of class a (10 of them, predicting b).
    """
    images = np.concatenate([np.full((20, 4, 4, 3), 10), np.full((20, 4, 4, 3), 200)])
    y = np.tile([0, 1], 20)
    predicted = y.copy()
    predicted[:20][y[:20] == 0] = 1
    return _image_dataset(images, y), predicted


def test_image_slices_find_the_failing_corner():
    dataset, predicted = _dark_and_bright()
    slices = dv.failure_slices(dataset, predicted, min_size=5)
    worst = slices[0]
    assert worst.family == "true class × brightness"
    assert worst.description.startswith("truth = a, Q1 of 2")
    assert (worst.n, worst.errors, worst.error_rate) == (10, 10, 1.0)
    assert worst.indices.tolist() == list(range(0, 20, 2))
    by_name = {(s.family, s.description.split(":")[0]): s for s in slices}
    dark = by_name[("brightness", "Q1 of 2")]
    assert (dark.n, dark.errors) == (20, 10)
    assert by_name[("brightness", "Q2 of 2")].errors == 0
    truth_a = by_name[("true class", "truth = a")]
    assert (truth_a.n, truth_a.errors) == (20, 10)
    predicted_b = by_name[("predicted class", "predicted = b")]
    assert (predicted_b.n, predicted_b.errors) == (30, 10)  # 1 - precision of b
    # Sorted worst first, bigger first among equals.
    rates = [(-s.error_rate, -s.n) for s in slices]
    assert rates == sorted(rates)
    table = dv.slices_table(slices, overall_error=0.25)
    assert list(table.columns) == ["family", "slice", "examples", "errors", "error_rate", "vs_overall"]
    assert table.iloc[0]["vs_overall"] == 0.75


def test_minimum_slice_size_drops_small_slices():
    dataset, predicted = _dark_and_bright()
    slices = dv.failure_slices(dataset, predicted, min_size=11)
    assert slices and min(s.n for s in slices) >= 11
    assert slices[0].error_rate == 0.5  # the 10-example corner is gone; the dark half (10 of 20) leads


def test_cue_slices_on_shortcut_style_data():
    images = np.full((40, 4, 4, 3), 120, dtype=np.uint8)
    y = np.tile([0, 1], 20)
    cue = np.zeros((40, 4, 4), dtype=bool)
    cue[:20, 0, 0] = True  # the first 20 carry the cue
    predicted = y.copy()
    predicted[20:][y[20:] == 0] = 1  # class a without the cue: always wrong
    slices = dv.failure_slices(_image_dataset(images, y, cue_masks=cue), predicted, min_size=5)
    found = {(s.family, s.description): s for s in slices}
    assert found[("planted cue", "cue absent")].errors == 10
    assert found[("planted cue", "cue present")].errors == 0
    corner = found[("true class × planted cue", "truth = a, cue absent")]
    assert (corner.n, corner.error_rate) == (10, 1.0)
    assert slices[0] is corner


def test_text_slices_by_negation_and_length():
    texts = ["profits did not rise", "sales rose", "shares fell despite gains", "output grew",
             "revenue up but costs higher than expected today", "margins steady", "not bad at all", "stock jumps"]
    y = [0, 1, 0, 1, 0, 1, 1, 1]
    predicted = np.array(y)
    predicted[[0, 6]] = 1 - predicted[[0, 6]]  # wrong exactly on the texts containing "not"
    slices = dv.failure_slices(_text_dataset(texts, y), predicted, min_size=1, crosses=False)
    found = {s.description: s for s in slices}
    assert (found["contains “not”"].n, found["contains “not”"].error_rate) == (2, 1.0)
    assert found["contains “despite”"].n == 1 and found["contains “despite”"].errors == 0
    assert found["contains “but”"].n == 1 and found["contains “than”"].n == 1
    assert found["contains none of them"].n == 4 and found["contains none of them"].errors == 0
    assert found["contains one of not, less, than, despite, but"].n == 4
    lengths = [s for s in slices if s.family == "length"]
    assert sum(s.n for s in lengths) == len(texts)
    assert slices[0].description == "contains “not”"


def test_slices_refuse_misaligned_predictions():
    dataset, predicted = _dark_and_bright()
    with pytest.raises(ValueError):
        dv.failure_slices(dataset, predicted[:-1])


# --- projection, cache --------------------------------------------------------------------------------------


def test_pca_projection_by_hand():
    points = np.array([[0, 0, 5], [1, 1, 5], [2, 2, 5], [3, 3, 5]], dtype=np.float32)
    projected, explained = dv.project_2d(points)
    assert explained[0] == pytest.approx(1.0)
    expected = np.array([-1.5, -0.5, 0.5, 1.5]) * np.sqrt(2)
    np.testing.assert_allclose(np.abs(projected[:, 0]), np.abs(expected), atol=1e-5)
    np.testing.assert_allclose(projected[:, 1], 0.0, atol=1e-5)


def _tiny_dataset(n=40, classes=tuple(tiny_models.IMAGE_CLASSES)):
    images = tiny_models.random_images(n, seed=4)
    ids = tuple(f"tiny-{i:03d}" for i in range(n))
    y = np.arange(n) % len(classes)
    return Dataset(name="tiny", split="test", modality=Modality.IMAGE, classes=tuple(classes), ids=ids,
                   x=images, y=y)


def test_outputs_are_computed_once_and_read_from_disk(workspace):
    model = tiny_models.loaded_image_model()
    dataset = _tiny_dataset()
    before = dv.COMPUTE_COUNT
    first = dv.dataset_outputs(model, dataset)
    assert not first.from_cache and dv.COMPUTE_COUNT == before + 1
    assert first.projection.shape == (40, 2) and first.probabilities.shape == (40, 3)
    np.testing.assert_allclose(first.probabilities, model.predict_proba(dataset.x), atol=1e-5)
    assert first.feature_layer == "gap" and first.feature_dim == 2
    files = sorted(p.suffix for p in dv.cache_dir().iterdir())
    assert files == [".json", ".npz"]
    meta_path = next(dv.cache_dir().glob("*.json"))
    meta = json.loads(meta_path.read_text())
    assert (meta["model"], meta["version"], meta["n"]) == ("tiny-image", "v1", 40)
    mtime = meta_path.stat().st_mtime_ns
    # Without its Keras model, only the cache can answer.
    hollow = dataclasses.replace(model, keras_model=None)
    second = dv.dataset_outputs(hollow, dataset)
    assert second.from_cache and dv.COMPUTE_COUNT == before + 1
    assert meta_path.stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(second.probabilities, first.probabilities)
    np.testing.assert_array_equal(second.projection, first.projection)
    # A new version is a new key: computed again.
    third = dv.dataset_outputs(dataclasses.replace(model, version="v2"), dataset)
    assert not third.from_cache and dv.COMPUTE_COUNT == before + 2


def test_probability_columns_follow_the_dataset_class_order(workspace):
    model = tiny_models.loaded_image_model()
    reordered = _tiny_dataset(classes=tuple(reversed(tiny_models.IMAGE_CLASSES)))
    outputs = dv.dataset_outputs(model, reordered, use_cache=False)
    np.testing.assert_allclose(outputs.probabilities, model.predict_proba(reordered.x)[:, ::-1], atol=1e-5)


def test_a_damaged_cache_entry_is_recomputed(workspace):
    model = tiny_models.loaded_image_model()
    dataset = _tiny_dataset()
    dv.dataset_outputs(model, dataset)
    next(dv.cache_dir().glob("*.npz")).write_bytes(b"not a zip")
    again = dv.dataset_outputs(model, dataset)
    assert not again.from_cache


def test_mismatched_model_and_dataset_are_refused(workspace):
    with pytest.raises(WorkbenchError, match="matching pair"):
        dv.dataset_outputs(tiny_models.loaded_text_model(), _tiny_dataset())


def test_review_queue_scores_follow_dataset_order(workspace):
    model = tiny_models.loaded_image_model()
    dataset = _tiny_dataset()
    scores = dv.review_queue_scores(model, dataset)
    assert scores.shape == (40,) and ((scores >= 0) & (scores <= 1)).all()


# --- datasets on offer ---------------------------------------------------------------------------------------


def test_large_shapes_dataset_is_deterministic(monkeypatch):
    # The scale check is an ordinary catalogue entry, generated by sample_data (its cache cleared around
    # the test so the 8-image stand-in never outlives it).
    monkeypatch.setattr(sample_shapes, "LARGE_COUNT", 8)
    sample_data._large_shapes.cache_clear()
    try:
        first = sample_data.large_shapes()
        assert len(first) == 8 and first.ids[0] == "shapes-20k-00000" and first.name == "shapes-20k"
        assert first.classes == ("circle", "square", "triangle", "star")
        assert first.x.shape == (8, 64, 64, 3) and first.x.dtype == np.uint8
        sample_data._large_shapes.cache_clear()
        np.testing.assert_array_equal(sample_data.large_shapes().x, first.x)
        assert dv.load_split("shapes-20k", "test") is sample_data.large_shapes()
        assert datasets.load("shapes-20k", "test") is sample_data.large_shapes()
        with pytest.raises(WorkbenchError):
            dv.load_split("shapes-20k", "train")
    finally:
        sample_data._large_shapes.cache_clear()


def test_compatible_datasets_match_modality_and_classes():
    classes = ("star", "circle", "square", "triangle")
    shapes_like = types.SimpleNamespace(modality=Modality.IMAGE, classes=list(classes),
                                        info=Manifest(modality=Modality.IMAGE, classes=classes, dataset="shapes-shortcut"))
    names = dv.compatible_datasets(shapes_like)
    assert names[0] == "shapes-shortcut"
    assert {"shapes", "shapes-20k"} <= set(names) and "digits" not in names and "headlines" not in names
    assert dv.split_names("shapes-20k") == ("test",)


def test_the_view_offers_exactly_the_catalogues_datasets():
    classes = tuple(datasets.classes("digits"))
    anything = types.SimpleNamespace(modality=Modality.IMAGE, classes=list(classes),
                                     info=Manifest(modality=Modality.IMAGE, classes=classes))
    assert dv.compatible_datasets(anything) == ["digits"]
    assert dv.LARGE_SHAPES_NAME == datasets.LARGE_SHAPES == "shapes-20k"
    for name in datasets.names():
        assert dv.split_names(name) == datasets.splits(name)
