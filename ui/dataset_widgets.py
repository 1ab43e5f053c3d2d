"""Widgets of the Dataset page: split choice, metrics, clickable confusion matrix, embedding map,
the example viewer and the failure slices. The computing lives in `workbench.dataset_view`.

Clicks on the charts are handled by `on_select` callbacks that write the choice into the
session state of ordinary widgets (the cell's truth/prediction selectboxes, the example
number), so a click and a typed choice lead to exactly the same page.
"""
from __future__ import annotations

import functools
import threading
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from explainers import registry, render
from foundation.dataset import Dataset
from foundation.errors import WorkbenchError
from foundation.types import Modality
from ui import kit
from workbench import api, dataset_view, reports

DATASET_KEY = "dataset_view_name"
SPLIT_KEY = "dataset_view_split"
TRUTH_KEY = "dataset_cell_truth"
PRED_KEY = "dataset_cell_pred"
EXAMPLE_KEY = "dataset_example_index"
COLOUR_KEY = "dataset_colour_by"
CONTEXT_KEY = "dataset_view_context"
# Set when an example is opened from the cell's list: that list lives in a fragment, so the
# fragment then asks for a full run to draw the example panel below it.
OPEN_PENDING_KEY = "dataset_open_pending"
CONFUSION_CHART = "dataset_confusion_chart"
EMBEDDING_CHART = "dataset_embedding_chart"
SLICES_TABLE = "dataset_slices_table"
CELL_SHOWN = 24
SLICE_SHOWN = 12
COLOURS = {"label": "True label", "prediction": "Prediction", "correct": "Correct?", "queue": "Review-queue score"}
# Colour-blind-safe qualitative palette (Okabe-Ito), repeated for more classes.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
           "#999999", "#882255"]


# --- choosing and computing -----------------------------------------------------------------------


def choose_split(model: Any) -> tuple[str, str] | None:
    names = dataset_view.compatible_datasets(model)
    if not names:
        st.info(f"No dataset has the classes of {model.name} ({', '.join(model.classes)}). "
                "Import one on the “Your model & data” page.")
        return None
    if st.session_state.get(DATASET_KEY) not in names:
        st.session_state[DATASET_KEY] = names[0]
    left, right = st.columns(2)
    scale = ", ".join(n for n in names if n in dataset_view.scale_names())
    help_text = f"{dataset_view.LARGE_SHAPES_NAME}: 20,000 freshly generated shapes, for the scale check."
    if scale:
        help_text += (f" {scale}: shapes drawn on demand; the first open runs the model over all of them "
                      "(minutes at 100,000, with progress), later opens read the cached results.")
    name = left.selectbox("Dataset", names, key=DATASET_KEY, help=help_text)
    splits = list(dataset_view.split_names(name))
    if st.session_state.get(SPLIT_KEY) not in splits:
        st.session_state[SPLIT_KEY] = "test" if "test" in splits else splits[0]
    split = right.selectbox("Split", splits, key=SPLIT_KEY, help="Test examples were never seen in training.")
    return name, split


@st.cache_resource(show_spinner="Preparing dataset…", max_entries=8)
def load_dataset(name: str, split: str) -> Dataset:
    return dataset_view.load_split(name, split)


@st.cache_resource
def _memory() -> tuple[dict, threading.Lock]:
    """Outputs already computed in this server process, shared by every session."""
    return {}, threading.Lock()


def outputs(model: Any, dataset: Dataset) -> dataset_view.DatasetOutputs:
    """Predictions and the 2-D map: from memory, else the disk cache, else computed (with a progress bar).

    A split of more than `dataset_view.BACKGROUND_FROM` examples is computed by a background job
    (`dataset_view.outputs_job`): this run shows its progress and stops; the page reruns itself
    when the job is done. Smaller splits are computed here, in a few seconds.
    """
    key = (model.name, model.version, model.info.lineage.sha256, dataset.name, dataset.split, len(dataset))
    store, lock = _memory()
    with lock:
        found = store.get(key)
    if found is not None:
        return found
    if len(dataset) > dataset_view.BACKGROUND_FROM:
        result = dataset_view.cached_outputs(model, dataset)
        if result is None:
            try:
                job = dataset_view.outputs_job(model, dataset)
            except WorkbenchError as exc:  # a mistyped WORKBENCH_DATASET_ENGINE
                st.error(str(exc))
                st.stop()
            if not job.done:
                where = " on Ray" if job.engine == "ray" else ""
                st.info(f"Running {model.name} {model.version}{where} over the {len(dataset):,} examples of "
                        f"{dataset.name} / {dataset.split} once; the results are stored and every later open "
                        "reads them. This keeps running if you leave the page. To prepare a large split "
                        "ahead of time, on a Ray cluster if you have one: `workbench dataset-cache --model "
                        f"{model.name} --dataset {dataset.name} --engine ray`.")
                _job_progress(job)
                st.stop()
            dataset_view.collect_job(model, dataset)
            if job.error is not None:
                st.error(f"Computing the predictions failed: {job.error}")
                st.stop()
            result = job.result
    else:
        bar = st.progress(0.0, text=f"Reading the cache of {len(dataset):,} examples…")
        result = dataset_view.dataset_outputs(
            model, dataset, progress=lambda message, f: bar.progress(float(min(max(f, 0.0), 1.0)), text=message))
        bar.empty()
    with lock:
        store[key] = result
        while len(store) > 12:
            store.pop(next(iter(store)))
    if not result.from_cache:
        st.toast(f"Computed {len(dataset):,} predictions and embeddings in {result.seconds:.1f} s; cached on disk.")
    return result


@st.fragment(run_every=1.0)
def _job_progress(job: dataset_view.OutputsJob) -> None:
    if job.done:
        st.rerun()  # the whole page, now from the stored results
    st.progress(job.fraction, text=job.message)


def reset_on_change(dataset: Dataset) -> None:
    """A new dataset or split: forget the selected example and cell. (Runs on full runs only.)"""
    st.session_state.pop(OPEN_PENDING_KEY, None)  # a full run draws the opened example anyway
    context = (dataset.name, dataset.split)
    if st.session_state.get(CONTEXT_KEY) != context:
        st.session_state[CONTEXT_KEY] = context
        st.session_state[EXAMPLE_KEY] = 0
        for key in (TRUTH_KEY, PRED_KEY):
            st.session_state.pop(key, None)


# --- metrics ----------------------------------------------------------------------------------------------


def metrics_block(result: dict[str, Any], outputs_: dataset_view.DatasetOutputs) -> None:
    a, b, c, d = st.columns(4)
    a.metric("Accuracy", f"{result['accuracy']:.1%}")
    b.metric("Examples", f"{result['n']:,}")
    # Counted, not derived from the rounded accuracy (at 100,000 examples that is off by a few).
    confusion = np.asarray(result["confusion"], dtype=int)
    c.metric("Mistakes", f"{int(confusion.sum() - np.trace(confusion)) if confusion.size else 0:,}")
    d.metric("Mean confidence", f"{float(outputs_.confidence.mean()):.1%}" if result["n"] else "–")
    st.dataframe(dataset_view.per_class_table(result), hide_index=True, width="stretch",
                 column_config={
                     "precision": st.column_config.ProgressColumn("Precision", format="percent", min_value=0, max_value=1),
                     "recall": st.column_config.ProgressColumn("Recall", format="percent", min_value=0, max_value=1),
                     "f1": st.column_config.NumberColumn("F1", format="%.3f"),
                     "support": st.column_config.NumberColumn("Examples", format="localized"),
                 })
    source = "the disk cache" if outputs_.from_cache else "a fresh pass"
    st.caption(f"{outputs_.model_name} {outputs_.model_version} on {outputs_.dataset} / {outputs_.split}; "
               f"predictions from {source} (computed in {outputs_.seconds:.1f} s).")


# --- confusion matrix -----------------------------------------------------------------------------------


def confusion_figure(confusion: list[list[int]], classes: list[str]) -> go.Figure:
    """Counts as a heatmap, with one invisible clickable marker per cell (heatmaps report no selection)."""
    matrix = np.asarray(confusion, dtype=int)
    k = len(classes)
    row_totals = np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    share = matrix / row_totals
    xs, ys, data, hover = [], [], [], []
    for t in range(k):
        for p in range(k):
            xs.append(classes[p])
            ys.append(classes[t])
            data.append([t, p])
            hover.append(f"truth {classes[t]}, predicted {classes[p]}: {matrix[t, p]:,} ({share[t, p]:.1%} of the row)")
    figure = go.Figure()
    figure.add_trace(go.Heatmap(z=share, x=classes, y=classes, text=matrix, texttemplate="%{text:,}",
                                colorscale="Blues", zmin=0, zmax=1, hoverinfo="skip", showscale=False))
    figure.add_trace(go.Scatter(
        x=xs, y=ys, customdata=data, mode="markers", hovertext=hover, hoverinfo="text", showlegend=False,
        # Small markers at the cell centres: with no hover cut-off (hoverdistance -1) a click anywhere in a
        # cell picks its nearest centre, i.e. that cell (big markers would overlap and pick the wrong one).
        marker=dict(symbol="square", size=10, color="rgba(0,0,0,0)", line=dict(width=0)),
        selected=dict(marker=dict(opacity=0)),  # the chosen cell shows in the selectboxes below
        unselected=dict(marker=dict(opacity=0)),
    ))
    figure.update_layout(height=140 + 48 * k, margin=dict(l=10, r=10, t=10, b=10),
                         xaxis=dict(title="predicted", type="category", side="top", fixedrange=True),
                         yaxis=dict(title="truth", type="category", autorange="reversed", fixedrange=True),
                         clickmode="event+select", dragmode=False, hovermode="closest", hoverdistance=-1)
    return figure


@st.cache_resource(max_entries=32, show_spinner=False)
def _cached_confusion_figure(confusion: tuple[tuple[int, ...], ...], classes: tuple[str, ...]) -> go.Figure:
    """Built once per matrix: every cell click redraws the chart, and plotly's build is ~0.1 s of it."""
    return confusion_figure([list(row) for row in confusion], list(classes))


def _on_cell_click(classes: list[str]) -> None:
    points = _selected_points(CONFUSION_CHART)
    if points:
        truth, predicted = points[0]["customdata"][:2]
        st.session_state[TRUTH_KEY] = classes[int(truth)]
        st.session_state[PRED_KEY] = classes[int(predicted)]


def _selected_points(key: str) -> list[dict[str, Any]]:
    state = st.session_state.get(key)
    try:
        return list(state["selection"]["points"]) if state else []
    except (KeyError, TypeError):
        return []


def confusion_matrix(result: dict[str, Any], dataset: Dataset) -> tuple[int, int]:
    """The chart and the cell selectors; returns the chosen (truth, prediction) class indices."""
    classes = list(dataset.classes)
    worst = dataset_view.worst_cell(result["confusion"]) or (0, 0)
    st.session_state.setdefault(TRUTH_KEY, classes[worst[0]])
    st.session_state.setdefault(PRED_KEY, classes[worst[1]])
    st.plotly_chart(_cached_confusion_figure(tuple(map(tuple, result["confusion"])), tuple(classes)), key=CONFUSION_CHART,
                    on_select=functools.partial(_on_cell_click, classes), selection_mode="points", width="stretch")
    st.caption("Rows are the true class, columns the prediction; colour is the share of the row. "
               "Click a cell (or choose it below) to list its examples.")
    left, right = st.columns(2)
    truth = left.selectbox("True class", classes, key=TRUTH_KEY)
    predicted = right.selectbox("Predicted class", classes, key=PRED_KEY)
    return classes.index(truth), classes.index(predicted)


def _open_example(index: int) -> None:
    st.session_state[EXAMPLE_KEY] = int(index)
    st.session_state[OPEN_PENDING_KEY] = True


@st.fragment
def confusion_section(result: dict[str, Any], dataset: Dataset, outputs_: dataset_view.DatasetOutputs) -> None:
    """The matrix, the cell selectors and the cell's examples, as one fragment.

    A cell click (or a typed cell) reruns only this part: the map, the example's explanation,
    the slices and the report below are not redrawn, which keeps the click well under a second
    on a large split. Opening an example from the list asks for a full run (the panel is outside).
    """
    truth, predicted = confusion_matrix(result, dataset)
    cell = dataset_view.cell_examples(outputs_, dataset, truth, predicted)
    example_list(dataset, outputs_, cell, f"Truth {dataset.classes[truth]}, predicted {dataset.classes[predicted]}",
                 key="cell")
    if st.session_state.pop(OPEN_PENDING_KEY, False):
        st.rerun()


def example_list(dataset: Dataset, outputs_: dataset_view.DatasetOutputs, indices: np.ndarray,
                 heading: str, key: str) -> None:
    """Thumbnails (images) or a table (texts) of some examples, each with a way to open it below."""
    st.markdown(f"**{heading}**: {len(indices):,} example{'s' if len(indices) != 1 else ''}")
    if len(indices) == 0:
        return
    shown = [int(i) for i in indices[:CELL_SHOWN]]
    classes = dataset.classes
    if dataset.modality is Modality.IMAGE:
        columns = st.columns(8)
        for slot, i in enumerate(shown):
            with columns[slot % 8]:
                st.image(render.upscale_for_display(np.asarray(dataset.x[i]), 96),
                         caption=f"{dataset.ids[i]} · {outputs_.confidence[i]:.0%} {classes[int(outputs_.predicted[i])]}")
                st.button("Open", key=f"{key}_open_{i}", on_click=_open_example, args=(i,), width="stretch")
    else:
        frame = pd.DataFrame({
            "index": shown, "id": [dataset.ids[i] for i in shown], "text": [str(dataset.x[i]) for i in shown],
            "truth": [classes[int(dataset.y[i])] for i in shown],
            "prediction": [classes[int(outputs_.predicted[i])] for i in shown],
            "confidence": [float(outputs_.confidence[i]) for i in shown],
        })
        st.dataframe(frame, hide_index=True, width="stretch", key=f"{key}_table", on_select=_table_open(key, shown),
                     selection_mode="single-row",
                     column_config={"confidence": st.column_config.NumberColumn(format="%.2f")})
        st.caption("Select a row to open the example below.")
    if len(indices) > len(shown):
        st.caption(f"… and {len(indices) - len(shown):,} more.")


def _table_open(key: str, shown: list[int]):
    def callback() -> None:
        state = st.session_state.get(f"{key}_table")
        try:
            rows = state["selection"]["rows"]
        except (KeyError, TypeError):
            return
        if rows:
            _open_example(shown[int(rows[0])])

    return callback


# --- embedding map ------------------------------------------------------------------------------------


@st.cache_resource(max_entries=16, show_spinner=False)
def _queue_scores(model_name: str, version: str, dataset_name: str, split: str, _model: Any,
                  _dataset: Dataset) -> np.ndarray | None:
    return dataset_view.review_queue_scores(_model, _dataset)


def embedding_figure(frame: pd.DataFrame, colour_by: str, scores: np.ndarray | None = None) -> go.Figure:
    """A WebGL scatter of the 2-D map (one trace per category, or one coloured by score)."""
    figure = go.Figure()
    hover = "%{hovertext}<extra></extra>"
    text = (frame["example_id"] + ": " + frame["label"] + " → " + frame["prediction"]
            + " (" + (frame["confidence"] * 100).round(0).astype(int).astype(str) + "%)")
    if colour_by == "queue" and scores is not None:
        figure.add_trace(go.Scattergl(
            x=frame["x"], y=frame["y"], mode="markers", customdata=frame["index"], hovertext=text, hovertemplate=hover,
            marker=dict(size=5, color=scores, colorscale="Viridis", cmin=0, cmax=1, showscale=True,
                        colorbar=dict(title="issue score")), showlegend=False))
    else:
        column = {"label": "label", "prediction": "prediction", "correct": "correct"}.get(colour_by, "label")
        # One colour per class whatever the colouring, so a class keeps its colour between label and prediction.
        classes = sorted(set(frame["label"]) | set(frame["prediction"]), key=str)
        groups = [True, False] if column == "correct" else [c for c in classes if (frame[column] == c).any()]
        for value in groups:
            part = frame[frame[column] == value]
            if part.empty:
                continue
            if column == "correct":
                name, colour = ("correct", "#56B4E9") if value else ("wrong", "#D55E00")
            else:
                name, colour = str(value), PALETTE[classes.index(value) % len(PALETTE)]
            figure.add_trace(go.Scattergl(
                x=part["x"], y=part["y"], mode="markers", name=name, customdata=part["index"],
                hovertext=text[part.index], hovertemplate=hover,
                marker=dict(size=5 if len(frame) > 5000 else 7, color=colour, opacity=0.75)))
    figure.update_layout(height=520, margin=dict(l=10, r=10, t=10, b=10), legend=dict(orientation="h", y=-0.08),
                         xaxis=dict(title="PC 1", zeroline=False), yaxis=dict(title="PC 2", zeroline=False),
                         clickmode="event+select", dragmode="pan")
    return figure


@st.cache_resource(max_entries=8, show_spinner=False)
def _cached_embedding_figure(key: tuple, _outputs: dataset_view.DatasetOutputs, _dataset: Dataset,
                             _scores: np.ndarray | None, _drawn: np.ndarray) -> go.Figure:
    """Built once per (model version, split, colouring): 20,000 points take a noticeable moment to build."""
    scores = None if _scores is None else np.asarray(_scores)[_drawn]
    return embedding_figure(dataset_view.embedding_frame(_outputs, _dataset, _drawn), key[5], scores)


def _on_point_click() -> None:
    points = _selected_points(EMBEDDING_CHART)
    if points and points[0].get("customdata") is not None:
        value = points[0]["customdata"]
        _open_example(int(value[0] if isinstance(value, (list, tuple)) else value))  # marks a full run pending


@st.cache_resource(max_entries=8, show_spinner=False)
def _map_sample(key: tuple, _y: np.ndarray, _predicted: np.ndarray) -> np.ndarray:
    return dataset_view.map_sample(_y, _predicted)


@st.fragment
def embedding_map(model: Any, dataset: Dataset, outputs_: dataset_view.DatasetOutputs) -> None:
    """The map and its colouring, as a fragment: a new colouring redraws only the map (at 100,000
    examples a whole run also redraws the explanation and the report). A point click opens the
    example, which is outside: it asks for a full run."""
    # The review queue (labels/queue.py) ships with the workbench, so every colouring is offered
    # up to QUEUE_LIMIT examples; beyond, ranking them would be a batch job of its own.
    colours = list(COLOURS) if len(dataset) <= dataset_view.QUEUE_LIMIT else [c for c in COLOURS if c != "queue"]
    if st.session_state.get(COLOUR_KEY) not in colours:
        st.session_state[COLOUR_KEY] = colours[0]
    colour_by = st.radio("Colour by", colours, format_func=COLOURS.get, horizontal=True, key=COLOUR_KEY)
    scores = None
    if colour_by == "queue":
        with st.spinner("Ranking the examples with the review queue (cross-validated head on the features)…"):
            try:
                scores = _queue_scores(model.name, model.version, dataset.name, dataset.split, model, dataset)
            except WorkbenchError as exc:
                st.warning(f"The review queue could not rank this split: {exc}")
    base = (outputs_.model_name, outputs_.model_version, outputs_.dataset, outputs_.split, len(dataset))
    drawn = _map_sample(base, np.asarray(dataset.y), outputs_.predicted)
    key = (*base, colour_by, scores is not None)
    st.plotly_chart(_cached_embedding_figure(key, outputs_, dataset, scores, drawn), key=EMBEDDING_CHART,
                    on_select=_on_point_click, selection_mode="points", width="stretch")
    variance = sum(outputs_.explained_variance)
    n = len(dataset)
    if len(drawn) < n:
        mistakes = int((outputs_.predicted != np.asarray(dataset.y)).sum())
        kept = f"all {mistakes:,} mistakes" if mistakes <= len(drawn) else f"{len(drawn):,} of the {mistakes:,} mistakes"
        sample = (f"**Drawing {len(drawn):,} of {n:,} points**: {kept} and a class-stratified, fixed sample of the "
                  "correct ones (so mistakes look denser here than they are). ")
    else:
        sample = f"All {n:,} points drawn. "
    st.caption(f"{sample}Each point is one example: the output of its '{outputs_.feature_layer}' layer "
               f"({outputs_.feature_dim} numbers) projected to 2-D with PCA, which keeps {variance:.0%} of their "
               "variance. Click a point to open the example and its explanation below.")
    if st.session_state.pop(OPEN_PENDING_KEY, False):
        st.rerun()


# --- one example ----------------------------------------------------------------------------------------


def explanation_method(model: Any) -> str | None:
    methods = registry.available(model)
    if "gradcam" in methods:
        return "gradcam"
    return next(iter(methods), None)


def example_panel(model: Any, dataset: Dataset, outputs_: dataset_view.DatasetOutputs) -> tuple[int, Any]:
    """The chosen example, its prediction and its explanation; returns (index, explanation or None)."""
    n = len(dataset)
    current = int(st.session_state.get(EXAMPLE_KEY, 0) or 0)
    if not 0 <= current < n:
        st.session_state[EXAMPLE_KEY] = 0
    index = int(st.number_input(f"Example (0–{n - 1})", 0, n - 1, key=EXAMPLE_KEY, step=1))
    item = dataset.x[index]
    truth = dataset.classes[int(dataset.y[index])]
    predicted = int(outputs_.predicted[index])
    target = model.classes.index(dataset.classes[predicted])
    method = explanation_method(model)
    explanation = None
    if method is not None:
        with st.spinner(f"Explaining with {method}…"):
            explanation = api.explain(model, method, [item], [target])[0]
    verdict = "✅ right" if dataset.classes[predicted] == truth else "❌ wrong"
    st.markdown(f"`{dataset.ids[index]}` · true label **{truth}** · the model says "
                f"**{dataset.classes[predicted]}** ({outputs_.confidence[index]:.1%}) · {verdict}")
    if dataset.modality is Modality.IMAGE:
        left, right = st.columns(2)
        left.image(kit.display_image(item, 256), caption="Input", width=256)
        if explanation is not None:
            kit.show_attribution(explanation, api.prepare_input(model, item), width=256, where=right,
                                 caption=f"{explanation.method} for “{explanation.target_label}”")
    else:
        st.text(str(item))
        if explanation is not None:
            # The colours are the evidence for the predicted class.
            kit.show_tokens(explanation, legend=True)
    if method is None:
        st.info("No explanation method applies to this model.")
    return index, explanation


# --- failure slices -------------------------------------------------------------------------------------


@st.cache_data(max_entries=16, show_spinner="Cutting the split into slices…")
def _slices(dataset_name: str, split: str, n: int, predicted: np.ndarray, min_size: int,
            _dataset: Dataset, _properties: dict[str, np.ndarray]) -> list[dataset_view.SliceResult]:
    # The properties were measured by the batch pass (they depend on the split alone): no image is read.
    return dataset_view.failure_slices(_dataset, predicted, min_size=min_size, properties=_properties or None)


def failure_slices(dataset: Dataset, outputs_: dataset_view.DatasetOutputs,
                   result: dict[str, Any]) -> tuple[list[dataset_view.SliceResult], pd.DataFrame]:
    default = dataset_view.MIN_SLICE_SIZE if len(dataset) >= 4 * dataset_view.MIN_SLICE_SIZE else 1
    min_size = int(st.number_input("Smallest slice shown (examples)", 1, max(1, len(dataset)), default,
                                   key="dataset_min_slice"))
    slices = _slices(dataset.name, dataset.split, len(dataset), outputs_.predicted, min_size, dataset,
                     outputs_.properties)
    table = dataset_view.slices_table(slices, overall_error=1 - result["accuracy"])
    if table.empty:
        st.info("No slice is that large.")
        return slices, table
    _slice_table(slices, table, dataset, outputs_)
    return slices, table


@st.fragment
def _slice_table(slices: list[dataset_view.SliceResult], table: pd.DataFrame, dataset: Dataset,
                 outputs_: dataset_view.DatasetOutputs) -> None:
    """The slices and the chosen slice's mistakes, as a fragment: choosing a row reruns only this part."""
    event = st.dataframe(
        table, hide_index=True, width="stretch", key=SLICES_TABLE, on_select="rerun", selection_mode="single-row",
        height=min(420, 38 + 35 * len(table)),
        column_config={
            "error_rate": st.column_config.ProgressColumn("Error rate", format="percent", min_value=0, max_value=1),
            "vs_overall": st.column_config.NumberColumn("vs overall", format="%+.3f",
                                                        help="Error rate of the slice minus that of the whole split"),
        })
    st.caption("Slices by true class, predicted class, simple properties (image brightness and contrast quartiles, "
               "the planted cue; text length quartiles and negation words) and true class × property, "
               "worst first. Select a row to see the slice's mistakes.")
    rows = event.selection.rows if event is not None and hasattr(event, "selection") else []
    if rows and int(rows[0]) < len(slices):
        chosen = slices[int(rows[0])]
        wrong = chosen.indices[outputs_.predicted[chosen.indices] != np.asarray(dataset.y)[chosen.indices]]
        example_list(dataset, outputs_, wrong[:SLICE_SHOWN], f"Mistakes in “{chosen.description}”", key="slice")
    if st.session_state.pop(OPEN_PENDING_KEY, False):
        st.rerun()  # an example was opened from the list: the panel above is outside this fragment


# --- report -----------------------------------------------------------------------------------------------


def report_sections(model: Any, dataset: Dataset, outputs_: dataset_view.DatasetOutputs, result: dict[str, Any],
                    slices_table: pd.DataFrame, index: int, explanation: Any) -> list[reports.Section]:
    classes = list(dataset.classes)
    confusion = pd.DataFrame(result["confusion"], columns=[f"pred {c}" for c in classes])
    confusion.insert(0, "truth", classes)
    sections = [
        reports.model_section(model),
        reports.Section(f"Dataset {dataset.name} / {dataset.split}", facts={
            "examples": f"{result['n']:,}", "accuracy": f"{result['accuracy']:.2%}",
            "embedding": f"'{outputs_.feature_layer}' features ({outputs_.feature_dim}-D), PCA to 2-D "
                         f"({sum(outputs_.explained_variance):.0%} of the variance)",
        }, table=dataset_view.per_class_table(result)),
        reports.table_section("Confusion matrix (rows = truth)", confusion),
        reports.table_section("Failure slices, worst first", slices_table.head(30),
                              f"Slices of at least the chosen size; {len(slices_table)} in all, the first 30 shown."),
    ]
    if explanation is not None:
        sections.append(reports.explanation_section(
            explanation, api.prepare_input(model, dataset.x[index]) if dataset.modality is Modality.IMAGE else None,
            title=f"Example {dataset.ids[index]} (true label {dataset.classes[int(dataset.y[index])]})",
            text=str(dataset.x[index]) if dataset.modality is Modality.TEXT else ""))
    return sections
