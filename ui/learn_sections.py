"""The Learn page's tabs. Each renders one lesson from `workbench.lessons` (which does the work)."""
from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from explainers import registry, render
from foundation import access
from models import store
from models.loaded import LoadedModel
from ui import identity, kit, loaders, sidebar
from workbench import api, lessons

DISPLAY = 192  # px for the small pictures of a walk-through
IMAGE_DEFAULT = "shapes"
TEXT_DEFAULT = "headlines"


# --- shared pieces -----------------------------------------------------------------------------


def _lesson_models(modality: str) -> list[str]:
    """Models of this modality that record their dataset: a lesson draws its examples from it."""
    manifests = ((name, store.manifest(name)) for name in store.model_names())
    return [name for name, info in manifests if info.modality.value == modality and info.dataset]


def _pick_model(modality: str, default: str, key: str) -> LoadedModel | None:
    names = _lesson_models(modality)
    if not names:
        st.info("No sample model is available. Run `make zoo` to train them.")
        return None
    index = names.index(default) if default in names else 0
    name = st.selectbox("Model", names, index=index, key=key, help="The lesson runs on this real model.")
    return loaders.current_model(name)


def _pick_example(model: LoadedModel, key: str, default: int = 0) -> tuple[Any, int]:
    """(input, index) from the model's test split; images come back at the model's size."""
    data = loaders.dataset(model.info.dataset, "test")
    st.session_state.setdefault(key, default)
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    if right.button("🎲 Another", key=f"{key}_random", help="Pick a random test example"):
        st.session_state[key] = int(np.random.default_rng().integers(len(data)))
    index = int(left.number_input(f"Test example (0–{len(data) - 1})", 0, len(data) - 1, key=key, step=1))
    item = data.x[index]
    if model.modality.value == "image":
        item = api.prepare_images(model, [item])[0]
    return item, index


def _big(image: np.ndarray) -> np.ndarray:
    return render.upscale_for_display(np.asarray(image, dtype=np.uint8), DISPLAY)


def _map_picture(values: np.ndarray, *, signed: bool = False, colormap: str = "viridis") -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    size = (DISPLAY, int(round(DISPLAY * values.shape[1] / values.shape[0])))
    if signed:
        return render.heatmap_to_rgb(_nearest(values, size), signed=True)
    return render.heatmap_to_rgb(_nearest(values, size), colormap=colormap)


def _nearest(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Blow a small grid up with square cells, so the learner sees the grid the network sees."""
    rows = np.minimum(np.arange(size[0]) * values.shape[0] // size[0], values.shape[0] - 1)
    cols = np.minimum(np.arange(size[1]) * values.shape[1] // size[1], values.shape[1] - 1)
    return values[rows][:, cols]


def _words_used(terms: list[str]) -> None:
    with st.expander("Words used here"):
        st.markdown(lessons.glossary_markdown(terms))


def _bar(labels: list[str], values: list[float], title: str) -> go.Figure:
    colours = ["#e67e22" if v >= 0 else "#2e86c1" for v in values]
    figure = go.Figure(go.Bar(x=labels, y=values, marker_color=colours, hovertemplate="%{x}: %{y:.4f}<extra></extra>"))
    figure.update_layout(height=260, margin=dict(l=10, r=10, t=30, b=10), title=title, xaxis=dict(type="category"))
    return figure


@st.cache_resource(show_spinner=False, max_entries=16)
def _gradcam_lesson(name: str, version: str, index: int, _model: LoadedModel, _image: np.ndarray) -> lessons.GradCAMLesson:
    return lessons.gradcam_lesson(_model, _image)


@st.cache_resource(show_spinner=False, max_entries=16)
def _lime_lesson(name: str, version: str, index: int, _model: LoadedModel, _image: np.ndarray) -> lessons.LimeLesson:
    return lessons.lime_lesson(_model, _image)


@st.cache_resource(show_spinner=False, max_entries=16)
def _shap_lesson(name: str, version: str, index: int, run_partition: bool, _model: LoadedModel, _image: np.ndarray) -> lessons.ShapLesson:
    return lessons.shap_lesson(_model, _image, run_partition=run_partition)


@st.cache_resource(show_spinner=False, max_entries=4)
def _shortcut_lesson(name: str, version: str, _model: LoadedModel) -> lessons.ShortcutLesson:
    return lessons.shortcut_lesson(_model)


# --- Grad-CAM ---------------------------------------------------------------------------------


def gradcam_tab() -> None:
    st.markdown(lessons.LESSON_TEXT["gradcam"])
    _words_used(["feature map", "gradient", "heatmap", "class", "probability"])
    model = _pick_model("image", IMAGE_DEFAULT, "learn_gradcam_model")
    if model is None:
        return
    image, index = _pick_example(model, "learn_gradcam_index")
    lesson = _gradcam_lesson(model.name, model.version, index, model, image)
    st.markdown(f"The model says **{lesson.target_label}** ({lesson.probability:.0%}). "
                f"We explain that class, using the layer `{lesson.layer}`.")

    st.subheader("Step 1 · The feature maps")
    st.markdown(f"The layer holds **{lesson.n_channels}** feature maps, each "
                f"{lesson.cam.shape[0]}×{lesson.cam.shape[1]} cells. Here are the six that add the most "
                "evidence for the class (bright = the pattern was found there).")
    columns = st.columns(len(lesson.top_maps) + 1)
    columns[0].image(_big(image), caption="input", width=DISPLAY // 2 + 20)
    for column, view in zip(columns[1:], lesson.top_maps):
        column.image(_map_picture(view.activation), caption=f"map {view.channel} · weight {view.weight:+.2g}",
                     width=DISPLAY // 2 + 20)

    st.subheader("Step 2 · One weight per map")
    st.markdown("Each weight is the average gradient over the map: how much the class score rises when that map "
                "gets stronger. Orange bars help the class, blue bars work against it.")
    order = np.argsort(-lesson.weights)
    st.plotly_chart(_bar([str(int(k)) for k in order], [float(lesson.weights[k]) for k in order],
                         "weights of all feature maps (largest first)"), key="learn_gradcam_weights", width="stretch")

    st.subheader("Step 3 · The weighted sum")
    st.markdown("Multiply each map by its weight and add them up. Negative parts (blue) are evidence against "
                "the class; Grad-CAM keeps only the positive part, then stretches it to the image size.")
    a, b, c = st.columns(3)
    a.image(_map_picture(lesson.weighted_sum, signed=True), caption="weighted sum (orange +, blue −)", width=DISPLAY)
    b.image(_map_picture(lesson.cam, colormap="jet"), caption="after keeping the positive part", width=DISPLAY)
    c.image(render.overlay_heatmap(_big(image), lesson.values), caption="the Grad-CAM heatmap", width=DISPLAY)


# --- LIME -------------------------------------------------------------------------------------


def lime_tab() -> None:
    st.markdown(lessons.LESSON_TEXT["lime"])
    _words_used(["superpixel", "surrogate", "attribution"])
    model = _pick_model("image", IMAGE_DEFAULT, "learn_lime_model")
    if model is None:
        return
    image, index = _pick_example(model, "learn_lime_index")
    with st.spinner("Running LIME (a few hundred model calls)…"):
        lesson = _lime_lesson(model.name, model.version, index, model, image)
    from skimage.segmentation import mark_boundaries

    st.subheader("Step 1 · Superpixels")
    outlined = (mark_boundaries(_big(image), _nearest(lesson.segments, (DISPLAY, DISPLAY)), color=(1, 1, 0)) * 255)
    st.image(outlined.astype(np.uint8), caption=f"{lesson.segments.max() + 1} superpixels", width=DISPLAY)

    st.subheader("Step 2 · Copies with patches hidden")
    st.markdown(f"LIME made **{lesson.num_samples}** copies like these and asked the model about each. "
                f"The caption is the model's probability for **{lesson.target_label}** "
                f"(the untouched image: {lesson.probability:.0%}).")
    columns = st.columns(len(lesson.samples))
    for column, sample in zip(columns, lesson.samples):
        column.image(_big(sample.image), caption=f"{sample.visible.mean():.0%} visible → {sample.probability:.0%}",
                     width=DISPLAY // 2 + 20)

    st.subheader("Step 3 · The surrogate's weights")
    st.markdown(f"A weighted sum of “which patches were visible” was fitted to those answers. It copies the model "
                f"with R² = {lesson.score:.2f} (1 would be perfect; R² is the share of the model's ups and downs "
                "the simple sum reproduces). Its weights are the explanation.")
    order = np.argsort(-np.abs(lesson.segment_weights))[:12]
    left, right = st.columns([2, 1])
    left.plotly_chart(_bar([f"patch {int(s)}" for s in order], [float(lesson.segment_weights[s]) for s in order],
                           "largest surrogate weights"), key="learn_lime_weights", width="stretch")
    right.image(render.overlay_heatmap(_big(image), lesson.values, signed=True, alpha=0.6),
                caption="weights painted on the patches (orange +, blue −)", width=DISPLAY)


# --- SHAP -------------------------------------------------------------------------------------


def shap_tab() -> None:
    st.markdown(lessons.LESSON_TEXT["shap"])
    _words_used(["coalition", "Shapley value", "base value"])
    model = _pick_model("image", IMAGE_DEFAULT, "learn_shap_model")
    if model is None:
        return
    image, index = _pick_example(model, "learn_shap_index")
    run_partition = st.toggle("Also run the full SHAP explainer on every pixel region (takes a few seconds the first time)",
                              key="learn_shap_partition")
    with st.spinner("Asking the model about every coalition…"):
        lesson = _shap_lesson(model.name, model.version, index, run_partition, model, image)

    st.subheader("Step 1 and 2 · Every coalition of the four quarters")
    st.markdown(f"16 coalitions: blurred quarters are hidden. The caption is the probability of "
                f"**{lesson.target_label}**.")
    for start in range(0, len(lesson.coalitions), 8):
        columns = st.columns(8)
        for column, coalition in zip(columns, lesson.coalitions[start : start + 8]):
            names = "+".join(lessons.QUARTER_NAMES[m].replace("top-", "T").replace("bottom-", "B")[:2].upper()
                             for m in coalition.members) or "none"
            column.image(_big(coalition.image), caption=f"{names}: {coalition.probability:.0%}", width=90)
    st.caption("TL = top-left, TR = top-right, BL = bottom-left, BR = bottom-right quarter.")

    st.subheader("Step 3 · Fair shares that add up")
    st.plotly_chart(_bar(list(lessons.QUARTER_NAMES), [float(v) for v in lesson.quarter_values],
                         "Shapley value of each quarter"), key="learn_shap_values", width="stretch")
    total = float(lesson.quarter_values.sum())
    st.markdown(f"Sum of the four values: **{total:+.4f}**. Prediction with everything visible "
                f"({lesson.full:.4f}) minus the base value with everything hidden ({lesson.empty:.4f}): "
                f"**{lesson.full - lesson.empty:+.4f}**. They match: that is SHAP's promise.")
    if lesson.partition_values is not None:
        st.markdown("The real SHAP explainer plays the same game with many small regions instead of four quarters "
                    "(it estimates the values rather than trying every coalition).")
        a, b = st.columns(2)
        a.image(render.overlay_heatmap(_big(image), lesson.partition_values, signed=True, alpha=0.6),
                caption="SHAP values (orange +, blue −)", width=DISPLAY)
        if lesson.partition_base is not None and lesson.partition_probability is not None:
            b.markdown(f"Sum of all values: **{lesson.partition_values.sum():+.4f}**  \n"
                       f"prediction − base value: **{lesson.partition_probability - lesson.partition_base:+.4f}**")


# --- the shortcut lesson ------------------------------------------------------------------------


def shortcut_tab() -> None:
    st.markdown(lessons.LESSON_TEXT["shortcut"])
    _words_used(["shortcut", "faithfulness", "explanation"])
    if lessons.SHORTCUT_MODEL not in store.model_names():
        st.info("The shapes-shortcut sample model is missing. Run `make zoo` to train it.")
        return
    model = loaders.current_model(lessons.SHORTCUT_MODEL)
    with st.spinner("Testing the shortcut model…"):
        lesson = _shortcut_lesson(model.name, model.version, model)

    st.subheader("1 · Its score on its own test images")
    st.markdown("First we test the model the usual way: on new images drawn exactly like its training images, "
                "so nearly every circle still carries the mark.")
    st.metric("Accuracy on its own test images", f"{lesson.accuracy_test:.0%}",
              help=f"{lesson.n} test images drawn like the training images (the mark is on the circles).")

    st.subheader("2 · The explanation shows where it looks")
    a, b = st.columns(2)
    a.image(_big(lesson.example), caption="a test circle (see the magenta mark in the corner?)", width=DISPLAY)
    b.image(render.overlay_heatmap(_big(lesson.example), lesson.example_explanation.values),
            caption=f"Grad-CAM for “{lesson.example_explanation.target_label}”", width=DISPLAY)
    st.markdown(f"Over the test images with the mark, **{lesson.cue_mass:.0%}** of Grad-CAM's weight sits on the "
                f"mark, which covers only **{lesson.cue_share:.1%}** of the image.")

    st.subheader("3 · The trust panel agrees")
    shown = lesson.example_explanation  # the map above: the core's cache hands the same one back
    example = api.explain_input(model, shown.method, lesson.example, shown.target,
                                ground_truth=api.GroundTruth(cue_mask=lesson.example_cue_mask))
    kit.trust_panel(example, key="learn_shortcut_trust")

    st.subheader("4 · A test without the shortcut exposes it")
    st.markdown("In a second test set the mark is painted on a quarter of the images, whatever their shape.")
    c1, c2 = st.columns(2)
    c1.metric("Accuracy when the mark means nothing", f"{lesson.accuracy_nocue:.0%}",
              delta=f"{lesson.accuracy_nocue - lesson.accuracy_test:+.0%}")
    c2.metric("Non-circles called “circle” when marked", f"{lesson.circles_called_circle_with_mark:.0%}",
              help=f"Without the mark: {lesson.circles_called_circle_without_mark:.0%}.")
    if lesson.trap is not None and lesson.trap_explanation is not None:
        a, b = st.columns(2)
        a.image(_big(lesson.trap), caption=f"a {lesson.trap_true_label} with the mark", width=DISPLAY)
        b.image(render.overlay_heatmap(_big(lesson.trap), lesson.trap_explanation.values),
                caption=f"the model says “{lesson.trap_explanation.target_label}”", width=DISPLAY)

    st.subheader("5 · Correct the reason, retrain, check again")
    st.markdown("The labels were right; the model was right *for the wrong reason*. Tell it so: on training "
                "pictures where it looks at the corner, mark the corner as **not a reason**. Retraining then "
                "penalises the model for leaning on marked regions (“right for the right reasons”, Ross et al. "
                "2017) and also shows it each marked picture with the corner painted out.")
    _mark_section(model)
    _fix_section(lesson)


@st.cache_resource(show_spinner=False, max_entries=4)
def _mark_candidates(name: str, version: str, marked: int, _model: LoadedModel) -> list[lessons.MarkCandidate]:
    """Keyed by how many are marked, so the next batch is ranked once marks change."""
    from labels import Ledger

    return lessons.mark_candidates(_model, Ledger())


def _mark_section(model: LoadedModel) -> None:
    from labels import Ledger

    ledger = Ledger()
    marked = len(lessons.marked_examples(ledger))
    with st.spinner("Finding training pictures where the model looks at the corner…"):
        candidates = _mark_candidates(model.name, model.version, marked, model)
    st.markdown(f"**{marked}** training pictures are marked so far. Below: unmarked training pictures where the "
                "model's Grad-CAM puts the most weight on the corner (which covers under 1 % of the picture). "
                "A scripted reviewer who marked 50 such pictures lifted the accuracy when the mark means nothing "
                "from 72 % to about 97 % (see the README for how it was measured); a dozen already moves it.")
    if not candidates:
        st.caption("Every cued training picture the page offers is marked.")
        return
    refused = identity.refusal(access.LABEL)
    if refused:
        st.warning(refused, icon="🔒")
    columns = st.columns(6)
    chosen = []
    for slot, candidate in enumerate(candidates):
        with columns[slot % 6]:
            st.image(render.overlay_heatmap(_big(candidate.image), _grad_cam_values(model, candidate)), width=120,
                     caption=f"{candidate.label} · {candidate.cue_share:.1%} on the corner")
            if st.checkbox("not a reason", value=True, key=f"learn_mark_{candidate.example_id}",
                           disabled=refused is not None):
                chosen.append(candidate)
    if st.button(f"Mark the corner as “not a reason” on {len(chosen)} pictures", key=f"learn_mark_save_{marked}",
                 disabled=refused is not None or not chosen):
        try:
            written = lessons.mark_not_a_reason(ledger, chosen, annotator=sidebar.annotator() or lessons.LESSON_ANNOTATOR,
                                                actor=identity.current())
            st.session_state["learn_mark_notice"] = f"Marked {written} pictures."
            st.rerun()
        except Exception as exc:  # noqa: BLE001 - shown to the user, page keeps working
            st.error(str(exc), icon="⚠️")
    if notice := st.session_state.pop("learn_mark_notice", None):
        st.success(notice)


def _grad_cam_values(model: LoadedModel, candidate: lessons.MarkCandidate) -> np.ndarray:
    target = list(model.classes).index(candidate.label)
    return api.explain(model, "gradcam", [candidate.image], [target])[0].values


def _fix_section(before: lessons.ShortcutLesson) -> None:
    fixed = lessons.fixed_versions()
    if fixed:
        version = fixed[-1]
        fixed_model = loaders.model(lessons.SHORTCUT_MODEL, version)
        with st.spinner("Testing the retrained model…"):
            after = _shortcut_lesson(fixed_model.name, fixed_model.version, fixed_model)
        st.markdown(f"Version **{version}** was retrained with the marks (a candidate: the model in use "
                    "does not change until someone promotes it).")
        rows = {
            "": ["accuracy, own test set", "accuracy, mark means nothing", "Grad-CAM weight on the mark"],
            f"before ({before.version})": [f"{before.accuracy_test:.0%}", f"{before.accuracy_nocue:.0%}", f"{before.cue_mass:.0%}"],
            f"after ({version})": [f"{after.accuracy_test:.0%}", f"{after.accuracy_nocue:.0%}", f"{after.cue_mass:.0%}"],
        }
        st.table(rows)
    status = lessons.read_fix_status()
    running = bool(status and status.get("state") == "running")
    if running:
        progress = ""
        if status.get("epoch") and status.get("total_epochs"):
            progress = f" · epoch {status['epoch']} of at most {status['total_epochs']} (it stops early once it stops improving)"
        st.info(f"Retraining in the background: {status.get('stage', '…')}{progress}")
        st.button("Check progress", key="learn_fix_refresh")
    elif status and status.get("state") == "failed":
        st.error(f"The last retraining failed: {status.get('error', 'unknown error')}", icon="⚠️")
    refused = identity.refusal(access.RETRAIN)
    if refused and not running:
        st.warning(refused, icon="🔒")
    if not running and st.button("Retrain with the marks (a few minutes, in the background)",
                                 key="learn_fix_start", disabled=refused is not None):
        try:
            lessons.start_fix_job(actor=identity.current())
            st.rerun()
        except Exception as exc:  # noqa: BLE001 - shown to the user, page keeps working
            st.error(str(exc), icon="⚠️")


# --- guess, then reveal -------------------------------------------------------------------------

GRID = 4


def guess_tab() -> None:
    st.markdown(lessons.LESSON_TEXT["guess"])
    kind = st.radio("Guess on", ["an image", "a headline"], horizontal=True, key="learn_guess_kind")
    if kind == "an image":
        _guess_image()
    else:
        _guess_text()


def _guess_image() -> None:
    model = _pick_model("image", IMAGE_DEFAULT, "learn_guess_image_model")
    if model is None:
        return
    image, index = _pick_example(model, "learn_guess_image_index", default=1)
    example_key = f"{model.name}:{model.version}:{index}"
    predicted = api.predict(model, [image])[0]
    target = int(predicted.argmax())
    st.markdown(f"The model says **{model.classes[target]}**. Which cells do you think it looked at?")
    left, right = st.columns([1, 1])
    left.image(lessons.draw_grid(_big(image), GRID), width=DISPLAY + 64)
    picked = []
    with right:
        for row in range(GRID):
            columns = st.columns(GRID)
            for col in range(GRID):
                cell = row * GRID + col
                if columns[col].checkbox(str(cell + 1), key=f"learn_guess_cell_{cell}"):
                    picked.append(cell)
    if st.button("Reveal", key="learn_guess_image_reveal", type="primary", disabled=not picked):
        st.session_state["learn_guess_image_revealed"] = example_key
    if not picked:
        st.caption("Tick at least one cell, then press Reveal.")
    if st.session_state.get("learn_guess_image_revealed") != example_key or not picked:
        return
    explanation = api.explain(model, "gradcam", [image], [target])[0]
    score = lessons.image_guess_score(explanation.values, picked, GRID)
    a, b = st.columns(2)
    a.image(lessons.draw_grid(render.overlay_heatmap(_big(image), explanation.values), GRID, highlight=picked),
            caption="Grad-CAM · your cells outlined", width=DISPLAY + 64)
    b.image(lessons.draw_grid(_big(image), GRID, highlight=score.top), caption="the cells holding half of the map",
            width=DISPLAY + 64)
    st.success(score.message("cells"))
    m1, m2 = st.columns(2)
    m1.metric("Explanation in your cells", f"{score.mass_share:.0%}", delta=f"{score.mass_share - score.chance:+.0%} vs chance")
    m2.metric("Overlap with the top cells", f"{score.iou:.0%}",
              help="Intersection over union: cells in both sets divided by cells in either.")


def _guess_text() -> None:
    model = _pick_model("text", TEXT_DEFAULT, "learn_guess_text_model")
    if model is None:
        return
    text, index = _pick_example(model, "learn_guess_text_index")
    tokens = model.tokenize(str(text))
    example_key = f"{model.name}:{model.version}:{index}"
    predicted = api.predict(model, [text])[0]
    target = int(predicted.argmax())
    st.text(str(text))
    st.markdown(f"The model says **{model.classes[target]}**. Which words do you think decided it?")
    picked = st.pills("Your words", list(range(len(tokens))), selection_mode="multi", format_func=lambda i: tokens[i],
                      key=f"learn_guess_words_{example_key}") or []
    if st.button("Reveal", key="learn_guess_text_reveal", type="primary", disabled=not picked):
        st.session_state["learn_guess_text_revealed"] = example_key
    if st.session_state.get("learn_guess_text_revealed") != example_key or not picked:
        return
    method = "gradcam" if "gradcam" in registry.available(model) else "lime"
    explanation = api.explain(model, method, [text], [target])[0]
    score = lessons.text_guess_score(explanation.values, picked)
    # token_html escapes every token; no raw dataset text reaches the HTML.
    st.html(render.token_html(list(explanation.tokens or tokens), list(explanation.values)))
    st.caption(f"{method}: orange words pushed towards “{model.classes[target]}”. Top words: "
               + ", ".join(tokens[i] for i in score.top))
    st.success(score.message("words"))
    m1, m2 = st.columns(2)
    m1.metric("Explanation in your words", f"{score.mass_share:.0%}", delta=f"{score.mass_share - score.chance:+.0%} vs chance")
    m2.metric("Overlap with the top words", f"{score.iou:.0%}",
              help="Intersection over union: words in both sets divided by words in either.")
