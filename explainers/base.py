"""The contract every explanation method follows."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from foundation.types import Explanation, Modality

if TYPE_CHECKING:  # pragma: no cover
    from models.loaded import LoadedModel


class Explainer(ABC):
    """Model in the constructor, a batch in `explain`; a single input is a batch of one."""

    name: ClassVar[str]
    title: ClassVar[str]
    modalities: ClassVar[frozenset[Modality]]

    def __init__(self, model: "LoadedModel", **params: Any) -> None:
        self.model = model
        self.params = params

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
