"""The Dataset page's first computation on Ray, for large splits (issue 16).

What the page needs of each example (probabilities, penultimate-layer features for the 2-D
map, and the properties the failure slices cut by) is one forward pass plus a little image
arithmetic, so it scales out like `workbench audit --engine ray`: Ray Data streams example
numbers through an actor pool; each actor loads the model once and opens the split itself
(by name, from the shared workspace, or by drawing a generated scale set), so the images never
travel through the driver or the object store. The driver puts the rows back in split order,
checks that every actor read the same examples (ids) and the same layer, and hands the
features to the same PCA and cache writer the local engine uses
(`dataset_view.dataset_outputs(..., engine="ray")`).

Call `ray_engine.start` first (the `workbench dataset-cache --engine ray` command does).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from foundation.dataset import Dataset
from foundation.errors import WorkbenchError
from labels import features

_PROPERTY = "property:"
PROGRESS_ROWS = 2048


@dataclass(frozen=True)
class SplitForward:
    """One forward pass over a split, in split order: what `dataset_view` builds its outputs from."""

    features: np.ndarray  # N x D
    probabilities: np.ndarray  # N x K, in the MODEL's class order
    properties: dict[str, np.ndarray]
    feature_layer: str


def contiguous_runs(index: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) ranges covering `index` (sorted or not) in its own order: a slice reads a generated split cheaply."""
    index = np.asarray(index, dtype=np.int64)
    if len(index) == 0:
        return []
    breaks = np.flatnonzero(np.diff(index) != 1) + 1
    return [(int(run[0]), int(run[-1]) + 1) for run in np.split(index, breaks)]


class SplitActor:
    """A Ray actor: the model and the split opened once; then forward passes and slice properties for rows."""

    def __init__(self, model_name: str, version: str, dataset_name: str, split: str, batch_size: int) -> None:
        from workbench import api, dataset_view, ray_engine

        ray_engine.use_assigned_cpus()
        self.model = api.load_model(model_name, version)
        self.dataset = dataset_view.open_split(dataset_name, split)
        self.batch_size = batch_size

    def __call__(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from workbench.dataset_view import property_columns

        index = np.asarray(rows["id"], dtype=np.int64)
        feats, probs, props, layer = [], [], [], ""
        for start, stop in contiguous_runs(index):
            chunk = self.dataset.x[start:stop]
            out = features.extract(self.model, chunk, batch_size=self.batch_size)
            feats.append(np.asarray(out.features, dtype=np.float32))
            probs.append(np.asarray(out.probabilities, dtype=np.float32))
            props.append(property_columns(self.dataset, chunk, start))
            layer = out.feature_layer
        ids = np.asarray(self.dataset.ids, dtype=object)[index].astype(str)
        block = {"id": index, "example_id": ids, "features": np.concatenate(feats),
                 "probabilities": np.concatenate(probs), "layer": np.asarray([layer] * len(index))}
        for name in props[0]:
            block[_PROPERTY + name] = np.concatenate([p[name] for p in props])
        return block


def forward(model: Any, dataset: Dataset, *, batch_size: int = 256, workers: int | None = None,
            progress: Callable[[int], None] = lambda done: None) -> SplitForward:
    """Features, probabilities and slice properties of every example of `dataset`, computed on Ray actors.

    `progress(done)` is called with the number of examples received so far. Raises
    WorkbenchError when the workers opened a different split than this process holds (e.g. a
    cluster whose workers do not share this workspace).
    """
    import ray
    import ray.data

    from workbench import ray_engine

    n = len(dataset)
    if n == 0:
        raise WorkbenchError(f"{dataset.name}/{dataset.split} has no examples to compute.")
    pool = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    pool = max(1, min(pool, -(-n // batch_size)))
    # Blocks of about PROGRESS_ROWS examples: the driver hears of a block when it is done, so this
    # sets how often progress moves (16 blocks of 6,250 at 100k left it still for a minute).
    n_blocks = max(pool * 8, -(-n // PROGRESS_ROWS))
    data = ray_engine.example_numbers(n, max(1, min(-(-n // batch_size), n_blocks)))
    rows = data.map_batches(
        SplitActor, batch_size=batch_size, batch_format="numpy", num_cpus=1,
        compute=ray.data.ActorPoolStrategy(min_size=pool, max_size=pool),
        fn_constructor_kwargs={"model_name": model.name, "version": model.version, "dataset_name": dataset.name,
                               "split": dataset.split, "batch_size": batch_size})
    blocks: list[dict[str, np.ndarray]] = []
    done = 0
    for block in rows.iter_batches(batch_size=None, batch_format="numpy"):
        blocks.append(block)
        done += len(block["id"])
        progress(done)
    return _assemble(blocks, dataset)


def _assemble(blocks: list[dict[str, np.ndarray]], dataset: Dataset) -> SplitForward:
    """The actors' blocks back in split order, checked against the split this process holds."""
    ids = np.concatenate([b["id"] for b in blocks])
    order = np.argsort(ids, kind="stable")
    if not np.array_equal(ids[order], np.arange(len(dataset))):
        raise WorkbenchError(f"the Ray workers returned {len(ids):,} rows for {len(dataset):,} examples; "
                             "run the job again.")
    example_ids = np.concatenate([b["example_id"] for b in blocks])[order]
    if list(example_ids) != [str(i) for i in dataset.ids]:
        raise WorkbenchError(f"the Ray workers opened a different {dataset.name}/{dataset.split} than this "
                             "process: give every worker the same workspace (WORKBENCH_HOME on shared storage).")
    layers = {str(v) for b in blocks for v in b["layer"]}
    if len(layers) != 1:  # every actor must have read the same layer, or the rows do not compare
        raise WorkbenchError(f"the Ray workers disagreed on the feature layer: {sorted(layers)}")
    names = [key[len(_PROPERTY):] for key in blocks[0] if key.startswith(_PROPERTY)]
    return SplitForward(
        features=np.concatenate([b["features"] for b in blocks])[order].astype(np.float32),
        probabilities=np.concatenate([b["probabilities"] for b in blocks])[order].astype(np.float32),
        properties={name: np.concatenate([b[_PROPERTY + name] for b in blocks])[order] for name in names},
        feature_layer=layers.pop(),
    )
