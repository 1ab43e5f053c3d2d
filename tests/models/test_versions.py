"""Promote / rollback / discard, the promotion log, comparisons and the model card."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from commandline import cli
from foundation import config
from foundation.errors import WorkbenchError
from models import model_card, store, versions
from models.manifest import Manifest
from tests.models.toy import MANIFEST
from tests.models.toy import toy_model as _model
from workbench import model_trust


def _candidate(parent: str, seed: int) -> str:
    return store.publish_version("toy", _model(seed), dict(MANIFEST, parent=parent, created_as="candidate")).version


@pytest.fixture
def toy(workspace):
    """v1 (the first version: in use by default), candidates v2 and v3 fine-tuned from it."""
    store.publish_version("toy", _model(0), dict(MANIFEST, parent=None))
    return [_candidate("v1", 1), _candidate("v1", 2)]


def test_statuses_and_promote(toy):
    assert [versions.status("toy", v) for v in ("v1", "v2", "v3")] == ["current", "candidate", "candidate"]
    assert versions.newest_candidate("toy") == "v3"
    event = versions.promote("toy", "v2", by="alice")
    assert (event["action"], event["version"], event["previous"], event["by"]) == ("promote", "v2", "v1", "alice")
    assert store.current_version("toy") == "v2"
    assert store.load("toy").version == "v2"
    assert versions.candidates("toy") == ["v3"]
    with pytest.raises(WorkbenchError, match="already the version in use"):
        versions.promote("toy", "v2")


def test_rollback_returns_to_any_earlier_version(toy):
    versions.promote("toy", "v2")
    versions.promote("toy", "v3")
    versions.rollback("toy", "v1")
    assert store.current_version("toy") == "v1"
    assert versions.status("toy", "v2") == "previous" and versions.status("toy", "v3") == "previous"
    versions.rollback("toy", "v2")
    assert store.current_version("toy") == "v2"
    actions = [(e["action"], e["version"]) for e in versions.history("toy")]
    assert actions == [("promote", "v2"), ("promote", "v3"), ("rollback", "v1"), ("rollback", "v2")]


def test_rollback_to_a_never_used_candidate_is_refused(toy):
    with pytest.raises(WorkbenchError, match="never in use; promote it instead"):
        versions.rollback("toy", "v3")
    assert store.current_version("toy") == "v1"


def test_discard_deletes_only_the_candidate(toy, workspace):
    root = workspace / "models" / "toy" / "versions"
    event = versions.discard("toy", "v3", by="bob")
    assert event["sha256"] and event["action"] == "discard"
    assert store.all_version_ids("toy") == ["v1", "v2"]
    assert sorted(p.name for p in root.iterdir()) == ["v1", "v2"]  # no trash left behind
    with pytest.raises(WorkbenchError, match="the version in use"):
        versions.discard("toy", "v1")
    versions.promote("toy", "v2")
    versions.rollback("toy", "v1")
    with pytest.raises(WorkbenchError, match="previous version"):
        versions.discard("toy", "v2")  # it was in use: history, needed for rollback
    assert store.all_version_ids("toy") == ["v1", "v2"]


def test_discard_refuses_a_candidate_with_children(toy):
    _candidate("v2", 5)  # v4 fine-tuned from the candidate v2
    with pytest.raises(WorkbenchError, match="v4 was fine-tuned from v2"):
        versions.discard("toy", "v2")


def test_shipped_zoo_version_is_never_discarded(workspace):
    assert versions.status("digits", "v1") == "current"
    with pytest.raises(WorkbenchError, match="only candidates"):
        versions.discard("digits", "v1")
    assert (config.ZOO_DIR / "digits" / store.MODEL_FILE).is_file()


def test_promote_refuses_a_tampered_file(toy, workspace):
    with open(workspace / "models" / "toy" / "versions" / "v2" / store.MODEL_FILE, "ab") as handle:
        handle.write(b"x")
    with pytest.raises(WorkbenchError, match="sha256"):
        versions.promote("toy", "v2")
    assert store.current_version("toy") == "v1"
    assert versions.history("toy") == []


def test_promotion_log_is_append_only_json_lines(toy, workspace):
    versions.promote("toy", "v2")
    path = workspace / "models" / "toy" / versions.LOG_FILE
    first = path.read_text()
    versions.rollback("toy", "v1")
    second = path.read_text()
    assert second.startswith(first) and len(second.splitlines()) == 2
    assert [json.loads(line)["action"] for line in second.splitlines()] == ["promote", "rollback"]


def test_comparison_helpers_by_hand():
    old = {"modality": "image", "classes": ["a", "b"], "metrics": {"test": {"accuracy": 0.5, "confusion": [[2, 2], [0, 4]],
                                                        "per_class": {"a": {"precision": 1.0, "recall": 0.5, "f1": 0.6667},
                                                                      "b": {"precision": 0.6667, "recall": 1.0, "f1": 0.8}}}}}
    new = {"modality": "image", "classes": ["a", "b"], "metrics": {"test": {"accuracy": 0.75, "confusion": [[4, 0], [1, 3]],
                                                        "per_class": {"a": {"precision": 0.8, "recall": 1.0, "f1": 0.8889},
                                                                      "b": {"precision": 1.0, "recall": 0.75, "f1": 0.8571}}}}}
    old, new = Manifest.from_dict(old), Manifest.from_dict(new)
    np.testing.assert_array_equal(versions.confusion_difference(old, new), [[2, -2], [1, -1]])
    rows = versions.metrics_table(old, new)
    assert rows[0] == {"class": "(overall)", "metric": "accuracy", "old": 0.5, "new": 0.75, "change": 0.25}
    recall_b = next(r for r in rows if r["class"] == "b" and r["metric"] == "recall")
    assert recall_b["change"] == -0.25
    fixed, broken = versions.fixed_and_broken([0, 0, 1, 1], [1, 0, 1, 0], [0, 0, 0, 1])
    assert (fixed, broken) == ([0, 3], [2])


def test_model_card_reports_metrics_weaknesses_and_escapes_names():
    manifest = {
        "name": "toy", "version": "v2", "parent": "v1", "classes": ["cat", "[x](http://evil)"],
        "modality": "image", "dataset": "pets", "labels_changed": 3, "data_snapshot_hash": "ab" * 32,
        "sha256": "cd" * 32, "created_by": "alice", "created_at": "2026-01-01T00:00:00+00:00",
        "intended_use": "Teaching.",
        "metrics": {"test": {"accuracy": 0.75, "n": 8, "confusion": [[4, 0], [2, 2]],
                             "per_class": {"cat": {"precision": 0.6667, "recall": 1.0, "f1": 0.8, "support": 4},
                                           "[x](http://evil)": {"precision": 1.0, "recall": 0.5, "f1": 0.6667,
                                                                "support": 4}}},
                    "val": {"accuracy": 0.8}},
    }
    card = model_card.model_card(Manifest.from_dict(manifest), status="candidate", trust={"gradcam deletion AUC": 0.125})
    assert "# Model card: toy v2" in card and "**Parent version**: v1" in card
    assert "**Labels changed by corrections**: 3" in card
    assert "75.0%" in card and "80.0%" in card
    assert "\\[x\\]\\(http\\:\\/\\/evil\\)" in card and "[x](http://evil)" not in card
    assert "recall 50.0%" in card  # the weakest class is named
    assert "2 test examples of \\[x\\]\\(http\\:\\/\\/evil\\) were predicted as cat." in card
    assert "**gradcam deletion AUC**: 0.125" in card
    assert "Not run yet" in card  # sanity check not measured for this manifest


def test_versions_cli_in_process(toy, capsys, tmp_path):
    assert cli.main(["models", "versions", "toy", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["version"], r["status"]) for r in rows] == [("v1", "current"), ("v2", "candidate"), ("v3", "candidate")]
    assert cli.main(["models", "promote", "toy", "v2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == "v2"
    assert cli.main(["models", "discard", "toy", "v3"]) == 0
    assert cli.main(["models", "card", "toy", "--out", str(tmp_path / "card.md")]) == 0
    assert "# Model card: toy v2" in (tmp_path / "card.md").read_text()
    capsys.readouterr()
    assert cli.main(["models", "discard", "toy", "v2"]) == 2
    assert capsys.readouterr().err.startswith("error: toy v2 is the version in use")


def test_versions_cli_subprocess(toy, workspace):
    exe = Path(sys.executable).parent / "workbench"
    done = subprocess.run([str(exe), "models", "rollback", "toy", "v3"], capture_output=True, text=True,
                          env={**__import__("os").environ, "WORKBENCH_HOME": str(workspace)}, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == "error: toy v3 is a candidate that was never in use; promote it instead."


def test_card_measures_trust_figures_once(workspace, tmp_path, capsys):
    out = tmp_path / "card.md"
    assert cli.main(["models", "card", "headlines", "v1", "--measure", "--out", str(out)]) == 0
    card = out.read_text()
    assert "## Trust figures of the explanations" in card and "Not measured yet" not in card
    assert "**deletion area\\, random order**" in card and "**examples**: 16" in card
    assert "**verdict**: passes\\: the explanation depends on the model" in card
    assert "**similarity with only the top layer randomised**" in card
    saved = model_trust.trust_path("headlines", "v1")
    stamp = saved.stat().st_mtime_ns
    assert cli.main(["models", "card", "headlines", "--measure"]) == 0  # v1 is current: same card
    assert saved.stat().st_mtime_ns == stamp  # measured once, then read back
    assert "**examples**: 16" in capsys.readouterr().out
