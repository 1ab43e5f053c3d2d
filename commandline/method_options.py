"""`--param name=value` for any explanation method, checked against the method's declared
parameters (`explainers.params`) and listed in `--help`.

Why: the command line reads the same declarations as the pages, so a new method or
parameter needs no CLI edit, and a bad value is refused with the declaration's own message.
"""
from __future__ import annotations

import argparse
import textwrap
from typing import Any, Sequence

from explainers import registry
from explainers.params import Spec
from foundation.errors import WorkbenchError
from foundation.types import Modality

# Stands for the parameter listing in a parser's epilog; the listing is built only when help is
# printed, so parsing a command never loads the explanation methods.
PARAMETERS_EPILOG = "\x00explanation-method-parameters"


class ParametersHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help formatter that expands PARAMETERS_EPILOG into every method's declared parameters."""

    def add_text(self, text: str | None) -> None:
        super().add_text(parameters_help() if text == PARAMETERS_EPILOG else text)


def add_param_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE",
        help="a parameter of the method, e.g. --param max_evals=200; repeat for several (listed below)",
    )


def _describe_field(spec: Spec, default: Any) -> str:
    if spec.choices is not None:
        kind = " | ".join(map(str, spec.choices))
    else:
        bounds = "" if spec.minimum is None and spec.maximum is None else \
            f" {_number(spec.minimum)}..{_number(spec.maximum)}"
        kind = ("int" if spec.kind is int else spec.kind.__name__) + bounds
    notes = [kind]
    if spec.by_modality:
        notes.append("default " + ", ".join(f"{_number(v)} ({m.value})" for m, v in spec.by_modality.items()))
    else:
        notes.append(f"default {'none' if default is None else default}")
    if len(spec.modalities) < len(Modality):
        notes.append(" and ".join(sorted(m.value for m in spec.modalities)) + " only")
    if spec.when:
        notes.append("with " + ", ".join(f"{k}={v}" for k, v in spec.when.items()))
    return f"{'; '.join(notes)}. {spec.help}"


def _number(value: Any) -> str:
    return "" if value is None else f"{value:g}" if isinstance(value, float) else f"{value}"


def parameters_help() -> str:
    """Every method's parameters with type, bounds or choices, default, and help."""
    lines = ["parameters of each method (--param NAME=VALUE):"]
    for name, cls in sorted(registry.all_methods().items()):
        specs = cls.Params.specs()
        lines.append(f"  {name} ({cls.title}){'' if specs else ': none'}")
        defaults = cls.Params.defaults()
        for field, spec in specs.items():
            text = f"{field:<13} {_describe_field(spec, defaults[field])}"
            lines += textwrap.wrap(text, width=100, initial_indent="    ", subsequent_indent=" " * 18)
    return "\n".join(lines)


def method_params(method: str, assignments: Sequence[str], modality: Modality) -> dict[str, Any]:
    """The `--param` assignments as keyword parameters of `method` for a model of `modality`.

    Refuses an unknown method or parameter, a value outside its declaration, and a parameter
    that does not apply to the model's modality (it would be silently ignored).
    """
    try:
        params_class = registry.params_class(method)
    except KeyError as exc:
        raise WorkbenchError(str(exc.args[0]) + ".") from None
    values = params_class.parse(list(assignments))
    specs = params_class.specs()
    for name in values:
        if not specs[name].applies_to(modality):
            only = " and ".join(sorted(m.value for m in specs[name].modalities))
            raise WorkbenchError(f"{name} applies to {only} models only; this is a {modality.value} model.")
    params_class.build(values, modality)  # the values together (each was checked on its own)
    return values
