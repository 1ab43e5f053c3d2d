"""Batch work: predictions and one explanation method over many inputs, in batches.

The page (`pages/batch.py`) and the CLI (`workbench explain-batch`) both call `run_batch`.
Inputs are read first (`read_image_files`, `texts_from_table`); one that cannot be read
becomes a row with its error rather than stopping the run. The model and the explainer see
the inputs in batches (`batch_size`): batching is where the speed comes from.

Overlays: images get a PNG of the heatmap over the input (the input shrunk so its longest
side is at most `OVERLAY_MAX_SIDE`, so a zip of photos stays small); texts get a small
self-contained HTML page with the tokens coloured (every token escaped). They go to an
`OverlaySink`: a zip in memory or on disk, or a folder.
"""
from __future__ import annotations

import io
import re
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from explainers import render
from foundation.errors import InputError, WorkbenchError
from foundation.types import Explanation, Modality
from workbench import explaining
from workbench import inputs as safe_inputs

DEFAULT_BATCH_SIZE = 64
OVERLAY_MAX_SIDE = 512
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
NO_METHOD = "none"

# (done, total, eta_seconds or None before the first batch finished)
Progress = Callable[[int, int, "float | None"], None]

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class BatchInput:
    """One input: its name (file name, or row/line of a CSV) and its value, or why it was unreadable."""

    name: str
    value: Any = None  # uint8 H x W x 3 image or a string
    error: str | None = None


@dataclass
class BatchResult:
    table: pd.DataFrame
    seconds: float
    method: str
    n_ok: int
    n_failed: int
    overlays_written: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return self.n_ok / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        return {"method": self.method, "inputs": self.n_ok + self.n_failed, "explained": self.n_ok,
                "failed": self.n_failed, "overlays": self.overlays_written, "seconds": round(self.seconds, 3),
                "inputs_per_second": round(self.per_second, 2),
                "timings": {k: round(v, 3) for k, v in self.timings.items()}}


# --- reading inputs ---------------------------------------------------------------------------------


def image_files_in(folder: Path) -> list[Path]:
    """Image files under `folder` (recursively, by suffix), sorted by path; hidden entries skipped."""
    folder = Path(folder)
    found = []
    for path in folder.rglob("*"):
        parts = path.relative_to(folder).parts
        if any(p.startswith(".") or p == "__MACOSX" for p in parts):
            continue
        if path.is_file() and not path.is_symlink() and path.suffix.lower() in IMAGE_SUFFIXES:
            found.append(path)
    return sorted(found)


def read_image_files(paths: Iterable[Path], root: Path | None = None,
                     max_side: int | None = OVERLAY_MAX_SIDE) -> list[BatchInput]:
    """Decode each image safely; an unreadable one becomes an input carrying its error message.

    Images larger than `max_side` are shrunk on reading: the model needs only its own input
    size and the overlays are drawn at most that large, so a zip of photos stays small in memory.
    """
    items = []
    for path in paths:
        path = Path(path)
        name = str(path.relative_to(root)) if root is not None else path.name
        try:
            image = safe_inputs.read_image_file(path)
        except InputError as exc:
            items.append(BatchInput(name, error=str(exc)))
            continue
        items.append(BatchInput(name, _shrink(image, max_side) if max_side else image))
    return items


def text_columns(table: pd.DataFrame) -> list[str]:
    """The columns a user may pick as the text (not the line-number column)."""
    return [c for c in table.columns if c != safe_inputs.LINE_COLUMN]


def guess_text_column(table: pd.DataFrame) -> str:
    """"text" (any case) if there is one, else the column with the longest values on average."""
    columns = text_columns(table)
    for column in columns:
        if column.strip().lower() == "text":
            return column
    return max(columns, key=lambda c: table[c].astype(str).str.len().mean())


def texts_from_table(table: pd.DataFrame, column: str, max_tokens: int | None = None) -> list[BatchInput]:
    """One input per row of `column` (cleaned like typed text); its name is the CSV line number."""
    if column not in table.columns or column == safe_inputs.LINE_COLUMN:
        raise WorkbenchError(f"the table has no column {column!r}; choose one of {', '.join(text_columns(table))}.")
    lines = table[safe_inputs.LINE_COLUMN] if safe_inputs.LINE_COLUMN in table.columns else range(2, len(table) + 2)
    items = []
    for line, text in zip(lines, table[column]):
        name = f"line {int(line)}"
        try:
            items.append(BatchInput(name, safe_inputs.clean_text(str(text), max_tokens=max_tokens or None).text))
        except InputError as exc:
            items.append(BatchInput(name, error=str(exc)))
    return items


# --- where overlays go ------------------------------------------------------------------------------


class OverlaySink(Protocol):
    def add(self, name: str, data: bytes) -> None: ...


class ZipSink:
    """Overlays into a zip archive, in memory (`path=None`; read `getvalue()`) or on disk."""

    def __init__(self, path: Path | None = None) -> None:
        self._buffer = io.BytesIO() if path is None else None
        self._zip = zipfile.ZipFile(self._buffer if path is None else Path(path), "w", zipfile.ZIP_STORED)
        self.names: list[str] = []

    def add(self, name: str, data: bytes) -> None:
        # PNGs are already compressed: storing them is as small and much faster than deflating.
        compress = zipfile.ZIP_STORED if name.endswith(".png") else zipfile.ZIP_DEFLATED
        self._zip.writestr(name, data, compress_type=compress)
        self.names.append(name)

    def close(self) -> None:
        self._zip.close()

    def getvalue(self) -> bytes:
        if self._buffer is None:
            raise ValueError("this zip was written to a file")
        self.close()
        return self._buffer.getvalue()


class FolderSink:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.names: list[str] = []

    def add(self, name: str, data: bytes) -> None:
        (self.folder / name).write_bytes(data)
        self.names.append(name)


def overlay_name(index: int, name: str, method: str, modality: Modality) -> str:
    """A unique, filesystem-safe file name for input number `index`."""
    stem = Path(name).stem if modality is Modality.IMAGE else name
    stem = _SAFE_NAME.sub("_", stem)[:40].strip("_") or "input"
    suffix = ".png" if modality is Modality.IMAGE else ".html"
    return f"{index:05d}_{stem}_{_SAFE_NAME.sub('p', method)}{suffix}"


def overlay_bytes(item: Any, explanation: Explanation) -> bytes:
    """PNG of the heatmap over the (display-sized) image, or an escaped HTML page of coloured tokens."""
    if explanation.modality is Modality.IMAGE:
        image = _display_size(np.asarray(item))
        signed = bool((explanation.values < 0).any())
        return render.png_bytes(render.overlay_heatmap(image, explanation.values, signed=signed))
    body = render.token_html(explanation.tokens or (), explanation.values)
    legend = render.diverging_legend_html("against", "for")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>explanation</title></head>"
            f"<body style='font-family:sans-serif'>{body}{legend}</body></html>").encode("utf-8")


def _display_size(image: np.ndarray) -> np.ndarray:
    return _shrink(image, OVERLAY_MAX_SIDE)


def _shrink(image: np.ndarray, max_side: int) -> np.ndarray:
    """The image with its longest side at most `max_side` (area-averaged), or unchanged."""
    import cv2

    height, width = image.shape[:2]
    longest = max(height, width)
    if longest <= max_side:
        return image
    scale = max_side / longest
    return cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)


# --- the run ---------------------------------------------------------------------------------------------


def _eta(started: float, done: int, total: int) -> float | None:
    if done <= 0:
        return None
    elapsed = time.perf_counter() - started
    return elapsed / done * (total - done)


def run_batch(
    model: Any,
    items: Sequence[BatchInput],
    method: str = "gradcam",
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int = 0,
    overlays: OverlaySink | None = None,
    progress: Progress | None = None,
    params: dict[str, Any] | None = None,
    map_summary: bool = False,
) -> BatchResult:
    """Predict every readable input and explain its predicted class with `method` ("none": predict only).

    The table has one row per input, in input order: input, status ("ok"/"error"), predicted,
    confidence, one probability column per class, method, target, seconds (explanation time per
    input, as the explainer measured it over its batch), overlay (the file name in the overlay
    sink, if any) and error (why an input could not be read). With `map_summary` (the Ray engine's
    Parquet rows) the `MAP_SUMMARY_COLUMNS` follow, since the map itself is not kept.
    """
    from workbench import api

    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if method != NO_METHOD:
        explaining.explainer_class(model, method)  # refuses an unknown method, or one that does not apply
    report = progress or (lambda done, total, eta: None)
    ok = [i for i, item in enumerate(items) if item.error is None]
    total = len(ok)
    rows: list[dict[str, Any]] = [_row(item) for item in items]
    timings = {"predict": 0.0, "explain": 0.0, "render": 0.0}
    written = 0
    started = time.perf_counter()
    report(0, total, None)
    for start in range(0, total, batch_size):
        chunk = ok[start : start + batch_size]
        values = [items[i].value for i in chunk]
        t0 = time.perf_counter()
        probabilities = api.predict(model, values)
        timings["predict"] += time.perf_counter() - t0
        targets = [int(p.argmax()) for p in probabilities]
        explanations: list[Explanation | None] = [None] * len(chunk)
        if method != NO_METHOD:
            t0 = time.perf_counter()
            explanations = api.explain(model, method, values, targets, seed=seed, **(params or {}))
            timings["explain"] += time.perf_counter() - t0
        for position, (i, probs, target, explanation) in enumerate(zip(chunk, probabilities, targets, explanations)):
            row = rows[i]
            row.update({"predicted": model.classes[target], "confidence": round(float(probs[target]), 6)})
            row.update({f"p_{name}": round(float(p), 6) for name, p in zip(model.classes, probs)})
            if explanation is not None:
                row.update({"method": explanation.method, "target": explanation.target_label,
                            "seconds": round(float(explanation.seconds), 5)})
                if map_summary:
                    row.update(summarise_map(explanation.values))
                if overlays is not None:
                    t0 = time.perf_counter()
                    name = overlay_name(i, items[i].name, method, model.modality)
                    overlays.add(name, overlay_bytes(values[position], explanation))
                    row["overlay"] = name
                    written += 1
                    timings["render"] += time.perf_counter() - t0
        done = min(start + batch_size, total)
        report(done, total, _eta(started, done, total))
    seconds = time.perf_counter() - started
    columns = (["input", "status", "predicted", "confidence"] + [f"p_{c}" for c in model.classes]
               + ["method", "target", "seconds", "overlay", "error"] + (MAP_SUMMARY_COLUMNS if map_summary else []))
    table = pd.DataFrame(rows, columns=columns)
    return BatchResult(table=table, seconds=seconds, method=method, n_ok=total,
                       n_failed=len(items) - total, overlays_written=written, timings=timings)


MAP_SUMMARY_COLUMNS = ["map_max", "map_mean_abs", "map_peak_y", "map_peak_x", "map_top10_share"]


def summarise_map(values: np.ndarray) -> dict[str, float]:
    """A few numbers that say where and how concentrated a map is, for a table of millions of rows.

    Peak position is relative (0..1, row then column; for text: token position) so maps of
    different sizes compare; top10_share is the part of the total |value| in the top 10 % of cells.
    """
    values = np.asarray(values, dtype=np.float64)
    flat = np.abs(values).ravel()
    total = float(flat.sum())
    peak = np.unravel_index(int(np.argmax(np.abs(values))), values.shape) if flat.size else (0,)
    shape = values.shape or (1,)
    relative = [p / max(1, n - 1) for p, n in zip(peak, shape)]
    top = np.sort(flat)[::-1][: max(1, flat.size // 10)]
    return {"map_max": round(float(values.max()) if flat.size else 0.0, 6),
            "map_mean_abs": round(float(flat.mean()) if flat.size else 0.0, 6),
            "map_peak_y": round(relative[0], 4), "map_peak_x": round(relative[1] if len(relative) > 1 else 0.0, 4),
            "map_top10_share": round(float(top.sum()) / total, 6) if total > 0 else 0.0}


def _row(item: BatchInput) -> dict[str, Any]:
    return {"input": item.name, "status": "ok" if item.error is None else "error", "error": item.error or ""}


def results_csv_bytes(result: BatchResult) -> bytes:
    """The results table as UTF-8 CSV, every cell neutralised against spreadsheet formulas."""
    return safe_inputs.to_safe_csv_bytes(result.table)


def throughput(model: Any, method: str = "gradcam", n: int = 512, *, batch_size: int = DEFAULT_BATCH_SIZE,
               seed: int = 0) -> dict[str, Any]:
    """Explanations per second over `n` distinct dataset inputs in batches, overlays rendered (for `workbench bench`).

    Uses the model's own dataset (test split, repeated with a one-pixel shift if too small) so
    no input hits the result cache.
    """
    from workbench import cache, datasets

    name = model.info.dataset
    if name not in datasets.names():
        raise WorkbenchError(f"model {model.name!r} names no dataset the workbench has; cannot measure throughput.")
    data = datasets.load(name, "test")
    values = []
    for i in range(n):
        item = data.x[i % len(data)]
        rounds = i // len(data)
        if rounds:  # make each repeat a different input so the result cache cannot answer it
            item = np.roll(np.asarray(item), rounds, axis=1) if data.modality is Modality.IMAGE else f"{item} {'.' * rounds}"
        values.append(item)
    cache.EXPLANATIONS.clear()
    items = [BatchInput(f"{name}-{i}", value) for i, value in enumerate(values)]
    sink = ZipSink()
    result = run_batch(model, items, method, batch_size=batch_size, seed=seed, overlays=sink)
    sink.close()
    return {"model": model.name, "version": model.version, "method": method, "n": n, "batch_size": batch_size,
            "seconds": round(result.seconds, 3), "inputs_per_second": round(result.per_second, 1),
            "timings": {k: round(v, 3) for k, v in result.timings.items()}}
