"""`workbench evaluate`: the JSON it prints, in-process and as a real subprocess, and its refusals."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from commandline.cli import main
from models import store

REPO = Path(__file__).resolve().parents[2]
STAT_KEYS = {"mean", "std", "n", "random_mean", "random_std"}
TOP_KEYS = {"model", "version", "method", "dataset", "split", "n", "seed", "steps", "baseline", "accuracy",
            "metrics", "targets", "seconds"}


def _need(name: str) -> None:
    if name not in store.model_names():
        pytest.skip(f"sample model {name} is not in models/zoo (run `make zoo`)")


def _evaluate(capsys, *args: str) -> dict:
    code = main(["evaluate", *args, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def _check_stats(row: dict) -> None:
    assert STAT_KEYS <= set(row)
    assert isinstance(row["mean"], float) and isinstance(row["std"], float) and row["std"] >= 0
    assert isinstance(row["n"], int) and row["n"] > 0


def test_image_evaluation_schema_and_targets(capsys):
    _need("shapes")
    result = _evaluate(capsys, "--model", "shapes", "--method", "gradcam", "--n", "6", "--sanity-n", "2", "--steps", "8")
    assert TOP_KEYS <= set(result)
    assert (result["model"], result["method"], result["split"], result["n"], result["steps"]) == ("shapes", "gradcam", "test", 6, 8)
    assert result["version"] == store.current_version("shapes") and result["baseline"] == "a blurred copy" and result["baseline_name"] == "blur"
    metrics = result["metrics"]
    for name in ("deletion_auc", "insertion_auc", "mask_mass", "pointing_game", "pointing_game_strict"):
        _check_stats(metrics[name])
        assert isinstance(metrics[name]["random_mean"], float)
    assert 0 <= metrics["mask_mass"]["random_mean"] <= 1  # the masks' mean share of the image
    _check_cascade(metrics["sanity_cascade"], n=2, method="gradcam", image=True)
    assert set(result["targets"]) == {"deletion_below_random", "mask_mass_ratio", "pointing_game"}
    for target in result["targets"].values():
        assert set(target) == {"passed", "value", "threshold", "description"}
        assert isinstance(target["passed"], bool)
    deletion = result["targets"]["deletion_below_random"]
    assert deletion["passed"] == (metrics["deletion_auc"]["mean"] < metrics["deletion_auc"]["random_mean"])


def _check_cascade(check: dict, *, n: int, method: str, image: bool, steps: int | None = None) -> None:
    """metrics.sanity_cascade: the layers from the top down, per step the scrambled layers and each similarity."""
    assert check["method"] == method and check["n"] == n and check["threshold"] == 0.8
    layers = check["weighted_layers"]
    assert layers[0] == "head"  # the sample models' Dense head is the top weighted layer
    cascade = check["cascade"]
    assert len(cascade) == (len(layers) if steps is None else steps)
    assert cascade[0]["layer"] == "head" and cascade[0]["layers_randomised"] == ["head"]
    assert cascade[-1]["layers_randomised"] == layers  # the last step: every weighted layer scrambled
    for row in cascade + check["independent"]:
        for name in ("spearman", "spearman_abs"):
            assert set(row[name]) == {"mean", "std"} and -1 <= row[name]["mean"] <= 1
        assert (row["ssim"] is not None) == image
    assert [row["layer"] for row in check["independent"]] == [row["layer"] for row in cascade]
    assert check["top_similarity"] == cascade[0]["statistic"] == cascade[0]["spearman_abs"]["mean"]
    assert check["verdict"] in {"depends on the model", "depends only on the lower layers",
                                "does not depend on the model"}
    assert check["flagged"] == (check["verdict"] == "does not depend on the model")


@pytest.mark.slow
@pytest.mark.parametrize("method", ["lime", "shap"])
def test_perturbation_methods_get_the_cascade_too(capsys, method):
    _need("shapes")
    result = _evaluate(capsys, "--model", "shapes", "--method", method, "--n", "1", "--sanity-n", "1",
                       "--sanity-steps", "2", "--steps", "4")
    check = result["metrics"]["sanity_cascade"]
    _check_cascade(check, n=1, method=method, image=True, steps=2)
    assert check["cascade"][1]["layer"] == check["weighted_layers"][-1]  # 2 steps: the top and the bottom
    assert check["explanations"] == 4  # 2 steps x (cascade + independent); the evaluated map is reused


def test_shortcut_evaluation_measures_the_cue(capsys):
    _need("shapes-shortcut")
    result = _evaluate(capsys, "--model", "shapes-shortcut", "--method", "gradcam", "--n", "16", "--sanity-n", "0")
    cue = result["metrics"]["cue_mass"]
    _check_stats(cue)
    assert 0 < cue["random_mean"] < 0.02  # a 6x6 mark on a 64x64 image: 36 / 4096
    assert "cue_mass_ratio" in result["targets"] and "sanity_cascade" not in result["metrics"]


def test_text_evaluation_as_a_subprocess():
    _need("headlines")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [str(REPO / ".venv" / "bin" / "workbench"), "evaluate", "--model", "headlines", "--method", "gradcam",
         "--n", "5", "--sanity-n", "2", "--json"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["baseline"] == "nothing (the words are dropped)" and result["baseline_name"] == "remove" and result["dataset"] == "headlines"
    _check_stats(result["metrics"]["rationale_overlap"])
    _check_cascade(result["metrics"]["sanity_cascade"], n=2, method="gradcam", image=False)  # no SSIM for text
    assert set(result["targets"]) == {"deletion_below_random"}


def test_text_output_without_json(capsys):
    _need("headlines")
    assert main(["evaluate", "--model", "headlines", "--method", "gradcam", "--n", "2", "--sanity-n", "0"]) == 0
    out = capsys.readouterr().out
    assert "deletion_auc" in out and "target deletion_below_random:" in out
    assert "sanity cascade" not in out  # --sanity-n 0
    assert main(["evaluate", "--model", "headlines", "--method", "gradcam", "--n", "2", "--sanity-n", "2"]) == 0
    out = capsys.readouterr().out
    assert "1: down to head" in out and "sanity verdict: the explanation " in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "no-such-model"], "no model named"),
        (["--model", "headlines", "--method", "gradcam", "--n", "0"], "--n must be at least 1"),
        (["--model", "headlines", "--method", "shap-gradient"], "does not apply"),
        (["--model", "headlines", "--split", "nope"], "has no split"),
        (["--model", "headlines", "--dataset", "shapes"], "holds images"),
        (["--model", "headlines", "--sanity-steps", "0"], "--sanity-steps must be at least 1"),
    ],
)
def test_refusals_exit_2_with_one_error_line(capsys, args, message):
    _need("headlines")
    assert main(["evaluate", *args, "--json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0]


def test_python_api_matches_the_command(capsys):
    _need("headlines")
    from commandline.commands.evaluate import evaluate
    from workbench import api

    direct = evaluate(api.load_model("headlines"), "gradcam", n=3, sanity_n=0)
    printed = _evaluate(capsys, "--model", "headlines", "--method", "gradcam", "--n", "3", "--sanity-n", "0")
    assert direct["metrics"] == printed["metrics"]


def test_the_baseline_is_chosen_and_reported(capsys):
    _need("shapes")
    args = ("--model", "shapes", "--method", "gradcam", "--n", "4", "--sanity-n", "0", "--steps", "8")
    blur = _evaluate(capsys, *args)
    noise = _evaluate(capsys, *args, "--baseline", "noise")
    assert (noise["baseline_name"], noise["baseline"]) == ("noise", "uniform noise")
    # Another baseline is another test: the areas and their random reference both change.
    assert noise["metrics"]["deletion_auc"]["mean"] != blur["metrics"]["deletion_auc"]["mean"]
    assert noise["metrics"]["deletion_auc"]["random_mean"] != blur["metrics"]["deletion_auc"]["random_mean"]
    assert main(["evaluate", *args, "--baseline", "mask"]) == 2  # a text baseline on an image model
    error = capsys.readouterr().err
    assert error.startswith("error: --baseline:") and "blur, mean, noise, black" in error
