"""Retraining with reason marks (issue 17) and `workbench simulate-reason`, on tiny runs."""
from __future__ import annotations

import json

import numpy as np
import pytest

import sample_data
from commandline import cli
from labels import Ledger
from labels.reasons import NOT_REASON, REASON
from models import store
from models.reason_training import ReasonConfig
from workbench import retrain, samples
from workbench.simulate_reason import bounding_box

CONFIG = samples.quick_config()  # 96 examples


def test_retrain_with_not_a_reason_marks_uses_the_penalty_and_records_it(workspace):
    ledger = Ledger()
    data = sample_data.load("digits", "train_noisy")
    for i in (0, 3):
        ledger.mark_reason("digits", data.ids[i], NOT_REASON, boxes=[(0, 0, 6, 6), (20, 20, 28, 28)],
                           annotator="alice", expected_event_id=None)
    # "The reason" marks say where the evidence is: not penalised, so not counted.
    ledger.mark_reason("digits", data.ids[5], REASON, boxes=[(5, 5, 20, 20)], annotator="alice",
                       expected_event_id=None)
    result = retrain.retrain("digits", config=CONFIG, created_by="alice", ledger=ledger,
                             reason=ReasonConfig(penalty=2.5, epochs=1))

    manifest = store.read_manifest("digits", result.candidate)
    assert store.current_version("digits") == "v1"  # a candidate, as any retrain
    assert manifest["training"]["recipe"] == "reason_fine_tune"
    recorded = manifest["training"]["config"]["reason"]
    assert recorded["penalty"] == 2.5 and recorded["epochs"] == 1 and recorded["marked_examples"] == 2
    assert recorded["reason_event_id"] == ledger.reason_history("digits")[0].id
    # A retrain of that candidate repeats its reason settings.
    assert retrain.recorded_reason(store.load("digits", result.candidate).info).penalty == 2.5

    # The merged mask of an example is the union of its "not a reason" boxes.
    marks = retrain.reason_marks(ledger, data)
    assert sorted(marks) == [0, 3]
    assert marks[0].sum() == 36 + 64 and marks[0][0, 0] and marks[0][27, 27] and not marks[0][10, 10]


def test_retrain_without_marks_is_the_usual_fine_tuning(workspace):
    result = retrain.retrain("digits", config=CONFIG, ledger=Ledger())
    manifest = store.read_manifest("digits", result.candidate)
    assert manifest["training"]["recipe"] == "fine_tune" and "reason" not in manifest["training"]["config"]


def test_bounding_box_is_what_a_reviewer_would_draw():
    mask = np.zeros((10, 10), bool)
    mask[2:5, 3:7] = True
    assert bounding_box(mask) == (2, 3, 5, 7)


@pytest.mark.slow
def test_simulate_reason_quick_reports_both_arms_and_keeps_the_version_in_use(workspace, capsys):
    assert cli.main(["simulate-reason", "--model", "shapes-shortcut", "--budget", "50", "--quick", "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert "marked the corner mark" in captured.err  # progress on stderr, JSON alone on stdout
    for arm in (report, report["control"]):
        for key in ("test_accuracy", "test_nocue_accuracy", "cue_attribution"):
            assert set(arm[key]) == {"before", "after"}
            assert all(0.0 <= value <= 1.0 for value in arm[key].values())
    assert report["marked"] == report["budget"] == 8  # --quick caps the budget
    assert report["settings"]["penalty"] == ReasonConfig().penalty and report["settings"]["quick"]
    assert report["cue_attribution"]["after"] < report["cue_attribution"]["before"]
    # The marked arm is a candidate; the version in use stays.
    assert store.current_version("shapes-shortcut") == report["version"] != report["candidate"]
    ledger = Ledger(f"sqlite:///{report['ledger']}")
    assert len(ledger.reason_history("shapes-shortcut")) == 8


@pytest.mark.parametrize("option", [["--consistency", "-1"], ["--transplants", "-2"], ["--penalty", "-0.1"]])
def test_simulate_reason_refuses_negative_settings_in_one_line(option, capsys):
    from commandline.cli import main

    assert main(["simulate-reason", "--model", "shapes-shortcut", "--budget", "5", *option]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("error: the penalty, consistency and transplants must be >= 0, epochs and mark repeats >= 1, "
                   "the learning rate > 0.")
