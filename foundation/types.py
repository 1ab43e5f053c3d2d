"""The one result type that crosses every boundary."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping

import numpy as np


class Modality(str, Enum):
    IMAGE = "image"
    TEXT = "text"


@dataclass(frozen=True, eq=False)
class Explanation:
    """Attribution for one input and one target class.

    Image: `values` is an H x W float map at the size of the explained (model-sized) input.
    Text: `values` has one number per entry of `tokens`.
    Positive values are evidence for `target`, negative against (Grad-CAM is never negative).
    """

    method: str
    modality: Modality
    target: int
    target_label: str
    values: np.ndarray
    model_name: str
    model_version: str
    seconds: float
    params: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None
    tokens: tuple[str, ...] | None = None
    base_value: float | None = None
    # Method-specific extras, e.g. LIME's superpixel segments and weights.
    extras: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=np.float32)
        if self.modality is Modality.IMAGE and values.ndim != 2:
            raise ValueError(f"image explanation must be H x W, got shape {values.shape}")
        if self.modality is Modality.TEXT:
            if values.ndim != 1 or self.tokens is None or len(self.tokens) != len(values):
                raise ValueError("text explanation needs one value per token")
        object.__setattr__(self, "values", values)

    def summary(self) -> dict[str, Any]:
        """JSON-friendly description without the values themselves."""
        return {
            "method": self.method,
            "modality": self.modality.value,
            "target": self.target,
            "target_label": self.target_label,
            "model": self.model_name,
            "model_version": self.model_version,
            "seconds": round(self.seconds, 4),
            "params": dict(self.params),
            "seed": self.seed,
            "base_value": self.base_value,
        }
