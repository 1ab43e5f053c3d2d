"""Bring your own model and data: `workbench models add`, `workbench models scan`, `workbench import-data`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from foundation.errors import InputError, WorkbenchError

_TEXT_SUFFIXES = {".csv", ".tsv", ".txt"}


def _yes_no(value: str | None) -> bool | None:
    if value is None:
        return None
    return value == "yes"


def cmd_models_add(args: argparse.Namespace) -> int:
    from workbench import user_models

    overrides = {"rescales_inputs": _yes_no(args.rescales_inputs), "gradcam_layer": args.gradcam_layer,
                 "preprocessing": args.preprocessing, "mean": _numbers(args.mean), "std": _numbers(args.std),
                 "vocabulary": args.vocabulary, "oov_id": args.oov_id, "sequence_length": args.sequence_length,
                 "padding": args.padding}
    if args.height or args.width:
        overrides.update(height=args.height, width=args.width)
    info = user_models.register(
        Path(args.path),
        classes=Path(args.classes) if args.classes else None,
        overrides={k: v for k, v in overrides.items() if v is not None},
        name=args.name,
        dataset=args.dataset,
    )
    if args.json:
        print(json.dumps(_shown_manifest(info.to_dict()), indent=2, default=str))
    else:
        size, modality = info.input, info.modality.value
        colour = "grey" if size.channels == 1 else "RGB"
        shape = (f"{size.width}x{size.height} {colour}, preprocessing {size.preprocessing_preset}" if modality == "image"
                 else f"{size.sequence_length or 'any number of'} tokens")
        print(f"registered {info.name} v1: {modality} model, {shape}, output {info.output_kind}, "
              f"classes {', '.join(info.classes)}")
        print(f"Grad-CAM layer: {info.gradcam_layer or 'none'}; sha256 {info.lineage.sha256[:12]}…")
    for note in info.notes or ():
        print(f"note: {note}", file=sys.stderr)
    return 0


def _numbers(text: str | None) -> list[float] | None:
    """"123.7,116.3,103.5" -> [123.7, 116.3, 103.5]; a clear error for anything else."""
    if text is None:
        return None
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InputError(f"{text!r} is not a comma-separated list of numbers, like 123.7,116.3,103.5.") from None


def _shown_manifest(manifest: dict) -> dict:
    """The manifest as printed: a token-id model's vocabulary as its size, not thousands of lines."""
    vocabulary = manifest.get("input", {}).get("vocabulary")
    if vocabulary is not None:
        manifest = {**manifest, "input": {**manifest["input"], "vocabulary": f"{len(vocabulary)} tokens"}}
    return manifest


def cmd_models_scan(args: argparse.Namespace) -> int:
    from workbench import user_models

    results = user_models.scan_models_dir()
    rows = [{"file": r.path.name, "status": r.status, "model": r.model, "message": r.message} for r in results]
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows or [{"file": "(none)", "status": "", "message": "no model files in WORKBENCH_MODELS_DIR"}]:
            print(f"{row['file']}: {row['message']}")
    return 0


def _plan(args: argparse.Namespace):
    from workbench import imports

    path = Path(args.path)
    if path.is_dir():
        return imports.import_image_folder(path, Path(args.labels_csv) if args.labels_csv else None, args.name,
                                           for_model=args.for_model)
    if not path.is_file():
        raise InputError(f"'{path.name}' does not exist; check the path and retry.")
    suffix = path.suffix.lower()
    if suffix == ".zip":
        labels = _read_csv_bytes(Path(args.labels_csv)) if args.labels_csv else None
        return imports.import_image_zip(path, args.name, labels_csv=labels, for_model=args.for_model)
    if suffix in _TEXT_SUFFIXES:
        data = _read_csv_bytes(path)
        text_column, label_column = args.text_column, args.label_column
        if not (text_column and label_column):
            columns, _ = imports.preview_csv(data, path.name)
            guessed_text, guessed_label = imports.guess_columns(columns, "text")
            text_column, label_column = text_column or guessed_text, label_column or guessed_label
            if not (text_column and label_column):
                raise InputError(
                    f"could not tell which columns of '{path.name}' hold the text and the label "
                    f"(columns: {', '.join(columns)}); pass --text-column and --label-column and retry."
                )
        return imports.import_text_csv(data, text_column, label_column, args.name, for_model=args.for_model,
                                       source_name=path.name)
    raise InputError(
        f"'{path.name}' is neither a ZIP of images, a folder of images nor a CSV of texts; choose one of those and retry."
    )


def _read_csv_bytes(path: Path) -> bytes:
    from workbench.inputs import MAX_CSV_BYTES

    with open(path, "rb") as handle:
        data = handle.read(MAX_CSV_BYTES + 1)
    if len(data) > MAX_CSV_BYTES:
        raise InputError(
            f"'{path.name}' is larger than the {MAX_CSV_BYTES // 2**20} MB limit for tables; split it into smaller files and retry."
        )
    return data


def cmd_import_data(args: argparse.Namespace) -> int:
    from workbench import imports

    try:
        plan = _plan(args)
    except OSError as exc:
        raise InputError(f"'{Path(args.path).name}' could not be read ({exc.strerror or exc}); check the path and retry.") from None
    summary = plan.summary()
    report = None
    if not args.dry_run:
        if plan.problems and not args.skip_problems:
            first = plan.problems[0]
            raise WorkbenchError(
                f"{len(plan.problems)} problem row(s) (first: {first.where}: {first.detail}); "
                "run with --dry-run to list them, or --skip-problems to import without them."
            )
        report = imports.commit(plan, skip_problem_rows=args.skip_problems)
    if args.json:
        out = {"plan": summary, "problems": plan.problem_rows(), "imported": None}
        if report:
            out["imported"] = {"name": report.name, "splits": report.split_counts, "rows": report.imported,
                               "skipped": report.skipped, "folder": str(report.folder)}
        print(json.dumps(out, indent=2))
        return 0
    print(f"{plan.name}: {summary['rows_ok']} usable rows, {summary['problems']} problem rows; classes "
          + ", ".join(f"{k} ({v})" for k, v in summary["counts"].items()))
    for note in plan.notes:
        print(f"note: {note}")
    for problem in plan.problems:
        print(f"problem: {problem.where}: {problem.kind}: {problem.detail}")
    for reason in summary["blocking"]:
        print(f"cannot import: {reason}")
    if report:
        print(f"imported {report.imported} rows into {report.folder} (splits: "
              + ", ".join(f"{k} {v}" for k, v in report.split_counts.items()) + ")")
    elif args.dry_run:
        print("dry run: nothing was stored.")
    return 0


def register_models(models_sub) -> None:
    add = models_sub.add_parser("add", help="register your own .keras model")
    add.add_argument("path", help="a .keras file")
    add.add_argument("--classes", help="JSON file with the class names (default: <name>.classes.json or classes.json beside the model)")
    add.add_argument("--name", help="model name (default: from the file name)")
    add.add_argument("--preprocessing", default=None, metavar="PRESET",
                     help="how the model expects pixels: inside, 0-1, 0-255, tf (-1..1), caffe, torch or custom "
                          "(asked only when it cannot be inferred)")
    add.add_argument("--mean", default=None, help="custom preprocessing: per-channel means in 0-255 units, e.g. 123.7,116.3,103.5")
    add.add_argument("--std", default=None, help="custom preprocessing: per-channel std in 0-255 units, e.g. 58.4,57.1,57.4")
    add.add_argument("--rescales-inputs", choices=["yes", "no"], default=None,
                     help="older form of --preprocessing: yes = inside (0-255 pixels), no = 0-1")
    add.add_argument("--vocabulary", default=None,
                     help="token-id text models: the vocabulary (a JSON list or one token per line; index = id)")
    add.add_argument("--oov-id", type=int, default=None,
                     help="token-id models: the id for unknown words (default: the vocabulary's [UNK]-like token)")
    add.add_argument("--sequence-length", type=int, default=None,
                     help="token-id models: pad or cut texts to this many ids (default: the model's input length)")
    add.add_argument("--padding", choices=["post", "pre"], default=None,
                     help="token-id models: pad after the text (post, TextVectorization) or before it (pre, pad_sequences)")
    add.add_argument("--height", type=int, default=None, help="input height, for models without a fixed size")
    add.add_argument("--width", type=int, default=None, help="input width, for models without a fixed size")
    add.add_argument("--gradcam-layer", default=None, help="layer path for Grad-CAM, e.g. base/Conv_1")
    add.add_argument("--dataset", default=None, help="an imported dataset with the same classes")
    add.add_argument("--json", action="store_true")
    add.set_defaults(func=cmd_models_add)

    scan = models_sub.add_parser("scan", help="register the models in WORKBENCH_MODELS_DIR")
    scan.add_argument("--json", action="store_true")
    scan.set_defaults(func=cmd_models_scan)


def register(sub) -> None:
    data = sub.add_parser("import-data", help="import your own images (zip/folder) or texts (CSV) as a dataset")
    data.add_argument("path", help="a .zip of class folders, a folder, or a .csv of texts")
    data.add_argument("--name", required=True, help="dataset name")
    data.add_argument("--text-column", default=None)
    data.add_argument("--label-column", default=None)
    data.add_argument("--labels-csv", default=None, help="CSV of file names and labels for a flat folder of images")
    data.add_argument("--for-model", default=None, help="check labels against this model's classes and use its input size")
    data.add_argument("--dry-run", action="store_true", help="list the problems; store nothing")
    data.add_argument("--skip-problems", action="store_true", help="import without the problem rows")
    data.add_argument("--json", action="store_true")
    data.set_defaults(func=cmd_import_data)
