"""Widgets of the Review page: the audit, queue filters, one-at-a-time review and the table editor.

Decisions are taken in button callbacks whose arguments were fixed when the example was
shown, so a click always applies to the example the reviewer saw, with the ledger event id
read at that moment (`expected_event_id`). If someone else changed the example since, the
ledger refuses the write and the page shows their decision with "Keep theirs" / "Apply mine
anyway".
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from explainers import registry
from foundation import access
from foundation.errors import WorkbenchError
from foundation.types import Modality
from labels import Ledger, StaleEditError, queue
from labels.decisions import CHOOSE, FLAG, KEEP, TAKE_MODEL, Decision, apply_decision
from labels.queue import AuditResult
from models import store
from ui import identity, kit, loaders, reason_widgets
from workbench import api, datasets, samples

PAGE_SIZE = 20
ORDER_TITLES = {"issue": "Likely label errors first", "uncertainty": "Most uncertain first (active learning)"}
SPLIT_TITLES = {"train_noisy": "train_noisy (shipped with flipped labels)", "train": "train"}

# Session-state keys (all prefixed, so other pages never collide with them).
AUDIT = "review_audit"
CURRENT = "review_current"
SKIPPED = "review_skipped"
UNDO = "review_undo_stack"
CONFLICT = "review_conflict"
FLASH = "review_flash"
OTHER_LABEL = "review_other_label"
TABLE_SNAPSHOT = "review_table_snapshot"
TABLE_VERSION = "review_table_version"


# --- choosing and computing --------------------------------------------------------------------


def choose_split(model: Any) -> tuple[str, str] | None:
    """(dataset name, split) to review: the model's own dataset, a training split of it."""
    name = model.info.dataset
    if name not in datasets.names():
        st.info(f"Model {model.name} does not name a dataset the workbench has, so there is "
                "nothing to review with it. Choose a sample model in the sidebar.")
        return None
    splits = [s for s in ("train_noisy", "train") if s in datasets.splits(name)]
    split = st.selectbox(f"Examples of {name} to review", splits, key="review_split",
                         format_func=lambda s: SPLIT_TITLES.get(s, s),
                         help="train_noisy is the training set with ~5% deliberately flipped labels.")
    return name, split


def review_model(model: Any, split: str) -> Any:
    """The model that ranks this split: a sample model's noisy twin where one is shipped.

    Says so on the page: the sample model learned the clean labels of these very examples,
    which would make the flipped ones look easier to find than they are with a real model."""
    name = samples.review_model_name(model.name, split, store.model_names())
    if name == model.name:
        return model
    st.info(f"**{model.name}** learned from the clean labels of these very examples, so it would find the "
            f"flipped ones too easily. This queue is ranked, and its maps drawn, with **{name}**: the same "
            f"recipe trained on {split}, the labels under review, as your own model would be. "
            f"Choose {name} in the sidebar to retrain it from your corrections.", icon="ℹ️")
    return loaders.current_model(name)


def load_audit(model: Any, dataset: Any) -> AuditResult:
    """The audit for this model version and split: once per session (and cached on disk)."""
    key = (model.name, model.version, dataset.name, dataset.split)
    stored = st.session_state.get(AUDIT)
    if stored is not None and stored[0] == key:
        return stored[1]
    bar = st.progress(0.0, text="Ranking the examples…")
    with st.spinner("Auditing labels: features, cross-validated head, cleanlab ranking…"):
        result = queue.audit(model, dataset, progress=lambda message, f: bar.progress(
            float(min(max(f, 0.0), 1.0)), text=message))
    bar.empty()
    st.session_state[AUDIT] = (key, result)
    return result


def rerank_button() -> None:
    st.button("Re-rank with the latest corrections", key="review_rerank",
              on_click=lambda: st.session_state.pop(AUDIT, None),
              help="Recompute the out-of-sample probabilities with the labels as corrected so far.")


def audit_caption(result: AuditResult) -> None:
    parts = [f"{result.counts['n']} examples, {result.k_folds}-fold out-of-sample head on the "
             f"model's '{result.feature_layer}' features",
             f"cleanlab flags {result.counts['label_issues']} as likely label errors"]
    if result.recall_at_2x is not None:
        parts.append(f"{result.recall_at_2x:.0%} of the {result.n_flipped} deliberately flipped labels "
                     f"are in the top {2 * result.n_flipped}")
    st.caption(" · ".join(parts) + ". " + _training_note(result))


def _training_note(result: AuditResult) -> str:
    """How the figures above were obtained: which labels the ranking model learned from."""
    trained_on = store.manifest(result.model_name, result.model_version).lineage.train_split or "train"
    if trained_on == result.split:
        return (f"Ranked with {result.model_name} {result.model_version}, trained on {trained_on}: the labels "
                "under review, flipped ones included, as in real use.")
    return (f"Ranked with {result.model_name} {result.model_version}, trained on {trained_on}; if that holds "
            "these examples with their correct labels, the flipped ones are easier to find than they would be "
            "for a model trained on the labels under review.")


def queue_filters(result: AuditResult) -> dict[str, Any]:
    classes = list(result.classes)
    c1, c2, c3, c4 = st.columns([2, 2, 2, 2])
    order = c1.radio("Order", list(ORDER_TITLES), format_func=ORDER_TITLES.get, key="review_order")
    given = c2.multiselect("Given label", classes, key="review_given")
    predicted = c3.multiselect("Predicted label", classes, key="review_predicted")
    min_score = c4.slider("Minimum score", 0.0, 1.0, 0.0, 0.05, key="review_min_score",
                          help="Issue order: 1 − label quality. Uncertainty order: 1 − margin of the top two classes.")
    return {"order": order, "given": given, "predicted": predicted, "min_score": min_score}


def show_progress(result: AuditResult, latest: dict, filters: dict[str, Any]) -> None:
    full = queue.review_queue(result, latest, include_reviewed=True, **filters)
    done = int(full["reviewed"].sum())
    total = len(full)
    st.progress(done / total if total else 1.0, text=f"{done} of {total} reviewed")


def flash() -> None:
    message = st.session_state.pop(FLASH, None)
    if message:
        kind, text = message
        (st.success if kind == "success" else st.error)(text)


# --- one example at a time ---------------------------------------------------------------------


def review_one(model: Any, dataset: Any, result: AuditResult, ledger: Ledger, latest: dict,
               filters: dict[str, Any], annotator: str) -> None:
    full = queue.review_queue(result, latest, include_reviewed=True, **filters)
    row = _current_row(result, full)
    if row is None:
        st.success("Nothing left to review with these filters.")
        if st.session_state.get(SKIPPED):
            st.button("Show skipped examples again", key="review_unskip",
                      on_click=lambda: st.session_state.pop(SKIPPED, None))
        _undo_button(result.dataset, annotator)
        return
    pointer = st.session_state[CURRENT]
    context = _context(model, result, row, pointer["seen"], annotator)
    waiting = int((~full["reviewed"] & ~full["example_id"].isin(st.session_state.get(SKIPPED, []))).sum())
    # The slow part first: while it runs, the page still shows the previous example whole (heading,
    # maps and buttons together), so a click then is a decision on what the reviewer saw.
    item = dataset.x[int(row["index"])]
    maps = _gradcam_maps(model, item, row)
    st.subheader(f"{row['example_id']}  ·  {waiting} waiting")
    _show_example(model, item, result, row, maps)
    # Issue 17: the reason, not only the label. Folded unless the example carries marks, so the
    # decision buttons stay where a labeler's eyes and keys expect them.
    reason_widgets.folded_panel(model, api.prepare_input(model, item), result.dataset, row["example_id"],
                                annotator, ledger)
    conflict = st.session_state.get(CONFLICT)
    if conflict and conflict["context"]["example_id"] == row["example_id"]:
        _conflict_panel(conflict)
    else:
        _decision_buttons(result, row, context, annotator)
    with st.expander("History of this example"):
        _history(ledger, result.dataset, row["example_id"])
        reason_widgets.history(ledger, result.dataset, row["example_id"])


def _current_row(result: AuditResult, full: pd.DataFrame) -> dict[str, Any] | None:
    """The example on screen: it stays until the reviewer acts on it, then the next unreviewed one."""
    where = [result.dataset, result.split]
    skipped = set(st.session_state.get(SKIPPED, []))
    pointer = st.session_state.get(CURRENT)
    ids = set(full["example_id"])
    if pointer and (pointer["where"] != where or pointer["example_id"] not in ids
                    or pointer["example_id"] in skipped):
        pointer = None
    if pointer is None:
        waiting = full[~full["reviewed"] & ~full["example_id"].isin(skipped)]
        if waiting.empty:
            st.session_state[CURRENT] = None
            return None
        first = waiting.iloc[0]
        # The event id read now is what a decision on this example will expect to still be latest.
        pointer = {"where": where, "example_id": first["example_id"], "seen": _event_id(first["latest_event_id"])}
        st.session_state[CURRENT] = pointer
    row = full[full["example_id"] == pointer["example_id"]].iloc[0]
    return _plain(row)


def open_ledger() -> Ledger:
    """The label ledger (the workspace's, or the database the settings name)."""
    return Ledger()


def _show_example(model: Any, item: Any, result: AuditResult, row: dict[str, Any],
                  maps: list[tuple[str, str, Any]] | None) -> None:
    # The label may have changed since the ranking: read its probability from the stored row.
    row["prob_current"] = float(result.probabilities[int(row["index"]), result.classes.index(row["current_label"])])
    left, right = st.columns([1, 2], gap="large")
    with left:
        if model.modality is Modality.IMAGE:
            st.image(kit.display_image(item), width=256)
        else:
            st.text(str(item))
    with right:
        a, b = st.columns(2)
        a.metric("Given label", row["current_label"])
        b.metric("Model's label (out-of-sample)", row["predicted_label"],
                 f"{row['confidence']:.0%} confident", delta_color="off")
        notes = [f"out-of-sample probability of the given label: {row['prob_current']:.1%}",
                 f"issue rank {row['issue_rank']}"]
        if row["is_label_issue"]:
            notes.append("cleanlab: likely label error")
        notes.append(f"the full model says {row['model_label']} ({row['model_confidence']:.0%})")
        if row["current_label"] != row["original_label"]:
            notes.append(f"shipped label: {row['original_label']}")
        st.caption(" · ".join(notes))
    _explanations(model, item, maps)


def _gradcam_maps(model: Any, item: Any, row: dict[str, Any]) -> list[tuple[str, str, Any]] | None:
    """Grad-CAM (images) or Grad-CAM token attribution (text) for the given and the predicted label,
    as (role, label, explanation); None when the model has no convolution layer."""
    if not registry.get("gradcam").supports(model):
        return None
    labels = [("given", row["current_label"]), ("predicted", row["predicted_label"])]
    if labels[0][1] == labels[1][1]:
        labels = labels[:1]
    with st.spinner("Computing Grad-CAM…"):
        explanations = api.explain(model, "gradcam", [item] * len(labels),
                                   [model.classes.index(label) for _, label in labels])
    return [(role, label, explanation) for (role, label), explanation in zip(labels, explanations)]


def _explanations(model: Any, item: Any, maps: list[tuple[str, str, Any]] | None) -> None:
    if maps is None:
        st.info("This model has no convolution layer, so Grad-CAM cannot show where it looked.")
        return
    model_input = api.prepare_input(model, item)
    for column, (role, label, explanation) in zip(st.columns(2), maps):
        with column:
            st.caption(f"Grad-CAM for the {role} label “{label}”")
            # Grad-CAM values are evidence for the label; words are escaped by the kit.
            kit.show_attribution(explanation, model_input, width=256)


def decision_key(name: str, row: dict[str, Any]) -> str:
    """A decision button's widget key, bound to the example it decides on: a click on a button still
    showing the previous example (a rerun in progress) then decides on that example, never on the
    one the server has moved on to."""
    return f"{name}:{row['example_id']}"


def _decision_buttons(result: AuditResult, row: dict[str, Any], context: dict[str, Any], annotator: str) -> None:
    refused = identity.refusal(access.LABEL)
    locked = not annotator or refused is not None
    if refused:
        st.warning(refused, icon="🔒")
    elif locked:
        st.warning("Type your name in the sidebar to save decisions; it is stored with each one.")
    c = st.columns(5)
    c[0].button("Keep label", key=decision_key("review_keep", row), shortcut="K", disabled=locked,
                on_click=_decide, args=(KEEP, context), help="Confirm the given label (K)")
    c[1].button(f"Take model's label ({row['predicted_label']})", key=decision_key("review_take_model", row),
                shortcut="M",
                type="primary", disabled=locked or row["predicted_label"] == row["current_label"],
                on_click=_decide, args=(TAKE_MODEL, context), help="Use the model's label (M)")
    c[2].button("Ambiguous", key=decision_key("review_ambiguous", row), shortcut="A", disabled=locked,
                on_click=_decide, args=(FLAG, context), help="Flag as ambiguous; the label stays (A)")
    c[3].button("Skip", key=decision_key("review_skip", row), shortcut="S", on_click=_skip,
                args=(row["example_id"],),
                help="Leave it for later in this session (S)")
    with c[4]:
        _undo_button(result.dataset, annotator)
    others = [label for label in result.classes if label != row["current_label"]]
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    left.selectbox("Choose another label", others, key=OTHER_LABEL)
    right.button("Apply", key=decision_key("review_apply_other", row), disabled=locked, on_click=_decide,
                 args=(CHOOSE, context))


def _undo_button(dataset: str, annotator: str) -> None:
    stack = st.session_state.get(UNDO, {}).get(dataset, [])
    st.button("Undo last", key="review_undo", shortcut="U",
              disabled=not stack or not annotator or identity.refusal(access.LABEL) is not None,
              on_click=_undo, args=(dataset, annotator), help="Undo your last decision (U)")


def _conflict_panel(conflict: dict[str, Any]) -> None:
    st.warning(conflict["message"])
    a, b = st.columns(2)
    a.button("Keep theirs", key="review_keep_theirs", on_click=_keep_theirs)
    b.button("Apply mine anyway", key="review_apply_mine", type="primary", on_click=_apply_mine)


def _history(ledger: Ledger, dataset: str, example_id: str) -> None:
    events = ledger.history(dataset, example_id)
    if not events:
        st.caption("No decisions recorded yet.")
        return
    st.dataframe(pd.DataFrame([{
        "when (UTC)": event.created_at.strftime("%Y-%m-%d %H:%M:%S"), "who": event.annotator,
        "e-mail": event.actor_email or "", "role": event.actor_role or "", "action": event.action, "from": event.previous_label or "(original)",
        "to": event.new_label or "(original)", "model said": event.predicted_label,
    } for event in events]), hide_index=True)


# --- callbacks (run before the next script run, with the arguments fixed at render time) ----------


def _context(model: Any, result: AuditResult, row: dict[str, Any], seen: int | None, annotator: str) -> dict[str, Any]:
    return {
        "dataset": result.dataset, "split": result.split, "classes": list(result.classes),
        "model_name": model.name, "model_version": model.version, "annotator": annotator, "seen": seen,
        "example_id": row["example_id"],
        "row": {key: row[key] for key in ("example_id", "current_label", "predicted_label", "confidence")},
    }


def _decide(kind: str, context: dict[str, Any], expected: int | None = None) -> None:
    label = st.session_state.get(OTHER_LABEL) if kind == CHOOSE else None
    decision = Decision(kind, label)
    seen = context["seen"] if expected is None else expected
    try:
        event = apply_decision(Ledger(), context["dataset"], context["row"], decision,
                               classes=context["classes"], annotator=context["annotator"],
                               expected_event_id=seen, model_name=context["model_name"],
                               model_version=context["model_version"], actor=identity.current())
    except StaleEditError as err:
        st.session_state[CONFLICT] = {"context": context, "kind": kind, "label": label, "message": str(err),
                                      "latest": err.latest.id if err.latest else None}
        return
    except WorkbenchError as err:
        st.session_state[FLASH] = ("error", str(err))
        return
    st.session_state.pop(CONFLICT, None)
    st.session_state.setdefault(UNDO, {}).setdefault(context["dataset"], []).append(
        {"example_id": context["example_id"], "event_id": event.id, "where": [context["dataset"], context["split"]]})
    st.session_state[CURRENT] = None
    st.session_state[FLASH] = ("success", f"Saved: {decision.describe(context['row'])}. Undo with U.")


def _skip(example_id: str) -> None:
    st.session_state.setdefault(SKIPPED, []).append(example_id)
    st.session_state[CURRENT] = None


def _keep_theirs() -> None:
    st.session_state.pop(CONFLICT, None)
    st.session_state[CURRENT] = None


def _apply_mine() -> None:
    conflict = st.session_state.pop(CONFLICT, None)
    if conflict:
        if conflict["label"] is not None:
            st.session_state[OTHER_LABEL] = conflict["label"]
        _decide(conflict["kind"], conflict["context"], expected=conflict["latest"])


def _undo(dataset: str, annotator: str) -> None:
    stack = st.session_state.get(UNDO, {}).get(dataset, [])
    if not stack:
        return
    entry = stack.pop()
    try:
        event = Ledger().undo(dataset, entry["example_id"], annotator=annotator,
                              expected_event_id=entry["event_id"], actor=identity.current())
    except WorkbenchError as err:  # StaleEditError included: someone decided after us
        st.session_state[FLASH] = ("error", f"Could not undo: {err}")
        return
    skipped = st.session_state.get(SKIPPED, [])
    if entry["example_id"] in skipped:
        skipped.remove(entry["example_id"])
    # Show the example again, expecting the undo event as its latest.
    st.session_state[CURRENT] = {"where": entry["where"], "example_id": entry["example_id"], "seen": event.id}
    st.session_state.pop(CONFLICT, None)
    restored = event.new_label or "its original label"
    st.session_state[FLASH] = ("success", f"Undone: {entry['example_id']} is back to {restored}.")


# --- table mode ----------------------------------------------------------------------------------


def review_table(model: Any, result: AuditResult, ledger: Ledger, latest: dict,
                 filters: dict[str, Any], annotator: str) -> None:
    include = st.checkbox("Include reviewed examples", key="review_include_reviewed")
    rows = queue.review_queue(result, latest, include_reviewed=include, **filters)
    pages = max(1, math.ceil(len(rows) / PAGE_SIZE))
    if st.session_state.get("review_table_page", 1) > pages:
        st.session_state["review_table_page"] = 1
    page = int(st.number_input(f"Page (of {pages})", 1, pages, key="review_table_page"))
    snapshot = _table_snapshot(result, rows, filters, include, page)
    live = queue.review_queue(result, latest, order=filters["order"], include_reviewed=True).set_index("example_id")
    frame = live.loc[snapshot["ids"], ["current_label", "predicted_label", "confidence", "score", "reviewed"]]
    frame = frame.reset_index()
    frame["new_label"] = pd.Series([None] * len(frame), dtype=object)
    if frame.empty:
        st.info("No examples match these filters.")
        return
    edited = st.data_editor(
        frame, hide_index=True, key=f"review_table_{snapshot['version']}", num_rows="fixed",
        disabled=[c for c in frame.columns if c != "new_label"],
        column_config={
            "example_id": st.column_config.TextColumn("Example"),
            "current_label": st.column_config.TextColumn("Given"),
            "predicted_label": st.column_config.TextColumn("Predicted"),
            "confidence": st.column_config.NumberColumn("Confidence", format="%.2f"),
            "score": st.column_config.NumberColumn("Score", format="%.3f"),
            "reviewed": st.column_config.CheckboxColumn("Reviewed"),
            "new_label": st.column_config.SelectboxColumn("New label", options=list(result.classes),
                                                          help="Leave empty for no change."),
        },
    )
    refused = identity.refusal(access.LABEL)
    if refused:
        st.warning(refused, icon="🔒")
    if st.button("Save changes", key="review_table_save", type="primary", disabled=not annotator or bool(refused)):
        _save_table(model, result, edited, snapshot, live, annotator)


def _table_snapshot(result: AuditResult, rows: pd.DataFrame, filters: dict[str, Any],
                    include: bool, page: int) -> dict[str, Any]:
    """The rows of this table page, frozen until saved or until the page/filters change,
    so edits stay on their rows and conflicts are checked against what was shown."""
    view = repr((result.model_name, result.model_version, result.dataset, result.split,
                 sorted(filters.items()), include, page))
    snapshot = st.session_state.get(TABLE_SNAPSHOT)
    if snapshot is None or snapshot["view"] != view:
        shown = rows.iloc[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
        version = st.session_state.get(TABLE_VERSION, 0) + 1
        st.session_state[TABLE_VERSION] = version
        snapshot = {"view": view, "version": version, "ids": list(shown["example_id"]),
                    "seen": {eid: _event_id(v) for eid, v in zip(shown["example_id"], shown["latest_event_id"])}}
        st.session_state[TABLE_SNAPSHOT] = snapshot
    return snapshot


def _save_table(model: Any, result: AuditResult, edited: pd.DataFrame, snapshot: dict[str, Any],
                live: pd.DataFrame, annotator: str) -> None:
    edits, problems = queue.validate_table_edits(edited.to_dict(orient="records"), result.classes,
                                                 snapshot["ids"])
    if problems:
        st.error("Nothing was saved:\n\n" + "\n".join(f"- {p}" for p in problems))
        return
    if not edits:
        st.info("No label was changed: pick a new label in the last column first.")
        return
    try:
        actor = identity.current()
        actor.require(access.LABEL)  # refused before the first row, not once per row
    except WorkbenchError as error:
        st.error(str(error), icon="🔒")
        return
    ledger = Ledger()
    saved, conflicts = [], []
    for edit in edits:
        row = {"example_id": edit.example_id, **_plain(live.loc[edit.example_id])}
        try:
            event = apply_decision(ledger, result.dataset, row, Decision(CHOOSE, edit.new_label),
                                   classes=result.classes, annotator=annotator,
                                   expected_event_id=snapshot["seen"].get(edit.example_id),
                                   model_name=model.name, model_version=model.version, actor=actor)
        except StaleEditError as err:
            conflicts.append(str(err))
            continue
        saved.append(edit.example_id)
        st.session_state.setdefault(UNDO, {}).setdefault(result.dataset, []).append(
            {"example_id": edit.example_id, "event_id": event.id, "where": [result.dataset, result.split]})
    message = f"Saved {len(saved)} of {len(edits)} label changes."
    if conflicts:
        message += " Not saved (changed by someone else since you opened the page; review them one at a time): " \
                   + " ".join(conflicts)
    st.session_state[FLASH] = ("success" if not conflicts else "error", message)
    st.session_state.pop(TABLE_SNAPSHOT, None)
    st.rerun()


# --- small helpers ----------------------------------------------------------------------------------


def _event_id(value: Any) -> int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return int(value)


def _plain(row: pd.Series) -> dict[str, Any]:
    """A table row as plain Python values (safe to keep in session state and callbacks)."""
    clean = {}
    for key, value in row.items():
        if isinstance(value, np.generic):
            value = value.item()
        clean[key] = value
    return clean
