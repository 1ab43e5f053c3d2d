"""The default page's first map, computed by a separate process while the server starts.

A fresh server needs about 5 s of TensorFlow import before it can compute anything, and on two
cores that import, Streamlit's own start and the page's imports all queue behind one interpreter
lock: the first Grad-CAM came 9-11 s after the server's start, 6-8 s after the page appeared.
A second process does not share that lock. `start_worker()` (called by ui/serve.py before
Streamlit starts) runs `python -m workbench.first_page --model NAME`, which imports TensorFlow,
loads the default model and computes exactly what the Explain image page first shows: the
prediction of the default sample (the test split's example 0), its Grad-CAM for the predicted
class and that map's trust figures, with the same calls and settings as the page. It writes them
to the workspace and exits. The page draws them while the server itself is still starting
(ui/first_page_view.py), then replaces them with the live page once its own model is loaded.

The result is keyed by the model version's recorded sha256, so a retrained or replaced model never
shows another model's map; it is reused by later server starts. Nothing here imports TensorFlow
at module level: the server imports this module before Streamlit starts.

A model version can also carry its first page in its own folder (`first_page.json` + `.npz` beside
`model.keras`), written by the process that created it while TensorFlow was loaded anyway:
`workbench train` does so for the sample models, so they ship with theirs and even a first start
needs no worker (`store_with_model`). The same checks apply to it; `WORKBENCH_SHIPPED_FIRST_MAPS=off`
ignores those files (to measure or test a model that carries none).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from foundation import config
from foundation.errors import WorkbenchError
from foundation.types import Modality
from models import store

FORMAT = 1  # bump when what is stored, or how the page computes it, changes
METHOD = "gradcam"
SPLIT = "test"  # the Explain image page's first sample: this split's example 0
INDEX = 0
MAX_FILE_BYTES = 32 * 1024 * 1024  # our own small files; anything larger is not one of them
WORKER_TIMEOUT_S = 90.0  # a worker still running by then is ignored (and stopped)
# The worker yields the cores to the server's own start (Streamlit, the page's first paint) and to the
# browser: at the same priority the first paint came at 4.3-4.7 s (3.0-3.2 s without a worker, measured
# in an earlier session); niced, 4.3-4.9 s against 3.4-4.1 s without it in the same session.
WORKER_NICENESS = 19
FILE_MODE = 0o644  # as the model's own files: readable by a server running as another user
SHIPPED_STEM = "first_page"  # <version folder>/first_page.json + first_page.npz, written with the model
SHIPPED_ENV = "WORKBENCH_SHIPPED_FIRST_MAPS"  # "off": ignore them (as for a model that carries none)


@dataclass(frozen=True)
class FirstPage:
    """What the Explain image page shows first for one model version, as the page computed it."""

    name: str
    version: str
    sha256: str  # the model file's recorded digest: a different file is a different key
    dataset: str
    split_size: int  # examples in the split the sample comes from (the page's example picker shows the range)
    example_id: str
    true_label: str
    classes: tuple[str, ...]
    pixels: np.ndarray  # the sample as the dataset holds it (uint8 RGB)
    probabilities: np.ndarray  # the Keras model's class probabilities for it
    target: int  # the predicted class, which the map explains
    values: np.ndarray  # the Grad-CAM map at the model's input size, in [0, 1]
    map_seconds: float  # how long the map took in the worker
    trust_figures: dict[str, float] = field(default_factory=dict)
    trust_level: str = ""
    trust_verdict: str = ""
    sanity_outcome: str | None = None
    sanity_top_similarity: float | None = None
    worker_seconds: float = 0.0  # the worker's whole run, TensorFlow's import included
    worker_map_seconds: float = 0.0  # from the worker's start to its map stored
    stored_with_model: bool = False  # read from the model version's own folder, not computed at start-up


def folder() -> Path:
    path = config.workspace_subdir("cache") / "first_page"
    path.mkdir(exist_ok=True)
    return path


def _pair(stem: Path) -> tuple[Path, Path]:
    return stem.with_suffix(".json"), stem.with_suffix(".npz")


def _paths(name: str, version: str) -> tuple[Path, Path]:
    return _pair(folder() / store.check_model_name(name) / store.check_version_id(version))


def shipped_used() -> bool:
    return os.environ.get(SHIPPED_ENV, "on").strip().lower() != "off"


def _shipped_paths(name: str, version: str) -> tuple[Path, Path]:
    return _pair(store.version_path(name, version) / SHIPPED_STEM)


def _locations(name: str, version: str) -> list[tuple[Path, Path, bool]]:
    """Where a first page of this version may be stored, in the order read: the version's own folder
    (unless turned off), then what a start-up worker computed. The flag: stored with the model."""
    found = [(*_paths(name, version), False)]
    if shipped_used():
        try:
            found.insert(0, (*_shipped_paths(name, version), True))
        except WorkbenchError:
            pass
    return found


def recorded_sha256(name: str, version: str) -> str | None:
    """The model version's recorded digest (its manifest), or None when it has none or cannot be read."""
    try:
        return store.manifest(name, version).lineage.sha256 or None
    except WorkbenchError:
        return None


def compute(name: str, version: str | None = None, on_map: Callable[[FirstPage], Any] | None = None) -> FirstPage:
    """Load the model and compute the default sample's prediction, Grad-CAM and trust figures with the
    calls the Explain image page makes (same input preparation, default settings, seed and ground truth).
    on_map: sees the page with its map and no trust figures yet (the worker stores it at once, as the
    live page draws its map before measuring them)."""
    version = version or store.current_version(name)
    if not has_first_page(name, version):  # before TensorFlow is imported for nothing
        raise WorkbenchError(f"model {name} has no sample images to show first")
    return compute_for(store.load(name, version), on_map)


def compute_for(model: Any, on_map: Callable[[FirstPage], Any] | None = None) -> FirstPage:
    """`compute` for a loaded model (models.loaded.LoadedModel) whose manifest records its file's sha256."""
    from workbench import api, datasets

    name, version, sha256 = model.name, model.version, model.info.lineage.sha256
    if not _shows_first_page(model.info):
        raise WorkbenchError(f"model {name} has no sample images to show first")
    data = datasets.load(model.info.dataset, SPLIT)
    pixels = np.asarray(data.x[INDEX])
    model_input = api.prepare_input(model, pixels)
    probabilities = np.asarray(api.predict(model, [model_input])[0], dtype=np.float64)
    target = int(probabilities.argmax())
    result = api.explain_input(model, METHOD, model_input, target, seed=0,
                               ground_truth=api.ground_truth_of(data, INDEX))
    page = FirstPage(
        name=name, version=version, sha256=sha256, dataset=model.info.dataset, split_size=len(data),
        example_id=str(data.ids[INDEX]),
        true_label=str(data.classes[int(data.y[INDEX])]), classes=tuple(model.classes), pixels=pixels,
        probabilities=probabilities, target=target,
        values=np.asarray(result.explanation.values, dtype=np.float32), map_seconds=float(result.explanation.seconds))
    if on_map is not None:
        on_map(page)
    trust = result.trust()
    cascade = result.sanity(compute=False)  # measured with the trust figures for Grad-CAM
    return replace(page, trust_figures={key: float(value) for key, value in trust.figures.items()},
                   trust_level=trust.level, trust_verdict=trust.verdict,
                   sanity_outcome=cascade.outcome if cascade is not None else None,
                   sanity_top_similarity=float(cascade.top_similarity) if cascade is not None else None)


def save(page: FirstPage, model_folder: Path | None = None) -> Path:
    """Write the page's figures (JSON) and arrays (.npz, no pickles); the JSON goes last, by rename,
    so a reader sees a complete pair or nothing. Into the workspace's cache, or into `model_folder`
    (the version's own folder, beside its model file)."""
    if model_folder is None:
        json_path, npz_path = _paths(page.name, page.version)
    else:
        json_path, npz_path = _pair(Path(model_folder) / SHIPPED_STEM)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=npz_path.parent, suffix=".npz", delete=False) as handle:
        np.savez(handle, pixels=page.pixels, probabilities=page.probabilities, values=page.values)
    os.chmod(handle.name, FILE_MODE)
    os.replace(handle.name, npz_path)
    record = {
        "format": FORMAT, "name": page.name, "version": page.version, "sha256": page.sha256,
        "dataset": page.dataset, "split_size": page.split_size, "example_id": page.example_id,
        "true_label": page.true_label, "classes": list(page.classes),
        "target": page.target, "map_seconds": page.map_seconds, "trust_figures": page.trust_figures,
        "trust_level": page.trust_level, "trust_verdict": page.trust_verdict,
        "sanity_outcome": page.sanity_outcome, "sanity_top_similarity": page.sanity_top_similarity,
        "worker_seconds": page.worker_seconds, "worker_map_seconds": page.worker_map_seconds,
    }
    with tempfile.NamedTemporaryFile("w", dir=json_path.parent, suffix=".json", delete=False,
                                     encoding="utf-8") as handle:
        json.dump(record, handle)
    os.chmod(handle.name, FILE_MODE)
    os.replace(handle.name, json_path)
    return json_path


def store_with_model(model: Any, model_folder: Path) -> Path | None:
    """Compute the first page of a just-written model version (a LoadedModel of the files in
    `model_folder`) and store it in that folder; None (nothing written) for a model that has no
    sample images to show first (a text model, a dataset the page does not offer). Never raises:
    the page is a head start, and without it the start-up worker or the page computes the map, so
    a failure here must not fail the training, retraining or registration that called it."""
    try:
        return save(compute_for(model), model_folder)
    except WorkbenchError:
        return None
    except Exception as error:  # noqa: BLE001 - see above; said once, on the caller's console
        print(f"workbench: the first page of {model.name} {model.version} was not stored ({error})",
              file=sys.stderr, flush=True)
        return None


def store_for_version(name: str, version: str) -> Path | None:
    """`store_with_model` for a published version (after a retraining): loaded from its folder, as the
    app loads it; nothing is loaded for a version that has no first page to show. Never raises either
    (a version that does not load is reported where it is used)."""
    if not has_first_page(name, version):
        return None
    try:
        model = store.load(name, version)
    except WorkbenchError:
        return None
    return store_with_model(model, store.version_path(name, version))


def load(name: str, version: str) -> FirstPage | None:
    """The stored first page of this model version (see `_locations`), or None when there is none, it
    belongs to another file (sha256), another format, or it does not read back whole (then it is
    simply recomputed)."""
    try:
        locations = _locations(name, version)
    except WorkbenchError:
        return None
    for json_path, npz_path, with_model in locations:
        page = _read(name, version, json_path, npz_path)
        if page is not None:
            return replace(page, stored_with_model=with_model)
    return None


def _read(name: str, version: str, json_path: Path, npz_path: Path) -> FirstPage | None:
    try:
        if not json_path.is_file() or not npz_path.is_file():
            return None
        if json_path.stat().st_size > MAX_FILE_BYTES or npz_path.stat().st_size > MAX_FILE_BYTES:
            return None
        record = json.loads(json_path.read_text(encoding="utf-8"))
        if (record.get("format") != FORMAT or record.get("name") != name or record.get("version") != version
                or record.get("sha256") != recorded_sha256(name, version)):
            return None
        with np.load(npz_path, allow_pickle=False) as arrays:
            pixels, probabilities, values = (np.array(arrays[key]) for key in ("pixels", "probabilities", "values"))
        return _checked(record, pixels, probabilities, values)
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, WorkbenchError):
        return None  # a half-written or damaged pair: recomputed by the next start


def _checked(record: dict[str, Any], pixels: np.ndarray, probabilities: np.ndarray,
             values: np.ndarray) -> FirstPage | None:
    classes = tuple(str(c) for c in record["classes"])
    target = int(record["target"])
    if (pixels.dtype != np.uint8 or pixels.ndim != 3 or values.ndim != 2 or probabilities.shape != (len(classes),)
            or not 0 <= target < len(classes) or not np.isfinite(values).all()):
        return None
    figures = {str(k): float(v) for k, v in dict(record.get("trust_figures") or {}).items()}
    if not all(math.isfinite(v) for v in figures.values()):
        return None
    similarity = record.get("sanity_top_similarity")
    return FirstPage(
        name=str(record["name"]), version=str(record["version"]), sha256=str(record["sha256"]),
        dataset=str(record["dataset"]), split_size=int(record["split_size"]), example_id=str(record["example_id"]),
        true_label=str(record["true_label"]), classes=classes,
        pixels=pixels, probabilities=probabilities.astype(np.float64), target=target, values=values.astype(np.float32),
        map_seconds=float(record["map_seconds"]), trust_figures=figures, trust_level=str(record.get("trust_level", "")),
        trust_verdict=str(record.get("trust_verdict", "")),
        sanity_outcome=str(record["sanity_outcome"]) if record.get("sanity_outcome") else None,
        sanity_top_similarity=float(similarity) if similarity is not None else None,
        worker_seconds=float(record.get("worker_seconds", 0.0)),
        worker_map_seconds=float(record.get("worker_map_seconds", 0.0)))


def stamp(name: str) -> tuple[tuple[int, int], ...] | None:
    """When and how large the stored first page of the model's version in use was written (None: not
    stored): a cheap look, several times a second, for whether there is something new to draw."""
    try:
        locations = _locations(name, store.current_version(name))
    except WorkbenchError:
        return None
    found = []
    for json_path, _, _ in locations:
        try:
            seen = json_path.stat()
        except OSError:
            continue
        found.append((seen.st_mtime_ns, seen.st_size))
    return tuple(found) or None


def load_current(name: str) -> FirstPage | None:
    """The stored first page of the model's version in use (None: not computed yet, or unreadable)."""
    try:
        return load(name, store.current_version(name))
    except WorkbenchError:
        return None


def start_worker(name: str | None) -> subprocess.Popen | None:
    """Start the worker for `name` (the default image model) unless its first page is stored already
    or it has none to compute (see `has_first_page`); returns the process, or None."""
    if name is None or not has_first_page(name) or load_current(name) is not None:
        return None
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
    with open(worker_log(), "w", encoding="utf-8") as output:  # TensorFlow's chatter: a pipe nobody reads would fill
        return subprocess.Popen([sys.executable, "-m", "workbench.first_page", "--model", name], cwd=root, env=env,
                                stdout=output, stderr=subprocess.STDOUT)


def has_first_page(name: str, version: str | None = None) -> bool:
    """The model version (default: in use) is an image model with a recorded sha256 whose dataset is one
    the page offers samples from: the cheap checks, from its manifest, before a process imports TensorFlow."""
    try:
        return _shows_first_page(store.manifest(name, version or store.current_version(name)))
    except WorkbenchError:
        return False


def _shows_first_page(info: Any) -> bool:
    """An image model (models.manifest.Manifest) with a recorded sha256 and a dataset the page offers."""
    from workbench import datasets

    return info.modality is Modality.IMAGE and bool(info.lineage.sha256) and info.dataset in datasets.names()


def worker_log() -> Path:
    return folder() / "worker.log"


def wait_for_worker(worker: subprocess.Popen, timeout: float = WORKER_TIMEOUT_S,
                    until: Callable[[], bool] = lambda: False) -> bool | None:
    """Wait until the worker has exited, at most `timeout` seconds (then stop it); True when it stored
    its result. A failure is one line in the server's log and changes nothing else: the page then
    computes its map itself. None: `until()` came true first (someone needs the server's own model
    now); the worker goes on meanwhile and stores its result for later starts."""
    deadline = time.monotonic() + timeout
    while worker.poll() is None:
        if until():
            return None
        if time.monotonic() > deadline:
            worker.kill()
            worker.wait()
            print(f"workbench: the first-map worker took over {timeout:.0f} s and was stopped", file=sys.stderr,
                  flush=True)
            return False
        time.sleep(0.05)
    if worker.returncode == 0:
        return True
    try:
        errors = worker_log().read_text(encoding="utf-8", errors="replace")[-4000:]
    except OSError:
        errors = ""
    last = errors.strip().splitlines()[-1:] or [f"exit status {worker.returncode}"]
    print(f"workbench: the first-map worker failed ({last[0][:300]}); the page computes its map itself",
          file=sys.stderr, flush=True)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.first_page",
                                     description="Compute the Explain image page's first map for a model.")
    parser.add_argument("--model", required=True)
    parser.add_argument("--with-model", action="store_true",
                        help="store it in the version's own folder, beside its model file, as `workbench train` "
                        "does (to refresh a shipped sample model's first page after FORMAT changed)")
    args = parser.parse_args(argv)
    if args.with_model:
        return _store_with_model(args.model)
    started = time.perf_counter()
    try:
        os.nice(WORKER_NICENESS)
    except OSError:
        pass

    map_stored_after: list[float] = []

    def store_map(page: FirstPage) -> None:
        map_stored_after.append(round(time.perf_counter() - started, 2))
        save(replace(page, worker_map_seconds=map_stored_after[0]))

    try:
        page = compute(args.model, on_map=store_map)
    except WorkbenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    page = replace(page, worker_map_seconds=map_stored_after[0], worker_seconds=round(time.perf_counter() - started, 2))
    save(page)
    print(f"first map of {page.name} {page.version} ready in {page.worker_seconds:.1f} s "
          f"(map stored after {page.worker_map_seconds:.1f} s)", flush=True)
    return 0


def _store_with_model(name: str) -> int:
    try:
        version = store.current_version(name)
        model = store.load(name, version)  # a version that does not load says why here
        written = store_with_model(model, store.version_path(name, version))
    except WorkbenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if written is None:
        print(f"error: model {name} has no sample images to show first", file=sys.stderr)
        return 2
    print(f"first page of {name} {version} stored in {written.parent}", flush=True)
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # TensorFlow's teardown takes seconds and holds its memory; everything is stored
