"""Results computed once: explanations per (model version, input, method, parameters) key,
trust reports per (model version, explanation, input, ground truth)."""
from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from typing import Any, Callable, Sequence

import numpy as np


def input_digest(item: Any) -> str:
    digest = hashlib.sha256()
    if isinstance(item, str):
        digest.update(b"text:" + item.encode("utf-8"))
    else:
        array = np.ascontiguousarray(item)
        digest.update(f"array:{array.dtype}:{array.shape}:".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _truth_digest(ground_truth: Any) -> str:
    """What is known to matter (None, or an object with mask / cue_mask / rationale) as a digest."""
    if ground_truth is None:
        return "none"
    parts = [getattr(ground_truth, name, None) for name in ("mask", "cue_mask", "rationale")]
    return "|".join("-" if p is None else input_digest(p if isinstance(p, np.ndarray) else repr(p)) for p in parts)


def trust_key(model_name: str, version: str, explanation: Any, item: Any, ground_truth: Any) -> str:
    """The key of one explanation's trust figures: the same map of the same input, judged against
    the same ground truth, always measures the same."""
    digest = hashlib.sha256()
    digest.update(f"{model_name}|{version}|{explanation.method}|{explanation.target}".encode())
    digest.update(np.ascontiguousarray(explanation.values).tobytes())
    digest.update(input_digest(item).encode())
    digest.update(_truth_digest(ground_truth).encode())
    return digest.hexdigest()


def result_key(model_name: str, version: str, item: Any, method: str, params: dict[str, Any]) -> str:
    payload = json.dumps([model_name, version, input_digest(item), method, params], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


class ResultCache:
    """A small thread-safe LRU; explanations are small (one map per input)."""

    def __init__(self, max_items: int = 512) -> None:
        self.max_items = max_items
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def get_or_compute_batch(
        self, keys: Sequence[str], compute: Callable[[list[int]], list[Any]]
    ) -> list[Any]:
        """Fetch cached entries; compute only the missing ones, in one batch."""
        results: list[Any] = [self.get(key) for key in keys]
        missing = [i for i, value in enumerate(results) if value is None]
        if missing:
            for i, value in zip(missing, compute(missing)):
                self.put(keys[i], value)
                results[i] = value
        return results

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


EXPLANATIONS = ResultCache()
# Trust reports hold their curves (a few kilobytes each); a page shows one per explanation.
TRUST = ResultCache(max_items=64)


def forget_computed() -> None:
    """Forget every computed result the next call could reuse: cached explanations, LIME's
    scored perturbation pools and its segmentations (benchmarks time fresh work with it)."""
    from explainers.lime_explainer import forget_pools, forget_segments

    EXPLANATIONS.clear()
    forget_pools()
    forget_segments()
