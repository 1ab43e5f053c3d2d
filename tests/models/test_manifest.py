"""The typed manifest: every shipped manifest and every kind written today round-trips byte for
byte; a damaged or wrong-typed manifest is refused with one ModelError sentence naming the field."""
from __future__ import annotations

import copy
import json

import pytest

from foundation import config
from foundation.errors import ModelError
from foundation.types import Modality
from models.manifest import InputSpec, Manifest, Metrics, as_manifest

ZOO_MANIFESTS = sorted(config.ZOO_DIR.glob("*/manifest.json"))

# As `workbench models add` writes it (workbench/user_models.py), after linking a dataset later.
USER_MODEL = {
    "classes": ["left", "right"], "created_at": "2026-12-01T10:00:00+00:00", "created_by": "models add",
    "dataset": None, "file": "model.keras", "gradcam_layer": "last_conv",
    "inferred": {"classes": "names.json", "modality": "the model's input type and shape"},
    "input": {"channels": 3, "height": 32, "rescales_inputs": False, "type": "image", "value_range": [0, 1],
              "width": 32},
    "intended_use": "A model registered by a user from cnn.keras.", "labels_changed": 0, "metrics": {},
    "modality": "image", "name": "cnn", "notes": [], "parent": None, "sha256": "ab" * 32,
    "software": {"keras": "3.15.1", "python": "3.11.7", "tensorflow": "2.21.0"},
    "source": {"path": "/data/cnn.keras", "sha256": "ab" * 32}, "version": "v1",
}

# As workbench/retrain.py writes a candidate (and the shortcut lesson, with an unmeasured split).
RETRAINED = {
    "classes": ["a", "b"], "corrections": {"ledger_event_id": None, "snapshot_size": 96},
    "created_as": "candidate", "created_at": "2026-12-01T10:00:00+00:00", "created_by": "alice",
    "data_hash": "cd" * 32, "data_snapshot_hash": "cd" * 32, "dataset": "toy", "file": "model.keras",
    "input": {"sequence_length": 24, "tokenization": "lowercase, strip punctuation, split on whitespace",
              "type": "text"},
    "labels_changed": 3, "lesson_fix": "training images cleaned",
    "metrics": {"test": {"accuracy": 1, "confusion": [[1, 0], [0, 1]], "n": 2,
                         "per_class": {"a": {"f1": 1.0, "precision": 1.0, "recall": 1.0, "support": 1},
                                       "b": {"f1": 1.0, "precision": 1.0, "recall": 1.0, "support": 1}}}},
    "modality": "text", "name": "toy", "parent": "v1", "parent_metrics": {"test": {"accuracy": 0.5}, "test_nocue": {}},
    "sha256": "ef" * 32, "simulation": {"config": {"limit": None}, "role": "noisy-base", "source": "toy"},
    "software": {"keras": "3.15.1", "tensorflow": "2.21.0"}, "train_split": "train_noisy",
    "training": {"command": "workbench retrain --model toy", "config": {"image_filters": [4, 8], "limit": None},
                 "recipe": "fine_tune", "seconds": 1.5},
    "version": "v2", "vocabulary_size": 974, "from_a_newer_workbench": {"kept": True},
}


@pytest.mark.parametrize("path", ZOO_MANIFESTS, ids=lambda p: p.parent.name)
def test_every_shipped_manifest_round_trips_byte_for_byte(path):
    text = path.read_text(encoding="utf-8")
    manifest = Manifest.from_dict(json.loads(text))
    assert json.dumps(manifest.to_dict(), indent=2, sort_keys=True) == text
    assert manifest.name == path.parent.name and manifest.lineage.parent is None
    assert manifest.metrics.test.accuracy is not None and manifest.training.config["seed"] == 0


def test_the_shipped_manifests_exist():
    assert {p.parent.name for p in ZOO_MANIFESTS} >= {"digits", "shapes", "shapes-shortcut", "headlines"}


@pytest.mark.parametrize("data", [USER_MODEL, RETRAINED], ids=["user-model", "retrained"])
def test_written_manifests_round_trip_exactly(data):
    original = copy.deepcopy(data)
    manifest = Manifest.from_dict(data)
    assert manifest.to_dict() == original
    assert data == original  # reading never changes the caller's dict
    again = manifest.to_dict()
    again["classes"].append("mutated")
    assert manifest.classes == tuple(original["classes"])  # nor does writing hand out its insides


def test_typed_reads():
    shapes = Manifest.from_dict(json.loads((config.ZOO_DIR / "shapes" / "manifest.json").read_text()))
    assert shapes.modality is Modality.IMAGE and shapes.classes[0] == "circle"
    assert (shapes.input.height, shapes.input.width, shapes.input.pixel_scale) == (64, 64, 1.0)
    assert shapes.metrics.test.per_class["circle"].recall == 0.9911
    assert shapes.metrics.test.confusion[0][0] == 223 and "test_nocue" not in shapes.metrics
    assert shapes.metrics.get("test_nocue").accuracy is None and not shapes.metrics.get("test_nocue").recorded
    user = Manifest.from_dict(USER_MODEL)
    assert user.dataset is None and user.metrics.test.accuracy is None and user.input.pixel_scale == 1 / 255
    assert user.lineage.source.path == "/data/cnn.keras" and user.notes == ()
    retrained = Manifest.from_dict(RETRAINED)
    assert retrained.lineage.parent == "v1" and retrained.lineage.corrections.snapshot_size == 96
    assert retrained.parent_metrics.test.accuracy == 0.5 and retrained.extra == {"from_a_newer_workbench": {"kept": True}}
    assert retrained.lesson_fix == "training images cleaned" and user.lesson_fix is None


def test_older_minimal_manifests_are_read_with_none_for_what_they_lack():
    manifest = Manifest.from_dict({"modality": "text", "classes": ["a", "b"], "input": {"sequence_length": 6}})
    assert manifest.name is None and manifest.lineage.sha256 is None and manifest.training is None
    assert manifest.input.sequence_length == 6 and manifest.input.type is None
    # parent, dataset and metrics are always written, as every writer has always done.
    assert manifest.to_dict() == {"modality": "text", "classes": ["a", "b"], "input": {"sequence_length": 6},
                                  "parent": None, "dataset": None, "metrics": {}}


def test_a_built_manifest_writes_what_the_writers_wrote():
    manifest = Manifest(modality=Modality.IMAGE, classes=("a",), input=InputSpec(type="image", height=8, width=8),
                        metrics=Metrics.from_dict({"val": {"accuracy": 0.5}}))
    assert manifest.to_dict() == {"modality": "image", "classes": ["a"], "parent": None, "dataset": None,
                                  "input": {"type": "image", "height": 8, "width": 8},
                                  "metrics": {"val": {"accuracy": 0.5}}}
    assert as_manifest(manifest) is manifest and as_manifest(manifest.to_dict()) == manifest


@pytest.mark.parametrize("change, field", [
    ({"classes": "cat,dog"}, "classes"),
    ({"classes": None}, "classes"),
    ({"modality": "audio"}, "modality"),
    ({"input": {"height": "64"}}, "input.height"),
    ({"input": {"height": True}}, "input.height"),
    ({"input": {"rescales_inputs": "yes"}}, "input.rescales_inputs"),
    ({"input": [64, 64]}, "input"),
    ({"metrics": {"test": {"accuracy": "high"}}}, "metrics.test.accuracy"),
    ({"metrics": {"test": {"confusion": [[1, "x"]]}}}, "metrics.test.confusion"),
    ({"metrics": {"test": {"per_class": {"a": {"recall": "1.0"}}}}}, "metrics.test.per_class.a.recall"),
    ({"metrics": {"test": {"per_class": {"a": {"support": 4.0}}}}}, "metrics.test.per_class.a.support"),
    ({"metrics": {"test": {"per_class": {"a": None}}}}, "metrics.test.per_class.a"),
    ({"parent": 1}, "parent"),
    ({"sha256": ["x"]}, "sha256"),
    ({"labels_changed": 2.5}, "labels_changed"),
    ({"training": {"config": [1]}}, "training.config"),
    ({"source": "a path"}, "source"),
])
def test_a_wrong_typed_manifest_is_refused_with_one_sentence_naming_the_field(change, field):
    data = {**copy.deepcopy(USER_MODEL), **change}
    with pytest.raises(ModelError) as caught:
        Manifest.from_dict(data, where="the manifest of model 'cnn' v1")
    message = str(caught.value)
    assert message.startswith("the manifest of model 'cnn' v1 is damaged: ") and f" {field} " in message
    assert message.count(";") == 1 and message.endswith("register the model again.") and "\n" not in message


def test_a_manifest_that_is_not_an_object_is_refused():
    with pytest.raises(ModelError, match="should be a JSON object"):
        Manifest.from_dict(["not", "a", "manifest"])
