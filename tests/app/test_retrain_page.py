"""AppTest of the Retrain page: a real background job started, followed, promoted; a running
job found again from the workspace and cancelled."""
from __future__ import annotations

import time

import pytest

import sample_data
from labels import Ledger
from models import store
from tests.app.conftest import start_app
from workbench import jobs

PAGE = "pages/retrain.py"


def _correct(n: int) -> None:
    shipped = sample_data.load("digits", "train_noisy")
    for i in range(n):
        label = shipped.classes[(int(shipped.y[i]) + 1) % 10]
        Ledger().record("digits", shipped.ids[i], label, expected_event_id=None, annotator="alice")


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _rerun(at):
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.mark.slow
def test_start_follow_and_promote(workspace):
    _correct(2)
    at = start_app(PAGE, any_model="digits", annotator="alice")
    assert not at.exception, at.exception
    assert at.title[0].value.endswith("Retrain")
    metrics = _metrics(at)
    assert metrics["Labels corrected in the ledger"] == "2"
    assert metrics["Corrections the version in use has not learned"] == "2"

    at.toggle(key="retrain_quick").set_value(True)
    at.button(key="retrain_start").click()
    _rerun(at)
    job = jobs.latest_job("digits")
    assert job is not None and job["created_by"] == "alice"
    assert any(h.value == "Retraining…" for h in at.subheader)  # live progress, not a blocked page
    assert at.button(key=f"cancel_{job['job_id']}")
    final = jobs.wait(job["job_id"], timeout=300)
    assert final["state"] == "done", final.get("error")

    _rerun(at)
    assert any(h.value == "Result: digits v2" for h in at.subheader)
    assert _metrics(at)["Labels changed"] == "2"
    assert at.get("download_button"), "the model card can be downloaded"
    assert any("# Model card: digits v2" in m.value for m in at.markdown)
    at.button(key="retrain_✅ Promote v2").click()
    _rerun(at)
    assert store.current_version("digits") == "v2"
    # Picked up without a restart: the page and the sidebar read the pointer on every run.
    assert "version in use **v2**" in at.markdown[0].value
    assert _metrics(at)["Corrections the version in use has not learned"] == "0"
    # AppTest drops app.py's sidebar after switch_page, so read it on the default page, in
    # this same process (the model cache is process-wide, as in a running server).
    home = start_app(None, image_model="digits")
    assert any("Version in use:** v2" in c.value for c in home.sidebar.caption)


def test_running_job_is_found_again_and_cancelled(workspace):
    slow = {"head_epochs": 200, "finetune_epochs": 0, "patience": 200, "limit": 32}
    job_id = jobs.start_retrain("digits", quick=True, config_overrides=slow, created_by="bob")
    deadline = time.monotonic() + 120
    while jobs.read_status(job_id)["state"] != "running" and time.monotonic() < deadline:
        time.sleep(0.1)

    # A fresh session (nothing in session_state) discovers the job from the workspace.
    at = start_app(PAGE, any_model="digits")
    assert not at.exception, at.exception
    assert any(h.value == "Retraining…" for h in at.subheader)
    assert all(b.key != "retrain_start" for b in at.button)  # no second start while one runs
    at.button(key=f"cancel_{job_id}").click()
    _rerun(at)
    assert jobs.wait(job_id, timeout=60)["state"] == "cancelled"
    _rerun(at)
    assert any("was cancelled" in i.value for i in at.info)
    assert store.all_version_ids("digits") == ["v1"]
