"""The Ray engine (`explain-batch --engine ray`): same labels as the local engine, and a rerun skips finished inputs.

A real local Ray (2 CPUs, a small object store) and the shipped `shapes` model; Ray is shut down
after the module, whatever happened.
"""
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from commandline.cli import main
from workbench import api, batch, ray_engine

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "sample_data" / "examples"


@pytest.fixture(scope="module")
def ray_local():
    ray_engine.start(num_cpus=2, object_store_memory=80 * 1024 * 1024)
    try:
        yield
    finally:
        ray_engine.stop()


def _images(folder: Path, n: int) -> Path:
    """`n` varied inputs: the shipped shape examples, shifted and noised, so the labels are not all one class."""
    folder.mkdir(parents=True)
    bases = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(EXAMPLES.glob("shape_*"))]
    rng = np.random.default_rng(0)
    for i in range(n):
        base = np.roll(bases[i % len(bases)], i, axis=1).astype(np.int16)
        noisy = np.clip(base + rng.integers(-20, 21, size=base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(folder / f"img{i:03d}.png")
    (folder / "broken.png").write_bytes(b"not an image")
    return folder


def test_ray_labels_equal_local_labels(tmp_path, ray_local, capsys):
    folder = _images(tmp_path / "in", 20)
    model = api.load_model("shapes")
    items = batch.read_image_files(batch.image_files_in(folder), root=folder.parent)
    local = batch.run_batch(model, items, "gradcam", batch_size=8,
                            overlays=batch.FolderSink(tmp_path / "local_overlays")).table
    assert main(["explain-batch", "--engine", "ray", "--model", "shapes", "--method", "gradcam", str(folder),
                 "--out", str(tmp_path / "out"), "--batch-size", "8", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["inputs"], summary["explained"], summary["failed"], summary["overlays"]) == (21, 20, 1, 20)
    table = pd.read_parquet(tmp_path / "out" / ray_engine.RESULTS)
    assert list(table["input"]) == list(local["input"])
    assert list(table["predicted"].fillna("")) == list(local["predicted"].fillna(""))
    assert len(set(table["predicted"].dropna())) > 1  # the comparison is not one constant label
    np.testing.assert_allclose(table["confidence"].fillna(0), local["confidence"].fillna(0), atol=1e-4)
    ok = table[table["status"] == "ok"]
    assert ok["map_top10_share"].between(0.1, 1.0).all() and ok["method"].eq("gradcam").all()
    written = sorted(p.name for p in (tmp_path / "out" / "overlays").iterdir())
    assert written == sorted(ok["overlay"]) and len(set(written)) == 20
    assert list(table["overlay"].fillna("")) == list(local["overlay"].fillna(""))  # the local engine's names
    assert list(table["index"]) == list(range(21))


def test_rerun_skips_finished_inputs(tmp_path, ray_local):
    folder = _images(tmp_path / "in", 20)
    out = tmp_path / "out"
    first = ray_engine.run("shapes", [folder], out, "gradcam", batch_size=4, limit=10)
    assert (first["computed"], first["skipped"], first["inputs"]) == (10, 0, 10)
    parts_before = {p.name for p in (out / ray_engine.PARTS).glob("*.parquet")}
    reports = []
    second = ray_engine.run("shapes", [folder], out, "gradcam", batch_size=4,
                            progress=lambda done, total, left: reports.append((done, total)))
    assert (second["computed"], second["skipped"], second["inputs"]) == (11, 10, 21)
    # Progress counts the finished parts' rows (the first run's 10 included), ending at the total.
    assert reports[-1] == (21, 21) and all(total == 21 for _, total in reports)
    assert [done for done, _ in reports] == sorted(done for done, _ in reports) and reports[0][0] >= 10
    # The first run's parts are untouched and every input appears exactly once in the result.
    assert parts_before <= {p.name for p in (out / ray_engine.PARTS).glob("*.parquet")}
    table = pd.read_parquet(out / ray_engine.RESULTS)
    assert table["path"].is_unique and len(table) == 21
    third = ray_engine.run("shapes", [folder], out, "gradcam", batch_size=4)
    assert (third["computed"], third["skipped"]) == (0, 21)


def test_zip_and_a_list_of_paths(tmp_path, ray_local):
    archive = tmp_path / "pics.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ("shape_circle.png", "shape_star.png"):
            zf.write(EXAMPLES / name, f"pics/{name}")
    (tmp_path / "more").mkdir()
    for name in ("shape_triangle.png", "shape_square.jpg"):
        (tmp_path / "more" / name).write_bytes((EXAMPLES / name).read_bytes())
    listing = tmp_path / "list.csv"
    listing.write_text("path\nmore/shape_triangle.png\nmore/shape_square.jpg\n", encoding="utf-8")
    out = tmp_path / "out"
    first = ray_engine.run("shapes", [archive, listing], out, "gradcam", batch_size=2)
    assert (first["computed"], first["explained"]) == (4, 4)
    table = pd.read_parquet(out / ray_engine.RESULTS)
    assert list(table["input"]) == ["pics/shape_circle.png", "pics/shape_star.png", "more/shape_triangle.png",
                                    "more/shape_square.jpg"]
    model = api.load_model("shapes")
    files = [EXAMPLES / n for n in ("shape_circle.png", "shape_star.png", "shape_triangle.png", "shape_square.jpg")]
    local = batch.run_batch(model, batch.read_image_files(files), "gradcam").table
    assert list(table["predicted"]) == list(local["predicted"])
    again = ray_engine.run("shapes", [archive, listing], out, "gradcam", batch_size=2)
    assert (again["computed"], again["skipped"]) == (0, 4)  # the zip is found extracted, its paths unchanged


def test_audit_on_ray_ranks_as_the_local_engine(ray_local, capsys):
    """The forward passes on Ray actors, the folds and ranking as locally: the same queue."""
    from labels import queue
    from workbench import datasets

    model = api.load_model("digits-noisy")
    dataset = datasets.load("digits", "train_noisy")
    local = queue.audit(model, dataset, use_cache=False, apply_corrections=False)
    assert main(["audit", "--engine", "ray", "--model", "digits-noisy", "--as-given", "--ignore-ledger",
                 "--no-cache", "--top", "40", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["engine"] == "ray" and summary["n"] == len(dataset.ids)
    expected = local.summary(top=40)["ranking"]
    assert [r["example_id"] for r in summary["ranking"]] == [r["example_id"] for r in expected]
    assert summary["recall_at_2x"] == pytest.approx(local.recall_at_2x)


def test_text_features_on_ray_equal_the_local_ones(ray_local):
    """A text model's features and probabilities on one Ray actor, in input order, as extracted locally."""
    from labels import features
    from workbench import datasets, ray_features

    model = api.load_model("headlines-noisy")
    texts = datasets.load("headlines", "train_noisy").x[:300]
    local = features.extract(model, texts)
    on_ray = ray_features.extract(model, texts, batch_size=64, workers=1)
    assert on_ray.feature_layer == local.feature_layer
    np.testing.assert_allclose(on_ray.features, local.features, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(on_ray.probabilities, local.probabilities, atol=1e-5)


def test_scale_bench_reports_per_input_costs_and_a_projection(ray_local):
    """`workbench bench --scale`'s explain-batch part on a few generated images (speeds are not asserted)."""
    from benchmarks import scale_bench

    report = scale_bench.run(96, "shapes", batch_size=16, worker_counts=(1,))
    local, ray = report["rows"]
    assert (local["engine"], ray["engine"], ray["workers"]) == ("local", "ray", 1)
    assert local["inputs"] == local["explained"] == ray["inputs"] == ray["explained"] == 96
    assert local["ms_per_input"] > 0 and ray["ms_per_input"] > 0 and ray["start_up_s"] >= 0
    assert ray["ratio_to_local"] == pytest.approx(ray["ms_per_input"] / local["ms_per_input"], rel=0.01)
    projection = report["projection"]
    assert projection["core_ms_per_input"] == pytest.approx(ray["ms_per_input"], rel=0.01)
    expected_hours = 10_000_000 * projection["core_ms_per_input"] / 1000 / (10 * 16) / 3600
    assert projection["hours"] == pytest.approx(expected_hours, abs=0.01)


def test_generated_images_are_deterministic(tmp_path):
    from benchmarks import scale_bench

    first = scale_bench.generate_images(tmp_path / "a", 5)
    second = scale_bench.generate_images(tmp_path / "b", 5)
    a = [np.asarray(Image.open(p)) for p in sorted(first.iterdir())]
    b = [np.asarray(Image.open(p)) for p in sorted(second.iterdir())]
    assert len(a) == 5 and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert len({x.tobytes() for x in a}) == 5  # five different images, not one repeated


def test_ray_explains_texts_as_the_local_engine(tmp_path, ray_local, capsys):
    """A text model on Ray: the CSV read by the local engine's reader, same labels and overlay names; resumable."""
    from workbench import datasets

    texts = list(datasets.load("headlines", "test").x[:12]) + ["<script>alert(1)</script> =cmd|' /C calc'!A0"]
    table_in = pd.DataFrame({"id": range(len(texts)), "headline": texts})
    csv = tmp_path / "texts.csv"
    table_in.to_csv(csv, index=False)
    args = ["explain-batch", "--model", "headlines", "--method", "gradcam", str(csv), "--batch-size", "4", "--json"]
    assert main(args + ["--out", str(tmp_path / "local")]) == 0
    capsys.readouterr()
    assert main(args + ["--engine", "ray", "--out", str(tmp_path / "ray")]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["inputs"], summary["computed"]) == (13, 13)
    local = pd.read_csv(tmp_path / "local" / "results.csv")
    ray = pd.read_parquet(tmp_path / "ray" / ray_engine.RESULTS)
    assert list(ray["input"]) == list(local["input"].astype(str))
    assert list(ray["predicted"]) == list(local["predicted"]) and len(set(ray["predicted"])) > 1
    assert sorted(p.name for p in (tmp_path / "ray" / "overlays").iterdir()) == sorted(ray["overlay"])
    assert main(args + ["--engine", "ray", "--out", str(tmp_path / "ray")]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (again["computed"], again["skipped"]) == (0, 13)


def test_dataset_page_entry_on_ray_equals_the_local_one(ray_local, capsys):
    """`dataset-cache --engine ray` stores what the local engine computes: same predictions, map and slices."""
    from workbench import dataset_view

    model = api.load_model("shapes")
    dataset = dataset_view.open_split("shapes-700", "test")
    local = dataset_view.dataset_outputs(model, dataset, use_cache=False)
    assert main(["dataset-cache", "--model", "shapes", "--dataset", "shapes-700", "--engine", "ray",
                 "--workers", "2", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["engine"], summary["from_cache"], summary["n"]) == ("ray", False, 700)
    on_ray = dataset_view.cached_outputs(model, dataset)
    assert on_ray is not None and on_ray.feature_layer == local.feature_layer
    np.testing.assert_array_equal(on_ray.predicted, local.predicted)
    np.testing.assert_allclose(on_ray.probabilities, local.probabilities, atol=1e-4)
    np.testing.assert_allclose(on_ray.projection, local.projection, atol=1e-3)
    assert set(on_ray.properties) == set(local.properties) == {"brightness", "contrast"}
    for name, values in local.properties.items():
        np.testing.assert_allclose(on_ray.properties[name], values, rtol=1e-6)


def test_the_pages_background_job_on_ray_leaves_a_ray_it_did_not_start(ray_local):
    """WORKBENCH_DATASET_ENGINE=ray: the page's job computes on the Ray already up and leaves it running."""
    import ray

    from workbench import dataset_view

    model = api.load_model("shapes")
    dataset = dataset_view.open_split("shapes-260", "test")
    job = dataset_view.outputs_job(model, dataset, engine="ray")
    assert job.engine == "ray" and job.wait(timeout=240)
    assert job.error is None and job.result is not None and not job.result.from_cache
    assert dataset_view.cached_outputs(model, dataset) is not None
    assert job.message == "done" and job.fraction == 1.0
    assert ray.is_initialized()
    dataset_view.collect_job(model, dataset)
