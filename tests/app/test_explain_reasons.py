"""Issue 17 on the Explain pages (AppTest, real app, real ledger): a dataset sample gets the Review
page's folded "Mark the reason" panel below its explanation, and a mark saved there is the very
ledger event the Review page reads (same dataset name, same example id); an upload or typed text
gets one caption instead; a viewer cannot mark."""
from __future__ import annotations

from foundation import access
from labels import Ledger
from labels.reasons import current_reason_marks
from tests.app.conftest import start_app
from ui.reason_widgets import key
from workbench import datasets

IMAGE_PAGE = "pages/explain_image.py"
TEXT_PAGE = "pages/explain_text.py"
FAST_TEXT = {"text_shap_max_evals": 120, "text_lime_num_samples": 500}


def _expanders(at) -> list[str]:
    return [e.label for e in at.expander]


def _captions(at) -> str:
    return " ".join(c.value for c in at.caption)


def _image_app(**state):
    # The Grad-CAM tab only: the panel sits below whichever tab is open, and Grad-CAM is the quick one.
    at = start_app(IMAGE_PAGE, image_model="shapes", annotator="alice", **state)
    assert not at.exception, at.exception
    return at


def test_a_box_marked_on_explain_image_is_the_ledgers_event_for_that_example(workspace):
    at = _image_app(split_shapes="train", sample_index_shapes_train=3)
    shown = datasets.load("shapes", "train").ids[3]
    assert "✍️ Mark the reason (0 marks on this example)" in _expanders(at)
    assert "not learned from" not in _captions(at)  # a training example: its marks are learned from

    for side, value in (("top", 0), ("left", 0), ("bottom", 8), ("right", 8)):
        at.number_input(key=key(f"reason_{side}", shown)).set_value(value)
    at.button(key=key("reason_save_box", shown)).click().run()
    assert not at.exception, at.exception

    # Stored under the dataset and the example id the Review page uses: the same events.
    [event] = Ledger().reason_history("shapes", shown)
    assert (event.action, event.kind, event.boxes, event.annotator) == ("mark", "not_reason", ((0, 0, 8, 8),), "alice")
    assert [(m.kind, m.boxes) for m in current_reason_marks(Ledger(), "shapes")[shown]] == [("not_reason", ((0, 0, 8, 8),))]
    assert "✍️ Mark the reason (1 mark on this example)" in _expanders(at)
    assert any("alice marked 1 box as not a reason" in s.value for s in at.success)
    # A Review-page save that saw this event is accepted (one event sequence per example, not two).
    Ledger().mark_reason("shapes", shown, "reason", boxes=[(10, 10, 20, 20)], annotator="bob",
                         expected_event_id=event.id)
    at.run()
    assert "✍️ Mark the reason (2 marks on this example)" in _expanders(at)
    at.button(key=key("reason_undo", shown)).click().run()
    assert not at.exception, at.exception
    assert [m.annotator for m in current_reason_marks(Ledger(), "shapes")[shown]] == ["alice"]


def test_a_test_example_says_its_marks_are_not_learned_from(workspace):
    at = _image_app()
    shown = datasets.load("shapes", "test").ids[0]
    assert at.button(key=key("reason_save_box", shown))  # the panel is there, for the test example on screen
    assert "This is a test example: retraining learns from marks on training examples" in _captions(at)


def test_an_uploaded_image_gets_one_caption_not_a_panel(workspace):
    from pathlib import Path

    at = _image_app()
    at.radio(key="image_source").set_value("Upload an image").run()
    data = (Path(__file__).resolve().parents[2] / "sample_data" / "examples" / "shape_star.png").read_bytes()
    at.file_uploader(key="image_upload").set_value(("star.png", data, "image/png")).run()
    assert not at.exception, at.exception
    assert not [label for label in _expanders(at) if "Mark the reason" in label]
    notes = [c.value for c in at.caption if "Reason marks are kept for dataset examples only" in c.value]
    assert len(notes) == 1 and "Your model & data" in notes[0]


def test_words_marked_on_explain_text_are_the_ledgers_event_for_that_example(workspace):
    at = start_app(TEXT_PAGE, text_model="headlines", annotator="alice", text_split="train_noisy", text_sample_train_noisy=2,
                   **FAST_TEXT)
    assert not at.exception, at.exception
    assert "Sample (train_noisy split)" in [s.label for s in at.selectbox]
    data = datasets.load("headlines", "train_noisy")
    shown, words = data.ids[2], str(data.x[2]).split()
    picker = at.multiselect(key=key("reason_words", shown))
    assert [option.split("  ·  ")[0] for option in picker.options] == words[:len(picker.options)]
    picker.set_value([0, 1])
    at.button(key=key("reason_save_words", shown)).click().run()
    assert not at.exception, at.exception

    [event] = Ledger().reason_history("headlines", shown)
    assert (event.kind, event.words, event.annotator) == ("not_reason", (0, 1), "alice")
    assert "✍️ Mark the reason (1 mark on this example)" in _expanders(at)
    assert "not learned from" not in _captions(at)


def test_typed_text_gets_one_caption_not_a_panel(workspace):
    at = start_app(TEXT_PAGE, text_model="headlines", annotator="alice", **FAST_TEXT)
    at.radio(key="text_source").set_value("Type or paste text").run()
    assert not at.exception, at.exception
    assert not [label for label in _expanders(at) if "Mark the reason" in label]
    assert sum("Reason marks are kept for dataset examples only" in c.value for c in at.caption) == 1


def test_a_viewer_cannot_mark_on_explain(workspace, tmp_path, monkeypatch):
    roles = tmp_path / "roles.toml"
    roles.write_text('default = "viewer"\n')
    monkeypatch.setenv(access.ROLES_ENV, str(roles))
    monkeypatch.setenv(access.OPERATOR_ENV, "olga")
    at = _image_app()
    shown = datasets.load("shapes", "test").ids[0]
    assert at.button(key=key("reason_save_box", shown)).disabled
    assert at.button(key=key("reason_undo", shown)).disabled
    assert any("correcting labels needs the annotator role" in c.value for c in at.caption)


def test_signed_in_the_mark_carries_the_persons_identity(workspace, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.app.conftest import APP_PATH
    from tests.app.test_signed_in_review import ALICE, AUTH

    roles = tmp_path / "roles.toml"
    roles.write_text('default = "viewer"\n[users]\n"alice@example.org" = "annotator"\n')
    monkeypatch.setenv(access.ROLES_ENV, str(roles))
    at = AppTest.from_file(APP_PATH, default_timeout=180)
    at.secrets["auth"] = AUTH
    at.user = ALICE
    at.session_state["image_model"] = "shapes"
    at.run()
    at.switch_page(IMAGE_PAGE).run()
    assert not at.exception, at.exception
    shown = datasets.load("shapes", "test").ids[0]
    assert not at.button(key=key("reason_save_box", shown)).disabled  # no name box: the signed-in name is used
    at.button(key=key("reason_save_box", shown)).click().run()
    assert not at.exception, at.exception
    [event] = Ledger().reason_history("shapes", shown)
    assert (event.annotator, event.actor_email, event.actor_role) == ("Alice", "alice@example.org", "annotator")
