"""Atomic file writes: a temp file in the same folder, fsync, then one rename over the target.

A reader (or a crash) sees either the old file or the new one, never half of one. Every
file the workbench replaces in place (pointers, caches, status files, flipped-id lists)
is written through `atomic_write`.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable


def atomic_write(path: Path, write: Callable[[BinaryIO], Any], *, mode: int | None = None) -> None:
    """Call `write(handle)` on a binary temp file beside `path`, fsync it, rename it over `path`.

    `mode` sets the file's permission bits (the temp file starts private, 0o600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str, *, mode: int | None = None) -> None:
    """UTF-8 text with "\\n" line ends, written atomically."""
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")), mode=mode)


def write_json_atomic(path: Path, data: Any) -> None:
    """JSON (indented, sorted keys) written atomically."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True))


def fsync_dir(path: Path) -> None:
    """Make a rename inside `path` durable (the directory entry itself is flushed)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
