"""simulate-review on a tiny configuration: noisy model, queue, scripted reviewer, retrain, paired arms."""
import pytest

import sample_data
from commandline import cli
from commandline.commands import simulate as simulate_command
from foundation.dataset import dataset_hash
from labels import Ledger
from models import store, training
from workbench import samples, simulate


@pytest.mark.slow
def test_simulation_reuses_the_shipped_twin_when_its_recipe_matches(workspace):
    messages = []
    config = simulate.sample_recipe("digits")
    assert simulate.noisy_model("digits", config, messages.append) == ("digits-noisy", "v1")
    assert messages == ["reusing digits-noisy v1 (trained on the noisy labels)"]


def test_simulation_corrects_only_wrong_labels_in_its_own_ledger(workspace):
    messages = []
    report = simulate.simulate_review("digits", 20, config=samples.quick_config(), control=False,
                                      log=messages.append)
    noisy = sample_data.load("digits", "train_noisy")
    clean = sample_data.load("digits", "train")
    # The shipped twin digits-noisy v1 has the full recipe, not this quick one: a new base is trained.
    assert report["model"] == "digits-noisy" and report["noisy_version"] == "v2" and report["candidate"] == "v3"
    base = store.read_manifest("digits-noisy", "v2")
    assert base["train_split"] == "train_noisy" and base["simulation"]["role"] == "noisy-base"
    assert store.read_manifest("digits-noisy", "v3")["parent"] == "v2"
    assert store.current_version("digits-noisy") == "v1"  # the review queue's model is untouched

    ledger = Ledger(f"sqlite:///{report['ledger']}")
    events = ledger.history("digits")
    assert len(events) == report["corrected"] == report["labels_changed"] >= 1
    for event in events:
        assert event.annotator == "simulated-reviewer" and event.example_id in noisy.flipped_ids
        assert event.new_label == clean.classes[int(clean.y[clean.index_of(event.example_id)])]
    assert report["reviewed"] == 20 and report["queue_precision"] == round(len(events) / 20, 4)
    assert Ledger().count() == 0  # the user's ledger is never touched
    assert set(report["clean_test_accuracy"]) == {"noisy", "corrected"}
    assert report["runs"] == [{"seed": 0, "corrected": {"accuracy": report["clean_test_accuracy"]["corrected"],
                                                        "log_loss": report["clean_test_log_loss"]["corrected"]}}]
    assert report["clean_test_log_loss"]["noisy"] > 0
    assert any("reviewing the top 20" in m for m in messages)


def test_simulate_cli_refuses_a_model_without_a_shipped_version(workspace, capsys):
    assert cli.main(["simulate-review", "--model", "nothing", "--budget", "5", "--json"]) == 2
    assert "is not a sample model" in capsys.readouterr().err
    assert cli.main(["simulate-review", "--model", "digits", "--budget", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err


def test_paired_statistics_on_hand_made_numbers():
    runs = [
        {"seed": 0, "corrected": {"accuracy": 0.98, "log_loss": 0.05},
         "uncorrected_finetune": {"accuracy": 0.97, "log_loss": 0.09}},
        {"seed": 1, "corrected": {"accuracy": 0.99, "log_loss": 0.06},
         "uncorrected_finetune": {"accuracy": 0.96, "log_loss": 0.08}},
        {"seed": 2, "corrected": {"accuracy": 0.97, "log_loss": 0.04},
         "uncorrected_finetune": {"accuracy": 0.97, "log_loss": 0.10}},
    ]
    stats = simulate.paired_statistics(runs)
    assert stats["seeds"] == [0, 1, 2]
    corrected = stats["arms"]["corrected"]["accuracy"]
    assert corrected == {"values": [0.98, 0.99, 0.97], "mean": 0.98, "std": 0.01, "min": 0.97, "max": 0.99}
    control = stats["arms"]["uncorrected_finetune"]["log_loss"]
    assert control["mean"] == 0.09 and control["std"] == 0.01 and (control["min"], control["max"]) == (0.08, 0.1)
    # Differences per seed: accuracy +0.01, +0.03, 0.00; log loss -0.04, -0.02, -0.06.
    difference = stats["paired_difference"]
    assert difference["seeds"] == [0, 1, 2]
    assert difference["accuracy"]["values"] == [0.01, 0.03, 0.0]
    assert difference["accuracy"]["mean"] == pytest.approx(0.0133, abs=1e-4)
    assert difference["accuracy"]["std"] == pytest.approx(0.0153, abs=1e-4)  # sample sd (n - 1)
    assert difference["log_loss"] == {"values": [-0.04, -0.02, -0.06], "mean": -0.04, "std": 0.02,
                                      "min": -0.06, "max": -0.02}


def test_one_seed_has_no_spread_and_no_control_has_no_paired_difference():
    stats = simulate.paired_statistics([{"seed": 5, "corrected": {"accuracy": 0.9, "log_loss": 0.3}}])
    assert stats["arms"]["corrected"]["accuracy"] == {"values": [0.9], "mean": 0.9, "std": None,
                                                      "min": 0.9, "max": 0.9}
    assert "uncorrected_finetune" not in stats["arms"] and stats["paired_difference"] is None


def test_summary_lines_show_each_arm_and_the_paired_difference():
    runs = [{"seed": s, "corrected": {"accuracy": a, "log_loss": 0.1},
             "uncorrected_finetune": {"accuracy": 0.9, "log_loss": 0.2}} for s, a in ((0, 0.95), (1, 0.97))]
    report = {"model": "digits-noisy", "corrected": 3, "reviewed": 10, "candidate": "v2",
              "clean_test_accuracy": {"noisy": 0.9, "corrected": 0.95}, **simulate.paired_statistics(runs)}
    text = "\n".join(simulate_command.summary_lines(report))
    assert "corrected accuracy over seeds [0, 1]: 0.9600 ± 0.0141 (0.9500..0.9700)" in text
    assert "paired difference (corrected - control) accuracy: 0.0600 ± 0.0141 (0.0500..0.0700)" in text


@pytest.mark.slow
def test_both_arms_are_fine_tuned_with_the_same_seeds(workspace, monkeypatch):
    trained = []  # (seed, hash of the labels fine-tuned on), for every fine-tuning of either arm
    real_fine_tune = training.fine_tune

    def recording_fine_tune(model, train, val, config, callbacks=(), **kwargs):
        trained.append((config.seed, dataset_hash(train)))
        return real_fine_tune(model, train, val, config, callbacks, **kwargs)

    monkeypatch.setattr(training, "fine_tune", recording_fine_tune)
    config = samples.quick_config()
    report = simulate.simulate_review("digits", 20, config=config, control=True, repeats=2)

    uncorrected = dataset_hash(training._limited(sample_data.load("digits", "train_noisy"), config.limit))
    control_seeds = sorted(seed for seed, labels in trained if labels == uncorrected)
    corrected_seeds = sorted(seed for seed, labels in trained if labels != uncorrected)
    assert len(trained) == 4 and control_seeds == corrected_seeds == [0, 1]
    assert report["seeds"] == [run["seed"] for run in report["runs"]] == [0, 1]
    assert report["paired_difference"]["seeds"] == [0, 1]
    for metric in ("accuracy", "log_loss"):
        expected = [round(run["corrected"][metric] - run["uncorrected_finetune"][metric], 4) for run in report["runs"]]
        assert report["paired_difference"][metric]["values"] == expected
        assert report["arms"]["corrected"][metric]["values"] == [run["corrected"][metric] for run in report["runs"]]
