"""Widgets of the "Your model & data" page: register a model, import a dataset.

Everything a user supplies (file names, class names, labels, problem details) is shown
through st.dataframe / st.text / st.json, or with Markdown escaped (`plain`), never as HTML.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from foundation import config
from foundation.errors import WorkbenchError
from foundation.escaping import markdown_literal
from models import model_card, model_io, store
from models.inspect import (MAX_VOCABULARY_FILE_BYTES, QUESTIONS, InferredSpec, parse_typed_classes, parse_vocabulary,
                            sidecar_classes_files, suggest_name)
from models.manifest import Manifest
from ui import identity
from workbench import datasets, imports, user_models

FROM_FOLDER = "From the models folder"
UPLOAD = "Upload a .keras file"
IMAGES = "Images (ZIP of class folders)"
TEXTS = "Texts (CSV)"
NO_MODEL = "(none: the labels found become the classes)"
NO_DATASET = "(none)"


def plain(text: str) -> str:
    """Text safe to pass to st.error/st.info/st.success: every Markdown character escaped."""
    return markdown_literal(text)


def _error(message: str) -> None:
    st.error(plain(message), icon="⚠️")


# ---------------------------------------------------------------------------- models


ASK = "asked below"


def _output_row(spec: InferredSpec) -> tuple[str, str, str]:
    text = model_io.OUTPUT_KINDS[spec.output_kind].replace("K-way", f"{spec.n_classes}-way")
    source = spec.sources.get("output", "")
    return ("output", text, "the output layer" if source.startswith("the output layer") else source)


def _preprocessing_row(spec: InferredSpec) -> tuple[str, str, str]:
    if "preprocessing" in spec.missing:
        return ("preprocessing", "? (nothing in the model tells)", ASK)
    channels = spec.input.get("channels") or 3
    try:
        shown = model_io.Preprocessing(spec.input["preprocessing"], spec.input.get("mean"), spec.input.get("std"),
                                       channels).describe()
    except (KeyError, WorkbenchError):
        shown = str(spec.input.get("preprocessing", "?"))
    source = spec.sources.get("preprocessing", "")
    if source.startswith("assumed"):
        shown = f"⚠️ ASSUMED: {shown}"
    return ("preprocessing", shown, source)


def _token_id_rows(spec: InferredSpec) -> list[tuple[str, str, str]]:
    vocabulary = spec.input.get("vocabulary")
    oov = spec.input.get("oov_id")
    if vocabulary is None:
        size, oov_shown = "? (the vocabulary is outside the model)", "? (from the vocabulary)"
    else:
        size = f"{len(vocabulary):,} tokens"
        oov_shown = "none: unknown words are skipped" if oov is None else f"{oov} ({vocabulary[oov]})"
    length = spec.input.get("sequence_length")
    return [
        ("text input", "token ids (integers)", "the model's input type"),
        ("vocabulary", size, spec.sources.get("vocabulary", ASK)),
        ("out-of-vocabulary id", oov_shown, spec.sources.get("oov_id", ASK)),
        ("sequence length", str(length) if length else "not fixed (texts are not truncated)",
         spec.sources.get("sequence_length", "")),
        ("padding", spec.input.get("padding", "post"), spec.sources.get("padding", "default (post)")),
    ]


def _spec_table(spec: InferredSpec) -> pd.DataFrame:
    """What was read from the model, one row per fact, with how it was known."""
    rows = [("modality", spec.modality.value, spec.sources.get("modality", "")), _output_row(spec)]
    if spec.modality.value == "image":
        height, width = spec.input.get("height"), spec.input.get("width")
        rows.append(("input size", f"{width} x {height} pixels" if height and width else "? (not fixed)",
                     spec.sources.get("input_size", ASK)))
        channels = spec.input.get("channels") or 3
        rows.append(("channels", "grey (1 channel)" if channels == 1 else "RGB (3 channels)", "the model's input layer"))
        rows.append(_preprocessing_row(spec))
    elif spec.input.get("encoding") == "token_ids":
        rows += _token_id_rows(spec)
    else:
        rows.append(("text input", "strings (the model tokenizes them itself)", "the model's input type"))
        rows.append(("sequence length", str(spec.input.get("sequence_length") or "not truncated"),
                     spec.sources.get("sequence_length", "")))
    classes = ", ".join(spec.classes) if spec.classes else f"? ({spec.n_classes} names)"
    rows.append(("classes", classes, spec.sources.get("classes", ASK)))
    rows.append(("Grad-CAM layer", spec.gradcam_layer or "none", spec.sources.get("gradcam_layer", "")))
    return pd.DataFrame(rows, columns=["what", "value", "how it was known"])


@st.cache_data(show_spinner="Checking the model…", max_entries=8)
def _inspect_path(path: str, mtime: float, size: int, sidecars: tuple[tuple[str, float, int], ...]) -> InferredSpec:
    return user_models.inspect_file(Path(path))


def _sidecar_stamps(path: Path) -> tuple[tuple[str, float, int], ...]:
    """The class files beside a model, as part of the cache key: editing one is seen at once."""
    stamps = []
    for candidate in sidecar_classes_files(path):
        try:
            stat = candidate.stat()
        except OSError:
            continue
        stamps.append((candidate.name, stat.st_mtime, stat.st_size))
    return tuple(stamps)


@st.cache_data(show_spinner=False, max_entries=32)
def _file_digest(path: str, mtime: float, size: int) -> str:
    from models.safe_load import sha256_file

    return sha256_file(Path(path))


@st.cache_data(show_spinner="Checking the model…", max_entries=4)
def _inspect_upload(data: bytes, filename: str) -> InferredSpec:
    with user_models.uploaded_file(data, filename) as path:
        return user_models.inspect_file(path)


def _chosen_folder_file() -> Path | None:
    folder = config.user_models_dir()
    if folder is None:
        st.info(
            "No models folder is configured. An administrator sets the environment variable "
            "WORKBENCH\\_MODELS\\_DIR to a folder of .keras files and restarts the app; the files then appear here."
        )
        return None
    files = user_models.models_dir_files()
    if not files:
        st.info("The models folder has no .keras files yet. Copy models into it (saved with model.save('name.keras')).")
        return None
    name = st.selectbox("Model file", [p.name for p in files], key="byo_model_file")
    if st.button("Register every new model in the folder", key="byo_scan"):
        try:
            results = user_models.scan_models_dir(actor=identity.current())
            st.dataframe(pd.DataFrame([{"file": r.path.name, "result": r.message} for r in results]), hide_index=True)
        except WorkbenchError as exc:
            _error(str(exc))
    return next(p for p in files if p.name == name)


def register_model_section() -> None:
    """Choose a model (folder or upload), show what was inferred, ask what was not, register."""
    st.subheader("Register your own model")
    st.caption("Keras 3 .keras files only, loaded in safe mode: .h5 files, Lambda layers and custom code are refused.")
    source = st.radio("Where is the model?", [FROM_FOLDER, UPLOAD], horizontal=True, key="byo_model_source")
    upload: tuple[bytes, str] | None = None
    path: Path | None = None
    if source == FROM_FOLDER:
        path = _chosen_folder_file()
        if path is None:
            return
    else:
        if not config.model_upload_allowed():
            st.info(
                "Uploading models is turned off (the safe default). An administrator can allow it by starting "
                "the app with WORKBENCH\\_ALLOW\\_MODEL\\_UPLOAD=1, or put the files in the WORKBENCH\\_MODELS\\_DIR folder."
            )
            return
        uploaded = st.file_uploader("Upload a .keras model", type=["keras", "h5", "hdf5"], key="model_upload")
        if uploaded is None:
            return
        upload = (uploaded.getvalue(), uploaded.name)
    try:
        if upload:
            spec = _inspect_upload(*upload)
            known = user_models.registered_sha256().get(hashlib.sha256(upload[0]).hexdigest())
        else:
            stat = path.stat()
            spec = _inspect_path(str(path), stat.st_mtime, stat.st_size, _sidecar_stamps(path))
            known = user_models.registered_sha256().get(_file_digest(str(path), stat.st_mtime, stat.st_size))
    except (WorkbenchError, OSError) as exc:
        _error(str(exc))
        return
    # st.table wraps long values (st.dataframe cuts them); its cells are Markdown, so each is escaped.
    st.table(_spec_table(spec).map(lambda cell: markdown_literal(cell, one_line=True)), hide_index=True,
             border="horizontal")
    for note in spec.notes:
        st.caption(plain(note))
    if known:
        st.success(plain(f"This file is already registered as model '{known}'; choose it in the sidebar."))
        return
    _register_form(spec, path, upload)


def _preprocessing_question(spec: InferredSpec) -> dict[str, Any]:
    """Ask for the preprocessing once: a preset (0-1 preselected, the tutorials' convention), mean/std for custom."""
    channels = spec.input.get("channels") or 3
    options = [p for p in model_io.PRESETS if channels == 3 or p not in (model_io.CAFFE, model_io.TORCH)]
    preset = st.selectbox(
        "How were the pixels prepared when the model was trained?", options, index=options.index(model_io.ZERO_ONE),
        format_func=model_io.PRESETS.get, key="byo_preprocessing", help=QUESTIONS["preprocessing"],
    )
    st.caption("Nothing in the model says it (no Rescaling layer, no known Keras applications base). "
               "Pixels divided by 255, as most tutorials do: 0-1. " + (
                   "`resnet50` / `vgg16` `.preprocess_input`: caffe. `mobilenet_v2.preprocess_input`: -1 to 1. "
                   "`densenet.preprocess_input`: torch." if channels == 3 else "Colour images are fed as grey."))
    answers: dict[str, Any] = {"preprocessing": preset}
    if preset == model_io.CUSTOM:
        names = ["grey"] if channels == 1 else ["red", "green", "blue"]
        st.caption("The model gets (pixel - mean) / std, per channel, with pixels in 0-255.")
        columns = st.columns(len(names))
        answers["mean"] = [col.number_input(f"Mean ({n})", 0.0, 255.0, 0.0, key=f"byo_mean_{i}")
                           for i, (col, n) in enumerate(zip(columns, names))]
        answers["std"] = [col.number_input(f"Std ({n})", 0.001, 1000.0, 1.0, key=f"byo_std_{i}")
                          for i, (col, n) in enumerate(zip(columns, names))]
    return answers


def _vocabulary_question() -> dict[str, Any] | None:
    """Upload the vocabulary of a token-id model, plus an optional OOV id and the padding side.
    None while no usable vocabulary is given (the error, if any, is shown)."""
    uploaded = st.file_uploader(
        "Vocabulary file (a JSON list, or one token per line; the position is the token id)",
        type=["txt", "json", "vocab"], key="byo_vocabulary", max_upload_size=MAX_VOCABULARY_FILE_BYTES // 2**20,
        help=QUESTIONS["vocabulary"],
    )
    tokens = _read_vocabulary(uploaded)
    left, right = st.columns(2)
    oov = left.number_input("Out-of-vocabulary id (optional)", min_value=0, value=None, step=1, key="byo_oov_id",
                            placeholder="found in the vocabulary",
                            help="The id words outside the vocabulary get. Left empty: the id of [UNK] (or a similar "
                                 "token) in the vocabulary; without one, unknown words are skipped.")
    padding = right.radio("Padding", model_io.PADDING_SIDES, horizontal=True, key="byo_padding",
                          format_func={"post": "post (zeros after the text)", "pre": "pre (zeros before)"}.get,
                          help="post: what TextVectorization does. pre: keras.utils.pad_sequences' default.")
    if tokens is None:
        return None
    answers: dict[str, Any] = {"vocabulary": tokens, "padding": padding}
    if oov is not None:
        answers["oov_id"] = int(oov)
    return answers


def _read_vocabulary(uploaded: Any) -> list[str] | None:
    """The uploaded vocabulary's tokens (with a one-line summary), or None (with the error, if any)."""
    if uploaded is None:
        st.caption("The model reads token ids, so the workbench needs its vocabulary to turn words into ids.")
        return None
    data = uploaded.getvalue()
    try:
        if len(data) > MAX_VOCABULARY_FILE_BYTES:
            raise WorkbenchError(f"{uploaded.name} is larger than {MAX_VOCABULARY_FILE_BYTES // 2**20} MB; "
                                 "a vocabulary is a list of tokens.")
        tokens = parse_vocabulary(data, uploaded.name)
    except WorkbenchError as exc:
        _error(str(exc))
        return None
    found = model_io.find_oov_id(tokens)
    st.caption(plain(f"{len(tokens):,} tokens read; " + (f"{tokens[found]} (id {found}) is the out-of-vocabulary token."
                                                         if found is not None else "no out-of-vocabulary token found.")))
    return tokens


def _register_form(spec: InferredSpec, path: Path | None, upload: tuple[bytes, str] | None) -> None:
    filename = upload[1] if upload else path.name
    answers: dict[str, Any] = {}
    ready = True
    with st.container(border=True):
        if spec.missing:
            st.markdown("**A few things could not be read from the model.** Answer once; they are saved with it.")
        name = st.text_input("Model name", value=suggest_name(filename), max_chars=48, key=f"byo_model_name:{filename}",
                             help="Lowercase letters, digits, - and _.")
        if "classes" in spec.missing:
            answers["classes"] = st.text_area(
                f"Class names ({spec.n_classes}, one per line, in the order of the model's outputs)",
                key="byo_classes", help=QUESTIONS["classes"],
            )
        if "preprocessing" in spec.missing:
            answers.update(_preprocessing_question(spec))
        if "input_size" in spec.missing:
            left, right = st.columns(2)
            answers["height"] = left.number_input("Input height (pixels)", 8, 4096, 224, key="byo_height")
            answers["width"] = right.number_input("Input width (pixels)", 8, 4096, 224, key="byo_width")
        if "vocabulary" in spec.missing:
            vocabulary = _vocabulary_question()
            ready = vocabulary is not None
            answers.update(vocabulary or {})
        options = [NO_DATASET] + [n for n in datasets.imported_names() if datasets.modality(n) is spec.modality]
        dataset = st.selectbox("Dataset (imported, with the same classes) for review and retraining", options,
                               key="byo_model_dataset")
        submitted = st.button("Register model", type="primary", key="byo_register", disabled=not ready)
    if submitted:
        _register(answers, name, dataset, path, upload)


def _register(answers: dict[str, Any], name: str, dataset: str, path: Path | None,
              upload: tuple[bytes, str] | None) -> None:
    classes = parse_typed_classes(answers.pop("classes")) if "classes" in answers else None
    try:
        kwargs = dict(classes=classes, overrides=answers, name=name.strip() or None,
                      dataset=None if dataset == NO_DATASET else dataset, created_by="app",
                      assume_preprocessing=False, actor=identity.current())
        with st.spinner("Registering…"):
            if upload:
                written = user_models.register_uploaded_model(upload[0], upload[1], **kwargs)
            else:
                written = user_models.register_model(path, **kwargs)
    except WorkbenchError as exc:
        _error(str(exc))
        return
    # The register functions give the JSON as written (shown below); its values are read typed.
    registered = Manifest.from_dict(written)
    st.success(plain(f"Registered model '{registered.name}' (version v1). Choose it in the sidebar's model list."))
    with st.expander("Model card", expanded=True):
        card = model_card.model_card(registered, status="current")  # escaped; headings made smaller here
        st.markdown(card.replace("\n## ", "\n#### ").replace("# Model card", "### Model card", 1))
    with st.expander("Manifest"):
        shown = dict(written, input=dict(written.get("input") or {}))
        if "vocabulary" in shown["input"]:  # up to a million tokens: not for the screen
            shown["input"]["vocabulary"] = f"({len(shown['input']['vocabulary']):,} tokens)"
        st.json(shown)


# ---------------------------------------------------------------------------- data


def _upload_key(uploaded: Any) -> str:
    return hashlib.sha256(uploaded.getvalue()).hexdigest()[:16] + uploaded.name


def import_data_section() -> None:
    """Upload images or texts, check them, show the problems, then import or cancel."""
    st.subheader("Import your own data")
    kind = st.radio("What kind of data?", [IMAGES, TEXTS], horizontal=True, key="byo_data_kind")
    if kind == IMAGES:
        st.caption("A ZIP with one folder per class (cat/1.png, dog/2.png …), or flat images plus a CSV of "
                   "file names and labels. Nothing is stored until you confirm.")
        types = ["zip"]
    else:
        st.caption("A CSV with a text column and a label column (any delimiter or encoding). "
                   "Nothing is stored until you confirm.")
        types = ["csv", "tsv", "txt"]
    uploaded = st.file_uploader("Data file", type=types, key="data_upload")
    if uploaded is None:
        return
    modality = "image" if kind == IMAGES else "text"
    models = [n for n in store.model_names() if store.manifest(n).modality.value == modality]
    left, right = st.columns(2)
    name = left.text_input("Dataset name", value=suggest_name(uploaded.name), max_chars=48, key="byo_dataset_name")
    for_model = right.selectbox("Check labels against a model's classes", [NO_MODEL] + models, key="byo_for_model")
    for_model = None if for_model == NO_MODEL else for_model
    columns: tuple[str, str] | None = None
    if kind == TEXTS:
        columns = _column_pickers(uploaded)
        if columns is None:
            return
    plan_key = (_upload_key(uploaded), kind, name, for_model, columns)
    if st.button("Check the data", key="byo_check", type="primary"):
        st.session_state.pop("byo_plan", None)
        try:
            with st.spinner("Reading and checking every row…"):
                if kind == IMAGES:
                    plan = imports.import_image_zip(uploaded.getvalue(), name.strip(), for_model=for_model,
                                                    source_name=uploaded.name)
                else:
                    plan = imports.import_text_csv(uploaded.getvalue(), columns[0], columns[1], name.strip(),
                                                   for_model=for_model, source_name=uploaded.name)
        except WorkbenchError as exc:
            _error(str(exc))
            return
        st.session_state["byo_plan"] = (plan_key, plan)
    stored = st.session_state.get("byo_plan")
    if stored and stored[0] == plan_key:
        _show_plan(stored[1])


def _column_pickers(uploaded: Any) -> tuple[str, str] | None:
    try:
        columns, preview = imports.preview_csv(uploaded.getvalue(), uploaded.name)
    except WorkbenchError as exc:
        _error(str(exc))
        return None
    guessed_text, guessed_label = imports.guess_columns(columns, "text")
    left, right = st.columns(2)
    text_column = left.selectbox("Text column", columns, key="byo_text_column",
                                 index=columns.index(guessed_text) if guessed_text in columns else 0)
    label_column = right.selectbox("Label column", columns, key="byo_label_column",
                                   index=columns.index(guessed_label) if guessed_label in columns else min(1, len(columns) - 1))
    st.dataframe(preview, hide_index=True)
    return text_column, label_column


def _show_plan(plan: imports.ImportPlan) -> None:
    summary = plan.summary()
    a, b, c = st.columns(3)
    a.metric("Usable rows", summary["rows_ok"])
    b.metric("Problem rows", summary["problems"])
    c.metric("Classes", len(plan.classes))
    st.dataframe(pd.DataFrame({"class": list(summary["counts"]), "examples": list(summary["counts"].values())}),
                 hide_index=True)
    if plan.image_size:
        st.caption(plain(f"Images will be stored at {plan.image_size[1]} x {plan.image_size[0]} pixels."))
    for note in plan.notes:
        st.text(note)
    if plan.problems:
        st.write("These rows have problems. Import without them, or cancel and fix the file:")
        st.dataframe(pd.DataFrame(plan.problem_rows()), hide_index=True)
    for reason in summary["blocking"]:
        _error(reason)
    can_import = not summary["blocking"]
    label = f"Import, skipping {len(plan.problems)} problem row(s)" if plan.problems else "Import"
    left, right = st.columns(2)
    if left.button(label, key="byo_commit", type="primary", disabled=not can_import):
        _commit(plan)
    if right.button("Cancel", key="byo_cancel"):
        st.session_state.pop("byo_plan", None)
        st.info("Cancelled: nothing was stored.")


def _commit(plan: imports.ImportPlan) -> None:
    try:
        report = imports.commit(plan, skip_problem_rows=True, created_by="app", actor=identity.current())
    except WorkbenchError as exc:
        _error(str(exc))
        return
    st.session_state.pop("byo_plan", None)
    splits = ", ".join(f"{k} {v}" for k, v in report.split_counts.items())
    st.success(plain(f"Imported dataset '{report.name}': {report.imported} examples ({splits})."))
    if plan.for_model:
        _offer_link(plan.for_model, report.name)


def _offer_link(model_name: str, dataset: str) -> None:
    """A registered model without a dataset gets this one, so review and retraining can use it."""
    info = store.manifest(model_name, store.ZOO_VERSION)
    if info.dataset or info.created_by == "workbench train":
        return
    try:
        user_models.link_dataset(model_name, dataset, actor=identity.current())
    except WorkbenchError as exc:
        _error(str(exc))
        return
    from ui import loaders

    loaders.model.clear()  # the cached model holds the old manifest
    st.success(plain(f"Model '{model_name}' now uses dataset '{dataset}' for review and retraining."))
