"""Declared, typed parameters of the explanation methods.

Why: one declaration per method feeds everything that needs the method's settings. The
explainer's constructor validates against it, the Explain pages build their widgets from it,
the CLI accepts `--param name=value` against it and reports label the recorded values with
it, so adding a method or a parameter needs no page, CLI or report edit.

A method's parameters are a frozen dataclass that subclasses `MethodParams`; each field is
made by `param(...)`, which keeps a `Spec` (type, bounds, step, choices, label, help, the
modalities it applies to, ...) in the field's metadata. Building the dataclass validates and
converts every value, so an instance always holds valid values.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, TypeVar

from foundation.errors import WorkbenchError
from foundation.types import Modality

ALL_MODALITIES = frozenset(Modality)
_SPEC = "workbench_param"
_NONE_WORDS = {"none", "null", "default", ""}

P = TypeVar("P", bound="MethodParams")


class ParameterError(WorkbenchError, ValueError):
    """An unknown parameter, or a value outside its declaration.

    A WorkbenchError, so the CLI prints it as one `error:` line and the pages as a message;
    a ValueError, because that is what callers of the explainers have always caught.
    """


@dataclass(frozen=True)
class Spec:
    """What a parameter is, beyond its name and default."""

    kind: type  # int, float or str
    label: str
    help: str = ""
    minimum: float | None = None  # hard bounds, checked wherever the value comes from
    maximum: float | None = None
    # The narrower range the pages offer: what answers within seconds there (None: the bounds).
    offered: tuple[float, float] | None = None
    step: float | None = None
    choices: Mapping[Any, str] | None = None  # value -> label shown to people
    modalities: frozenset[Modality] = ALL_MODALITIES
    # The parameter matters only while other parameters have these values (e.g. slic's segment count).
    when: Mapping[str, Any] = field(default_factory=dict)
    # None is a valid value: "chosen for the model" (the explainer resolves it and records the result).
    optional: bool = False
    # Defaults that differ per modality; the declared default is then None.
    by_modality: Mapping[Modality, Any] = field(default_factory=dict)
    shown: bool = True  # offered on the pages; hidden ones keep their defaults there (CLI and API only)
    # How a summary line words the value: a format string ("{value}" and other fields by name),
    # or one per choice.
    summary: str | Mapping[Any, str] = ""

    def applies_to(self, modality: Modality | None) -> bool:
        return modality is None or modality in self.modalities

    def default_for(self, modality: Modality | None, declared: Any) -> Any:
        if declared is None and modality in self.by_modality:
            return self.by_modality[modality]
        return declared

    def widget_range(self) -> tuple[float | None, float | None]:
        return self.offered if self.offered is not None else (self.minimum, self.maximum)

    def parse(self, name: str, text: str) -> Any:
        """A value typed on a command line, converted to this parameter's type."""
        if text.strip().lower() in _NONE_WORDS and (self.optional or self.by_modality):
            return None
        return self.check(name, text)

    def check(self, name: str, value: Any) -> Any:
        """The value converted to the declared type; ParameterError when it does not fit."""
        if value is None:
            if self.optional or self.by_modality:
                return None
            raise ParameterError(f"{name} needs a value.")
        converted = self._convert(name, value)
        if self.choices is not None and converted not in self.choices:
            raise ParameterError(f"{name} must be one of {', '.join(map(str, self.choices))}; got {value!r}.")
        if self.minimum is not None and converted < self.minimum:
            raise ParameterError(f"{name} must be at least {_number(self.minimum)}, got {_number(converted)}.")
        if self.maximum is not None and converted > self.maximum:
            raise ParameterError(f"{name} must be at most {_number(self.maximum)}, got {_number(converted)}.")
        return converted

    def _convert(self, name: str, value: Any) -> Any:
        if isinstance(value, bool):  # a bool is an int to Python, never a budget or a colour
            raise ParameterError(f"{name} must be {self.kind.__name__}, got {value!r}.")
        try:
            if self.kind is int:
                number = float(value)
                if not number.is_integer():
                    raise ValueError
                return int(number)
            return self.kind(value)
        except (TypeError, ValueError):
            raise ParameterError(f"{name} must be {'a whole number' if self.kind is int else self.kind.__name__}, "
                                 f"got {value!r}.") from None


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def param(default: Any, kind: type, label: str, **spec: Any) -> Any:
    """A dataclass field of a MethodParams class, with its Spec (see Spec for the keywords)."""
    return field(default=default, metadata={_SPEC: Spec(kind=kind, label=label, **spec)})


@dataclass(frozen=True)
class MethodParams:
    """Base of every method's parameter dataclass: validation, applicability, the record."""

    # Methods whose result depends on a seed get a seed input on the pages.
    seeded: ClassVar[bool] = False

    def __post_init__(self) -> None:
        for name, spec in self.specs().items():
            object.__setattr__(self, name, spec.check(name, getattr(self, name)))

    @classmethod
    def specs(cls) -> dict[str, Spec]:
        """Every declared parameter, in declaration order."""
        return {f.name: f.metadata[_SPEC] for f in dataclasses.fields(cls) if _SPEC in f.metadata}

    @classmethod
    def defaults(cls, modality: Modality | None = None) -> dict[str, Any]:
        """Each parameter's default (per-modality defaults resolved when a modality is given)."""
        declared = {f.name: f.default for f in dataclasses.fields(cls) if _SPEC in f.metadata}
        return {name: spec.default_for(modality, declared[name]) for name, spec in cls.specs().items()}

    @classmethod
    def build(cls: type[P], values: Mapping[str, Any], modality: Modality | None = None) -> P:
        """Validated parameters from keyword values; unknown names are refused, missing ones defaulted."""
        specs = cls.specs()
        unknown = sorted(set(values) - set(specs))
        if unknown:
            raise ParameterError(f"unknown parameter {unknown[0]!r}; this method takes: {', '.join(specs) or 'none'}.")
        chosen = cls.defaults(modality)
        for name, value in values.items():
            chosen[name] = specs[name].default_for(modality, value)
        return cls(**chosen)

    @classmethod
    def parse(cls, assignments: list[str]) -> dict[str, Any]:
        """`name=value` texts (a command line's) as typed keyword values, checked one by one."""
        specs = cls.specs()
        values: dict[str, Any] = {}
        for assignment in assignments:
            name, sep, text = assignment.partition("=")
            name = name.strip()
            if not sep or not name:
                raise ParameterError(f"write a parameter as name=value, got {assignment!r}.")
            if name not in specs:
                raise ParameterError(f"unknown parameter {name!r}; this method takes: {', '.join(specs) or 'none'}.")
            values[name] = specs[name].parse(name, text.strip())
        return values

    def applies(self, name: str, modality: Modality | None) -> bool:
        """Whether a parameter matters for this modality and the values of the others."""
        spec = self.specs()[name]
        return spec.applies_to(modality) and all(getattr(self, k) == v for k, v in spec.when.items())

    def recorded(self, modality: Modality | None) -> dict[str, Any]:
        """The parameters that matter, by name: passed back to the constructor they reproduce the result."""
        return {name: getattr(self, name) for name in self.specs() if self.applies(name, modality)}


def describe(params_class: type[MethodParams], values: Mapping[str, Any]) -> list[str]:
    """The summary phrases of the given values (e.g. '500 evaluations', 'blur masker'), in declaration order."""
    phrases = []
    for name, spec in params_class.specs().items():
        if name not in values or not spec.summary:
            continue
        if any(values.get(k) != v for k, v in spec.when.items()):
            continue
        value = values[name]
        template = spec.summary.get(value, "") if isinstance(spec.summary, Mapping) else spec.summary
        if template:
            try:
                phrases.append(template.format(value=value, **{k: v for k, v in values.items() if k != "value"}))
            except KeyError:  # a phrase needing a value not given (e.g. the segment count): left out
                continue
    return phrases


def labelled(params_class: type[MethodParams], values: Mapping[str, Any]) -> dict[str, Any]:
    """Recorded values keyed by their declared labels, choices shown by their labels; undeclared names kept."""
    specs = params_class.specs()
    out: dict[str, Any] = {}
    for name, value in values.items():
        spec = specs.get(name)
        if spec is None:
            out[name] = value
            continue
        shown = spec.choices.get(value, value) if spec.choices else value
        out[spec.label] = "chosen for the model" if shown is None else shown
    return out
