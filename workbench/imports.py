"""Importing a user's own data as a dataset: first a plan (everything checked, nothing
stored), then an explicit `commit`.

    plan = import_image_zip(zip_bytes, "pets")            # or import_image_folder / import_text_csv
    plan.problems                                          # each with its file name or CSV line
    report = commit(plan, skip_problem_rows=True)          # or just drop the plan to cancel

Accepted inputs:

* images: a ZIP (or folder) of one sub-folder per class (`cat/1.png`, a common top folder
  such as `pets/cat/1.png` is fine; deeper folders belong to their top class folder), or a
  flat set of images plus a CSV of file names and labels (inside the ZIP, or given apart);
* text: a CSV with a text column and a label column chosen by the user, any common
  delimiter and encoding (`workbench.inputs.read_table_csv`).

ZIPs go through `workbench.inputs.extract_zip` (nothing outside the folder, bounded size,
nested archives skipped) into a hidden temporary folder that is removed once read.

Problems are listed per row and never half-fixed: unknown labels (not among the target
model's classes, or differing from another label only in case/spaces), empty rows,
duplicates (the same image bytes or the same text; the first one is kept), unreadable
files, unlabelled images, CSV rows naming files that do not exist, and image sizes.
Sizes: every image is resized to one size (the target model's, or else the most common
size, shrunk to fit 128 x 128); only images that would be blown up more than 4 times on a
side, or whose shape is more than 2 times wider or taller than that size, are problems.
The user then imports skipping the problem rows, or cancels.

`commit` writes the dataset into a hidden staging folder and renames it to
`<workspace>/datasets/<name>/` only when complete, with a fixed, stratified train/val/test
split (per class, items ordered by a hash of their source name: 15 % test, 15 % val, at
least one of each, the rest train). `workbench.datasets` then serves it like a sample.
"""
from __future__ import annotations

import difflib
import hashlib
import os
import shutil
import tempfile
import unicodedata
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Sequence

import numpy as np

from foundation import access, config
from foundation.access import Identity
from foundation.atomic import fsync_dir
from foundation.errors import InputError
from foundation.types import Modality
from workbench import inputs
from workbench.archives import shown_name

MAX_IMPORT_IMAGES = 10_000
MAX_IMPORT_TEXTS = 200_000
MIN_PER_CLASS = 3
DEFAULT_MAX_SIDE = 128
TEST_FRACTION = 0.15
VAL_FRACTION = 0.15
MAX_UPSCALE = 4.0
MAX_ASPECT_CHANGE = 2.0
FORMAT_VERSION = 1

FILE_COLUMNS = ("file", "filename", "file_name", "image", "image_path", "path", "name")
LABEL_COLUMNS = ("label", "labels", "class", "category", "target", "y")
TEXT_COLUMNS = ("text", "sentence", "headline", "title", "review", "content", "body", "message")

_SYSTEM_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}


@dataclass(frozen=True)
class Problem:
    """One row the import would not take as is: where it is, what kind, and why."""

    where: str  # "line 7", "cat/3.png" or "line 7 (3.png)"
    kind: str  # unknown label | empty | duplicate | unreadable | unlabelled | not found | size
    detail: str

    def as_row(self) -> dict[str, str]:
        return {"where": self.where, "problem": self.kind, "detail": self.detail}


@dataclass
class _Item:
    where: str
    label: str
    value: Any  # uint8 H x W x 3 image, or cleaned text
    original_size: tuple[int, int] | None = None  # (height, width) of an image before resizing


@dataclass
class ImportPlan:
    """Everything checked, nothing stored. `items` are the rows that would be imported."""

    name: str
    modality: Modality
    classes: tuple[str, ...]
    items: list[_Item]
    problems: list[Problem]
    source: str
    notes: list[str] = field(default_factory=list)
    image_size: tuple[int, int] | None = None
    for_model: str | None = None

    def counts(self) -> dict[str, int]:
        counted = Counter(item.label for item in self.items)
        return {name: counted.get(name, 0) for name in self.classes}

    def blocking(self) -> list[str]:
        """Reasons the data cannot be imported even when problem rows are skipped."""
        counts = {name: n for name, n in self.counts().items() if n}
        reasons = []
        if len(counts) < 2:
            reasons.append(
                f"'{self.name}' has usable examples of {len(counts)} class(es); a classifier needs at least 2, "
                "so add examples and retry."
            )
        small = [f"'{shown_name(name)}' ({n})" for name, n in counts.items() if n < MIN_PER_CLASS]
        if small:
            reasons.append(
                f"each class needs at least {MIN_PER_CLASS} usable examples (for training, validation and test), "
                f"but {', '.join(small)} {'has' if len(small) == 1 else 'have'} fewer; add examples and retry."
            )
        return reasons

    def problem_rows(self) -> list[dict[str, str]]:
        return [problem.as_row() for problem in self.problems]

    def summary(self) -> dict[str, Any]:
        kinds = Counter(problem.kind for problem in self.problems)
        return {
            "name": self.name,
            "modality": self.modality.value,
            "source": self.source,
            "classes": list(self.classes),
            "counts": self.counts(),
            "rows_ok": len(self.items),
            "problems": len(self.problems),
            "problem_kinds": dict(sorted(kinds.items())),
            "blocking": self.blocking(),
            "image_size": list(self.image_size) if self.image_size else None,
            "notes": list(self.notes),
            "for_model": self.for_model,
        }


@dataclass(frozen=True)
class ImportReport:
    name: str
    folder: Path
    modality: Modality
    classes: tuple[str, ...]
    split_counts: dict[str, int]
    imported: int
    skipped: int
    manifest: dict[str, Any]


# ------------------------------------------------------------------ names & targets


def check_new_name(name: str) -> str:
    """A dataset name that is well-formed and not taken (samples included)."""
    from models.inspect import check_name
    from workbench import datasets

    name = check_name(name, "dataset", InputError)
    if name in datasets.names() or (_datasets_root() / name).exists():
        raise InputError(f"a dataset named '{name}' already exists; choose another name and retry.")
    return name


def _datasets_root() -> Path:
    return config.workspace_subdir("datasets")


def model_target(model_name: str | None, modality: Modality) -> tuple[tuple[str, ...] | None, tuple[int, int] | None]:
    """The classes (and image size) a target model fixes, or (None, None) without one."""
    if not model_name:
        return None, None
    from models import store

    if model_name not in store.model_names():
        raise InputError(f"there is no model named '{shown_name(model_name)}'; choose one of {', '.join(store.model_names())} and retry.")
    manifest = store.manifest(model_name)
    if manifest.modality is not modality:
        raise InputError(
            f"model '{model_name}' is a {manifest.modality.value} model, so it cannot check {modality.value} data; "
            "choose another model and retry."
        )
    size = None
    if modality is Modality.IMAGE:
        size = (int(manifest.input.height), int(manifest.input.width))
    return manifest.classes, size


# --------------------------------------------------------------------------- labels


def _clean_label(value: Any) -> str:
    return " ".join(unicodedata.normalize("NFC", str(value)).split())


def _fold(label: str) -> str:
    return "".join(label.split()).casefold()


def _label_problem(label: str, known: Sequence[str], by_model: bool) -> str:
    folded = {_fold(name): name for name in known}
    if _fold(label) in folded:
        return f"'{shown_name(label)}' differs from the class '{shown_name(folded[_fold(label)])}' only in case or spaces"
    close = difflib.get_close_matches(label, list(known), n=1, cutoff=0.75)
    hint = f"; did you mean '{shown_name(close[0])}'?" if close else ""
    where = "the model's classes" if by_model else "the classes"
    return f"'{shown_name(label)}' is not one of {where} ({', '.join(shown_name(k) for k in known)}){hint}"


def _unusable_label(label: str) -> str | None:
    """Why a label cannot become a class name (it would be shown all over the app), or None."""
    from models.inspect import MARKUP_CHARACTERS, MAX_CLASS_NAME_CHARS

    if any(unicodedata.category(ch) in {"Cc", "Cf", "Cs"} for ch in label):
        return f"'{shown_name(label)}' contains invisible or control characters, which class names may not use"
    if MARKUP_CHARACTERS.intersection(label):
        # Class names are shown as Markdown: no links, images or tags.
        forbidden = " ".join(sorted(MARKUP_CHARACTERS))
        return f"'{shown_name(label)}' contains one of {forbidden}, which class names may not use"
    if len(label) > MAX_CLASS_NAME_CHARS:
        return f"the label is longer than {MAX_CLASS_NAME_CHARS} characters"
    return None


def _resolve_classes(
    rows: list[tuple[str, str]], target: tuple[str, ...] | None
) -> tuple[tuple[str, ...], dict[str, str]]:
    """Class list and {where: problem detail} for rows whose label is unknown.

    With a target model its classes are the list. Without one, labels differing only in
    case or spaces are one class spelt the most common way; the other spellings are flagged.
    """
    refused = {where: reason for where, label in rows if (reason := _unusable_label(label))}
    if refused:
        classes, problems = _resolve_classes([row for row in rows if row[0] not in refused], target)
        problems.update(refused)
        return classes, problems
    if target is not None:
        known = set(target)
        return target, {where: _label_problem(label, target, True) for where, label in rows if label not in known}
    spellings: dict[str, Counter] = {}
    for _, label in rows:
        spellings.setdefault(_fold(label), Counter())[label] += 1
    canonical = {key: sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0] for key, counts in spellings.items()}
    totals = {canonical[key]: sum(counts.values()) for key, counts in spellings.items()}
    common = [label for label, n in totals.items() if n >= MIN_PER_CLASS]
    # A rare label that looks like a common one is more likely a typo than a class of its own.
    typos = {
        label: close[0]
        for label, n in totals.items()
        if n < MIN_PER_CLASS and (close := difflib.get_close_matches(label, common, n=1, cutoff=0.75))
    }
    classes = tuple(sorted(label for label in canonical.values() if label not in typos))
    problems = {}
    for where, label in rows:
        spelt = canonical[_fold(label)]
        if spelt in typos:
            problems[where] = (
                f"'{shown_name(label)}' is used only {totals[spelt]} time(s) and looks like a misspelling "
                f"of '{shown_name(typos[spelt])}'"
            )
        elif spelt != label:
            problems[where] = _label_problem(label, classes, False)
    return classes, problems


# --------------------------------------------------------------------------- images


def import_image_zip(
    data_or_path: bytes | Path | str,
    name: str,
    *,
    labels_csv: bytes | None = None,
    for_model: str | None = None,
    image_size: tuple[int, int] | None = None,
    source_name: str | None = None,
) -> ImportPlan:
    """Plan the import of a ZIP of class folders (or of flat images + a labels CSV)."""
    name = check_new_name(name)
    is_path = isinstance(data_or_path, (str, os.PathLike))
    label = source_name or (Path(data_or_path).name if is_path else "archive.zip")
    scratch = Path(tempfile.mkdtemp(prefix=".extract-", dir=_datasets_root()))
    try:
        result = inputs.extract_zip(data_or_path, scratch / "files", name=label)
        notes = [f"'{shown_name(entry)}' skipped: {reason}" for entry, reason in result.skipped if reason != "folder"]
        root = scratch / "files"
        files = [PurePosixPath(path.relative_to(root).as_posix()) for path in result.files]
        plan = _plan_images(name, root, files, labels_csv, label, for_model, image_size)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    plan.notes[:0] = notes
    return plan


def import_image_folder(
    folder: Path | str,
    labels_csv: Path | str | bytes | None,
    name: str,
    *,
    for_model: str | None = None,
    image_size: tuple[int, int] | None = None,
) -> ImportPlan:
    """Plan the import of a folder: flat images + a labels CSV, or (labels_csv=None) class folders."""
    name = check_new_name(name)
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"'{shown_name(str(folder))}' is not a folder; check the path and retry.")
    files, notes = _list_folder(folder)
    if isinstance(labels_csv, (str, os.PathLike)):
        labels_csv = _read_small_file(Path(labels_csv), inputs.MAX_CSV_BYTES, "table")
    plan = _plan_images(name, folder, files, labels_csv, folder.name, for_model, image_size)
    plan.notes[:0] = notes
    return plan


def _list_folder(folder: Path) -> tuple[list[PurePosixPath], list[str]]:
    """Regular files under `folder` (no symbolic links followed), relative, sorted."""
    files: list[PurePosixPath] = []
    notes: list[str] = []
    root = folder.resolve()
    for current, dirs, names in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX")
        for entry in sorted(names):
            path = Path(current) / entry
            relative = PurePosixPath(path.relative_to(root).as_posix())
            if entry in _SYSTEM_NAMES or entry.startswith("."):
                continue
            if path.is_symlink() or not path.is_file():
                notes.append(f"'{shown_name(str(relative))}' skipped: not a regular file")
                continue
            files.append(relative)
            if len(files) > MAX_IMPORT_IMAGES + 1:
                raise _too_many_images()
    return files, notes


def _too_many_images() -> InputError:
    return InputError(f"the data holds more than {MAX_IMPORT_IMAGES:,} files; import it in smaller parts and retry.")


def _read_small_file(path: Path, limit: int, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise InputError(f"'{shown_name(path.name)}' could not be read ({exc.strerror or exc}); check the path and retry.") from None
    if len(data) > limit:
        raise InputError(f"'{shown_name(path.name)}' is larger than the {limit // 2**20} MB limit for a {what}; split it and retry.")
    return data


def _plan_images(
    name: str,
    root: Path,
    files: list[PurePosixPath],
    labels_csv: bytes | None,
    source: str,
    for_model: str | None,
    image_size: tuple[int, int] | None,
) -> ImportPlan:
    target_classes, model_size = model_target(for_model, Modality.IMAGE)
    size = model_size or (tuple(int(v) for v in image_size) if image_size else None)
    csv_files = [f for f in files if f.suffix.lower() == ".csv"]
    images = [f for f in files if f.suffix.lower() != ".csv"]
    if len(images) > MAX_IMPORT_IMAGES:
        raise _too_many_images()
    problems: list[Problem] = []
    if labels_csv is None and csv_files:
        if len(csv_files) > 1:
            raise InputError(
                f"'{shown_name(source)}' holds {len(csv_files)} CSV files ({', '.join(shown_name(str(f)) for f in csv_files[:3])}); "
                "keep only the one with the labels and retry."
            )
        # File names in the CSV are relative to the CSV's own folder.
        base = csv_files[0].parent
        labels_csv = _read_small_file(root / csv_files[0], inputs.MAX_CSV_BYTES, "table")
        for outside in (f for f in images if not _is_under(f, base)):
            problems.append(Problem(str(outside), "unlabelled", f"not in the folder of {shown_name(csv_files[0].name)}"))
        inside = [f.relative_to(base) for f in images if _is_under(f, base)]
        rows = [
            (where, str(base / relative), label)
            for where, relative, label in _rows_from_csv(labels_csv, csv_files[0].name, inside, problems)
        ]
    elif labels_csv is not None:
        rows = _rows_from_csv(labels_csv, "labels CSV", images, problems)
    else:
        rows = _rows_from_folders(images, problems)
    return _decode_rows(name, root, rows, problems, source, target_classes, size, for_model)


def _is_under(path: PurePosixPath, base: PurePosixPath) -> bool:
    return str(base) == "." or path.parts[: len(base.parts)] == base.parts


def _rows_from_folders(files: list[PurePosixPath], problems: list[Problem]) -> list[tuple[str, str, str]]:
    """(where, relative path, label) with the class folder as label; a common top folder is skipped."""
    parts = [f.parts for f in files]
    depth = 0
    # Skip common top folders ("pets/cat/1.png"), as long as something lies deeper than class/file.
    while (
        parts
        and all(len(p) > depth + 1 for p in parts)
        and len({p[depth] for p in parts}) == 1
        and any(len(p) > depth + 2 for p in parts)
    ):
        depth += 1
    rows = []
    for path, p in zip(files, parts):
        where = str(path)
        if len(p) < depth + 2:
            problems.append(Problem(where, "unlabelled", "not inside a class folder (put each image in a folder named after its class)"))
            continue
        label = _clean_label(p[depth])
        rows.append((where, str(path), label))
    return rows


def _pick_column(columns: Sequence[str], wanted: Sequence[str]) -> str | None:
    lowered = {c.strip().lower(): c for c in columns}
    return next((lowered[w] for w in wanted if w in lowered), None)


def guess_columns(columns: Sequence[str], kind: str = "text") -> tuple[str | None, str | None]:
    """Best guess of (text or file column, label column) from the header, for defaults."""
    columns = [c for c in columns if c != inputs.LINE_COLUMN]
    first = _pick_column(columns, TEXT_COLUMNS if kind == "text" else FILE_COLUMNS)
    label = _pick_column(columns, LABEL_COLUMNS)
    if len(columns) == 2:
        first = first or next((c for c in columns if c != label), None)
        label = label or next((c for c in columns if c != first), None)
    return first, label


def _rows_from_csv(
    data: bytes, csv_name: str, files: list[PurePosixPath], problems: list[Problem]
) -> list[tuple[str, str, str]]:
    """(where, relative path, label) for each CSV row naming an existing image; the rest are problems."""
    table = inputs.read_table_csv(data, csv_name)
    file_column, label_column = guess_columns(list(table.columns), "file")
    if not file_column or not label_column or file_column == label_column:
        raise InputError(
            f"'{shown_name(csv_name)}' needs a file-name column and a label column (e.g. 'file' and 'label'); "
            f"its columns are {', '.join(shown_name(c) for c in table.columns if c != inputs.LINE_COLUMN)}, so rename them and retry."
        )
    available = {str(f): f for f in files}
    by_name: dict[str, list[str]] = {}
    for f in files:
        by_name.setdefault(f.name, []).append(str(f))
    seen: dict[str, int] = {}
    rows = []
    for file_cell, label_cell, line in zip(table[file_column], table[label_column], table[inputs.LINE_COLUMN]):
        reference = str(file_cell).strip().replace("\\", "/")
        label = _clean_label(label_cell)
        where = f"line {line}" + (f" ({shown_name(reference)})" if reference else "")
        if not reference:
            problems.append(Problem(where, "empty", "no file name"))
            continue
        if not label:
            problems.append(Problem(where, "empty", "no label"))
            continue
        relative = PurePosixPath(reference)
        if relative.is_absolute() or ".." in relative.parts or ":" in relative.parts[0]:
            problems.append(Problem(where, "not found", "the file name points outside the data folder"))
            continue
        key = str(relative)
        if key not in available and len(by_name.get(relative.name, [])) == 1 and len(relative.parts) == 1:
            key = by_name[relative.name][0]  # a bare file name that matches exactly one file anywhere
        if key not in available:
            problems.append(Problem(where, "not found", "no such file in the data"))
            continue
        if key in seen:
            problems.append(Problem(where, "duplicate", f"the file is already listed on line {seen[key]}"))
            continue
        seen[key] = int(line)
        rows.append((where, key, label))
    for key in sorted(set(available) - set(seen)):
        problems.append(Problem(key, "unlabelled", f"the file is not listed in {shown_name(csv_name)}"))
    return rows


def _decode_rows(
    name: str,
    root: Path,
    rows: list[tuple[str, str, str]],
    problems: list[Problem],
    source: str,
    target_classes: tuple[str, ...] | None,
    size: tuple[int, int] | None,
    for_model: str | None,
) -> ImportPlan:
    import cv2

    classes, label_problems = _resolve_classes([(where, label) for where, _, label in rows], target_classes)
    items: list[_Item] = []
    first_by_digest: dict[str, tuple[str, str]] = {}
    for where, relative, label in rows:
        if where in label_problems:
            problems.append(Problem(where, "unknown label", label_problems[where]))
            continue
        path = root / relative
        try:
            data = _read_small_file(path, inputs.MAX_IMAGE_BYTES, "image")
            pixels = inputs.decode_image(data, PurePosixPath(relative).name)
        except InputError as exc:
            problems.append(Problem(where, "unreadable", _without_advice(str(exc))))
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest in first_by_digest:
            first, first_label = first_by_digest[digest]
            detail = f"the same image as {shown_name(first)}"
            if first_label != label:
                detail += f", which is labelled '{shown_name(first_label)}'"
            problems.append(Problem(where, "duplicate", detail))
            continue
        first_by_digest[digest] = (where, label)
        original = pixels.shape[:2]
        # Keep memory bounded: shrink now (to the final size when known, else into the default box).
        box = size or (DEFAULT_MAX_SIDE, DEFAULT_MAX_SIDE)
        pixels = _resize(pixels, size) if size else _fit_within(pixels, box, cv2)
        items.append(_Item(where, label, pixels, original))
    final = size or _common_size(items)
    kept = []
    for item in items:
        detail = _size_problem(item.original_size, final) if final else None
        if detail:
            problems.append(Problem(item.where, "size", detail))
            continue
        item.value = _resize(item.value, final)
        kept.append(item)
    return ImportPlan(
        name=name, modality=Modality.IMAGE, classes=classes, items=kept, problems=problems, source=source,
        image_size=final, for_model=for_model,
    )


def _without_advice(message: str) -> str:
    """Per-row details drop the trailing "...; do this and retry." (the table says what to do)."""
    head, sep, _ = message.rpartition("; ")
    return head if sep else message.rstrip(".")


def _fit_within(pixels: np.ndarray, box: tuple[int, int], cv2: Any) -> np.ndarray:
    height, width = pixels.shape[:2]
    scale = min(box[0] / height, box[1] / width, 1.0)
    if scale >= 1.0:
        return pixels
    shape = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(pixels, shape, interpolation=cv2.INTER_AREA)


def _resize(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    height, width = size
    if pixels.shape[:2] == (height, width):
        return np.ascontiguousarray(pixels, dtype=np.uint8)
    shrinking = pixels.shape[0] > height or pixels.shape[1] > width
    resized = cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return np.ascontiguousarray(resized, dtype=np.uint8)


def _common_size(items: list[_Item]) -> tuple[int, int] | None:
    """The most common original size (ties: the larger), shrunk to fit the default box."""
    if not items:
        return None
    counts = Counter(item.original_size for item in items)
    height, width = max(counts, key=lambda s: (counts[s], s[0] * s[1], s))
    scale = min(DEFAULT_MAX_SIDE / height, DEFAULT_MAX_SIDE / width, 1.0)
    return max(1, round(height * scale)), max(1, round(width * scale))


def _size_problem(original: tuple[int, int] | None, final: tuple[int, int]) -> str | None:
    if original is None:
        return None
    height, width = original
    target_h, target_w = final
    if height * MAX_UPSCALE < target_h or width * MAX_UPSCALE < target_w:
        return (
            f"only {width} x {height} pixels; the dataset's images are {target_w} x {target_h}, "
            f"so it would be enlarged more than {MAX_UPSCALE:g} times"
        )
    change = (width / height) / (target_w / target_h)
    if change > MAX_ASPECT_CHANGE or change < 1 / MAX_ASPECT_CHANGE:
        return f"{width} x {height} pixels is far from the dataset's shape ({target_w} x {target_h}) and would be distorted"
    return None


# ----------------------------------------------------------------------------- text


def preview_csv(data: bytes, source_name: str = "data.csv", rows: int = 5) -> tuple[list[str], Any]:
    """Column names and the first rows of a CSV (for the column pickers), or InputError."""
    table = inputs.read_table_csv(data, source_name)
    columns = [c for c in table.columns if c != inputs.LINE_COLUMN]
    return columns, table[columns].head(rows)


def import_text_csv(
    data: bytes,
    text_column: str,
    label_column: str,
    name: str,
    *,
    for_model: str | None = None,
    source_name: str = "data.csv",
) -> ImportPlan:
    """Plan the import of a CSV of texts and labels (the columns are the user's choice)."""
    name = check_new_name(name)
    target_classes, _ = model_target(for_model, Modality.TEXT)
    table = inputs.read_table_csv(data, source_name)
    columns = [c for c in table.columns if c != inputs.LINE_COLUMN]
    for column in (text_column, label_column):
        if column not in columns:
            raise InputError(
                f"'{shown_name(source_name)}' has no column '{shown_name(str(column))}'; its columns are "
                f"{', '.join(shown_name(c) for c in columns)}, so choose one of them and retry."
            )
    if text_column == label_column:
        raise InputError("the text column and the label column must be different; choose two columns and retry.")
    if len(table) > MAX_IMPORT_TEXTS:
        raise InputError(f"'{shown_name(source_name)}' has more than {MAX_IMPORT_TEXTS:,} rows; split it and retry.")
    problems: list[Problem] = []
    rows: list[tuple[str, str, str]] = []
    cleaned_lines: list[int] = []
    first_by_text: dict[str, tuple[str, str]] = {}
    for text_cell, label_cell, line in zip(table[text_column], table[label_column], table[inputs.LINE_COLUMN]):
        where = f"line {line}"
        label = _clean_label(label_cell)
        try:
            cleaned = inputs.clean_text(str(text_cell))
        except InputError as exc:
            problems.append(Problem(where, "empty", _without_advice(str(exc)).replace("The text", "the text")))
            continue
        if not label:
            problems.append(Problem(where, "empty", "no label"))
            continue
        if cleaned.notices:
            cleaned_lines.append(int(line))
        key = " ".join(cleaned.text.split())
        if key in first_by_text:
            first, first_label = first_by_text[key]
            detail = f"the same text as {first}"
            if first_label != label:
                detail += f", which is labelled '{shown_name(first_label)}'"
            problems.append(Problem(where, "duplicate", detail))
            continue
        first_by_text[key] = (where, label)
        rows.append((where, cleaned.text, label))
    classes, label_problems = _resolve_classes([(where, label) for where, _, label in rows], target_classes)
    items = []
    for where, text, label in rows:
        if where in label_problems:
            problems.append(Problem(where, "unknown label", label_problems[where]))
        else:
            items.append(_Item(where, label, text))
    problems.sort(key=lambda p: int(p.where.split()[1]))
    notes = []
    if cleaned_lines:
        shown = ", ".join(str(n) for n in cleaned_lines[:10]) + (" …" if len(cleaned_lines) > 10 else "")
        notes.append(
            f"{len(cleaned_lines)} text(s) had invisible or control characters removed or were shortened "
            f"to {inputs.MAX_TEXT_CHARS:,} characters (lines {shown})."
        )
    return ImportPlan(
        name=name, modality=Modality.TEXT, classes=classes, items=items, problems=problems, source=source_name,
        notes=notes, for_model=for_model,
    )


# --------------------------------------------------------------------------- commit


def assign_splits(plan: ImportPlan) -> dict[str, list[int]]:
    """Item indices per split: per class, ordered by sha256(name/where); test, then val, then train."""
    by_class: dict[str, list[int]] = {}
    for index, item in enumerate(plan.items):
        by_class.setdefault(item.label, []).append(index)
    splits: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for indices in by_class.values():
        order = sorted(indices, key=lambda i: hashlib.sha256(f"{plan.name}/{plan.items[i].where}".encode()).hexdigest())
        n = len(order)
        n_test = max(1, int(n * TEST_FRACTION + 0.5))
        n_val = max(1, int(n * VAL_FRACTION + 0.5))
        splits["test"].extend(order[:n_test])
        splits["val"].extend(order[n_test : n_test + n_val])
        splits["train"].extend(order[n_test + n_val :])
    return {split: sorted(indices) for split, indices in splits.items()}


def commit(plan: ImportPlan, skip_problem_rows: bool = False, *, created_by: str = "import-data",
           actor: Identity | None = None) -> ImportReport:
    """Store the plan's rows as a dataset, all at once (one rename), or raise InputError and store nothing.

    Needs the maintainer role (`actor`, default the local operator: foundation/access.py); the
    dataset's manifest records who imported it (`actor`: subject, e-mail, name, role).
    """
    from foundation.dataset import Dataset, dataset_hash

    who = access.acting(actor, access.IMPORT_DATA)

    if plan.problems and not skip_problem_rows:
        first = plan.problems[0]
        raise InputError(
            f"'{plan.name}' has {len(plan.problems)} problem row(s) (first: {first.where}: {first.detail}); "
            "fix them, or import skipping those rows, and retry."
        )
    reasons = plan.blocking()
    if reasons:
        raise InputError(reasons[0])
    check_new_name(plan.name)
    index = {label: i for i, label in enumerate(plan.classes)}
    ids = [f"{plan.name}-{i:05d}" for i in range(len(plan.items))]
    root = _datasets_root()
    staging = Path(tempfile.mkdtemp(prefix=f".{plan.name}.staging-", dir=root))
    try:
        counts, hashes = {}, {}
        for split, indices in assign_splits(plan).items():
            chosen = [plan.items[i] for i in indices]
            split_ids = [ids[i] for i in indices]
            labels = np.asarray([index[item.label] for item in chosen], dtype=np.int64)
            if plan.modality is Modality.IMAGE:
                height, width = plan.image_size or (0, 0)
                x = np.stack([item.value for item in chosen]) if chosen else np.zeros((0, height, width, 3), np.uint8)
                _write_npz(staging / f"{split}.npz", x=x, y=labels, ids=np.asarray(split_ids, dtype=str),
                           sources=np.asarray([item.where for item in chosen], dtype=str))
            else:
                x = [item.value for item in chosen]
                _write_json(staging / f"{split}.json", {"ids": split_ids, "texts": x, "labels": labels.tolist(),
                                                        "sources": [item.where for item in chosen]})
            counts[split] = len(chosen)
            hashes[split] = dataset_hash(Dataset(plan.name, split, plan.modality, plan.classes, tuple(split_ids), x, labels))
        manifest = {
            "format": FORMAT_VERSION,
            "name": plan.name,
            "modality": plan.modality.value,
            "classes": list(plan.classes),
            "splits": counts,
            "split_hashes": hashes,
            "image_size": list(plan.image_size) if plan.image_size else None,
            "source": plan.source,
            "for_model": plan.for_model,
            "rows_imported": len(plan.items),
            "problem_rows_skipped": len(plan.problems),
            "import_id": uuid.uuid4().hex,
            "created_at": _now_iso(),
            "created_by": created_by,
            "actor": who.record(),
        }
        _write_json(staging / "manifest.json", manifest)
        target = root / plan.name
        try:
            os.rename(staging, target)  # atomic; refuses a name another import took meanwhile
        except OSError:
            raise InputError(f"a dataset named '{plan.name}' already exists; choose another name and retry.") from None
        fsync_dir(root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ImportReport(plan.name, target, plan.modality, plan.classes, counts, len(plan.items), len(plan.problems), manifest)


def _now_iso() -> str:
    from models.store import now_iso

    return now_iso()


def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    with open(path, "xb") as handle:
        np.savez(handle, **arrays)
        handle.flush()
        os.fsync(handle.fileno())


def _write_json(path: Path, data: Any) -> None:
    import json

    with open(path, "x", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False)
        handle.flush()
        os.fsync(handle.fileno())


