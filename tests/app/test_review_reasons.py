"""Issue 17 on the Review page (AppTest, real app, real ledger): mark words of a text example and a
box on an image example as reasons, see them shown, undo them; a stale save and a viewer are refused."""
from __future__ import annotations

import json

from foundation import access
from labels import Ledger
from labels.reasons import current_reason_marks
from tests.app.conftest import start_app
from ui.reason_widgets import key, selected_boxes

PAGE = "pages/review.py"


def _review_app(model: str, annotator: str = "alice"):
    at = start_app(PAGE, any_model=model, annotator=annotator)
    assert not at.exception, at.exception
    return at, at.session_state["review_current"]["example_id"]


def _mark_table(at) -> list[dict]:
    for frame in at.dataframe:
        value = frame.value
        if list(value.columns) == ["mark", "where", "by"]:
            return value.to_dict(orient="records")
    return []


def test_mark_words_of_a_text_example_then_undo(workspace):
    at, shown = _review_app("headlines")
    words = at.multiselect(key=key("reason_words", shown))
    tokens = [option.split("  ·  ")[0] for option in words.options]
    assert len(tokens) >= 3
    words.set_value([0, 2]).run()
    at.button(key=key("reason_save_words", shown)).click().run()
    assert not at.exception, at.exception

    marks = current_reason_marks(Ledger(), "headlines")[shown]
    assert [(m.kind, m.words, m.annotator) for m in marks] == [("not_reason", (0, 2), "alice")]
    assert _mark_table(at) == [{"mark": "✖ not a reason", "where": f"{tokens[0]} {tokens[2]}", "by": "alice"}]
    assert any("alice marked 2 words as not a reason" in s.value for s in at.success)
    assert at.session_state["review_current"]["example_id"] == shown  # marking does not move on
    assert Ledger().latest_event("headlines", shown) is None  # nor decide the label

    # A second mark, "the reason" this time, then undo removes only it.
    at.radio(key=key("reason_kind", shown)).set_value("reason").run()
    at.multiselect(key=key("reason_words", shown)).set_value([1]).run()
    at.button(key=key("reason_save_words", shown)).click().run()
    assert [m.kind for m in current_reason_marks(Ledger(), "headlines")[shown]] == ["not_reason", "reason"]
    at.button(key=key("reason_undo", shown)).click().run()
    assert not at.exception, at.exception
    assert [m.kind for m in current_reason_marks(Ledger(), "headlines")[shown]] == ["not_reason"]
    at.button(key=key("reason_undo", shown)).click().run()
    assert shown not in current_reason_marks(Ledger(), "headlines")
    assert _mark_table(at) == [] and at.button(key=key("reason_undo", shown)).disabled
    audit = next(f.value for f in at.dataframe if "mark" in f.value.columns and "action" in f.value.columns)
    assert list(audit["action"]) == ["undo", "undo", "mark", "mark"]  # the History panel keeps every event
    assert [e.action for e in Ledger().reason_history("headlines", shown)] == ["undo", "undo", "mark", "mark"]


def test_mark_a_box_on_an_image_by_numbers_then_undo(workspace):
    at, shown = _review_app("digits")
    assert at.number_input(key=key("reason_bottom", shown)).max == 64  # the digits model reads 64x64 pictures
    at.radio(key=key("reason_kind", shown)).set_value("reason").run()
    for side, value in (("top", 1), ("left", 2), ("bottom", 5), ("right", 7)):
        at.number_input(key=key(f"reason_{side}", shown)).set_value(value).run()
    at.button(key=key("reason_save_box", shown)).click().run()
    assert not at.exception, at.exception

    marks = current_reason_marks(Ledger(), "digits")[shown]
    assert [(m.kind, m.boxes) for m in marks] == [("reason", ((1, 2, 5, 7),))]
    assert _mark_table(at) == [{"mark": "✔ the reason", "where": "(1, 2, 5, 7)", "by": "alice"}]
    # Drawn on the picture: a rectangle from the pixel edges (pixel j spans j-0.5 .. j+0.5).
    chart = next(c for c in at.get("plotly_chart") if c.proto.id and "reason_plot" in c.proto.id)
    shapes = json.loads(chart.proto.spec)["layout"]["shapes"]
    assert [(s["x0"], s["y0"], s["x1"], s["y1"]) for s in shapes] == [(1.5, 0.5, 6.5, 4.5)]

    at.button(key=key("reason_undo", shown)).click().run()
    assert not at.exception, at.exception
    assert shown not in current_reason_marks(Ledger(), "digits")
    chart = next(c for c in at.get("plotly_chart") if c.proto.id and "reason_plot" in c.proto.id)
    assert not json.loads(chart.proto.spec)["layout"].get("shapes")


def test_a_mark_saved_by_someone_else_meanwhile_is_reported_not_stacked_on(workspace):
    at, shown = _review_app("digits")
    Ledger().mark_reason("digits", shown, "not_reason", boxes=[(0, 0, 2, 2)], annotator="bob", expected_event_id=None)
    at.button(key=key("reason_save_box", shown)).click().run()
    assert not at.exception, at.exception
    assert any("bob marked 1 box as not a reason" in e.value and "save again" in e.value for e in at.error)
    assert [m.annotator for m in current_reason_marks(Ledger(), "digits")[shown]] == ["bob"]
    at.button(key=key("reason_save_box", shown)).click().run()  # now having seen bob's mark
    assert [m.annotator for m in current_reason_marks(Ledger(), "digits")[shown]] == ["bob", "alice"]


def test_a_viewer_cannot_mark(workspace, tmp_path, monkeypatch):
    roles = tmp_path / "roles.toml"
    roles.write_text('default = "viewer"\n')
    monkeypatch.setenv(access.ROLES_ENV, str(roles))
    monkeypatch.setenv(access.OPERATOR_ENV, "olga")
    at, shown = _review_app("digits")
    assert at.button(key=key("reason_save_box", shown)).disabled
    assert at.button(key=key("reason_undo", shown)).disabled
    assert any("correcting labels needs the annotator role" in c.value for c in at.caption)


def test_the_box_selection_payload_maps_to_input_pixels():
    # Streamlit 1.67's selection state for selection_mode="box" (x and y in the figure's data units).
    event = {"selection": {"points": [], "point_indices": [], "lasso": [], "box": [
        {"xref": "x", "yref": "y", "x": [5.6, 1.2], "y": [0.4, 3.1]},
        {"xref": "x", "yref": "y", "x": [40, 50], "y": [1, 2]},  # off the picture: dropped
    ]}}
    assert selected_boxes(event, 8, 8) == [(0, 1, 4, 7)]
    assert selected_boxes({"selection": {"box": []}}, 8, 8) == []
    assert selected_boxes(None, 8, 8) == []
