"""`workbench models versions / promote / rollback / discard / card`."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from foundation.errors import WorkbenchError


def _check_model(name: str) -> None:
    from models import store

    if name not in store.model_names():
        raise WorkbenchError(f"there is no model named {name!r}; choose one of: {', '.join(store.model_names())}.")


def cmd_versions(args: argparse.Namespace) -> int:
    from models import versions

    _check_model(args.name)
    rows = versions.describe(args.name)
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            acc = row["test_accuracy"]
            print(f"{row['version']:<5} {row['status']:<9} parent {row['parent'] or '-':<5} "
                  f"test acc {acc if acc is not None else '-'}  labels changed {row['labels_changed']}")
    return 0


def _change(action: str):
    def command(args: argparse.Namespace) -> int:
        from models import versions

        _check_model(args.name)
        event = getattr(versions, action)(args.name, args.version, by=args.by)
        print(json.dumps(event) if args.json else f"{action}: {args.name} {args.version} (done)")
        return 0

    return command


def cmd_card(args: argparse.Namespace) -> int:
    from models import store, versions
    from workbench import model_trust

    _check_model(args.name)
    version = args.version or store.current_version(args.name)
    store.version_path(args.name, version)  # refuses unknown versions
    if args.measure and model_trust.saved_trust(args.name, version) is None:
        model_trust.measure_trust(store.load(args.name, version))
    card = model_trust.card_for(args.name, version, status=versions.status(args.name, version))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(card, encoding="utf-8")
        print(json.dumps({"card": str(out)}) if args.json else str(out))
    else:
        print(card, end="")
    return 0


def register_models(models_sub) -> None:
    listing = models_sub.add_parser("versions", help="a model's versions and their status")
    listing.add_argument("name")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_versions)
    for action, text in (("promote", "make a version (a candidate) the one in use"),
                         ("rollback", "return to a version that was in use before"),
                         ("discard", "delete a candidate version")):
        parser = models_sub.add_parser(action, help=text)
        parser.add_argument("name")
        parser.add_argument("version")
        parser.add_argument("--by", default="cli", help="recorded in the promotion log")
        parser.add_argument("--json", action="store_true")
        parser.set_defaults(func=_change(action))
    card = models_sub.add_parser("card", help="print or write a version's model card (Markdown)")
    card.add_argument("name")
    card.add_argument("version", nargs="?", default=None, help="default: the version in use")
    card.add_argument("--out", default=None, help="write the card to this file")
    card.add_argument("--measure", action="store_true",
                      help="measure the explanation trust figures first (once per version, ~1-15 s)")
    card.add_argument("--json", action="store_true")
    card.set_defaults(func=cmd_card)
