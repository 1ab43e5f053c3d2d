"""The README's deterministic trust targets, asserted on the shipped models with fixed seeds.

`workbench evaluate` is seeded, so each figure is a fixed number for a given model file and
n; these tests re-measure the README's ✅ rows on the first n clean test examples (fewer than
the README's 200, to stay quick) and fail when a change to a model, a method or a metric
makes a target regress. The queue's recall at 2N is asserted in tests/labels/test_queue.py.
"""
from __future__ import annotations

import json

import pytest

from commandline.cli import main
from models import store

pytestmark = pytest.mark.slow


def _evaluate(capsys, model: str, method: str, n: int) -> dict:
    if model not in store.model_names():
        pytest.fail(f"sample model {model} is missing from models/zoo; run `make zoo`")
    assert main(["evaluate", "--model", model, "--method", method, "--n", str(n), "--sanity-n", "0",
                 "--seed", "0", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_shapes_gradcam_localises_the_object(capsys, workspace):
    result = _evaluate(capsys, "shapes", "gradcam", 60)
    metrics, targets = result["metrics"], result["targets"]
    assert targets["mask_mass_ratio"]["value"] >= 2.0  # README: mass on object ≥ 2× the object's share
    assert metrics["pointing_game"]["mean"] >= 0.8  # README: pointing game ≥ 0.8
    # The pointing game's chance level (a uniform map's score) is far below the figure.
    assert metrics["pointing_game"]["random_mean"] < 0.35


@pytest.mark.parametrize("model, method", [("shapes", "gradcam"), ("shapes", "gradcam++"), ("shapes", "lime"),
                                           ("shapes", "shap"), ("headlines", "gradcam")])
def test_deletion_is_below_the_random_order(model, method, capsys, workspace):
    n = 60 if method.startswith("gradcam") else 12
    deletion = _evaluate(capsys, model, method, n)["metrics"]["deletion_auc"]
    assert deletion["mean"] < deletion["random_mean"]


def test_the_shortcut_model_puts_its_attribution_on_the_corner_mark(capsys, workspace):
    result = _evaluate(capsys, "shapes-shortcut", "gradcam", 60)
    assert result["targets"]["cue_mass_ratio"]["passed"]  # ≥ 5× the mark's share of the image


# The README's sample-model table: test accuracy on each model's clean test split (headlines:
# phrasings unseen in training), as recorded in the shipped manifest and re-measured now.
README_TEST_ACCURACY = {"digits": 0.982, "shapes": 0.987, "shapes-shortcut": 0.977, "headlines": 0.4955,
                        # the noisy twins, trained on train_noisy (workbench train --all --noisy)
                        "digits-noisy": 0.978, "shapes-noisy": 0.964, "shapes-shortcut-noisy": 0.943,
                        "headlines-noisy": 0.431}


@pytest.mark.parametrize("name", list(README_TEST_ACCURACY))
def test_the_shipped_models_score_what_the_readme_and_their_manifests_say(name, workspace):
    from models import training
    from workbench import api, datasets

    model = api.load_model(name)
    test = datasets.load(model.info.dataset, "test")
    measured = training.evaluate(model.keras_model, test, io=model.io)["accuracy"]
    assert measured == pytest.approx(model.info.metrics.test.accuracy, abs=1e-4)
    assert measured == pytest.approx(README_TEST_ACCURACY[name], abs=5e-4 + 1e-9)  # the README rounds


@pytest.mark.parametrize("model, method, head, verdict", [
    ("shapes", "gradcam", 0.11, "depends on the model"),
    ("shapes", "gradcam++", 0.84, "depends only on the lower layers"),
    ("headlines", "gradcam", 0.27, "depends on the model"),
])
def test_the_randomisation_check_figures_in_the_readme(model, method, head, verdict, capsys, workspace):
    # README "Sanity checks": 16 seeded test examples, only the head randomised, Spearman of |map|.
    if model not in store.model_names():
        pytest.fail(f"sample model {model} is missing from models/zoo; run `make zoo`")
    assert main(["evaluate", "--model", model, "--method", method, "--n", "16", "--sanity-n", "16",
                 "--seed", "0", "--json"]) == 0
    check = json.loads(capsys.readouterr().out)["metrics"]["sanity_cascade"]
    assert check["cascade"][0]["spearman_abs"]["mean"] == pytest.approx(head, abs=0.006)  # the README rounds
    assert check["verdict"] == verdict
