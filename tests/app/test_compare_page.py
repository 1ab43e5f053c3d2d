"""AppTest of the Compare versions page: metrics, confusion difference, fixed/broken examples,
old and new evidence on the corrected examples, and Promote / Roll back / Discard."""
from __future__ import annotations

import pytest

import sample_data
from labels import Ledger
from models import store, versions
from tests.app.conftest import start_app
from workbench import retrain, samples

PAGE = "pages/compare_versions.py"


def _correct(dataset: str, positions: list[int]) -> dict[str, str]:
    shipped = sample_data.load(dataset, "train_noisy")
    changed = {}
    for i in positions:
        label = shipped.classes[(int(shipped.y[i]) + 1) % len(shipped.classes)]
        Ledger().record(dataset, shipped.ids[i], label, expected_event_id=None, annotator="alice")
        changed[shipped.ids[i]] = label
    return changed


def _page(model: str):
    at = start_app(PAGE, any_model=model, annotator="carol")
    assert not at.exception, at.exception
    return at


def test_image_versions_side_by_side_then_promote_and_roll_back(workspace):
    changed = _correct("digits", [0, 1])
    retrain.retrain("digits", config=samples.quick_config(), ledger=Ledger())
    at = _page("digits")
    assert (at.selectbox(key="old_digits").value, at.selectbox(key="new_digits").value) == ("v1", "v2")
    assert any(m.label.startswith("Test accuracy v2 vs v1") for m in at.metric)
    table = at.dataframe[0].value
    assert list(table.columns) == ["class", "metric", "v1", "v2", "change"] and len(table) == 1 + 10 * 3
    assert len(at.get("plotly_chart")) == 1  # the confusion-matrix difference
    assert any(b.label.startswith("⬇️ Download report") for b in at.get("download_button"))
    assert any(m.value.startswith("**Fixed by v2**") for m in at.markdown)
    assert any(m.value.startswith("**Broken by v2**") for m in at.markdown)
    # Evidence: each corrected example explained by both versions for its corrected label.
    for eid, label in changed.items():
        assert any(eid in m.value and f"to **{label}**" in m.value for m in at.markdown)
    captions = [c for image in at.get("image") for c in image.captions]
    for version in ("v1", "v2"):
        assert sum(c.startswith(f"{version}: P(") for c in captions) == len(changed)

    at.button(key="compare_✅ Promote v2").click().run()
    assert not at.exception, at.exception
    assert store.current_version("digits") == "v2"
    assert versions.history("digits")[-1]["by"] == "carol"
    assert "Promote v2: done." in at.success[0].value
    at.button(key="compare_↩️ Roll back to v1").click().run()
    assert not at.exception, at.exception
    assert store.current_version("digits") == "v1"


def test_text_evidence_and_discard(workspace):
    changed = _correct("headlines", [0])
    retrain.retrain("headlines", config=samples.quick_config(), ledger=Ledger())
    at = _page("headlines")
    (eid,) = changed
    tokens = [h for h in at.get("html")]
    assert len(tokens) == 2 and all("wb-token" in h.proto.body for h in tokens)  # old and new attributions
    text = sample_data.load("headlines", "train_noisy").x[0]
    first_word = text.split()[0].lower().strip(".,'\"")
    assert all(first_word in h.proto.body.lower() for h in tokens)
    assert at.dataframe  # metrics table; fixed/broken lists are tables for text

    at.button(key="trust_headlines_v2").click().run()
    assert not at.exception, at.exception
    assert any("similarity with only the top layer randomised" in m.value for m in at.markdown)

    at.button(key="compare_🗑️ Discard v2").click().run()
    assert not at.exception, at.exception
    assert store.all_version_ids("headlines") == ["v1"]
    assert any("single version" in i.value for i in at.info)


def test_a_single_version_needs_a_retrain_first(workspace):
    at = _page("shapes")
    assert any("has a single version" in i.value for i in at.info)


@pytest.mark.slow
def test_reason_marks_before_and_after(workspace):
    """A version retrained with 'not a reason' marks: the page measures both versions inside the marks."""
    from workbench import api, lessons

    model = api.load_model("shapes-shortcut")
    lessons.mark_not_a_reason(Ledger(), lessons.mark_candidates(model, Ledger(), n=3, pool=10))
    config, reason = lessons.quick_settings()
    lessons.fix_shortcut(config=config, reason=reason)
    at = _page("shapes-shortcut")
    assert "Right for the right reasons? Attribution inside marked regions" in [h.value for h in at.subheader]
    tables = [t.value for t in at.dataframe]
    groups = next(t for t in tables if "examples" in t.columns)
    assert list(groups["n"])[0] == 3 and groups["examples"].iloc[0] == "marked (train)"
    assert groups["examples"].iloc[1] == "held-out: test with the cue"
    accuracy = next(t for t in tables if "accuracy on" in t.columns)
    assert list(accuracy["accuracy on"]) == ["test", "test_nocue"] and list(accuracy.columns)[1:] == ["v1", "v2"]
