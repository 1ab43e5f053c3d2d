"""Choosing the image to explain: a sample from the model's dataset or an upload."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from foundation.errors import InputError
from models.loaded import LoadedModel
from foundation.escaping import markdown_literal
from ui import loaders
from workbench import api, datasets, inputs

UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "bmp"]


@dataclass(frozen=True)
class ChosenImage:
    pixels: np.ndarray  # uint8 RGB, original size
    caption: str  # Markdown, with every user- or dataset-supplied part escaped
    true_label: str | None = None
    ground_truth: api.GroundTruth | None = None  # for samples with known masks
    # Where a dataset sample comes from, so reason marks (issue 17) land on the example the Review
    # page shows under the same id; all None for an upload, which is no dataset's example.
    dataset: str | None = None
    split: str | None = None
    example_id: str | None = None


def _sample_dataset_name(model: LoadedModel) -> str | None:
    name = model.info.dataset
    return name if name in datasets.names() else None


def _choose_sample(model: LoadedModel, dataset_name: str) -> ChosenImage:
    available = datasets.splits(dataset_name)
    options = [s for s in ("test", "test_nocue", "val", "train", "train_noisy") if s in available]
    split = st.selectbox("Split", options, key=f"split_{dataset_name}",
                         help="Test examples were never seen in training. "
                              "test_nocue (shapes-shortcut only) puts the corner mark on random classes.")
    data = loaders.dataset(dataset_name, split)
    key = f"sample_index_{dataset_name}_{split}"
    st.session_state.setdefault(key, 0)
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    if right.button("🎲 Random", key=f"random_{key}", help="Pick a random example"):
        st.session_state[key] = int(np.random.default_rng().integers(len(data)))
    index = left.number_input(f"Example (0–{len(data) - 1})", 0, len(data) - 1, key=key, step=1)
    label = data.classes[int(data.y[index])]
    caption = f"{markdown_literal(data.ids[index])} · true label: {markdown_literal(label)}"
    return ChosenImage(np.asarray(data.x[index]), caption, label, api.ground_truth_of(data, index),
                       dataset=data.name, split=split, example_id=str(data.ids[index]))


def _choose_upload() -> ChosenImage | None:
    uploaded = st.file_uploader(
        "Upload an image (PNG, JPEG, WebP or BMP)", type=UPLOAD_TYPES, key="image_upload",
        help="The image is resized to the model's input size; EXIF rotation is applied.",
    )
    if uploaded is None:
        st.info("Choose an image file to explain.")
        return None
    try:
        pixels = inputs.decode_image(uploaded.getvalue(), uploaded.name)
    except InputError as exc:
        st.error(str(exc), icon="⚠️")
        return None
    return ChosenImage(pixels, f"{markdown_literal(uploaded.name)} · {pixels.shape[1]}×{pixels.shape[0]} px")


def choose_image(model: LoadedModel) -> ChosenImage | None:
    dataset_name = _sample_dataset_name(model)
    sources = (["Sample from the dataset"] if dataset_name else []) + ["Upload an image"]
    source = st.radio("Image", sources, horizontal=True, key="image_source", label_visibility="collapsed")
    if source == "Upload an image":
        return _choose_upload()
    return _choose_sample(model, dataset_name)
