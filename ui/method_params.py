"""Parameter widgets for the slow methods (SHAP, LIME), shared by the Explain pages,
and running one method with visible progress.

The method tabs render only when open (lazy tabs), and Streamlit forgets the state of a
widget that was not rendered in a run. `keep_state` re-asserts every parameter key at the
top of the page, so a budget chosen in the SHAP tab survives a visit to the Compare tab,
and the Compare tab can read every method's current parameters (`choice`) without
rendering their widgets. Widgets get their defaults from session state (`keep_state`),
never from a `value=` argument, which would clash with that.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping

import streamlit as st

from foundation.types import Explanation, Modality
from models.loaded import LoadedModel
from workbench import api

TITLES = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "shap": "SHAP", "lime": "LIME"}
IMAGE_MASKERS = {"blur": "Blur", "inpaint": "Inpaint (Telea)"}
SEGMENTATIONS = {"slic": "SLIC", "quickshift": "Quickshift"}

# Defaults per page (prefix) and parameter: small enough to answer in about a second here.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "image": {
        "cam_method": "gradcam",
        "colormap": "jet",
        "shap_max_evals": 500,
        "shap_masker": "blur",
        "shap_seed": 0,
        "lime_num_samples": 1000,
        "lime_segmentation": "slic",
        "lime_n_segments": 50,
        "lime_seed": 0,
    },
    "text": {
        "cam_method": "gradcam",
        "shap_max_evals": 500,
        "shap_seed": 0,
        "lime_num_samples": 5000,
        "lime_seed": 0,
    },
}
# The Grad-CAM widgets of the image page keep the keys they had before the other methods came.
_PLAIN_KEYS = {("image", "cam_method"): "cam_method", ("image", "colormap"): "colormap"}


def key(prefix: str, name: str) -> str:
    """The session-state key of one parameter on one page ("image" or "text")."""
    return _PLAIN_KEYS.get((prefix, name), f"{prefix}_{name}")


def keep_state(prefix: str) -> None:
    """Give every parameter of the page its default once, and keep the state of widgets in hidden tabs."""
    for name, default in _DEFAULTS[prefix].items():
        k = key(prefix, name)
        st.session_state[k] = st.session_state.get(k, default)


def value(prefix: str, name: str) -> Any:
    return st.session_state.get(key(prefix, name), _DEFAULTS[prefix][name])


@dataclass(frozen=True)
class MethodChoice:
    """One method with the parameters and seed the user chose for it."""

    method: str
    params: Mapping[str, Any]
    seed: int

    @property
    def title(self) -> str:
        return TITLES.get(self.method, self.method)

    def describe(self) -> str:
        """e.g. 'SHAP · 500 evaluations · blur masker · seed 0'."""
        p = self.params
        parts = [self.title]
        if "max_evals" in p:
            parts.append(f"{p['max_evals']:,} evaluations")
        if "masker" in p:
            parts.append(f"{p['masker']} masker")
        if "num_samples" in p:
            parts.append(f"{p['num_samples']:,} samples")
        if p.get("segmentation") == "slic":
            parts.append(f"SLIC, about {p['n_segments']} segments")
        elif p.get("segmentation") == "quickshift":
            parts.append("quickshift segments")
        if self.method in {"shap", "lime"}:
            parts.append(f"seed {self.seed}")
        return " · ".join(parts)


def choice(prefix: str, method: str) -> MethodChoice:
    """The current parameters of a method from session state (no widgets rendered)."""
    image = prefix == "image"
    if method == "shap":
        params: dict[str, Any] = {"max_evals": int(value(prefix, "shap_max_evals"))}
        if image:
            params["masker"] = value(prefix, "shap_masker")
        return MethodChoice("shap", params, int(value(prefix, "shap_seed")))
    if method == "lime":
        params = {"num_samples": int(value(prefix, "lime_num_samples"))}
        if image:
            params["segmentation"] = value(prefix, "lime_segmentation")
            params["n_segments"] = int(value(prefix, "lime_n_segments"))
        return MethodChoice("lime", params, int(value(prefix, "lime_seed")))
    if method in {"gradcam", "gradcam++"}:
        return MethodChoice(method, {}, 0)
    raise ValueError(f"no parameters known for method {method!r}")


def follow_prediction(state_key: str, model: LoadedModel, item: Any, predicted: Any) -> None:
    """Point the "Explain class" widget at the predicted class whenever the input (or model)
    changes; a class the user picks for this input stays until the input changes."""
    from workbench import cache

    seen_key = f"_{state_key}_input"
    digest = f"{model.name}:{model.version}:{cache.input_digest(item)}"
    if st.session_state.get(seen_key) != digest:
        st.session_state[seen_key] = digest
        st.session_state[state_key] = predicted


# --- widgets -------------------------------------------------------------------------------------


def widgets(prefix: str, method: str) -> MethodChoice:
    """Render one method's settings on a page ("image" or "text") and return the choice they make.

    For Grad-CAM the settings are its variant (Grad-CAM or Grad-CAM++), so the returned
    choice names the variant the user picked.
    """
    if method in {"gradcam", "gradcam++"}:
        label = "Method" if prefix == "image" else "Variant"
        st.radio(label, ["gradcam", "gradcam++"], horizontal=True, key=key(prefix, "cam_method"),
                 format_func=TITLES.get)
        return choice(prefix, value(prefix, "cam_method"))
    if method == "shap":
        return shap_widgets(prefix)
    if method == "lime":
        return lime_widgets(prefix)
    raise ValueError(f"no settings known for method {method!r}")


def shap_widgets(prefix: str) -> MethodChoice:
    """SHAP's settings in rows of two (they sit in a narrow column next to the map)."""
    first, second = st.columns(2)
    first.number_input(
        "Evaluations (max_evals)", min_value=50, max_value=5000, step=50, key=key(prefix, "shap_max_evals"),
        help="How many masked copies of the input the model sees. More = finer map, slower.",
    )
    second.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key=key(prefix, "shap_seed"),
                        help="The same seed, input and budget always give the same map.")
    if prefix == "image":
        st.radio(
            "Masker", list(IMAGE_MASKERS), format_func=IMAGE_MASKERS.get, horizontal=True,
            key=key(prefix, "shap_masker"),
            help="What a hidden region becomes: a blurred copy of itself, or paint filled in from around it.",
        )
    return choice(prefix, "shap")


def lime_widgets(prefix: str) -> MethodChoice:
    """LIME's settings in rows of two."""
    first, second = st.columns(2)
    first.number_input(
        "Samples (num_samples)", min_value=100, max_value=10000, step=100, key=key(prefix, "lime_num_samples"),
        help="How many perturbed copies the linear surrogate is fitted on. More = steadier weights, slower.",
    )
    second.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key=key(prefix, "lime_seed"),
                        help="The same seed, input and budget always give the same map.")
    if prefix == "image":
        first, second = st.columns(2)
        first.radio("Segmentation", list(SEGMENTATIONS), format_func=SEGMENTATIONS.get, horizontal=True,
                    key=key(prefix, "lime_segmentation"),
                    help="How the image is cut into superpixels, the pieces LIME switches on and off.")
        second.number_input(
            "Segments (SLIC)", min_value=5, max_value=300, step=5, key=key(prefix, "lime_n_segments"),
            disabled=value(prefix, "lime_segmentation") != "slic",
            help="About how many superpixels SLIC makes (quickshift chooses its own number).",
        )
    return choice(prefix, "lime")


# --- running a method ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Computed:
    explanation: Explanation
    wall_seconds: float  # time of this call: near zero when served from the cache

    @property
    def from_cache(self) -> bool:
        return self.wall_seconds < 0.25 * self.explanation.seconds or self.wall_seconds < 0.005

    def caption(self) -> str:
        if self.from_cache:
            return f"{self.explanation.seconds:.2f} s · from cache"
        return f"computed in {self.wall_seconds:.2f} s"


def compute(model: LoadedModel, chosen: MethodChoice, item: Any, target: int) -> Computed:
    """One explanation (cached per model version, input, method, parameters, target and seed)."""
    started = time.perf_counter()
    explanation = api.explain(model, chosen.method, [item], [target], seed=chosen.seed, **chosen.params)[0]
    return Computed(explanation, time.perf_counter() - started)


def wait_for_shap_warm_up() -> None:
    """Before the first SHAP call in this server: say why it takes a moment, while the
    background warm-up (started by app.py) finishes shap's one-off compilation."""
    from workbench import warmup

    status = warmup.status()
    if status.started and not status.done:
        with st.spinner("Preparing SHAP for its first use on this server (a one-off compilation, "
                        "started when the app did; a few seconds)…"):
            warmup.wait()


def compute_with_spinner(model: LoadedModel, chosen: MethodChoice, item: Any, target: int) -> Computed:
    if chosen.method == "shap":
        wait_for_shap_warm_up()
    unit = "words" if model.modality is Modality.TEXT else "regions"
    with st.spinner(f"Running {chosen.describe()}: hiding {unit} and asking the model again…"):
        return compute(model, chosen, item, target)
