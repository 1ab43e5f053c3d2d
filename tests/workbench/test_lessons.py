"""The Learn page's lesson data: exact Shapley games, guess scores, marking the reason and the shortcut fix."""
from __future__ import annotations

import time

import numpy as np
import pytest

from foundation import access
from foundation.access import Identity
from foundation.errors import WorkbenchError
from models import store
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


def test_draw_grid_outlines_highlighted_cells():
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    plain = lessons.draw_grid(image, 4, labels=False)
    assert (plain[16, :] == 255).all() and (plain[:, 16] == 255).all()
    outlined = lessons.draw_grid(image, 4, highlight=[0], labels=False)
    assert (outlined[2, 2] == (255, 220, 0)).all() and (plain[2, 2] == 0).all()
    assert image.max() == 0  # the input is untouched


def _mark_a_few(n: int = 4) -> list:
    """Mark the corner on `n` of the first cued training pictures (inside a quick run's subset)."""
    from labels import Ledger
    from workbench import api

    model = api.load_model("shapes-shortcut")
    candidates = lessons.mark_candidates(model, Ledger(), n=n, pool=10)
    assert lessons.mark_not_a_reason(Ledger(), candidates) == n
    return candidates


@pytest.mark.slow
def test_marking_candidates_ranks_by_the_corner_and_skips_marked_ones(workspace):
    from labels import Ledger
    from sample_data import load
    from workbench import api, simulate_reason

    model = api.load_model("shapes-shortcut")
    train = load("shapes-shortcut", "train")
    candidates = lessons.mark_candidates(model, Ledger(), n=4, pool=10)
    assert len(candidates) == 4
    shares = [c.cue_share for c in candidates]
    assert shares == sorted(shares, reverse=True) and shares[0] > 0.05  # the model leans on the 2 % corner
    row = {str(eid): i for i, eid in enumerate(train.ids)}
    for candidate in candidates:
        mask = train.cue_masks[row[candidate.example_id]]
        assert mask.any() and candidate.box == simulate_reason.bounding_box(mask)
        assert candidate.label == train.classes[int(train.y[row[candidate.example_id]])]
    assert lessons.mark_not_a_reason(Ledger(), candidates, annotator="teacher") == 4
    assert lessons.marked_examples(Ledger()) == {c.example_id for c in candidates}
    assert lessons.mark_not_a_reason(Ledger(), candidates) == 0  # already marked: nothing twice
    again = lessons.mark_candidates(model, Ledger(), n=4, pool=10)
    assert not {c.example_id for c in again} & {c.example_id for c in candidates}
    assert all(row[c.example_id] < 96 for c in candidates)  # inside a quick run's subset (QUICK_CONFIG.limit)


def test_the_fix_refuses_without_marks(workspace):
    with pytest.raises(WorkbenchError, match="no example is marked yet"):
        lessons.retrain_with_reasons()
    assert lessons.fixed_versions() == []


@pytest.mark.slow
def test_fix_shortcut_with_marks_publishes_a_reason_corrected_candidate(workspace):
    _mark_a_few()
    current = store.current_version("shapes-shortcut")
    config, reason = lessons.quick_settings()
    result = lessons.fix_shortcut(config=config, reason=reason)
    assert result["candidate"] in lessons.fixed_versions() and result["marked"] == 4
    assert store.current_version("shapes-shortcut") == current  # a candidate, not promoted
    manifest = store.manifest("shapes-shortcut", result["candidate"])
    assert manifest.training.recipe == "reason_fine_tune" and manifest.lineage.parent == current
    assert manifest.training.config["reason"]["marked_examples"] == 4
    assert set(result["after"]) == set(result["before"]) == {"test", "test_nocue"}


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
    _mark_a_few(1)
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
    _mark_a_few(2)
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
    assert status["result"]["candidate"] in lessons.fixed_versions() and status["result"]["marked"] == 2


def test_the_lesson_fix_publishes_a_version_so_it_needs_a_maintainer(workspace):
    viewer = Identity(subject="oidc|vic", email="vic@example.org", name="Vic", role=access.VIEWER, signed_in=True)
    with pytest.raises(access.AccessDenied, match="vic@example.org is a viewer; retraining a model needs the maintainer role"):
        lessons.start_fix_job(quick=True, actor=viewer)
    assert jobs.list_jobs(kind=jobs.LESSON_FIX_SHORTCUT) == []  # nothing started
    assert not jobs.lock_path(lessons.SHORTCUT_MODEL).exists()
