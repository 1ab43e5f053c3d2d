"""The model version registry.

Shipped sample models live read-only in `models/zoo/<name>/` and are version `v1`.
New versions live in the workspace: `models/<name>/versions/<version>/` (immutable once
written: model.keras + manifest.json) and `models/<name>/current.json` points at the one in use.
Writes are atomic: a version folder appears by a single rename, the pointer by `os.replace`.
Manifests are read through `manifest(name, version)` as a typed `models.manifest.Manifest`;
`read_manifest` returns the file's raw JSON, only for inspecting or exporting it.

A manifest is written once and never rewritten (its model file's sha256 is in it). A dataset
linked to a registered model later is stored beside the versions, in
`models/<name>/dataset-links/<version>.json` (also written once), and every manifest reader
here (`manifest`, `load`, `read_manifest`) shows it as the version's dataset and metrics.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from foundation import config
from foundation.atomic import fsync_dir, write_json_atomic
from foundation.errors import ModelError
from foundation.ids import check_path_id, is_path_id
from models.manifest import Manifest, Metrics, as_manifest
from models.safe_load import load_keras_model, sha256_file

MODEL_FILE = "model.keras"
MANIFEST_FILE = "manifest.json"
ZOO_VERSION = "v1"


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: str
    path: Path
    info: Manifest
    is_current: bool


def check_version_id(version: str) -> str:
    """`version` if it can safely name a version folder; otherwise one ModelError sentence."""
    return check_path_id(version, "version id (such as v2)", ModelError)


def check_model_name(name: str) -> str:
    """`name` if it can safely name a model folder; otherwise one ModelError sentence."""
    return check_path_id(name, "model name", ModelError)


def _zoo_dir(name: str) -> Path:
    return config.ZOO_DIR / check_model_name(name)


def _workspace_model_dir(name: str) -> Path:
    return config.workspace_subdir("models") / check_model_name(name)


def _versions_dir(name: str) -> Path:
    return _workspace_model_dir(name) / "versions"


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def model_names() -> list[str]:
    names = set()
    if config.ZOO_DIR.is_dir():
        names.update(p.name for p in config.ZOO_DIR.iterdir() if (p / MANIFEST_FILE).is_file())
    models_root = config.workspace_dir() / "models"
    if models_root.is_dir():
        # Hidden folders (registrations, uploads in progress) and odd names are never models.
        names.update(p.name for p in models_root.iterdir()
                     if is_path_id(p.name) and (p / "versions").is_dir() and any(_iter_version_dirs(p.name)))
    return sorted(names)


def _iter_version_dirs(name: str):
    root = _versions_dir(name)
    if not root.is_dir():
        return
    for path in root.iterdir():
        # Hidden folders are versions still being written (and odd names never were
        # versions): never visible as a version.
        if path.is_dir() and is_path_id(path.name) and (path / MANIFEST_FILE).is_file():
            yield path


def _version_sort_key(version: str) -> tuple[int, str]:
    digits = version[1:] if version.startswith("v") else ""
    return (int(digits), version) if digits.isdigit() else (10**9, version)


def version_path(name: str, version: str) -> Path:
    check_version_id(version)
    if version == ZOO_VERSION and (_zoo_dir(name) / MANIFEST_FILE).is_file():
        return _zoo_dir(name)
    path = _versions_dir(name) / version
    if not (path / MANIFEST_FILE).is_file():
        raise ModelError(f"model {name!r} has no version {version!r}; run `workbench models list` to see them.")
    return path


def current_version(name: str) -> str:
    pointer = _workspace_model_dir(name) / "current.json"
    if pointer.is_file():
        try:
            version = read_json(pointer)["version"]
            version_path(name, version)
            return version
        except (ValueError, KeyError, ModelError):
            pass  # a damaged pointer falls back to the newest intact version below
    versions = all_version_ids(name)
    if not versions:
        raise ModelError(f"there is no model named {name!r}; run `workbench models list` to see the choices.")
    # Without a pointer the first version is in use: later ones are candidates until promoted.
    return versions[0]


def all_version_ids(name: str) -> list[str]:
    ids = [p.name for p in _iter_version_dirs(name)]
    if (_zoo_dir(name) / MANIFEST_FILE).is_file():
        ids.append(ZOO_VERSION)
    return sorted(set(ids), key=_version_sort_key)


def read_manifest(name: str, version: str | None = None) -> dict[str, Any]:
    """The manifest.json of a version as on disk (unchecked), with a later dataset link shown in
    it, for inspecting or exporting; code that uses a manifest's values reads the typed `manifest`."""
    version = version or current_version(name)
    data = read_json(version_path(name, version) / MANIFEST_FILE)
    link = dataset_link(name, version)
    if link is not None and isinstance(data, dict) and not data.get("dataset"):
        data = dict(data, dataset=link["dataset"], metrics=link["metrics"])
    return data


def manifest(name: str, version: str | None = None) -> Manifest:
    """The typed manifest of a version (default: current); a damaged one raises ModelError."""
    version = version or current_version(name)
    info = read_manifest_file(version_path(name, version) / MANIFEST_FILE, name, version)
    return _with_dataset_link(info, name, version)


def read_manifest_file(path: Path, name: str, version: str) -> Manifest:
    where = f"the manifest of model {name!r} {version}"
    try:
        data = read_json(path)
    except (ValueError, UnicodeDecodeError):
        raise ModelError(f"{where} is damaged: it is not valid JSON; restore the file or register the model again.") from None
    return Manifest.from_dict(data, where)


def list_versions(name: str) -> list[VersionInfo]:
    current = current_version(name)
    return [VersionInfo(name, v, version_path(name, v), manifest(name, v), v == current) for v in all_version_ids(name)]


def set_current(name: str, version: str) -> None:
    version_path(name, version)  # refuses unknown versions
    write_json_atomic(
        _workspace_model_dir(name) / "current.json",
        {"version": version, "set_at": datetime.now(timezone.utc).isoformat()},
    )


def load(name: str, version: str | None = None):
    """Load a version (default: current), verifying its sha256 and loading in safe mode."""
    from models.loaded import LoadedModel

    version = version or current_version(name)
    folder = version_path(name, version)
    info = _with_dataset_link(read_manifest_file(folder / MANIFEST_FILE, name, version), name, version)
    model_file = folder / (info.file or MODEL_FILE)
    if not model_file.is_file():
        raise ModelError(f"model {name} {version} is missing its file {model_file.name}; restore it or roll back.")
    digest = sha256_file(model_file)
    if info.lineage.sha256 and digest != info.lineage.sha256:
        raise ModelError(
            f"model {name} {version} does not match its recorded sha256 (the file changed); restore it or roll back."
        )
    return LoadedModel(name=name, version=version, manifest=info.to_dict(), keras_model=load_keras_model(model_file))


def save_model_folder(keras_model: Any, manifest: Manifest, folder: Path) -> Manifest:
    """Write model.keras + manifest.json (with the file's sha256) into an existing folder."""
    model_file = folder / MODEL_FILE
    # Optimizer state would double the file and is not needed: fine-tuning starts a fresh one.
    keras_model.optimizer = None
    keras_model.save(str(model_file))
    with open(model_file, "rb+") as handle:
        os.fsync(handle.fileno())
    written = replace(manifest, file=MODEL_FILE, lineage=replace(manifest.lineage, sha256=sha256_file(model_file)))
    write_manifest(folder, written)
    return written


def write_manifest(folder: Path, manifest: Manifest) -> None:
    """manifest.json in `folder`, written atomically in today's format (`Manifest.to_dict`)."""
    write_json_atomic(folder / MANIFEST_FILE, manifest.to_dict())


def _dataset_link_path(name: str, version: str) -> Path:
    return _workspace_model_dir(name) / "dataset-links" / f"{check_version_id(version)}.json"


def dataset_link(name: str, version: str) -> dict[str, Any] | None:
    """{"dataset", "metrics", "linked_at"} linked to a version after it was written, or None."""
    path = _dataset_link_path(name, version)
    if not path.is_file():
        return None
    where = f"the dataset link of model {name!r} {version}"
    try:
        data = read_json(path)
    except (ValueError, UnicodeDecodeError):
        raise ModelError(f"{where} is damaged: it is not valid JSON; delete {path.name} and link the dataset again.") from None
    if not isinstance(data, dict) or not isinstance(data.get("dataset"), str):
        raise ModelError(f"{where} is damaged: it names no dataset; delete {path.name} and link the dataset again.")
    check_path_id(data["dataset"], "dataset name", ModelError)
    Metrics.from_dict(data.get("metrics") or {}, where)  # checked here, so readers fail in one place
    return {"dataset": data["dataset"], "metrics": data.get("metrics") or {}, "linked_at": data.get("linked_at")}


def _with_dataset_link(info: Manifest, name: str, version: str) -> Manifest:
    """The manifest as the workbench sees it: a dataset linked later fills a manifest that has none."""
    if info.dataset:
        return info  # what was written with the version wins
    link = dataset_link(name, version)
    if link is None:
        return info
    return replace(info, dataset=link["dataset"], metrics=Metrics.from_dict(link["metrics"]))


def write_dataset_link(name: str, version: str, dataset: str, metrics: Metrics) -> None:
    """Record once that `version` of `name` uses `dataset` (measured: `metrics`); its manifest is untouched.

    The file appears complete by one hard link of a fsynced temp file, which fails if a link
    already exists: a second link (even a concurrent one) is refused, never overwrites the first.
    """
    version_path(name, version)  # refuses unknown versions
    check_path_id(dataset, "dataset name", ModelError)
    target = _dataset_link_path(name, version)
    target.parent.mkdir(parents=True, exist_ok=True)
    record = {"version": version, "dataset": dataset, "metrics": metrics.to_dict(), "linked_at": now_iso()}
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".link-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, target)
        except FileExistsError:
            raise ModelError(f"model {name!r} {version} already has a linked dataset; register the model again "
                             "to change it.") from None
        fsync_dir(target.parent)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _published_log(name: str) -> Path:
    return _workspace_model_dir(name) / "published.jsonl"


def _logged_version_ids(name: str) -> list[str]:
    path = _published_log(name)
    if not path.is_file():
        return []
    ids = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            ids.append(json.loads(line)["version"])
        except (ValueError, KeyError, TypeError):
            continue  # a torn last line from a crash; the folders still count below
    return ids


def next_version_id(name: str) -> str:
    """Never reuses an id, even of a discarded version: caches are keyed by (name, version)."""
    numbers = [_version_sort_key(v)[0] for v in all_version_ids(name) + _logged_version_ids(name)]
    numbers = [n for n in numbers if n < 10**9]
    return f"v{max(numbers, default=0) + 1}"


def publish_version(name: str, keras_model: Any, manifest: Manifest | Mapping[str, Any]) -> VersionInfo:
    """Write a new immutable version. It becomes visible only once complete (one rename).

    `manifest` may also be a JSON-shaped dict (tests publish hand-written ones, e.g.
    tests/explainers/test_escaping.py); it is checked by `Manifest.from_dict` first.
    """
    manifest = as_manifest(manifest, f"the manifest for a new version of model {name!r}")
    root = _versions_dir(name)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".staging-"))
    try:
        while True:
            version = next_version_id(name)
            full = save_model_folder(keras_model, replace(manifest, name=name, version=version), staging)
            fsync_dir(staging)  # its files' names are durable before the folder can count as a version
            target = root / version
            try:
                os.rename(staging, target)  # atomic; fails if another writer took this id
                break
            except OSError:
                if not target.exists():
                    raise
        fsync_dir(root)
        append_durably(_published_log(name), {"version": version, "at": now_iso()})
    except BaseException:
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
        raise
    return VersionInfo(name, version, target, full, False)


def append_durably(path: Path, record: Mapping[str, Any]) -> None:
    """Append one JSON line and fsync the file and its folder: once this returns, it counts."""
    with open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps(record, sort_keys=True) + "\n")
        log.flush()
        os.fsync(log.fileno())
    fsync_dir(path.parent)  # the file may have just been created: its name must survive too


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    """The records `append_durably` wrote to `path`, oldest first (none when it does not exist).

    A line cut short by a crash mid-append carries no record and is skipped."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
