"""`workbench faithfulness`: deletion and insertion of several methods under every baseline.

    workbench faithfulness --model shapes --methods gradcam,shap,lime --n 50 --json

Explains N seeded-random examples of the model's dataset once per method (the predicted
class, the same for every method), then scores each explanation under each baseline
(images: blur, mean colour, uniform noise, black; text: token removal, a mask token), each
against the random-order reference of that baseline. Prints one row per method and
baseline, and each baseline's ranking of the methods.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any

from foundation.errors import WorkbenchError


def _names(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [name.strip() for name in value.split(",") if name.strip()]


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 4)
    return value


def run(args: argparse.Namespace) -> dict[str, Any]:
    from explainers import metrics, registry
    from workbench import api, faithfulness

    model = api.load_model(args.model, args.version)
    available = list(registry.available(model))
    methods = _names(args.methods) or available
    unknown = [m for m in methods if m not in available]
    if unknown:
        raise WorkbenchError(f"method {unknown[0]!r} does not apply to model {model.name}; choose from {', '.join(available)}.")
    baselines = _names(args.baselines)
    try:
        for name in baselines or ():
            metrics.check_baseline(model.modality, name)
    except ValueError as exc:
        raise WorkbenchError(str(exc)) from None
    if args.steps < 1:
        raise WorkbenchError("--steps must be at least 1.")
    if args.random_repeats < 1:
        raise WorkbenchError("--random-repeats must be at least 1.")
    started = time.perf_counter()
    inputs, indices, dataset = faithfulness.sample_inputs(model, n=args.n, split=args.split, seed=args.seed,
                                                          dataset=args.dataset)

    def report(done: int, total: int, message: str) -> None:
        if not args.json:
            print(f"[{done}/{total}] {message}", file=sys.stderr, flush=True)

    rows = faithfulness.faithfulness_table(model, inputs, methods, baselines=baselines, steps=args.steps,
                                           seed=args.seed, random_repeats=args.random_repeats, progress=report)
    return {
        "model": model.name,
        "version": model.version,
        "dataset": dataset,
        "split": args.split,
        "n": len(inputs),
        "seed": args.seed,
        "steps": args.steps,
        "random_repeats": args.random_repeats,
        "target": "predicted class",
        "methods": methods,
        "baselines": list(dict.fromkeys(row["baseline"] for row in rows)),
        "rows": [{key: _round(value) for key, value in row.items() if args.per_input or not key.endswith("_areas")}
                 for row in rows],
        "rankings": faithfulness.rankings(rows),
        # Positive = better than the first method, paired over the same inputs (mean and standard error).
        "differences": {
            baseline: {method: {key: _round(value) for key, value in figures.items()} for method, figures in by_method.items()}
            for baseline, by_method in faithfulness.differences(rows, methods[0]).items()
        },
        "seconds": round(time.perf_counter() - started, 1),
    }


def _print_text(result: dict[str, Any]) -> None:
    print(f"{result['model']} {result['version']} · {result['dataset']}/{result['split']} · n={result['n']} · "
          f"seed {result['seed']} · {result['steps']} steps · {result['random_repeats']} random orders · "
          f"{result['seconds']} s")
    print(f"{'baseline':<10}{'method':<14}{'deletion':>9}{'random':>8}{'gain':>8}{'±se':>7}"
          f"{'insertion':>11}{'random':>8}{'gain':>8}{'±se':>7}")
    for row in result["rows"]:
        print(f"{row['baseline']:<10}{row['method']:<14}{row['deletion_auc']:>9.3f}{row['random_deletion_auc']:>8.3f}"
              f"{row['deletion_gain']:>8.3f}{row['deletion_gain_se']:>7.3f}{row['insertion_auc']:>11.3f}"
              f"{row['random_insertion_auc']:>8.3f}{row['insertion_gain']:>8.3f}{row['insertion_gain_se']:>7.3f}")
    for baseline, ranking in result["rankings"].items():
        print(f"{baseline}: deletion {' > '.join(ranking['deletion'])}; insertion {' > '.join(ranking['insertion'])}")
    first = result["methods"][0]
    for baseline, by_method in result["differences"].items():
        for method, d in by_method.items():
            print(f"{baseline}: {method} vs {first} (positive = {method} better): deletion {d['deletion']:+.3f} "
                  f"± {d['deletion_se']:.3f}, insertion {d['insertion']:+.3f} ± {d['insertion_se']:.3f}")


def cmd_faithfulness(args: argparse.Namespace) -> int:
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_text(result)
    return 0


def register(sub) -> None:
    parser = sub.add_parser("faithfulness", help="deletion/insertion of several methods under every baseline, "
                                                 "each against the random order of that baseline")
    parser.add_argument("--model", required=True)
    parser.add_argument("--version", default=None, help="model version (default: the current one)")
    parser.add_argument("--methods", default=None, help="comma-separated methods (default: every one that applies)")
    parser.add_argument("--baselines", default=None,
                        help="comma-separated baselines (default: all; images: blur,mean,noise,black; text: remove,mask)")
    parser.add_argument("--n", type=int, default=50, help="number of examples (default 50)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--dataset", default=None, help="dataset to draw from (default: the model's own)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=20, help="points on the deletion/insertion curves")
    parser.add_argument("--random-repeats", type=int, default=3, dest="random_repeats",
                        help="random orders per input for the reference (default 3)")
    parser.add_argument("--per-input", action="store_true", dest="per_input",
                        help="include each input's deletion and insertion areas in the JSON")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=cmd_faithfulness)
