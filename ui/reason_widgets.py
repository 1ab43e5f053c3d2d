"""Mark the reason (issue 17): next to an explanation, say where the model should not look
("not a reason") or where the evidence is ("the reason"), stored as reason marks in the ledger.

Images: drag a box on the picture (plotly's box selection, mapped to model-input pixels by
`labels.reasons.box_from_ranges`), or type the box as numbers (also for keyboard users); then
save. Texts: pick words. The marks in force are drawn on the picture / listed, with "Undo last
mark". Every button's key names the example (as the decision buttons' do, see
`review_widgets.decision_key`), and every callback gets the example and the reason event id read
when it was drawn, so a click always applies to the example the person saw, and a mark someone
else saved meanwhile is reported instead of silently stacked on (optimistic concurrency).
"""
from __future__ import annotations

import base64
import math
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from explainers import render
from foundation import access
from foundation.errors import WorkbenchError
from foundation.types import Modality
from labels import Ledger, StaleEditError
from labels import reasons
from ui import identity

FLASH = "reason_flash"
KIND_LABELS = {
    reasons.NOT_REASON: "Not a reason: the model should not rely on this",
    reasons.REASON: "The reason: the evidence is here",
}
# Drawn marks: the kind reads from the colour and the line (dashed = "not a reason"), not colour alone.
COLOURS = {reasons.NOT_REASON: "#d62728", reasons.REASON: "#2ca02c"}
DASHES = {reasons.NOT_REASON: "dash", reasons.REASON: "solid"}
CANVAS_PX = 320  # the marking picture's side on screen
GRID_POINTS = 48  # invisible selectable points per side, so plotly's box selection has a trace to select on


def key(name: str, example_id: str) -> str:
    """A widget key bound to the example (see `review_widgets.decision_key` for why)."""
    return f"{name}:{example_id}"


def marks_on(ledger: Ledger, dataset: str, example_id: str) -> int:
    """How many marks are in force on the example (the panel's title says it before it is opened)."""
    events = ledger.reason_history(dataset, example_id)
    return len(reasons.marks_in_force(reversed(events)).get(example_id, []))


def folded_panel(model: Any, model_input: Any, dataset: str, example_id: str, annotator: str,
                 ledger: Ledger | None = None, note: str | None = None) -> None:
    """`reason_panel` folded into an expander that says how many marks the example has (open when it
    has some), so the buttons around it (Review's decisions) stay where a person's eyes expect them.
    `note`: one caption above the panel (e.g. that marks on a test example are not learned from)."""
    ledger = ledger or Ledger()
    marked = marks_on(ledger, dataset, example_id)
    with st.expander(f"✍️ Mark the reason ({marked} mark{'s' if marked != 1 else ''} on this example)",
                     expanded=marked > 0):
        if note:
            st.caption(note)
        reason_panel(model, model_input, dataset, example_id, annotator, ledger)


def reason_panel(model: Any, model_input: Any, dataset: str, example_id: str, annotator: str,
                 ledger: Ledger | None = None) -> None:
    """The marking panel for one example; `model_input` is what the model reads (`api.prepare_input`)."""
    ledger = ledger or Ledger()
    events = ledger.reason_history(dataset, example_id)
    seen = events[0].id if events else None  # what a save or an undo expects to still be latest
    marks = reasons.marks_in_force(reversed(events)).get(example_id, [])
    refused = identity.refusal(access.LABEL)
    locked = not annotator or refused is not None
    context = {"dataset": dataset, "example_id": example_id, "seen": seen, "annotator": annotator}

    st.markdown("**Mark the reason** — is the model right for the right reason?")
    st.caption("Mark what the model should not rely on (a watermark, a corner mark, a name), or where the "
               "evidence really is. Marks are stored with your name and used when retraining with reasons.")
    _flash(example_id)
    if refused:
        st.caption(f"🔒 {refused}")
    elif not annotator:
        st.caption("Type your name in the sidebar to save marks.")
    st.radio("This mark says", list(KIND_LABELS), format_func=KIND_LABELS.get, horizontal=True,
             key=key("reason_kind", example_id), disabled=locked)
    if model.modality is Modality.IMAGE:
        _image_marking(model_input, marks, context, locked)
    else:
        _text_marking(str(model_input), marks, context, locked)


def _undo_button(marks: list[reasons.ReasonMark], context: dict[str, Any], locked: bool) -> None:
    st.button("Undo last mark", key=key("reason_undo", context["example_id"]), disabled=locked or not marks,
              on_click=_undo, args=(context,), help="Remove the newest mark on this example.")


# --- images ------------------------------------------------------------------------------------


def _image_marking(image: Any, marks: list[reasons.ReasonMark], context: dict[str, Any], locked: bool) -> None:
    height, width = int(image.shape[0]), int(image.shape[1])
    context = {**context, "height": height, "width": width}
    example_id = context["example_id"]
    left, right = st.columns([3, 2], gap="medium")
    with left:
        st.caption("Drag a box on the picture (box select), then save it.")
        # Keyed by the latest reason event too: after a save or an undo the chart is new, so a selection
        # already saved cannot be saved twice by a second click.
        event = st.plotly_chart(marking_figure(image, marks), key=key("reason_plot", f"{example_id}:{context['seen']}"),
                                on_select="rerun", selection_mode="box", width="content",
                                config={"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d"]})
        boxes = selected_boxes(event, height, width)
        if boxes:
            st.caption("Selected (top, left, bottom, right): " + ", ".join(str(b) for b in boxes))
        st.button(f"Save {len(boxes)} selected box{'es' if len(boxes) != 1 else ''}" if boxes else "Save selected box",
                  key=key("reason_save_selection", example_id), type="primary", disabled=locked or not boxes,
                  on_click=_save, args=({**context, "boxes": boxes},))
    with right:
        st.caption(f"…or give the box in input pixels ({height} × {width}; bottom and right are exclusive).")
        a, b = st.columns(2)
        a.number_input("Top", 0, height - 1, 0, key=key("reason_top", example_id), disabled=locked)
        b.number_input("Left", 0, width - 1, 0, key=key("reason_left", example_id), disabled=locked)
        a.number_input("Bottom", 1, height, max(1, height // 4), key=key("reason_bottom", example_id), disabled=locked)
        b.number_input("Right", 1, width, max(1, width // 4), key=key("reason_right", example_id), disabled=locked)
        st.button("Save box", key=key("reason_save_box", example_id), disabled=locked,
                  on_click=_save, args=({**context, "numbers": True},))
        _list_marks(marks, None)
        _undo_button(marks, context, locked)


def marking_figure(image: Any, marks: list[reasons.ReasonMark]) -> go.Figure:
    """The model input at its own pixel grid (pixel j centred on j), the marks in force drawn on it."""
    height, width = int(image.shape[0]), int(image.shape[1])
    source = "data:image/png;base64," + base64.b64encode(render.png_bytes(image)).decode("ascii")
    figure = go.Figure(go.Image(source=source, x0=0, y0=0, dx=1, dy=1, hoverinfo="skip"))
    # Plotly selects on traces with points; a sparse invisible grid makes box selection work on a picture.
    step = max(1, math.ceil(max(height, width) / GRID_POINTS))
    xs, ys = zip(*[(x, y) for y in range(0, height, step) for x in range(0, width, step)])
    figure.add_trace(go.Scatter(x=xs, y=ys, mode="markers", marker={"opacity": 0, "size": 4},
                                hoverinfo="skip", showlegend=False))
    for mark in marks:
        for top, left, bottom, right in mark.boxes:
            figure.add_shape(type="rect", x0=left - 0.5, x1=right - 0.5, y0=top - 0.5, y1=bottom - 0.5,
                             line={"color": COLOURS.get(mark.kind, "#444"), "width": 3,
                                   "dash": DASHES.get(mark.kind, "solid")})
    side = CANVAS_PX
    scale = side / max(height, width)
    figure.update_layout(width=int(width * scale) + 10, height=int(height * scale) + 10,
                         margin={"l": 5, "r": 5, "t": 5, "b": 5}, dragmode="select", showlegend=False)
    figure.update_xaxes(visible=False, range=[-0.5, width - 0.5], fixedrange=True)
    figure.update_yaxes(visible=False, range=[height - 0.5, -0.5], fixedrange=True, scaleanchor="x")
    return figure


def selected_boxes(event: Any, height: int, width: int) -> list[tuple[int, int, int, int]]:
    """Input-pixel boxes from the chart's selection state: {"selection": {"box": [{"x": [x0, x1],
    "y": [y0, y1], ...}]}} in Streamlit 1.67; selections that miss the picture are dropped."""
    try:
        drawn = event["selection"]["box"]
    except (KeyError, TypeError):
        return []
    boxes = []
    for box in drawn or []:
        found = reasons.box_from_ranges(box.get("x", ()), box.get("y", ()), height, width)
        if found is not None and found not in boxes:
            boxes.append(found)
    return boxes[:reasons.MAX_BOXES]


# --- texts -------------------------------------------------------------------------------------


def _text_marking(text: str, marks: list[reasons.ReasonMark], context: dict[str, Any], locked: bool) -> None:
    tokens = text.split()
    example_id = context["example_id"]
    st.multiselect("Words to mark", list(range(min(len(tokens), reasons.MAX_WORDS))),
                   format_func=lambda i: f"{tokens[i]}  ·  word {i + 1}", key=key("reason_words", example_id),
                   disabled=locked, placeholder="Pick the words", select_all=False,  # marking every word says nothing
                   help="Each word of the text, in order (numbered, so repeated words stay apart).")
    st.button("Save words", key=key("reason_save_words", example_id), type="primary", disabled=locked,
              on_click=_save, args=({**context, "words_from_widget": True},))
    _list_marks(marks, tokens)
    _undo_button(marks, context, locked)


def _list_marks(marks: list[reasons.ReasonMark], tokens: list[str] | None) -> None:
    if not marks:
        st.caption("No reason marks on this example yet.")
        return
    rows = []
    for mark in marks:
        if tokens is None:
            where = "; ".join(f"({t}, {l}, {b}, {r})" for t, l, b, r in mark.boxes)
        else:
            where = " ".join(reasons.marked_words(" ".join(tokens), mark.words))
        rows.append({"mark": "✖ not a reason" if mark.kind == reasons.NOT_REASON else "✔ the reason",
                     "where": where, "by": mark.annotator or ""})
    st.caption(f"{len(marks)} mark{'s' if len(marks) != 1 else ''} on this example"
               + (" (dashed red: not a reason, green: the reason)" if tokens is None else ""))
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def history(ledger: Ledger, dataset: str, example_id: str) -> None:
    """Every reason event of the example, newest first (marks, undos, imports), for the History panel."""
    events = ledger.reason_history(dataset, example_id)
    if not events:
        return
    st.caption("Reason marks")
    st.dataframe(pd.DataFrame([{
        "when (UTC)": event.created_at.strftime("%Y-%m-%d %H:%M:%S"), "who": event.annotator,
        "e-mail": event.actor_email or "", "role": event.actor_role or "", "action": event.action,
        "mark": reasons.KIND_TITLES.get(event.kind or "", "") if event.action != "undo" else f"removes #{event.supersedes}",
        "boxes": "; ".join(str(box) for box in event.boxes), "words": ", ".join(str(w) for w in event.words),
        "event": event.id,
    } for event in events]), hide_index=True)


# --- callbacks (run before the next script run, with the example fixed at render time) ------------


def _save(context: dict[str, Any]) -> None:
    example_id = context["example_id"]
    state = st.session_state
    kind = state.get(key("reason_kind", example_id), reasons.NOT_REASON)
    boxes: Any = context.get("boxes", ())
    words: Any = ()
    if context.get("numbers"):
        boxes = [tuple(int(state.get(key(f"reason_{side}", example_id), 0))
                       for side in ("top", "left", "bottom", "right"))]
    if context.get("words_from_widget"):
        words = list(state.get(key("reason_words", example_id), []))
    try:
        event = Ledger().mark_reason(context["dataset"], example_id, kind, boxes=boxes, words=words,
                                     annotator=context["annotator"], expected_event_id=context["seen"],
                                     actor=identity.current())
    except StaleEditError as err:
        state[FLASH] = (example_id, "error", f"Not saved: {err} The marks shown are now current; save again "
                                             "to add yours.")
        return
    except WorkbenchError as err:
        state[FLASH] = (example_id, "error", f"Not saved: {err}")
        return
    if context.get("words_from_widget"):
        state[key("reason_words", example_id)] = []
    state[FLASH] = (example_id, "success", f"Saved: {event.describe()}.")


def _undo(context: dict[str, Any]) -> None:
    try:
        Ledger().undo_reason(context["dataset"], context["example_id"], annotator=context["annotator"],
                             expected_event_id=context["seen"], actor=identity.current())
    except WorkbenchError as err:  # StaleEditError included: someone marked after we looked
        st.session_state[FLASH] = (context["example_id"], "error", f"Could not undo: {err}")
        return
    st.session_state[FLASH] = (context["example_id"], "success", "Removed the newest reason mark.")


def _flash(example_id: str) -> None:
    message = st.session_state.get(FLASH)
    if message and message[0] == example_id:
        st.session_state.pop(FLASH, None)
        (st.success if message[1] == "success" else st.error)(message[2])
