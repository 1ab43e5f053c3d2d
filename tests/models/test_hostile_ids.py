"""Hostile version ids and model names through the store, the version commands and the CLI.

Each is refused with one sentence before it is joined onto a workspace path, and nothing
is written outside the model's folder.
"""
import pytest

from commandline import cli
from foundation.errors import ModelError
from models import store, versions
from tests.models.toy import MANIFEST
from tests.models.toy import toy_model as _model

HOSTILE = ["../x", "a/b", "v1\x00", "v" * 500, "", "..", "v1/../../x"]


@pytest.fixture
def toy(workspace):
    store.publish_version("toy", _model(0), dict(MANIFEST, parent=None))
    return workspace


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("version", HOSTILE)
def test_store_refuses_hostile_version_ids(toy, version):
    calls = [lambda: store.version_path("toy", version), lambda: store.set_current("toy", version)]
    if version:  # the readers take an empty version to mean "the one in use"
        calls += [lambda: store.manifest("toy", version), lambda: store.load("toy", version),
                  lambda: store.read_manifest("toy", version)]
    for call in calls:
        with pytest.raises(ModelError, match="is not a valid version id"):
            call()


@pytest.mark.parametrize("version", HOSTILE)
def test_version_commands_refuse_hostile_ids_and_change_nothing(toy, version):
    before = _files(toy.parent)
    for action in (versions.promote, versions.rollback, versions.discard):
        with pytest.raises(ModelError, match="is not a valid version id"):
            action("toy", version)
    assert store.current_version("toy") == "v1" and versions.history("toy") == []
    assert _files(toy.parent) == before


@pytest.mark.parametrize("name", ["../x", "a/b", "toy\x00", "", "n" * 200])
def test_store_refuses_hostile_model_names(workspace, name):
    with pytest.raises(ModelError, match="is not a valid model name"):
        store.publish_version(name, _model(0), MANIFEST)
    with pytest.raises(ModelError, match="is not a valid model name"):
        versions.history(name)
    assert not workspace.exists() or _files(workspace) in ([], ["models"])


def test_a_pointer_naming_a_hostile_version_falls_back(toy):
    (toy / "models" / "toy" / "current.json").write_text('{"version": "../../x"}')
    assert store.current_version("toy") == "v1"


def test_odd_folders_are_never_models_or_versions(toy):
    (toy / "models" / "bad name" / "versions" / "v1").mkdir(parents=True)
    (toy / "models" / "bad name" / "versions" / "v1" / store.MANIFEST_FILE).write_text("{}")
    (toy / "models" / "toy" / "versions" / "v 2").mkdir()
    (toy / "models" / "toy" / "versions" / "v 2" / store.MANIFEST_FILE).write_text("{}")
    assert "bad name" not in store.model_names()
    assert store.all_version_ids("toy") == ["v1"]


@pytest.mark.parametrize("action", ["promote", "rollback", "discard"])
@pytest.mark.parametrize("version", ["../x", "a/b", "v" * 500])
def test_cli_refuses_with_exit_2_and_one_error_line(toy, capsys, action, version):
    assert cli.main(["models", action, "toy", version]) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert captured.out == "" and len(lines) == 1 and lines[0].startswith("error: ")
    assert "is not a valid version id" in lines[0] and "Traceback" not in captured.err


@pytest.mark.slow
def test_a_real_process_refuses_a_hostile_version_with_one_error_line(toy):
    import os
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    run = subprocess.run([str(repo / ".venv" / "bin" / "workbench"), "models", "promote", "toy", "../x"],
                         capture_output=True, text=True, env=dict(os.environ, WORKBENCH_HOME=str(toy)),
                         cwd=toy.parent, timeout=300)
    noise = ("WARNING: All log messages before absl", "I0000", "W0000", "E0000", "To enable the following")
    lines = [line for line in run.stderr.splitlines() if line.strip() and not line.startswith(noise)]
    assert run.returncode == 2 and run.stdout == "" and "Traceback" not in run.stderr
    assert len(lines) == 1 and lines[0].startswith("error: '../x' is not a valid version id")


@pytest.mark.parametrize("name, version", [("../x", "v1"), ("toy", "../v1"), ("a/b", "v1")])
def test_trust_figures_path_refuses_hostile_ids(name, version):
    from workbench import model_trust

    with pytest.raises(ModelError):
        model_trust.trust_path(name, version)
