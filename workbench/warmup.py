"""Pay shap's one-off numba compilation in the background, when it delays nobody.

shap compiles its Partition and masker helpers with numba on the first call in a process
(5-10 s on 2 cores, whatever the model). `start()` runs `warm_up_shap()` once per process
in a daemon thread, so the first user who opens SHAP does not wait for it and the page
keeps rendering meanwhile.

On a 2-core server that compilation competes with everything else, so it waits its turn:
first for the model preload (workbench/preload.py: TensorFlow and the default model), then
for a quiet moment with no map being computed for someone (`busy()` marks those; QUIET_S
without one), and it runs at the lowest CPU priority. A SHAP request that arrives meanwhile
(`wait()`) lifts the gate: that user is waiting for the compilation itself.
`warm_partition_tree(shape)` does the same for SHAP's image partition tree of a model's input
size (1.2 s at 224 x 224, once per size), started when an image model is loaded.
No streamlit import: the benchmark uses this module too, and the UI starts it.
"""
from __future__ import annotations

import contextlib
import atexit
import os
import threading
import time
from dataclasses import dataclass
from typing import Iterator

from workbench import preload

QUIET_S = 2.0  # no map computed for this long: the first visitor has their page

_lock = threading.Lock()
_thread: threading.Thread | None = None
_done = threading.Event()
_needed_now = threading.Event()  # someone asked for SHAP: stop waiting for a quiet moment
_state: dict[str, object] = {}
_exiting = threading.Event()  # the interpreter is shutting down: warm-ups not begun are skipped
_in_flight = 0
_last_busy = 0.0  # perf_counter when the last map finished (0: never)


@dataclass(frozen=True)
class WarmUpStatus:
    started: bool
    done: bool
    seconds: float | None  # how long the compilation itself took, once done
    error: str | None  # the warm-up failed (SHAP still works, its first call is just slow)


def warm_up_shap() -> float:
    """Pay shap's one-off compilation now, in this thread; returns the seconds spent."""
    from explainers.shap_explainer import warm_up_shap as compile_shap

    return compile_shap()


@contextlib.contextmanager
def busy() -> Iterator[None]:
    """Mark a map (or its trust figures) being computed for someone: the warm-up does not start meanwhile."""
    global _in_flight, _last_busy
    with _lock:
        _in_flight += 1
    try:
        yield
    finally:
        with _lock:
            _in_flight -= 1
            _last_busy = time.perf_counter()


def _quiet() -> bool:
    with _lock:
        return _in_flight == 0 and (_last_busy == 0.0 or time.perf_counter() - _last_busy >= QUIET_S)


class Exiting(Exception):
    """The process is ending: a warm-up that has not begun does not begin."""


def _wait_for_its_turn() -> None:
    while not preload.wait(0.2):
        if _needed_now.is_set():
            break
        if _exiting.is_set():
            raise Exiting
    while not _quiet() and not _needed_now.wait(0.2):
        if _exiting.is_set():
            raise Exiting
    if _exiting.is_set():
        raise Exiting


@atexit.register
def _finish_before_exit(timeout: float = 60.0) -> None:
    """Let a compilation in flight end before the interpreter tears down: numba compiling in a daemon
    thread while Python finalises aborts the process (an LLVM assertion), which would turn a
    finished test run or a server's clean stop into a crash. Warm-ups still waiting are skipped."""
    _exiting.set()
    with _lock:
        threads = [t for t in (_thread, *_tree_threads.values()) if t is not None]
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


def _set_priority(niceness: int) -> None:
    """Linux schedules threads one by one: nice the warm-up's thread alone, so the maps win the cores."""
    thread_id = _state.get("native_id")
    try:
        os.setpriority(os.PRIO_PROCESS, int(thread_id), niceness)  # type: ignore[arg-type]
    except (AttributeError, OSError, TypeError):
        pass  # not Linux, or not allowed: the gate above still keeps it out of the way


def _run() -> None:
    _state["native_id"] = threading.get_native_id()
    try:
        _wait_for_its_turn()
        if not _needed_now.is_set():
            _set_priority(19)
        started = time.perf_counter()
        try:
            warm_up_shap()
        finally:
            _state["seconds"] = time.perf_counter() - started
    except Exiting:
        _state["error"] = "skipped: the process ended first"
    except Exception as exc:  # never let a warm-up failure surface in a page
        _state["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        _done.set()


_tree_threads: dict[tuple[int, int, int], threading.Thread] = {}


def warm_partition_tree(shape: tuple[int, int, int]) -> threading.Thread:
    """Build SHAP's partition tree for images of `shape` in a daemon thread, once per shape, after
    the start-up and a quiet moment (as the compilation above); a SHAP map asked for meanwhile
    waits for this build instead of starting another (the tree cache holds a lock)."""
    key = tuple(int(d) for d in shape)
    with _lock:
        thread = _tree_threads.get(key)
        if thread is None:
            thread = threading.Thread(target=_build_tree, args=(key,), name=f"shap-tree-{key[0]}x{key[1]}",
                                      daemon=True)
            _tree_threads[key] = thread
            thread.start()
        return thread


def _build_tree(shape: tuple[int, int, int]) -> None:
    try:
        _wait_for_its_turn()
        from explainers.shap_explainer import image_partition_tree

        image_partition_tree(shape)
    except Exception:  # noqa: BLE001 - the first SHAP map then builds it itself, as before
        pass


def start() -> threading.Thread:
    """Start the warm-up once per process (later calls return the same thread at once)."""
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_run, name="shap-warm-up", daemon=True)
            _thread.start()
        return _thread


def wait(timeout: float | None = None) -> bool:
    """Block until the warm-up has finished (True) or the timeout passed (False); the caller
    needs SHAP now, so a warm-up still waiting for its turn starts at once.
    Returns False at once when the warm-up was never started."""
    if _thread is None:
        return False
    if not _needed_now.is_set():
        _needed_now.set()
        _set_priority(0)  # someone waits for it now (raising it back needs privileges: best effort)
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
