"""`workbench retrain` (fine-tune a candidate from the label corrections) and `workbench jobs`."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from foundation.errors import WorkbenchError


def _progress_line(status: dict[str, Any]) -> str:
    if status.get("state") == "running" and status.get("total_epochs"):
        parts = [f"epoch {status.get('epoch')}/{status['total_epochs']}"]
        if status.get("loss") is not None:
            parts.append(f"loss {status['loss']:.4f}")
        if status.get("val_accuracy") is not None:
            parts.append(f"val accuracy {status['val_accuracy']:.4f}")
        if status.get("eta_seconds") is not None:
            parts.append(f"at most {status['eta_seconds']:.0f} s left")
        return "  ".join(parts)
    return f"{status.get('state')}: {status.get('stage') or ''}".rstrip(": ")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    chosen = {"head_epochs": args.head_epochs, "finetune_epochs": args.finetune_epochs, "limit": args.limit}
    return {key: value for key, value in chosen.items() if value is not None}


def _finish(status: dict[str, Any]) -> dict[str, Any]:
    if status["state"] == "done":
        return status["result"]
    if status["state"] == "cancelled":
        raise WorkbenchError(f"retrain job {status['job_id']} was cancelled; no version was written.")
    raise WorkbenchError(f"retrain job {status['job_id']} failed: {status.get('error')} (log: {status.get('log')})")


def cmd_retrain(args: argparse.Namespace) -> int:
    from workbench import jobs

    job_id = jobs.start_retrain(
        args.model, dataset=args.dataset, split=args.split, quick=args.quick,
        config_overrides=_overrides(args), created_by=args.annotator or "cli",
    )
    if args.background:
        status = jobs.read_status(job_id)
        summary = {"job_id": job_id, "state": status["state"], "status_file": str(jobs.job_dir(job_id) / "status.json"),
                   "log": status["log"], "tensorboard": status["tensorboard"]}
        print(json.dumps(summary) if args.json else f"started retrain job {job_id}; follow it with "
              f"`workbench jobs status {job_id}`")
        return 0
    last = [""]
    printed_epochs: set[int] = set()

    def show(status: dict[str, Any]) -> None:
        # Every finished epoch from the job's history, so a poll that misses a fast epoch loses nothing.
        total = status.get("total_epochs")
        for row in status.get("history") or []:
            if total and row.get("epoch") not in printed_epochs:
                printed_epochs.add(row.get("epoch"))
                print(_progress_line({"state": "running", "total_epochs": total, "epoch": row.get("epoch"),
                                      "loss": row.get("loss"), "val_accuracy": row.get("val_accuracy")}),
                      file=sys.stderr, flush=True)
        if status.get("state") != "running" or not total:
            line = _progress_line(status)
            if line != last[0]:
                print(line, file=sys.stderr, flush=True)
                last[0] = line

    try:
        status = jobs.wait(job_id, on_update=show)
        show(status)
    except KeyboardInterrupt:
        jobs.cancel(job_id)
        jobs.wait(job_id, timeout=60)
        raise
    result = _finish(status)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['model']} {result['candidate']} (candidate, from {result['parent']}, "
              f"{result['labels_changed']} labels changed): test accuracy "
              f"{result['before']['accuracy']:.4f} -> {result['after']['accuracy']:.4f}. "
              f"Promote it with `workbench models promote {result['model']} {result['candidate']}`.")
    return 0


def cmd_jobs_list(args: argparse.Namespace) -> int:
    from workbench import jobs

    keys = ("job_id", "kind", "model", "state", "epoch", "total_epochs", "val_accuracy", "created_at", "created_by",
            "actor", "error")
    rows = [{key: s.get(key) for key in keys} for s in jobs.list_jobs(args.model)]
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            print(f"{row['job_id']}  {row['model']:<16} {row['state']:<9} epoch {row['epoch']}/{row['total_epochs']}")
    return 0


def cmd_jobs_status(args: argparse.Namespace) -> int:
    from workbench import jobs

    status = jobs.read_status(args.job_id)
    print(json.dumps(status, indent=2) if args.json else _progress_line(status))
    return 0


def cmd_jobs_cancel(args: argparse.Namespace) -> int:
    from workbench import jobs

    jobs.cancel(args.job_id)
    status = jobs.wait(args.job_id, timeout=args.timeout)
    print(json.dumps({"job_id": args.job_id, "state": status["state"]}) if args.json
          else f"job {args.job_id}: {status['state']}")
    return 0


def register(sub) -> None:
    retrain = sub.add_parser("retrain", help="fine-tune a candidate version from the label corrections")
    retrain.add_argument("--model", required=True)
    retrain.add_argument("--dataset", default=None, help="default: the dataset the model was trained on")
    retrain.add_argument("--split", default=None, help="split the corrections apply to (default: the model's)")
    mode = retrain.add_mutually_exclusive_group()
    mode.add_argument("--wait", dest="background", action="store_false", help="wait and print progress (default)")
    mode.add_argument("--background", dest="background", action="store_true", help="start the job and return")
    retrain.add_argument("--quick", action="store_true", help="tiny configuration for smoke tests")
    retrain.add_argument("--head-epochs", type=int, default=None)
    retrain.add_argument("--finetune-epochs", type=int, default=None)
    retrain.add_argument("--limit", type=int, default=None, help="train on the first N examples only")
    retrain.add_argument("--annotator", default=None, help="recorded as created_by (default: cli)")
    retrain.add_argument("--json", action="store_true")
    retrain.set_defaults(func=cmd_retrain, background=False)

    jobs_parser = sub.add_parser("jobs", help="list, follow and cancel background jobs")
    jobs_sub = jobs_parser.add_subparsers(dest="jobs_command")  # same parser class: one-line errors
    listing = jobs_sub.add_parser("list", help="jobs, newest first")
    listing.add_argument("--model", default=None)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_jobs_list)
    status = jobs_sub.add_parser("status", help="one job's status")
    status.add_argument("job_id")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_jobs_status)
    cancel = jobs_sub.add_parser("cancel", help="cancel a running job")
    cancel.add_argument("job_id")
    cancel.add_argument("--timeout", type=float, default=60.0)
    cancel.add_argument("--json", action="store_true")
    cancel.set_defaults(func=cmd_jobs_cancel)
