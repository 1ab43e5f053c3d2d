"""Registering user models: the good path (files, manifest, predictions, versions), every
malicious file refused with one error line and nothing left behind, the models folder scan,
uploads, and linking an imported dataset."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import keras
import numpy as np
import pytest

from commandline import cli
from foundation.errors import ModelError
from models import store
from models.safe_load import sha256_file
from tests.models import byo_models as bm
from workbench import api, imports, user_models

REPO = Path(__file__).resolve().parents[2]
# TensorFlow's C++ start-up logging writes straight to stderr before Python can silence it;
# those lines are not the workbench's output, so the subprocess checks ignore them.
_TF_NOISE = ("WARNING: All log messages before absl", "I0000", "W0000", "E0000", "To enable the following")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("byo_files")
    paths = {
        "cnn": bm.save(bm.plain_cnn(), folder / "good", "cnn", bm.CNN_CLASSES),
        "text": bm.save(bm.text_model(), folder / "good", "text", bm.TEXT_CLASSES),
    }
    bad = folder / "bad"
    bad.mkdir()
    for key, (build, _) in bm.MALICIOUS.items():
        paths[key] = build(bad)
    return paths


def _workspace_entries(workspace: Path) -> list[str]:
    models = workspace / "models"
    return sorted(str(p.relative_to(workspace)) for p in models.rglob("*")) if models.exists() else []


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith(_TF_NOISE)]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and "Traceback" not in stderr
    return lines[0]


# ------------------------------------------------------------------- good path


def test_a_registered_model_is_stored_as_v1_with_a_complete_manifest(files, workspace):
    manifest = user_models.register_model(files["cnn"], overrides={"rescales_inputs": True})
    assert manifest["name"] == "cnn" and manifest["version"] == "v1"
    assert manifest["classes"] == bm.CNN_CLASSES
    assert manifest["created_by"] == "models add" and manifest["dataset"] is None
    assert manifest["input"] == {"type": "image", "height": 32, "width": 32, "channels": 3, "preprocessing": "inside",
                                 "rescales_inputs": True, "value_range": [0, 255]}
    assert manifest["gradcam_layer"] == "last_conv"
    assert manifest["source"] == {"path": str(files["cnn"]), "sha256": sha256_file(files["cnn"])}
    stored = workspace / "models" / "cnn" / "versions" / "v1"
    assert sorted(p.name for p in stored.iterdir()) == ["manifest.json", "model.keras"]
    # The stored file is a byte-for-byte copy, and its manifest says so.
    assert sha256_file(stored / "model.keras") == manifest["sha256"] == sha256_file(files["cnn"])
    assert json.loads((stored / "manifest.json").read_text()) == manifest
    # No staging folders are left in the workspace.
    assert [p.name for p in (workspace / "models").iterdir()] == ["cnn"]


def test_a_registered_model_predicts_like_the_original_and_gets_new_versions(files, workspace):
    user_models.register_model(files["cnn"], overrides={"rescales_inputs": False}, name="mine")
    model = api.load_model("mine")
    image = np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    original = keras.saving.load_model(files["cnn"], safe_mode=True)
    expected = np.asarray(original(image[None].astype("float32") / 255.0))  # registered as wanting 0-1
    np.testing.assert_allclose(api.predict(model, [image]), expected, rtol=1e-5, atol=1e-6)
    assert "mine" in [row["name"] for row in api.model_summaries()]
    # Versions work as for a sample model: a new version is a candidate until promoted.
    info = store.publish_version("mine", model.keras_model, dict(model.manifest, parent="v1"))
    assert info.version == "v2" and store.current_version("mine") == "v1"
    store.set_current("mine", "v2")
    assert api.load_model("mine").version == "v2"


def test_names_that_clash_and_files_already_registered_are_refused(files, workspace):
    user_models.register_model(files["text"], name="reviews")
    with pytest.raises(ModelError, match="already registered as model 'reviews'"):
        user_models.register_model(files["text"], name="other")
    with pytest.raises(ModelError, match="a model named 'reviews' already exists"):
        user_models.register_model(files["cnn"], name="reviews", overrides={"rescales_inputs": True})
    if "digits" in store.model_names():  # a shipped sample model
        with pytest.raises(ModelError, match="a model named 'digits' already exists"):
            user_models.register_model(files["cnn"], name="digits", overrides={"rescales_inputs": True})
    with pytest.raises(ModelError, match="lowercase letters"):
        user_models.register_model(files["cnn"], name="../escape", overrides={"rescales_inputs": True})
    assert [p.name for p in (workspace / "models").iterdir()] == ["reviews"]


# -------------------------------------------------------------------- refusals


@pytest.mark.parametrize("key", sorted(bm.MALICIOUS))
def test_malicious_model_files_are_refused_through_the_cli(files, workspace, capsys, key):
    code = cli.main(["models", "add", str(files[key]), "--json"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    line = _one_error_line(captured.err)
    assert bm.MALICIOUS[key][1] in line
    assert _workspace_entries(workspace) == []  # nothing stored, no staging folder left


def test_a_model_whose_class_names_are_unknown_is_refused_with_what_to_pass(tmp_path, workspace, capsys):
    path = bm.save(bm.plain_cnn(), tmp_path, "anon")
    assert cli.main(["models", "add", str(path), "--rescales-inputs", "yes"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "class names" in line and "--classes FILE" in line
    classes = tmp_path / "names.json"
    classes.write_text(json.dumps(["l", "r"]))
    assert cli.main(["models", "add", str(path), "--classes", str(classes), "--preprocessing", "caffe",
                     "--name", "anon-1", "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["classes"] == ["l", "r"] and "rescales_inputs" not in manifest["input"]
    assert manifest["input"]["preprocessing"] == "caffe" and manifest["output"] == {"kind": "softmax"}
    assert manifest["inferred"]["classes"] == "names.json" and manifest["inferred"]["preprocessing"] == "given"


def test_a_model_that_does_not_tell_its_preprocessing_gets_0_1_recorded_as_assumed(tmp_path, workspace, capsys):
    path = bm.save(bm.plain_cnn(), tmp_path, "anon")
    (tmp_path / "anon.classes.json").write_text(json.dumps(["l", "r"]))
    assert cli.main(["models", "add", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    manifest = json.loads(captured.out)
    assert manifest["input"]["preprocessing"] == "0-1" and manifest["inferred"]["preprocessing"].startswith("assumed")
    assert "0-1 was assumed" in captured.err
    changed = bm.plain_cnn()
    changed.layers[0].kernel.assign(changed.layers[0].kernel * 2.0)  # other weights: not a duplicate
    other = bm.save(changed, tmp_path / "other", "anon", classes=["l", "r"])
    with pytest.raises(ModelError, match="how the model expects its pixels"):
        user_models.register(other, name="asked", assume_preprocessing=False)


def _run_cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, WORKBENCH_HOME=str(home))
    return subprocess.run([str(REPO / ".venv" / "bin" / "workbench"), *args], capture_output=True, text=True,
                          env=env, cwd=home.parent, timeout=300)


@pytest.mark.slow
def test_models_add_in_a_real_process_prints_the_manifest_or_one_error_line(files, tmp_path):
    home = tmp_path / "ws"
    good = _run_cli("models", "add", str(files["text"]), "--json", home=home)
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["name"] == "text"
    bad = _run_cli("models", "add", str(files["lambda"]), home=home)
    assert bad.returncode == 2 and bad.stdout == ""
    assert "Lambda layer" in _one_error_line(bad.stderr)


# ---------------------------------------------------------------- models folder


def test_scanning_the_models_folder_registers_each_good_file_once(files, workspace, tmp_path, monkeypatch):
    folder = tmp_path / "admin_models"
    folder.mkdir()
    for key in ("text", "h5", "lambda"):
        (folder / files[key].name).write_bytes(files[key].read_bytes())
    (folder / "text.classes.json").write_text(json.dumps(bm.TEXT_CLASSES))
    (folder / "readme.md").write_text("not a model")
    monkeypatch.setenv("WORKBENCH_MODELS_DIR", str(folder))
    assert [p.name for p in user_models.models_dir_files()] == ["lambda.keras", "legacy.h5", "text.keras"]
    first = {r.path.name: (r.status, r.model) for r in user_models.scan_models_dir()}
    assert first == {"lambda.keras": ("refused", None), "legacy.h5": ("refused", None),
                     "text.keras": ("registered", "text")}
    second = {r.path.name: (r.status, r.model) for r in user_models.scan_models_dir()}
    assert second["text.keras"] == ("already registered", "text")
    assert [p.name for p in (workspace / "models").iterdir()] == ["text"]


def test_scan_without_a_configured_folder_says_how_to_set_one(workspace, monkeypatch, capsys):
    monkeypatch.delenv("WORKBENCH_MODELS_DIR", raising=False)
    assert cli.main(["models", "scan"]) == 2
    assert "WORKBENCH_MODELS_DIR is not set" in _one_error_line(capsys.readouterr().err)


# -------------------------------------------------------------------- uploads


def test_uploads_are_refused_unless_allowed_and_leave_no_temporary_file(files, workspace, monkeypatch):
    data = files["cnn"].read_bytes()
    monkeypatch.delenv("WORKBENCH_ALLOW_MODEL_UPLOAD", raising=False)
    with pytest.raises(ModelError, match="WORKBENCH_ALLOW_MODEL_UPLOAD=1"):
        user_models.register_uploaded_model(data, "cnn.keras", classes=bm.CNN_CLASSES)
    monkeypatch.setenv("WORKBENCH_ALLOW_MODEL_UPLOAD", "1")
    with pytest.raises(ModelError, match="legacy HDF5"):
        user_models.register_uploaded_model(files["h5"].read_bytes(), "weights.h5")
    manifest = user_models.register_uploaded_model(data, "My CNN.keras", classes=bm.CNN_CLASSES,
                                                   overrides={"rescales_inputs": True})
    assert manifest["name"] == "my-cnn" and manifest["source"]["path"] == "upload: My CNN.keras"
    assert [p.name for p in (workspace / "models").iterdir()] == ["my-cnn"]


# ------------------------------------------------------------------- datasets


def _review_csv(n: int = 12) -> bytes:
    rows = ["text,label"]
    for i in range(n):
        rows.append(f"good great movie number {i},positive" if i % 2 else f"bad awful plot number {i},negative")
    return ("\n".join(rows) + "\n").encode()


def test_a_model_can_name_an_imported_dataset_and_is_measured_on_its_test_split(files, workspace):
    plan = imports.import_text_csv(_review_csv(), "text", "label", "reviews-data", for_model=None)
    imports.commit(plan)
    manifest = user_models.register_model(files["text"], dataset="reviews-data")
    assert manifest["dataset"] == "reviews-data"
    from workbench import datasets

    test = datasets.load("reviews-data", "test")
    predicted = api.load_model("text").predict_proba(list(test.x)).argmax(axis=1)
    assert manifest["metrics"]["test"]["accuracy"] == pytest.approx(float((predicted == test.y).mean()), abs=1e-4)


def test_a_dataset_with_other_classes_is_refused_and_link_dataset_fills_a_missing_one(files, workspace):
    csv = b"text,label\n" + b"".join(f"t{i},{'a' if i % 2 else 'b'}\n".encode() for i in range(8))
    imports.commit(imports.import_text_csv(csv, "text", "label", "ab"))
    with pytest.raises(ModelError, match="has classes a, b but the model has negative, positive"):
        user_models.register_model(files["text"], dataset="ab")
    user_models.register_model(files["text"])
    imports.commit(imports.import_text_csv(_review_csv(), "text", "label", "later", for_model="text"))
    linked = user_models.link_dataset("text", "later")
    assert linked["dataset"] == "later" and store.read_manifest("text")["dataset"] == "later"
    assert "accuracy" in linked["metrics"]["test"]
    # The model file is untouched, so loading still verifies its sha256.
    assert api.load_model("text").manifest["dataset"] == "later"
    with pytest.raises(ModelError, match="already uses dataset 'later'"):
        user_models.link_dataset("text", "ab")


def test_linking_a_dataset_leaves_the_manifest_bytes_untouched_and_is_seen_by_every_reader(files, workspace):
    user_models.register_model(files["text"])
    folder = store.version_path("text", "v1")
    before = {name: (folder / name).read_bytes() for name in (store.MANIFEST_FILE, store.MODEL_FILE)}
    imports.commit(imports.import_text_csv(_review_csv(), "text", "label", "later", for_model="text"))
    linked = user_models.link_dataset("text", "later")
    assert {name: (folder / name).read_bytes() for name in before} == before  # written once, never rewritten
    assert json.loads(before[store.MANIFEST_FILE])["dataset"] is None
    link = workspace / "models" / "text" / "dataset-links" / "v1.json"
    assert json.loads(link.read_text())["dataset"] == "later"
    # Every typed reader (and so the pages) sees the link; the sha256 still verifies on load.
    assert store.manifest("text").dataset == "later" and linked["dataset"] == "later"
    loaded = store.load("text")
    assert loaded.info.dataset == "later" and loaded.info.metrics.test.accuracy == linked["metrics"]["test"]["accuracy"]
    assert [v.info.dataset for v in store.list_versions("text")] == ["later"]
    # A second link is refused and changes neither file.
    link_bytes = link.read_bytes()
    with pytest.raises(ModelError, match="already uses dataset 'later'"):
        user_models.link_dataset("text", "later")
    with pytest.raises(ModelError, match="already has a linked dataset"):
        store.write_dataset_link("text", "v1", "other", store.Metrics())
    assert link.read_bytes() == link_bytes and (folder / store.MANIFEST_FILE).read_bytes() == before[store.MANIFEST_FILE]


def test_a_damaged_dataset_link_is_one_model_error(files, workspace):
    user_models.register_model(files["text"])
    link = workspace / "models" / "text" / "dataset-links" / "v1.json"
    link.parent.mkdir(parents=True)
    for text, says in (("{not json", "not valid JSON"), ('{"dataset": "../x"}', "is not a valid dataset name")):
        link.write_text(text)
        with pytest.raises(ModelError, match=says):
            store.manifest("text")
