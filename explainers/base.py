"""The contract every explanation method follows.

Each method declares its parameters as a `MethodParams` dataclass (`Params`); the constructor
validates the keyword parameters against it, and `params` is the record that reproduces the
explainer: passed back to the constructor it builds the same method with the same settings.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from explainers.params import MethodParams
from foundation.types import Explanation, Modality

if TYPE_CHECKING:  # pragma: no cover
    from models.loaded import LoadedModel


class Explainer(ABC):
    """Model in the constructor, a batch in `explain`; a single input is a batch of one."""

    name: ClassVar[str]
    title: ClassVar[str]
    modalities: ClassVar[frozenset[Modality]]
    Params: ClassVar[type[MethodParams]] = MethodParams
    # A method offered as a variant of another (Grad-CAM++ of Grad-CAM): one choice between them.
    variant_of: ClassVar[str | None] = None

    def __init__(self, model: "LoadedModel", **params: Any) -> None:
        self.model = model
        # Validated here, so a bad or unknown parameter fails before any work is done.
        self.settings = self.Params.build(params, model.modality)

    @property
    def params(self) -> dict[str, Any]:
        """The constructor parameters that matter for this model (what every Explanation records)."""
        return self.settings.recorded(self.model.modality)

    @classmethod
    def supports(cls, model: "LoadedModel") -> bool:
        return model.modality in cls.modalities

    @abstractmethod
    def explain(
        self, inputs: Sequence[Any], targets: Sequence[int] | None = None, *, seed: int = 0
    ) -> list[Explanation]:
        """Explain each input for its target class (the predicted class when targets is None).

        Images are uint8 arrays at the model's input size (N x H x W x 3); texts are strings.
        """
