"""Safe extraction of user ZIP archives: nothing leaves the folder, nothing unbounded.

Use it through `workbench.inputs` (which re-exports everything public here).

`extract_zip` returns an `ExtractResult` (files written and entries skipped, with the
reason); `safe_extract_zip` is the same call returning only the list of file paths.

An archive is refused as a whole (`InputError`, nothing written) if any entry is
hostile: an absolute path, a drive letter, a `..` component, a symbolic link, a
password, a duplicate name, more than `max_files` entries or more than
`max_total_bytes` once expanded. Harmless clutter is skipped and reported instead:
folders, archives inside the archive (never opened, so no recursion bombs) and
operating-system metadata (`__MACOSX/`, `.DS_Store`, `._*`, `Thumbs.db`).

Extraction goes into a hidden staging folder next to `dest` and is renamed to `dest`
only when every entry was written intact, so a failure leaves nothing behind.
"""
from __future__ import annotations

import io
import os
import re
import shutil
import stat
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

from foundation.errors import InputError

MAX_ARCHIVE_TOTAL_BYTES = 500 * 1024 * 1024
MAX_ARCHIVE_FILES = 50_000

_NESTED_ARCHIVE_SUFFIXES = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".rar")
_SYSTEM_FILES = {".DS_Store", "Thumbs.db", "desktop.ini"}
_DRIVE_LETTER = re.compile(r"^[A-Za-z]:")
_SEPARATORS = re.compile(r"[\\/]+")  # a backslash is a separator on Windows, so treat it as one
_CHUNK = 1024 * 1024
_ENCRYPTED_FLAG = 0x1


@dataclass(frozen=True)
class ExtractResult:
    """Files written (inside `dest`, in archive order) and entries skipped as (name, reason)."""

    files: tuple[Path, ...]
    skipped: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class _Entry:
    info: zipfile.ZipInfo
    parts: tuple[str, ...]


def shown_name(name: str, limit: int = 60) -> str:
    """A user-supplied name made safe to quote in a message: no control or bidi characters, bounded."""
    visible = "".join(ch for ch in str(name) if unicodedata.category(ch) not in {"Cc", "Cf", "Cs"})
    return visible if len(visible) <= limit else visible[: limit - 1] + "…"


def safe_extract_zip(
    data_or_path: bytes | Path | str,
    dest: Path,
    *,
    max_total_bytes: int = MAX_ARCHIVE_TOTAL_BYTES,
    max_files: int = MAX_ARCHIVE_FILES,
    name: str | None = None,
) -> list[Path]:
    """Extract a ZIP safely into `dest` and return the extracted file paths (see `extract_zip`)."""
    result = extract_zip(data_or_path, dest, max_total_bytes=max_total_bytes, max_files=max_files, name=name)
    return list(result.files)


def extract_zip(
    data_or_path: bytes | Path | str,
    dest: Path,
    *,
    max_total_bytes: int = MAX_ARCHIVE_TOTAL_BYTES,
    max_files: int = MAX_ARCHIVE_FILES,
    name: str | None = None,
) -> ExtractResult:
    """Extract a ZIP (its bytes, or a path to it) into `dest`, which must be absent or empty.

    `name` is how the archive is called in messages (default: the file name, or "archive").
    Raises `InputError` if the archive is damaged or hostile, or has no usable file;
    raises `ValueError` if `dest` is a non-empty folder (a caller bug, not a user error).
    """
    dest = Path(dest)
    is_path = isinstance(data_or_path, (str, os.PathLike))
    label = shown_name(name or (Path(data_or_path).name if is_path else "archive"))
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ValueError(f"extraction folder {dest} must be absent or empty")
    archive = _open_zip(data_or_path, label)
    with archive:
        entries, skipped = _plan(archive, label, max_total_bytes, max_files)
        files = _extract_all(archive, entries, dest, label, max_total_bytes)
    return ExtractResult(files=tuple(files), skipped=tuple(skipped))


def _open_zip(data_or_path: bytes | Path | str, label: str) -> zipfile.ZipFile:
    try:
        if isinstance(data_or_path, (bytes, bytearray, memoryview)):
            return zipfile.ZipFile(io.BytesIO(bytes(data_or_path)))
        return zipfile.ZipFile(Path(data_or_path))
    except FileNotFoundError as exc:
        raise InputError(f"'{label}' could not be found; check the path and retry.") from exc
    except Exception as exc:  # zipfile raises BadZipFile, OSError, ValueError, EOFError... on bad input
        raise InputError(
            f"'{label}' is not a ZIP archive we can open (it may be damaged); create the ZIP again and retry."
        ) from exc


def _plan(
    archive: zipfile.ZipFile, label: str, max_total_bytes: int, max_files: int
) -> tuple[list[_Entry], list[tuple[str, str]]]:
    """Check every entry before anything is written; decide what to extract and what to skip."""
    infos = archive.infolist()
    if not infos:
        raise InputError(f"'{label}' contains no files; add files to the ZIP and retry.")
    if len(infos) > max_files:
        raise InputError(
            f"'{label}' holds {len(infos):,} entries, more than the {max_files:,} allowed; "
            "split it into smaller archives and retry."
        )
    entries: list[_Entry] = []
    skipped: list[tuple[str, str]] = []
    seen: set[tuple[str, ...]] = set()
    declared = 0
    for info in infos:
        parts = _safe_parts(info.filename, label)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise InputError(
                f"'{label}' contains a symbolic link ('{shown_name(info.filename)}'), which we never extract; "
                "replace it with the real file and retry."
            )
        reason = _skip_reason(info, parts)
        if reason:
            skipped.append((info.filename, reason))
            continue
        if info.flag_bits & _ENCRYPTED_FLAG:
            raise InputError(
                f"'{label}' is password-protected ('{shown_name(info.filename)}'); "
                "create the ZIP again without a password and retry."
            )
        if parts in seen:
            raise InputError(
                f"'{label}' lists '{shown_name(info.filename)}' more than once; create the ZIP again and retry."
            )
        seen.add(parts)
        declared += info.file_size
        if declared > max_total_bytes:
            raise _too_big(label, declared, max_total_bytes)
        entries.append(_Entry(info, parts))
    if not entries:
        raise InputError(
            f"'{label}' has no files we can use (only folders, archives inside it or system files); "
            "put the files themselves in the ZIP and retry."
        )
    return entries, skipped


def _safe_parts(filename: str, label: str) -> tuple[str, ...]:
    """The entry's path components, or InputError if it could point outside the extraction folder."""
    parts = tuple(part for part in _SEPARATORS.split(filename) if part not in ("", "."))
    unsafe = (
        filename.startswith(("/", "\\"))
        or _DRIVE_LETTER.match(filename) is not None
        or any(unicodedata.category(ch) == "Cc" for ch in filename)
        # "..", and names Windows would trim to "..", such as ".. " or "...".
        or any(part.strip(". ") == "" for part in parts)
    )
    if unsafe:
        raise InputError(
            f"'{label}' contains an entry with an unsafe path ('{shown_name(filename)}'); "
            "archives may only hold relative paths, so create the ZIP again and retry."
        )
    return parts


def _skip_reason(info: zipfile.ZipInfo, parts: tuple[str, ...]) -> str | None:
    if info.is_dir() or not parts:
        return "folder"
    if "__MACOSX" in parts or parts[-1] in _SYSTEM_FILES or parts[-1].startswith("._"):
        return "system metadata file"
    if parts[-1].lower().endswith(_NESTED_ARCHIVE_SUFFIXES):
        return "archive inside the archive (not opened)"
    return None


def _too_big(label: str, size: int, limit: int) -> InputError:
    return InputError(
        f"'{label}' expands to more than {limit / 2**20:,.0f} MB (at least {size / 2**20:,.0f} MB); "
        "split it into smaller archives and retry."
    )


def _extract_all(
    archive: zipfile.ZipFile, entries: list[_Entry], dest: Path, label: str, max_total_bytes: int
) -> list[Path]:
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    try:
        root = staging.resolve()
        written = 0
        for entry in entries:
            target = staging.joinpath(*entry.parts)
            # Belt and braces: the name checks above should make this impossible.
            if not target.resolve().is_relative_to(root):
                raise InputError(
                    f"'{label}' contains an entry with an unsafe path ('{shown_name(entry.info.filename)}'); "
                    "archives may only hold relative paths, so create the ZIP again and retry."
                )
            written += _copy_entry(archive, entry, target, label, max_total_bytes - written, max_total_bytes)
        if dest.exists():
            dest.rmdir()
        os.replace(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [dest.joinpath(*entry.parts) for entry in entries]


def _copy_entry(
    archive: zipfile.ZipFile, entry: _Entry, target: Path, label: str, budget: int, max_total_bytes: int
) -> int:
    """Stream one entry to disk, counting real bytes: declared sizes are only a claim."""
    shown = shown_name(entry.info.filename)
    count = 0
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(entry.info) as source, open(target, "xb") as sink:
            while chunk := source.read(_CHUNK):
                count += len(chunk)
                if count > budget or count > entry.info.file_size:
                    raise _too_big(label, max_total_bytes - budget + count, max_total_bytes)
                sink.write(chunk)
    except InputError:
        raise
    except NotImplementedError as exc:
        raise InputError(
            f"'{label}' uses a compression method we cannot read ('{shown}'); "
            "create it again with standard ZIP compression and retry."
        ) from exc
    except OSError as exc:
        raise InputError(
            f"'{label}' could not be extracted ('{shown}': {exc.strerror or exc}); "
            "rename or remove that entry and retry."
        ) from exc
    except Exception as exc:  # BadZipFile (bad CRC), zlib.error, EOFError: the entry's data is damaged
        raise InputError(
            f"'{label}' is damaged ('{shown}' could not be extracted intact); create the ZIP again and retry."
        ) from exc
    return count
