"""Exports to PNG/CSV and the shipped example files."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

import sample_data
from sample_data.export import EXAMPLES_DIR, export_split, safe_cell, write_examples


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


def test_export_images_writes_readable_pngs_masks_and_labels(tmp_path: Path) -> None:
    ds = sample_data.load("shapes-shortcut", "val")
    index = export_split("shapes-shortcut", "val", tmp_path)
    assert index == tmp_path / "labels.csv"
    rows = _read_csv(index)
    assert [row["id"] for row in rows] == list(ds.ids)
    assert {row["label"] for row in rows} == set(ds.classes)
    for i in (0, 17, len(ds) - 1):
        assert rows[i]["label"] == ds.classes[ds.y[i]]
        assert np.array_equal(np.asarray(Image.open(tmp_path / rows[i]["file"])), ds.x[i])
        mask = np.asarray(Image.open(tmp_path / f"{ds.ids[i]}_mask.png")) > 127
        assert np.array_equal(mask, ds.masks[i])
    cued = np.flatnonzero(ds.cue_masks.any(axis=(1, 2)))
    assert len(list(tmp_path.glob("*_cue.png"))) == len(cued)
    cue = np.asarray(Image.open(tmp_path / f"{ds.ids[cued[0]]}_cue.png")) > 127
    assert np.array_equal(cue, ds.cue_masks[cued[0]])


def test_export_text_writes_one_csv_with_rationales(tmp_path: Path) -> None:
    ds = sample_data.load("headlines", "test")
    path = export_split("headlines", "test", tmp_path / "new")
    assert path == tmp_path / "new" / "headlines-test.csv"
    rows = _read_csv(path)
    assert list(rows[0]) == ["id", "text", "label", "rationale"]
    assert [row["text"] for row in rows] == ds.x
    assert [row["label"] for row in rows] == [ds.classes[y] for y in ds.y]
    assert [tuple(row["rationale"].split()) for row in rows] == list(ds.rationales)


def test_formula_cells_are_neutralised() -> None:
    assert safe_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert safe_cell("-1+2") == "'-1+2"
    assert safe_cell("@sum") == "'@sum"
    assert safe_cell("Shares rise 5%") == "Shares rise 5%"


def test_committed_examples_match_regeneration(tmp_path: Path) -> None:
    written = write_examples(tmp_path)
    committed = sorted(p.name for p in EXAMPLES_DIR.iterdir())
    assert sorted(p.name for p in written) == committed
    assert len(committed) <= 8
    assert sum(p.stat().st_size for p in EXAMPLES_DIR.iterdir()) < 200_000
    for path in written:
        shipped = EXAMPLES_DIR / path.name
        if path.suffix == ".csv":
            assert path.read_text(encoding="utf-8") == shipped.read_text(encoding="utf-8")
            continue
        new = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
        old = np.asarray(Image.open(shipped).convert("RGB"), dtype=np.int16)
        assert new.shape == old.shape == (64, 64, 3)
        # JPEG decoders may differ by a level or two; PNG must be exact.
        tolerance = 3 if path.suffix == ".jpg" else 0
        assert np.abs(new - old).max() <= tolerance, path.name


def test_example_files_show_what_their_names_say() -> None:
    circle = np.asarray(Image.open(EXAMPLES_DIR / "shortcut_circle_cue.png"))
    assert (circle[2:8, 2:8] == (255, 0, 255)).all()
    rows = _read_csv(EXAMPLES_DIR / "headlines.csv")
    assert len(rows) == 10 and set(rows[0]) == {"id", "text", "label"}
    test = sample_data.load("headlines", "test")
    assert all(row["text"] == test.x[test.index_of(row["id"])] for row in rows)
