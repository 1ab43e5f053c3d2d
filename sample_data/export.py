"""Write sample splits out as ordinary files (PNG + CSV, or one CSV for text), and the example files.

The exports are for people: to look at, to feed to other tools, or to upload back into the
workbench. CSV cells that a spreadsheet would run as a formula are neutralised.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

from foundation.dataset import Dataset
from foundation.types import Modality
from sample_data import load

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def export_split(name: str, split: str, out_dir: str | Path) -> Path:
    """Write one split into `out_dir` (created if needed) and return the CSV that indexes it.

    Images: `<id>.png` for every example, `<id>_mask.png` beside it where the dataset has
    object masks (and `<id>_cue.png` for shortcut cues), and `labels.csv` with id,file,label.
    Text: `<name>-<split>.csv` with id,text,label,rationale (rationale tokens space-separated).
    """
    ds = load(name, split)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if ds.modality is Modality.TEXT:
        return _export_text(ds, out / f"{name}-{split}.csv")
    return _export_images(ds, out)


def write_examples(out_dir: str | Path = EXAMPLES_DIR) -> list[Path]:
    """Regenerate the small files in `sample_data/examples/` (a developer task; all from test splits)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    shapes = load("shapes", "test")
    for label, suffix in (("circle", "png"), ("triangle", "png"), ("star", "png"), ("square", "jpg")):
        written.append(_save_image(_first_of(shapes, label), out / f"shape_{label}.{suffix}"))
    cued = load("shapes-shortcut", "test")
    cue_index = int(np.flatnonzero(cued.cue_masks.any(axis=(1, 2)))[0])
    written.append(_save_image(cued.x[cue_index], out / "shortcut_circle_cue.png"))
    digits = load("digits", "test")
    for label in ("3", "7"):
        written.append(_save_image(_first_of(digits, label), out / f"digit_{label}.png"))
    news = load("headlines", "test")
    rows = [(news.ids[i], news.x[i], news.classes[int(news.y[i])]) for i in range(10)]
    written.append(_write_csv(out / "headlines.csv", ("id", "text", "label"), rows))
    return written


def _first_of(ds: Dataset, label: str) -> np.ndarray:
    return ds.x[int(np.flatnonzero(ds.y == ds.classes.index(label))[0])]


def _export_images(ds: Dataset, out: Path) -> Path:
    rows = []
    for i, example_id in enumerate(ds.ids):
        file_name = f"{example_id}.png"
        _save_image(ds.x[i], out / file_name)
        if ds.masks is not None:
            _save_mask(ds.masks[i], out / f"{example_id}_mask.png")
        if ds.cue_masks is not None and ds.cue_masks[i].any():
            _save_mask(ds.cue_masks[i], out / f"{example_id}_cue.png")
        rows.append((example_id, file_name, ds.classes[int(ds.y[i])]))
    return _write_csv(out / "labels.csv", ("id", "file", "label"), rows)


def _export_text(ds: Dataset, path: Path) -> Path:
    rationales = ds.rationales or tuple(() for _ in ds.ids)
    rows = [
        (example_id, ds.x[i], ds.classes[int(ds.y[i])], " ".join(rationales[i]))
        for i, example_id in enumerate(ds.ids)
    ]
    return _write_csv(path, ("id", "text", "label", "rationale"), rows)


def _save_image(image: np.ndarray, path: Path) -> Path:
    picture = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8))
    if path.suffix.lower() in (".jpg", ".jpeg"):
        picture.save(path, format="JPEG", quality=92)
    else:
        picture.save(path, format="PNG", optimize=True)
    return path


def _save_mask(mask: np.ndarray, path: Path) -> None:
    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)).save(path, format="PNG", optimize=True)


def safe_cell(value: object) -> str:
    """The cell as text, prefixed with a quote if a spreadsheet would read it as a formula."""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([safe_cell(cell) for cell in row] for row in rows)
    return path
