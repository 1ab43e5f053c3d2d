"""Version registry: atomic publish, pointer, sha256 verification, hidden staging folders."""
from pathlib import Path

import numpy as np
import pytest

from foundation.errors import ModelError
from models import store
from tests.models.toy import MANIFEST
from tests.models.toy import toy_model as _model


def test_publish_load_and_point(workspace):
    first = store.publish_version("toy", _model(0), MANIFEST)
    second = store.publish_version("toy", _model(1), dict(MANIFEST, parent=first.version))
    assert (first.version, second.version) == ("v1", "v2")
    assert store.all_version_ids("toy") == ["v1", "v2"]
    assert store.current_version("toy") == "v1"  # a new version is a candidate until promoted
    store.set_current("toy", "v1")
    assert store.current_version("toy") == "v1"
    loaded = store.load("toy")
    assert loaded.version == "v1" and loaded.classes == ["a", "b"]
    x = np.ones((1, 4, 4, 3), dtype="float32")
    np.testing.assert_allclose(loaded.keras_model(x), _model(0)(x), rtol=1e-5)
    assert store.read_manifest("toy", "v2")["parent"] == "v1"


def test_tampered_file_is_refused(workspace):
    info = store.publish_version("toy", _model(), MANIFEST)
    with open(info.path / store.MODEL_FILE, "ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(ModelError, match="sha256"):
        store.load("toy", info.version)


def test_unfinished_staging_folder_is_never_a_version(workspace):
    store.publish_version("toy", _model(), MANIFEST)
    staging = workspace / "models" / "toy" / "versions" / ".staging-crashed"
    staging.mkdir()
    (staging / store.MANIFEST_FILE).write_text("{}")
    assert store.all_version_ids("toy") == ["v1"]


def test_damaged_pointer_falls_back_to_an_intact_version(workspace):
    store.publish_version("toy", _model(), MANIFEST)
    (workspace / "models" / "toy" / "current.json").write_text("{not json")
    assert store.current_version("toy") == "v1"


def test_unknown_version_and_model_are_clear_errors(workspace):
    store.publish_version("toy", _model(), MANIFEST)
    with pytest.raises(ModelError, match="no version 'v9'"):
        store.set_current("toy", "v9")
    with pytest.raises(ModelError, match="no model named"):
        store.current_version("nothing-here")


def test_a_discarded_version_id_is_never_reused(workspace):
    import shutil

    store.publish_version("toy", _model(), MANIFEST)
    second = store.publish_version("toy", _model(), MANIFEST)
    shutil.rmtree(second.path)
    assert store.publish_version("toy", _model(), MANIFEST).version == "v3"


def test_typed_reader_and_the_written_manifest_agree(workspace):
    info = store.publish_version("toy", _model(), dict(MANIFEST, parent=None))
    typed = store.manifest("toy", info.version)
    assert typed == info.info and typed.to_dict() == store.read_manifest("toy", info.version)
    assert typed.input.height == 4 and typed.lineage.sha256 == store.read_manifest("toy", "v1")["sha256"]
    assert store.load("toy").info.classes == ("a", "b")


@pytest.mark.parametrize("text, says", [
    ("{not json", "not valid JSON"),
    ('{"modality": "image", "classes": ["a", "b"], "input": {"height": "4"}}', "input.height should be a whole number"),
])
def test_a_damaged_manifest_is_one_model_error(workspace, text, says):
    info = store.publish_version("toy", _model(), MANIFEST)
    (info.path / store.MANIFEST_FILE).write_text(text)
    for read in (lambda: store.manifest("toy", "v1"), lambda: store.load("toy", "v1")):
        with pytest.raises(ModelError, match=f"the manifest of model 'toy' v1 is damaged: .*{says}"):
            read()


def test_publish_makes_the_staging_folder_and_the_log_durable_before_they_count(workspace, monkeypatch):
    """Spies on the fsync syscalls only: which folders and files were flushed, in what state."""
    import os

    synced_dirs, synced_files = [], []
    real_fsync_dir, real_fsync = store.fsync_dir, os.fsync

    def spy_fsync_dir(path):
        synced_dirs.append((Path(path).name, sorted(p.name for p in Path(path).iterdir())))
        real_fsync_dir(path)

    def spy_fsync(fd):
        synced_files.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(store, "fsync_dir", spy_fsync_dir)
    monkeypatch.setattr(os, "fsync", spy_fsync)
    info = store.publish_version("toy", _model(), MANIFEST)
    staging = [entry for entry in synced_dirs if entry[0].startswith(".staging-")]
    # The staging folder is flushed complete, while it is still hidden (before the rename).
    assert staging and staging[0][1] == [store.MANIFEST_FILE, store.MODEL_FILE]
    names = [name for name, _ in synced_dirs]
    assert names.index(staging[0][0]) < names.index("versions") < names.index("toy")
    assert dict(synced_dirs)["versions"] == ["v1"]
    assert "published.jsonl" in dict(synced_dirs)["toy"]  # the log's own name is durable
    assert str(info.path.parent.parent / "published.jsonl") in synced_files


def test_the_promotion_log_is_fsynced_with_its_folder(workspace, monkeypatch):
    from models import versions

    store.publish_version("toy", _model(), MANIFEST)
    store.publish_version("toy", _model(1), dict(MANIFEST, created_as="candidate"))
    synced = []
    real = store.fsync_dir
    monkeypatch.setattr(store, "fsync_dir", lambda path: (synced.append(Path(path)), real(path)))
    versions.promote("toy", "v2")
    assert workspace / "models" / "toy" in synced
