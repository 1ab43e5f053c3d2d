"""The contract every explanation method follows.

Each method declares its parameters as a `MethodParams` dataclass (`Params`); the constructor
validates the keyword parameters against it, and `params` is the record that reproduces the
explainer: passed back to the constructor it builds the same method with the same settings.

A method also declares where it is offered and in which order (`on_pages`, `order`), and why
it cannot run on a given model (`unavailable_reason`), so adding a method is its own file plus
its registration: the pages, the CLI and the batch engine read these declarations.
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
    # Offered on the Explain pages (as a tab, or as a variant inside one). A method meant for the
    # command line, the API and the benchmarks only says False.
    on_pages: ClassVar[bool] = True
    # Place in every list of methods (tabs, batch choices, registry order): lower first, ties by
    # name. The fastest method comes first, so the tab open by default answers at once.
    order: ClassVar[int] = 100

    def __init__(self, model: "LoadedModel", **params: Any) -> None:
        self.model = model
        # Validated here, so a bad or unknown parameter fails before any work is done.
        self.settings = self.Params.build(params, model.modality)

    @property
    def params(self) -> dict[str, Any]:
        """The constructor parameters that matter for this model (what every Explanation records)."""
        return self.settings.recorded(self.model.modality)

    @classmethod
    def unavailable_reason(cls, model: "LoadedModel") -> str | None:
        """Why this method cannot explain `model`, in one sentence that says what to do instead;
        None when it can. Pages show the sentence in place of the method's tab.

        Here: a modality the method does not handle. Methods with further needs (Grad-CAM: a
        convolution layer) extend it.
        """
        if model.modality not in cls.modalities:
            kinds = " and ".join(sorted(m.value for m in cls.modalities))
            return f"{cls.title} explains {kinds} models only; choose another method."
        return None

    @classmethod
    def supports(cls, model: "LoadedModel") -> bool:
        """Whether the method can explain `model` (no reason against it)."""
        return cls.unavailable_reason(model) is None

    @abstractmethod
    def explain(
        self, inputs: Sequence[Any], targets: Sequence[int] | None = None, *, seed: int = 0
    ) -> list[Explanation]:
        """Explain each input for its target class (the predicted class when targets is None).

        Images are uint8 arrays at the model's input size (N x H x W x 3); texts are strings.
        """
