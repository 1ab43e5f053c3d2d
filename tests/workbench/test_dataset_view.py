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
    assert files == [".json", ".parquet"]
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
    assert set(second.properties) == {"brightness", "contrast"}
    for name, values in first.properties.items():
        np.testing.assert_array_equal(second.properties[name], values)
    # A new version is a new key: computed again.
    third = dv.dataset_outputs(dataclasses.replace(model, version="v2"), dataset)
    assert not third.from_cache and dv.COMPUTE_COUNT == before + 2


def test_probability_columns_follow_the_dataset_class_order(workspace):
    model = tiny_models.loaded_image_model()
    reordered = _tiny_dataset(classes=tuple(reversed(tiny_models.IMAGE_CLASSES)))
    outputs = dv.dataset_outputs(model, reordered, use_cache=False)
    np.testing.assert_allclose(outputs.probabilities, model.predict_proba(reordered.x)[:, ::-1], atol=1e-5)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other rows", "no description"])
def test_a_damaged_cache_entry_is_recomputed(workspace, damage):
    model = tiny_models.loaded_image_model()
    dataset = _tiny_dataset()
    first = dv.dataset_outputs(model, dataset)
    table = next(dv.cache_dir().glob("*.parquet"))
    if damage == "garbage":
        table.write_bytes(b"not parquet at all")
    elif damage == "truncated":
        table.write_bytes(table.read_bytes()[: table.stat().st_size // 2])
    elif damage == "other rows":  # a well-formed table of another split under this key
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"index": np.arange(7)}), table)
    else:
        table.with_suffix(".json").unlink()
    before = dv.COMPUTE_COUNT
    again = dv.dataset_outputs(model, dataset)
    assert not again.from_cache and dv.COMPUTE_COUNT == before + 1
    np.testing.assert_allclose(again.probabilities, first.probabilities, atol=1e-6)
    # ... and the entry is whole again.
    assert dv.dataset_outputs(model, dataset).from_cache


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


# --- the Parquet entry, the confusion cell from it, the map's sample ----------------------------------------------


def test_cell_examples_from_the_store_match_the_arrays(workspace):
    model = tiny_models.loaded_image_model()
    dataset = _tiny_dataset(n=60)
    computed = dv.dataset_outputs(model, dataset)
    stored = dv.dataset_outputs(model, dataset)
    assert computed.store is not None and stored.store is not None and stored.from_cache
    predicted = computed.predicted
    seen = 0
    for t in range(3):
        for p in range(3):
            expected = dv.confusion_cell(dataset.y, predicted, t, p)
            np.testing.assert_array_equal(dv.cell_examples(stored, dataset, t, p), expected)
            seen += len(expected)
    assert seen == 60
    # Without a store (use_cache=False) the same answer comes from the arrays.
    bare = dv.dataset_outputs(model, dataset, use_cache=False)
    assert bare.store is None
    np.testing.assert_array_equal(dv.cell_examples(bare, dataset, 0, 0), dv.confusion_cell(dataset.y, predicted, 0, 0))
    frame = stored.store.take(np.array([5, 2]), ["index", "example_id", "label", "prediction"])
    assert list(frame["index"]) == [5, 2] and list(frame["example_id"]) == ["tiny-005", "tiny-002"]
    assert list(frame["prediction"]) == [int(predicted[5]), int(predicted[2])]


def test_stored_properties_give_the_same_slices(workspace):
    model = tiny_models.loaded_image_model()
    dataset = _tiny_dataset(n=80)
    outputs = dv.dataset_outputs(model, dataset)
    stored = dv.dataset_outputs(model, dataset)
    measured = dv.failure_slices(dataset, outputs.predicted, min_size=5)
    # A dataset whose images are gone: only the stored properties can cut it.
    hollow = dataclasses.replace(dataset, x=None)
    from_store = dv.failure_slices(hollow, stored.predicted, min_size=5, properties=stored.properties)
    assert [(s.description, s.n, s.errors) for s in from_store] == [(s.description, s.n, s.errors) for s in measured]


def test_map_sample_keeps_every_mistake_and_each_class_share():
    rng = np.random.default_rng(1)
    y = rng.choice(4, size=10_000, p=[0.4, 0.3, 0.2, 0.1])
    predicted = y.copy()
    wrong = rng.random(10_000) < 0.05
    predicted[wrong] = (y[wrong] + 1) % 4
    chosen = dv.map_sample(y, predicted, cap=2_000)
    assert len(chosen) == 2_000 and np.all(np.diff(chosen) > 0)
    assert set(np.flatnonzero(wrong)) <= set(chosen)
    correct = chosen[~wrong[chosen]]
    shares = np.bincount(y[correct], minlength=4) / len(correct)
    expected = np.bincount(y[~wrong], minlength=4) / (~wrong).sum()
    np.testing.assert_allclose(shares, expected, atol=2 / len(correct))
    # Deterministic; another seed, another sample of the correct ones (the mistakes stay).
    np.testing.assert_array_equal(dv.map_sample(y, predicted, cap=2_000), chosen)
    other = dv.map_sample(y, predicted, cap=2_000, seed=1)
    assert len(other) == 2_000 and set(np.flatnonzero(wrong)) <= set(other) and set(other) != set(chosen)
    # Small enough: everything. Mistakes alone over the cap: a stratified sample of them.
    np.testing.assert_array_equal(dv.map_sample(y[:50], predicted[:50], cap=100), np.arange(50))
    few = dv.map_sample(y, predicted, cap=100)
    assert len(few) == 100 and wrong[few].all()
    assert abs(np.bincount(y[few], minlength=4)[0] - 100 * (y[wrong] == 0).mean()) <= 1


def test_embedding_frame_of_a_sample():
    dataset = _image_dataset(np.zeros((4, 2, 2, 3)), [0, 1, 1, 0])
    outputs = dataclasses.replace(_outputs([0, 0, 1, 1], ("a", "b")),
                                  projection=np.arange(8, dtype=np.float32).reshape(4, 2))
    frame = dv.embedding_frame(outputs, dataset, np.array([1, 3]))
    assert list(frame["index"]) == [1, 3] and list(frame["example_id"]) == ["toy-001", "toy-003"]
    assert list(frame["x"]) == [2.0, 6.0] and list(frame["correct"]) == [False, False]


# --- lazily drawn scale sets ---------------------------------------------------------------------------------------


def test_scale_sets_are_lazy_deterministic_and_offered_for_shapes_models(monkeypatch):
    from sample_data import scale

    assert scale.scale_name(100_000) == "shapes-100k" and scale.size_of("shapes-100k") == 100_000
    assert scale.size_of("shapes-shortcut") is None and scale.size_of("shapes-20k") == 20_000
    monkeypatch.setenv(dv.SCALE_SIZES_ENV, "12")
    assert dv.scale_names() == ["shapes-12", "shapes-100k"]
    small = dv.load_split("shapes-12", "test")
    assert len(small) == 12 and small.ids[3] == "shapes-12-00003" and dv.split_names("shapes-12") == ("test",)
    assert small.x.shape == (12, 64, 64, 3) and small.x[3].dtype == np.uint8
    # Image i is the generator's image i (the same as in shapes-20k), one at a time or as a slice.
    expected, labels, _ = sample_shapes.generate_shapes(12, sample_shapes.LARGE_SEED)
    np.testing.assert_array_equal(small.x[0:12], expected)
    np.testing.assert_array_equal(small.x[7], expected[7])
    np.testing.assert_array_equal(small.y, labels)
    big = dv.load_split("shapes-100k", "test")
    assert len(big) == 100_000 and big.y.shape == (100_000,)
    np.testing.assert_array_equal(big.x[11], expected[11])
    np.testing.assert_array_equal(np.bincount(big.y), [25_000] * 4)
    with pytest.raises(WorkbenchError):
        dv.load_split("shapes-12", "train")
    shapes_model = types.SimpleNamespace(modality=Modality.IMAGE, classes=list(sample_shapes.CLASSES),
                                         info=Manifest(modality=Modality.IMAGE, classes=sample_shapes.CLASSES,
                                                       dataset="shapes"))
    offered = dv.compatible_datasets(shapes_model)
    assert offered[0] == "shapes" and offered[-2:] == ["shapes-12", "shapes-100k"]
    monkeypatch.delenv(dv.SCALE_SIZES_ENV)
    assert "shapes-12" not in dv.compatible_datasets(shapes_model)


def test_a_scale_set_is_cached_by_its_fingerprint(workspace, monkeypatch):
    from sample_data import scale

    monkeypatch.setattr(dv, "CHUNK_SIZE", 16)
    model = tiny_models.loaded_image_model()
    # The tiny model's classes, with 64 x 64 images drawn on demand (the model resizes its inputs).
    lazy = scale.LazyShapes(40)
    dataset = dataclasses.replace(_tiny_dataset(), x=lazy)
    progress = []
    first = dv.dataset_outputs(model, dataset, progress=lambda message, f: progress.append(f))
    assert progress[0] == 0.0 and progress[-1] == 1.0 and len(progress) >= 5  # one report per chunk of 16
    np.testing.assert_allclose(first.probabilities, model.predict_proba(lazy[0:40]), atol=1e-5)
    assert dv.cache_key(model, dataset) == dv.cache_key(model, dataclasses.replace(dataset, x=scale.LazyShapes(40)))
    other_seed = scale.LazyShapes(40, seed=1)
    assert dv.cache_key(model, dataset) != dv.cache_key(model, dataclasses.replace(dataset, x=other_seed))
    assert dv.dataset_outputs(model, dataset).from_cache


def test_a_background_job_computes_once_and_stores(workspace):
    model = tiny_models.loaded_image_model()
    dataset = _tiny_dataset(n=50)
    assert dv.cached_outputs(model, dataset) is None
    before = dv.COMPUTE_COUNT
    job = dv.outputs_job(model, dataset)
    assert dv.outputs_job(model, dataset) is job  # a second session watches the same job
    assert job.wait(60) and job.error is None and job.fraction == 1.0
    assert job.result.probabilities.shape == (50, 3) and dv.COMPUTE_COUNT == before + 1
    stored = dv.cached_outputs(model, dataset)
    assert stored is not None and stored.from_cache
    np.testing.assert_array_equal(stored.predicted, job.result.predicted)
    dv.collect_job(model, dataset)
    again = dv.outputs_job(model, dataset)  # collected: a new request starts a new job...
    assert again is not job and again.wait(60)
    assert again.result.from_cache and dv.COMPUTE_COUNT == before + 1  # ... which finds the stored entry
    dv.collect_job(model, dataset)


def test_a_failing_background_job_reports_its_error(workspace):
    model = tiny_models.loaded_image_model()
    broken = dataclasses.replace(_tiny_dataset(n=10), x=np.zeros((3, 8, 8, 3), np.uint8))  # 10 ids, 3 images
    job = dv.outputs_job(model, broken)
    assert job.wait(60) and job.result is None and job.error is not None
    dv.collect_job(model, broken)
