"""Trust figures of a model version: measured once, kept beside the version's record.

The model card (`models.model_card`) only renders figures; measuring them needs the
explainers, the metrics and the dataset catalogue, which is orchestration, so it lives here.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from explainers import metrics, sanity
from foundation import config
from foundation.atomic import write_json_atomic
from foundation.errors import WorkbenchError
from models import model_card, store
from workbench import api, datasets

TRUST_EXAMPLES = 16
SANITY_EXAMPLES = 4  # the cascade re-explains them once per weighted layer


def trust_path(name: str, version: str) -> Path:
    """Where a version's trust figures are kept (name and version checked before they become a path)."""
    folder = config.workspace_subdir("models") / store.check_model_name(name) / "trust"
    return folder / f"{store.check_version_id(version)}.json"


def saved_trust(name: str, version: str) -> dict[str, Any] | None:
    """The figures measured for this version earlier, if any (and if measured on this very file)."""
    path = trust_path(name, version)
    if not path.is_file():
        return None
    saved = json.loads(path.read_text(encoding="utf-8"))
    # A discarded version's id can be given to a new version later: its figures must not carry over.
    return saved if saved.get("sha256") == store.manifest(name, version).lineage.sha256 else None


def _mean(values: Any) -> float:
    array = np.asarray(values, dtype=np.float64)
    array = array[np.isfinite(array)]
    return round(float(array.mean()), 4) if array.size else float("nan")


def _localisation(data: Any, explanations: list[Any], tokens: list[tuple[str, ...]]) -> dict[str, float]:
    figures: dict[str, float] = {}
    if data.masks is not None:
        masks = np.asarray(data.masks[: len(explanations)], dtype=bool)
        figures["share of the map on the object"] = _mean([metrics.mask_mass(e.values, m) for e, m in zip(explanations, masks)])
        figures["object's share of the image"] = _mean([metrics.area_share(m) for m in masks])
    if data.rationales is not None:
        rationales = data.rationales[: len(explanations)]
        figures["top words that carry the sentiment"] = _mean(
            [metrics.rationale_overlap(t, e.values, r) for e, t, r in zip(explanations, tokens, rationales)])
        figures["chance level"] = _mean([metrics.rationale_chance(t, r) for t, r in zip(tokens, rationales)])
    return figures


def default_method(model: Any) -> str:
    """The method the card's figures are measured with: Grad-CAM (one pass per batch) where the
    model has a convolution, otherwise the first method that applies, in the registry's order."""
    from explainers import registry

    available = registry.available(model)
    if not available:
        raise WorkbenchError(f"no explanation method applies to {model.name} {model.version}, so there is nothing to measure.")
    return next(iter(available))


def measure_trust(model: Any, *, n: int = TRUST_EXAMPLES, method: str | None = None, seed: int = 0) -> dict[str, Any]:
    """Mean trust figures of `method` (default: `default_method`) on the first `n` clean test
    examples of the model's dataset.

    Returns {"trust": {...}, "sanity": {...}} for `model_card(trust=..., sanity=...)`, and
    stores it in the workspace so the card shows it from then on.
    """
    method = method or default_method(model)
    dataset = model.info.dataset
    if not dataset:
        raise WorkbenchError(f"{model.name} {model.version} does not record its dataset, so there is nothing to measure on.")
    data = datasets.load(dataset, "test")
    inputs = list(data.x[:n])
    explanations = api.explain(model, method, inputs, seed=seed)
    curves = metrics.deletion_insertion(model, inputs, explanations, seed=seed, random_repeats=3)
    areas = curves.summary()
    trust = {
        "method": method,
        "examples": len(inputs),
        "deletion area (lower is better)": round(areas["deletion_auc"], 4),
        "deletion area, random order": round(areas["random_deletion_auc"], 4),
        "insertion area (higher is better)": round(areas["insertion_auc"], 4),
        "insertion area, random order": round(areas["random_insertion_auc"], 4),
    }
    tokens = [e.tokens or tuple(model.tokenize(str(x))) for e, x in zip(explanations, inputs)]
    trust.update(_localisation(data, explanations, tokens))
    # The cascading check (Adebayo et al. 2018), on the first few examples: it re-explains once per layer.
    few = min(len(inputs), SANITY_EXAMPLES)
    check = sanity.sanity_cascade(model, method, inputs[:few], [e.target for e in explanations[:few]],
                                  original=explanations[:few], seed=seed, independent=False,
                                  params=metrics.constructor_params(method, explanations[0]))
    sanity_figures = {"method": method, "examples": few,
                      "layers randomised, top first": ", ".join(check.cascade.layers),
                      "similarity with only the top layer randomised": round(check.top_similarity, 4),
                      "lowest similarity in the cascade": round(check.lowest_similarity, 4),
                      "verdict": f"{check.outcome}: the explanation {check.verdict}"}
    result = {"trust": trust, "sanity": sanity_figures, "sha256": model.info.lineage.sha256}
    write_json_atomic(trust_path(model.name, model.version), result)
    return result


def card_for(name: str, version: str, status: str | None = None) -> str:
    """The card of a stored version, with its trust figures once they were measured."""
    measured = saved_trust(name, version) or {}
    return model_card.model_card(store.manifest(name, version), status=status, trust=measured.get("trust"),
                                 sanity=measured.get("sanity"))
