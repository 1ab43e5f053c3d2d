"""Train -> save -> load -> predict round trips on tiny configurations."""
import numpy as np
import pytest

import sample_data
from models import store
from models.loaded import LoadedModel
from models.manifest import Manifest
from models.safe_load import load_keras_model, sha256_file
from workbench import samples


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Three sample models trained once on a quick configuration, with their typed manifests."""
    out = tmp_path_factory.mktemp("zoo")
    config = samples.quick_config()
    return out, {name: samples.train_sample(name, out, config) for name in ("digits", "shapes", "headlines")}


@pytest.fixture(scope="module")
def tiny_zoo(trained):
    """The same, with the manifests as JSON (as written to disk): what most assertions check."""
    out, manifests = trained
    return out, {name: manifest.to_dict() for name, manifest in manifests.items()}


def test_train_sample_returns_the_manifest_it_wrote(trained):
    out, manifests = trained
    on_disk = store.read_manifest_file(out / "digits" / store.MANIFEST_FILE, "digits", "v1")
    assert isinstance(manifests["digits"], Manifest) and manifests["digits"] == on_disk
    assert manifests["digits"].lineage.sha256 == sha256_file(out / "digits" / "model.keras")


def test_an_image_model_is_written_with_its_first_page(trained):
    """What the Explain image page shows first (workbench/first_page.py), computed from the file as written,
    so the app's first start shows it at once; a text model has none."""
    import json

    from workbench import first_page

    out, manifests = trained
    for name in ("digits", "shapes"):
        record = json.loads((out / name / "first_page.json").read_text())
        assert (record["name"], record["version"], record["sha256"]) == (name, "v1", manifests[name].lineage.sha256)
        assert record["format"] == first_page.FORMAT and record["trust_figures"]
        with np.load(out / name / "first_page.npz", allow_pickle=False) as arrays:
            assert arrays["values"].shape == (64, 64) and arrays["pixels"].dtype == np.uint8
    assert not (out / "headlines" / "first_page.json").exists()


def test_manifest_records_what_a_user_needs(tiny_zoo):
    out, manifests = tiny_zoo
    manifest = manifests["digits"]
    assert manifest["classes"] == [str(i) for i in range(10)]
    assert manifest["input"]["height"] == 64 and manifest["input"]["rescales_inputs"] is True
    assert 0.0 <= manifest["metrics"]["test"]["accuracy"] <= 1.0
    assert len(manifest["metrics"]["test"]["confusion"]) == 10
    assert manifest["data_hash"] == sample_data.dataset_hash(
        samples.training._limited(sample_data.load("digits", "train"), samples.quick_config().limit)
    )
    assert manifest["sha256"] == sha256_file(out / "digits" / "model.keras")
    assert manifest["gradcam_layer"].startswith("backbone/")


def test_saved_model_predicts_like_the_trained_one(tiny_zoo):
    out, manifests = tiny_zoo
    data = sample_data.load("digits", "test")
    keras_model = load_keras_model(out / "digits" / "model.keras")
    loaded = LoadedModel("digits", "v1", manifests["digits"], keras_model)
    probabilities = loaded.predict_proba(list(data.x[:5]))
    assert probabilities.shape == (5, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    direct = keras_model.predict(np.asarray(data.x[:5], dtype="float32"), verbose=0)
    np.testing.assert_allclose(probabilities, direct, atol=1e-5)


def test_shapes_model_reuses_the_digits_backbone(tiny_zoo):
    out, _ = tiny_zoo
    digits = load_keras_model(out / "digits" / "model.keras")
    shapes = load_keras_model(out / "shapes" / "model.keras")
    first_digits = digits.get_layer("backbone").layers[1].get_weights()[0]
    first_shapes = shapes.get_layer("backbone").layers[1].get_weights()[0]
    # The bottom of the base stays frozen in the recipe: it is exactly the digits filters.
    np.testing.assert_array_equal(first_digits, first_shapes)
    assert shapes.output_shape[-1] == len(sample_data.classes("shapes"))


def test_text_model_takes_raw_strings_and_ships_its_vocabulary(tiny_zoo):
    out, manifests = tiny_zoo
    import json

    vocabulary = json.loads((out / "headlines" / "vocabulary.json").read_text())
    assert vocabulary[:2] == ["", "[UNK]"] and len(vocabulary) == manifests["headlines"]["vocabulary_size"]
    model = LoadedModel("headlines", "v1", manifests["headlines"], load_keras_model(out / "headlines" / "model.keras"))
    probabilities = model.predict_proba(["Shares of Acme soar after record profit", "Acme names new CFO"])
    assert probabilities.shape == (2, 3)


def test_applications_backbone_loads_weights_from_a_local_file(tmp_path):
    from models import architectures

    base, preprocessing = architectures.applications_backbone("mobilenetv2", (64, 64, 3), None)
    weights = tmp_path / "mobilenet.weights.h5"
    base.save_weights(weights)
    reloaded, _ = architectures.applications_backbone("mobilenetv2", (64, 64, 3), weights)
    np.testing.assert_array_equal(base.layers[1].get_weights()[0], reloaded.layers[1].get_weights()[0])
    model = architectures.attach_head(reloaded, 4, input_shape=(64, 64, 3), preprocessing=preprocessing, dropout=0.1)
    assert model.output_shape == (None, 4)


def test_zoo_models_are_registered_as_version_one():
    for name in samples.SAMPLE_MODELS:
        manifest = store.read_manifest(name, "v1")
        assert manifest["name"] == name and manifest["sha256"]


def test_models_expecting_unit_pixels_are_trained_on_unit_pixels():
    from models import training
    from models.manifest import InputSpec

    data = sample_data.load("digits", "val")
    assert InputSpec(rescales_inputs=True).pixel_scale == 1.0
    scale = InputSpec(rescales_inputs=False).pixel_scale
    assert scale == 1.0 / 255.0
    x = training.as_model_input(data, scale)
    assert x.max() <= 1.0 and x.max() > 0.5  # the digits use the full byte range
    np.testing.assert_allclose(x * 255.0, training.as_model_input(data), rtol=1e-5)


def test_the_noisy_twin_learns_the_flipped_labels_and_says_so(trained):
    out, _ = trained
    manifest = samples.train_sample("headlines", out, samples.quick_config(), noisy=True)
    assert manifest.name == "headlines-noisy" and (out / "headlines-noisy" / "model.keras").is_file()
    assert manifest.lineage.train_split == "train_noisy"
    noisy = sample_data.load("headlines", "train_noisy")
    clean = sample_data.load("headlines", "train")
    limit = samples.quick_config().limit
    # It trained on the flipped labels: the hash is that of the noisy split, not of the clean one.
    assert manifest.lineage.data_hash == sample_data.dataset_hash(samples.training._limited(noisy, limit))
    assert manifest.lineage.data_hash != sample_data.dataset_hash(samples.training._limited(clean, limit))
    assert manifest.training.command == "workbench train headlines --noisy"
    assert "train_noisy" in manifest.intended_use
    # It is scored on the clean test split, like every sample model.
    assert manifest.metrics.test.n == len(sample_data.load("headlines", "test"))


def test_the_review_queue_uses_the_noisy_twin_only_for_the_noisy_split():
    available = ["digits", "digits-noisy", "headlines", "mine"]
    assert samples.review_model_name("digits", "train_noisy", available) == "digits-noisy"
    assert samples.review_model_name("digits", "train", available) == "digits"  # the clean split: as given
    assert samples.review_model_name("headlines", "train_noisy", available) == "headlines"  # no twin shipped
    assert samples.review_model_name("digits-noisy", "train_noisy", available) == "digits-noisy"
    assert samples.review_model_name("mine", "train_noisy", available + ["mine-noisy"]) == "mine"  # users' models as given
