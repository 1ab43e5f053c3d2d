"""Name -> explainer class, and which of them apply to a given model.

Listings follow the classes' declared `order` (then name), never the order their modules
happened to be imported in (the SHAP warm-up imports its module early), so every list of
methods, tabs and choices alike, comes out the same.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Mapping

from explainers.base import Explainer
from explainers.params import MethodParams, labelled

if TYPE_CHECKING:  # pragma: no cover
    from models.loaded import LoadedModel

_REGISTRY: dict[str, type[Explainer]] = {}


def register(cls: type[Explainer]) -> type[Explainer]:
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtin_methods() -> None:
    # Importing the modules registers their classes (by name: nothing else is used from them).
    importlib.import_module("explainers.gradcam")

    for optional in ("explainers.shap_explainer", "explainers.lime_explainer"):
        try:
            __import__(optional)
        except ModuleNotFoundError as exc:  # a method module not written yet
            if exc.name != optional:
                raise


def all_methods() -> dict[str, type[Explainer]]:
    """Every registered method, in declared order."""
    _load_builtin_methods()
    return {name: _REGISTRY[name] for name in sorted(_REGISTRY, key=lambda n: (_REGISTRY[n].order, n))}


def get(name: str) -> type[Explainer]:
    methods = all_methods()
    if name not in methods:
        raise KeyError(f"unknown explanation method {name!r}; choose one of {', '.join(sorted(methods))}")
    return methods[name]


def params_class(name: str) -> type[MethodParams]:
    """The declared parameters of a method (KeyError for an unknown method, as `get`)."""
    return get(name).Params


def labelled_params(method: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Recorded parameters keyed by their declared labels (names kept for an unknown method or name)."""
    try:
        return labelled(params_class(method), params)
    except KeyError:
        return dict(params)


def available(model: "LoadedModel") -> dict[str, type[Explainer]]:
    """The methods that can explain `model`, in declared order."""
    return {name: cls for name, cls in all_methods().items() if cls.supports(model)}
