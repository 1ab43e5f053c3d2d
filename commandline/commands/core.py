"""Core commands: models list, train, predict, explain."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from commandline.method_options import (
    PARAMETERS_EPILOG,
    ParametersHelpFormatter,
    add_param_argument,
    method_params,
)
from foundation.errors import WorkbenchError


def _print_json(data) -> None:
    print(json.dumps(data, indent=None if isinstance(data, list) else 2, default=str))


def cmd_models_list(args: argparse.Namespace) -> int:
    from workbench import api

    rows = api.model_summaries()
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            acc = row["metrics"]["test_accuracy"]
            print(f"{row['name']:<18} {row['version']:<5} {row['modality']:<6} test acc {acc}  classes: {', '.join(row['classes'])}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from models import training
    from workbench import samples

    names = list(samples.TRAIN_ORDER) if args.all else args.names
    if not names:
        raise WorkbenchError("name at least one sample model to train, or pass --all.")
    for name in names:
        if name not in samples.SAMPLE_MODELS:
            raise WorkbenchError(f"unknown sample model {name!r}; choose from {', '.join(samples.SAMPLE_MODELS)}.")
    config = samples.quick_config() if args.quick else training.TrainConfig()
    if args.epochs:
        from dataclasses import replace

        config = replace(config, epochs=args.epochs)
    out = Path(args.out)
    log = (lambda m: print(m, file=sys.stderr)) if not args.json else (lambda m: None)
    written = []  # the manifests as written to disk: --json prints their JSON
    for name in names:
        written.append(samples.train_sample(name, out, config, log=log, noisy=args.noisy))
        if not args.json:
            print(f"{written[-1].name}: test accuracy {written[-1].metrics.test.accuracy:.4f} -> {out / written[-1].name}")
    if args.json:
        as_json = [manifest.to_dict() for manifest in written]
        _print_json(as_json if len(as_json) > 1 else as_json[0])
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from workbench import api

    model = api.load_model(args.model)
    inputs = api.read_inputs(model, args.inputs)
    probabilities = api.predict(model, inputs)
    for raw, probs in zip(args.inputs, probabilities):
        label = model.classes[int(probs.argmax())]
        row = {"input": raw, "label": label,
               "probabilities": {c: round(float(p), 6) for c, p in zip(model.classes, probs)}}
        print(json.dumps(row) if args.json else f"{raw}: {label} ({probs.max():.3f})")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from workbench import api, exporting

    model = api.load_model(args.model)
    params = method_params(args.method, args.param, model.modality)
    params = _stopping(args, params)
    inputs = api.read_inputs(model, args.inputs)
    targets = None
    if args.target is not None:
        if args.target not in model.classes:
            raise WorkbenchError(f"class {args.target!r} is not one of {', '.join(model.classes)}.")
        targets = [model.classes.index(args.target)] * len(inputs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    explanations = api.explain(model, args.method, inputs, targets, seed=args.seed, **params)
    for index, (raw, item, explanation) in enumerate(zip(args.inputs, inputs, explanations)):
        path = exporting.write_explanation_file(out, index, raw, item, explanation, model)
        row = {"input": raw, "method": explanation.method, "target": explanation.target_label,
               "seconds": round(explanation.seconds, 4), "overlay": str(path)}
        row.update(_rounds_summary(explanation.extras))
        print(json.dumps(row) if args.json else f"{raw}: {explanation.target_label} -> {path}" + _rounds_text(row))
    return 0


ROUNDS_FIELDS = ("evaluations_used", "budget", "rounds", "stopped")


def _stopping(args: argparse.Namespace, params: dict) -> dict:
    """SHAP and LIME run in rounds until the map is stable (their default); --full-budget
    spends the whole budget."""
    from explainers import registry

    takes_stopping = "stopping" in registry.params_class(args.method).specs()
    if args.full_budget:
        if not takes_stopping:
            raise WorkbenchError(f"--full-budget applies to methods that run in rounds (shap, lime), not {args.method}.")
        return dict(params, stopping="budget")
    return params


def _rounds_summary(extras) -> dict:
    if "evaluations_used" not in extras:
        return {}
    return {name: extras[name] for name in ROUNDS_FIELDS if name in extras}


def _rounds_text(row: dict) -> str:
    if "evaluations_used" not in row:
        return ""
    return f" ({row['evaluations_used']:,} of {row['budget']:,} evaluations, {row['stopped']})"



def register_models(models_sub) -> None:
    listing = models_sub.add_parser("list", help="list models")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_models_list)


def register(sub) -> None:
    train = sub.add_parser("train", help="train sample models from the shipped data")
    train.add_argument("names", nargs="*", help="digits, shapes, shapes-shortcut, headlines")
    train.add_argument("--all", action="store_true", help="train every sample model in order")
    train.add_argument("--out", default="models/zoo", help="output folder (default models/zoo)")
    train.add_argument("--epochs", type=int, default=None)
    train.add_argument("--quick", action="store_true", help="tiny configuration for smoke tests")
    train.add_argument("--noisy", action="store_true",
                       help="train on train_noisy (~5%% flipped labels) and write <name>-noisy, the model the "
                            "review queue of the sample data uses")
    train.add_argument("--json", action="store_true")
    train.set_defaults(func=cmd_train)

    predict = sub.add_parser("predict", help="predict image files or texts")
    predict.add_argument("--model", required=True)
    predict.add_argument("inputs", nargs="+", help="image paths (image models) or texts (text models)")
    predict.add_argument("--json", action="store_true")
    predict.set_defaults(func=cmd_predict)

    explain = sub.add_parser("explain", help="explain predictions and write overlays",
                             formatter_class=ParametersHelpFormatter, epilog=PARAMETERS_EPILOG)
    explain.add_argument("--model", required=True)
    explain.add_argument("--method", default="gradcam")
    add_param_argument(explain)
    explain.add_argument("--target", default=None, help="class to explain (default: the predicted class)")
    explain.add_argument("--seed", type=int, default=0)
    explain.add_argument("--out", default="explanations")
    explain.add_argument("inputs", nargs="+")
    explain.add_argument("--json", action="store_true")
    explain.add_argument("--full-budget", action="store_true",
                         help="shap, lime: spend the whole evaluation budget instead of stopping once the map "
                              "is stable (reproducible reports)")
    explain.set_defaults(func=cmd_explain)
