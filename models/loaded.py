"""A model ready to predict: the Keras model, its manifest, and safe batched inference."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Sequence

import numpy as np

from foundation.tokens import tokenize
from foundation.types import Modality
from models.manifest import Manifest


@dataclass(eq=False)
class LoadedModel:
    """A loaded model version. Keras models are not thread-safe: callers share `lock`."""

    name: str
    version: str
    manifest: dict[str, Any]
    keras_model: Any
    lock: threading.RLock = field(default_factory=threading.RLock)
    _forward: Any = field(default=None, repr=False)

    @cached_property
    def info(self) -> Manifest:
        """The manifest, typed and checked (parsed once): `info.classes`, `info.input.height`,
        `info.metrics.test.accuracy`. `manifest` stays the raw dict for callers not converted yet."""
        return Manifest.from_dict(self.manifest, where=f"the manifest of model {self.name!r} {self.version}")

    @property
    def modality(self) -> Modality:
        return Modality(self.manifest["modality"])

    @property
    def classes(self) -> list[str]:
        return list(self.manifest["classes"])

    @property
    def input_spec(self) -> dict[str, Any]:
        return dict(self.manifest["input"])

    @property
    def image_size(self) -> tuple[int, int]:
        spec = self.input_spec
        return int(spec["height"]), int(spec["width"])

    @property
    def sequence_length(self) -> int:
        return int(self.input_spec.get("sequence_length", 0))

    def tokenize(self, text: str) -> list[str]:
        """The tokens the text model actually reads (truncated to its sequence length)."""
        tokens = tokenize(text)
        limit = self.sequence_length
        return tokens[:limit] if limit else tokens

    def to_model_input(self, inputs: Sequence[Any]) -> np.ndarray:
        """Images (uint8 RGB, any size) -> float32 batch at input size; texts -> string array."""
        if self.modality is Modality.TEXT:
            return np.asarray([str(t) for t in inputs], dtype=object).reshape(-1, 1)
        import cv2

        height, width = self.image_size
        batch = np.empty((len(inputs), height, width, 3), dtype=np.float32)
        for i, image in enumerate(inputs):
            image = np.asarray(image)
            if image.shape[:2] != (height, width):
                interp = cv2.INTER_AREA if image.shape[0] > height else cv2.INTER_LINEAR
                image = cv2.resize(image, (width, height), interpolation=interp)
            batch[i] = image
        if not self.input_spec.get("rescales_inputs", True):
            batch /= 255.0
        return batch

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities for a prepared batch through a compiled forward pass."""
        import tensorflow as tf

        with self.lock:
            if self._forward is None:
                model = self.keras_model
                self._forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
            if self.modality is Modality.TEXT:
                tensor = tf.constant(batch.astype(str))
            else:
                tensor = tf.convert_to_tensor(batch, dtype=tf.float32)
            return np.asarray(self._forward(tensor), dtype=np.float32)

    def predict_proba(self, inputs: Sequence[Any], batch_size: int = 512) -> np.ndarray:
        """Class probabilities, N x K, for raw inputs (images or strings)."""
        if len(inputs) == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        outputs = []
        for start in range(0, len(inputs), batch_size):
            outputs.append(self.forward(self.to_model_input(inputs[start : start + batch_size])))
        return np.concatenate(outputs, axis=0)
