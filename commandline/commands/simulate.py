"""`workbench simulate-review`: parse the arguments, run the core's experiment, print the result.

The experiment itself (noisy model, review queue, scripted reviewer, retrain, both arms on the
same seeds, paired statistics) lives in `workbench.simulate`, so any caller runs the same thing.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from typing import Any

from workbench.simulate import sample_recipe, simulate_review


def _mean_and_spread(summary: dict[str, Any]) -> str:
    std = "n/a" if summary["std"] is None else f"{summary['std']:.4f}"
    return f"{summary['mean']:.4f} ± {std} ({summary['min']:.4f}..{summary['max']:.4f})"


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The human-readable result: the review outcome, then each arm and the paired difference."""
    acc = report["clean_test_accuracy"]
    lines = [f"{report['model']}: corrected {report['corrected']} of {report['reviewed']} reviewed labels; clean "
             f"test accuracy {acc['noisy']:.4f} (noisy) -> {acc['corrected']:.4f} "
             f"(corrected, {report['candidate']}, seed {report['seeds'][0]})"]
    for arm, summaries in report["arms"].items():
        for metric, summary in summaries.items():
            lines.append(f"  {arm} {metric} over seeds {report['seeds']}: {_mean_and_spread(summary)}")
    difference = report["paired_difference"]
    if difference:
        for metric in ("accuracy", "log_loss"):
            lines.append(f"  paired difference (corrected - control) {metric}: "
                         f"{_mean_and_spread(difference[metric])}")
    return lines


def cmd_simulate(args: argparse.Namespace) -> int:
    # Imported here, as the other commands do, because it loads Keras: `workbench --help` stays fast.
    from workbench import samples

    config = samples.quick_config() if args.quick else sample_recipe(args.model)
    if args.limit is not None:
        config = replace(config, limit=args.limit)
    log = (lambda message: print(message, file=sys.stderr, flush=True))
    report = simulate_review(args.model, args.budget, config=config, control=not args.no_control,
                             repeats=args.repeats, log=log)
    print(json.dumps(report, indent=2) if args.json else "\n".join(summary_lines(report)))
    return 0


def register(sub) -> None:
    parser = sub.add_parser("simulate-review", help="measure the effect of correcting the review queue's top")
    parser.add_argument("--model", required=True, help="a sample model: digits, shapes, headlines")
    parser.add_argument("--budget", type=int, required=True, help="how many queue entries the reviewer checks")
    parser.add_argument("--quick", action="store_true", help="tiny configuration for smoke tests")
    parser.add_argument("--limit", type=int, default=None, help="use the first N training examples only")
    parser.add_argument("--no-control", action="store_true", help="skip the uncorrected fine-tuning control")
    parser.add_argument("--repeats", type=int, default=1,
                        help="fine-tuning seeds, the same for both arms (the first seed's model is published)")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=cmd_simulate)
