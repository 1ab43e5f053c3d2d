"""Checking ids that become file or folder names (versions, jobs, models).

Why: an id typed on the command line or read from a file is joined onto a workspace path;
"../x", "a/b" or a NUL byte would reach outside the folder meant for it or fail deep in the
OS with an unreadable error. Every such id passes `check_path_id` first: one bounded
character set, a letter or digit first (so never ".", ".." or a hidden staging name), no
"..", and a length limit; anything else is refused with one sentence.
"""
from __future__ import annotations

import re

from foundation.errors import WorkbenchError

MAX_ID_LENGTH = 128
_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def is_path_id(value: object) -> bool:
    """Whether `value` may safely name a file or folder of the workspace."""
    return (isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH
            and _ID_PATTERN.fullmatch(value) is not None and ".." not in value)


def check_path_id(value: object, what: str, error: type[WorkbenchError] = WorkbenchError) -> str:
    """Return `value` if it is a safe id; otherwise raise `error` naming `what` it should be."""
    if not is_path_id(value):
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise error(
            f"{shown} is not a valid {what}: use up to {MAX_ID_LENGTH} letters, digits, '.', '-' or '_', "
            "starting with a letter or digit, without '..' or path separators."
        )
    return value
