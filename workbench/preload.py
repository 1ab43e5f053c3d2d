"""Pay the server's slow start-up before the first visitor needs it.

A fresh server spends seconds importing TensorFlow, loading the default model and paying
TensorFlow's first-call costs (forward pass, Grad-CAM's gradient) and reading the model's
sample images. Done inside the first script run, all of that is time a newcomer stares at
an unfinished page. `start()` does it in a background thread as soon as the server process
starts (ui/serve.py calls it), and keeps the loaded model in a registry: the UI's model
loader asks `take()` first, so the model is loaded once per process, never twice.

A failed preload is recorded in `status().error` and changes nothing else: `take()` then
returns None and the page loads the model itself. No streamlit import: this is the core.
"""
from __future__ import annotations

import importlib
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

from explainers import registry
from foundation.errors import WorkbenchError
from foundation.types import Modality
from models import store
from models.loaded import LoadedModel
from workbench import api, datasets

STARTING_TENSORFLOW = "Starting TensorFlow… (first start only)"
STEPS = 3  # TensorFlow, the model, its first prediction and Grad-CAM: "step i of 3" says what is left

_lock = threading.Lock()
_thread: threading.Thread | None = None
_done = threading.Event()
_models: dict[tuple[str, str], LoadedModel] = {}
_state: dict[str, object] = {}


@dataclass(frozen=True)
class PreloadStatus:
    started: bool
    done: bool
    stage: str  # what it is doing now, as a person reads it ("" once done)
    target: tuple[str, str] | None  # (model name, version) being preloaded, if any
    seconds: float | None  # how long the whole preload took, once done
    error: str | None  # the preload failed: the page loads the model itself


def default_model(modality: Modality = Modality.IMAGE) -> str | None:
    """The model the sidebar picks first for a page of this modality: the first by name.
    Models whose manifest cannot be read are skipped (the sidebar reports them)."""
    for name in store.model_names():
        try:
            if store.manifest(name).modality is modality:
                return name
        except WorkbenchError:
            continue
    return None


def start(name: str | None = None) -> threading.Thread:
    """Start the preload once per process (later calls return the same thread at once).

    name: the model to preload (default: `default_model()`); its version in use is read now,
    so the registry key matches what the sidebar asks for.
    """
    global _thread
    with _lock:
        if _thread is None:
            _state["started_at"] = time.perf_counter()
            _thread = threading.Thread(target=_run, args=(name,), name="model-preload", daemon=True)
            _thread.start()
        return _thread


def _run(name: str | None) -> None:
    try:
        # The target is known before TensorFlow starts, so a page asking for another model never waits.
        name = name or default_model()
        if name is not None:
            _state["target"] = (name, store.current_version(name))
        _set_stage(STARTING_TENSORFLOW, 1)
        importlib.import_module("tensorflow")  # the bulk of a cold start: pay it before anyone waits
        if name is None:
            return  # no image model: nothing more to prepare
        version = _state["target"][1]
        _set_stage(f"Loading model {name}…", 2)
        model = store.load(name, version)
        _set_stage(f"Preparing the first prediction, Grad-CAM and trust figures of {name}…", 3)
        _trace(model)
        _read_sample_images(model)
        with _lock:
            _models[(name, version)] = model
    except Exception as exc:  # never let a preload failure stop the server: the page loads it itself
        _state["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        _state["seconds"] = time.perf_counter() - float(_state["started_at"])
        _state["stage"] = ""
        _done.set()
        _log_outcome()


def _trace(model: LoadedModel) -> None:
    """Pay TensorFlow's first-call costs (graph tracing, kernel set-up) for a prediction, a Grad-CAM map
    and its trust figures, on a blank input."""
    if model.modality is not Modality.IMAGE:
        api.predict(model, ["warm up"])
        return
    height, width = model.image_size
    blank = np.zeros((height, width, 3), dtype=np.uint8)
    api.predict(model, [blank])
    if registry.get("gradcam").unavailable_reason(model) is None:
        explanation = api.explain(model, "gradcam", [blank], use_cache=False)[0]
        # The trust figures' first call builds a randomised copy of the model (sanity check): pay it too.
        api.measure_trust(model, explanation, blank)


def _read_sample_images(model: LoadedModel) -> None:
    """The sample images the page offers first (the test split), read once into the core's cache."""
    if model.info.dataset in datasets.names():
        datasets.load(model.info.dataset, "test")


def _log_outcome() -> None:
    """One line in the server's log: how long the start-up took, or why it failed."""
    done = status()
    if done.error:
        print(f"workbench: the model preload failed after {done.seconds:.1f} s ({done.error}); "
              "pages load their models themselves", file=sys.stderr, flush=True)
    elif done.target:
        print(f"workbench: preloaded {done.target[0]} {done.target[1]} in {done.seconds:.1f} s",
              file=sys.stderr, flush=True)


def _set_stage(stage: str, step: int) -> None:
    _state["stage"] = f"Step {step} of {STEPS}: {stage}"


def take(name: str, version: str) -> LoadedModel | None:
    """The preloaded model for (name, version), waiting for a preload of it that is under way;
    None when it was not preloaded (another model, or the preload failed)."""
    target = _state.get("target")
    if _thread is not None and not _done.is_set() and target in (None, (name, version)):
        _done.wait()  # loading it here as well would load it twice
    with _lock:
        return _models.get((name, version))


def wait(timeout: float | None = None) -> bool:
    """Block until the preload has finished (True) or the timeout passed (False).
    Returns True at once when no preload was started: there is nothing to wait for."""
    if _thread is None:
        return True
    return _done.wait(timeout)


def status() -> PreloadStatus:
    seconds = _state.get("seconds")
    error = _state.get("error")
    target = _state.get("target")
    return PreloadStatus(
        started=_thread is not None,
        done=_done.is_set(),
        stage=str(_state.get("stage", "")),
        target=target if isinstance(target, tuple) else None,
        seconds=float(seconds) if isinstance(seconds, float) else None,
        error=str(error) if error else None,
    )


def forget() -> None:
    """Drop the registry and the finished thread, so a test can preload again in this process.
    Refused while a preload runs (its thread would write into the new state)."""
    global _thread
    with _lock:
        if _thread is not None and not _done.is_set():
            raise RuntimeError("a preload is still running; wait() for it first")
        _thread = None
        _done.clear()
        _models.clear()
        _state.clear()
