"""AppTest of the Review page: a correction saved with the annotator's name, undone, a stale
edit resolved, and the page without a name, in table mode and on a text model."""
from __future__ import annotations

from labels import Ledger
from tests.app.conftest import decision_button, start_app
from workbench import datasets

PAGE = "pages/review.py"


def _review_app(model: str, annotator: str = "alice"):
    at = start_app(PAGE, any_model=model, annotator=annotator)
    assert not at.exception, at.exception
    return at


def _shown(at) -> str:
    return at.session_state["review_current"]["example_id"]


def _original_label(dataset_name: str, example_id: str) -> str:
    dataset = datasets.load(dataset_name, "train_noisy")
    return dataset.classes[int(dataset.y[dataset.index_of(example_id)])]


def test_take_the_models_label_then_undo(workspace):
    at = _review_app("digits")
    assert at.title[0].value.endswith("Review labels")
    shown = _shown(at)
    original = _original_label("digits", shown)
    # The top of the queue is a deliberately flipped digit: the model disagrees with its label.
    assert shown in datasets.load("digits", "train_noisy").flipped_ids
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Given label"] == original
    predicted = metrics["Model's label (out-of-sample)"]
    assert predicted != original
    captions = " ".join(c.value for c in at.caption)
    assert f"Grad-CAM for the given label “{original}”" in captions
    assert f"Grad-CAM for the predicted label “{predicted}”" in captions
    assert any("0 of 1258 reviewed" in p.proto.text for p in at.get("progress"))
    # digits learned these examples' clean labels; the page says so and ranks with its noisy twin.
    assert any("ranked, and its maps drawn, with **digits-noisy**" in i.value for i in at.info)
    assert "Ranked with digits-noisy v1, trained on train_noisy: the labels under review" in captions

    decision_button(at, "review_take_model").click().run()
    assert not at.exception, at.exception
    event = Ledger().latest_event("digits", shown)
    assert (event.new_label, event.annotator, event.action) == (predicted, "alice", "set")
    assert (event.model_name, event.predicted_label) == ("digits-noisy", predicted)
    assert Ledger().current_label("digits", shown, original) == predicted
    assert _shown(at) != shown  # the next example is on screen
    assert "Saved:" in at.success[0].value
    assert any("1 of 1258 reviewed" in p.proto.text for p in at.get("progress"))

    at.button(key="review_undo").click().run()
    assert not at.exception, at.exception
    assert Ledger().current_label("digits", shown, original) == original
    assert Ledger().latest_event("digits", shown).action == "undo"
    assert _shown(at) == shown  # the undone example comes back
    assert "Undone:" in at.success[0].value


def test_stale_edit_shows_the_other_decision(workspace):
    at = _review_app("digits")
    shown = _shown(at)
    # Someone else decides on the same example while alice looks at it, for a third label.
    model_label = decision_button(at, "review_take_model").label.removeprefix("Take model's label (").removesuffix(")")
    bobs = next(c for c in "0123456789" if c != model_label)
    theirs = Ledger().record("digits", shown, bobs, expected_event_id=None, annotator="bob")
    decision_button(at, "review_take_model").click().run()
    assert not at.exception, at.exception
    warning = " ".join(w.value for w in at.warning)
    assert "bob" in warning and f"'{bobs}'" in warning
    assert Ledger().latest_event("digits", shown).id == theirs.id  # nothing overwritten
    labels = [b.label for b in at.button]
    assert "Keep theirs" in labels and "Apply mine anyway" in labels

    at.button(key="review_apply_mine").click().run()
    assert not at.exception, at.exception
    mine = Ledger().latest_event("digits", shown)
    assert mine.annotator == "alice" and mine.previous_label == bobs and mine.new_label == model_label
    assert _shown(at) != shown


def test_keep_theirs_moves_on_without_writing(workspace):
    at = _review_app("digits")
    shown = _shown(at)
    Ledger().record("digits", shown, "5", expected_event_id=None, annotator="bob")
    decision_button(at, "review_keep").click().run()
    at.button(key="review_keep_theirs").click().run()
    assert not at.exception, at.exception
    assert Ledger().latest_event("digits", shown).annotator == "bob"
    assert _shown(at) != shown


def test_without_a_name_nothing_can_be_saved(workspace):
    at = _review_app("digits", annotator="")
    assert any("Type your name in the sidebar" in w.value for w in at.warning)
    assert decision_button(at, "review_take_model").disabled
    assert decision_button(at, "review_keep").disabled
    assert decision_button(at, "review_apply_other").disabled
    assert not decision_button(at, "review_skip").disabled  # skipping saves nothing


def test_text_model_table_mode_and_ambiguous(workspace):
    at = _review_app("headlines")
    assert any("**headlines-noisy**" in i.value for i in at.info)
    shown = _shown(at)
    # Token attributions for both labels, as escaped HTML.
    assert len(at.get("html")) == 2
    decision_button(at, "review_ambiguous").click().run()
    assert not at.exception, at.exception
    assert Ledger().flags("headlines") == {shown: "ambiguous"}
    at.radio(key="review_mode").set_value("Table").run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value  # AppTest shows st.data_editor as a dataframe
    assert len(table) == 20 and table.columns[-1] == "new_label"
    assert shown not in set(table["example_id"])  # flagged: reviewed, so out of the queue
    at.button(key="review_table_save").click().run()
    assert not at.exception, at.exception
    assert any("No label was changed" in i.value for i in at.info)
