"""Background jobs: training runs in its own process, never in the Streamlit script thread.

This is the workbench's one runner for background work. A job has a *kind* that says what it
runs; every kind gets the same job folder, status file, lock, cancel and kill safety:

    retrain               fine-tune a candidate from the label corrections (Retrain page, CLI)
    lesson-fix-shortcut   the Learn page's shortcut fix: retrain on images with the mark painted out

Each job has a folder `jobs/<job_id>/` in the workspace:

    spec.json      what to run, kind included (written once by the starter)
    status.json    state, stage, epoch, loss, val accuracy, history, time left, result or error,
                   and who started it (`actor`: subject, e-mail, name, role)
                   (replaced atomically, so a reader never sees half of it)
    log.txt        the process's output
    tensorboard/   TensorBoard event files of the run (retrain jobs)

Every kind writes a version of one model, so one job per model at a time: `jobs/.locks/<model>.lock` is created with O_CREAT|O_EXCL and
names the job's pid and that process's start time. A lock whose process is gone (or whose
pid now belongs to another process) is stale and is cleared by the next start. Cancelling
sends SIGTERM to the job's process group; the job records "cancelled" and releases the lock.
Killed outright (kill -9), it leaves only hidden staging folders behind, which never count
as versions and are removed when its stale lock is cleared.

Starter and job run this file: `python -m workbench.jobs run <job folder>`.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Callable, Iterator

from foundation import access, config
from foundation.access import Identity, identity_of
from foundation.errors import WorkbenchError
from foundation.ids import is_path_id

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
RETRAIN, LESSON_FIX_SHORTCUT = "retrain", "lesson-fix-shortcut"
KINDS = (RETRAIN, LESSON_FIX_SHORTCUT)
ACTIVE_STATES = (QUEUED, RUNNING)
HANDOFF_TIMEOUT_S = 60
JOB_NICENESS = 5
STALE_STAGING_AGE_S = 3600
DIED_MESSAGE = ("the job's process ended without reporting (it was killed or crashed); "
                "nothing it was writing became a version.")

# Popen objects of jobs this process started, so finished children are reaped (no zombies).
_CHILDREN: dict[str, subprocess.Popen] = {}


# -- paths -----------------------------------------------------------------------------------

def jobs_dir() -> Path:
    return config.workspace_subdir("jobs")


def _locks_dir() -> Path:
    path = jobs_dir() / ".locks"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def lock_path(model: str) -> Path:
    return _locks_dir() / f"{_safe(model)}.lock"


def job_dir(job_id: str) -> Path:
    if not is_path_id(job_id):  # it becomes a folder name: no separators, no "..", bounded
        shown = repr(job_id) if len(repr(job_id)) <= 60 else repr(job_id)[:57] + "..."
        raise WorkbenchError(f"{shown} is not a job id; run `workbench jobs list` to see them.")
    return jobs_dir() / job_id


def _now() -> str:
    from models.store import now_iso

    return now_iso()


def _write_json(path: Path, data: Any) -> None:
    from foundation.atomic import write_json_atomic

    write_json_atomic(path, data)


def _read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


# -- processes -------------------------------------------------------------------------------

def process_start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (clock ticks since boot), None if gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: the fields after the last ")" are fixed.
    after = stat[stat.rindex(")") + 2:].split()
    state, start = after[0], after[19]
    return None if state in ("Z", "X") else start


def _proc_available() -> bool:
    return Path("/proc/self/stat").is_file()


def pid_alive(pid: int | None, start_time: str | None = None) -> bool:
    """Whether `pid` is still the process that was recorded (same start time where known)."""
    if not pid:
        return False
    for job_id, child in list(_CHILDREN.items()):
        if child.pid == pid and child.poll() is not None:
            _CHILDREN.pop(job_id, None)
            return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if _proc_available():
        current = process_start_time(int(pid))
        if current is None:
            return False
        if start_time is not None and current != str(start_time):
            return False  # the pid was reused by another process
    return True


def _reap() -> None:
    for job_id, child in list(_CHILDREN.items()):
        if child.poll() is not None:
            _CHILDREN.pop(job_id, None)


# -- the per-model lock ----------------------------------------------------------------------

@contextlib.contextmanager
def _guard() -> Iterator[None]:
    """Serialises lock checks across processes; the kernel drops it if the holder dies."""
    with open(_locks_dir() / ".guard", "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def read_lock(model: str) -> dict[str, Any] | None:
    try:
        data = _read_json(lock_path(model))
    except FileNotFoundError:
        return None
    except ValueError:
        return {}  # unreadable: treated as stale by the next start
    return data if isinstance(data, dict) else {}


def _lock_is_live(lock: dict[str, Any]) -> bool:
    return bool(lock) and pid_alive(lock.get("pid"), lock.get("pid_start"))


def _lock_record(job_id: str, pid: int, created_by: str) -> dict[str, Any]:
    return {"job_id": job_id, "pid": pid, "pid_start": process_start_time(pid), "created_by": created_by,
            "started_at": _now()}


def _refusal(model: str, lock: dict[str, Any]) -> WorkbenchError:
    return WorkbenchError(
        f"a retrain of {model!r} is already running (job {lock.get('job_id')}, started "
        f"{lock.get('started_at', '?')} by {lock.get('created_by', '?')}); wait for it to finish or "
        f"cancel it (Retrain page, or `workbench jobs cancel {lock.get('job_id')}`)."
    )


def _clear_leftovers(model: str) -> None:
    """Hidden folders a killed job left half-written; no live writer can own them now."""
    if not is_path_id(model):
        return  # not a model folder name: there is nothing of it to clear
    versions = config.workspace_dir() / "models" / model / "versions"
    if versions.is_dir():
        for path in versions.iterdir():
            if path.name.startswith((".staging-", ".trash-")):
                shutil.rmtree(path, ignore_errors=True)
    snapshots = config.workspace_dir() / "snapshots"
    if snapshots.is_dir():
        cutoff = time.time() - STALE_STAGING_AGE_S
        for path in snapshots.glob("*/.staging-*"):
            # Another dataset's retrain may be writing right now: only old ones are abandoned.
            if path.stat().st_mtime < cutoff:
                shutil.rmtree(path, ignore_errors=True)


def _create_lock(model: str, record: dict[str, Any]) -> None:
    fd = os.open(lock_path(model), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(record, handle)
        handle.flush()
        os.fsync(handle.fileno())


def acquire_lock(model: str, job_id: str, *, created_by: str, pid: int | None = None) -> dict[str, Any]:
    """Take the model's retrain lock for `pid` (default: this process); refuse if a live job holds it."""
    with _guard():
        existing = read_lock(model)
        if existing is not None:
            if _lock_is_live(existing):
                raise _refusal(model, existing)
            lock_path(model).unlink(missing_ok=True)
            _clear_leftovers(model)
        record = _lock_record(job_id, pid or os.getpid(), created_by)
        _create_lock(model, record)
        return record


def _hand_over_lock(model: str, job_id: str, pid: int) -> None:
    with _guard():
        lock = read_lock(model) or {}
        if lock.get("job_id") != job_id:
            raise WorkbenchError(f"the lock of {model!r} was taken over while starting job {job_id}.")
        _write_json(lock_path(model), dict(lock, pid=pid, pid_start=process_start_time(pid)))


def release_lock(model: str, job_id: str) -> None:
    """Remove the lock if (and only if) it is this job's."""
    with _guard():
        lock = read_lock(model)
        if lock is not None and lock.get("job_id") == job_id:
            lock_path(model).unlink(missing_ok=True)


@contextlib.contextmanager
def holding_lock(model: str, label: str, *, created_by: str = "cli") -> Iterator[str]:
    """Hold the model's retrain lock in this process (for in-process retrains, e.g. simulations)."""
    job_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{_safe(model)}-{label}-{secrets.token_hex(3)}"
    acquire_lock(model, job_id, created_by=created_by)
    try:
        yield job_id
    finally:
        release_lock(model, job_id)


# -- reading status --------------------------------------------------------------------------

def read_status(job_id: str) -> dict[str, Any]:
    """The job's status; an active state whose process is gone is reported as failed."""
    path = job_dir(job_id) / "status.json"
    try:
        status = _read_json(path)
    except FileNotFoundError:
        raise WorkbenchError(f"there is no job {job_id!r}; run `workbench jobs list` to see them.") from None
    _reap()
    if status.get("state") in ACTIVE_STATES and not pid_alive(status.get("pid"), status.get("pid_start")):
        status = dict(status, state=FAILED, error=DIED_MESSAGE, died=True)
    return status


def list_jobs(model: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
    """Statuses of every job (optionally of one model, of one kind), newest first."""
    rows = []
    for path in sorted(jobs_dir().iterdir(), reverse=True):
        if path.name.startswith(".") or not (path / "status.json").is_file():
            continue
        try:
            status = read_status(path.name)
        except (WorkbenchError, ValueError):
            continue
        if (model is None or status.get("model") == model) and (kind is None or _kind_of(status) == kind):
            rows.append(status)
    return rows


def _kind_of(status: dict[str, Any]) -> str:
    return status.get("kind") or RETRAIN  # jobs written before kinds existed were all retrains


def active_job(model: str) -> dict[str, Any] | None:
    """The running job of `model` (any kind: it holds the model's lock), found from the workspace."""
    lock = read_lock(model)
    if not lock or not _lock_is_live(lock):
        return None
    try:
        return read_status(lock["job_id"])
    except WorkbenchError:
        return None  # an in-process retrain (e.g. a simulation) holds the lock without a job folder


def latest_job(model: str, kind: str | None = RETRAIN) -> dict[str, Any] | None:
    """The newest job of `model` of one kind (default: retrain, what the Retrain page reports)."""
    jobs = list_jobs(model, kind)
    return jobs[0] if jobs else None


# -- starting, waiting, cancelling -----------------------------------------------------------

def _new_job_id(model: str, kind: str) -> str:
    label = "" if kind == RETRAIN else f"-{kind}"  # retrain ids keep their historical shape
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{_safe(model)}{label}-{secrets.token_hex(3)}"


def start_retrain(
    model: str,
    *,
    dataset: str | None = None,
    split: str | None = None,
    quick: bool = False,
    config_overrides: dict[str, Any] | None = None,
    created_by: str = "cli",
    ledger_url: str | None = None,
    actor: Identity | None = None,
) -> str:
    """Start a retrain of `model` in a new process and return its job id at once.

    Raises AccessDenied unless `actor` (default: the local operator) is a maintainer, and
    WorkbenchError naming the running job if `model` is already being retrained.
    """
    from models import store

    access.acting(actor, access.RETRAIN)
    store.current_version(model)  # an unknown model is named before any unknown setting
    _check_overrides(config_overrides or {})
    return start(RETRAIN, model, created_by=created_by, dataset=dataset, split=split, quick=quick,
                 config=dict(config_overrides or {}), ledger_url=ledger_url, actor=actor)


def start(kind: str, model: str, *, created_by: str = "cli", actor: Identity | None = None, **params: Any) -> str:
    """Start a job of `kind` that writes a version of `model`, in a new process; return its id at once.

    `params` go into the spec for the kind's runner (JSON values only). The spec and the status
    record who started it (`actor`, default the local operator). Every kind publishes a model
    version, so each needs the maintainer role (AccessDenied otherwise; the Learn page's lesson
    fix too: without sign-in the local operator is an admin). Raises WorkbenchError for an unknown
    kind or model, or naming the running job if `model` already has one.
    """
    from models import store

    if kind not in KINDS:
        raise WorkbenchError(f"unknown job kind {kind!r}; choose one of {', '.join(KINDS)}.")
    who = access.acting(actor, access.RETRAIN)
    store.current_version(model)  # refuses an unknown model before anything is written
    job_id = _new_job_id(model, kind)
    acquire_lock(model, job_id, created_by=created_by)
    try:
        folder = job_dir(job_id)
        folder.mkdir(parents=True)
        if kind == RETRAIN:
            (folder / "tensorboard").mkdir()
        spec = {**params, "kind": kind, "job_id": job_id, "model": model, "created_by": created_by,
                "actor": who.record(), "workspace": str(config.workspace_dir())}
        _write_json(folder / "spec.json", spec)
        child = _spawn(folder)
    except BaseException:
        release_lock(model, job_id)
        raise
    _CHILDREN[job_id] = child
    # Queued is written before the hand-over: the job writes nothing until it owns the lock.
    _write_json(folder / "status.json", _initial_status(spec, child.pid))
    _hand_over_lock(model, job_id, child.pid)
    return job_id


def _check_overrides(overrides: dict[str, Any]) -> None:
    if not overrides:
        return  # spares the starter the TensorFlow import that models.training brings
    from models.training import TrainConfig

    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise WorkbenchError(f"unknown training setting(s) {', '.join(unknown)}; choose from {', '.join(sorted(known))}.")


def _spawn(folder: Path) -> subprocess.Popen:
    env = dict(os.environ, WORKBENCH_HOME=str(config.workspace_dir()), TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join(filter(None, [str(config.REPO_ROOT), os.environ.get("PYTHONPATH")])))
    with open(folder / "log.txt", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "workbench.jobs", "run", str(folder)],
            cwd=config.REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: cancel reaches every child it starts
        )


def _initial_status(spec: dict[str, Any], pid: int) -> dict[str, Any]:
    folder = job_dir(spec["job_id"])
    return {
        "job_id": spec["job_id"], "kind": spec["kind"], "model": spec["model"], "state": QUEUED,
        "stage": "starting", "pid": pid, "pid_start": process_start_time(pid), "created_by": spec["created_by"],
        "actor": spec.get("actor"), "created_at": _now(), "updated_at": _now(), "epoch": 0, "total_epochs": None, "loss": None,
        "val_accuracy": None, "history": [], "eta_seconds": None, "result": None, "error": None,
        "log": str(folder / "log.txt"),
        "tensorboard": str(folder / "tensorboard") if (folder / "tensorboard").is_dir() else None,
    }


def is_finished(status: dict[str, Any]) -> bool:
    return status.get("state") not in ACTIVE_STATES


def wait(
    job_id: str,
    *,
    on_update: Callable[[dict[str, Any]], None] | None = None,
    poll_seconds: float = 0.5,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Block until the job ends; `on_update` sees each new status. Returns the final status."""
    deadline = None if timeout is None else time.monotonic() + timeout
    seen = None
    while True:
        status = read_status(job_id)
        if on_update is not None and status.get("updated_at") != seen:
            seen = status.get("updated_at")
            on_update(status)
        if is_finished(status):
            _reap()
            return status
        if deadline is not None and time.monotonic() > deadline:
            raise WorkbenchError(f"job {job_id} did not finish within {timeout:.0f} s.")
        time.sleep(poll_seconds)


def cancel(job_id: str, *, actor: Identity | None = None) -> dict[str, Any]:
    """Ask the job to stop (SIGTERM to its process group). Returns its status at that moment.

    Stopping someone's retrain is a retrain decision: it needs the maintainer role (`actor`,
    default the local operator)."""
    access.acting(actor, access.RETRAIN)
    status = read_status(job_id)
    if is_finished(status):
        raise WorkbenchError(f"job {job_id} is not running (it is {status['state']}).")
    pid = int(status["pid"])
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass  # it ended between the check and the signal
    return status


# -- inside the job process ------------------------------------------------------------------

class JobCancelled(BaseException):
    """Raised in the job's main thread by SIGTERM/SIGINT.

    A BaseException, like KeyboardInterrupt: libraries that wrap `except Exception` (TensorFlow
    does, while importing) must not turn a cancel into some other error.
    """


_cancel_state = {"deferring": False, "requested": False}


def _on_signal(signum: int, _frame: Any) -> None:
    if _cancel_state["requested"]:
        return  # one cancel is enough; a second must not interrupt the clean-up
    _cancel_state["requested"] = True
    if not _cancel_state["deferring"]:
        raise JobCancelled(f"cancelled by signal {signum}")


@contextlib.contextmanager
def _defer_cancel() -> Iterator[None]:
    """Around the final publish: a cancel then waits, so the version is all there or not at all."""
    _cancel_state["deferring"] = True
    try:
        yield
    finally:
        _cancel_state["deferring"] = False


class _StatusFile:
    def __init__(self, folder: Path):
        self.path = folder / "status.json"
        try:
            self.data: dict[str, Any] = _read_json(self.path)
        except (FileNotFoundError, ValueError):  # the starter died before writing it
            self.data = {"job_id": folder.name, "pid": os.getpid(), "pid_start": process_start_time(os.getpid())}

    def update(self, **changes: Any) -> None:
        self.data.update(changes, updated_at=_now())
        _write_json(self.path, self.data)


def progress_callback(report: Callable[..., None], total_epochs: int) -> Any:
    """A Keras callback that reports epoch, loss, val accuracy, history and time left."""
    import keras

    class Progress(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.completed, self.phase, self.history, self.started = 0, 0, [], 0.0

        def on_train_begin(self, logs: Any = None) -> None:
            self.phase += 1  # fine-tuning fits twice: frozen base, then the top unfrozen

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.started = time.perf_counter()
            report(stage="training", phase=self.phase, epoch=self.completed + 1, total_epochs=total_epochs,
                   epoch_running=True)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            logs = logs or {}
            self.completed += 1
            row = {"epoch": self.completed, "phase": self.phase,
                   "seconds": round(time.perf_counter() - self.started, 3)}
            row.update({key: round(float(logs[key]), 5) for key in ("loss", "accuracy", "val_loss", "val_accuracy")
                        if key in logs})
            self.history.append(row)
            mean = sum(r["seconds"] for r in self.history) / len(self.history)
            report(epoch=self.completed, total_epochs=total_epochs, loss=row.get("loss"),
                   val_accuracy=row.get("val_accuracy"), history=list(self.history), epoch_running=False,
                   # early stopping may end sooner: this is an upper bound
                   eta_seconds=round(mean * max(total_epochs - self.completed, 0), 1))

    return Progress()


def _train_config(spec: dict[str, Any]) -> Any:
    from models import store
    from workbench import retrain, samples

    if spec.get("quick"):
        base = samples.quick_config()
    else:  # the recipe the version in use was trained with
        base = retrain.recipe_config(store.manifest(spec["model"]))
    overrides = dict(spec.get("config") or {})
    if "image_filters" in overrides:
        overrides["image_filters"] = tuple(overrides["image_filters"])
    return replace(base, **overrides)


def _await_lock(model: str, job_id: str) -> None:
    deadline = time.monotonic() + HANDOFF_TIMEOUT_S
    while time.monotonic() < deadline:
        lock = read_lock(model) or {}
        if lock.get("job_id") != job_id:
            raise WorkbenchError(f"job {job_id} lost the lock of {model!r} before it started.")
        if lock.get("pid") == os.getpid():
            return
        time.sleep(0.05)
    raise WorkbenchError(f"job {job_id} never received the lock of {model!r}; start it again.")


def _total_epochs(cfg: Any) -> int:
    return cfg.head_epochs + (cfg.finetune_epochs if cfg.unfreeze_top > 0 else 0)


def _stage_logger(status: _StatusFile) -> Callable[[str], None]:
    """A `log` for the work itself: each message goes to log.txt and becomes the job's stage."""
    def log(message: str) -> None:
        print(message, flush=True)
        status.update(stage=message)

    return log


def _run_retrain(spec: dict[str, Any], status: _StatusFile, folder: Path) -> dict[str, Any]:
    import keras

    from labels import Ledger
    from workbench import retrain

    cfg = _train_config(spec)
    callbacks = [progress_callback(status.update, _total_epochs(cfg)),
                 keras.callbacks.TensorBoard(log_dir=str(folder / "tensorboard"), write_graph=False)]
    result = retrain.retrain(
        spec["model"], dataset=spec.get("dataset"), split=spec.get("split"), config=cfg,
        created_by=spec.get("created_by") or "cli", ledger=Ledger(spec.get("ledger_url")),
        actor=identity_of(spec.get("actor")),
        callbacks=callbacks, log=_stage_logger(status), publishing=_defer_cancel,
    )
    return dict(result.summary(), job_id=spec["job_id"], tensorboard=str(folder / "tensorboard"))


def _run_lesson_fix(spec: dict[str, Any], status: _StatusFile, folder: Path) -> dict[str, Any]:
    from labels import Ledger
    from workbench import lessons

    cfg, reason = lessons.quick_settings() if spec.get("quick") else (None, None)
    # The job already holds the model's lock, so it runs the unlocked part of the fix.
    return lessons.retrain_with_reasons(
        config=cfg, reason=reason, log=_stage_logger(status), created_by=spec.get("created_by") or "learn page",
        publishing=_defer_cancel, ledger=Ledger(spec.get("ledger_url")),
    )


# What each kind runs inside the job process: (spec, status file, job folder) -> result.
_RUNNERS: dict[str, Callable[[dict[str, Any], _StatusFile, Path], dict[str, Any]]] = {
    RETRAIN: _run_retrain,
    LESSON_FIX_SHORTCUT: _run_lesson_fix,
}


def _runner(spec: dict[str, Any]) -> Callable[[dict[str, Any], _StatusFile, Path], dict[str, Any]]:
    kind = _kind_of(spec)
    if kind not in _RUNNERS:
        raise WorkbenchError(f"job {spec.get('job_id')} has an unknown kind {kind!r}.")
    return _RUNNERS[kind]


def _finish(folder: Path, status: _StatusFile | None, **changes: Any) -> None:
    if status is None:
        status = _StatusFile(folder)
    status.update(epoch_running=False, finished_at=_now(), **changes)


def run(folder: Path) -> int:
    """The job process's main: run the spec, always leave a final state and release the lock."""
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    with contextlib.suppress(OSError):
        os.nice(JOB_NICENESS)  # training takes every core it gets; the pages must stay responsive
    spec = _read_json(folder / "spec.json")
    job_id, model = spec["job_id"], spec["model"]
    status: _StatusFile | None = None
    try:
        _await_lock(model, job_id)
        status = _StatusFile(folder)  # the starter wrote it before handing the lock over
        status.update(state=RUNNING, stage="loading", pid=os.getpid(), pid_start=process_start_time(os.getpid()),
                      started_at=_now())
        result = _runner(spec)(spec, status, folder)
        _finish(folder, status, state=DONE, stage="done", result=result, eta_seconds=0,
                cancel_ignored=_cancel_state["requested"])
        return 0
    except JobCancelled:
        _finish(folder, status, state=CANCELLED, stage="cancelled", error="cancelled by the user", eta_seconds=None)
        return 1
    except WorkbenchError as exc:
        _finish(folder, status, state=FAILED, stage="failed", error=str(exc))
        return 2
    except Exception as exc:  # noqa: BLE001 - the job must record every failure before it ends
        traceback.print_exc()
        if _cancel_state["requested"]:  # the cancel surfaced as another error somewhere below us
            _finish(folder, status, state=CANCELLED, stage="cancelled", error="cancelled by the user",
                    eta_seconds=None)
            return 1
        _finish(folder, status, state=FAILED, stage="failed", error=f"{type(exc).__name__}: {exc}")
        return 3
    finally:
        with contextlib.suppress(Exception):
            release_lock(model, job_id)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] != "run":
        print("usage: python -m workbench.jobs run <job folder>", file=sys.stderr)
        return 2
    return run(Path(args[1]))


if __name__ == "__main__":
    sys.exit(main())
