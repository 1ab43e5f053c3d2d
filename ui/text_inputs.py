"""Choosing the text to explain: a sample headline from the model's dataset, or typed text.

A sample is chosen by its position in the list, never looked up by its words: two headlines
can read the same and still carry different rationales (the words known to matter).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from foundation.errors import InputError
from models.loaded import LoadedModel
from ui import loaders, widgets
from workbench import datasets, inputs

SAMPLE_SOURCE = "Pick a sample headline"
TYPED_SOURCE = "Type or paste text"
MAX_SAMPLES = 200
DEFAULT_TEXT = "Acme shares plunge after a surprise profit warning"
SAMPLE_SPLITS = ("test", "val", "train", "train_noisy")


@dataclass(frozen=True)
class ChosenText:
    text: str  # cleaned: what the model reads
    rationale: tuple[str, ...] | None = None  # a sample's words that carry its sentiment, for the trust panel
    # Where a dataset sample comes from (all None for typed text), so reason marks (issue 17) land on
    # the example the Review page shows under the same id; `example_text` is the dataset's own text,
    # whose words (text.split()) the marks' word indices count.
    dataset: str | None = None
    split: str | None = None
    example_id: str | None = None
    example_text: str | None = None


def sample_rationale(data: Any, position: int) -> tuple[str, ...] | None:
    """The rationale of the example at `position` in the split (None when the split has none)."""
    if data is None or data.rationales is None:
        return None
    return tuple(data.rationales[position])


def _sample_split(model: LoadedModel) -> Any:
    name = model.info.dataset
    return loaders.dataset(name, "test") if name in datasets.names() else None


def _choose_split(model: LoadedModel) -> Any:
    """The split to pick a sample from (test first); a training split's marks are the ones retraining uses."""
    name = model.info.dataset
    available = datasets.splits(name)
    options = [s for s in SAMPLE_SPLITS if s in available]
    if len(options) < 2:
        return loaders.dataset(name, "test")
    split = st.selectbox("Split", options, key="text_split",
                         help="Test examples were never seen in training. Reason marks on train or "
                              "train_noisy examples are the ones retraining learns from.")
    return loaders.dataset(name, split)


def _choose_sample(data: Any, split: str = "test") -> tuple[str, int]:
    texts = [str(t) for t in data.x[:MAX_SAMPLES]]
    # One picker per split: a picker kept across splits showed the old split's headline over the new one's.
    position = st.selectbox(f"Sample ({split} split)", range(len(texts)),
                            key="text_sample" if split == "test" else f"text_sample_{split}",
                            format_func=lambda i: texts[i],
                            help="Test examples were never seen in training." if split == "test" else
                                 f"The first {len(texts)} examples of the {split} split.")
    return texts[position], int(position)


def _type_text() -> str:
    st.session_state.setdefault("text_input", DEFAULT_TEXT)
    return st.text_area("Your text", key="text_input", max_chars=5000, height=90,
                        help="Lower-cased and stripped of punctuation by the model, like its training data.")


def choose_text(model: LoadedModel) -> ChosenText | None:
    """The source radio, the sample list or the text box; the cleaned text, or None after showing why not."""
    data = _sample_split(model)
    sources = ([SAMPLE_SOURCE] if data is not None and len(data) else []) + [TYPED_SOURCE]
    source = st.radio("Text", sources, horizontal=True, key="text_source", label_visibility="collapsed")
    rationale, where = None, {}
    if source == SAMPLE_SOURCE:
        left, right = st.columns([1, 4])
        with left:
            data = _choose_split(model)
        with right:
            raw, position = _choose_sample(data, data.split)
        rationale = sample_rationale(data, position)
        where = {"dataset": data.name, "split": data.split, "example_id": str(data.ids[position]), "example_text": raw}
    else:
        raw = _type_text()
    try:
        cleaned = inputs.clean_text(raw or "", max_tokens=model.sequence_length or None)
    except InputError as exc:
        widgets.show_error(str(exc))
        return None
    for notice in cleaned.notices:
        st.info(notice, icon="ℹ️")
    return ChosenText(cleaned.text, rationale, **where)
