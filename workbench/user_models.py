"""Registering a user's own `.keras` model as a workbench model (version v1 of a new name).

The file is copied into the workspace first and everything after that reads the copy, so
what was checked is exactly what is stored. The copy is loaded with the safe loader
(`.keras` only, safe mode, no Lambda layers or unknown custom objects), inspected
(`models.inspect`), and published by a single rename of a complete folder
`models/<name>/versions/v1/` (model.keras + manifest.json). A registered model then
behaves like a sample model: explanations, review, retraining, versions.

Models come from the folder an administrator configures (`WORKBENCH_MODELS_DIR`, see
`scan_models_dir`), from a path given to `workbench models add`, or from an upload in the
app when `WORKBENCH_ALLOW_MODEL_UPLOAD` allows it (`register_uploaded_model`).

Registering (and linking a dataset) needs the maintainer role (foundation/access.py; `actor`
defaults to the local operator). Each is appended to `models/<name>/registrations.jsonl` in the
workspace with who did it (`actor`: subject, e-mail, name, role).
"""
from __future__ import annotations

import os
import platform
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from foundation import access, config
from foundation.access import Identity
from foundation.errors import ModelError, WorkbenchError
from models import store
from models.inspect import InferredSpec, check_name, inspect_model, missing_sentence, suggest_name
from models.manifest import InputSpec, Lineage, Manifest, Metrics, Source
from models.model_io import MINUS_ONE_ONE, PRESETS
from models.safe_load import MAX_MODEL_BYTES, inspect_keras_archive, load_keras_model, sha256_file
from workbench import first_page

CREATED_BY = "models add"
# When nothing in a model tells its preprocessing (no Rescaling layer, no known applications
# base), registration without a person to ask assumes the Keras tutorials' convention: pixels
# divided by 255 outside the model. The manifest and the model card say it was assumed.
ASSUMED_PRESET = "0-1"
ASSUMED_SOURCE = "assumed (nothing in the model tells): pixels divided by 255, as Keras tutorials do"
ASSUMED_NOTE = ("The model does not say how it expects its pixels, so 0-1 was assumed; if its predictions look wrong, "
                "register it again with the right preprocessing.")
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


def _models_root() -> Path:
    return config.workspace_subdir("models")


def registered_sha256() -> dict[str, str]:
    """sha256 of every model file already known (any version, zoo included) -> model name."""
    known: dict[str, str] = {}
    for name in store.model_names():
        for version in store.all_version_ids(name):
            try:
                lineage = store.manifest(name, version).lineage
            except (OSError, ValueError, ModelError):
                continue  # a damaged version is not a match; the store reports it where it is used
            for digest in (lineage.sha256, lineage.source.sha256 if lineage.source else None):
                if digest:
                    known.setdefault(digest, name)
    return known


def inspect_file(
    path: Path | str, *, classes: Sequence[str] | Path | str | None = None, overrides: Mapping[str, Any] | None = None
) -> InferredSpec:
    """Load a model file safely and infer what it needs (nothing is written)."""
    path = Path(path)
    return inspect_model(load_keras_model(path), path, classes=classes, overrides=overrides)


def register_model(path: Path | str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """`register`, returning the manifest as the JSON written to disk (for callers that print or show it)."""
    return register(path, *args, **kwargs).to_dict()


def register(
    path: Path | str,
    classes: Sequence[str] | Path | str | None = None,
    overrides: Mapping[str, Any] | None = None,
    name: str | None = None,
    *,
    dataset: str | None = None,
    created_by: str = CREATED_BY,
    source_label: str | None = None,
    assume_preprocessing: bool = True,
    actor: Identity | None = None,
) -> Manifest:
    """Register a `.keras` file as version v1 of a new model and return its manifest.

    `classes` is a list of names or a JSON file; without it `<stem>.classes.json` or
    `classes.json` beside the file is used. `overrides` answers what could not be inferred
    (`models.inspect.inspect_model`: preprocessing, height, width, gradcam_layer, vocabulary ...). `dataset` names an
    imported dataset with the same classes. An image model whose preprocessing nothing tells
    gets 0-1, recorded as assumed (`assume_preprocessing=False` refuses instead, asking for it).
    Raises ModelError (one sentence) on refusal, AccessDenied unless `actor` is a maintainer.
    """
    who = access.acting(actor, access.REGISTER_MODEL)
    path = Path(path)
    inspect_keras_archive(path)  # cheap refusals (.h5, size, not a zip, Lambda, custom) before copying
    overrides = dict(overrides or {})
    staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=_models_root()))
    try:
        copy = staging / store.MODEL_FILE
        _copy_bounded(path, copy)
        digest = sha256_file(copy)
        known = registered_sha256().get(digest)
        if known:
            raise ModelError(f"{path.name} is already registered as model {known!r}; use that model.")
        keras_model = load_keras_model(copy)
        spec = inspect_model(keras_model, path, classes=classes, overrides=overrides)
        if "preprocessing" in spec.missing and assume_preprocessing:
            spec = _assumed_preprocessing(keras_model, path, classes, overrides)
        if spec.missing:
            raise ModelError(
                f"{path.name}: could not work out {missing_sentence(spec.missing)}; {_how_to_answer(spec.missing)}"
            )
        name = _free_name(check_name(name or suggest_name(path)))
        manifest = _manifest(name, spec, digest, source_label or str(path), created_by)
        if dataset:
            from models.loaded import LoadedModel

            loaded = LoadedModel(name=name, version=store.ZOO_VERSION, manifest=manifest.to_dict(),
                                 keras_model=keras_model)
            manifest = replace(manifest, dataset=dataset, metrics=_check_dataset_and_measure(loaded, dataset))
            # What the Explain image page shows first, published with the model (workbench/first_page.py).
            first_page.store_with_model(replace(loaded, manifest=manifest.to_dict()), staging)
        store.write_manifest(staging, manifest)
        _publish(staging, name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _log(name, "register", created_by, who, sha256=digest, source=manifest.lineage.source.path
         if manifest.lineage.source else None)
    return manifest


REGISTRATIONS_FILE = "registrations.jsonl"


def _log(name: str, action: str, created_by: str, who: Identity, **details: Any) -> None:
    store.append_durably(_models_root() / name / REGISTRATIONS_FILE,
                         {"action": action, "model": name, "at": store.now_iso(), "by": created_by,
                          "actor": who.record(), **details})


def registrations(name: str) -> list[dict[str, Any]]:
    """Who registered `name` and linked its dataset, oldest first (empty for sample models)."""
    return store.read_json_lines(_models_root() / store.check_model_name(name) / REGISTRATIONS_FILE)


def _assumed_preprocessing(keras_model: Any, path: Path, classes: Any, overrides: Mapping[str, Any]) -> InferredSpec:
    spec = inspect_model(keras_model, path, classes=classes, overrides={**overrides, "preprocessing": ASSUMED_PRESET})
    return replace(spec, sources={**spec.sources, "preprocessing": ASSUMED_SOURCE}, notes=(*spec.notes, ASSUMED_NOTE))


def register_uploaded_model(data: bytes, filename: str, **kwargs: Any) -> dict[str, Any]:
    """Register model bytes uploaded in the app (only when the configuration allows uploads)."""
    if not config.model_upload_allowed():
        raise ModelError(
            "uploading models is turned off; an administrator can set WORKBENCH_ALLOW_MODEL_UPLOAD=1, "
            "or put the file in the WORKBENCH_MODELS_DIR folder."
        )
    with uploaded_file(data, filename) as path:
        kwargs.setdefault("source_label", f"upload: {Path(filename).name}")
        return register_model(path, **kwargs)


class uploaded_file:
    """A context manager holding uploaded model bytes as a file in the workspace (removed after)."""

    def __init__(self, data: bytes, filename: str) -> None:
        if len(data) > MAX_MODEL_BYTES:
            raise ModelError(f"{Path(filename).name} is larger than {MAX_MODEL_BYTES // 2**20} MB; use a smaller model.")
        self.data, self.filename = bytes(data), Path(filename).name
        self.folder: Path | None = None

    def __enter__(self) -> Path:
        self.folder = Path(tempfile.mkdtemp(prefix=".upload-", dir=_models_root()))
        # Keep the uploaded suffix so .h5 uploads are refused by name with the right advice.
        suffix = Path(self.filename).suffix.lower() or ".bin"
        path = self.folder / f"{suggest_name(self.filename)}{suffix}"
        path.write_bytes(self.data)
        return path

    def __exit__(self, *exc: Any) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def _how_to_answer(missing: Sequence[str]) -> str:
    hints = {
        "classes": "pass --classes FILE (a JSON list of names) or put <name>.classes.json beside the model",
        "preprocessing": "pass --preprocessing " + "|".join(p if p != MINUS_ONE_ONE else "tf" for p in PRESETS)
                         + " (tf is -1..1; custom also takes --mean and --std)",
        "input_size": "pass --height and --width",
        "vocabulary": "pass --vocabulary FILE (a JSON list or one token per line, index = token id)",
    }
    return "; ".join(hints[item] for item in missing if item in hints) + "."


def _copy_bounded(source: Path, target: Path) -> None:
    with open(source, "rb") as reader, open(target, "xb") as writer:
        copied = 0
        while chunk := reader.read(1 << 20):
            copied += len(chunk)
            if copied > MAX_MODEL_BYTES:
                raise ModelError(f"{source.name} is larger than {MAX_MODEL_BYTES // 2**20} MB; use a smaller model.")
            writer.write(chunk)
        writer.flush()
        os.fsync(writer.fileno())


def _free_name(name: str) -> str:
    if name in store.model_names() or (_models_root() / name / "versions" / "v1").exists():
        raise ModelError(f"a model named {name!r} already exists; choose another name (--name NAME).")
    return name


def _manifest(name: str, spec: InferredSpec, digest: str, source: str, created_by: str) -> Manifest:
    import keras
    import tensorflow as tf

    return Manifest(
        name=name,
        version=store.ZOO_VERSION,
        modality=spec.modality,
        classes=tuple(spec.classes or ()),
        input=InputSpec.from_dict(spec.input),
        gradcam_layer=spec.gradcam_layer or None,
        output={"kind": spec.output_kind},
        dataset=None,
        file=store.MODEL_FILE,
        lineage=Lineage(parent=None, sha256=digest, source=Source(path=source, sha256=digest), labels_changed=0),
        inferred=dict(spec.sources),
        notes=tuple(spec.notes),
        intended_use=f"A model registered by a user from {Path(source).name}.",
        metrics=Metrics(),
        created_at=store.now_iso(),
        created_by=created_by,
        software={"keras": keras.__version__, "tensorflow": tf.__version__, "python": platform.python_version()},
    )


def _check_dataset_and_measure(loaded: Any, dataset: str) -> Metrics:
    """The dataset must match the model's (a models.loaded.LoadedModel) modality and classes; measure test
    accuracy on it."""
    from models.metrics import classification_metrics
    from workbench import datasets

    try:
        test = datasets.load(dataset, "test")
    except WorkbenchError as exc:
        raise ModelError(str(exc)) from None
    manifest = loaded.info
    if test.modality is not manifest.modality:
        raise ModelError(f"dataset {dataset!r} holds {test.modality.value}s but the model is a {manifest.modality.value} model.")
    if tuple(test.classes) != manifest.classes:
        raise ModelError(
            f"dataset {dataset!r} has classes {', '.join(test.classes)} but the model has "
            f"{', '.join(manifest.classes)}; import the data for this model so the classes match."
        )
    probabilities = loaded.predict_proba(list(test.x))
    return Metrics.from_dict({"test": classification_metrics(test.y, probabilities.argmax(axis=1), test.classes)})


def _publish(staging: Path, name: str) -> None:
    versions = _models_root() / name / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    target = versions / store.ZOO_VERSION
    try:
        os.rename(staging, target)  # atomic; fails when another registration took the name first
    except OSError:
        raise ModelError(f"a model named {name!r} already exists; choose another name (--name NAME).") from None
    fd = os.open(versions, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def link_dataset(name: str, dataset: str, *, actor: Identity | None = None) -> dict[str, Any]:
    """Attach an imported dataset to a registered model that has none yet (its v1).

    A manifest is written once and never rewritten: the link (dataset name and the test
    metrics measured on it) goes into its own file beside the versions (`store.write_dataset_link`),
    and the manifest readers show it. The model file and manifest.json stay byte for byte as
    they were. Sample models and models that already name a dataset are refused, and so is an
    `actor` without the maintainer role.
    """
    who = access.acting(actor, access.REGISTER_MODEL)
    manifest = store.manifest(name, store.ZOO_VERSION)
    if manifest.created_by == "workbench train" or (config.ZOO_DIR / name).is_dir():
        raise ModelError(f"{name!r} is a sample model; its dataset cannot be changed.")
    if manifest.dataset:
        raise ModelError(f"model {name!r} already uses dataset {manifest.dataset!r}; register the model again to change it.")
    model = store.load(name, store.ZOO_VERSION)
    metrics = _check_dataset_and_measure(model, dataset)
    store.write_dataset_link(name, store.ZOO_VERSION, dataset, metrics)
    _log(name, "link_dataset", "link", who, dataset=dataset)
    linked = store.manifest(name, store.ZOO_VERSION)
    # The dataset gives the page its first image (workbench/first_page.py): the model already loaded, now linked.
    first_page.store_with_model(replace(model, manifest=linked.to_dict()), store.version_path(name, store.ZOO_VERSION))
    return linked.to_dict()


# --------------------------------------------------------------- the models folder


@dataclass(frozen=True)
class ScanResult:
    path: Path
    status: str  # "registered", "already registered", "refused"
    model: str | None
    message: str


def models_dir_files() -> list[Path]:
    """Model-like files in WORKBENCH_MODELS_DIR (not recursive); [] when it is not configured."""
    folder = config.user_models_dir()
    if folder is None or not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES)


def file_status(path: Path) -> tuple[str | None, str]:
    """(registered model name or None, sha256) of a file."""
    digest = sha256_file(path)
    return registered_sha256().get(digest), digest


def scan_models_dir(*, actor: Identity | None = None) -> list[ScanResult]:
    """Register every model in WORKBENCH_MODELS_DIR not registered yet (same sha256 = same model).

    Idempotent: a second scan registers nothing. A name already taken by another model
    gets a numeric suffix (a folder has no one to ask). Refusals are reported, not raised.
    """
    actor = access.acting(actor, access.REGISTER_MODEL)  # refused once, not once per file
    if config.user_models_dir() is None:
        raise ModelError("WORKBENCH_MODELS_DIR is not set; an administrator sets it to a folder of .keras models.")
    results = []
    for path in models_dir_files():
        try:
            known, _ = file_status(path)
            if known:
                results.append(ScanResult(path, "already registered", known, f"already registered as {known!r}"))
                continue
            name = register(path, name=_unused_name(suggest_name(path)), created_by="models scan", actor=actor).name
            results.append(ScanResult(path, "registered", name, f"registered as {name!r}"))
        except WorkbenchError as exc:
            results.append(ScanResult(path, "refused", None, str(exc)))
        except OSError as exc:
            results.append(ScanResult(path, "refused", None, f"{path.name} could not be read ({exc.strerror or exc})."))
    return results


def _unused_name(base: str) -> str:
    taken = set(store.model_names())
    if base not in taken:
        return base
    for number in range(2, 1000):
        candidate = f"{base[:44]}-{number}"
        if candidate not in taken:
            return candidate
    raise ModelError(f"too many models are named like {base!r}; rename the file.")
