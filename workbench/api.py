"""The Python API: what the pages, the CLI and notebooks all call."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from explainers import registry
from foundation.errors import WorkbenchError
from foundation.types import Explanation, Modality
from models import store
from models.loaded import LoadedModel
from workbench import cache


def load_model(name: str, version: str | None = None) -> LoadedModel:
    if name not in store.model_names():
        raise WorkbenchError(
            f"there is no model named {name!r}; choose one of: {', '.join(store.model_names()) or 'none'}."
        )
    return store.load(name, version)


def model_summaries() -> list[dict[str, Any]]:
    rows = []
    for name in store.model_names():
        version = store.current_version(name)
        manifest = store.read_manifest(name, version)
        rows.append(
            {
                "name": name,
                "version": version,
                "modality": manifest["modality"],
                "classes": manifest["classes"],
                "metrics": {
                    "test_accuracy": manifest.get("metrics", {}).get("test", {}).get("accuracy"),
                },
                "versions": store.all_version_ids(name),
                "sha256": manifest.get("sha256"),
            }
        )
    return rows


def predict(model: LoadedModel, inputs: Sequence[Any]) -> np.ndarray:
    return model.predict_proba(inputs)


def top_predictions(model: LoadedModel, probabilities: np.ndarray, k: int = 5) -> list[tuple[str, float]]:
    order = np.argsort(-probabilities)[:k]
    return [(model.classes[i], float(probabilities[i])) for i in order]


def prepare_images(model: LoadedModel, images: Sequence[np.ndarray]) -> np.ndarray:
    """Images resized to the model's input size, as uint8 (what explainers take)."""
    height, width = model.image_size
    if all(isinstance(i, np.ndarray) and i.dtype == np.uint8 and i.shape == (height, width, 3) for i in images):
        return np.stack(images) if len(images) else np.zeros((0, height, width, 3), np.uint8)
    batch = model.to_model_input(images)
    if not model.input_spec.get("rescales_inputs", True):
        batch = batch * 255.0
    return np.clip(np.rint(batch), 0, 255).astype(np.uint8)


def explain(
    model: LoadedModel,
    method: str,
    inputs: Sequence[Any],
    targets: Sequence[int] | None = None,
    *,
    seed: int = 0,
    use_cache: bool = True,
    **params: Any,
) -> list[Explanation]:
    """Explain a batch with a registered method (images are resized to the model's input).

    `use_cache=False` computes afresh and leaves target choice to the method itself: what the
    benchmarks time, so they measure the method and not the cache.
    """
    try:
        cls = registry.get(method)
    except KeyError as exc:
        raise WorkbenchError(str(exc.args[0]) + ".") from None
    if not cls.supports(model):
        raise WorkbenchError(f"{cls.title} does not apply to model {model.name}; choose another method.")
    if model.modality is Modality.IMAGE:
        inputs = list(prepare_images(model, inputs))
    if not use_cache:
        return cls(model, **params).explain(list(inputs), targets, seed=seed)
    if targets is None:
        targets = [int(i) for i in model.predict_proba(inputs).argmax(axis=1)]
    targets = [int(t) for t in targets]
    keys = [
        cache.result_key(model.name, model.version, item, method, dict(params, target=t, seed=seed))
        for item, t in zip(inputs, targets)
    ]

    def compute(indices: list[int]) -> list[Explanation]:
        explainer = cls(model, **params)
        return explainer.explain([inputs[i] for i in indices], [targets[i] for i in indices], seed=seed)

    return cache.EXPLANATIONS.get_or_compute_batch(keys, compute)


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
