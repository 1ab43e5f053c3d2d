"""The review queue: out-of-sample probabilities, cleanlab ranking, recall on the shipped flips,
the disk cache, ledger corrections, decisions and the `workbench audit` command."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path

import keras
import numpy as np
import pytest

from commandline.cli import main
from foundation.dataset import Dataset
from foundation.errors import WorkbenchError
from foundation.types import Modality
from labels import Ledger, StaleEditError, queue
from labels import features as feats
from labels.decisions import CHOOSE, FLAG, KEEP, TAKE_MODEL, Decision, apply_decision
from labels.schema import LabelEvent
from tests.explainers import tiny_models
from workbench import api, datasets

REPO = Path(__file__).resolve().parents[2]


def _clusters(n_per_class: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well separated blobs in 3-D: class k sits at 4 * e_k."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n_per_class)
    x = 4.0 * np.eye(3)[y] + rng.normal(0.0, 0.5, size=(len(y), 3))
    return x, y


def _event(event_id: int, example_id: str, new_label: str | None, action: str = "set") -> LabelEvent:
    from datetime import datetime, timezone

    return LabelEvent(id=event_id, dataset="toy", example_id=example_id, previous_label=None,
                      new_label=new_label, action=action, annotator="ann",
                      created_at=datetime(2024, 1, 1, tzinfo=timezone.utc))


# --- pure steps, hand-made cases ---------------------------------------------------------------


def test_flipped_examples_rank_first_on_a_hand_made_case():
    x, true_y = _clusters()
    given = true_y.copy()
    flipped = [5, 40, 75]  # one per class, each moved to the next class
    given[flipped] = (true_y[flipped] + 1) % 3
    probs = queue.out_of_sample_probabilities(x, given, 3, k_folds=5)
    classes = ["a", "b", "c"]
    ids = [f"ex{i}" for i in range(len(given))]
    table = queue.build_table(ids, [classes[i] for i in given], [classes[i] for i in given], classes,
                              probs, probs, flipped={ids[i] for i in flipped})
    top3 = table.sort_values("issue_rank").head(3)
    assert sorted(top3["index"]) == flipped
    # The head never saw a flipped label's example, so it predicts the true class.
    assert [table.loc[i, "predicted_label"] for i in flipped] == [classes[true_y[i]] for i in flipped]
    assert table.loc[flipped, "prob_given"].max() < 0.2
    assert queue.recall_at(table["issue_rank"].to_numpy(), table["is_flipped"].to_numpy()) == 1.0
    assert table.loc[flipped, "is_label_issue"].all()


def test_probabilities_are_out_of_sample():
    # Pure noise features: a head scored on its own training rows would fit the labels;
    # out-of-sample it can do no better than chance.
    rng = np.random.default_rng(1)
    x = rng.normal(size=(100, 120))
    y = rng.integers(0, 2, size=100)
    probs = queue.out_of_sample_probabilities(x, y, 2, k_folds=5)
    assert probs.shape == (100, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert (probs.argmax(axis=1) == y).mean() < 0.65
    in_sample = queue.fit_predict_head(x, y, x, 2)
    assert (in_sample.argmax(axis=1) == y).mean() > 0.9


def test_a_class_missing_from_training_folds_keeps_a_floor_probability():
    x = np.array([[0.0], [0.1], [5.0], [5.1]])
    probs = queue.fit_predict_head(x, np.array([0, 0, 1, 1]), np.array([[0.05]]), 3)
    assert probs.shape == (1, 3)
    assert 0 < probs[0, 2] < 1e-5
    assert probs[0].argmax() == 0
    one_class = queue.fit_predict_head(x[:2], np.array([1, 1]), x[:1], 3)
    assert one_class[0].argmax() == 1 and one_class[0, 1] > 0.99


def test_margin_uncertainty_by_hand():
    probs = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.6, 0.3, 0.1]])
    np.testing.assert_allclose(queue.margin_uncertainty(probs), [1.0, 0.0, 0.7])


def test_recall_at_2x_by_hand():
    ranks = np.array([1, 2, 3, 4, 5, 6])
    flipped = np.array([False, True, False, False, True, False])
    assert queue.recall_at(ranks, flipped) == 0.5  # cut-off 4: rank 2 found, rank 5 not
    assert queue.recall_at(ranks, np.zeros(6, bool)) is None


def test_rank_positions_ties_keep_order():
    np.testing.assert_array_equal(queue.rank_positions([0.5, 0.1, 0.5, 0.0]), [3, 2, 4, 1])
    np.testing.assert_array_equal(queue.rank_positions([0.5, 0.1, 0.9], descending=True), [2, 3, 1])


def test_reviewed_means_a_decision_stands():
    assert not queue.is_reviewed(None)
    assert queue.is_reviewed(_event(1, "a", "cat"))
    assert queue.is_reviewed(_event(2, "a", None, action="ambiguous"))
    assert not queue.is_reviewed(_event(3, "a", None, action="undo"))  # back to the original
    assert queue.is_reviewed(_event(4, "a", "dog", action="undo"))  # back to an earlier decision


def _toy_result() -> queue.AuditResult:
    classes = ["a", "b", "c"]
    probs = np.array([
        [0.05, 0.90, 0.05],  # given a, predicted b: worst
        [0.80, 0.10, 0.10],  # given a, fine
        [0.40, 0.35, 0.25],  # given b, uncertain
        [0.10, 0.10, 0.80],  # given c, fine
    ])
    given = ["a", "a", "b", "c"]
    table = queue.build_table(["e0", "e1", "e2", "e3"], given, given, classes, probs, probs)
    return queue.AuditResult("toy-model", "v1", "toy", "train", tuple(classes), 2, 0.0, table, probs,
                             None, 0, "features")


def test_review_queue_orders_filters_and_overlays_the_ledger():
    result = _toy_result()
    # By p(given); the tie between e1 and e3 keeps dataset order.
    assert list(result.ranking()["example_id"]) == ["e0", "e2", "e1", "e3"]
    assert list(result.ranking("uncertainty")["example_id"])[0] == "e2"
    full = queue.review_queue(result)
    assert list(full["example_id"]) == ["e0", "e2", "e1", "e3"]
    np.testing.assert_allclose(full["score"], 1 - np.array([0.05, 0.35, 0.80, 0.80]))
    assert list(queue.review_queue(result, predicted=["b"])["example_id"]) == ["e0"]
    assert list(queue.review_queue(result, given=["a"])["example_id"]) == ["e0", "e1"]
    assert list(queue.review_queue(result, min_score=0.5)["example_id"]) == ["e0", "e2"]
    latest = {"e0": _event(7, "e0", "b")}
    live = queue.review_queue(result, latest)
    assert "e0" not in set(live["example_id"])  # reviewed: out of the queue
    everything = queue.review_queue(result, latest, include_reviewed=True).set_index("example_id")
    assert everything.loc["e0", "current_label"] == "b" and everything.loc["e0", "reviewed"]
    assert everything.loc["e0", "latest_event_id"] == 7 and everything.loc["e1", "latest_event_id"] is None
    assert list(queue.review_queue(result, latest, given=["b"], include_reviewed=True)["example_id"]) == ["e0", "e2"]
    with pytest.raises(WorkbenchError, match="unknown order"):
        queue.review_queue(result, order="random")


def test_table_edits_are_validated_before_saving():
    rows = [
        {"example_id": "e0", "current_label": "a", "new_label": "b"},  # a change
        {"example_id": "e1", "current_label": "a", "new_label": None},  # no change
        {"example_id": "e2", "current_label": "b", "new_label": "b"},  # same label: no change
        {"example_id": "e3", "current_label": "c", "new_label": ""},  # empty: no change
    ]
    edits, problems = queue.validate_table_edits(rows, ["a", "b", "c"], ["e0", "e1", "e2", "e3"])
    assert problems == []
    assert edits == [queue.TableEdit("e0", "b")]
    bad = rows + [{"example_id": "e1", "current_label": "a", "new_label": "zebra"},
                  {"example_id": "nope", "current_label": "a", "new_label": "b"}]
    _, problems = queue.validate_table_edits(bad, ["a", "b", "c"], ["e0", "e1", "e2", "e3"])
    assert len(problems) == 2
    assert "'zebra' is not a class" in problems[0] and "'nope' is not in this dataset" in problems[1]


def test_unknown_labels_are_refused_with_a_message():
    with pytest.raises(WorkbenchError, match="'zebra'"):
        queue.label_indices(["a", "zebra"], ["a", "b"])


# --- features -------------------------------------------------------------------------------------


def test_features_are_what_the_head_reads():
    model = tiny_models.loaded_image_model()
    images = tiny_models.random_images(5)
    outputs = feats.extract(model, images)
    assert outputs.feature_layer == "gap" and outputs.features.shape == (5, 2)
    weights = tiny_models.image_weights()
    logits = outputs.features @ weights["dense_kernel"] + weights["dense_bias"]
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(outputs.probabilities, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(outputs.probabilities, model.predict_proba(images), atol=1e-6)


def test_sequential_model_features_and_the_dropout_is_skipped():
    inputs = keras.Input(shape=(4,))
    pooled = keras.layers.Dense(3, activation="relu", name="features")(inputs)
    dropped = keras.layers.Dropout(0.5, name="head_dropout")(pooled)
    outputs = keras.layers.Dense(2, activation="softmax", name="head")(dropped)
    assert feats.feature_layer_name(keras.Model(inputs, outputs)) == "features"
    sequential = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(3, name="hidden"),
                                   keras.layers.Dense(2, activation="softmax", name="out")])
    assert feats.feature_layer_name(sequential) == "hidden"


def test_a_model_without_dense_falls_back_to_log_probabilities():
    inputs = keras.Input(shape=(tiny_models.IMAGE_SIZE, tiny_models.IMAGE_SIZE, 3))
    x = keras.layers.Conv2D(3, 3, name="conv")(keras.layers.Rescaling(1 / 255)(inputs))
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Softmax()(x)
    model = tiny_models.loaded_image_model(keras.Model(inputs, outputs))
    outputs = feats.extract(model, tiny_models.random_images(4))
    assert outputs.feature_layer == feats.LOG_PROBABILITIES
    np.testing.assert_allclose(np.exp(outputs.features), outputs.probabilities, rtol=1e-4)


# --- the audit end to end (tiny model: fast) ----------------------------------------------------------


def _tiny_dataset(n: int = 40) -> Dataset:
    model = tiny_models.loaded_image_model()
    images = tiny_models.random_images(n, seed=3)
    y = model.predict_proba(images).argmax(axis=1)
    ids = tuple(f"tiny-{i:03d}" for i in range(n))
    return Dataset(name="tiny", split="train_noisy", modality=Modality.IMAGE,
                   classes=tuple(tiny_models.IMAGE_CLASSES), ids=ids, x=images, y=y,
                   flipped_ids=frozenset(ids[:2]))


def test_cached_results_are_reused(workspace, tmp_path):
    model = tiny_models.loaded_image_model()
    dataset = _tiny_dataset()
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    first = queue.audit(model, dataset, ledger=ledger, k_folds=3)
    assert not first.from_cache
    assert len(list(queue.cache_dir().glob("*.npz"))) == 2  # features + out-of-sample probabilities
    # Without its Keras model the audit can only succeed by reading the cache.
    hollow = dataclasses.replace(model, keras_model=None)
    second = queue.audit(hollow, dataset, ledger=ledger, k_folds=3)
    assert second.from_cache
    np.testing.assert_array_equal(second.probabilities, first.probabilities)
    # New labels: the features are reused, the out-of-sample head is refitted.
    ledger.record("tiny", dataset.ids[5], "bird", expected_event_id=None, annotator="ann")
    third = queue.audit(hollow, dataset, ledger=ledger, k_folds=3)
    assert not third.from_cache
    assert third.table.loc[5, "given_label"] == "bird" and third.table.loc[5, "reviewed"]
    assert len(list(queue.cache_dir().glob("*.npz"))) == 3
    with pytest.raises(AttributeError):  # proves the model really is unusable
        queue.audit(hollow, dataset, ledger=ledger, k_folds=3, use_cache=False)


def test_audit_refuses_a_mismatched_dataset(workspace):
    model = tiny_models.loaded_text_model()
    with pytest.raises(WorkbenchError, match="choose a matching pair"):
        queue.audit(model, _tiny_dataset(), apply_corrections=False)


# --- the shipped models and their flipped-label copies ----------------------------------------------


# The README's table: recall within N and 2N (N = the flips) with each sample model's noisy twin.
README_RECALL = {"digits": (0.968, 1.000), "headlines": (0.981, 1.000),
                 "shapes": (0.824, 0.976), "shapes-shortcut": (0.671, 0.824)}


@pytest.mark.parametrize("name", [
    "digits", "headlines",
    pytest.param("shapes", marks=pytest.mark.slow), pytest.param("shapes-shortcut", marks=pytest.mark.slow)])
def test_recall_on_the_shipped_flipped_labels(name, workspace, tmp_path):
    # The honest setting: the twin trained on the noisy labels it audits (workbench train --noisy).
    model = api.load_model(f"{name}-noisy")
    assert model.info.lineage.train_split == "train_noisy"
    dataset = datasets.load(name, "train_noisy")
    result = queue.audit(model, dataset, ledger=Ledger(f"sqlite:///{tmp_path / 'l.sqlite'}"))
    assert result.n_flipped == len(dataset.flipped_ids) > 0
    assert result.feature_layer == "features"
    table = result.table
    assert list(table["example_id"]) == list(dataset.ids)
    assert sorted(table["issue_rank"]) == list(range(1, len(dataset) + 1))
    # Recompute the printed recall from the table by hand.
    cutoff = 2 * result.n_flipped
    found = table[(table["issue_rank"] <= cutoff) & table["is_flipped"]]
    assert result.recall_at_2x == pytest.approx(len(found) / result.n_flipped)
    # The README's figures, within one example (CPU float order can swap two neighbours in the ranking).
    within_n = queue.recall_at(table["issue_rank"].to_numpy(), table["is_flipped"].to_numpy(), 1.0)
    one = 1.0 / result.n_flipped
    assert within_n == pytest.approx(README_RECALL[name][0], abs=one + 5e-4)
    assert result.recall_at_2x == pytest.approx(README_RECALL[name][1], abs=one + 5e-4)


def test_ledger_corrections_are_applied_before_ranking(workspace, tmp_path):
    import sample_data

    dataset = datasets.load("digits", "train_noisy")
    truth = sample_data.noisy.read_flipped("digits")["flipped"]
    fixed = sorted(dataset.flipped_ids)[0]
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.sqlite'}")
    ledger.record("digits", fixed, truth[fixed]["true"], expected_event_id=None, annotator="alice")
    result = queue.audit(api.load_model("digits"), dataset, ledger=ledger)
    row = result.table.set_index("example_id").loc[fixed]
    assert row["given_label"] == truth[fixed]["true"] and row["original_label"] == truth[fixed]["given"]
    assert row["reviewed"] and not row["is_flipped"]
    assert result.n_flipped == len(dataset.flipped_ids) - 1
    assert result.counts["corrected"] == 1 and result.counts["reviewed"] == 1
    summary = result.summary(top=len(dataset), exclude_reviewed=True)
    assert fixed not in {r["example_id"] for r in summary["ranking"]}


# --- decisions -------------------------------------------------------------------------------------


def test_decisions_write_the_ledger(tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.sqlite'}")
    row = {"example_id": "x1", "current_label": "a", "predicted_label": "b", "confidence": 0.9}
    kw = dict(classes=["a", "b", "c"], annotator="alice", model_name="m", model_version="v1")
    kept = apply_decision(ledger, "toy", row, Decision(KEEP), expected_event_id=None, **kw)
    assert (kept.action, kept.new_label, kept.annotator, kept.predicted_label) == ("set", "a", "alice", "b")
    taken = apply_decision(ledger, "toy", row, Decision(TAKE_MODEL), expected_event_id=kept.id, **kw)
    assert taken.new_label == "b" and taken.previous_label == "a"
    flagged = apply_decision(ledger, "toy", row, Decision(FLAG), expected_event_id=taken.id, **kw)
    assert flagged.action == "ambiguous" and flagged.new_label == "b"
    with pytest.raises(StaleEditError):
        apply_decision(ledger, "toy", row, Decision(CHOOSE, "c"), expected_event_id=taken.id, **kw)
    with pytest.raises(WorkbenchError, match="not a class"):
        apply_decision(ledger, "toy", row, Decision(CHOOSE, "zebra"), expected_event_id=flagged.id, **kw)
    assert ledger.current_label("toy", "x1", "a") == "b"


# --- the command ----------------------------------------------------------------------------------


def test_audit_command_json(workspace, capsys):
    assert main(["audit", "--model", "headlines", "--json", "--top", "7"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"model", "version", "dataset", "split", "n", "k_folds", "seconds", "recall_at_2x",
            "n_flipped", "ranking"} <= data.keys()
    # The sample model learned these examples' clean labels: its twin trained on train_noisy ranks them.
    assert (data["model"], data["dataset"], data["split"], data["k_folds"]) == ("headlines-noisy", "headlines", "train_noisy", 5)
    assert data["model_trained_on"] == "train_noisy"
    assert data["n"] == 2093 and data["n_flipped"] == 105 and data["recall_at_2x"] >= 0.8
    assert len(data["ranking"]) == 7
    assert [row["issue_rank"] for row in data["ranking"]] == list(range(1, 8))
    first = data["ranking"][0]
    assert {"example_id", "index", "given_label", "predicted_label", "confidence", "prob_given",
            "label_quality", "issue_rank", "uncertainty", "is_flipped"} <= first.keys()
    # Uncertainty order and the clean split (no flipped list: recall is null).
    assert main(["audit", "--model", "headlines", "--split", "train", "--order", "uncertainty",
                 "--top", "3", "--json"]) == 0
    clean = json.loads(capsys.readouterr().out)
    assert clean["recall_at_2x"] is None and clean["n_flipped"] == 0
    assert clean["model"] == "headlines" and clean["model_trained_on"] == "train"  # the clean split: as given
    uncertainties = [row["uncertainty"] for row in clean["ranking"]]
    assert uncertainties == sorted(uncertainties, reverse=True)


def test_audit_command_as_given_ranks_with_the_named_model(workspace, capsys):
    assert main(["audit", "--model", "headlines", "--as-given", "--json", "--top", "1"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert (data["model"], data["split"], data["model_trained_on"]) == ("headlines", "train_noisy", "train")
    assert "note: ranking with" not in captured.err


def test_audit_command_refusals(workspace, capsys):
    assert main(["audit", "--model", "headlines", "--k-folds", "1"]) == 2
    assert capsys.readouterr().err.startswith("error: --k-folds")
    assert main(["audit", "--model", "digits", "--dataset", "headlines"]) == 2
    assert "choose a matching pair" in capsys.readouterr().err
    assert main(["audit", "--model", "nope"]) == 2


@pytest.mark.slow
def test_audit_command_subprocess_prints_recall(workspace):
    env = dict(os.environ, WORKBENCH_HOME=str(workspace), TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([str(REPO / ".venv" / "bin" / "workbench"), "audit", "--model", "digits", "--top", "3"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "note: ranking with digits-noisy" in done.stderr and "--as-given" in done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-1].startswith("recall of the 63 flipped labels within the top 126: ")
    assert float(lines[-1].rsplit(" ", 1)[1]) >= 0.8
    assert len([line for line in lines if line.strip().split(" ")[0].isdigit()]) == 3


def test_large_audits_use_cleanlabs_batched_path():
    """From BATCHED_FROM examples cleanlab's memory-bounded path decides: it finds planted flips
    (few false alarms) and mostly agrees with the whole-array call, here forced on 3,000 rows in 6 batches."""
    rng = np.random.default_rng(0)
    n, k = 3000, 4
    truth = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), truth] += 3
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    given = truth.copy()
    flipped = rng.choice(n, 300, replace=False)
    given[flipped] = (given[flipped] + 1) % k
    planted = np.zeros(n, dtype=bool)
    planted[flipped] = True
    batched = queue.confident_learning_issues(given, probabilities, batched_from=n, batch_size=500)
    whole = queue.confident_learning_issues(given, probabilities, batched_from=n + 1)
    assert batched.dtype == bool and batched.shape == (n,)
    assert (batched & planted).sum() / batched.sum() >= 0.95  # what it flags is mostly planted
    assert (batched & planted).sum() >= 0.6 * len(flipped)
    assert (batched == whole).mean() >= 0.95 and not np.array_equal(batched, whole)  # two paths, close
    assert queue.BATCHED_FROM > 100_000  # the sample datasets keep the whole-array verdicts
