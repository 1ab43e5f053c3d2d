"""The Explain image page's first map, drawn from the result stored with the model or by the
start-up worker (workbench/first_page.py) while this server is still loading TensorFlow: the same
input, prediction, Grad-CAM overlay and trust figures the live page shows first, in its layout, with
its controls greyed out until the live page (which answers them) takes the place of this one. Keep
the layout in step with pages/explain_image.py and ui/image_views.py, or the page jumps when the
live page arrives."""
from __future__ import annotations

import streamlit as st

from explainers import render
from explainers.metrics import BASELINE_LABELS, BASELINES
from foundation.escaping import markdown_literal
from foundation.types import Modality
from models import store
from ui import image_views, kit, loaders
from workbench import first_page, preload

DEFAULT_SOURCE = "Sample from the dataset"
NOTE = ("{origin}: the model's prediction and Grad-CAM for the first test image. "
        "The greyed-out controls open as soon as the model has loaded here (above: how far that is).")
ORIGIN = {True: ("Stored with the model", "stored with the model (computed in {:.2f} s)"),  # by `workbench train`
          False: ("Computed while the server started", "computed at start-up in {:.2f} s")}  # by the start-up worker


def preview(name: str) -> loaders.Preview | None:
    """The first page of `name` as loaders.wait_for_start_up draws it: again whenever the stored result changes
    (the map first, then with its trust figures). None when there is none to expect: another input than
    the stored one, or a model whose first page is neither stored nor being computed by the start-up worker
    (it computes the default model's); the page then says it needs its model at once."""
    if not first_page.has_first_page(name) or not at_default_input(store.manifest(name).dataset):
        return None
    if name != preload.default_model() and first_page.load_current(name) is None:
        return None  # nothing stored that reads back whole, and no worker computes it
    draws = iter(range(1_000_000))  # each drawing's widgets need their own keys within one script run
    return loaders.Preview(state=lambda: first_page.stamp(name), draw=lambda: show(name, f"first_page_{next(draws)}"))


def at_default_input(dataset: str) -> bool:
    """The visitor has not chosen anything else yet: the page would open on the stored sample."""
    state = st.session_state
    return (state.get("image_source", DEFAULT_SOURCE) == DEFAULT_SOURCE
            and state.get(f"split_{dataset}", first_page.SPLIT) == first_page.SPLIT
            and state.get(f"sample_index_{dataset}_{first_page.SPLIT}", first_page.INDEX) == first_page.INDEX
            and not state.get("image_upload"))


def show(name: str, key: str = "first_page") -> bool:
    """Draw the stored first page of `name`'s version in use; False (nothing drawn) when there is none
    yet or the visitor is looking at another input. key: a prefix for the greyed-out widgets' keys."""
    page = first_page.load_current(name)
    if page is None or not at_default_input(page.dataset):
        return False
    origin, caption_end = ORIGIN[page.stored_with_model]
    st.caption(NOTE.format(origin=origin))
    _greyed_input_controls(page, key)
    left, right = st.columns([1, 1], gap="large")
    with left:
        st.subheader("Input")
        caption = f"{markdown_literal(page.example_id)} · true label: {markdown_literal(page.true_label)}"
        st.image(kit.display_image(page.pixels), caption=caption, width=256)
    with right:
        st.subheader("Prediction")
        kit.prediction_block(page.classes, page.probabilities)
    st.subheader("Why: where the model looked")
    label = page.classes[page.target]
    c1, c2 = st.columns(2)
    c1.selectbox("Explain class", [label], disabled=True, key=f"{key}_class")
    c2.slider("Overlay opacity", 0.0, 1.0, 0.45, 0.05, disabled=True, key=f"{key}_alpha")
    picture, settings = st.columns([1, 1], gap="large")
    colormap = next(iter(render.COLORMAPS))  # the live page's default
    overlay = kit.overlay_image(kit.display_image(page.pixels), page.values, colormap=colormap)
    # Captioned as the live page captions it ("gradcam for …"): the browser tests and the app benchmark find it so.
    caption = f"{first_page.METHOD} for “{markdown_literal(label)}” · " + caption_end.format(page.map_seconds)
    picture.image(overlay, width=360, caption=caption)
    with settings:
        st.radio("Method", ["Grad-CAM", "Grad-CAM++"], horizontal=True, disabled=True, key=f"{key}_method")
        st.selectbox("Colour map", [colormap], disabled=True, key=f"{key}_colormap")
        st.caption(image_views.HOW_IT_WORKS["gradcam"])
    st.toggle("Measure how far to trust this map", value=True, disabled=True, key=f"{key}_trust")
    baseline = BASELINES[Modality.IMAGE][0]  # the trust panel's default
    st.columns([1, 2])[0].selectbox("Hidden pixels become", [BASELINE_LABELS.get(baseline, baseline)], disabled=True,
                                    key=f"{key}_baseline")
    with st.container(border=True):
        if page.trust_figures:
            sanity = (page.sanity_outcome, page.sanity_top_similarity or 0.0) if page.sanity_outcome else None
            kit.trust_figures(first_page.METHOD, page.trust_figures, page.trust_level, page.trust_verdict, "pixels",
                              sanity)
        else:
            st.caption(f"Can I trust this {first_page.METHOD} map? measuring…")
    return True


def _greyed_input_controls(page: first_page.FirstPage, key: str) -> None:
    st.radio("Image", [DEFAULT_SOURCE, "Upload an image"], horizontal=True, label_visibility="collapsed",
             disabled=True, key=f"{key}_source")
    st.selectbox("Split", [first_page.SPLIT], disabled=True, key=f"{key}_split")
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    left.number_input(f"Example (0–{page.split_size - 1})", value=first_page.INDEX, disabled=True, key=f"{key}_index")
    right.button("🎲 Random", disabled=True, key=f"{key}_random")
