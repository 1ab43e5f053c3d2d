"""Background retrain jobs: real subprocesses, really cancelled and really killed."""
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

import sample_data
from commandline import cli
from foundation.errors import WorkbenchError
from labels import Ledger
from models import store
from workbench import jobs, retrain

# Long enough that the job is surely still training when the test acts on it.
SLOW = {"head_epochs": 200, "finetune_epochs": 0, "patience": 200, "limit": 32}


def _wait_for(predicate, timeout: float = 120.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _training(job_id: str) -> dict:
    status = jobs.read_status(job_id)
    return status if status["state"] == "running" and status.get("epoch", 0) >= 1 else None


def _one_correction() -> None:
    shipped = sample_data.load("digits", "train_noisy")
    label = shipped.classes[(int(shipped.y[0]) + 1) % 10]
    Ledger().record("digits", shipped.ids[0], label, expected_event_id=None, annotator="alice")


def test_process_liveness_uses_pid_and_start_time():
    me = os.getpid()
    assert jobs.pid_alive(me, jobs.process_start_time(me))
    assert not jobs.pid_alive(me, "1")  # same pid, other start time: the pid was reused
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not jobs.pid_alive(child.pid)


def test_a_dead_or_garbled_lock_is_stale_and_cleared(workspace):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    jobs.lock_path("digits").write_text(json.dumps({"job_id": "gone", "pid": child.pid, "pid_start": "1"}))
    assert jobs.active_job("digits") is None
    record = jobs.acquire_lock("digits", "mine", created_by="test")
    assert record["pid"] == os.getpid()
    with pytest.raises(WorkbenchError, match="already running \\(job mine"):
        jobs.acquire_lock("digits", "other", created_by="test")
    jobs.release_lock("digits", "mine")
    jobs.lock_path("digits").write_text("{not json")
    jobs.acquire_lock("digits", "again", created_by="test")  # garbage is stale too
    jobs.release_lock("digits", "again")
    assert not jobs.lock_path("digits").exists()


def test_concurrent_retrain_is_refused_and_cancel_stops_the_job(workspace):
    job_id = jobs.start_retrain("digits", quick=True, config_overrides=SLOW, created_by="alice")
    with pytest.raises(WorkbenchError, match=f"a retrain of 'digits' is already running \\(job {job_id}"):
        jobs.start_retrain("digits", quick=True)
    assert [j["job_id"] for j in jobs.list_jobs("digits")] == [job_id]  # the refused one left nothing
    assert jobs.active_job("digits")["job_id"] == job_id
    # Once running, its SIGTERM handler is installed: cancelling needs no epoch to have started.
    _wait_for(lambda: jobs.read_status(job_id)["state"] == "running", what="the job to run")
    jobs.cancel(job_id)
    final = jobs.wait(job_id, timeout=60)
    assert final["state"] == "cancelled"
    assert not jobs.lock_path("digits").exists()
    assert store.all_version_ids("digits") == ["v1"]
    with pytest.raises(WorkbenchError, match="is not running"):
        jobs.cancel(job_id)


@pytest.mark.slow
def test_kill_9_mid_training_leaves_everything_intact(workspace):
    _one_correction()
    events_before = Ledger().count()
    job_id = jobs.start_retrain("digits", quick=True, config_overrides=SLOW)
    status = _wait_for(lambda: _training(job_id), what="the first epoch")
    os.kill(status["pid"], signal.SIGKILL)
    _wait_for(lambda: jobs.read_status(job_id)["state"] == "failed", 30, "the death to be noticed")

    died = jobs.read_status(job_id)
    assert died["died"] and "killed or crashed" in died["error"]
    assert store.all_version_ids("digits") == ["v1"] and store.current_version("digits") == "v1"
    assert store.load("digits").version == "v1"  # sha256 verified on load
    assert Ledger().count() == events_before
    assert jobs.lock_path("digits").exists() and jobs.active_job("digits") is None  # stale, not live
    # A half-written version a killed job could leave: hidden, and removed with the stale lock.
    leftover = workspace / "models" / "digits" / "versions" / ".staging-killed"
    leftover.mkdir(parents=True)
    (leftover / "manifest.json").write_text("{}")
    assert store.all_version_ids("digits") == ["v1"]

    # The next start clears the stale lock and runs to the end in its own process.
    job_id = jobs.start_retrain("digits", quick=True, created_by="bob")
    assert not leftover.exists()
    final = jobs.wait(job_id, timeout=300)
    assert final["state"] == "done", final.get("error")
    assert final["pid"] != os.getpid()
    result = final["result"]
    assert (result["parent"], result["candidate"], result["labels_changed"]) == ("v1", "v2", 1)
    assert [row["epoch"] for row in final["history"]] == [1, 2] and final["total_epochs"] == 2
    assert all("val_accuracy" in row and "loss" in row for row in final["history"])
    assert any(Path(result["tensorboard"]).rglob("events.out.tfevents*"))
    assert store.manifest("digits", "v2").created_by == "bob"
    assert not jobs.lock_path("digits").exists()


def test_a_retrain_job_starts_from_the_recipe_recorded_by_the_version_in_use(workspace):
    recorded = retrain.recipe_config(store.manifest("digits"))
    config = jobs._train_config({"model": "digits", "config": {"head_epochs": 1, "image_filters": [4, 8]}})
    assert config == replace(recorded, head_epochs=1, image_filters=(4, 8))
    assert config.finetune_epochs == store.manifest("digits").training.config["finetune_epochs"]


def test_unknown_model_and_settings_are_refused_before_starting(workspace):
    with pytest.raises(WorkbenchError, match="no model named"):
        jobs.start_retrain("nothing")
    with pytest.raises(WorkbenchError, match="unknown training setting"):
        jobs.start_retrain("digits", config_overrides={"epochz": 3})
    assert jobs.list_jobs() == [] and not jobs.lock_path("digits").exists()


@pytest.mark.slow
def test_retrain_command_prints_progress_and_json(workspace):
    exe = Path(sys.executable).parent / "workbench"
    done = subprocess.run([str(exe), "retrain", "--model", "headlines", "--quick", "--json"], capture_output=True,
                          text=True, env={**os.environ, "WORKBENCH_HOME": str(workspace)}, timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result) >= {"model", "candidate", "parent", "labels_changed", "data_snapshot_hash", "before",
                           "after", "seconds", "job_id", "tensorboard"}
    assert (result["model"], result["candidate"], result["parent"]) == ("headlines", "v2", "v1")
    assert "epoch 1/2" in done.stderr and "epoch 2/2" in done.stderr


def test_unknown_kind_is_refused_before_starting(workspace):
    with pytest.raises(WorkbenchError, match="unknown job kind 'nap'"):
        jobs.start("nap", "digits")
    assert jobs.list_jobs() == [] and not jobs.lock_path("digits").exists()
    assert set(jobs.KINDS) == set(jobs._RUNNERS)  # every kind a starter accepts has a runner


def test_the_runner_dispatches_on_kind():
    assert jobs._runner({"kind": jobs.RETRAIN}) is jobs._run_retrain
    assert jobs._runner({}) is jobs._run_retrain  # a spec from before kinds existed
    assert jobs._runner({"kind": jobs.LESSON_FIX_SHORTCUT}) is jobs._run_lesson_fix
    with pytest.raises(WorkbenchError, match="unknown kind 'nap'"):
        jobs._runner({"kind": "nap", "job_id": "odd"})


def test_jobs_cli_lists_and_reports(workspace, capsys):
    assert cli.main(["jobs", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert cli.main(["jobs", "status", "no-such-job"]) == 2
    assert "there is no job 'no-such-job'" in capsys.readouterr().err
    assert cli.main(["jobs", "status", "../etc"]) == 2
    assert "is not a job id" in capsys.readouterr().err


@pytest.mark.parametrize("job_id", ["../x", "a/b", "job\x00", "j" * 500, "", "..", ".locks"])
def test_hostile_job_ids_are_refused_before_they_become_paths(workspace, capsys, job_id):
    for call in (jobs.read_status, jobs.cancel, jobs.job_dir):
        with pytest.raises(WorkbenchError, match="is not a job id; run `workbench jobs list`"):
            call(job_id)
    if job_id:  # argparse cannot receive a NUL byte from a shell, but main() takes any string
        for command in ("status", "cancel"):
            assert cli.main(["jobs", command, job_id]) == 2
            captured = capsys.readouterr()
            lines = [line for line in captured.err.splitlines() if line.strip()]
            assert captured.out == "" and len(lines) == 1 and lines[0].startswith("error: ")
            assert "is not a job id" in lines[0]
