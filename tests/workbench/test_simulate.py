"""simulate-review on a tiny configuration: noisy model, queue, scripted reviewer, retrain."""
import pytest

import sample_data
from commandline import cli
from commandline.commands import simulate
from labels import Ledger
from models import store
from workbench import samples


@pytest.mark.slow
def test_simulation_corrects_only_wrong_labels_in_its_own_ledger(workspace):
    messages = []
    report = simulate.simulate_review("digits", 20, config=samples.quick_config(), control=False,
                                      log=messages.append)
    noisy = sample_data.load("digits", "train_noisy")
    clean = sample_data.load("digits", "train")
    assert report["model"] == "digits-noisy" and report["noisy_version"] == "v1" and report["candidate"] == "v2"
    base = store.read_manifest("digits-noisy", "v1")
    assert base["train_split"] == "train_noisy" and base["simulation"]["role"] == "noisy-base"
    assert store.read_manifest("digits-noisy", "v2")["parent"] == "v1"

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
