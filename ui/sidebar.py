"""The shared sidebar: pick a model (per modality), see its version, classes and accuracy."""
from __future__ import annotations

from typing import Callable

import streamlit as st

from models import store
from models.loaded import LoadedModel
from ui import identity, loaders

MODEL_KEY = {"image": "image_model", "text": "text_model", None: "any_model"}


def _models_for(modality: str | None) -> list[str]:
    names = []
    for name in store.model_names():
        if modality is None or store.manifest(name).modality.value == modality:
            names.append(name)
    return names


def model_picker(modality: str | None) -> None:
    """Render the model selector for the current page's modality (None = any)."""
    names = _models_for(modality)
    if not names:
        st.sidebar.warning("No model is available for this page. Run `make zoo` to train the sample models.")
        return
    key = MODEL_KEY[modality]
    if st.session_state.get(key) not in names:
        st.session_state[key] = names[0]
    name = st.sidebar.selectbox("Model", names, key=key, help="Sample models ship with the workbench.")
    info = store.manifest(name)
    version = store.current_version(name)
    accuracy = info.metrics.test.accuracy
    st.sidebar.caption(
        f"**Version in use:** {version} · **test accuracy:** "
        f"{accuracy:.1%}" if accuracy is not None else f"**Version in use:** {version}"
    )
    st.sidebar.caption("**Classes:** " + ", ".join(info.classes))
    st.session_state["selected_model"] = name


def selected_model(modality: str | None,
                   preview: Callable[[str], loaders.Preview | None] | None = None) -> LoadedModel | None:
    """The model chosen in the sidebar, loaded when it is chosen (after the server's start-up, with
    a progress message while that is still under way). preview(name): what the page can draw of that
    model meanwhile (loaders.wait_for_start_up)."""
    name = st.session_state.get(MODEL_KEY[modality])
    if not name:
        return None
    loaders.wait_for_start_up((lambda: preview(name)) if preview is not None else None)
    return loaders.current_model(name)


def annotator_box() -> None:
    """The annotator's name, chosen once and stored with every label correction. With sign-in on
    there is no box: the signed-in identity is the name (nobody can type someone else's)."""
    identity.sidebar_box()
    if identity.sign_in_configured():
        return
    st.session_state.setdefault("annotator", "")
    st.sidebar.text_input(
        "Your name (for label corrections)", key="annotator", max_chars=60,
        placeholder="e.g. alice", help="Stored with every correction you make on the Review page.",
    )


def annotator() -> str:
    """The name stored with a decision: the signed-in person's, else the one typed in the sidebar."""
    if identity.sign_in_configured():
        try:
            person = identity.current()
        except Exception:
            return ""
        return person.name
    return str(st.session_state.get("annotator", "")).strip()
