"""Results computed once per (model version, input, method, parameters) key."""
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
