"""A model ready to predict: the Keras model, its manifest, and safe batched inference.

Why one class: every floor (core, explainers, trust metrics, pages) brings inputs to the model
through it, so they all read the same typed manifest (`info`) and feed the same pixels.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Sequence

import numpy as np

from foundation.errors import ModelError
from foundation.tokens import tokenize
from foundation.types import Modality
from models.manifest import InputSpec, Manifest
from models.model_io import ModelIO


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
        `info.metrics.test.accuracy`. Every property below reads it; `manifest` is only the raw
        dict the model was built from (as written to disk)."""
        return Manifest.from_dict(self.manifest, where=self._where)

    @cached_property
    def io(self) -> ModelIO:
        """How inputs become this model's tensors and its outputs become probabilities."""
        return ModelIO.from_manifest(self.info)

    @property
    def _where(self) -> str:
        return f"the manifest of model {self.name!r} {self.version}"

    @property
    def modality(self) -> Modality:
        return self.info.modality

    @property
    def classes(self) -> list[str]:
        return list(self.info.classes)

    @property
    def input_spec(self) -> InputSpec:
        """What the model is fed: `models.manifest.InputSpec` (height, width, rescales_inputs ...)."""
        return self.info.input

    @property
    def image_size(self) -> tuple[int, int]:
        spec = self.input_spec
        if spec.height is None or spec.width is None:
            # Named here rather than as a TypeError deep inside an explainer.
            raise ModelError(f"{self._where} records no input height and width; register the model again.")
        return spec.height, spec.width

    @property
    def sequence_length(self) -> int:
        """The text model's token limit; 0 when it records none (texts are not truncated)."""
        return self.input_spec.sequence_length or 0

    def tokenize(self, text: str) -> list[str]:
        """The tokens the text model actually reads (truncated to its sequence length)."""
        if self.io.token_ids:
            return self.io.tokens(text)
        tokens = tokenize(text)
        limit = self.sequence_length
        return tokens[:limit] if limit else tokens

    def prepare_images(self, images: Sequence[Any]) -> np.ndarray:
        """Images of any size and colour layout -> uint8 RGB at the model's input size, N x H x W x 3.

        THE one place an image is brought to the model (the core, explainers, trust metrics and
        pages all come through here), so every method explains exactly the pixels the model reads.
        """
        height, width = self.image_size
        batch = np.empty((len(images), height, width, 3), dtype=np.uint8)
        for i, image in enumerate(images):
            batch[i] = fit_image(image, height, width)
        return batch

    def prepare_inputs(self, inputs: Sequence[Any]) -> np.ndarray | list[str]:
        """What explainers take: model-sized uint8 RGB images (prepare_images), or the texts as strings."""
        if self.modality is Modality.TEXT:
            return [str(t) for t in inputs]
        return self.prepare_images(inputs)

    def image_tensor(self, images: Any) -> np.ndarray:
        """Model-sized images with values in 0..255 (uint8, or float variants from a perturbation
        method) -> the float32 batch the Keras model receives: the only place that tensor is made.

        The model's recorded preprocessing is applied here (0-1, -1..1, caffe, torch, custom;
        luminance for grey models); the caller's images are never changed in place.
        """
        batch = np.asarray(images, dtype=np.float32)
        if batch.ndim == 3:
            batch = batch[None]
        height, width = self.image_size
        if batch.shape[1:] != (height, width, 3):
            raise ValueError(f"expected images of {height} x {width} x 3 (use prepare_images first), "
                             f"got {batch.shape[1:]}")
        return self.io.image_tensor(batch)

    def to_model_input(self, inputs: Sequence[Any]) -> np.ndarray:
        """Raw inputs -> what `forward` takes: images (any size) as the float32 image_tensor of
        prepare_images; texts as an N x 1 string array, or token ids for token-id models."""
        if self.modality is Modality.TEXT:
            return self.io.text_input(inputs)
        return self.image_tensor(self.prepare_images(inputs))

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities for a prepared batch through a compiled forward pass (the softmax or
        sigmoid the workbench adds for logit and one-unit outputs included)."""
        import tensorflow as tf

        with self.lock:
            if self._forward is None:
                model, io = self.keras_model, self.io
                # No autograph: nothing here branches on a tensor, and converting the Python source
                # cost 1.1 s of the first prediction's 1.5 s on a fresh server (issue 18).
                self._forward = tf.function(lambda x: io.probabilities(model(x, training=False)),
                                            reduce_retracing=True, autograph=False)
            return np.asarray(self._forward(self.model_tensor(batch)), dtype=np.float32)

    def score(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities for a prepared batch in perturbation scoring (SHAP, LIME, trust metrics):
        a checked LiteRT copy for image models when `models.runtime` accepts one, else `forward`.
        Displayed predictions never come from here (`forward`, `predict_proba`)."""
        from models.runtime import scorer

        return scorer(self)(batch)

    def scoring_runtime(self) -> Any:
        """Which runtime `score` uses (`models.runtime.RuntimeStatus`; settles it first)."""
        from models.runtime import scorer

        return scorer(self).wait()

    def model_tensor(self, batch: np.ndarray) -> Any:
        """A prepared batch (to_model_input) as the tensor type the model's input takes."""
        return self.io.tf_tensor(batch)

    def predict_proba(self, inputs: Sequence[Any], batch_size: int = 512) -> np.ndarray:
        """Class probabilities, N x K, for raw inputs (images or strings)."""
        if len(inputs) == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        outputs = []
        for start in range(0, len(inputs), batch_size):
            outputs.append(self.forward(self.to_model_input(inputs[start : start + batch_size])))
        return np.concatenate(outputs, axis=0)


def fit_image(image: Any, height: int, width: int) -> np.ndarray:
    """One image (grey H x W, H x W x 1, RGB or RGBA; uint8 or 0..255 floats) -> uint8 RGB at
    height x width. Grey is repeated over three channels and alpha is dropped: explainers must
    see exactly the three channels the model reads. Float values are rounded, not truncated."""
    import cv2

    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an H x W grey, RGB or RGBA image, got shape {image.shape}")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    image = image[:, :, :3]
    if image.dtype != np.uint8:
        image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    if image.shape[:2] != (height, width):
        # Shrinking averages (no aliasing); enlarging interpolates.
        interpolation = cv2.INTER_AREA if image.shape[0] > height else cv2.INTER_LINEAR
        image = cv2.resize(image, (width, height), interpolation=interpolation)
    return np.ascontiguousarray(image)
