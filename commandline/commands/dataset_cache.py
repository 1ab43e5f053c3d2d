"""`workbench dataset-cache`: compute the Dataset page's entry for a model version and split ahead of time.

The page computes a missing entry itself (in the background for a large split); this command
does the same work as a batch job, optionally on Ray, so a 100,000-example split is ready
before anyone opens the page. The entry is the same whichever engine computed it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from commandline.ray_options import add_ray_arguments, ray_session
from foundation.errors import WorkbenchError


def cmd_dataset_cache(args: argparse.Namespace) -> int:
    from workbench import api, dataset_view

    model = api.load_model(args.model, args.version)
    dataset_name = args.dataset or model.info.dataset
    if not dataset_name:
        raise WorkbenchError(f"model {args.model!r} names no dataset; pass --dataset.")
    dataset = dataset_view.open_split(dataset_name, args.split)
    dataset_view.check_compatible(model, dataset)
    if args.recompute:
        dataset_view.drop_cached(model, dataset)
    log = _quiet if args.json else _ProgressPrinter()
    started = time.perf_counter()
    if args.engine == "ray" and dataset_view.cached_outputs(model, dataset) is None:
        with ray_session(args):
            outputs = dataset_view.dataset_outputs(model, dataset, progress=log, engine="ray",
                                                         ray_workers=args.workers)
    else:
        outputs = dataset_view.dataset_outputs(model, dataset, progress=log)
    accuracy = float((outputs.predicted == dataset.y).mean())
    summary = {
        "model": model.name, "version": model.version, "dataset": dataset.name, "split": dataset.split,
        "n": len(dataset), "engine": args.engine, "from_cache": outputs.from_cache,
        "seconds": round(time.perf_counter() - started, 2), "compute_seconds": round(outputs.seconds, 2),
        "accuracy": round(accuracy, 4), "chance": round(1 / len(dataset.classes), 4),
        "feature_layer": outputs.feature_layer, "cache": str(outputs.store.path if outputs.store else ""),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        state = "already cached" if outputs.from_cache else f"computed in {summary['compute_seconds']:.1f} s"
        print(f"{model.name} {model.version} on {dataset.name}/{dataset.split}: {summary['n']:,} examples, "
              f"{state} ({args.engine}); accuracy {accuracy:.2%} (chance {summary['chance']:.0%}). "
              f"The Dataset page now opens it from the cache.")
    return 0


def _quiet(message: str, fraction: float) -> None:
    return None


class _ProgressPrinter:
    """At most one progress line a second on stderr: a 100k-example job reports thousands of steps."""

    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self, message: str, fraction: float) -> None:
        now = time.monotonic()
        if fraction >= 1.0 or now - self.last >= 1.0:
            self.last = now
            print(f"[{fraction:4.0%}] {message}", file=sys.stderr, flush=True)


def register(sub) -> None:
    parser = sub.add_parser(
        "dataset-cache", help="compute the Dataset page's predictions and map for a split ahead of time",
        description="Compute (or check) the Dataset page's stored predictions, features map and slice "
                    "properties for one model version and split. Large splits can run on Ray.")
    parser.add_argument("--model", required=True, help="model name (see `workbench models list`)")
    parser.add_argument("--version", default=None, help="model version (default: the current one)")
    parser.add_argument("--dataset", default=None,
                        help="dataset name (default: the model's own); shapes-100k etc. for generated scale sets")
    parser.add_argument("--split", default="test", help="split (default: test)")
    parser.add_argument("--recompute", action="store_true", help="drop a stored entry and compute it again")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")
    add_ray_arguments(parser, "in this process", "on Ray actors, one model per actor, for large splits")
    parser.set_defaults(func=cmd_dataset_cache)
