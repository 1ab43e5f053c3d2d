"""The Learn page's lesson data: exact Shapley games, guess scores, the cue remover, the shortcut fix."""
from __future__ import annotations

import time

import numpy as np
import pytest

from foundation import access
from foundation.access import Identity
from foundation.errors import WorkbenchError
from foundation.types import Modality
from models import store
from models.manifest import InputSpec, Lineage, Manifest, Metrics, Training
from workbench import jobs, lessons


def test_exact_shapley_values_add_up_and_split_fairly():
    # v(S) = 1 if players 0 and 1 are both in S, plus 0.5 for player 2; player 3 never matters.
    def value(members):
        return float({0, 1} <= members) + 0.5 * (2 in members)

    from itertools import combinations

    table = {frozenset(c): value(set(c)) for size in range(5) for c in combinations(range(4), size)}
    phi = lessons.exact_shapley(table, 4)
    np.testing.assert_allclose(phi, [0.5, 0.5, 0.5, 0.0])
    assert phi.sum() == pytest.approx(table[frozenset(range(4))] - table[frozenset()])


def test_cells_and_image_guess_score():
    values = np.zeros((8, 8))
    values[:2, :2] = 3.0  # cell 0 of a 4x4 grid holds 3/4 of the mass
    values[6:, 6:] = 1.0  # cell 15 holds 1/4
    shares = lessons.cell_shares(values, 4)
    assert shares[0] == pytest.approx(0.75) and shares[15] == pytest.approx(0.25) and shares.sum() == pytest.approx(1)
    assert lessons.top_set(shares) == [0]
    score = lessons.image_guess_score(values, [0, 1], 4)
    assert score.mass_share == pytest.approx(0.75)
    assert score.chance == pytest.approx(2 / 16)
    assert score.iou == pytest.approx(1 / 2)  # picks {0, 1} vs top {0}
    assert "Great guess" in score.message("cells")
    assert lessons.image_guess_score(values, [5], 4).mass_share == 0.0
    with pytest.raises(ValueError):
        lessons.image_guess_score(values, [16], 4)


def test_text_guess_score_uses_positive_evidence():
    score = lessons.text_guess_score([0.6, -1.0, 0.3, 0.1], [0])
    assert score.mass_share == pytest.approx(0.6) and score.top == (0,)
    assert score.chance == pytest.approx(0.25) and score.iou == 1.0


def test_remove_cue_paints_the_mark_out():
    from sample_data.shortcut import CUE_COLOUR, add_cue

    image = np.full((1, 64, 64, 3), 120, dtype=np.uint8)
    marked, cues = add_cue(image, np.array([True]))
    assert (marked[0][cues[0]] == CUE_COLOUR).all()
    cleaned = lessons.remove_cue(marked, cues)
    assert np.abs(cleaned.astype(int) - 120).max() <= 2  # back to the flat background
    np.testing.assert_array_equal(lessons.remove_cue(image, np.zeros((1, 64, 64), bool)), image)


def test_draw_grid_outlines_highlighted_cells():
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    plain = lessons.draw_grid(image, 4, labels=False)
    assert (plain[16, :] == 255).all() and (plain[:, 16] == 255).all()
    outlined = lessons.draw_grid(image, 4, highlight=[0], labels=False)
    assert (outlined[2, 2] == (255, 220, 0)).all() and (plain[2, 2] == 0).all()
    assert image.max() == 0  # the input is untouched


@pytest.mark.slow
def test_fix_shortcut_publishes_a_candidate_version(workspace):
    if "shapes-shortcut" not in store.model_names():
        pytest.skip("the shapes-shortcut sample model is not in models/zoo")
    from workbench import samples

    current = store.current_version("shapes-shortcut")
    result = lessons.fix_shortcut(config=samples.quick_config())
    assert result["candidate"] in lessons.fixed_versions()
    assert store.current_version("shapes-shortcut") == current  # a candidate, not promoted
    manifest = store.manifest("shapes-shortcut", result["candidate"])
    assert manifest.lesson_fix and manifest.lineage.parent == current
    assert set(result["after"]) == {"test", "test_nocue"}


def test_the_lesson_fix_manifest_keeps_the_parents_description_and_marks_the_fix():
    parent = Manifest(
        modality=Modality.IMAGE, classes=("circle", "square"), dataset="shapes-shortcut", recipe="transfer",
        input=InputSpec(type="image", height=64, width=64, channels=3), intended_use="teaching",
        gradcam_layer="backbone/conv4", metrics=Metrics.from_dict({"test": {"accuracy": 0.97}}),
        lineage=Lineage(sha256="ab" * 32, data_hash="cd" * 32), training=Training(recipe="transfer"),
    )
    after = {"test": {"accuracy": 0.9, "n": 10}, "test_nocue": {"accuracy": 0.88, "n": 10}}
    fixed = lessons.lesson_fix_manifest(parent, "v1", after, {"seed": 0}, 1.5, "alice")
    written, inherited = fixed.to_dict(), parent.to_dict()
    for key in ("modality", "classes", "input", "dataset", "recipe", "intended_use", "gradcam_layer"):
        assert written[key] == inherited[key]
    assert written["lesson_fix"] and (written["parent"], written["labels_changed"]) == ("v1", 0)
    assert written["metrics"] == after
    assert written["parent_metrics"] == {"test": {"accuracy": 0.97}, "test_nocue": {}}  # never measured: {}
    assert (written["created_as"], written["created_by"]) == ("candidate", "alice")
    assert written["training"] == {"recipe": "transfer (digits backbone) on cleaned data", "config": {"seed": 0},
                                   "seconds": 1.5, "command": "python -m workbench.lessons fix-shortcut"}
    assert "sha256" not in written and "data_hash" not in written  # the parent's file and data are not this one's
    assert Manifest.from_dict(written) == fixed


def test_fix_status_view_maps_the_job_states_onto_the_pages_three():
    assert lessons.fix_status_view({"state": jobs.QUEUED, "stage": "starting"}) == {"state": "running",
                                                                                    "stage": "starting"}
    assert lessons.fix_status_view({"state": jobs.RUNNING})["state"] == "running"
    assert lessons.fix_status_view({"state": jobs.DONE, "result": {"candidate": "v2"}})["result"] == {"candidate": "v2"}
    cancelled = lessons.fix_status_view({"state": jobs.CANCELLED, "error": "cancelled by the user"})
    assert cancelled == {"state": "failed", "error": "cancelled by the user"}
    assert lessons.fix_status_view({"state": jobs.FAILED})["state"] == "failed"


def test_fix_job_is_a_job_of_the_one_runner_and_can_be_cancelled(workspace):
    if "shapes-shortcut" not in store.model_names():
        pytest.skip("the shapes-shortcut sample model is not in models/zoo")
    assert lessons.read_fix_status() is None
    started = lessons.start_fix_job(quick=True)
    job_id = started["job_id"]
    assert started["state"] == "running" and started["kind"] == jobs.LESSON_FIX_SHORTCUT
    assert jobs.active_job("shapes-shortcut")["job_id"] == job_id  # it holds the model's lock
    assert [j["job_id"] for j in jobs.list_jobs(kind=jobs.LESSON_FIX_SHORTCUT)] == [job_id]
    assert jobs.latest_job("shapes-shortcut") is None  # the Retrain page's last retrain: there is none
    with pytest.raises(WorkbenchError, match=f"already running \\(job {job_id}"):
        jobs.start_retrain("shapes-shortcut", quick=True)
    deadline = time.monotonic() + 120
    while jobs.read_status(job_id)["state"] != jobs.RUNNING and time.monotonic() < deadline:
        time.sleep(0.1)
    jobs.cancel(job_id)
    assert jobs.wait(job_id, timeout=60)["state"] == jobs.CANCELLED
    status = lessons.read_fix_status()
    assert status["job_id"] == job_id and status["state"] == "failed" and "cancelled" in status["error"]
    assert not jobs.lock_path("shapes-shortcut").exists()
    assert lessons.fixed_versions() == []


@pytest.mark.slow
def test_fix_job_runs_in_the_background_and_reports(workspace):
    if "shapes-shortcut" not in store.model_names():
        pytest.skip("the shapes-shortcut sample model is not in models/zoo")
    started = lessons.start_fix_job(quick=True)
    assert started["state"] == "running" and lessons.read_fix_status()["state"] == "running"
    with pytest.raises(Exception, match="already being retrained"):
        lessons.start_fix_job(quick=True)
    deadline = time.monotonic() + 240
    status = lessons.read_fix_status()
    while status["state"] == "running" and time.monotonic() < deadline:
        time.sleep(1)
        status = lessons.read_fix_status()
    assert status["state"] == "done", status
    assert status["result"]["candidate"] in lessons.fixed_versions()


def test_the_lesson_fix_publishes_a_version_so_it_needs_a_maintainer(workspace):
    viewer = Identity(subject="oidc|vic", email="vic@example.org", name="Vic", role=access.VIEWER, signed_in=True)
    with pytest.raises(access.AccessDenied, match="vic@example.org is a viewer; retraining a model needs the maintainer role"):
        lessons.start_fix_job(quick=True, actor=viewer)
    assert jobs.list_jobs(kind=jobs.LESSON_FIX_SHORTCUT) == []  # nothing started
    assert not jobs.lock_path(lessons.SHORTCUT_MODEL).exists()
