"""Retrain on a tiny configuration: snapshot, candidate, manifest, loadability."""
from dataclasses import replace

import numpy as np
import pytest

import sample_data
from foundation.errors import WorkbenchError
from foundation.types import Modality
from labels import Ledger
from models import store
from models.manifest import Manifest, Training
from models.safe_load import sha256_file
from workbench import retrain, samples, snapshots

CONFIG = samples.quick_config()  # 96 examples, one epoch per phase


def _correct(ledger: Ledger, dataset: str, positions: list[int], split: str = "train_noisy") -> dict[str, str]:
    """Give each example the next class after its shipped label; returns id -> new label."""
    data = sample_data.load(dataset, split)
    changed = {}
    for i in positions:
        eid = data.ids[i]
        label = data.classes[(int(data.y[i]) + 1) % len(data.classes)]
        ledger.record(dataset, eid, label, expected_event_id=None, annotator="alice")
        changed[eid] = label
    return changed


def _expected_hash(dataset: str, changed: dict[str, str]) -> str:
    base = sample_data.load(dataset, "train_noisy")  # the labels the Review page corrects
    y = np.array(base.y)
    for eid, label in changed.items():
        y[base.index_of(eid)] = base.classes.index(label)
    from dataclasses import replace

    return sample_data.dataset_hash(replace(base, y=y))


def test_retrain_publishes_a_loadable_candidate_with_a_true_manifest(workspace):
    ledger = Ledger()
    changed = _correct(ledger, "digits", [0, 5, 9])
    result = retrain.retrain("digits", config=CONFIG, created_by="alice", ledger=ledger)

    assert (result.parent, result.candidate) == ("v1", "v2")
    assert store.current_version("digits") == "v1"  # a candidate until promoted
    manifest = store.read_manifest("digits", "v2")
    assert manifest["parent"] == "v1" and manifest["created_by"] == "alice"
    assert manifest["created_as"] == "candidate"
    assert manifest["labels_changed"] == 3 == ledger.count("digits")
    assert manifest["data_snapshot_hash"] == result.data_snapshot_hash == _expected_hash("digits", changed)
    assert manifest["sha256"] == sha256_file(workspace / "models" / "digits" / "versions" / "v2" / "model.keras")
    assert set(manifest["metrics"]) == {"val", "test"}
    assert len(manifest["metrics"]["test"]["per_class"]) == 10 and manifest["metrics"]["test"]["n"] == 270
    assert manifest["training"]["config"]["limit"] == 96
    assert manifest["train_split"] == "train_noisy"  # the shipped labels the Review page corrects
    # "before" is the parent measured on the same clean test split as its own manifest.
    assert result.before["accuracy"] == store.read_manifest("digits", "v1")["metrics"]["test"]["accuracy"]
    assert result.after == manifest["metrics"]["test"]

    # What the Explain image page shows first, stored with the candidate: shown at once once it is promoted.
    from workbench import first_page

    page = first_page.load("digits", "v2")
    assert page is not None and page.stored_with_model and page.sha256 == manifest["sha256"]

    loaded = store.load("digits", "v2")
    probabilities = loaded.predict_proba(list(sample_data.load("digits", "test").x[:4]))
    assert probabilities.shape == (4, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)

    snapshot = snapshots.find_snapshot("digits", result.data_snapshot_hash)
    assert snapshot.changed_labels() == changed
    data = snapshots.load_snapshot(snapshot)
    assert [data.classes[data.y[data.index_of(eid)]] for eid in changed] == list(changed.values())


def test_snapshots_are_content_addressed_and_checked(workspace):
    ledger = Ledger()
    first = snapshots.take_snapshot("headlines", "train_noisy", ledger)
    assert first.labels_changed == 0 and first.hash == sample_data.dataset_hash(sample_data.load("headlines", "train_noisy"))
    assert snapshots.take_snapshot("headlines", "train_noisy", ledger).path == first.path
    changed = _correct(ledger, "headlines", [3])
    second = snapshots.take_snapshot("headlines", "train_noisy", ledger)
    assert second.hash != first.hash and second.changed_labels() == changed
    (eid,) = changed
    ledger.undo("headlines", eid, annotator="alice", expected_event_id=ledger.latest_event("headlines", eid).id)
    assert snapshots.take_snapshot("headlines", "train_noisy", ledger).hash == first.hash
    folders = sorted(p.name for p in (workspace / "snapshots" / "headlines").iterdir())
    assert folders == sorted([first.hash, second.hash])  # no staging leftovers, each written once

    data_file = second.path / snapshots.DATA_FILE
    arrays = dict(np.load(data_file, allow_pickle=False))
    arrays["y"][0] = (arrays["y"][0] + 1) % 3
    np.savez_compressed(data_file, **arrays)
    with pytest.raises(WorkbenchError, match="changed on disk"):
        snapshots.load_snapshot(second)


def test_pending_corrections_counts_what_the_version_in_use_has_not_learned(workspace):
    ledger = Ledger()
    assert retrain.pending_corrections("digits", ledger)["labels_changed"] == 0
    _correct(ledger, "digits", [1, 2])
    pending = retrain.pending_corrections("digits", ledger)
    assert (pending["labels_changed"], pending["not_in_current"], pending["split"]) == (2, 2, "train_noisy")


def test_text_model_retrains_and_keeps_its_vocabulary(workspace):
    ledger = Ledger()
    _correct(ledger, "headlines", [0, 1], split="train")
    result = retrain.retrain("headlines", config=CONFIG, ledger=ledger, split="train")
    assert store.read_manifest("headlines", result.candidate)["train_split"] == "train"
    loaded = store.load("headlines", result.candidate)
    parent = store.load("headlines", "v1")
    assert loaded.manifest["vocabulary_size"] == parent.manifest["vocabulary_size"]
    vocab = loaded.keras_model.get_layer("vectorize").get_vocabulary()
    assert vocab == parent.keras_model.get_layer("vectorize").get_vocabulary()
    assert loaded.predict_proba(["Acme shares plunge after profit warning"]).shape == (1, 3)
    assert result.labels_changed == 2


def test_correction_with_an_unknown_class_is_refused(workspace):
    ledger = Ledger()
    eid = sample_data.load("digits", "train").ids[0]
    ledger.record("digits", eid, "eleven", expected_event_id=None, annotator="alice")
    with pytest.raises(WorkbenchError, match="not a class of 'digits'"):
        retrain.retrain("digits", config=CONFIG, ledger=ledger)
    assert store.all_version_ids("digits") == ["v1"]


def test_recipe_config_is_the_parents_recorded_one_on_all_the_data():
    untrained = Manifest(modality=Modality.IMAGE, classes=("a", "b"))
    manifest = replace(untrained, training=Training(config={
        "head_epochs": 3, "unfreeze_top": 6, "finetune_learning_rate": 1e-3,
        "limit": 96, "image_filters": [4, 8], "from_a_newer_version": 1}))
    config = retrain.recipe_config(manifest)
    assert (config.head_epochs, config.unfreeze_top, config.finetune_learning_rate) == (3, 6, 1e-3)
    assert config.limit is None and config.image_filters == (4, 8)
    assert retrain.recipe_config(untrained) == retrain.training.TrainConfig()
    assert retrain.recipe_config(None) == retrain.training.TrainConfig()
