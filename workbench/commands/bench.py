"""`workbench bench`: our explainers against the plain library calls, on the sample models."""
from __future__ import annotations

import argparse
import json
import sys

from workbench.errors import WorkbenchError


def cmd_bench(args: argparse.Namespace) -> int:
    from benchmarks import explainers_bench
    from models import store

    if args.repeats < 1:
        raise WorkbenchError("--repeats must be at least 1.")
    for name, modality in ((args.image_model, "image"), (args.text_model, "text")):
        if name not in store.model_names():
            raise WorkbenchError(f"there is no model named {name!r}; run `make zoo` to train the sample models.")
        if store.read_manifest(name).get("modality") != modality:
            article = "an" if modality == "image" else "a"
            raise WorkbenchError(f"{name!r} is not {article} {modality} model; pass one with --{modality}-model.")
    log = (lambda message: print(f"bench: {message}", file=sys.stderr, flush=True))
    try:
        report = explainers_bench.run(
            repeats=args.repeats, quick=args.quick, image_model=args.image_model,
            text_model=args.text_model, seed=args.seed, log=log,
            command=_command(args),
        )
    except ValueError as exc:  # e.g. a model the reference recipe cannot run on
        raise WorkbenchError(str(exc)) from None
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(explainers_bench.table(report))
    return 0


def _command(args: argparse.Namespace) -> str:
    parts = ["workbench", "bench"]
    if args.json:
        parts.append("--json")
    if args.quick:
        parts.append("--quick")
    if args.repeats != 3:
        parts += ["--repeats", str(args.repeats)]
    if args.image_model != "shapes":
        parts += ["--image-model", args.image_model]
    if args.text_model != "headlines":
        parts += ["--text-model", args.text_model]
    return " ".join(parts)


def register(sub) -> None:
    bench = sub.add_parser("bench", help="time our explainers against the reference library calls")
    bench.add_argument("--json", action="store_true", help="print one JSON object with a `results` array")
    bench.add_argument("--repeats", type=int, default=3, help="timed runs per side; medians are reported (default 3)")
    bench.add_argument("--quick", action="store_true", help="tiny budgets, to check that everything runs")
    bench.add_argument("--image-model", default="shapes", help="image model to time on (default shapes)")
    bench.add_argument("--text-model", default="headlines", help="text model to time on (default headlines)")
    bench.add_argument("--seed", type=int, default=0)
    bench.set_defaults(func=cmd_bench)
