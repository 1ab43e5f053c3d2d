"""Name -> explainer class, and which of them apply to a given model."""
from __future__ import annotations

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
    # Importing the modules registers their classes.
    import explainers.gradcam  # noqa: F401

    for optional in ("explainers.shap_explainer", "explainers.lime_explainer"):
        try:
            __import__(optional)
        except ModuleNotFoundError as exc:  # a method module not written yet
            if exc.name != optional:
                raise


def all_methods() -> dict[str, type[Explainer]]:
    _load_builtin_methods()
    return dict(_REGISTRY)


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
    return {name: cls for name, cls in all_methods().items() if cls.supports(model)}
