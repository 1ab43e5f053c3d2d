"""The `--engine ray` options that `explain-batch` and `audit` share (issue 16)."""
from __future__ import annotations

import argparse
import contextlib
from typing import Iterator


def add_ray_arguments(parser: argparse.ArgumentParser, local_help: str, ray_help: str) -> None:
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help=f"local: {local_help} (default); ray: {ray_help}")
    parser.add_argument("--ray-address", default=None,
                        help="an existing Ray cluster (default: RAY_ADDRESS, else a local Ray on this machine's cores)")
    parser.add_argument("--ray-cpus", type=int, default=None, help="CPUs for a local Ray (default: all cores)")
    parser.add_argument("--workers", type=int, default=None,
                        help="Ray actors, each with its own model (default: one per CPU)")


@contextlib.contextmanager
def ray_session(args: argparse.Namespace) -> Iterator[None]:
    """Ray for one command: joined or started from the options, shut down after only if this command started it
    (a Ray a test or a notebook started stays up)."""
    from workbench import ray_engine

    owned = ray_engine.start(args.ray_address, num_cpus=args.ray_cpus)
    try:
        yield
    finally:
        if owned:
            ray_engine.stop()
