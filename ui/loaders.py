"""Expensive things happen once: models per version, datasets per split, the prepared input per rerun.

A model the server preloaded at start-up (workbench/preload.py) is handed out as that very
object: the cache asks the preload registry first, so no model is ever loaded twice.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import streamlit as st

from foundation.types import Modality
from models.loaded import LoadedModel
from workbench import api, cache, preload, warmup

_PRELOAD_REPORTED_KEY = "_preload_failure_reported"
# Keras models this process's pages loaded themselves, per (name, version): the sidebar lists models
# from their manifests, so only a model someone chose appears here (the tests count on it).
loads: Counter[tuple[str, str]] = Counter()


@st.cache_resource(show_spinner="Loading model…", max_entries=12)
def model(name: str, version: str) -> LoadedModel:
    preloaded = preload.take(name, version)
    if preloaded is None:
        loads[(name, version)] += 1
    loaded = preloaded if preloaded is not None else api.load_model(name, version)
    spec = loaded.input_spec
    if loaded.modality is Modality.IMAGE and spec.height and spec.width:
        warmup.warm_partition_tree((spec.height, spec.width, 3))  # SHAP's first map on this size will not build it
    return loaded


@dataclass(frozen=True)
class Preview:
    """What a page can draw before its model is loaded (the start-up worker's first map)."""

    state: Callable[[], Hashable | None]  # what there is to draw now (None: nothing); cheap, asked often
    draw: Callable[[], Any]  # draws it; called again whenever `state()` changes


def wait_for_start_up(preview: Callable[[], Preview | None] | None = None) -> None:
    """While the server's start-up (TensorFlow, the default model, its first map) is under way, say
    what the page waits for and what is left, instead of a blank area; once, report a failed preload.
    Waits for the map's part only: the trust figures' part runs while the map is drawn.
    preview: what the page can show meanwhile (ui/first_page_view.py), drawn below the message; asked
    for only while the page waits (not on every run of a page whose model is loaded)."""
    if not preload.wait_ready(0):
        meanwhile = preview() if preview is not None else None
        # A visitor is waiting for a map: shap's warm-up and the preload's trust phase keep out of the way.
        with warmup.busy(), preload.visitor_waiting():
            if meanwhile is None:
                preload.model_wanted()  # nothing to show before the model: its start-up waits for nothing else
            message, shown = st.empty(), None
            body, drawn = st.empty(), None
            while not preload.wait_ready(0.2):
                stage = preload.status().stage or "Starting the workbench…"
                if stage != shown:  # send a change only
                    message.info(stage, icon="⏳")
                    shown = stage
                now = meanwhile.state() if meanwhile is not None else None
                if now is not None and now != drawn:
                    with body.container():
                        meanwhile.draw()
                    drawn = now
                    preload.preview_drawn(now)  # the server's own TensorFlow import waits for this
                # The visitor sees the page (and what it can show already): a scheduled preload may start
                # and take the interpreter's lock.
                preload.page_painted()
            message.empty()
            body.empty()  # the live page takes its place
    error = preload.status().error
    if error and not st.session_state.get(_PRELOAD_REPORTED_KEY):
        st.session_state[_PRELOAD_REPORTED_KEY] = True
        st.toast(f"The background start-up failed ({error}); the page loads the model itself.", icon="⚠️")


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
