"""Settings widgets for every explanation method, built from the methods' declared
parameters (`explainers.params`), shared by the Explain pages.

Why generic: each method declares its parameters once (bounds, step, choices, labels, help,
the modality they apply to), so a new method or parameter appears on the pages without a
page edit. Parameters declared as not shown keep their defaults here (CLI and API only).

The method tabs render only when open (lazy tabs), and Streamlit forgets the state of a
widget that was not rendered in a run. `keep_state` re-asserts every parameter key at the
top of the page, so a budget chosen in the SHAP tab survives a visit to the Compare tab,
and the Compare tab can read every method's current parameters (`choice`) without
rendering their widgets. Widgets get their defaults from session state (`keep_state`),
never from a `value=` argument, which would clash with that.

Session-state keys: `{page}_{method}_{parameter}` (e.g. "image_shap_max_evals"),
`{page}_{method}_seed` for seeded methods; the Grad-CAM variant keeps "cam_method";
`{page}_{method}_stopping` is SHAP's and LIME's "Full budget (reproducible)" checkbox (a bool).
Running the chosen method is `ui.kit.running.explain`.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Mapping

import streamlit as st

from explainers import registry
from explainers.params import MethodParams, Spec, describe
from foundation.types import Modality
from models.loaded import LoadedModel

TITLES = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "shap": "SHAP", "lime": "LIME"}
SEED_HELP = "The same seed, input and budget always give the same map."
MAX_SEED = 2**31 - 1

# Page settings that belong to no method's parameters.
_PAGE_DEFAULTS: dict[str, dict[str, Any]] = {"image": {"colormap": "jet"}, "text": {}}
# The setting that picks between a method and its variants (Grad-CAM's keeps its old name).
_VARIANT_SETTINGS = {"gradcam": "cam_method"}
_VARIANT_LABELS = {"image": "Method", "text": "Variant"}
# Parameters declared for the CLI and API only that the pages offer all the same, as one checkbox
# that picks the given value: when SHAP and LIME stop ("Full budget (reproducible)" -> stopping="budget";
# unticked, the rounds stop once the map is stable). Unticked, the value is left out of the call, as
# the CLI does, so the recorded parameters and cached results stay as they were.
PAGE_OFFERED = {"stopping": "budget"}
# The Grad-CAM widgets of the image page keep the keys they had before the other methods came.
_PLAIN_KEYS = {("image", "cam_method"): "cam_method", ("image", "colormap"): "colormap"}


def key(prefix: str, name: str) -> str:
    """The session-state key of one parameter on one page ("image" or "text")."""
    return _PLAIN_KEYS.get((prefix, name), f"{prefix}_{name}")


def _modality(prefix: str) -> Modality:
    return Modality(prefix)


def _params_class(method: str) -> type[MethodParams]:
    try:
        return registry.params_class(method)
    except KeyError:
        raise ValueError(f"no parameters known for method {method!r}") from None


def _shown(method: str, modality: Modality) -> dict[str, Spec]:
    """The parameters a page offers for a method: declared as shown, and applying to its modality."""
    return {name: spec for name, spec in _params_class(method).specs().items()
            if spec.shown and spec.applies_to(modality)}


def _offered(method: str, modality: Modality) -> dict[str, Spec]:
    """The method's hidden parameters the page offers as a checkbox (PAGE_OFFERED)."""
    return {name: spec for name, spec in _params_class(method).specs().items()
            if name in PAGE_OFFERED and spec.applies_to(modality)}


def _variant_setting(method: str) -> str:
    return _VARIANT_SETTINGS.get(method, f"{method}_variant")


def chosen_variant(prefix: str, method: str) -> str:
    """The method a tab runs: the variant picked in `method`'s tab on this page ("image" or "text"),
    e.g. "gradcam++" in Grad-CAM's tab; `method` itself when it has no variants.

    Read from session state, so it works without rendering the tab (the Compare tab uses it).
    """
    if len(variants(prefix, method)) == 1:
        return method
    return value(prefix, _variant_setting(method))


def variants(prefix: str, method: str) -> list[str]:
    """A method and the registered methods offered as its variants on this page (e.g. Grad-CAM++)."""
    modality = _modality(prefix)
    return [method] + sorted(name for name, cls in registry.all_methods().items()
                             if cls.variant_of == method and modality in cls.modalities)


@functools.cache
def _defaults(prefix: str) -> dict[str, Any]:
    """Every setting of the page with its default: from the declarations of the methods that apply."""
    modality = _modality(prefix)
    defaults = dict(_PAGE_DEFAULTS[prefix])
    for name, cls in registry.all_methods().items():
        if modality not in cls.modalities:
            continue
        if cls.variant_of is None and len(variants(prefix, name)) > 1:
            defaults[_variant_setting(name)] = name
        declared = cls.Params.defaults(modality)
        defaults.update({f"{name}_{field}": declared[field] for field in _shown(name, modality)})
        defaults.update({f"{name}_{field}": False for field in _offered(name, modality)})  # checkbox unticked
        if cls.Params.seeded:
            defaults[f"{name}_seed"] = 0
    return defaults


def keep_state(prefix: str) -> None:
    """Give every parameter of the page its default once, and keep the state of widgets in hidden tabs."""
    for name, default in _defaults(prefix).items():
        k = key(prefix, name)
        st.session_state[k] = st.session_state.get(k, default)


def value(prefix: str, name: str) -> Any:
    return st.session_state.get(key(prefix, name), _defaults(prefix)[name])


@dataclass(frozen=True)
class MethodChoice:
    """One method with the parameters and seed the user chose for it."""

    method: str
    params: Mapping[str, Any]
    seed: int

    @property
    def title(self) -> str:
        return TITLES.get(self.method) or registry.get(self.method).title

    def describe(self) -> str:
        """e.g. 'SHAP · 500 evaluations · blur masker · seed 0'."""
        params_class = _params_class(self.method)
        parts = [self.title, *describe(params_class, self.params)]
        if params_class.seeded:
            parts.append(f"seed {self.seed}")
        return " · ".join(parts)


def _applies(spec: Spec, values: Mapping[str, Any]) -> bool:
    return all(values.get(other) == wanted for other, wanted in spec.when.items())


def choice(prefix: str, method: str) -> MethodChoice:
    """The current parameters of a method from session state (no widgets rendered)."""
    params_class = _params_class(method)
    shown = _shown(method, _modality(prefix))
    values = {name: spec.check(name, value(prefix, f"{method}_{name}")) for name, spec in shown.items()}
    # Only what matters for these values (no SLIC segment count with quickshift), as the result records.
    params = {name: v for name, v in values.items() if _applies(shown[name], values)}
    params.update({name: PAGE_OFFERED[name] for name in _offered(method, _modality(prefix))
                   if value(prefix, f"{method}_{name}") is True})
    seed = int(value(prefix, f"{method}_seed")) if params_class.seeded else 0
    return MethodChoice(method, params, seed)


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

    First the choice between the method and its variants (Grad-CAM or Grad-CAM++), then the
    chosen method's shown parameters and its seed, in rows of two (they sit in a narrow column).
    """
    options = variants(prefix, method)
    if len(options) > 1:
        st.radio(_VARIANT_LABELS[prefix], options, horizontal=True, key=key(prefix, _variant_setting(method)),
                 format_func=lambda name: TITLES.get(name) or registry.get(name).title)
        method = chosen_variant(prefix, method)
    cells = [(name, spec) for name, spec in _shown(method, _modality(prefix)).items()]
    if _params_class(method).seeded:
        # The seed sits next to the first setting (the budget), as people look for them together.
        cells.insert(min(1, len(cells)), ("seed", None))
    for row in range(0, len(cells), 2):
        for column, (name, spec) in zip(st.columns(2), cells[row : row + 2]):
            _render_field(column, prefix, method, name, spec)
    for name, spec in _offered(method, _modality(prefix)).items():
        label = (spec.choices or {}).get(PAGE_OFFERED[name], spec.label)
        st.checkbox(label, key=key(prefix, f"{method}_{name}"), help=spec.help)
    return choice(prefix, method)


def _render_field(column: Any, prefix: str, method: str, name: str, spec: Spec | None) -> None:
    """One parameter's widget: a radio for choices, a number input within the offered range, or text."""
    state_key = key(prefix, f"{method}_{name}")
    if spec is None:
        column.number_input("Seed", min_value=0, max_value=MAX_SEED, step=1, key=state_key, help=SEED_HELP)
        return
    current = {other: value(prefix, f"{method}_{other}") for other in spec.when}
    disabled = not _applies(spec, current)
    if spec.choices is not None:
        column.radio(spec.label, list(spec.choices), format_func=spec.choices.get, horizontal=True,
                     key=state_key, help=spec.help, disabled=disabled)
    elif spec.kind in (int, float):
        low, high = spec.widget_range()
        convert = spec.kind
        column.number_input(
            spec.label, key=state_key, help=spec.help, disabled=disabled,
            min_value=None if low is None else convert(low), max_value=None if high is None else convert(high),
            step=None if spec.step is None else convert(spec.step),
        )
    else:
        column.text_input(spec.label, key=state_key, help=spec.help, disabled=disabled)


# --- before running SHAP ----------------------------------------------------------------------


def wait_for_shap_warm_up() -> None:
    """Before the first SHAP call in this server: say why it takes a moment, while the
    background warm-up (started by app.py) finishes shap's one-off compilation."""
    from workbench import warmup

    status = warmup.status()
    if status.started and not status.done:
        with st.spinner("Preparing SHAP for its first use on this server (a one-off compilation, "
                        "started when the app did; a few seconds)…"):
            warmup.wait()

