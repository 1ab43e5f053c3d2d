"""Penultimate-layer features on Ray, for `workbench audit --engine ray` (issue 16).

The audit's cost grows with the forward passes over the split; the k-fold heads and the
ranking after them read N x D features (small next to the images). So only the forward
passes are scaled out: Ray Data streams the example numbers through an actor pool, each
actor loads the model once and runs the local engine's own `labels.features.extract` on its
slice, and the driver puts the rows back in dataset order. The ranking code is then the
same as the local engine's (`labels.queue.audit` with this module's extractor), so the two
engines rank alike on the same data (a test checks it).

The inputs go to the cluster once, as one object in Ray's object store; actors read their
slices from it (zero-copy on the node that holds it).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from labels import features


class FeatureActor:
    """A Ray actor: loads the model once, then extracts features and probabilities for slices of the inputs."""

    def __init__(self, model_name: str, version: str, inputs_ref: Any, batch_size: int) -> None:
        import ray

        from workbench import api, ray_engine

        ray_engine.use_assigned_cpus()
        self.model = api.load_model(model_name, version)
        self.inputs = ray.get(inputs_ref[0])  # wrapped in a list so Ray hands over the reference, not the value
        self.batch_size = batch_size

    def __call__(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        index = np.asarray(rows["id"], dtype=np.int64)
        if isinstance(self.inputs, np.ndarray):
            chunk = self.inputs[index]
        else:
            chunk = [self.inputs[int(i)] for i in index]
        out = features.extract(self.model, chunk, batch_size=self.batch_size)
        layer = np.asarray([out.feature_layer] * len(index))
        return {"id": index, "features": out.features, "probabilities": out.probabilities, "layer": layer}


def extractor(batch_size: int = features.BATCH_SIZE, workers: int | None = None):
    """An `extractor(model, inputs)` for `labels.queue.audit` that runs on the Ray this process is connected to."""

    def extract_on_ray(model: Any, inputs: Sequence[Any]) -> features.ModelOutputs:
        return extract(model, inputs, batch_size=batch_size, workers=workers)

    return extract_on_ray


def extract(model: Any, inputs: Sequence[Any], *, batch_size: int = features.BATCH_SIZE,
            workers: int | None = None) -> features.ModelOutputs:
    """`labels.features.extract` on Ray (call `ray_engine.start` first): same outputs, in input order."""
    import ray
    import ray.data

    from workbench import ray_engine

    n = len(inputs)
    if n == 0:
        return features.extract(model, inputs)
    pool = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    pool = max(1, min(pool, -(-n // batch_size)))
    inputs_ref = ray.put(inputs if isinstance(inputs, np.ndarray) else list(inputs))
    data = ray_engine.example_numbers(n, max(1, min(-(-n // batch_size), pool * 4)))
    rows = data.map_batches(
        FeatureActor, batch_size=batch_size, batch_format="numpy", num_cpus=1,
        compute=ray.data.ActorPoolStrategy(min_size=pool, max_size=pool),
        fn_constructor_kwargs={"model_name": model.name, "version": model.version,
                               "inputs_ref": [inputs_ref], "batch_size": batch_size})
    ids, feats, probs, layers = [], [], [], set()
    for block in rows.iter_batches(batch_size=None, batch_format="numpy"):
        ids.append(block["id"])
        feats.append(block["features"])
        probs.append(block["probabilities"])
        layers.update(str(v) for v in block["layer"])
    order = np.argsort(np.concatenate(ids), kind="stable")
    if len(layers) != 1:  # every actor must have read the same layer, or the rows do not compare
        raise RuntimeError(f"Ray actors disagreed on the feature layer: {sorted(layers)}")
    return features.ModelOutputs(np.concatenate(feats)[order].astype(np.float32),
                                 np.concatenate(probs)[order].astype(np.float32), layers.pop())
