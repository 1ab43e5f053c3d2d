"""`workbench explain-batch`: predictions and explanations for thousands of inputs, in batches.

    workbench explain-batch --model shapes --method gradcam photos/ --out results/ --json
    workbench explain-batch --model headlines --method gradcam news.csv --text-column title --out results/

Inputs: image files, folders of images (searched recursively), zips of images (extracted
safely into a workspace temp folder, removed afterwards) or, for text models, CSV files with
a text column. Writes `results.csv` (formula-safe) and `overlays/` (one PNG or HTML per input)
into --out, and reports the throughput.

`--engine ray` (issue 16) runs the same job on Ray (`workbench/ray_engine.py`): image files,
folders, ZIPs or a .csv/.parquet list of paths (a `path` column), or CSV texts for a text model;
`results.parquet` instead of results.csv, resumable after a crash.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

from commandline.ray_options import add_ray_arguments, ray_session
from foundation.errors import WorkbenchError


def _image_inputs(paths: list[Path]) -> tuple[list[Any], list[Path]]:
    """Every image named (directly, in folders, in zips); also the temp folders to remove."""
    from foundation import config
    from workbench import batch, inputs

    items: list[Any] = []
    temp: list[Path] = []
    for path in paths:
        if path.is_dir():
            items.extend(batch.read_image_files(batch.image_files_in(path), root=path.parent))
        elif path.suffix.lower() == ".zip":
            dest = config.workspace_subdir("tmp") / f"batch-{uuid.uuid4().hex}"
            temp.append(dest)
            result = inputs.extract_zip(path, dest, name=path.name)
            files = sorted(p for p in result.files if p.suffix.lower() in batch.IMAGE_SUFFIXES)
            items.extend(batch.read_image_files(files, root=dest))
        elif path.is_file():
            items.extend(batch.read_image_files([path]))
        else:
            raise WorkbenchError(f"'{path}' does not exist; check the path and retry.")
    return items, temp


def _text_inputs(paths: list[Path], column: str | None, max_tokens: int) -> list[Any]:
    from workbench import batch, inputs

    items: list[Any] = []
    for path in paths:
        if path.suffix.lower() != ".csv" or not path.is_file():
            raise WorkbenchError(f"'{path}' is not a CSV file; text models read a CSV with a text column.")
        table = inputs.read_table_csv(path.read_bytes(), path.name)
        chosen = column or batch.guess_text_column(table)
        items.extend(batch.texts_from_table(table, chosen, max_tokens=max_tokens))
    return items


def cmd_explain_batch(args: argparse.Namespace) -> int:
    from foundation.types import Modality
    from workbench import api, batch

    if args.batch_size < 1:
        raise WorkbenchError("--batch-size must be at least 1.")
    if args.engine == "ray":
        return _explain_batch_on_ray(args)
    model = api.load_model(args.model)
    paths = [Path(p) for p in args.inputs]
    temp: list[Path] = []
    try:
        if model.modality is Modality.TEXT:
            items = _text_inputs(paths, args.text_column, model.sequence_length)
        else:
            items, temp = _image_inputs(paths)
        if args.limit:
            items = items[: args.limit]
        if not items:
            raise WorkbenchError("no inputs found; name image files, folders or zips (or a CSV for text models).")
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        sink = batch.FolderSink(out / "overlays") if args.method != batch.NO_METHOD else None
        result = batch.run_batch(model, items, args.method, batch_size=args.batch_size, seed=args.seed,
                                 overlays=sink, progress=None if args.json else _progress_printer())
    finally:
        for folder in temp:
            shutil.rmtree(folder, ignore_errors=True)
    csv_path = out / "results.csv"
    csv_path.write_bytes(batch.results_csv_bytes(result))
    summary = {"model": model.name, "version": model.version, **result.summary(),
               "csv": str(csv_path), "overlays_dir": str(out / "overlays") if sink else None}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"\n{summary['explained']} explained, {summary['failed']} unreadable, "
              f"{summary['inputs_per_second']} inputs/s -> {csv_path}")
    return 0


def _explain_batch_on_ray(args: argparse.Namespace) -> int:
    """The Ray engine: results.parquet + overlays/ in --out; a rerun skips inputs already written."""
    from foundation.types import Modality
    from workbench import api, ray_engine

    model = api.load_model(args.model)
    texts = None
    if model.modality is Modality.TEXT:  # read here, as the local engine reads them, so rows are named alike
        texts = _text_inputs([Path(p) for p in args.inputs], args.text_column, model.sequence_length)
    with ray_session(args):
        summary = ray_engine.run(args.model, [Path(p) for p in args.inputs], Path(args.out), args.method, texts=texts,
                                 batch_size=args.batch_size, seed=args.seed, workers=args.workers, limit=args.limit,
                                 progress=None if args.json else _progress_printer())
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"\n{summary['computed']} computed, {summary['skipped']} already done, {summary['failed']} unreadable, "
              f"{summary['inputs_per_second']} inputs/s -> {summary['parquet']}")
    return 0


def _progress_printer():
    def report(done: int, total: int, eta: float | None) -> None:
        left = f", {eta:.0f} s left" if eta is not None else ""
        print(f"\r{done}/{total}{left}   ", end="", file=sys.stderr, flush=True)

    return report


def register(sub) -> None:
    parser = sub.add_parser("explain-batch", help="predict and explain many inputs in batches (CSV + overlays)")
    parser.add_argument("--model", required=True)
    parser.add_argument("--method", default="gradcam", help="explanation method, or 'none' for predictions only")
    parser.add_argument("--out", required=True, help="folder for results.csv and overlays/")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--text-column", default=None, help="CSV column holding the text (default: 'text' or the longest)")
    parser.add_argument("--limit", type=int, default=None, help="explain at most this many inputs")
    parser.add_argument("inputs", nargs="+", help="image files, folders, zips of images, or CSV files (text models)")
    parser.add_argument("--json", action="store_true")
    add_ray_arguments(parser, "one process, results.csv", "Ray Data actors, results.parquet, resumable")
    parser.set_defaults(func=cmd_explain_batch)
