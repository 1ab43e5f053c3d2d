"""The Python API: what the pages, the CLI and notebooks all call."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from explainers import registry
from foundation.errors import WorkbenchError
from foundation.types import Modality
from models import store
from models.loaded import LoadedModel
# Explaining (one input or a batch, trust, comparison) lives in workbench.explaining; the API re-exports it.
from workbench.explaining import (
    Comparison,
    ExplainedInput,
    GroundTruth,
    MethodTab,
    PairAgreement,
    TrustReport,
    as_ground_truth,
    compare,
    explain,
    explain_input,
    ground_truth_of,
    measure_trust,
    method_tabs,
    prepare_images,
    prepare_input,
)

__all__ = [
    "Comparison", "ExplainedInput", "GroundTruth", "MethodTab", "PairAgreement", "TrustReport",
    "as_ground_truth", "compare", "explain", "explain_input", "gradcam_layer", "ground_truth_of", "load_model",
    "measure_trust",
    "method_tabs", "model_summaries", "predict", "prepare_images", "prepare_input", "rank_correlation", "read_inputs",
    "top_predictions",
]


def load_model(name: str, version: str | None = None) -> LoadedModel:
    if name not in store.model_names():
        raise WorkbenchError(
            f"there is no model named {name!r}; choose one of: {', '.join(store.model_names()) or 'none'}."
        )
    return store.load(name, version)


def model_summaries() -> list[dict[str, Any]]:
    """One row per model (its version in use): what `workbench models list` prints."""
    rows = []
    for name in store.model_names():
        version = store.current_version(name)
        info = store.manifest(name, version)
        rows.append(
            {
                "name": name,
                "version": version,
                "modality": info.modality.value,
                "classes": list(info.classes),
                "metrics": {
                    "test_accuracy": info.metrics.test.accuracy,
                },
                "versions": store.all_version_ids(name),
                "sha256": info.lineage.sha256,
            }
        )
    return rows


def predict(model: LoadedModel, inputs: Sequence[Any]) -> np.ndarray:
    return model.predict_proba(inputs)


def top_predictions(model: LoadedModel, probabilities: np.ndarray, k: int = 5) -> list[tuple[str, float]]:
    order = np.argsort(-probabilities)[:k]
    return [(model.classes[i], float(probabilities[i])) for i in order]


def read_inputs(model: LoadedModel, raw: Sequence[str]) -> list[Any]:
    """CLI inputs: image paths for image models, literal strings for text models."""
    from workbench import inputs as safe_inputs

    if model.modality is Modality.TEXT:
        return [safe_inputs.clean_text(text, max_tokens=model.sequence_length or None).text for text in raw]
    return [safe_inputs.read_image_file(Path(path)) for path in raw]


def gradcam_layer(model: LoadedModel) -> str:
    """The path of the convolution layer Grad-CAM reads for this model."""
    return registry.get("gradcam")(model).layer


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two attribution maps (flattened)."""
    from explainers.metrics import rank_correlation as spearman

    return float(spearman(np.asarray(a).ravel(), np.asarray(b).ravel()))
