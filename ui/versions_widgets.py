"""Widgets of the Retrain and Compare versions pages: live job progress, results, version diffs."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from explainers import registry, render
from foundation import access
from foundation.errors import WorkbenchError
from foundation.escaping import markdown_literal
from foundation.types import Modality
from models import model_card, store, versions
from models.manifest import Manifest
from ui import identity, kit, loaders
from workbench import api, jobs, model_trust, snapshots

MAX_EXAMPLES = 12
MAX_EVIDENCE = 6


def actor() -> str:
    """Who is acting, as a name for the record: the signed-in person's name, else the sidebar's, else "app".
    (The core also stores the full identity: subject, e-mail, role.)"""
    if identity.sign_in_configured():
        try:
            return identity.current().name
        except WorkbenchError:
            return "app"
    return str(st.session_state.get("annotator", "")).strip() or "app"


# -- retrain: starting and following a job ---------------------------------------------------

def start_panel(name: str) -> None:
    """Settings (the version's own recipe by default) and the start button; a refusal is shown as the reason."""
    from workbench.retrain import recipe_config

    recipe = recipe_config(store.manifest(name))
    with st.expander("Training settings"):
        quick = st.toggle("Quick trial run (a few epochs on 96 examples)", key="retrain_quick",
                          help="For a smoke test of the whole loop; the candidate will be weak.")
        head = st.number_input("Epochs with the base frozen (at most)", 0, 200, recipe.head_epochs,
                               key=f"retrain_head_{name}", disabled=quick)
        tune = st.number_input("Epochs with the top of the base unfrozen (at most)", 0, 200, recipe.finetune_epochs,
                               key=f"retrain_tune_{name}", disabled=quick)
        st.caption("Defaults: the recipe the version in use was trained with. Early stopping on the "
                   f"validation split ends a phase after {recipe.patience} epochs without improvement.")
    refused = identity.refusal(access.RETRAIN)
    if refused:
        st.warning(refused, icon="🔒")
    if st.button("🔁 Start retraining", type="primary", key="retrain_start", disabled=refused is not None):
        overrides = {} if quick else {key: int(value) for key, value, default in
                                      (("head_epochs", head, recipe.head_epochs),
                                       ("finetune_epochs", tune, recipe.finetune_epochs)) if value != default}
        try:
            jobs.start_retrain(name, quick=quick, config_overrides=overrides, created_by=actor(),
                               actor=identity.current())
        except WorkbenchError as exc:
            st.error(str(exc), icon="⚠️")
            return
        st.rerun()


def _floor(history: Sequence[dict[str, Any]]) -> float:
    values = [row["val_accuracy"] for row in history if row.get("val_accuracy") is not None]
    return max(0.0, min(values, default=0.0) - 0.05)


def history_figure(history: Sequence[dict[str, Any]]) -> go.Figure:
    """Validation accuracy (left axis) and training loss (right axis) per epoch."""
    epochs = [row["epoch"] for row in history]
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=epochs, y=[row.get("val_accuracy") for row in history], name="validation accuracy",
                                mode="lines+markers", line=dict(color="#2471a3")))
    figure.add_trace(go.Scatter(x=epochs, y=[row.get("loss") for row in history], name="training loss",
                                mode="lines+markers", line=dict(color="#c0392b", dash="dot"), yaxis="y2"))
    figure.update_layout(
        height=280, margin=dict(l=10, r=10, t=10, b=10), legend=dict(orientation="h", y=-0.3),
        xaxis=dict(title="epoch", dtick=1),
        yaxis=dict(title="validation accuracy", tickformat=".0%", range=[_floor(history), 1.0]),
        yaxis2=dict(title="loss", overlaying="y", side="right", showgrid=False),
    )
    return figure


def _progress_body(status: dict[str, Any]) -> None:
    total, epoch = status.get("total_epochs") or 0, status.get("epoch") or 0
    st.progress(min(epoch / total, 1.0) if total else 0.0,
                text=f"Epoch {epoch} of at most {total}" if total else str(status.get("stage") or "starting…"))
    a, b, c, d = st.columns(4)
    a.metric("Epoch", f"{epoch}/{total}" if total else "–")
    b.metric("Loss", f"{status['loss']:.4f}" if status.get("loss") is not None else "–")
    c.metric("Validation accuracy", f"{status['val_accuracy']:.1%}" if status.get("val_accuracy") is not None else "–")
    eta = status.get("eta_seconds")
    d.metric("Time left (at most)", f"{eta:.0f} s" if eta is not None else "–",
             help="Early stopping may end the run sooner.")
    st.caption(f"Stage: {status.get('stage') or '–'} · job {status['job_id']} · started by "
               f"{markdown_literal(_started_by(status), one_line=True)} · TensorBoard logs: {status.get('tensorboard')}")
    if status.get("history"):
        st.plotly_chart(history_figure(status["history"]), width="stretch")


def _started_by(status: dict[str, Any]) -> str:
    """Who started the job: the recorded name, with e-mail and role where the job records them."""
    actor = status.get("actor") or {}
    extra = ", ".join(value for value in (actor.get("email"), actor.get("role")) if value)
    who = status.get("created_by") or actor.get("name") or "–"
    return f"{who} ({extra})" if extra else who


@st.fragment(run_every=1.0)
def live_progress(job_id: str) -> None:
    """Polls the job's status file every second; reruns the whole page when the job ends."""
    status = jobs.read_status(job_id)
    if jobs.is_finished(status):
        st.rerun()
    _progress_body(status)
    if st.button("⏹ Cancel", key=f"cancel_{job_id}"):
        try:
            jobs.cancel(job_id, actor=identity.current())
            st.info("Cancelling… the job stops at its next step and writes no version.")
        except WorkbenchError as exc:
            st.error(str(exc), icon="⚠️")


def _metric_delta(label: str, before: float | None, after: float | None, column: Any) -> None:
    if before is None or after is None:
        column.metric(label, "–")
        return
    column.metric(label, f"{after:.1%}", delta=f"{(after - before) * 100:+.1f} points")


def per_class_table(before: dict[str, Any], after: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for cls, new in after.get("per_class", {}).items():
        old = before.get("per_class", {}).get(cls, {})
        rows.append({"class": cls, "recall before": old.get("recall"), "recall after": new.get("recall"),
                     "F1 before": old.get("f1"), "F1 after": new.get("f1")})
    return pd.DataFrame(rows)


def finished_job(name: str, status: dict[str, Any]) -> None:
    """The last job's outcome: before/after metrics and Promote / Discard for its candidate."""
    if status["state"] == jobs.CANCELLED:
        st.info(f"The last retrain (job {status['job_id']}) was cancelled; no version was written.")
        return
    if status["state"] == jobs.FAILED:
        st.error(f"The last retrain (job {status['job_id']}) failed: {status.get('error')}", icon="⚠️")
        return
    result = status["result"]
    candidate = result["candidate"]
    st.subheader(f"Result: {model_card.md(name)} {candidate}")
    a, b, c = st.columns(3)
    _metric_delta("Test accuracy", result["before"].get("accuracy"), result["after"].get("accuracy"), a)
    b.metric("Labels changed", result["labels_changed"])
    c.metric("Seconds", f"{result['seconds']:.0f}")
    st.caption(f"Fine-tuned from {result['parent']} on data snapshot {result['data_snapshot_hash'][:12]}… "
               "Metrics are on the clean test split.")
    st.dataframe(per_class_table(result["before"], result["after"]), hide_index=True, width="stretch")
    try:
        state = versions.status(name, candidate)
    except WorkbenchError:
        st.info(f"{candidate} was discarded.")
        return
    if state == versions.CANDIDATE:
        version_actions(name, candidate, None, key="retrain")
    else:
        st.success(f"{candidate} is {'in use' if state == versions.CURRENT else 'no longer a candidate'} ({state}).")
    card_view(name, candidate)


# -- versions: actions and the model card ----------------------------------------------------

def version_actions(name: str, new: str, old: str | None, *, key: str) -> None:
    """Promote / Discard the new version and Roll back to the old one, where each applies."""
    new_state = versions.status(name, new)
    old_state = versions.status(name, old) if old else None
    columns = st.columns(3)
    actions = []
    if new_state != versions.CURRENT:
        actions.append((columns[0], f"✅ Promote {new}", versions.promote, new))
    if new_state == versions.CANDIDATE:
        actions.append((columns[1], f"🗑️ Discard {new}", versions.discard, new))
    if old and old_state not in (versions.CURRENT, versions.CANDIDATE):
        actions.append((columns[2], f"↩️ Roll back to {old}", versions.rollback, old))
    refused = identity.refusal(access.PROMOTE) if actions else None
    if refused:
        st.warning(refused, icon="🔒")  # the core refuses too; the buttons say so before a click
    for column, label, action, version in actions:
        if column.button(label, key=f"{key}_{label}", disabled=refused is not None):
            try:
                action(name, version, by=actor(), actor=identity.current())
            except WorkbenchError as exc:
                st.error(str(exc), icon="⚠️")
                return
            if action is versions.discard:
                _forget_cached_versions()
            st.session_state["versions_notice"] = f"{label.split(' ', 1)[1]}: done."
            st.rerun()


def change_log(name: str) -> None:
    """Who promoted, rolled back and discarded versions of `name` (newest first), with e-mail and role
    where the change recorded them (changes before issue 15 name only who)."""
    events = versions.history(name)
    if not events:
        return
    with st.expander(f"Who changed the versions of {name}"):
        st.dataframe(pd.DataFrame([{
            "when (UTC)": str(event.get("at", ""))[:19].replace("T", " "), "action": event.get("action"),
            "version": event.get("version"), "who": event.get("by"),
            "e-mail": (event.get("actor") or {}).get("email") or "", "role": (event.get("actor") or {}).get("role") or "",
        } for event in reversed(events)]), hide_index=True)


def _forget_cached_versions() -> None:
    """The store may give a discarded version's id to the next new version: caches keyed by
    (model, version) must not serve the discarded one for it."""
    from workbench import cache

    loaders.model.clear()
    test_predictions.clear()
    cache.EXPLANATIONS.clear()


def card_view(name: str, version: str) -> None:
    """The version's model card, with a button to measure its trust figures once."""
    card = model_trust.card_for(name, version, status=versions.status(name, version))
    with st.expander(f"Model card of {name} {version}"):
        st.markdown(card)
    left, right = st.columns(2)
    left.download_button("⬇️ Download the model card (Markdown)", card.encode("utf-8"),
                         file_name=f"model-card-{name}-{version}.md", mime="text/markdown", key=f"card_{name}_{version}")
    if model_trust.saved_trust(name, version) is None and store.manifest(name, version).dataset:
        if right.button("📏 Measure trust figures for the card", key=f"trust_{name}_{version}",
                        help=f"Grad-CAM on {model_trust.TRUST_EXAMPLES} test examples: deletion/insertion "
                             "against random order, localisation, and the randomisation sanity check."):
            with st.spinner("Measuring…"):
                model_trust.measure_trust(loaders.model(name, version))
            st.rerun()


# -- compare versions ------------------------------------------------------------------------

md = model_card.md  # names and labels shown literally in Markdown


def has_two_versions(name: str) -> bool:
    """Whether there is anything to compare (a model with one version has no candidate)."""
    return len(store.all_version_ids(name)) >= 2


def default_pair(name: str) -> tuple[str, str]:
    """Current vs newest candidate; without a candidate, the version before the current one vs it."""
    ids = store.all_version_ids(name)
    current = store.current_version(name)
    candidate = versions.newest_candidate(name)
    if candidate:
        return current, candidate
    earlier = [v for v in ids if v != current]
    return (earlier[-1] if earlier else current), current


def pick_versions(name: str) -> tuple[str, str]:
    ids = store.all_version_ids(name)
    old_default, new_default = default_pair(name)
    labels = {v: f"{v} ({versions.status(name, v)})" for v in ids}
    left, right = st.columns(2)
    old = left.selectbox("Old version", ids, index=ids.index(old_default), format_func=labels.get, key=f"old_{name}")
    new = right.selectbox("New version", ids, index=ids.index(new_default), format_func=labels.get, key=f"new_{name}")
    return old, new


def confusion_figure(diff: np.ndarray, classes: Sequence[str]) -> go.Figure:
    """new - old confusion counts, coloured by effect: blue = better (more on the diagonal,
    fewer off it), red = worse. The numbers are the raw changes."""
    diff = np.asarray(diff, dtype=int)
    effect = np.where(np.eye(len(diff), dtype=bool), diff, -diff)
    peak = max(int(np.abs(diff).max()), 1)
    names = [str(c) for c in classes]
    figure = go.Figure(go.Heatmap(
        z=effect, x=names, y=names, zmin=-peak, zmax=peak, colorscale="RdBu", showscale=False,
        text=[[f"{v:+d}" if v else "0" for v in row] for row in diff], texttemplate="%{text}",
        hovertemplate="truth %{y}, predicted %{x}: %{text}<extra></extra>",
    ))
    figure.update_layout(height=120 + 34 * len(names), margin=dict(l=10, r=10, t=10, b=10),
                         xaxis=dict(title="predicted", type="category"),
                         yaxis=dict(title="truth", autorange="reversed", type="category"))
    return figure


def metrics_comparison(name: str, old: str, new: str) -> None:
    a, b = store.manifest(name, old), store.manifest(name, new)
    table = pd.DataFrame(versions.metrics_table(a, b)).rename(columns={"old": old, "new": new})
    overall = table[table["class"] == "(overall)"].iloc[0]
    left, right = st.columns(2)
    _metric_delta(f"Test accuracy {new} vs {old}", overall[old], overall[new], left)
    right.metric("Labels changed (new version)", b.lineage.labels_changed or 0)
    st.dataframe(table, hide_index=True, width="stretch")
    diff = versions.confusion_difference(a, b)
    if diff is not None:
        st.markdown("**Confusion matrix, new minus old**: blue cells are better (more correct on the "
                    "diagonal, fewer mistakes off it), red cells worse.")
        st.plotly_chart(confusion_figure(diff, b.classes), width="stretch", key="confusion_diff")


@st.cache_data(max_entries=16, show_spinner="Predicting the test split…")
def test_predictions(name: str, version: str, dataset: str, sha256: str | None) -> np.ndarray:
    """Predicted classes on the test split; `sha256` keys the cache to the exact file."""
    data = loaders.dataset(dataset, "test")
    return loaders.model(name, version).predict_proba(list(data.x)).argmax(axis=1)


def _show_examples(data: Any, positions: list[int], old_pred: np.ndarray, new_pred: np.ndarray, empty: str) -> None:
    if not positions:
        st.caption(empty)
        return
    shown = positions[:MAX_EXAMPLES]
    if data.modality is Modality.TEXT:
        st.dataframe(pd.DataFrame({
            "id": [data.ids[i] for i in shown], "text": [data.x[i] for i in shown],
            "truth": [data.classes[int(data.y[i])] for i in shown],
            "old": [data.classes[int(old_pred[i])] for i in shown],
            "new": [data.classes[int(new_pred[i])] for i in shown],
        }), hide_index=True, width="stretch")
    else:
        columns = st.columns(6)
        for slot, i in enumerate(shown):
            columns[slot % 6].image(
                render.upscale_for_display(np.asarray(data.x[i]), 96),
                caption=f"truth {data.classes[int(data.y[i])]}: {data.classes[int(old_pred[i])]} → "
                        f"{data.classes[int(new_pred[i])]}")
    if len(positions) > len(shown):
        st.caption(f"… and {len(positions) - len(shown)} more.")


def fixed_and_broken(name: str, old: str, new: str) -> None:
    dataset = store.manifest(name, new).dataset
    if not dataset:
        st.info("This model does not record its dataset, so its test examples cannot be compared.")
        return
    data = loaders.dataset(dataset, "test")
    old_pred, new_pred = (test_predictions(name, v, dataset, store.manifest(name, v).lineage.sha256)
                          for v in (old, new))
    fixed, broken = versions.fixed_and_broken(data.y, old_pred, new_pred)
    left, right = st.columns(2)
    with left:
        st.markdown(f"**Fixed by {new}** ({len(fixed)}): wrong before, right now")
        _show_examples(data, fixed, old_pred, new_pred, "None.")
    with right:
        st.markdown(f"**Broken by {new}** ({len(broken)}): right before, wrong now")
        _show_examples(data, broken, old_pred, new_pred, "None.")


def _corrected_examples(name: str, old: str, new: str) -> tuple[Any, list[tuple[int, str]]]:
    manifest = store.manifest(name, new)
    dataset = manifest.dataset
    corrections = snapshots.corrections_between(name, old, new)
    if not dataset or not corrections:
        return None, []
    from workbench.retrain import training_split

    data = loaders.dataset(dataset, training_split(manifest))
    position = {eid: i for i, eid in enumerate(data.ids)}
    found = [(position[eid], label) for eid, label in sorted(corrections.items()) if eid in position]
    return data, found[:MAX_EVIDENCE]


def _attribution(model: Any, method: str, item: Any, target: int) -> Any:
    return api.explain(model, method, [item], [target])[0]


def _render_attribution(model: Any, explanation: Any, item: Any, column: Any, caption: str) -> None:
    kit.show_attribution(explanation, api.prepare_input(model, item), caption=caption, width=192, where=column)


def evidence_pairs(name: str, old: str, new: str) -> None:
    """For corrected training examples: what each version looks at for the corrected label."""
    data, examples = _corrected_examples(name, old, new)
    if not examples:
        st.caption(f"{new} learned from no label corrections that {old} did not have.")
        return
    old_model, new_model = loaders.model(name, old), loaders.model(name, new)
    methods = [m for m in registry.available(new_model) if m in registry.available(old_model)]
    if not methods:
        st.caption("No explanation method applies to these versions.")
        return
    method = st.selectbox("Explanation method", methods, index=methods.index("gradcam") if "gradcam" in methods else 0,
                          key="compare_method")
    for index, label in examples:
        item = data.x[index]
        target = data.classes.index(label)
        st.markdown(f"`{data.ids[index]}`: label corrected from **{model_card.md(data.classes[int(data.y[index])])}** "
                    f"to **{model_card.md(label)}**")
        left, right = st.columns(2)
        for column, model, version in ((left, old_model, old), (right, new_model, new)):
            explanation = _attribution(model, method, item, target)
            probability = float(model.predict_proba([item])[0][target])
            _render_attribution(model, explanation, item, column,
                                f"{version}: P({label}) = {probability:.1%} · {explanation.method}")


@st.cache_data(max_entries=8, show_spinner="Measuring where each version looks inside the marked regions…")
def _reason_effect(name: str, old: str, new: str, old_sha: str | None, new_sha: str | None, marks_key: int) -> Any:
    """Cached per version pair (by file hash) and the newest reason event, so a new mark recomputes."""
    from labels import Ledger
    from workbench import datasets, reason_effect
    from workbench.retrain import training_split

    manifest = store.manifest(name, new)
    dataset = manifest.dataset
    test = loaders.dataset(dataset, "test")
    nocue = loaders.dataset(dataset, reason_effect.NOCUE_SPLIT) \
        if reason_effect.NOCUE_SPLIT in datasets.splits(dataset) else None
    return reason_effect.reason_effect(loaders.model(name, old), loaders.model(name, new),
                                       loaders.dataset(dataset, training_split(manifest)), test, nocue, Ledger())


def reason_effect_section(name: str, old: str, new: str) -> None:
    """Issue 17: attribution inside "not a reason" regions and on a held-out cue, before and after, with accuracy."""
    from labels import Ledger

    dataset = store.manifest(name, new).dataset
    if not dataset:
        st.caption("This model does not record its dataset, so its reason marks cannot be found.")
        return
    history = Ledger().reason_history(dataset)
    effect = _reason_effect(name, old, new, store.manifest(name, old).lineage.sha256,
                            store.manifest(name, new).lineage.sha256, history[0].id if history else 0)
    if effect.note:
        st.caption(effect.note)
    if effect.groups:
        st.dataframe(pd.DataFrame([{
            "examples": group.group, "n": group.n,
            "region's area": f"{group.area_share:.1%}",
            f"share inside, {old}": f"{group.share_old:.1%}",
            f"share inside, {new}": f"{group.share_new:.1%}",
        } for group in effect.groups]), hide_index=True, width="stretch")
        st.caption("**share inside**: the part of the positive Grad-CAM mass (for each example's label) that falls "
                   "inside the marked boxes (**marked**: the training examples with “not a reason” marks) or on the "
                   "planted cue (**held-out**: test examples carrying the cue, its masks shipped with the data, never "
                   "marked). A map that ignored the region would put about the region's area there; lower after "
                   "retraining means the new version relies on it less.")
    if effect.groups or len(effect.accuracy) > 1:
        st.dataframe(pd.DataFrame([{"accuracy on": split, old: f"{before:.1%}", new: f"{after:.1%}"}
                                   for split, (before, after) in effect.accuracy.items()]),
                     hide_index=True, width="stretch")


def version_report_button(name: str, old: str, new: str) -> None:
    """The comparison as one HTML report: both versions' facts, the metrics side by side, the
    correction notes annotators left."""
    from labels import Ledger
    from workbench import reports

    a, b = store.manifest(name, old), store.manifest(name, new)
    sections = [reports.Section(f"{name} {version}", facts=_version_facts(info)) for version, info in ((old, a), (new, b))]
    sections.append(reports.table_section("Metrics on the clean test split",
                                          [{**row, "old": row["old"], "new": row["new"]}
                                           for row in versions.metrics_table(a, b)],
                                          text=f"old = {old}, new = {new}"))
    dataset = b.dataset
    notes = [e.to_dict() for e in Ledger().history(dataset) if e.note] if dataset else []
    sections.append(reports.notes_section(notes))
    kit.report_button(f"{name} {new} vs {old}", sections, key="versions_report")


def _version_facts(info: Manifest) -> dict[str, Any]:
    """A version's lineage for the comparison report; "–" where the manifest records nothing."""
    lineage = info.lineage
    return {
        "sha256": _or_dash(lineage.sha256), "parent": lineage.parent or "–",
        "created by": _or_dash(info.created_by), "created at": _or_dash(info.created_at),
        "data snapshot": lineage.data_snapshot_hash or lineage.data_hash or "–",
        "labels changed": lineage.labels_changed or 0,
    }


def _or_dash(value: str | None) -> str:
    return "–" if value is None else value
