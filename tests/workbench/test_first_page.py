"""The start-up worker's first map (workbench/first_page.py): what the Explain image page computes
first, computed the same way, stored per model version and file digest, read back whole or not at all."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from explainers.gradcam import GradCAM
from models import store
from workbench import api, datasets, first_page

ROOT = Path(__file__).resolve().parents[2]
ZOO_IMAGE_MODELS = ("digits", "digits-noisy", "shapes", "shapes-noisy", "shapes-shortcut", "shapes-shortcut-noisy")

pytestmark = pytest.mark.usefixtures("no_shipped_first_pages")  # the worker's path, but where marked `shipped`


@pytest.fixture(scope="module")
def digits_page():
    return first_page.compute("digits")


def test_the_first_page_is_what_the_page_computes_for_its_first_sample(digits_page):
    page = digits_page
    model = api.load_model("digits")
    data = datasets.load("digits", "test")
    assert (page.name, page.version, page.dataset) == ("digits", store.current_version("digits"), "digits")
    assert page.sha256 == store.manifest("digits").lineage.sha256
    assert page.example_id == data.ids[0] and page.true_label == data.classes[int(data.y[0])]
    np.testing.assert_array_equal(page.pixels, data.x[0])
    model_input = api.prepare_input(model, data.x[0])
    probabilities = model.predict_proba([model_input])[0]
    np.testing.assert_allclose(page.probabilities, probabilities, atol=1e-6)
    assert page.target == int(probabilities.argmax()) and page.classes == tuple(model.classes)
    # The map: Grad-CAM computed directly (not through the core's cache) for the predicted class.
    direct = GradCAM(model).explain([model_input], [page.target])[0]
    assert page.values.shape == direct.values.shape == model.image_size
    np.testing.assert_allclose(page.values, direct.values, atol=1e-5)
    # Its trust figures and randomisation check, as the page's trust panel measures them.
    explained = api.explain_input(model, "gradcam", model_input, page.target,
                                  ground_truth=api.ground_truth_of(data, 0))
    trust = explained.trust()
    assert page.trust_figures == pytest.approx(trust.figures, abs=1e-6)
    assert (page.trust_level, page.trust_verdict) == (trust.level, trust.verdict)
    cascade = explained.sanity(compute=False)
    assert page.sanity_outcome == cascade.outcome
    assert page.sanity_top_similarity == pytest.approx(cascade.top_similarity)


def test_a_stored_first_page_reads_back_whole(digits_page, workspace):
    assert first_page.load_current("digits") is None  # nothing stored in a fresh workspace
    first_page.save(digits_page)
    back = first_page.load_current("digits")
    assert back is not None
    for name in ("name", "version", "sha256", "dataset", "example_id", "true_label", "classes", "target",
                 "map_seconds", "trust_figures", "trust_level", "trust_verdict", "sanity_outcome", "sanity_top_similarity"):
        assert getattr(back, name) == getattr(digits_page, name), name
    for name in ("pixels", "probabilities", "values"):
        np.testing.assert_array_equal(getattr(back, name), getattr(digits_page, name))
    assert back.pixels.dtype == np.uint8


def _stored(workspace_page) -> tuple[Path, Path]:
    json_path = first_page.save(workspace_page)
    return json_path, json_path.with_suffix(".npz")


def test_another_file_format_or_version_is_not_shown(digits_page, workspace):
    json_path, _ = _stored(digits_page)
    record = json.loads(json_path.read_text())
    for change in ({"sha256": "0" * 64}, {"format": first_page.FORMAT + 1}, {"version": "v9"}):
        json_path.write_text(json.dumps({**record, **change}))
        assert first_page.load_current("digits") is None, change
    json_path.write_text(json.dumps(record))
    assert first_page.load_current("digits") is not None


@pytest.mark.parametrize("damage", ["truncated", "not_an_archive", "pickled", "nan_map", "wrong_classes", "no_json"])
def test_a_damaged_first_page_is_ignored_not_shown(digits_page, workspace, damage):
    json_path, npz_path = _stored(digits_page)
    if damage == "truncated":
        npz_path.write_bytes(npz_path.read_bytes()[:200])
    elif damage == "not_an_archive":
        npz_path.write_bytes(b"\x00" * 64)
    elif damage == "pickled":  # arrays of Python objects need pickle to read: refused
        np.savez(npz_path, pixels=np.array([object()]), probabilities=digits_page.probabilities,
                 values=digits_page.values)
    elif damage == "nan_map":
        save = replace(digits_page, values=np.full_like(digits_page.values, np.nan))
        first_page.save(save)
    elif damage == "wrong_classes":
        record = json.loads(json_path.read_text())
        json_path.write_text(json.dumps({**record, "classes": record["classes"][:3]}))
    elif damage == "no_json":
        json_path.unlink()
    assert first_page.load_current("digits") is None


def test_the_worker_is_started_only_when_there_is_something_to_compute(digits_page, workspace):
    assert first_page.has_first_page("digits") and not first_page.has_first_page("headlines")  # a text model
    assert first_page.start_worker(None) is None and first_page.start_worker("headlines") is None
    first_page.save(digits_page)
    assert first_page.start_worker("digits") is None  # stored already


def test_the_worker_process_stores_the_first_page(workspace, capsys):
    worker = first_page.start_worker("digits")
    assert worker is not None
    assert first_page.wait_for_worker(worker, timeout=300)
    page = first_page.load_current("digits")
    assert page is not None and page.worker_seconds > 0
    assert "first map of digits v1 ready" in first_page.worker_log().read_text()
    assert capsys.readouterr().err == ""


def test_a_failing_worker_is_one_line_in_the_log(workspace, capsys):
    done = subprocess.run([sys.executable, "-m", "workbench.first_page", "--model", "headlines"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == "error: model headlines has no sample images to show first"
    worker = subprocess.Popen([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"],
                              stdout=open(first_page.worker_log(), "w"), stderr=subprocess.STDOUT)
    assert first_page.wait_for_worker(worker, timeout=60) is False
    assert capsys.readouterr().err.strip() == ("workbench: the first-map worker failed (boom); "
                                               "the page computes its map itself")


def test_a_worker_past_its_time_is_stopped(workspace, capsys):
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    assert first_page.wait_for_worker(worker, timeout=0.5) is False
    assert worker.returncode is not None
    assert "took over 0 s and was stopped" in capsys.readouterr().err


def test_the_server_stops_waiting_for_the_worker_when_a_page_needs_its_model(workspace):
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        asked = []

        def wanted() -> bool:  # a page asks for the server's model on the fourth look
            asked.append(1)
            return len(asked) > 3

        assert first_page.wait_for_worker(worker, timeout=60, until=wanted) is None
        assert worker.poll() is None  # it goes on: its result is for later starts
    finally:
        worker.kill()
        worker.wait()


def _same_page(found, expected) -> None:
    for name in ("name", "version", "sha256", "dataset", "split_size", "example_id", "true_label", "classes", "target",
                 "trust_level", "trust_verdict", "sanity_outcome"):
        assert getattr(found, name) == getattr(expected, name), name
    np.testing.assert_array_equal(found.pixels, expected.pixels)
    np.testing.assert_allclose(found.probabilities, expected.probabilities, atol=1e-5)
    np.testing.assert_allclose(found.values, expected.values, atol=1e-4)
    assert found.trust_figures == pytest.approx(expected.trust_figures, abs=1e-4)


@pytest.mark.shipped
@pytest.mark.parametrize("name", ZOO_IMAGE_MODELS)
def test_each_sample_image_model_ships_the_first_page_it_would_compute(name, workspace):
    """Written by `workbench train` (or `python -m workbench.first_page --with-model`) beside the model file;
    a stale one (a retrained file, a new FORMAT) fails here, not in front of a user."""
    shipped = first_page.load_current(name)
    assert shipped is not None and shipped.stored_with_model
    assert first_page.start_worker(name) is None  # nothing to compute at start-up
    _same_page(shipped, first_page.compute(name))


@pytest.mark.shipped
def test_the_first_page_stored_with_the_model_is_read_before_the_workers(digits_page, workspace, monkeypatch):
    first_page.save(replace(digits_page, map_seconds=123.0))  # a worker's result for the same version
    found = first_page.load_current("digits")
    assert found.stored_with_model and found.map_seconds != 123.0
    both = first_page.stamp("digits")
    monkeypatch.setenv(first_page.SHIPPED_ENV, "off")
    found = first_page.load_current("digits")
    assert not found.stored_with_model and found.map_seconds == 123.0
    assert len(first_page.stamp("digits")) == 1 and len(both) == 2  # a new result changes what the page sees


@pytest.mark.shipped
def test_a_users_model_gets_its_first_page_stored_beside_it(workspace, tmp_path):
    """A model registered from a file (a user's own) with a dataset the page offers: registration stores
    its first page in its version folder in the workspace, the page reads it from there, and the command
    writes it again when it is missing."""
    from workbench import user_models

    own = tmp_path / "my_digits.keras"
    api.load_model("digits").keras_model.save(own)  # another file than the sample model's (it is registered)
    info = user_models.register(own, classes=list(store.manifest("digits").classes), name="my-digits",
                                dataset="digits")
    folder = store.version_path("my-digits", info.version)
    assert folder.is_relative_to(workspace) and (folder / "first_page.json").is_file()
    found = first_page.load_current("my-digits")
    assert found is not None and found.stored_with_model and found.name == "my-digits"
    _same_page(found, first_page.compute("my-digits"))
    (folder / "first_page.json").unlink()
    assert first_page.load_current("my-digits") is None
    done = subprocess.run([sys.executable, "-m", "workbench.first_page", "--model", "my-digits", "--with-model"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert first_page.load_current("my-digits").stored_with_model
    done = subprocess.run([sys.executable, "-m", "workbench.first_page", "--model", "headlines", "--with-model"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == "error: model headlines has no sample images to show first"


def test_storing_a_first_page_never_fails_its_caller(digits_page, workspace, tmp_path, monkeypatch, capsys):
    """Training, retraining and registration call it: a failure is one line, and nothing is written."""
    model = api.load_model("digits")

    def broken(_model):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(first_page, "compute_for", broken)
    folder = tmp_path / "version"
    folder.mkdir()
    assert first_page.store_with_model(model, folder) is None
    assert not list(folder.iterdir())
    assert capsys.readouterr().err.strip() == "workbench: the first page of digits v1 was not stored (out of memory)"
    assert first_page.store_for_version("headlines", "v1") is None  # a text model: nothing loaded, nothing said
    assert capsys.readouterr().err == ""
