"""Compare versions' reason figures (issue 17): shares of Grad-CAM mass inside marked regions, per version."""
import numpy as np
import pytest

from labels import Ledger
from labels.reasons import NOT_REASON, REASON
from sample_data import load
from workbench import api, reason_effect


@pytest.fixture
def ledger(tmp_path):
    return Ledger(f"sqlite:///{tmp_path / 'labels.db'}")


def test_a_mask_over_everything_holds_all_the_mass_and_an_empty_one_none():
    model = api.load_model("shapes")
    test = load("shapes", "test")
    images, targets = [test.x[i] for i in range(4)], [int(test.y[i]) for i in range(4)]
    full = [np.ones(images[0].shape[:2], bool)] * 4
    empty = [np.zeros(images[0].shape[:2], bool)] * 4
    np.testing.assert_allclose(reason_effect.region_shares(model, images, targets, full), 1.0)
    np.testing.assert_allclose(reason_effect.region_shares(model, images, targets, empty), 0.0)
    left = np.zeros(images[0].shape[:2], bool)
    left[:, :32] = True
    halves = reason_effect.region_shares(model, images, targets, [left] * 4) \
        + reason_effect.region_shares(model, images, targets, [~left] * 4)
    np.testing.assert_allclose(halves, 1.0, atol=1e-6)  # the two halves share the mass between them


def test_only_not_a_reason_marks_in_force_make_the_marked_group(ledger):
    train = load("shapes-shortcut", "train")
    a, b, c = (str(train.ids[i]) for i in (3, 10, 20))
    ledger.mark_reason(train.name, a, NOT_REASON, boxes=[(0, 0, 4, 4)], annotator="ann", expected_event_id=None)
    seen = ledger.reason_history(train.name, a)[0].id
    ledger.mark_reason(train.name, a, NOT_REASON, boxes=[(60, 60, 64, 64)], annotator="ann", expected_event_id=seen)
    ledger.mark_reason(train.name, b, REASON, boxes=[(10, 10, 20, 20)], annotator="ann", expected_event_id=None)
    ledger.mark_reason(train.name, c, NOT_REASON, boxes=[(0, 0, 8, 8)], annotator="ann", expected_event_id=None)
    ledger.undo_reason(train.name, c, annotator="ann", expected_event_id=ledger.reason_history(train.name, c)[0].id)
    rows, masks = reason_effect.marked_examples(ledger, train)
    assert rows == [3]
    assert masks[0].sum() == 32 and masks[0][:4, :4].all() and masks[0][60:, 60:].all()


@pytest.mark.slow
def test_the_same_version_on_both_sides_changes_nothing(ledger):
    model = api.load_model("shapes-shortcut")
    train, test, nocue = (load("shapes-shortcut", s) for s in ("train", "test", "test_nocue"))
    empty = reason_effect.reason_effect(model, model, train, test, nocue, ledger)
    assert [g.group for g in empty.groups] == ["held-out: test with the cue"] and "No example" in empty.note
    cued = np.flatnonzero(train.cue_masks.any(axis=(1, 2)))[:3]
    for row in cued:
        box = tuple(int(v) for v in _box(train.cue_masks[row]))
        ledger.mark_reason(train.name, str(train.ids[row]), NOT_REASON, boxes=[box], annotator="ann",
                           expected_event_id=None)
    effect = reason_effect.reason_effect(model, model, train, test, nocue, ledger)
    marked, held_out = effect.groups
    assert (marked.n, effect.note) == (3, "")
    assert held_out.n == int(test.cue_masks.any(axis=(1, 2)).sum())
    for group in effect.groups:
        assert group.share_old == pytest.approx(group.share_new)
        assert 0 < group.area_share < 0.1 and 0 <= group.share_old <= 1
    # The shipped shortcut model leans on the cue: more of its map there than the cue's area.
    assert held_out.share_old > held_out.area_share
    (test_old, test_new), (nocue_old, nocue_new) = effect.accuracy["test"], effect.accuracy["test_nocue"]
    assert test_old == test_new and nocue_old == nocue_new and nocue_old < test_old


def _box(mask):
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return rows[0], cols[0], rows[-1] + 1, cols[-1] + 1
