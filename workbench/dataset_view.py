"""The whole-dataset view: predictions, embeddings, metrics, confusion cells and failure slices.

What is computed once and cached on disk: one pass of the model over a dataset split gives
its class probabilities and its penultimate-layer features (the input of the model's last
`Dense` layer, found generically by `labels.features`; the "features" layer in the sample
models). The features are projected to 2-D with PCA (scikit-learn, deterministic). UMAP would
keep local neighbourhoods better but is not installed, and PCA is exact, fast (well under a
second for 20,000 points) and needs no tuning; the first two components' share of the
variance is recorded so the page can say how much of the picture the map shows.

The cache lives in the workspace (`cache/dataset_view/`): `<key>.npz` (probabilities and the
projection, read without pickle) and `<key>.json` (what was computed, how and when). The key
pins the model's name, version and sha256 and the split's content hash, so a new model version
or changed data is never served a stale result.

Everything else here (metrics, confusion cells, slices) is cheap and recomputed on demand.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from foundation import config
from foundation.atomic import atomic_write
from foundation.dataset import Dataset
from foundation.errors import WorkbenchError
from foundation.types import Modality
from models.metrics import classification_metrics
from workbench import datasets

# Bump when what is cached changes meaning, so old entries are ignored.
CACHE_VERSION = "dataset-view-2"  # 2: nested last Dense layers give their input as features
CACHE_FOLDER = "dataset_view"
# Rows per forward pass; a progress report follows every chunk.
BATCH_SIZE = 256
CHUNK_SIZE = 2048
# A slice smaller than this is not reported: its error rate would be mostly noise.
MIN_SLICE_SIZE = 20
BRIGHTNESS_QUANTILES = 4
LENGTH_QUANTILES = 4
NEGATION_WORDS = ("not", "less", "than", "despite", "but")

# The scale-check dataset's name, for the page's help text; the catalogue owns the entry.
LARGE_SHAPES_NAME = datasets.LARGE_SHAPES

Progress = Callable[[str, float], None]

# How many times outputs were actually computed in this process (the cache's tests read it).
COMPUTE_COUNT = 0


# --- which datasets to offer: everything comes from the one catalogue, workbench.datasets -------
# split_names and load_split only delegate; the Dataset page's widgets still call them by these names.


def split_names(name: str) -> tuple[str, ...]:
    """The dataset's splits: `datasets.splits`."""
    return datasets.splits(name)


def load_split(name: str, split: str) -> Dataset:
    """One split of a dataset: `datasets.load`."""
    return datasets.load(name, split)


def compatible_datasets(model: Any) -> list[str]:
    """Datasets with the model's modality and classes; the one it was trained on first."""
    found = []
    for name in datasets.names():
        try:
            if datasets.modality(name) is model.modality and set(datasets.classes(name)) == set(model.classes):
                found.append(name)
        except WorkbenchError:
            continue  # an import being removed while we look
    own = model.info.dataset
    return sorted(found, key=lambda n: (n != own, n))


# --- predictions and embeddings, once per (model version, split) -------------------------------


@dataclass(frozen=True, eq=False)
class DatasetOutputs:
    """The model's probabilities (columns in the DATASET's class order) and 2-D map of one split."""

    model_name: str
    model_version: str
    dataset: str
    split: str
    classes: tuple[str, ...]
    probabilities: np.ndarray  # N x K
    projection: np.ndarray  # N x 2
    feature_layer: str
    feature_dim: int
    projection_method: str
    explained_variance: tuple[float, ...]
    seconds: float
    from_cache: bool = False

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    @property
    def confidence(self) -> np.ndarray:
        return self.probabilities.max(axis=1)


def cache_dir() -> Path:
    path = config.workspace_subdir("cache") / CACHE_FOLDER
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_key(model: Any, dataset: Dataset) -> str:
    from foundation.dataset import dataset_hash

    parts = [CACHE_VERSION, model.name, model.version, model.info.lineage.sha256 or "",
             dataset.name, dataset.split, dataset_hash(dataset)]
    return hashlib.sha256(json.dumps(parts).encode("utf-8")).hexdigest()[:32]


def check_compatible(model: Any, dataset: Dataset) -> None:
    if model.modality is not dataset.modality:
        raise WorkbenchError(f"model {model.name!r} reads {model.modality.value}s but dataset "
                             f"{dataset.name!r} holds {dataset.modality.value}s; choose a matching pair.")
    if set(model.classes) != set(dataset.classes):
        raise WorkbenchError(f"model {model.name!r} predicts {', '.join(model.classes)} but dataset "
                             f"{dataset.name!r} has classes {', '.join(dataset.classes)}; choose a matching pair.")


def dataset_outputs(model: Any, dataset: Dataset, *, use_cache: bool = True,
                    progress: Progress | None = None) -> DatasetOutputs:
    """Probabilities and the 2-D embedding map of `dataset` under `model`, from the disk cache if there."""
    check_compatible(model, dataset)
    key = cache_key(model, dataset)
    if use_cache:
        stored = _read_cache(key, len(dataset))
        if stored is not None:
            return stored
    outputs = _compute(model, dataset, progress or (lambda message, fraction: None))
    if use_cache:
        _write_cache(key, outputs)
    return outputs


def _compute(model: Any, dataset: Dataset, report: Progress) -> DatasetOutputs:
    global COMPUTE_COUNT
    from labels.features import extract

    started = time.perf_counter()
    n = len(dataset)
    features, probabilities, layer = [], [], ""
    report("predicting and reading the penultimate layer", 0.0)
    for start in range(0, n, CHUNK_SIZE):
        chunk = dataset.x[start : start + CHUNK_SIZE]
        out = extract(model, chunk, batch_size=BATCH_SIZE)
        features.append(out.features)
        probabilities.append(out.probabilities)
        layer = out.feature_layer
        report(f"{min(start + CHUNK_SIZE, n):,} of {n:,} examples", 0.9 * min(start + CHUNK_SIZE, n) / n)
    feats = np.concatenate(features) if features else np.zeros((0, 0), np.float32)
    probs = np.concatenate(probabilities) if probabilities else np.zeros((0, len(model.classes)), np.float32)
    report("projecting to 2-D (PCA)", 0.92)
    projection, explained = project_2d(feats)
    order = [list(model.classes).index(name) for name in dataset.classes]
    COMPUTE_COUNT += 1
    report("done", 1.0)
    return DatasetOutputs(
        model_name=model.name, model_version=model.version, dataset=dataset.name, split=dataset.split,
        classes=tuple(dataset.classes), probabilities=np.asarray(probs[:, order], dtype=np.float32),
        projection=projection, feature_layer=layer, feature_dim=int(feats.shape[1]) if feats.ndim == 2 else 0,
        projection_method="pca", explained_variance=explained, seconds=time.perf_counter() - started,
    )


def project_2d(features: np.ndarray) -> tuple[np.ndarray, tuple[float, ...]]:
    """PCA to two dimensions (and each component's share of the variance)."""
    features = np.asarray(features, dtype=np.float32)
    n = len(features)
    if n == 0:
        return np.zeros((0, 2), np.float32), (0.0, 0.0)
    dims = features.shape[1] if features.ndim == 2 else 0
    if n < 2 or dims == 0:
        return np.zeros((n, 2), np.float32), (0.0, 0.0)
    from sklearn.decomposition import PCA

    components = min(2, dims, n)
    pca = PCA(n_components=components, random_state=0)
    projected = pca.fit_transform(features).astype(np.float32)
    if components < 2:  # a one-dimensional feature space: the map is a line
        projected = np.pad(projected, ((0, 0), (0, 2 - components)))
    ratios = [float(r) for r in pca.explained_variance_ratio_] + [0.0] * (2 - components)
    return projected, tuple(round(r, 6) for r in ratios)


def _read_cache(key: str, n: int) -> DatasetOutputs | None:
    folder = cache_dir()
    meta_path, arrays_path = folder / f"{key}.json", folder / f"{key}.npz"
    if not (meta_path.is_file() and arrays_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        with np.load(arrays_path, allow_pickle=False) as data:
            probabilities = np.array(data["probabilities"], dtype=np.float32)
            projection = np.array(data["projection"], dtype=np.float32)
    except (OSError, ValueError, KeyError):
        return None  # damaged: recompute and replace
    if meta.get("cache_version") != CACHE_VERSION or len(probabilities) != n or len(projection) != n:
        return None
    return DatasetOutputs(
        model_name=meta["model"], model_version=meta["version"], dataset=meta["dataset"], split=meta["split"],
        classes=tuple(meta["classes"]), probabilities=probabilities, projection=projection,
        feature_layer=meta["feature_layer"], feature_dim=int(meta["feature_dim"]),
        projection_method=meta["projection"], explained_variance=tuple(meta["explained_variance"]),
        seconds=float(meta["seconds"]), from_cache=True,
    )


def _write_cache(key: str, outputs: DatasetOutputs) -> None:
    folder = cache_dir()
    atomic_write(folder / f"{key}.npz", lambda handle: np.savez(
        handle, probabilities=outputs.probabilities, projection=outputs.projection))
    meta = {
        "cache_version": CACHE_VERSION, "model": outputs.model_name, "version": outputs.model_version,
        "dataset": outputs.dataset, "split": outputs.split, "classes": list(outputs.classes),
        "n": int(len(outputs.probabilities)), "feature_layer": outputs.feature_layer,
        "feature_dim": outputs.feature_dim, "projection": outputs.projection_method,
        "explained_variance": list(outputs.explained_variance), "seconds": round(outputs.seconds, 3),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    # The JSON is written last: its presence says the arrays beside it are complete.
    atomic_write(folder / f"{key}.json", lambda handle: handle.write(json.dumps(meta, indent=1).encode("utf-8")))


# --- metrics and the confusion matrix ----------------------------------------------------------


def metrics(outputs: DatasetOutputs, dataset: Dataset) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1/support and the confusion matrix (rows = truth)."""
    return classification_metrics(dataset.y, outputs.predicted, dataset.classes)


def per_class_table(result: dict[str, Any]) -> pd.DataFrame:
    rows = [{"class": name, **values} for name, values in result["per_class"].items()]
    return pd.DataFrame(rows, columns=["class", "precision", "recall", "f1", "support"])


def confusion_cell(y_true: np.ndarray, y_pred: np.ndarray, true_index: int, predicted_index: int) -> np.ndarray:
    """Indices (dataset order) of the examples of class `true_index` predicted as `predicted_index`."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return np.flatnonzero((y_true == true_index) & (y_pred == predicted_index))


def worst_cell(confusion: Sequence[Sequence[int]]) -> tuple[int, int] | None:
    """The off-diagonal cell with the most examples (the most common mistake), or None."""
    matrix = np.array(confusion, dtype=int)
    if matrix.size == 0:
        return None
    off = matrix.copy()
    np.fill_diagonal(off, -1)
    if off.max() <= 0:
        return None
    true_index, predicted_index = np.unravel_index(int(off.argmax()), off.shape)
    return int(true_index), int(predicted_index)


def embedding_frame(outputs: DatasetOutputs, dataset: Dataset) -> pd.DataFrame:
    """One row per example: map position, ids, label, prediction, correctness and confidence."""
    classes = np.asarray(dataset.classes, dtype=object)
    predicted = outputs.predicted
    y = np.asarray(dataset.y, dtype=int)
    return pd.DataFrame({
        "index": np.arange(len(dataset)),
        "example_id": list(dataset.ids),
        "x": outputs.projection[:, 0],
        "y": outputs.projection[:, 1],
        "label": classes[y],
        "prediction": classes[predicted],
        "correct": predicted == y,
        "confidence": outputs.confidence,
    })


def review_queue_scores(model: Any, dataset: Dataset, progress: Progress | None = None) -> np.ndarray | None:
    """The review queue's issue score per example (dataset order), or None if the queue is absent."""
    try:
        from labels import queue
    except ImportError:
        return None
    result = queue.audit(model, dataset, progress=progress)
    table = result.table.sort_values("index")
    return table["issue_score"].to_numpy(dtype=np.float64)


# --- failure slices -------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SliceResult:
    """One slice of the split and how often the model fails on it."""

    family: str  # what the slice is cut by, e.g. "brightness" or "true class × planted cue"
    description: str
    indices: np.ndarray  # dataset order
    errors: int

    @property
    def n(self) -> int:
        return int(len(self.indices))

    @property
    def error_rate(self) -> float:
        return self.errors / self.n if self.n else 0.0


def image_properties(images: np.ndarray, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Per image: brightness (mean grey level, 0-255) and contrast (std of the grey levels)."""
    images = np.asarray(images)
    n = len(images)
    brightness = np.empty(n, dtype=np.float64)
    contrast = np.empty(n, dtype=np.float64)
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601 luma
    for start in range(0, n, chunk):  # chunked: a float copy of 20k images would be ~1 GB
        grey = images[start : start + chunk].astype(np.float32) @ weights
        flat = grey.reshape(len(grey), -1)
        brightness[start : start + chunk] = flat.mean(axis=1)
        contrast[start : start + chunk] = flat.std(axis=1)
    return brightness, contrast


def quantile_buckets(values: np.ndarray, quantiles: int, names: Sequence[str] | None = None,
                     unit: str = "") -> list[tuple[str, np.ndarray]]:
    """Split values into (up to) `quantiles` equal-count buckets: [(description, mask)].

    Bucket edges are the empirical quantiles; ties can merge buckets, so fewer may come back.
    """
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return []
    edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, quantiles + 1)))
    if len(edges) < 2:
        return [(f"all {_fmt(edges[0])}{unit}", np.ones(len(values), dtype=bool))]
    bucket = np.clip(np.searchsorted(edges[1:-1], values, side="right"), 0, len(edges) - 2)
    found = []
    for b in range(len(edges) - 1):
        mask = bucket == b
        if not mask.any():
            continue
        low, high = values[mask].min(), values[mask].max()
        label = f"Q{b + 1} of {len(edges) - 1}"
        if names is not None and len(edges) - 1 == len(names):
            label = f"{label} ({names[b]})"
        found.append((f"{label}: {_fmt(low)}–{_fmt(high)}{unit}", mask))
    return found


def _fmt(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 10 or float(value).is_integer() else f"{value:.2f}"


def _cue_present(dataset: Dataset) -> np.ndarray | None:
    """Whether the planted cue is visible in each image (shortcut data only)."""
    if dataset.cue_masks is None:
        return None
    masks = np.asarray(dataset.cue_masks)
    return masks.reshape(len(masks), -1).any(axis=1)


def _property_slices(dataset: Dataset) -> list[tuple[str, str, np.ndarray]]:
    """(family, description, mask) for every single-property slice of the split."""
    found: list[tuple[str, str, np.ndarray]] = []
    if dataset.modality is Modality.IMAGE:
        brightness, contrast = image_properties(dataset.x)
        for description, mask in quantile_buckets(brightness, BRIGHTNESS_QUANTILES,
                                                  ("darkest", "dark", "bright", "brightest")):
            found.append(("brightness", description, mask))
        for description, mask in quantile_buckets(contrast, BRIGHTNESS_QUANTILES,
                                                  ("flattest", "low", "high", "most contrast")):
            found.append(("contrast", description, mask))
        cue = _cue_present(dataset)
        if cue is not None:
            found.append(("planted cue", "cue present", cue))
            found.append(("planted cue", "cue absent", ~cue))
    else:
        from foundation.tokens import tokenize

        tokens = [tokenize(str(text)) for text in dataset.x]
        lengths = np.array([len(t) for t in tokens], dtype=np.float64)
        for description, mask in quantile_buckets(lengths, LENGTH_QUANTILES,
                                                  ("shortest", "short", "long", "longest"), unit=" words"):
            found.append(("length", description, mask))
        words = [set(t) for t in tokens]
        any_negation = np.zeros(len(tokens), dtype=bool)
        for word in NEGATION_WORDS:
            mask = np.array([word in w for w in words], dtype=bool)
            any_negation |= mask
            found.append(("negation", f"contains “{word}”", mask))
        found.append(("negation", "contains one of " + ", ".join(NEGATION_WORDS), any_negation))
        found.append(("negation", "contains none of them", ~any_negation))
    return found


def failure_slices(dataset: Dataset, predicted: np.ndarray, *, min_size: int = MIN_SLICE_SIZE,
                   crosses: bool = True) -> list[SliceResult]:
    """Slices of the split, worst error rate first (ties: bigger first), each of at least `min_size`.

    Cut by true class, by predicted class (its error rate is 1 - precision), by the simple
    properties above (image brightness/contrast quartiles and the planted cue; text length
    quartiles and negation words) and, with `crosses`, by true class × each property, which is
    where shortcuts show ("circle, cue absent").
    """
    y = np.asarray(dataset.y, dtype=int)
    predicted = np.asarray(predicted, dtype=int)
    if len(predicted) != len(y):
        raise ValueError(f"got {len(predicted)} predictions for {len(y)} examples")
    wrong = predicted != y
    classes = dataset.classes
    candidates: list[tuple[str, str, np.ndarray]] = []
    for k, name in enumerate(classes):
        candidates.append(("true class", f"truth = {name}", y == k))
    for k, name in enumerate(classes):
        candidates.append(("predicted class", f"predicted = {name}", predicted == k))
    properties = _property_slices(dataset)
    candidates.extend(properties)
    if crosses:
        for k, name in enumerate(classes):
            truth = y == k
            for family, description, mask in properties:
                candidates.append((f"true class × {family}", f"truth = {name}, {description}", truth & mask))
    results = []
    for family, description, mask in candidates:
        indices = np.flatnonzero(mask)
        if len(indices) < max(1, min_size):
            continue
        results.append(SliceResult(family, description, indices, int(wrong[indices].sum())))
    results.sort(key=lambda s: (-s.error_rate, -s.n, s.family, s.description))
    return results


def slices_table(slices: Sequence[SliceResult], overall_error: float | None = None) -> pd.DataFrame:
    """The slices as a table: family, slice, examples, errors, error rate (and vs overall)."""
    rows = []
    for s in slices:
        row = {"family": s.family, "slice": s.description, "examples": s.n, "errors": s.errors,
               "error_rate": round(s.error_rate, 4)}
        if overall_error is not None:
            row["vs_overall"] = round(s.error_rate - overall_error, 4)
        rows.append(row)
    columns = ["family", "slice", "examples", "errors", "error_rate"] + (["vs_overall"] if overall_error is not None else [])
    return pd.DataFrame(rows, columns=columns)
