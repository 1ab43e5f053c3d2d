"""Pay the server's slow start-up before the first visitor needs it.

A fresh server spends seconds importing TensorFlow, loading the default model and paying
TensorFlow's first-call costs (forward pass, Grad-CAM's gradient) and reading the model's
sample images. Done inside the first script run, all of that is time a newcomer stares at
an unfinished page. `start()` does it in a background thread as soon as the server process
starts (ui/serve.py calls it), and keeps the loaded model in a registry: the UI's model
loader asks `take()` first, so the model is loaded once per process, never twice.

Two phases, in the order a newcomer needs them:
1. the map: TensorFlow, the model, the default page's first sample image, its prediction and
   Grad-CAM (`wait_ready()`: the page waits for this, with the stage on screen);
2. the trust figures of that map (deletion/insertion, the randomisation check's model copy),
   paid while the map is already on screen (`wait()`: the trust panel, "measuring…", and
   shap's warm-up wait for this, so nothing competes with the map for the two cores).

A failed preload is recorded in `status().error` and changes nothing else: `take()` then
returns None and the page loads the model itself. No streamlit import: this is the core.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from explainers import registry
from foundation.errors import WorkbenchError
from foundation.types import Modality
from models import store
from models.loaded import LoadedModel
from workbench import api, datasets

STARTING_TENSORFLOW = "Starting TensorFlow… (first start only)"
STEPS = 3  # TensorFlow, the model, its first prediction and Grad-CAM: "step i of 3" says what is left
TRUST_STAGE = "Measuring the first map's trust figures…"  # phase 2, while the map is on screen

_lock = threading.Lock()
_thread: threading.Thread | None = None
_ready = threading.Event()  # phase 1 over: the model (or the failure) is there, the map can be drawn
_done = threading.Event()  # phase 2 over too: the trust figures' first-call costs are paid
_map_shown = threading.Event()  # a page drew a map and asks for its trust figures: phase 2 may run
_waiting = 0  # visitors' pages waiting for phase 1 (`visitor_waiting()`)
# The server will start the preload once the first visitor's page has painted (`start_after_first_paint`):
# until then pages wait for it as for a running one, instead of loading the model themselves.
_scheduled = threading.Event()
_page_seen = threading.Event()  # a visitor's script run has begun (`page_started`)
_go = threading.Event()  # that page shows the progress message, or needs a model now (`page_painted`)
_wanted = threading.Event()  # a page can show nothing before it has a model (`model_wanted`)
_preview = threading.Condition()  # what a waiting page last drew before its model was ready (`preview_drawn`)
_preview_state: list[object] = [None]
# See start_after_first_paint. Measured (2 runs each, 2 cores): 0.5 s: map 0.18-0.40 s after the title;
# 1.0 s: 0.19-0.23 s; 1.5 s: 0.34-0.44 s; none: 1.5-1.7 s. Each second here delays the live page's controls.
PREVIEW_SETTLE_S = 0.75
MAP_SHOWN_TIMEOUT_S = 30.0  # a waiting visitor's page that never asks: phase 2 runs all the same
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
    ready: bool = False  # phase 1 over: the map's model is loaded and traced (or the preload failed)
    ready_seconds: float | None = None  # from start() to ready
    timings: tuple[tuple[str, float], ...] = ()  # seconds per stage, in order ("tensorflow", "model", …)


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
            _state["process_age"] = process_age()
            _thread = threading.Thread(target=_run, args=(name,), name="model-preload", daemon=True)
            _thread.start()
        return _thread


def schedule() -> None:
    """Announce that `start_after_first_paint` will start the preload: pages arriving before it wait
    for the preload (with its progress on screen) instead of loading the model themselves."""
    _state.setdefault("stage", f"Step 1 of {STEPS}: {STARTING_TENSORFLOW}")
    _scheduled.set()


def page_started() -> None:
    """A visitor's script run has begun (app.py calls this on every run; only the first counts)."""
    _page_seen.set()


def page_painted() -> None:
    """The visitor's page shows its title and the start-up's progress, or needs a model now: the
    scheduled preload may take the interpreter's lock."""
    _go.set()


def start_after_first_paint(grace: float, paint_timeout: float, settle: float = PREVIEW_SETTLE_S
                            ) -> threading.Thread:
    """Start the preload once the first visitor's page has painted (`page_painted`), or after `grace`
    seconds when no visitor has come, or `paint_timeout` seconds after one came whose page never says so.
    When that page drew a preview (the stored first map, `preview_drawn`), `settle` seconds later
    still, unless a page needs its model now (`model_wanted`): the browser fetches the preview's
    images from this process, and with TensorFlow's import holding the lock the map showed 1.5-1.7 s
    after the title instead of 0.3-0.6 s (measured, sample model's stored first map, 2 cores).

    Why wait at all: importing TensorFlow holds Python's global lock for long stretches, so a page
    importing its own modules meanwhile painted its title only when that import was over (measured on
    a quiet 2-core machine: title at 7-10 s after the server's start instead of about 3 s), and both
    took longer than one after the other. The caller has called `schedule()` already (ui/serve.py
    does so before Streamlit starts, so even the earliest page waits)."""
    if _page_seen.wait(grace):
        _go.wait(paint_timeout)
        with _preview:
            drawn = _preview_state[0] is not None
        if drawn:
            _wanted.wait(settle)  # over at once when a page needs its model now
    return start()


def model_wanted() -> None:
    """A page can show nothing before it has its model (another page than the default one, or another
    input): the server's start-up goes ahead at once, without waiting for its first-map worker
    (ui/serve.py) or for a page to paint."""
    _wanted.set()
    page_painted()


def model_is_wanted() -> bool:
    return _wanted.is_set()


def preview_drawn(state: object) -> None:
    """A waiting page has drawn what it can show before its model is ready (loaders.wait_for_start_up;
    `state` says what: the start-up worker's stored first map, workbench/first_page.py)."""
    with _preview:
        _preview_state[0] = state
        _preview.notify_all()


def wait_for_preview(state: object, timeout: float) -> bool:
    """Wait until a visitor's page has drawn `state` (True), at most `timeout` seconds; False at once when
    no waiting page has drawn any preview (nobody to draw it for: no visitor yet, or a page without one).
    The server calls this before its own TensorFlow import, which holds the interpreter's lock for
    seconds: the page's drawing goes first."""
    with _preview:
        if _preview_state[0] == state:
            return True
        if _waiting == 0 or _preview_state[0] is None:
            return False
        return _preview.wait_for(lambda: _preview_state[0] == state, timeout)


def _pending() -> bool:
    """A preload runs, ran, or is about to start (`schedule`)."""
    return _thread is not None or _scheduled.is_set()


def process_age() -> float | None:
    """Seconds since this process started (Linux /proc), or None: when, in the server's life, the
    preload began (after Streamlit listens, see ui/serve.py)."""
    try:
        with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
            started_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
            return round(float(uptime.read().split()[0]) - started_ticks / os.sysconf("SC_CLK_TCK"), 2)
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _run(name: str | None) -> None:
    model = None
    try:
        model = _prepare_the_map(name)
    except Exception as exc:  # never let a preload failure stop the server: the page loads it itself
        _state["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        _state["ready_seconds"] = _since_start()
        with _lock:  # counted before the page is let go, so it cannot slip out unseen
            _state["visitor_at_ready"] = _waiting > 0
        _ready.set()  # the page draws the map now; what follows runs while it does
    try:
        if model is not None:
            _state["stage"] = TRUST_STAGE
            _timed("waited_for_map", _let_the_map_go_first)
            _timed("trust", _warm_trust, model)
    except Exception as exc:  # the trust panel then pays these costs itself
        _state["trust_error"] = f"{type(exc).__name__}: {exc}"
    finally:
        _state["seconds"] = _since_start()
        _state["stage"] = ""
        _done.set()
        _log_outcome()


def _let_the_map_go_first() -> None:
    """With a visitor's page waiting for phase 1, phase 2 waits until that page has drawn its map
    (`map_shown()`): both need the model's lock and the two cores, and the map is what the visitor
    waits for. With nobody waiting, it runs at once."""
    if _state.get("visitor_at_ready"):
        _map_shown.wait(MAP_SHOWN_TIMEOUT_S)


def _prepare_the_map(name: str | None) -> LoadedModel | None:
    """Phase 1: everything the default page's first Grad-CAM needs, in the order it needs it."""
    # The target is known before TensorFlow starts, so a page asking for another model never waits.
    name = name or default_model()
    if name is not None:
        _state["target"] = (name, store.current_version(name))
    _set_stage(STARTING_TENSORFLOW, 1)
    _timed("tensorflow", importlib.import_module, "tensorflow")  # the bulk of a cold start
    if name is None:
        return None  # no image model: nothing more to prepare
    version = _state["target"][1]
    _set_stage(f"Loading model {name}…", 2)
    model = _timed("model", store.load, name, version)
    _set_stage(f"Preparing the first prediction and Grad-CAM of {name}…", 3)
    sample = _timed("sample", _first_sample, model)
    _timed("first_map", _trace, model, sample)
    with _lock:
        _models[(name, version)] = model
    _state["sample"] = sample
    return model


def _timed(stage: str, work, *args):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    try:
        return work(*args)
    finally:
        timings = list(_state.get("timings", ()))
        timings.append((stage, round(time.perf_counter() - started, 3)))
        _state["timings"] = tuple(timings)


def _since_start() -> float:
    return time.perf_counter() - float(_state["started_at"])


def _first_sample(model: LoadedModel) -> np.ndarray | None:
    """The image the default page shows first (its dataset's test split, example 0), read once into
    the core's cache; None when the model's dataset is not one the page offers samples from."""
    if model.modality is not Modality.IMAGE or model.info.dataset not in datasets.names():
        return None
    data = datasets.load(model.info.dataset, "test")
    return np.asarray(data.x[0]) if len(data) else None


def _trace(model: LoadedModel, sample: np.ndarray | None = None) -> None:
    """Pay TensorFlow's first-call costs (graph tracing, kernel set-up) for a prediction and a Grad-CAM
    map, on the default page's first image (its map lands in the core's cache) or a blank one."""
    if model.modality is not Modality.IMAGE:
        api.predict(model, ["warm up"])
        return
    image = sample if sample is not None else _blank(model)
    api.predict(model, [image])
    if registry.get("gradcam").unavailable_reason(model) is None:
        api.explain(model, "gradcam", [image])


def _warm_trust(model: LoadedModel) -> None:
    """Phase 2: the trust figures' first call (the deletion/insertion batches, the randomisation
    check's copy of the model), on the same image as the map."""
    if model.modality is not Modality.IMAGE or registry.get("gradcam").unavailable_reason(model) is not None:
        return
    sample = _state.get("sample")
    image = sample if isinstance(sample, np.ndarray) else _blank(model)
    explanation = api.explain(model, "gradcam", [image])[0]
    api.measure_trust(model, explanation, api.prepare_input(model, image))


def _blank(model: LoadedModel) -> np.ndarray:
    height, width = model.image_size
    return np.zeros((height, width, 3), dtype=np.uint8)


def _log_outcome() -> None:
    """One line in the server's log: how long the start-up took, or why it failed."""
    done = status()
    if done.error:
        print(f"workbench: the model preload failed after {done.seconds:.1f} s ({done.error}); "
              "pages load their models themselves", file=sys.stderr, flush=True)
    elif done.target:
        stages = ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in done.timings)
        age = _state.get("process_age")
        began = f", started {age:.1f} s after the server process" if isinstance(age, float) else ""
        print(f"workbench: preloaded {done.target[0]} {done.target[1]} in {done.seconds:.1f} s "
              f"(map ready after {done.ready_seconds:.1f} s; {stages}{began})", file=sys.stderr, flush=True)


def _set_stage(stage: str, step: int) -> None:
    _state["stage"] = f"Step {step} of {STEPS}: {stage}"


def take(name: str, version: str) -> LoadedModel | None:
    """The preloaded model for (name, version), waiting for a preload of it that is under way;
    None when it was not preloaded (another model, or the preload failed)."""
    target = _state.get("target")
    if _pending() and not _ready.is_set() and target in (None, (name, version)):
        model_wanted()  # a page needs a model now: a scheduled preload starts at once
        _ready.wait()  # loading it here as well would load it twice
    with _lock:
        return _models.get((name, version))


def wait(timeout: float | None = None) -> bool:
    """Block until the whole preload has finished, trust figures included (True), or the timeout
    passed (False). Returns True at once when no preload was started or scheduled: there is nothing to
    wait for."""
    if not _pending():
        return True
    return _done.wait(timeout)


@contextlib.contextmanager
def visitor_waiting() -> Iterator[None]:
    """Mark a page waiting for phase 1: phase 2 then lets that page's map go first."""
    global _waiting
    with _lock:
        _waiting += 1
    try:
        yield
    finally:
        with _lock:
            _waiting -= 1


def map_shown() -> None:
    """A page has drawn a map and is about to measure its trust figures: phase 2 may run now."""
    _map_shown.set()


def wait_ready(timeout: float | None = None) -> bool:
    """Block until the map's part of the preload is over (True: the model is loaded and traced, or
    the preload failed) or the timeout passed (False). True at once when no preload was started or
    scheduled."""
    if not _pending():
        return True
    return _ready.wait(timeout)


def status() -> PreloadStatus:
    seconds = _state.get("seconds")
    ready_seconds = _state.get("ready_seconds")
    error = _state.get("error")
    target = _state.get("target")
    return PreloadStatus(
        started=_thread is not None,  # scheduled only: False, with the stage it will start with
        done=_done.is_set(),
        stage=str(_state.get("stage", "")),
        target=target if isinstance(target, tuple) else None,
        seconds=float(seconds) if isinstance(seconds, float) else None,
        error=str(error) if error else None,
        ready=_ready.is_set(),
        ready_seconds=float(ready_seconds) if isinstance(ready_seconds, float) else None,
        timings=tuple(_state.get("timings", ())),  # type: ignore[arg-type]
    )


def forget() -> None:
    """Drop the registry and the finished thread, so a test can preload again in this process.
    Refused while a preload runs (its thread would write into the new state)."""
    global _thread
    with _lock:
        if _thread is not None and not _done.is_set():
            raise RuntimeError("a preload is still running; wait() for it first")
        _thread = None
        _ready.clear()
        _done.clear()
        _map_shown.clear()
        _scheduled.clear()
        _page_seen.clear()
        _go.clear()
        _wanted.clear()
        _preview_state[0] = None
        _models.clear()
        _state.clear()
