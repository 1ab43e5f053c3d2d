"""Issue 12, end to end: every kind of model an analyst brings gets every feature.

Each tutorial-shaped model of `tests/models/tutorial_models.py` (one-unit logit and sigmoid
heads, K-way logits, a grey MNIST convnet, a string model with its trained model nested
inside, a token-id BiLSTM, a nested applications base with -1..1 preprocessing, the plain RGB
softmax) is registered through the CLI, then predicted on, explained with every method,
audited with its own imported dataset (features from the penultimate layer), retrained one
epoch with the loss its output takes, and shown in the dataset view, trust figures, versions
and model card. The probabilities are checked against the raw Keras output worked out by hand.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from commandline import cli
from foundation.types import Modality
from tests.models import tutorial_models as tm

KINDS = list(tm.KINDS)
TEXT_KINDS = ("text_from_scratch", "token_id_bilstm")
IMAGE_KINDS = [k for k in KINDS if k not in TEXT_KINDS]
# The one model without a convolution: Grad-CAM is refused with a reason, only there.
NO_CONVOLUTION = {"token_id_bilstm"}
# Small budgets: the test checks that each method runs on each kind, not the maps' quality.
QUICK_PARAMS = {"shap": ["max_evals=40"], "lime": ["num_samples=60"], "shap-gradient": ["nsamples=8"],
                "gradcam": [], "gradcam++": []}
PER_CLASS = 4
POSITIVE = ["good", "great", "fine"]
NEGATIVE = ["bad", "awful", "poor"]
NOUNS = ["movie", "plot", "actors", "music"]


# ------------------------------------------------------------------ helpers


def run_cli(*argv: str) -> tuple[int, str, str]:
    """Run the workbench CLI in this process; (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def image_size(name: str) -> tuple[int, int]:
    return (28, 28) if name == "mnist_convnet" else (tm.IMAGE_SIZE, tm.IMAGE_SIZE)


def class_image(index: int, n_classes: int, shade: int, size: tuple[int, int]) -> np.ndarray:
    """A class-coloured image with a bright square whose place depends on the class."""
    rng = np.random.default_rng(1000 * index + shade)
    height, width = size
    hue = np.asarray([(37 * index) % 256, (91 * index + 60) % 256, (173 * index + 120) % 256], dtype=np.int16)
    image = np.clip(hue + rng.integers(-20, 21, size=(height, width, 3)), 0, 255)
    row = (index * 5) % (height - 8)
    col = (index * 7) % (width - 8)
    image[row : row + 8, col : col + 8] = 255
    return image.astype(np.uint8)


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def image_zip(name: str, path: Path) -> Path:
    """A ZIP of class folders, PER_CLASS distinct images per class at the model's input size."""
    classes = tm.KINDS[name][1]
    with zipfile.ZipFile(path, "w") as archive:
        for index, label in enumerate(classes):
            for shade in range(PER_CLASS):
                archive.writestr(f"data/{label}/{shade}.png",
                                 png_bytes(class_image(index, len(classes), shade, image_size(name))))
    return path


def sentiment_rows() -> list[tuple[str, str]]:
    """Short, distinct reviews whose sentiment word gives the label."""
    rows = []
    for i, (adjective, noun) in enumerate((a, n) for a in POSITIVE + NEGATIVE for n in NOUNS):
        article = "the" if i % 2 else "a"
        rows.append((f"{article} {noun} was {adjective}", "positive" if adjective in POSITIVE else "negative"))
    return rows


def text_csv(path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(sentiment_rows())
    return path


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


def softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def kinds_workspace(tmp_path_factory):
    """One workspace for the module: every kind registered through the CLI, with its dataset."""
    root = tmp_path_factory.mktemp("model-kinds")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKBENCH_HOME", str(root / "workspace"))
        files = tm.save_all(root / "files")
        registered = {}
        for name, path in files.items():
            extra = ["--vocabulary", str(path.with_name(f"{name}.vocab.txt"))] if name == "token_id_bilstm" else []
            code, out, err = run_cli("models", "add", str(path), *extra, "--json")
            registered[name] = (code, out, err)
        yield {"root": root, "files": files, "registered": registered, "datasets": {}}


@pytest.fixture
def kinds(kinds_workspace, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(kinds_workspace["root"] / "workspace"))
    return kinds_workspace


def linked_dataset(kinds: dict, name: str) -> str:
    """Import the kind's synthetic dataset (once) and link it to the model; its name."""
    if name in kinds["datasets"]:
        return kinds["datasets"][name]
    from workbench import user_models

    dataset = f"{name.replace('_', '-')}-data"
    folder = kinds["root"] / "data"
    folder.mkdir(exist_ok=True)
    source = (text_csv(folder / f"{name}.csv") if name in TEXT_KINDS
              else image_zip(name, folder / f"{name}.zip"))
    code, out, err = run_cli("import-data", str(source), "--name", dataset, "--for-model", name, "--json")
    assert code == 0, err
    imported = json.loads(out)["imported"]
    assert imported["skipped"] == 0 and set(imported["splits"]) >= {"train", "val", "test"}
    manifest = user_models.link_dataset(name, dataset)
    assert manifest["dataset"] == dataset
    kinds["datasets"][name] = dataset
    return dataset


# ------------------------------------------------------------------ registration and predictions


@pytest.mark.parametrize("name", KINDS)
def test_each_kind_registers_through_the_cli_with_what_the_model_tells(kinds, name):
    code, out, err = kinds["registered"][name]
    assert code == 0, err
    manifest = json.loads(out)
    kind, preprocessing = tm.EXPECTED[name]
    assert manifest["output"]["kind"] == kind
    assert manifest["classes"] == tm.KINDS[name][1]
    if name == "text_from_scratch":
        assert manifest["modality"] == "text" and "vocabulary" not in manifest["input"]
    elif name == "token_id_bilstm":
        assert manifest["modality"] == "text"
        assert manifest["input"]["vocabulary"] == f"{len(tm.VOCABULARY)} tokens"
    else:
        assert manifest["modality"] == "image"
        assert manifest["input"]["preprocessing"] == preprocessing
        assert manifest["input"]["channels"] == (1 if name == "mnist_convnet" else 3)


def _by_hand(name: str, keras_model, raw_input) -> np.ndarray:
    """The class probabilities worked out from the raw Keras output, without the workbench."""
    import tensorflow as tf

    if name == "text_from_scratch":
        z = np.asarray(keras_model(tf.constant([[raw_input]])))
    elif name == "token_id_bilstm":
        words = raw_input.lower().split()
        ids = [tm.VOCABULARY.index(w) if w in tm.VOCABULARY else tm.VOCABULARY.index("[UNK]") for w in words]
        z = np.asarray(keras_model(np.asarray([ids], dtype=np.int32)))
    else:
        pixels = raw_input.astype(np.float32)[None]
        if name == "mnist_convnet":  # grey models are fed luminance, here divided by 255
            pixels = (pixels @ np.asarray([0.299, 0.587, 0.114], np.float32))[..., None] / 255.0
        elif name == "mobilenet_transfer":
            pixels = pixels / 127.5 - 1.0
        z = np.asarray(keras_model(pixels, training=False))
    kind = tm.EXPECTED[name][0]
    if kind == "binary-logit":
        p = sigmoid(z)
        return np.concatenate([1 - p, p], axis=-1)[0]
    if kind == "sigmoid":
        return np.concatenate([1 - z, z], axis=-1)[0]
    if kind == "logits":
        return softmax(z)[0]
    return z[0]


def _sample_input(kinds: dict, name: str):
    """A raw input for the CLI (an image path or a text) and what the model sees of it."""
    if name in TEXT_KINDS:
        text = "the plot was awful but the music great"
        return text, text
    pixels = class_image(1, 2, 9, image_size(name))
    path = kinds["root"] / f"{name}-input.png"
    path.write_bytes(png_bytes(pixels))
    return str(path), pixels


@pytest.mark.parametrize("name", KINDS)
def test_predictions_are_the_models_own_output_made_probabilities(kinds, name):
    from models import store

    raw, seen = _sample_input(kinds, name)
    code, out, err = run_cli("predict", "--model", name, raw, "--json")
    assert code == 0, err
    row = json.loads(out.strip().splitlines()[-1])
    classes = tm.KINDS[name][1]
    assert list(row["probabilities"]) == classes  # binary heads: both classes named
    probabilities = np.asarray(list(row["probabilities"].values()))
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-4)
    expected = _by_hand(name, store.load(name).keras_model, seen)
    np.testing.assert_allclose(probabilities, expected, atol=2e-5)
    assert row["label"] == classes[int(np.argmax(expected))]


def _methods_for(modality: Modality) -> list[str]:
    from explainers import registry

    return [name for name, cls in registry.all_methods().items() if modality in cls.modalities]


# The "done when" methods go through the CLI (a process-like run each: load, explain,
# write the overlay); the other registered methods through the API on one loaded model,
# which checks the same and saves loading the model again for each.
CLI_METHODS = ("gradcam", "shap", "lime")


@pytest.mark.slow
@pytest.mark.parametrize("name", KINDS)
def test_every_method_explains_each_kind_and_gradcam_says_why_it_cannot(kinds, name, tmp_path):
    from explainers import registry
    from workbench import api

    raw, seen = _sample_input(kinds, name)
    modality = Modality.TEXT if name in TEXT_KINDS else Modality.IMAGE
    methods = _methods_for(modality)
    assert {"gradcam", "gradcam++", "shap", "lime"} <= set(methods)
    if modality is Modality.IMAGE:
        assert "shap-gradient" in methods
    for method in CLI_METHODS:
        params = [arg for p in QUICK_PARAMS.get(method, []) for arg in ("--param", p)]
        code, out, err = run_cli("explain", "--model", name, "--method", method, *params,
                                 "--out", str(tmp_path / method), raw, "--json")
        if name in NO_CONVOLUTION and method.startswith("gradcam"):
            assert code == 2
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error:") and "convolution" in lines[0], err
            continue
        assert code == 0, f"{method}: {err}"
        row = json.loads(out.strip().splitlines()[-1])
        assert row["method"] == method and row["target"] in tm.KINDS[name][1]
        overlay = Path(row["overlay"])
        if modality is Modality.IMAGE:
            with Image.open(overlay) as picture:  # drawn on the image as given, at its size
                assert picture.size == (seen.shape[1], seen.shape[0])
        else:
            page = overlay.read_text(encoding="utf-8")
            assert "awful" in page and "music" in page
    model = api.load_model(name)
    for method in [m for m in methods if m not in CLI_METHODS]:
        reason = registry.get(method).unavailable_reason(model)
        if name in NO_CONVOLUTION and method.startswith("gradcam"):
            assert reason is not None and "convolution" in reason
            continue
        assert reason is None, f"{method}: {reason}"
        params = dict(p.split("=") for p in QUICK_PARAMS.get(method, []))
        explanation = api.explain(model, method, [seen], **{k: int(v) for k, v in params.items()})[0]
        assert explanation.method == method and 0 <= explanation.target < len(model.classes)
        if modality is Modality.IMAGE:  # one value per pixel of the input as the model takes it
            assert explanation.values.shape == seen.shape[:2]
        else:
            assert list(explanation.tokens) == model.tokenize(seen)
        assert np.isfinite(explanation.values).all()


# ------------------------------------------------------------------ review queue, retraining


@pytest.mark.slow
@pytest.mark.parametrize("name", KINDS)
def test_audit_reads_the_penultimate_layer_and_retraining_keeps_the_kind(kinds, name):
    import keras

    from labels import features, queue
    from models import store, training
    from workbench import api, datasets, retrain

    dataset = linked_dataset(kinds, name)
    # An imported dataset has no train_noisy split: the audit takes its train split by default.
    code, out, err = run_cli("audit", "--model", name, "--k-folds", "2", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["split"] == "train" and summary["n"] == len(datasets.load(dataset, "train"))
    assert summary["feature_layer"] != features.LOG_PROBABILITIES
    model = api.load_model(name)
    outputs = features.extract(model, datasets.load(dataset, "train").x)
    assert outputs.feature_layer == summary["feature_layer"]
    # The features are the input of the last Dense layer (nested or not): its width.
    dense = [layer for _, layer in _walk(model.keras_model) if isinstance(layer, keras.layers.Dense)][-1]
    assert outputs.features.shape[1] == dense.kernel.shape[0]
    np.testing.assert_allclose(outputs.probabilities, model.predict_proba(datasets.load(dataset, "train").x),
                               atol=1e-5)
    audited = queue.audit(model, datasets.load(dataset, "train"), k_folds=2, use_cache=False)
    assert audited.probabilities.shape == (summary["n"], len(model.classes))

    seen_losses = []

    class RecordLoss(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen_losses.append(self.model.loss)

    config = replace(training.QUICK_CONFIG, head_epochs=1, finetune_epochs=0, epochs=1, batch_size=16)
    result = retrain.retrain(name, split="train", config=config, callbacks=[RecordLoss()])
    parent = store.manifest(name, result.parent)
    candidate = store.load(name, result.candidate)
    assert candidate.info.output == parent.output and candidate.info.input == parent.input
    assert candidate.info.lineage.parent == result.parent
    kind = tm.EXPECTED[name][0]
    loss = seen_losses[0]
    if kind in ("sigmoid", "binary-logit"):
        assert isinstance(loss, keras.losses.BinaryCrossentropy)
    else:
        assert isinstance(loss, keras.losses.SparseCategoricalCrossentropy)
    assert loss.get_config()["from_logits"] == (kind in ("logits", "binary-logit"))
    # The candidate predicts through the same IO: probabilities, one per class.
    test = datasets.load(dataset, "test")
    probabilities = candidate.predict_proba(test.x)
    assert probabilities.shape == (len(test), len(candidate.classes))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert 0.0 <= result.after["accuracy"] <= 1.0

    code, out, err = run_cli("models", "versions", name, "--json")
    assert code == 0, err
    listed = [row["version"] for row in json.loads(out)]
    assert listed[0] == "v1" and result.candidate in listed
    for version in ("v1", result.candidate):
        code, card, err = run_cli("models", "card", name, version)
        assert code == 0, err
        assert card.startswith("# Model card:") and version in card.splitlines()[0]


def _walk(model):
    from models.layers import _walk as walk

    return walk(model)


@pytest.mark.slow
def test_the_cli_retrains_a_one_logit_model_from_a_correction_and_promotes_it(kinds):
    """The page's path: a correction in the ledger, a retrain job (a subprocess), promotion."""
    from labels import Ledger
    from models import store
    from workbench import datasets

    name = "binary_from_scratch"
    dataset = linked_dataset(kinds, name)
    train = datasets.load(dataset, "train")
    wrong = train.classes[1 - int(train.y[0])]
    Ledger().record(dataset, train.ids[0], wrong, expected_event_id=None, annotator="tester")
    code, out, err = run_cli("retrain", "--model", name, "--quick", "--head-epochs", "1",
                             "--finetune-epochs", "0", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["labels_changed"] == 1 and result["parent"] == "v1"
    candidate = store.manifest(name, result["candidate"])
    assert candidate.output_kind == "binary-logit" and candidate.input == store.manifest(name, "v1").input
    assert candidate.lineage.labels_changed == 1
    code, _, err = run_cli("models", "promote", name, result["candidate"])
    assert code == 0, err
    raw, seen = _sample_input(kinds, name)
    code, out, err = run_cli("predict", "--model", name, raw, "--json")
    assert code == 0, err
    probabilities = np.asarray(list(json.loads(out.strip().splitlines()[-1])["probabilities"].values()))
    promoted = store.load(name)
    assert promoted.version == result["candidate"]
    np.testing.assert_allclose(probabilities, _by_hand(name, promoted.keras_model, seen), atol=2e-5)


# ------------------------------------------------------------------ dataset view and trust


@pytest.mark.slow
@pytest.mark.parametrize("name", ["binary_from_scratch", "mnist_convnet", "token_id_bilstm", "text_from_scratch"])
def test_dataset_view_and_trust_figures_on_the_new_kinds(kinds, name, tmp_path):
    from labels import features
    from workbench import api, dataset_view, datasets, model_trust

    dataset = linked_dataset(kinds, name)
    model = api.load_model(name)
    assert dataset_view.compatible_datasets(model)[0] == dataset  # its own dataset offered first
    split = datasets.load(dataset, "test")
    outputs = dataset_view.dataset_outputs(model, split, use_cache=False)
    assert outputs.feature_layer not in ("", features.LOG_PROBABILITIES)
    assert outputs.projection.shape == (len(split), 2)
    np.testing.assert_allclose(outputs.probabilities, model.predict_proba(split.x), atol=1e-5)
    result = dataset_view.metrics(outputs, split)
    assert 0.0 <= result["accuracy"] <= 1.0
    if name not in TEXT_KINDS:  # the Explain image page's first map, stored when the dataset was linked
        from workbench import first_page

        page = first_page.load_current(name)
        assert page is not None and page.stored_with_model and page.values.shape == model.image_size
        probabilities = model.predict_proba([api.prepare_input(model, split.x[0])])[0]
        np.testing.assert_allclose(page.probabilities, probabilities, atol=1e-5)
        assert page.target == int(np.argmax(probabilities)) and page.classes == tuple(model.classes)

    method = "lime" if name == "token_id_bilstm" else "gradcam"
    # The Explain page's trust panel: one explanation, its figures.
    item = split.x[0]
    explained = api.explain_input(model, method, item, params={"num_samples": 60} if method == "lime" else None)
    report = explained.trust()
    assert report.figures["probability"] == pytest.approx(
        float(model.predict_proba([item])[0, explained.explanation.target]), abs=1e-4)
    assert report.level in ("good", "mixed", "poor", "warning")

    # The card's figures: Grad-CAM where the model has a convolution, else the first method that applies.
    figures = model_trust.measure_trust(model, n=3)
    trust = figures["trust"]
    assert trust["method"] == ("shap" if name in NO_CONVOLUTION else "gradcam")
    assert trust["examples"] == len(split.x[:3])
    for key in ("deletion area (lower is better)", "insertion area (higher is better)"):
        assert 0.0 <= trust[key] <= 1.0
    assert figures["sanity"]["verdict"].split(": the explanation ")[0] in ("passes", "passes in part", "fails")
    assert model_trust.card_for(name, model.version)

    # The faithfulness report and the batch explainer, through the CLI.
    code, out, err = run_cli("evaluate", "--model", name, "--method", trust["method"], "--split", "test", "--n", "2",
                             "--sanity-n", "0", "--json")
    assert code == 0, err
    assert json.loads(out)["n"] == len(split.x[:2])
    source = kinds["root"] / "data" / (f"{name}.csv" if name in TEXT_KINDS else f"{name}.zip")
    code, out, err = run_cli("explain-batch", "--model", name, "--method", trust["method"], "--out",
                             str(tmp_path / "batch"), str(source), "--limit", "3", "--json")
    assert code == 0, err
    batch = json.loads(out)
    assert batch["explained"] == 3 and batch["failed"] == 0


def test_a_dense_head_nested_in_a_sub_model_gives_its_input_as_features(kinds):
    """text_from_scratch wraps its trained model (Dense head inside) in an outer string model:
    the features are what that nested Dense receives, not the log-probabilities."""
    import keras
    import tensorflow as tf

    from labels import features
    from workbench import api

    model = api.load_model("text_from_scratch")
    texts = [text for text, _ in sentiment_rows()[:6]]
    outputs = features.extract(model, texts)
    inner = next(layer for layer in model.keras_model.layers if isinstance(layer, keras.Model))
    vectorize = next(layer for layer in model.keras_model.layers if isinstance(layer, keras.layers.TextVectorization))
    head = inner.get_layer("predictions")
    hidden = keras.Model(inner.inputs, head.input)  # the inner graph up to the head, by hand
    expected = np.asarray(hidden(vectorize(tf.constant(texts)), training=False))
    assert outputs.feature_layer.startswith(inner.name + "/dense")
    np.testing.assert_allclose(outputs.features, expected, atol=1e-5)
    np.testing.assert_allclose(outputs.probabilities, model.predict_proba(texts), atol=1e-6)
    # Reading the features leaves the model as it was: Grad-CAM still finds its one Conv1D call.
    assert api.explain(model, "gradcam", texts[:1])[0].tokens


@pytest.mark.parametrize("name", ["binary_from_scratch", "four_class_logits"])
def test_shap_gradient_attributes_the_probability_not_the_raw_logit(kinds, name):
    """Expected gradients are complete: the map sums to p(target) - mean p(background). That
    holds for the probabilities the workbench makes of a one-unit or logit head, so the
    explained output is the probability of the class (both classes of a one-unit head)."""
    from workbench import api

    model = api.load_model(name)
    image = class_image(2, 4, 3, image_size(name))
    for target in (0, 1):
        explanation = api.explain(model, "shap-gradient", [image], [target], nsamples=50)[0]
        change = explanation.extras["probability"] - explanation.base_value
        assert explanation.values.sum() == pytest.approx(change, rel=0.2, abs=1e-3)


def test_a_nested_head_that_runs_twice_falls_back_to_log_probabilities():
    """No single penultimate layer when the sub-model holding the last Dense runs twice per input."""
    import keras

    from labels import features
    from tests.explainers import tiny_models

    keras.utils.set_random_seed(5)
    size = tiny_models.IMAGE_SIZE
    head = keras.Sequential([keras.Input((size, size, 3)), keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(len(tiny_models.IMAGE_CLASSES), activation="softmax")], name="head")
    image = keras.Input((size, size, 3))
    both = keras.layers.Average()([head(image), head(keras.layers.Rescaling(0.5)(image))])
    model = tiny_models.loaded_image_model(keras.Model(image, both))
    images = tiny_models.random_images(3)
    outputs = features.extract(model, images)
    assert outputs.feature_layer == features.LOG_PROBABILITIES
    np.testing.assert_allclose(np.exp(outputs.features), model.predict_proba(images), rtol=1e-5, atol=1e-6)
