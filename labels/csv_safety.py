"""Formula-injection guard for CSV files that spreadsheets may open.

A spreadsheet treats a cell starting with = + - @ (or a tab / carriage return that hides
one) as a formula, so a label or note typed by one user could run in another user's
Excel. Prefixing an apostrophe makes it plain text and stays visible to the reader.

Kept local to `labels/` on purpose; `workbench/inputs.py` has a twin (`neutralise_cell`)
that the two can be merged into.
"""
from __future__ import annotations

from typing import Any

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: Any) -> Any:
    """Return `value` with an apostrophe in front if it is a string a spreadsheet would run.

    Non-strings (numbers, None, booleans) pass through: a CSV writer renders them itself and
    a number such as -0.5 is not a formula.
    """
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def restore_cell(value: str) -> str:
    """Undo `neutralise_cell` on text read back from an exported file."""
    if value.startswith("'") and value[1:].startswith(FORMULA_TRIGGERS):
        return value[1:]
    return value
