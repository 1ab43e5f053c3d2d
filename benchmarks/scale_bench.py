"""`workbench bench --scale`: explain-batch Grad-CAM throughput, local engine vs Ray on 1 and 2 workers (issue 16).

All three runs explain the same generated PNG folder with the same model, method and batch
size in the same process run, so their ratio is what the engines cost, not the machine's
mood. Ray's start-up (the local cluster, then each actor importing TensorFlow and loading the
model) is reported apart from its steady per-input cost, since on a cluster it is paid once
per job while the per-input cost is paid a million times.

    python -m benchmarks.scale_bench --n 20000 --json
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROJECTION_INPUTS = 10_000_000
PROJECTION_NODES = 10
PROJECTION_CORES_PER_NODE = 16


def generate_images(folder: Path, n: int, seed: int = 20_001) -> Path:
    """`n` 64 x 64 PNGs from the shapes generator (deterministic, classes balanced), one file per input."""
    from PIL import Image

    from workbench import datasets

    folder.mkdir(parents=True, exist_ok=True)
    for start in range(0, n, 1000):  # in chunks: 20,000 images at once would be 250 MB for nothing
        images = datasets.generated_shapes(min(1000, n - start), seed, start=start)
        for offset, image in enumerate(images):
            Image.fromarray(image).save(folder / f"img{start + offset:06d}.png", compress_level=1)
    return folder


def _local(model_name: str, folder: Path, out: Path, batch_size: int) -> dict[str, Any]:
    """The local engine as `explain-batch` runs it: read, predict, Grad-CAM, write every overlay."""
    from workbench import api, batch

    model = api.load_model(model_name)
    started = time.perf_counter()
    items = batch.read_image_files(batch.image_files_in(folder), root=folder.parent, max_side=batch.OVERLAY_MAX_SIDE)
    result = batch.run_batch(model, items, "gradcam", batch_size=batch_size, overlays=batch.FolderSink(out / "overlays"))
    seconds = time.perf_counter() - started
    return {"engine": "local", "workers": 1, "inputs": len(items), "explained": result.n_ok,
            "seconds": round(seconds, 2), "start_up_s": 0.0, "ms_per_input": round(1000 * seconds / len(items), 3)}


def _ray(model_name: str, folder: Path, out: Path, batch_size: int, workers: int) -> dict[str, Any]:
    """One job on a fresh actor pool; its steady rate read from when its Parquet parts were written.

    Every part is one finished batch, renamed into place when done, so the parts' times are a
    clock of the job: the steady per-input cost is the rows after the first part over the time
    from the first part to the last; the start-up (cluster scheduling, each actor importing
    TensorFlow and loading the model) is what came before the first part, less that part's share.
    """
    import pandas as pd

    from workbench import ray_engine

    started = time.time()
    whole = ray_engine.run(model_name, [folder], out, "gradcam", batch_size=batch_size, workers=workers)
    seconds = time.time() - started
    parts = sorted((out / ray_engine.PARTS).glob("part-*.parquet"), key=lambda p: p.stat().st_mtime)
    times = [p.stat().st_mtime for p in parts]
    rows = [len(pd.read_parquet(p, columns=["index"])) for p in parts]
    steady_ms = 1000 * (times[-1] - times[0]) / max(1, sum(rows[1:])) if len(parts) > 1 else 1000 * seconds / rows[0]
    return {"engine": "ray", "workers": workers, "inputs": whole["inputs"], "explained": whole["explained"],
            "seconds": round(seconds, 2), "start_up_s": round(max(0.0, times[0] - started - rows[0] * steady_ms / 1000), 2),
            "ms_per_input": round(steady_ms, 3)}


def run(n: int = 20_000, model_name: str = "shapes", batch_size: int = 64, worker_counts: tuple[int, ...] = (1, 2),
        log: Callable[[str], None] = lambda message: None) -> dict[str, Any]:
    """Local, then Ray with each worker count, on the same `n` generated images; per-input costs and ratios.

    `ms_per_input` is the whole run's time per input for the local engine and the steady cost
    (start-up excluded, reported as `start_up_s`) for Ray.
    """
    from workbench import ray_engine

    load_before = round(os.getloadavg()[0], 2)
    scratch = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    try:
        log(f"generating {n} images…")
        folder = generate_images(scratch / "images", n)
        log("local engine…")
        rows = [_local(model_name, folder, scratch / "local", batch_size)]
        log(f"local: {rows[0]}")
        started = time.perf_counter()
        owned = ray_engine.start(num_cpus=max(worker_counts))  # False: a Ray already up (a test's) is used and left up
        ray_start_s = time.perf_counter() - started
        try:
            for workers in worker_counts:
                log(f"ray, {workers} worker(s)…")
                rows.append(_ray(model_name, folder, scratch / f"ray{workers}", batch_size, workers))
                log(f"ray {workers}: {rows[-1]}")
        finally:
            if owned:
                ray_engine.stop()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    local_ms = rows[0]["ms_per_input"]
    for row in rows:
        row["ratio_to_local"] = round(row["ms_per_input"] / local_ms, 3) if local_ms else None
    best = min(rows[1:], key=lambda r: r["ms_per_input"] * r["workers"]) if len(rows) > 1 else rows[0]
    # The local engine runs TensorFlow on all of this machine's cores; each Ray actor on the one CPU
    # Ray assigned it (`ray_engine.use_assigned_cpus`), so "ray, 1 worker" is the per-core cost.
    return {"n": n, "model": model_name, "method": "gradcam", "batch_size": batch_size, "rows": rows,
            "cores": os.cpu_count(), "load_average": {"before": load_before, "after": round(os.getloadavg()[0], 2)},
            "ray_cluster_start_s": round(ray_start_s, 2), "projection": projection(best["ms_per_input"], best["workers"])}


def projection(ms_per_input: float, workers: int, inputs: int = PROJECTION_INPUTS, nodes: int = PROJECTION_NODES,
               cores_per_node: int = PROJECTION_CORES_PER_NODE) -> dict[str, Any]:
    """Hours for `inputs` on `nodes` x `cores_per_node` if every core does what one worker did here.

    ms_per_input was measured with `workers` actors on this machine, so one core costs
    ms_per_input x workers per input; perfect scaling is assumed, which a cluster only approaches.
    """
    core_ms = ms_per_input * workers
    hours = inputs * core_ms / 1000 / (nodes * cores_per_node) / 3600
    return {"inputs": inputs, "nodes": nodes, "cores_per_node": cores_per_node, "core_ms_per_input": round(core_ms, 3),
            "hours": round(hours, 2), "assumes": "linear scaling from this machine's per-core cost, shared storage"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--model", default="shapes")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = run(args.n, args.model, args.batch_size, log=lambda m: print(f"scale: {m}", file=sys.stderr, flush=True))
    print(json.dumps(report, indent=2) if args.json else report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
