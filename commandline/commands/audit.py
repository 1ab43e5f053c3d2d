"""`workbench audit`: rank a dataset's examples by how likely their label is wrong."""
from __future__ import annotations

import argparse
import json
import sys

from commandline.ray_options import add_ray_arguments
from foundation.errors import WorkbenchError


def cmd_audit(args: argparse.Namespace) -> int:
    from labels import queue
    from models import store
    from workbench import api, datasets, samples

    if args.k_folds < 2:
        raise WorkbenchError("--k-folds must be at least 2.")
    if args.top < 0:
        raise WorkbenchError("--top must be 0 or more.")
    model = api.load_model(args.model)
    dataset_name = args.dataset or model.info.dataset
    if not dataset_name:
        raise WorkbenchError(f"model {args.model!r} names no dataset; pass --dataset.")
    # train_noisy where the dataset ships one (the samples); an imported dataset has only train.
    split = args.split or ("train_noisy" if "train_noisy" in datasets.splits(dataset_name) else "train")
    dataset = datasets.load(dataset_name, split)
    log = (lambda message, fraction: None) if args.json else _stderr_progress
    ranking_model = args.model if args.as_given else samples.review_model_name(args.model, split, store.model_names())
    if ranking_model != args.model:
        # The sample model learned these examples' clean labels; its noisy twin learned the labels under review.
        print(f"note: ranking with {ranking_model}, the {args.model} recipe trained on {split} (the labels under "
              f"review); pass --as-given to rank with {args.model} itself.", file=sys.stderr)
        model = api.load_model(ranking_model)
    if args.engine == "ray":
        result = _audit_on_ray(args, model, dataset, log)
    else:
        result = queue.audit(model, dataset, k_folds=args.k_folds, seed=args.seed,
                             apply_corrections=not args.ignore_ledger, use_cache=not args.no_cache,
                             progress=log)
    summary = result.summary(top=args.top, order=args.order, exclude_reviewed=args.exclude_reviewed)
    summary["model_trained_on"] = store.manifest(result.model_name, result.model_version).lineage.train_split or "train"
    summary["engine"] = args.engine
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_text(summary)
    return 0


def _audit_on_ray(args: argparse.Namespace, model, dataset, log):
    """The forward passes on Ray actors (`workbench/ray_features.py`); folds and ranking as the local engine."""
    from commandline.ray_options import ray_session
    from labels import queue
    from workbench import ray_features

    with ray_session(args):
        return queue.audit(model, dataset, k_folds=args.k_folds, seed=args.seed,
                           apply_corrections=not args.ignore_ledger, use_cache=not args.no_cache, progress=log,
                           extractor=ray_features.extractor(workers=args.workers))


def _stderr_progress(message: str, fraction: float) -> None:
    print(f"[{fraction:4.0%}] {message}", file=sys.stderr)


def _print_text(summary: dict) -> None:
    print(f"{summary['model']} {summary['version']} on {summary['dataset']}/{summary['split']}: "
          f"{summary['n']} examples, {summary['k_folds']}-fold out-of-sample head on "
          f"'{summary['feature_layer']}' features, {summary['seconds']:.2f} s"
          + (" (cached)" if summary["from_cache"] else ""))
    rank_key = "issue_rank" if summary["order"] == "issue" else "uncertainty_rank"
    print(f"{'rank':>5}  {'example':<18} {'given':<12} {'predicted':<12} {'p(given)':>8} "
          f"{'quality':>8} {'uncert.':>8}  flags")
    for row in summary["ranking"]:
        flags = []
        if row.get("is_label_issue"):
            flags.append("issue")
        if row.get("is_flipped"):
            flags.append("flipped")
        if row.get("reviewed"):
            flags.append("reviewed")
        print(f"{row[rank_key]:>5}  {row['example_id']:<18} {row['given_label']:<12} "
              f"{row['predicted_label']:<12} {row['prob_given']:>8.4f} {row['label_quality']:>8.4f} "
              f"{row['uncertainty']:>8.4f}  {','.join(flags)}")
    if summary["recall_at_2x"] is None:
        print("recall: the dataset ships no list of flipped labels.")
    else:
        print(f"recall of the {summary['n_flipped']} flipped labels within the top "
              f"{2 * summary['n_flipped']}: {summary['recall_at_2x']:.3f}")


def register(sub) -> None:
    parser = sub.add_parser("audit", help="rank likely label errors (review queue) with out-of-sample probabilities")
    parser.add_argument("--model", required=True)
    parser.add_argument("--dataset", default=None, help="dataset name (default: the one the model was trained on)")
    parser.add_argument("--as-given", action="store_true", dest="as_given",
                        help="rank with the named sample model itself, not its twin trained on train_noisy")
    parser.add_argument("--split", default=None,
                        help="split to audit (default train_noisy, or train for a dataset without one)")
    parser.add_argument("--k-folds", type=int, default=5, help="cross-validation folds for the fresh head (default 5)")
    parser.add_argument("--top", type=int, default=50, help="rows of the ranking to print (default 50)")
    parser.add_argument("--order", choices=["issue", "uncertainty"], default="issue",
                        help="issue: likely label errors first; uncertainty: least certain first (active learning)")
    parser.add_argument("--exclude-reviewed", action="store_true",
                        help="leave out examples with a decision in the label ledger")
    parser.add_argument("--ignore-ledger", action="store_true",
                        help="audit the shipped labels, without the ledger's corrections")
    parser.add_argument("--no-cache", action="store_true", help="recompute features and probabilities")
    parser.add_argument("--seed", type=int, default=0, help="fold assignment seed")
    parser.add_argument("--json", action="store_true")
    add_ray_arguments(parser, "one process", "the forward passes on Ray actors, same ranking")
    parser.set_defaults(func=cmd_audit)
