"""The whole-dataset view: predictions, embeddings, metrics, confusion cells and failure slices.

What is computed once and cached on disk: one pass of the model over a dataset split gives
its class probabilities and its penultimate-layer features (the input of the model's last
`Dense` layer, found generically by `labels.features`; the "features" layer in the sample
models). The features are projected to 2-D with PCA (scikit-learn, deterministic). UMAP would
keep local neighbourhoods better but is not installed, and PCA is exact, fast (about a second
for 100,000 points) and needs no tuning; the first two components' share of the variance is
recorded so the page can say how much of the picture the map shows. The same pass measures
what the failure slices cut by (image brightness and contrast, the planted cue; text length
and negation words), so once the pass is stored nothing needs the images again.

The pass is a batch job over chunks of `CHUNK_SIZE` examples with a progress report after
each, so a split whose images are drawn on demand (`sample_data.scale`, "shapes-100k") is
never held in memory whole. Its result is one Parquet table per (model version, split) in the
workspace (`cache/dataset_view/<key>.parquet` + `<key>.json`, see `workbench.dataset_store`).
The key pins the model's name, version and sha256 and the split's content (its hash, or for a
generated split the generator's fingerprint), so a new model version or changed data is never
served a stale result; an entry that does not read back is recomputed.

Everything else here (metrics, confusion cells, slices, the map's sample) is cheap and
computed on demand from the stored columns.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from foundation import config
from foundation.dataset import Dataset
from foundation.errors import WorkbenchError
from foundation.types import Modality
from models.metrics import classification_metrics
from sample_data import scale
from workbench import dataset_store, datasets

# Bump when what is cached changes meaning, so old entries are ignored.
CACHE_VERSION = "dataset-view-3"  # 3: Parquet with the slice properties; 2: nested Dense features
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
# Lazily drawn shapes offered on the Dataset page only (not in the catalogue: they have no
# training splits and no model of their own). WORKBENCH_SCALE_SIZES (comma-separated counts,
# e.g. "5000") offers other sizes too, for the browser test and benchmarks.
SCALE_SIZES = (100_000,)
SCALE_SIZES_ENV = "WORKBENCH_SCALE_SIZES"
# The map draws at most this many points (all mistakes first); WebGL stays smooth and the
# page's message to the browser stays around a megabyte.
MAP_POINTS = 20_000
# Splits larger than this are computed by a background job (`outputs_job`) rather than in the
# page's script run, which any click would stop (20,000 take half a minute on 2 quiet cores).
BACKGROUND_FROM = 20_000
# The review-queue colouring cross-validates a head over every example's features: beyond this
# many examples it would be a second batch job, so it is not offered.
QUEUE_LIMIT = 25_000
# "ray" runs the page's background jobs on Ray (RAY_ADDRESS's cluster, else a local one).
DATASET_ENGINE_ENV = "WORKBENCH_DATASET_ENGINE"

Progress = Callable[[str, float], None]

# How many times outputs were actually computed in this process (the cache's tests read it).
COMPUTE_COUNT = 0


# --- which datasets to offer: everything comes from the one catalogue, workbench.datasets -------
# split_names and load_split only delegate; the Dataset page's widgets still call them by these names.


def scale_names() -> list[str]:
    """The lazily drawn shape sets on offer: `SCALE_SIZES` plus any sizes in $WORKBENCH_SCALE_SIZES."""
    sizes = set(SCALE_SIZES)
    for part in os.environ.get(SCALE_SIZES_ENV, "").split(","):
        part = part.strip().replace("_", "")
        if part.isdigit() and 0 < int(part) <= 10_000_000:
            sizes.add(int(part))
    return [scale.scale_name(n) for n in sorted(sizes)]


def _scale_size(name: str) -> int | None:
    return scale.size_of(name) if name in scale_names() else None


def scale_split(n: int) -> Dataset:
    """The lazily drawn scale set of `n` shapes (offered on the page or not): for benchmarks and tests."""
    return scale.scale_shapes(n)


def split_names(name: str) -> tuple[str, ...]:
    """The dataset's splits: `datasets.splits` (a scale set has one, "test")."""
    if _scale_size(name) is not None:
        return (scale.SPLIT,)
    return datasets.splits(name)


def load_split(name: str, split: str) -> Dataset:
    """One split of a dataset: `datasets.load`, or a lazily drawn scale set."""
    n = _scale_size(name)
    if n is not None:
        if split != scale.SPLIT:
            raise WorkbenchError(f"dataset {name!r} has only the split {scale.SPLIT!r}.")
        return scale.scale_shapes(n)
    return datasets.load(name, split)


def open_split(name: str, split: str) -> Dataset:
    """Any split by name, offered on the page or not: a generated scale set of any size, or a catalogue dataset.

    For the command line and Ray workers, which do not share the page's WORKBENCH_SCALE_SIZES.
    A catalogue name wins ("shapes-20k" is a stored dataset, not a drawn one).
    """
    n = scale.size_of(name)
    if n is None or name in datasets.names() or scale.scale_name(n) != name:  # "shapes-20000" is not a name
        return datasets.load(name, split)
    if split != scale.SPLIT:
        raise WorkbenchError(f"dataset {name!r} has only the split {scale.SPLIT!r}.")
    return scale.scale_shapes(n)


def compatible_datasets(model: Any) -> list[str]:
    """Datasets with the model's modality and classes; the one it was trained on first, scale sets last."""
    found = []
    for name in datasets.names():
        try:
            if datasets.modality(name) is model.modality and set(datasets.classes(name)) == set(model.classes):
                found.append(name)
        except WorkbenchError:
            continue  # an import being removed while we look
    own = model.info.dataset
    found = sorted(found, key=lambda n: (n != own, n))
    if model.modality is Modality.IMAGE and set(model.classes) == set(datasets.classes(datasets.LARGE_SHAPES)):
        found += [name for name in scale_names() if name not in found]
    return found


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
    # What the failure slices cut by, one array per property (see `property_columns`).
    properties: dict[str, np.ndarray] = field(default_factory=dict)
    # The Parquet entry these came from or went to (None when not cached).
    store: dataset_store.Store | None = None

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

    # A generated split is pinned by its generator's fingerprint: hashing it would mean drawing every image.
    content = getattr(dataset.x, "fingerprint", None) or dataset_hash(dataset)
    parts = [CACHE_VERSION, model.name, model.version, model.info.lineage.sha256 or "",
             dataset.name, dataset.split, content]
    return hashlib.sha256(json.dumps(parts).encode("utf-8")).hexdigest()[:32]


def drop_cached(model: Any, dataset: Dataset) -> bool:
    """Delete the stored entry of (model version, split) if there is one; True if one was there."""
    found = False
    for path in dataset_store.paths(cache_dir(), cache_key(model, dataset)):
        found |= path.is_file()
        path.unlink(missing_ok=True)
    return found


def check_compatible(model: Any, dataset: Dataset) -> None:
    if model.modality is not dataset.modality:
        raise WorkbenchError(f"model {model.name!r} reads {model.modality.value}s but dataset "
                             f"{dataset.name!r} holds {dataset.modality.value}s; choose a matching pair.")
    if set(model.classes) != set(dataset.classes):
        raise WorkbenchError(f"model {model.name!r} predicts {', '.join(model.classes)} but dataset "
                             f"{dataset.name!r} has classes {', '.join(dataset.classes)}; choose a matching pair.")


def dataset_outputs(model: Any, dataset: Dataset, *, use_cache: bool = True,
                    progress: Progress | None = None, engine: str = "local",
                    ray_workers: int | None = None) -> DatasetOutputs:
    """Probabilities and the 2-D embedding map of `dataset` under `model`, from the disk cache if there.

    `engine="ray"` computes a missing entry on the Ray this process is connected to (for large
    splits; `workbench dataset-cache --engine ray`, `ray_workers` actors, default one per CPU); the
    entry is the same either way.
    """
    check_compatible(model, dataset)
    key = cache_key(model, dataset)
    if use_cache:
        stored = _read_cache(key, len(dataset))
        if stored is not None:
            return stored
    outputs = _compute(model, dataset, progress or (lambda message, fraction: None), engine,
                       ray_workers)
    if use_cache:
        outputs = _write_cache(key, outputs, dataset)
    return outputs


def cached_outputs(model: Any, dataset: Dataset) -> DatasetOutputs | None:
    """The stored outputs if the entry exists and reads back; never computes."""
    check_compatible(model, dataset)
    return _read_cache(cache_key(model, dataset), len(dataset))


class OutputsJob:
    """`dataset_outputs` in a background thread, with its latest progress; one per cache key.

    The Dataset page starts one for a large split instead of computing inside its script run:
    a script run is stopped by any click or by leaving the page, which would throw away minutes
    of work; the thread finishes (and stores the entry) whatever the page does, and every
    session that opens the same split meanwhile watches the same job.
    """

    def __init__(self, model: Any, dataset: Dataset, engine: str = "local") -> None:
        self.n = len(dataset)
        self.engine = engine
        self.message, self.fraction = "starting", 0.0
        self.result: DatasetOutputs | None = None
        self.error: BaseException | None = None
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._run, args=(model, dataset), daemon=True,
                                        name=f"dataset-outputs-{dataset.name}-{dataset.split}")
        self._thread.start()

    def _run(self, model: Any, dataset: Dataset) -> None:
        try:
            if self.engine == "ray":
                self.result = _outputs_on_ray(model, dataset, self._report)
            else:
                self.result = dataset_outputs(model, dataset, progress=self._report)
        except BaseException as exc:  # noqa: BLE001 - reported to the page, which shows it
            self.error = exc

    def _report(self, message: str, fraction: float) -> None:
        self.message, self.fraction = message, float(min(max(fraction, 0.0), 1.0))

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return self.done


_JOBS: dict[str, OutputsJob] = {}
_JOBS_LOCK = threading.Lock()


def job_engine() -> str:
    """Where the page's background jobs run: $WORKBENCH_DATASET_ENGINE, "local" (default) or "ray".

    "ray" joins the cluster named by RAY_ADDRESS (else starts a local Ray) for each job and leaves
    it when the job ends; worth it on a cluster, not on one small machine.
    """
    engine = os.environ.get(DATASET_ENGINE_ENV, "local").strip().lower() or "local"
    if engine not in ("local", "ray"):
        raise WorkbenchError(f"{DATASET_ENGINE_ENV}={engine!r} is not an engine; use local or ray.")
    return engine


def _outputs_on_ray(model: Any, dataset: Dataset, report: Progress) -> DatasetOutputs:
    from workbench import ray_engine

    report("connecting to Ray", 0.0)
    owned = ray_engine.start()
    try:
        return dataset_outputs(model, dataset, progress=report, engine="ray")
    finally:
        if owned:
            ray_engine.stop()


def outputs_job(model: Any, dataset: Dataset, engine: str | None = None) -> OutputsJob:
    """The running (or finished, not yet collected) job for this model version and split; started if none.

    `engine` defaults to `job_engine()`.
    """
    check_compatible(model, dataset)
    key = cache_key(model, dataset)
    with _JOBS_LOCK:
        job = _JOBS.get(key)
        if job is None:
            job = _JOBS[key] = OutputsJob(model, dataset, engine or job_engine())
        return job


def collect_job(model: Any, dataset: Dataset) -> None:
    """Forget a finished job (its result is now on disk and in the page's memory; a failed one may be retried)."""
    key = cache_key(model, dataset)
    with _JOBS_LOCK:
        job = _JOBS.get(key)
        if job is not None and job.done:
            del _JOBS[key]


def _compute(model: Any, dataset: Dataset, report: Progress, engine: str = "local",
             ray_workers: int | None = None) -> DatasetOutputs:
    global COMPUTE_COUNT

    started = time.perf_counter()
    n = len(dataset)
    report(f"predicting and reading the penultimate layer of {n:,} examples"
           + (" on Ray" if engine == "ray" else ""), 0.0)
    if engine == "ray":
        feats, probs, props, layer = _forward_on_ray(model, dataset, report, started, ray_workers)
    elif engine == "local":
        feats, probs, props, layer = _forward_here(model, dataset, report, started)
    else:
        raise WorkbenchError(f"unknown engine {engine!r}; use local or ray.")
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
        properties=props,
    )


def _progress_line(done: int, n: int, started: float) -> tuple[str, float]:
    elapsed = time.perf_counter() - started
    left = elapsed / max(done, 1) * (n - done)
    return f"{done:,} of {n:,} examples ({elapsed:.0f} s, about {left:.0f} s left)", 0.9 * done / max(n, 1)


def _forward_here(model: Any, dataset: Dataset, report: Progress, started: float
                  ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], str]:
    """Features, probabilities (model's class order), slice properties and layer name, in this process."""
    from labels.features import extract

    n = len(dataset)
    features, probabilities, properties, layer = [], [], [], ""
    for start in range(0, n, CHUNK_SIZE):
        stop = min(start + CHUNK_SIZE, n)
        chunk = dataset.x[start:stop]  # a generated split draws just these images
        out = extract(model, chunk, batch_size=BATCH_SIZE)
        features.append(np.asarray(out.features, dtype=np.float32))
        probabilities.append(out.probabilities)
        properties.append(property_columns(dataset, chunk, start))
        layer = out.feature_layer
        report(*_progress_line(stop, n, started))
    feats = np.concatenate(features) if features else np.zeros((0, 0), np.float32)
    probs = np.concatenate(probabilities) if probabilities else np.zeros((0, len(model.classes)), np.float32)
    names = properties[0].keys() if properties else property_columns(dataset, dataset.x[0:0], 0).keys()
    props = {name: np.concatenate([p[name] for p in properties]) if properties else np.zeros(0) for name in names}
    return feats, probs, props, layer


def _forward_on_ray(model: Any, dataset: Dataset, report: Progress, started: float, workers: int | None
                    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], str]:
    """The same on the Ray this process is connected to (`workbench.ray_dataset`)."""
    from workbench import ray_dataset

    n = len(dataset)
    result = ray_dataset.forward(model, dataset, batch_size=BATCH_SIZE, workers=workers,
                                 progress=lambda done: report(*_progress_line(done, n, started)))
    return result.features, result.probabilities, result.properties, result.feature_layer


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
    store = dataset_store.open_store(cache_dir(), key, n, expect={"cache_version": CACHE_VERSION})
    if store is None:
        return None
    meta = store.meta
    try:
        classes = tuple(meta["classes"])
        names = [dataset_store.probability_column(k) for k in range(len(classes))]
        props = [dataset_store.property_column(name) for name in meta["properties"]]
        columns = store.columns([*names, dataset_store.MAP_X, dataset_store.MAP_Y, *props])
        probabilities = np.stack([columns[name] for name in names], axis=1).astype(np.float32)
        projection = np.stack([columns[dataset_store.MAP_X], columns[dataset_store.MAP_Y]], axis=1)
        return DatasetOutputs(
            model_name=meta["model"], model_version=meta["version"], dataset=meta["dataset"], split=meta["split"],
            classes=classes, probabilities=probabilities.reshape(n, len(classes)),
            projection=projection.astype(np.float32), feature_layer=meta["feature_layer"],
            feature_dim=int(meta["feature_dim"]), projection_method=meta["projection"],
            explained_variance=tuple(meta["explained_variance"]), seconds=float(meta["seconds"]), from_cache=True,
            properties={name: columns[dataset_store.property_column(name)] for name in meta["properties"]},
            store=store,
        )
    except dataset_store.READ_ERRORS:
        return None  # damaged: recompute and replace


def _write_cache(key: str, outputs: DatasetOutputs, dataset: Dataset) -> DatasetOutputs:
    """Store the outputs as one Parquet table (+ its description); returns them tied to the entry."""
    predicted = outputs.predicted
    y = np.asarray(dataset.y, dtype=np.int64)
    columns: dict[str, Any] = {
        dataset_store.INDEX: np.arange(len(y), dtype=np.int64),
        dataset_store.EXAMPLE_ID: list(dataset.ids),
        dataset_store.LABEL: y.astype(np.int16),
        dataset_store.PREDICTION: predicted.astype(np.int16),
        dataset_store.CORRECT: predicted == y,
        dataset_store.CONFIDENCE: outputs.confidence.astype(np.float32),
        dataset_store.MAP_X: outputs.projection[:, 0].astype(np.float32),
        dataset_store.MAP_Y: outputs.projection[:, 1].astype(np.float32),
    }
    for k in range(len(outputs.classes)):
        columns[dataset_store.probability_column(k)] = outputs.probabilities[:, k].astype(np.float32)
    for name, values in outputs.properties.items():
        columns[dataset_store.property_column(name)] = values
    meta = {
        "cache_version": CACHE_VERSION, "model": outputs.model_name, "version": outputs.model_version,
        "dataset": outputs.dataset, "split": outputs.split, "classes": list(outputs.classes),
        "n": int(len(outputs.probabilities)), "feature_layer": outputs.feature_layer,
        "feature_dim": outputs.feature_dim, "projection": outputs.projection_method,
        "explained_variance": list(outputs.explained_variance), "seconds": round(outputs.seconds, 3),
        "properties": list(outputs.properties),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    dataset_store.write(cache_dir(), key, columns, meta)
    store = dataset_store.open_store(cache_dir(), key, len(y))
    return dataclasses.replace(outputs, store=store)


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


def cell_examples(outputs: DatasetOutputs, dataset: Dataset, true_index: int, predicted_index: int) -> np.ndarray:
    """`confusion_cell`, answered by a filtered read of the stored table when there is one."""
    if outputs.store is not None:
        return outputs.store.where({dataset_store.LABEL: int(true_index),
                                    dataset_store.PREDICTION: int(predicted_index)})
    return confusion_cell(dataset.y, outputs.predicted, true_index, predicted_index)


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


def map_sample(y_true: np.ndarray, y_pred: np.ndarray, cap: int | None = None, seed: int = 0) -> np.ndarray:
    """Which examples the map draws (sorted dataset indices): all of them up to `cap`, else a sample.

    `cap` defaults to `MAP_POINTS` (read at call time). The sample keeps every mistake (they are what the map is looked at for) and fills the rest
    with correct examples, stratified by true class (each class keeps its share of the correct
    ones, largest remainders first). If the mistakes alone exceed `cap` they are sampled the same
    way, by true class. Within a class the examples are taken in one fixed random order (`seed`),
    so the same inputs always give the same points.
    """
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    cap = MAP_POINTS if cap is None else int(cap)
    n = len(y_true)
    if n <= cap:
        return np.arange(n)
    order = np.random.default_rng(seed).permutation(n)  # the fixed order in which examples are taken
    wrong = y_true != y_pred
    chosen: list[np.ndarray] = []
    mistakes = np.flatnonzero(wrong)
    if len(mistakes) >= cap:
        return np.sort(_stratified(order, wrong, y_true, cap))
    chosen.append(mistakes)
    chosen.append(_stratified(order, ~wrong, y_true, cap - len(mistakes)))
    return np.sort(np.concatenate(chosen))


def _stratified(order: np.ndarray, eligible: np.ndarray, groups: np.ndarray, count: int) -> np.ndarray:
    """`count` eligible indices, each group's share proportional to its size, taken in `order`."""
    ranked = order[eligible[order]]  # eligible indices in the fixed order
    if count <= 0 or len(ranked) == 0:
        return np.zeros(0, dtype=np.int64)
    labels, sizes = np.unique(groups[ranked], return_counts=True)
    quota = sizes * count / len(ranked)
    take = np.floor(quota).astype(np.int64)
    for extra in np.argsort(-(quota - take), kind="stable")[: count - int(take.sum())]:
        take[extra] += 1
    parts = [ranked[groups[ranked] == label][:amount] for label, amount in zip(labels, take)]
    return np.concatenate(parts).astype(np.int64)


def embedding_frame(outputs: DatasetOutputs, dataset: Dataset, indices: np.ndarray | None = None) -> pd.DataFrame:
    """One row per drawn example (all, or `indices`): map position, id, label, prediction, correctness, confidence."""
    classes = np.asarray(dataset.classes, dtype=object)
    rows = np.arange(len(dataset)) if indices is None else np.asarray(indices, dtype=np.int64)
    predicted = outputs.predicted[rows]
    y = np.asarray(dataset.y, dtype=int)[rows]
    ids = dataset.ids
    return pd.DataFrame({
        "index": rows,
        "example_id": [ids[i] for i in rows],
        "x": outputs.projection[rows, 0],
        "y": outputs.projection[rows, 1],
        "label": classes[y],
        "prediction": classes[predicted],
        "correct": predicted == y,
        "confidence": outputs.probabilities[rows].max(axis=1),
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


def property_columns(dataset: Dataset, chunk: Any, start: int) -> dict[str, np.ndarray]:
    """What the slices cut by, for `chunk` = examples `start`.. of `dataset` (the batch pass calls it).

    Images: brightness and contrast (and "cue", whether the planted cue shows, on shortcut data);
    texts: the length in words and one flag per negation word.
    """
    if dataset.modality is Modality.IMAGE:
        brightness, contrast = image_properties(chunk)
        found = {"brightness": brightness.astype(np.float32), "contrast": contrast.astype(np.float32)}
        if dataset.cue_masks is not None:
            masks = np.asarray(dataset.cue_masks[start : start + len(chunk)])
            found["cue"] = masks.reshape(len(masks), -1).any(axis=1)
        return found
    from foundation.tokens import tokenize

    tokens = [tokenize(str(text)) for text in chunk]
    found = {"length": np.array([len(t) for t in tokens], dtype=np.int32)}
    words = [set(t) for t in tokens]
    for word in NEGATION_WORDS:
        found[f"neg_{word}"] = np.array([word in w for w in words], dtype=bool)
    return found


def _property_slices(dataset: Dataset, properties: dict[str, np.ndarray] | None = None
                     ) -> list[tuple[str, str, np.ndarray]]:
    """(family, description, mask) for every single-property slice of the split.

    From the stored `properties` when given (the images are then not read at all), else
    measured from the dataset now.
    """
    if properties is None:
        properties = property_columns(dataset, dataset.x, 0)
    found: list[tuple[str, str, np.ndarray]] = []
    if dataset.modality is Modality.IMAGE:
        for description, mask in quantile_buckets(properties["brightness"], BRIGHTNESS_QUANTILES,
                                                  ("darkest", "dark", "bright", "brightest")):
            found.append(("brightness", description, mask))
        for description, mask in quantile_buckets(properties["contrast"], BRIGHTNESS_QUANTILES,
                                                  ("flattest", "low", "high", "most contrast")):
            found.append(("contrast", description, mask))
        cue = properties.get("cue")
        if cue is not None:
            cue = np.asarray(cue, dtype=bool)
            found.append(("planted cue", "cue present", cue))
            found.append(("planted cue", "cue absent", ~cue))
    else:
        for description, mask in quantile_buckets(properties["length"], LENGTH_QUANTILES,
                                                  ("shortest", "short", "long", "longest"), unit=" words"):
            found.append(("length", description, mask))
        any_negation = np.zeros(len(dataset), dtype=bool)
        for word in NEGATION_WORDS:
            mask = np.asarray(properties[f"neg_{word}"], dtype=bool)
            any_negation |= mask
            found.append(("negation", f"contains “{word}”", mask))
        found.append(("negation", "contains one of " + ", ".join(NEGATION_WORDS), any_negation))
        found.append(("negation", "contains none of them", ~any_negation))
    return found


def failure_slices(dataset: Dataset, predicted: np.ndarray, *, min_size: int = MIN_SLICE_SIZE,
                   crosses: bool = True, properties: dict[str, np.ndarray] | None = None) -> list[SliceResult]:
    """Slices of the split, worst error rate first (ties: bigger first), each of at least `min_size`.

    Cut by true class, by predicted class (its error rate is 1 - precision), by the simple
    properties above (image brightness/contrast quartiles and the planted cue; text length
    quartiles and negation words) and, with `crosses`, by true class × each property, which is
    where shortcuts show ("circle, cue absent"). With `properties` (the stored ones, see
    `property_columns`) no example is read.
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
    property_slices = _property_slices(dataset, properties or None)
    candidates.extend(property_slices)
    if crosses:
        for k, name in enumerate(classes):
            truth = y == k
            for family, description, mask in property_slices:
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
