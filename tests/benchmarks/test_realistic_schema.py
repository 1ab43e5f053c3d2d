"""`workbench bench --realistic`: the rows' schema on a tiny size (timings are not asserted here)."""
from __future__ import annotations

import pytest

from benchmarks import realistic
from commandline import cli

ROW_KEYS = {"name", "ours_s", "reference_s", "ratio", "target", "meets_target", "rank_correlation",
            "ours_runs_s", "reference_runs_s", "details"}


@pytest.mark.slow
@pytest.mark.parametrize("size", [32])
def test_realistic_rows_have_the_documented_keys(size):
    report = realistic.run(size=size, repeats=1, forward_images=5, gradcam_images=3, lime_samples=100, shap_evals=100,
                            memory_runtimes=("auto",))  # one fresh process (~30 s); Keras-only is tests/models/test_runtime.py
    assert report["model"] == {"architecture": "mobilenetv2", "size": size, "classes": 10, "preprocessing": "-1..1",
                               "weights": "random (BatchNorm statistics from one batch)"}
    rows = {row["name"]: row for row in report["results"]}
    assert set(rows) == {f"forward_{size}", f"gradcam_batch_{size}", f"first_map_{size}_s", f"shap_image_{size}",
                         f"lime_image_{size}"}
    for row in rows.values():
        assert ROW_KEYS <= set(row)
        assert 100 < row["peak_rss_mb"] < 64_000  # the process's resident peak while ours ran, in MB
        assert row["ours_s"] > 0 and row["reference_s"] > 0
        assert row["ratio"] == pytest.approx(row["ours_s"] / row["reference_s"], rel=0.01, abs=1e-3)
        assert len(row["ours_runs_s"]) == len(row["reference_runs_s"]) == 1
    forward = rows[f"forward_{size}"]["details"]
    assert forward["images"] == 5 and forward["runtime"] in ("litert", "keras")
    assert forward["runtime_state"] in ("ready", "fallback", "off") and forward["runtime_note"]
    assert forward["top1_agreement_vs_predict"] == 1.0 and forward["max_abs_difference_vs_predict"] <= 1e-4
    assert forward["keras_call_s"] > 0 and forward["compiled_keras_forward_s"] > 0
    gradcam = rows[f"gradcam_batch_{size}"]
    assert -1.0 <= gradcam["rank_correlation"] <= 1.0
    details = gradcam["details"]
    assert details["images"] == 3 and details["forward_s"] > 0 and details["forward_target"] == 1.5
    assert details["ratio_to_forward"] == pytest.approx(gradcam["ours_s"] / details["forward_s"], rel=0.01)
    assert details["meets_forward_target"] == (details["ratio_to_forward"] <= 1.5)
    assert set(report["fresh_process_memory"]) == {"auto"}  # a fresh process explaining as the page does
    memory = report["fresh_process_memory"]["auto"]
    assert "error" not in memory and 100 < memory["peak_rss_mb"] < 64_000
    assert set(memory["seconds"]) == {"shap", "lime"} and memory["runtime"] in ("litert", "keras")
    first = rows[f"first_map_{size}_s"]
    assert first["details"]["target_s"] == 2.0 and first["meets_target"] == (first["ours_s"] <= 2.0)
    assert first["ours_s"] <= first["reference_s"]  # the first map comes no later than the final one
    for method, preview in (("shap", 50), ("lime", 60)):
        # The page's first round is the preview round.
        assert first["details"][f"{method}_first_round_evaluations"] <= preview + 2
    lime = rows[f"lime_image_{size}"]
    assert len(lime["reference_runs_s"]) == 1 and lime["details"]["same_segments"] is True
    assert lime["target"] == 0.05 and rows[f"shap_image_{size}"]["target"] == 0.3
    ceiling = lime["details"]["noise_ceiling"]
    assert "400 samples" in ceiling["converged"]  # 4x the budget, on draws independent of the reference's
    for figure in ("reference_vs_converged", "our_full_budget_seed_1_vs_reference"):
        assert -1.0 <= ceiling[figure] <= 1.0
    assert -1.0 <= lime["details"]["rank_correlation_last_timed_run_vs_reference"] <= 1.0
    breakdown = lime["details"]["breakdown_last_timed_run"]
    assert breakdown["segmentation_quickshift_s"] >= 0 and breakdown["forward_alone_s"] > 0
    for name, budget in (("shap_image", 100), ("lime_image", 100)):
        row = rows[f"{name}_{size}"]
        assert -1.0 <= row["rank_correlation"] <= 1.0
        details = row["details"]
        assert details["budget"] == budget and 0 < details["evaluations_used"] <= budget
        assert details["stopped"] in ("stable", "budget") and details["rounds"] == len(details["round_agreement"])
        # Our map at fixed budgets against the reference's: the full budget's figure is the one reported above.
        by_budget = details["rank_correlation_by_budget"]
        assert list(by_budget) == ["20", "30", "40", "60", "80", "100"]
        assert by_budget["100"] == round(details["rank_correlation_full_budget_vs_reference"], 3)
        fewest = details["fewest_evaluations_reaching_floor"]
        assert fewest is None or (by_budget[str(fewest)] >= 0.9 and all(c < 0.9 for n, c in by_budget.items()
                                                                          if int(n) < fewest))
        assert details["reference"]


def test_realistic_options_are_checked(capsys):
    assert cli.main(["bench", "--realistic", "--realistic-size", "16"]) == 2
    assert "--realistic-size must be at least 32" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown architecture"):
        realistic.build_keras_model("vgg99", 32)
