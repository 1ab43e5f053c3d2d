"""`workbench simulate-reason`: parse the arguments, run the core's experiment, print the result.

The experiment (attribution queue, scripted "not a reason" marks, reason-corrected retraining,
a control without marks) lives in `workbench.simulate_reason`, so any caller runs the same thing.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from foundation.errors import WorkbenchError


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The human-readable result: each figure before -> after, for the marked arm and the control."""
    lines = [f"{report['model']} {report['version']} -> {report['candidate']} (candidate): "
             f"{report['marked']} examples marked 'not a reason', penalty {report['settings']['penalty']}, "
             f"{report['settings']['epochs']} epochs, seed {report['settings']['seed']}"]
    for arm, figures in (("marked", report), ("control", report.get("control"))):
        if not figures:
            continue
        for key in ("test_accuracy", "test_nocue_accuracy", "cue_attribution"):
            lines.append(f"  {arm:7} {key}: {figures[key]['before']:.4f} -> {figures[key]['after']:.4f}")
    return lines


def cmd_simulate_reason(args: argparse.Namespace) -> int:
    # Imported here, as the other commands do, because it loads Keras: `workbench --help` stays fast.
    from models.reason_training import ReasonConfig
    from workbench.simulate_reason import simulate_reason

    if (args.penalty < 0 or args.epochs < 1 or args.learning_rate <= 0 or args.mark_repeats < 1
            or args.counterfactual_repeats < 1 or args.consistency < 0 or args.transplants < 0):
        raise WorkbenchError("the penalty, consistency and transplants must be >= 0, epochs and mark repeats >= 1, "
                             "the learning rate > 0.")
    reason = ReasonConfig(penalty=args.penalty, epochs=args.epochs, learning_rate=args.learning_rate,
                          seed=args.seed, counterfactual=not args.no_counterfactual,
                          mark_repeats=args.mark_repeats, clipnorm=args.clipnorm or None,
                          counterfactual_repeats=args.counterfactual_repeats, consistency=args.consistency,
                          transplants=args.transplants)
    log = (lambda message: print(message, file=sys.stderr, flush=True))
    report = simulate_reason(args.model, args.budget, reason=reason, quick=args.quick, control=not args.no_control,
                             queue=args.queue, log=log)
    print(json.dumps(report, indent=2) if args.json else "\n".join(summary_lines(report)))
    return 0


def register(sub) -> None:
    from models.reason_training import ReasonConfig

    default = ReasonConfig()
    parser = sub.add_parser("simulate-reason",
                            help="measure the effect of marking a planted cue 'not a reason' and retraining")
    parser.add_argument("--model", required=True, help="a model trained on a dataset with cue masks: shapes-shortcut")
    parser.add_argument("--budget", type=int, required=True, help="how many queue entries the reviewer marks")
    parser.add_argument("--penalty", type=float, default=default.penalty, help="λ, the input-gradient penalty weight")
    parser.add_argument("--epochs", type=int, default=default.epochs)
    parser.add_argument("--learning-rate", type=float, default=default.learning_rate)
    parser.add_argument("--seed", type=int, default=default.seed)
    parser.add_argument("--mark-repeats", type=int, default=default.mark_repeats,
                        help="times each marked example (and its counterfactual copy) is seen per epoch")
    parser.add_argument("--counterfactual-repeats", type=int, default=default.counterfactual_repeats,
                        help="times each counterfactual copy is seen per epoch")
    parser.add_argument("--clipnorm", type=float, default=default.clipnorm,
                        help="clip each update's gradient norm (0: no clipping)")
    parser.add_argument("--consistency", type=float, default=default.consistency,
                        help="γ, the weight of the prediction-consistency term on marked examples (0: off)")
    parser.add_argument("--transplants", type=int, default=default.transplants,
                        help="copies per marked example of its marked content pasted into another label's example")
    parser.add_argument("--no-counterfactual", action="store_true",
                        help="no copies of the marked examples with the mark painted out")
    parser.add_argument("--queue", choices=("attribution", "first"), default="attribution",
                        help="mark the examples with most Grad-CAM mass on the cue (default) or the first cued ones")
    parser.add_argument("--no-control", action="store_true", help="skip the control retrained without marks")
    parser.add_argument("--quick", action="store_true", help="tiny configuration for smoke tests")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=cmd_simulate_reason)
