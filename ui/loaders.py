"""Expensive things happen once: models per version, datasets per split."""
from __future__ import annotations

import streamlit as st

from models.loaded import LoadedModel


@st.cache_resource(show_spinner="Loading model…", max_entries=12)
def model(name: str, version: str) -> LoadedModel:
    from workbench import api

    return api.load_model(name, version)


@st.cache_resource(show_spinner="Preparing dataset…")
def dataset(name: str, split: str):
    from workbench import datasets

    return datasets.load(name, split)


def current_model(name: str) -> LoadedModel:
    from models import store

    return model(name, store.current_version(name))
