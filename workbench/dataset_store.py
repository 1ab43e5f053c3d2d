"""The Dataset page's per-example results on disk, as Parquet, and the queries a click makes.

One file per (model version, split): `<key>.parquet`, one row per example in dataset order
with its label, prediction, confidence, every class probability, its 2-D map position and
the properties the failure slices cut by (brightness, contrast, ...), plus `<key>.json`
describing what was computed. The JSON is written last, so its presence says the Parquet
beside it is complete; a file that does not read back (truncated, overwritten, another row
count) is treated as absent and recomputed by the caller, never shown.

The page never needs the images or the features again once this exists: a confusion-cell
click is a filtered read of one column (pyarrow.dataset with a predicate on `label` and
`prediction`, answered from the row groups' statistics and two small columns), the map's
points are a `take` of a few columns, and the slices read only the property columns.
This module only stores and reads; `workbench.dataset_view` decides what goes in.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from foundation.atomic import atomic_write

# Rows per Parquet row group: small enough that a filter can skip groups, large enough to stay fast.
ROW_GROUP = 16_384
INDEX, LABEL, PREDICTION, CONFIDENCE, CORRECT, MAP_X, MAP_Y, EXAMPLE_ID = (
    "index", "label", "prediction", "confidence", "correct", "map_x", "map_y", "example_id")
PROBABILITY_PREFIX = "p_"
PROPERTY_PREFIX = "prop_"
# What a damaged or foreign file can raise while being read.
READ_ERRORS = (OSError, ValueError, KeyError, TypeError, pa.ArrowException)


def probability_column(k: int) -> str:
    return f"{PROBABILITY_PREFIX}{k}"


def property_column(name: str) -> str:
    return f"{PROPERTY_PREFIX}{name}"


def paths(folder: Path, key: str) -> tuple[Path, Path]:
    """(table, description) file paths of one entry."""
    return folder / f"{key}.parquet", folder / f"{key}.json"


def write(folder: Path, key: str, columns: Mapping[str, np.ndarray | Sequence[str]], meta: dict[str, Any]) -> Path:
    """Write the table and then its description (atomically each); returns the table's path."""
    table_path, meta_path = paths(folder, key)
    table = pa.table({name: pa.array(values) for name, values in columns.items()})
    atomic_write(table_path, lambda handle: pq.write_table(table, handle, row_group_size=ROW_GROUP,
                                                           compression="zstd"))
    meta = {**meta, "rows": table.num_rows, "columns": table.column_names}
    atomic_write(meta_path, lambda handle: handle.write(json.dumps(meta, indent=1).encode("utf-8")))
    return table_path


class Store:
    """One stored entry: its description and typed reads of its table."""

    def __init__(self, table_path: Path, meta: dict[str, Any]) -> None:
        self.path = table_path
        self.meta = meta
        self._dataset = pads.dataset(str(table_path), format="parquet")

    @property
    def rows(self) -> int:
        return int(self.meta["rows"])

    def columns(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        """Whole columns as numpy arrays (only the ones asked for are read)."""
        table = pq.read_table(self.path, columns=list(names))
        return {name: table.column(name).to_numpy() for name in names}

    def where(self, filters: Mapping[str, Any], column: str = INDEX) -> np.ndarray:
        """One column of the rows where every `column == value` holds (dataset order)."""
        expression = None
        for name, value in filters.items():
            term = pc.field(name) == value
            expression = term if expression is None else expression & term
        table = self._dataset.to_table(columns=[column], filter=expression)
        return np.sort(table.column(column).to_numpy()) if column == INDEX else table.column(column).to_numpy()

    def take(self, indices: np.ndarray, names: Sequence[str]) -> pd.DataFrame:
        """The chosen rows (by position = dataset index) and columns, as a frame in the given order."""
        table = self._dataset.to_table(columns=list(names))
        return table.take(pa.array(np.asarray(indices, dtype=np.int64))).to_pandas()


def open_store(folder: Path, key: str, rows: int, expect: Mapping[str, Any] | None = None) -> Store | None:
    """The entry if it is complete, readable, of `rows` rows and matches `expect`; else None."""
    table_path, meta_path = paths(folder, key)
    if not (table_path.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        footer = pq.ParquetFile(table_path).metadata  # reads the footer only: a torn file fails here
        if footer.num_rows != rows or int(meta.get("rows", -1)) != rows:
            return None
        if any(meta.get(name) != value for name, value in (expect or {}).items()):
            return None
        return Store(table_path, meta)
    except READ_ERRORS:
        return None
