"""Regenerate the committed sample files: `python -m sample_data [flipped|examples|all]`."""
from __future__ import annotations

import argparse

from sample_data.export import write_examples
from sample_data.noisy import write_flipped_files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sample_data", description=__doc__)
    parser.add_argument(
        "what",
        nargs="?",
        default="all",
        choices=("flipped", "examples", "all"),
        help="flipped: sample_data/flipped/*.json; examples: sample_data/examples/*; all: both",
    )
    args = parser.parse_args(argv)
    written = []
    if args.what in ("flipped", "all"):
        written += write_flipped_files()
    if args.what in ("examples", "all"):
        written += write_examples()
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
