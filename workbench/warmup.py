"""Pay shap's one-off numba compilation in the background as soon as the app starts.

shap compiles its Partition and masker helpers with numba on the first call in a process
(5-10 s on 2 cores, whatever the model). `start()` runs `warm_up_shap()` once per process
in a daemon thread, so the first user who opens SHAP does not wait for it and the page
keeps rendering meanwhile. No streamlit import: the benchmark uses this module too, and the UI starts it.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

_lock = threading.Lock()
_thread: threading.Thread | None = None
_done = threading.Event()
_state: dict[str, object] = {}


@dataclass(frozen=True)
class WarmUpStatus:
    started: bool
    done: bool
    seconds: float | None  # how long the warm-up took, once done
    error: str | None  # the warm-up failed (SHAP still works, its first call is just slow)


def warm_up_shap() -> float:
    """Pay shap's one-off compilation now, in this thread; returns the seconds spent."""
    from explainers.shap_explainer import warm_up_shap as compile_shap

    return compile_shap()


def _run() -> None:
    started = time.perf_counter()
    try:
        warm_up_shap()
    except Exception as exc:  # never let a warm-up failure surface in a page
        _state["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        _state["seconds"] = time.perf_counter() - started
        _done.set()


def start() -> threading.Thread:
    """Start the warm-up once per process (later calls return the same thread at once)."""
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_run, name="shap-warm-up", daemon=True)
            _thread.start()
        return _thread


def wait(timeout: float | None = None) -> bool:
    """Block until the warm-up has finished (True) or the timeout passed (False).
    Returns False at once when the warm-up was never started."""
    if _thread is None:
        return False
    return _done.wait(timeout)


def status() -> WarmUpStatus:
    seconds = _state.get("seconds")
    error = _state.get("error")
    return WarmUpStatus(
        started=_thread is not None,
        done=_done.is_set(),
        seconds=float(seconds) if isinstance(seconds, float) else None,
        error=str(error) if error else None,
    )
