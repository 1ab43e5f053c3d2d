"""`workbench` command line: the same core the pages use, for batch jobs and CI checks.

Subcommands live in `commandline/commands/`; each module registers its own parsers.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from typing import Callable, Sequence

from foundation.errors import WorkbenchError

EXIT_USER_ERROR = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would print usage; we keep one line
        raise WorkbenchError(message)


def _quiet_tensorflow() -> None:
    """Import TensorFlow with stderr silenced: its C++ start-up lines (CUDA probing on a
    CPU-only machine) would otherwise bury our one-line `error:` messages."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import warnings

    warnings.filterwarnings("ignore")
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                import keras  # noqa: F401
                import tensorflow  # noqa: F401
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def _command_modules():
    import commandline.commands as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        yield importlib.import_module(f"commandline.commands.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="workbench", description="Explainability Workbench command line.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    models = sub.add_parser("models", help="list and manage models and their versions")
    models_sub = models.add_subparsers(dest="models_command", parser_class=_Parser)
    for module in _command_modules():
        if hasattr(module, "register_models"):
            module.register_models(models_sub)
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_tensorflow()
    try:
        args = build_parser().parse_args(argv)
        func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
        if func is None:
            raise WorkbenchError("choose a command; run `workbench --help` to see them.")
        return func(args)
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("error: interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
