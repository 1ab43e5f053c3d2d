"""Expensive things happen once: models per version, datasets per split, the prepared input per rerun."""
from __future__ import annotations

from typing import Any

import streamlit as st

from models.loaded import LoadedModel
from workbench import api, cache


@st.cache_resource(show_spinner="Loading model…", max_entries=12)
def model(name: str, version: str) -> LoadedModel:
    return api.load_model(name, version)


@st.cache_resource(show_spinner="Preparing dataset…")
def dataset(name: str, split: str):
    from workbench import datasets

    return datasets.load(name, split)


def current_model(name: str) -> LoadedModel:
    from models import store

    return model(name, store.current_version(name))


_PREPARED_KEY = "_prepared_input"


def prepared_input(model: LoadedModel, item: Any) -> Any:
    """The input as the model reads it (api.prepare_input), prepared once per (model version,
    input) and kept in the session, so every tab and panel of a rerun reuses it."""
    key = f"{model.name}|{model.version}|{cache.input_digest(item)}"
    kept = st.session_state.get(_PREPARED_KEY)
    if kept is None or kept[0] != key:
        kept = (key, api.prepare_input(model, item))
        st.session_state[_PREPARED_KEY] = kept  # only the latest: one input is explained at a time
    return kept[1]
