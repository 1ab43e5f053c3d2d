"""`workbench bench`: the JSON schema (tiny budgets; timing targets are not asserted here),
the reference recipes' faithfulness on tiny models, and refused options."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import explainers_bench as bench
from commandline import cli
from explainers.gradcam import GradCAM
from tests.explainers import tiny_models

ROOT = Path(__file__).resolve().parents[2]
RATIO_ENTRIES = {"lime_image": 0.15, "shap_image": 0.3, "shap_text": 0.25, "lime_text": 0.7, "gradcam_batch": 0.3}
ABSOLUTE_ENTRIES = {"all_three_one_image_s", "cached_repeat_s", "first_shap_after_start_s"}


@pytest.mark.slow
def test_quick_bench_prints_the_documented_json():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "workbench"), "bench", "--quick", "--json", "--repeats", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)  # stdout is exactly one JSON object
    assert report["quick"] is True and report["repeats"] == 1
    assert report["command"] == "workbench bench --json --quick --repeats 1"
    assert report["models"]["image"]["name"] == "shapes" and report["models"]["text"]["name"] == "headlines"
    rows = {row["name"]: row for row in report["results"]}
    assert set(rows) == set(RATIO_ENTRIES) | ABSOLUTE_ENTRIES
    for name, row in rows.items():
        assert {"name", "ours_s", "reference_s", "ratio"} <= set(row)
        assert row["ours_s"] > 0 and row["reference_s"] > 0
        # The seconds and the ratio are each rounded to 4 decimals; the ratio comes from the unrounded
        # seconds, so it lies between the ratios their rounding allows (a quick row takes milliseconds).
        half = 5e-5
        low = (row["ours_s"] - half) / (row["reference_s"] + half) - half
        high = (row["ours_s"] + half) / max(row["reference_s"] - half, 1e-9) + half
        assert low <= row["ratio"] <= high, (name, row["ratio"], row["ours_s"], row["reference_s"])
        assert len(row["ours_runs_s"]) == 1
    for name, target in RATIO_ENTRIES.items():
        row = rows[name]
        assert row["target"] == target
        assert row["meets_target"] == (row["ratio"] <= target)
        assert -1.0 <= row["rank_correlation"] <= 1.0 and row["fidelity_target"] == 0.9
    for name in ABSOLUTE_ENTRIES:
        assert rows[name]["target"] is None and rows[name]["meets_target"] is None
    shap_docs = rows["shap_image"]["details"]
    assert shap_docs["docs_recipe_s"] > 0 and -1.0 <= shap_docs["rank_correlation_vs_docs_recipe"] <= 1.0
    assert shap_docs["ratio_to_docs_recipe"] == pytest.approx(rows["shap_image"]["ours_s"] / shap_docs["docs_recipe_s"],
                                                              rel=0.02, abs=1e-3)
    lime_text = rows["lime_text"]["details"]
    assert lime_text["reference_deduplicated_s"] > 0
    assert 1 <= lime_text["reference_distinct_texts_per_call"] <= report["budgets"]["lime_text_samples"]
    first = rows["first_shap_after_start_s"]["details"]
    assert first["with_warm_up"]["warm_up"] is True and first["without_warm_up"]["warm_up"] is False
    assert isinstance(report["all_targets_met"], bool)
    # The same run produces the human table.
    table = bench.table(report)
    assert all(name in table for name in rows) and "ratio" in table


def test_warm_up_runs_once_in_a_background_thread():
    from workbench import warmup

    thread = warmup.start()
    assert thread.daemon and thread.name == "shap-warm-up"
    assert warmup.start() is thread  # once per process
    assert warmup.wait(timeout=300)
    status = warmup.status()
    assert status.started and status.done and status.error is None
    assert status.seconds is not None and status.seconds > 0


def test_bench_refuses_bad_options(capsys):
    assert cli.main(["bench", "--image-model", "no-such-model"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: there is no model named 'no-such-model'")
    assert cli.main(["bench", "--repeats", "0"]) == 2
    assert "--repeats must be at least 1" in capsys.readouterr().err
    assert cli.main(["bench", "--image-model", "headlines"]) == 2
    assert "not an image model" in capsys.readouterr().err


@pytest.mark.parametrize("build", [tiny_models.sequential_nested_image_cnn, tiny_models.functional_backbone_image_cnn,
                                   tiny_models.doubly_nested_image_cnn, tiny_models.flat_image_cnn])
def test_keras_io_recipe_on_the_flattened_model_matches_our_gradcam(build):
    keras_model = build()
    model = tiny_models.loaded_image_model(keras_model)
    images = tiny_models.random_images(4, seed=5)
    prepared = images.astype(np.float32)
    flat = bench.flattened_equivalent(keras_model, prepared)
    np.testing.assert_allclose(flat.predict(prepared, verbose=0), keras_model.predict(prepared, verbose=0), atol=1e-6)
    ours = GradCAM(model).explain(list(images))
    flat.layers[-1].activation = None  # the recipe removes the last softmax: ours takes the same pre-softmax score
    for image, explanation in zip(prepared, ours):
        heatmap = bench.keras_io_gradcam(image[None], flat, "conv")
        assert heatmap.shape == (6, 6)  # the conv's own grid (valid 3x3 on 8x8)
        # Ours is the same map, resized to the input and scaled to [0, 1].
        import cv2

        resized = cv2.resize(np.nan_to_num(heatmap).astype(np.float32), (8, 8))
        resized = resized / resized.max() if resized.max() > 0 else resized
        np.testing.assert_allclose(explanation.values, resized, atol=1e-4)


def test_flattening_refuses_a_model_that_is_not_a_chain():
    keras_model = tiny_models.flat_branching_image_cnn()
    with pytest.raises(ValueError, match="not a simple chain"):
        bench.flattened_equivalent(keras_model, tiny_models.random_images(2).astype(np.float32))


def test_benchmark_text_tokenizes_the_same_for_both_sides():
    model = tiny_models.loaded_text_model()
    texts = ["the plot, the movie", "Bad-plot movie was good", "the movie was good", "good"]
    assert bench.pick_benchmark_text(model, texts, min_tokens=2, max_tokens=6) == "the movie was good"
    with pytest.raises(ValueError):
        bench.pick_benchmark_text(model, texts[:2], min_tokens=2, max_tokens=6)


APP_KEYS = {"cold_start_s", "first_paint_s", "first_gradcam_s", "first_trust_s", "server_rss_first_page_mb",
            "first_map_from", "first_controls_s", "server_rss_controls_mb", "server_rss_mb", "models_loaded",
            "load_average_at_start", "targets", "meets_targets"}


def test_app_targets_are_judged_from_the_figures():
    from benchmarks import app_bench

    figures = {"first_paint_s": 4.0, "first_gradcam_s": 6.5, "first_trust_s": 10.0, "server_rss_first_page_mb": 480.0}
    assert app_bench.meets_targets(figures) == {"first_gradcam_s": True, "first_gradcam_after_paint_s": True,
                                                "first_trust_after_gradcam_s": False, "server_rss_first_page_mb": True}
    assert set(app_bench.TARGETS) == set(app_bench.meets_targets(figures))


@pytest.mark.slow
@pytest.mark.e2e
def test_app_bench_reports_the_documented_keys():
    from benchmarks import app_bench

    if not Path(app_bench.CHROMIUM).exists():
        pytest.skip(f"{app_bench.CHROMIUM} is missing")
    figures = app_bench.run_app_bench()
    assert set(figures) == APP_KEYS
    assert 0 < figures["first_paint_s"] == figures["cold_start_s"] <= figures["first_gradcam_s"] <= figures["first_trust_s"]
    assert figures["first_trust_s"] <= figures["first_controls_s"]
    assert figures["first_map_from"] == "stored with the model"  # the sample model ships its first page
    assert figures["server_rss_mb"] > 0 and figures["server_rss_first_page_mb"] > 0 and figures["server_rss_controls_mb"] > 0
    assert figures["models_loaded"] == ["digits", "shapes", "shapes-shortcut", "headlines"]
    assert figures["load_average_at_start"] >= 0
    assert set(figures["meets_targets"]) == set(figures["targets"])
