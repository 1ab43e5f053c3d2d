"""The Ray engine for `workbench explain-batch --engine ray`: the same batch job, scaled out (issue 16).

Why Ray: one process stops at one machine; Ray Data streams the inputs through a pool of
actors, each of which loads the model once (safely, through `workbench.api.load_model`) and
runs the local engine's own `run_batch` on its batch, so both engines compute the same rows.

Resumable: every finished batch is written by its actor as one Parquet part file
(`parts/part-*.parquet`, written to a temp name and renamed, so a part is whole or absent)
after its overlays. A rerun reads the inputs already in the parts and skips them; a batch
that was cut off half-way is simply done again. At the end the parts are joined into
`results.parquet`, one row per input, in input order.

Inputs: image files, folders, ZIPs (extracted safely once, into the output folder) and lists
of paths (.csv or .parquet with a `path` column); for a text model, the rows of CSV files read
by the local engine's reader, carried to the actors as text.

Inputs are decoded inside the actors by the workbench's safe reader (header check before
decoding, EXIF, colour conversion), not by Ray's own image reader, so the security rules
hold on every worker. Ray Data carries only the paths.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from foundation.errors import WorkbenchError
from foundation.types import Modality
from workbench import batch

PARTS = "parts"
OVERLAYS = "overlays"
RESULTS = "results.parquet"
_REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class RayTask:
    """One input for the Ray engine: its global index, its display name and the file to read."""

    index: int
    name: str
    path: str  # for a text: a key naming the row and its content, so a rerun can skip it
    text: str = ""
    error: str = ""


def image_tasks(paths: Sequence[Path], out: Path) -> list[RayTask]:
    """Image files, folders (recursively), ZIPs and lists of paths (.csv/.parquet with a `path` column).

    Named as the local engine names them. A ZIP is extracted safely once into `out/extracted/`
    (a folder named by the archive's hash), so a rerun finds the same paths and can resume.
    A list's relative paths are read from the list's own folder.
    """
    tasks: list[RayTask] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            files = [(f, str(f.relative_to(path.parent))) for f in batch.image_files_in(path)]
        elif path.is_file() and path.suffix.lower() == ".zip":
            folder = _extracted(path, Path(out) / "extracted")
            files = [(f, str(f.relative_to(folder))) for f in batch.image_files_in(folder)]
        elif path.is_file() and path.suffix.lower() in (".csv", ".parquet"):
            files = [((path.parent / p), p) for p in _listed_paths(path)]
        elif path.is_file():
            files = [(path, path.name)]
        else:
            raise WorkbenchError(f"'{path}' does not exist; check the path and retry.")
        first = len(tasks)  # fixed before extending: a generator would see the list grow
        tasks.extend(RayTask(first + i, name, str(f.resolve())) for i, (f, name) in enumerate(files))
    return tasks


def text_tasks(items: Sequence[batch.BatchInput]) -> list[RayTask]:
    """Texts read by the local engine's CSV reader (same names); each keyed by its position, name and content."""
    tasks = []
    for i, item in enumerate(items):
        text = item.value if isinstance(item.value, str) else ""
        key = hashlib.sha256(f"{i}\0{item.name}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()[:20]
        tasks.append(RayTask(i, item.name, f"text:{key}", text, item.error or ""))
    return tasks


def _extracted(archive: Path, root: Path) -> Path:
    """The archive's images, extracted safely once; the folder appears only when complete (rename)."""
    from workbench import inputs

    digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:16]
    folder = root / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', archive.stem)[:40] or 'archive'}-{digest}"
    if not folder.is_dir():
        temp = root / f".tmp-{uuid.uuid4().hex}"
        inputs.extract_zip(archive, temp, name=archive.name)
        try:
            os.replace(temp, folder)
        except OSError:  # another run finished the same archive first: use that one
            shutil.rmtree(temp, ignore_errors=True)
    return folder


def _listed_paths(listing: Path) -> list[str]:
    table = pd.read_csv(listing) if listing.suffix.lower() == ".csv" else pd.read_parquet(listing)
    if "path" not in table.columns:
        raise WorkbenchError(f"'{listing.name}' has no 'path' column; list one image path per row under 'path'.")
    return [str(p) for p in table["path"].dropna()]


def done_paths(out: Path) -> set[str]:
    """The inputs (resolved paths) already written as Parquet parts under `out`: what a rerun skips."""
    parts = sorted((Path(out) / PARTS).glob("part-*.parquet"))
    if not parts:
        return set()
    return set(pd.concat([pd.read_parquet(p, columns=["path"]) for p in parts])["path"])


def start(address: str | None = None, num_cpus: int | None = None,
          object_store_memory: int | None = None) -> bool:
    """Connect to Ray: `address` (or RAY_ADDRESS) names a cluster; otherwise a local one on this machine's cores.

    True if this call connected (so the caller should `stop` it); False if Ray was already up.

    Workers get this checkout on PYTHONPATH and the same workspace (WORKBENCH_HOME), so a
    cluster's workers need both at the same paths (shared storage); see the README.
    """
    import ray
    import ray.data

    # Our commands report their own progress once a second; Ray Data's bars (or, off a terminal,
    # its progress log every 10 s) would bury it.
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # its per-job "Starting execution…" lines too
    if ray.is_initialized():
        return False
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(_REPO), os.environ.get("PYTHONPATH", "")) if p),
           "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}
    if os.environ.get("WORKBENCH_HOME"):
        env["WORKBENCH_HOME"] = os.environ["WORKBENCH_HOME"]
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        ray.init(address=address, runtime_env={"env_vars": env}, log_to_driver=False, logging_level=logging.WARNING)
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count(), object_store_memory=object_store_memory,
                 include_dashboard=False, runtime_env={"env_vars": env}, log_to_driver=False,
                 logging_level=logging.WARNING)
    return True


def use_assigned_cpus() -> int:
    """Limit this actor's TensorFlow to the CPUs Ray gave it; call first thing in an actor's constructor.

    TensorFlow otherwise runs one thread per core of the machine in every actor, so N one-CPU
    actors on an N-core node each fight for all N cores: the per-core cost that the scaling
    benchmark reports (and a cluster's size is planned from) would be wrong, and a node with
    more actors than cores would thrash. Returns the thread count used.
    """
    import ray

    cpus = max(1, int(round(ray.get_runtime_context().get_assigned_resources().get("CPU", 1))))
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(cpus)
        tf.config.threading.set_inter_op_parallelism_threads(cpus)
    except RuntimeError:  # TensorFlow already started in this worker (a reused process): keep its setting
        pass
    return cpus


def example_numbers(n: int, blocks: int) -> Any:
    """A Ray Dataset of the numbers 0..n-1 (column "id") in `blocks` blocks, made on the driver.

    Not `ray.data.range`: its read tasks need a CPU, and a fixed actor pool as large as the
    cluster holds every CPU, so they would never run and the job would wait for ever.
    """
    import numpy as np
    import ray.data

    parts = [pd.DataFrame({"id": part}) for part in np.array_split(np.arange(n, dtype=np.int64), max(1, blocks))]
    return ray.data.from_pandas([part for part in parts if len(part)])


class _RenamingSink:
    """Overlays under their global input number: `run_batch` numbers them within its batch."""

    def __init__(self, folder: Path, names: dict[str, str]) -> None:
        self.inner = batch.FolderSink(folder)
        self.names = names

    def add(self, name: str, data: bytes) -> None:
        self.inner.add(self.names[name], data)


class ExplainActor:
    """A Ray actor: loads the model once, then explains batches of paths with the local engine's `run_batch`."""

    def __init__(self, model_name: str, version: str | None, method: str, seed: int, out: str,
                 params: dict[str, Any] | None = None) -> None:
        from workbench import api

        use_assigned_cpus()
        self.model = api.load_model(model_name, version)
        self.method, self.seed, self.params = method, seed, params
        self.out = Path(out)

    def __call__(self, rows: pd.DataFrame) -> pd.DataFrame:
        modality = self.model.modality
        if modality is Modality.TEXT:
            items = [batch.BatchInput(name, None if error else text, error or None)
                     for name, text, error in zip(rows["name"], rows["text"], rows["error"])]
        else:
            items = [batch.read_image_files([Path(p)], max_side=batch.OVERLAY_MAX_SIDE)[0] for p in rows["path"]]
            items = [batch.BatchInput(name, item.value, item.error) for name, item in zip(rows["name"], items)]
        names = {batch.overlay_name(i, item.name, self.method, modality):
                 batch.overlay_name(int(g), item.name, self.method, modality)
                 for i, (item, g) in enumerate(zip(items, rows["index"]))}
        sink = _RenamingSink(self.out / OVERLAYS, names) if self.method != batch.NO_METHOD else None
        result = batch.run_batch(self.model, items, self.method, batch_size=max(1, len(items)), seed=self.seed,
                                 overlays=sink, params=self.params, map_summary=self.method != batch.NO_METHOD)
        table = result.table
        if sink is not None:
            table["overlay"] = [names.get(o, o) if isinstance(o, str) else o for o in table["overlay"]]
        table.insert(0, "index", rows["index"].to_numpy())
        table.insert(1, "path", rows["path"].to_numpy())
        table["model_version"] = self.model.version
        _write_part(self.out / PARTS, table)
        return table[["index"]]


def _write_part(folder: Path, table: pd.DataFrame) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"part-{int(table['index'].min()):08d}-{uuid.uuid4().hex[:8]}.parquet"
    temp = folder / f".{final.name}.tmp"
    table.to_parquet(temp, index=False)
    os.replace(temp, final)  # a part is whole or absent: a crash can only lose the batch in flight


def run(model_name: str, inputs: Sequence[Path], out: Path, method: str = "gradcam", *,
        version: str | None = None, batch_size: int = batch.DEFAULT_BATCH_SIZE, seed: int = 0,
        workers: int | None = None, limit: int | None = None, params: dict[str, Any] | None = None,
        progress: batch.Progress | None = None, texts: Sequence[batch.BatchInput] | None = None) -> dict[str, Any]:
    """Explain every image under `inputs` on the running Ray (call `start` first); skip inputs already done.

    For a text model, `texts` are the inputs, read by the local engine's CSV reader (the CLI does
    that), and `inputs` is ignored.

    Returns a summary like the local engine's, plus `computed` (inputs done in this run) and
    `skipped` (already in the parts). Writes `results.parquet` and `overlays/` into `out`.
    `progress(done, total, seconds_left)` is called about once a second from a watcher thread
    that counts the rows in the finished parts (the actors run in other processes).
    """
    import ray
    import ray.data

    from workbench import api, explaining

    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    model = api.load_model(model_name, version)  # refuses an unknown model before any worker starts
    if method != batch.NO_METHOD:
        explaining.explainer_class(model, method)
    if model.modality is Modality.TEXT:
        if texts is None:
            raise WorkbenchError("a text model reads texts: give CSV files with a text column.")
        tasks = text_tasks(texts)
    else:
        tasks = image_tasks(inputs, Path(out))
    tasks = tasks[:limit] if limit else tasks
    if not tasks:
        raise WorkbenchError("no inputs found; name image files, folders, ZIPs or a .csv/.parquet list of paths "
                             "(CSV files with a text column for a text model).")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    done = done_paths(out)
    todo = [t for t in tasks if t.path not in done]
    started = time.perf_counter()
    if todo:
        pool = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        data = ray.data.from_items([{"index": t.index, "name": t.name, "path": t.path, "text": t.text, "error": t.error}
                                    for t in todo],
                                   override_num_blocks=max(1, min(len(todo) // batch_size + 1, pool * 4)))
        # A fixed pool: Ray Data's autoscaling pool (min 1) never started the second actor here, so
        # "2 workers" ran on one (measured: 3,000 images, 4.5 ms -> 2.2 ms per input once fixed).
        finished = data.map_batches(
            ExplainActor, batch_size=batch_size, batch_format="pandas", num_cpus=1,
            compute=ray.data.ActorPoolStrategy(min_size=min(pool, len(todo)), max_size=min(pool, len(todo))),
            fn_constructor_kwargs={"model_name": model.name, "version": model.version, "method": method,
                                   "seed": seed, "out": str(out), "params": params})
        with _PartsWatcher(out / PARTS, len(tasks), progress):
            computed = finished.count()  # runs the pipeline; the rows themselves are already in the parts
    else:
        computed = 0
    seconds = time.perf_counter() - started
    table = _join_parts(out, {t.path for t in tasks})
    table.to_parquet(out / RESULTS, index=False)
    ok = int((table["status"] == "ok").sum())
    return {"engine": "ray", "model": model.name, "version": model.version, "method": method,
            "inputs": len(table), "explained": ok, "failed": len(table) - ok,
            "overlays": int(table["overlay"].notna().sum()) if "overlay" in table else 0,
            "computed": computed, "skipped": len(tasks) - len(todo), "seconds": round(seconds, 3),
            "inputs_per_second": round(computed / seconds, 2) if seconds > 0 and computed else 0.0,
            "parquet": str(out / RESULTS), "overlays_dir": str(out / OVERLAYS) if method != batch.NO_METHOD else None}


class _PartsWatcher:
    """Reports progress while Ray runs: rows in the finished parts (Parquet footers only), once a second."""

    def __init__(self, folder: Path, total: int, progress: batch.Progress | None) -> None:
        self.folder, self.total, self.progress = folder, total, progress
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="ray-progress", daemon=True)

    def __enter__(self) -> "_PartsWatcher":
        if self.progress is not None:
            self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)
        if self.progress is not None and exc[0] is None:
            self.progress(self.total, self.total, 0.0)

    def rows_done(self) -> int:
        import pyarrow.parquet as pq

        done = 0
        for part in self.folder.glob("part-*.parquet"):
            try:
                done += pq.read_metadata(part).num_rows
            except OSError:  # renamed or replaced while we looked: counted next time
                pass
        return done

    def _watch(self) -> None:
        started, first = time.perf_counter(), self.rows_done()
        while not self.stopped.wait(1.0):
            done = min(self.rows_done(), self.total)
            rate = (done - first) / (time.perf_counter() - started)
            self.progress(done, self.total, (self.total - done) / rate if rate > 0 else None)


def _join_parts(out: Path, wanted: set[str]) -> pd.DataFrame:
    """One row per wanted input from the parts (the newest part wins if a batch was written twice)."""
    parts = sorted((out / PARTS).glob("part-*.parquet"), key=lambda p: p.stat().st_mtime)
    table = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    table = table[table["path"].isin(wanted)].drop_duplicates("path", keep="last")
    return table.sort_values("index").reset_index(drop=True)


def stop() -> None:
    """Shut down the Ray this process started or joined."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
