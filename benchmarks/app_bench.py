"""The app in a real browser: from the server's start to the first explanation, and its memory.

    .venv/bin/python -m benchmarks.app_bench          # prints JSON

Every time is measured from launching the server (`python -m ui.serve`, as `make run` does;
a fresh process and workspace) while headless Chromium (Debian's /usr/bin/chromium driven by
Playwright; started before the clock, so its own start-up is not counted) keeps opening the
app, as a newcomer who opens the page right away:
- first_paint_s (also cold_start_s, its older name): the first page's title is visible;
- first_gradcam_s: the Grad-CAM overlay of the default page is rendered (no model switch);
- first_trust_s: the trust panel's figures for that overlay are visible;
- server_rss_first_page_mb: the resident memory (VmRSS) at that moment of the server and every
  process it started that still runs (the start-up's first-map worker, workbench/first_page.py);
- first_map_from: where that overlay came from ("stored with the model": written beside the model
  file by `workbench train`, as the sample models ship; "start-up worker": the map a separate process
  computed while the server loaded TensorFlow; "server": the live page's own);
- first_controls_s, server_rss_controls_mb: the live page's controls ("Explain class") are visible,
  so it answers clicks, and the memory then (the server has loaded TensorFlow by now).
Then each image model is chosen on the Explain image page and the text model on the Batch
page, so all four sample models sit in the server's model cache: server_rss_mb.
load_average_at_start is the machine's 1-minute load average when the server was launched
(on 2 cores, other work changes every figure). `targets` and `meets_targets` are issue 18's.

    .venv/bin/python -m benchmarks.app_bench --first-page --runs 3   # the first page only, 3 fresh servers
    .venv/bin/python -m benchmarks.app_bench --tensorflow-rss        # what TensorFlow costs a process alone

`--first-page` (`first_page_bench`) stops once the live page's controls are there and adds, per run:
first_progress_s (the start-up's progress message, or the map, first visible: the page is never
blank after it), the server's own account of its start-up (`preload`: map ready after, total, seconds
per stage, from its log line) and each run's load average. With `--same-workspace` every run uses one
workspace, so from the second run on the server finds the first map stored by the first run's worker
(`first_map_stored_before`); `--no-worker` starts the server without that worker; `--no-shipped` makes
it ignore the first maps shipped with the sample models (WORKBENCH_SHIPPED_FIRST_MAPS=off), as for a
model that carries none, so the worker computes it.
`--tensorflow-rss` (`tensorflow_rss`) measures, in fresh processes without Streamlit, the resident
memory of importing TensorFlow, then Keras, then loading the default model and explaining one image:
the floor of a server that runs TensorFlow in its own process.

`AppServer` and `launch_browser` are shared with the end-to-end tests (`tests/e2e/`).
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
IMAGE_MODELS = ("digits", "shapes", "shapes-shortcut")
TEXT_MODELS = ("headlines",)
TARGETS = {"first_gradcam_s": 8.0, "first_gradcam_after_paint_s": 3.0, "first_trust_after_gradcam_s": 3.0,
           "server_rss_first_page_mb": 500.0}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AppServer:
    """The app (`python -m ui.serve`) on a free local port with its own workspace; stopped on exit."""

    def __init__(self, workspace: Path | None = None, log_path: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.env = dict(env or {})  # the server's environment beyond this process's (and `start`'s extra_env)
        self.url = f"http://127.0.0.1:{self.port}"
        self._temp = None if workspace else tempfile.TemporaryDirectory(prefix="wb-app-")
        self.workspace = Path(workspace) if workspace else Path(self._temp.name) / "workspace"
        self.log_path = log_path or (self.workspace.parent / f"streamlit-{self.port}.log")
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0

    def start(self, extra_env: dict[str, str] | None = None, extra_args: list[str] | None = None) -> "AppServer":
        self.workspace.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, WORKBENCH_HOME=str(self.workspace), TF_CPP_MIN_LOG_LEVEL="2",
                   PYTHONUNBUFFERED="1", **{**self.env, **(extra_env or {})})
        command = [sys.executable, "-m", "ui.serve",
                   "--server.port", str(self.port), "--server.address", "127.0.0.1", "--server.headless", "true",
                   "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false", *(extra_args or [])]
        self._log = open(self.log_path, "wb")
        self.started_at = time.perf_counter()
        # Its own process group, so stopping it also stops the retrain jobs it spawned.
        self.process = subprocess.Popen(command, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        return self

    def wait_healthy(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the app exited with code {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError(f"the app did not answer within {timeout:.0f} s; see {self.log_path}")

    def rss_mb(self) -> float:
        """Resident memory of the server process and every process it started and that still runs (the
        start-up's first-map worker), in MiB, from /proc (psutil is not a dependency)."""
        return sum(_rss_mb(pid) for pid in [self.process.pid, *_descendants(self.process.pid)])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(timeout=10)
        if getattr(self, "_log", None):
            self._log.close()
        if self._temp is not None:
            self._temp.cleanup()

    def __enter__(self) -> "AppServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0  # exited meanwhile
    match = re.search(r"^VmRSS:\s+(\d+)\s+kB", status, re.M)
    return int(match.group(1)) / 1024 if match else 0.0


def _descendants(pid: int) -> list[int]:
    found = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(child) for child in children.read_text().split()]
        except OSError:
            continue
    return found + [grandchild for child in found for grandchild in _descendants(child)]


def launch_browser(playwright: Any) -> Any:
    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(f"{CHROMIUM} is missing; install Debian's chromium (apt-get install chromium)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def wait_for_app(page: Any, url: str, timeout: float = 180.0) -> None:
    """Open `url` (retrying while the server is not listening) until the page's title is visible."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            page.goto(url, wait_until="domcontentloaded", timeout=10_000)
            break
        except Exception:  # connection refused while the server starts
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    remaining = max(1.0, deadline - time.monotonic())
    page.locator('[data-testid="stMain"] h1').first.wait_for(state="visible", timeout=remaining * 1000)


# Streamlit marks its root element with the script's state; "notRunning" once a run has ended. A
# click does not change it until the server answers, so wait for something the new run drew first.
RUN_ENDED = ("() => document.querySelector('[data-testid=\"stApp\"]')?.getAttribute('data-test-script-state')"
             " === 'notRunning'")


def wait_run_ended(page: Any, timeout: float = 120.0) -> None:
    """Until the page's current script run has ended (see RUN_ENDED)."""
    page.wait_for_function(RUN_ENDED, timeout=timeout * 1000)


def choose_sidebar_model(page: Any, name: str, timeout: float = 120.0) -> None:
    """Pick `name` in the sidebar's model selectbox."""
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.locator('[data-testid="stSelectbox"]').first.click()
    page.get_by_role("option", name=name, exact=True).click()
    wait_visible(page, sidebar.get_by_text(re.compile(r"Version in use")), timeout)
    # The caption was there before the switch too: also wait for the rerun it started to end.
    page.wait_for_timeout(300)
    wait_run_ended(page, timeout)


def open_page(page: Any, title: str, timeout: float = 120.0) -> None:
    """Follow the sidebar navigation link called `title` and wait for the page's h1."""
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=re.compile(re.escape(title))).click()
    wait_visible(page, page.locator('[data-testid="stMain"] h1').filter(has_text=title), timeout)


def gradcam_image(page: Any) -> Any:
    """The Grad-CAM overlay <img> of the Explain image page (by its caption)."""
    return page.locator('[data-testid="stImage"]').filter(
        has=page.get_by_text(re.compile(r"^gradcam(\+\+)? for"))).locator("img").first


class AppError(AssertionError):
    """The page showed a Streamlit exception box instead of what we waited for."""


def wait_visible(page: Any, locator: Any, timeout: float = 180.0) -> Any:
    """Wait for `locator` to be visible; fail at once, with its text, if the app shows an exception instead."""
    error = page.locator('[data-testid="stException"]')
    locator.first.or_(error.first).first.wait_for(state="visible", timeout=timeout * 1000)
    if error.count() and error.first.is_visible():
        raise AppError("the app raised an exception: " + error.first.inner_text()[:3000])
    return locator.first


def wait_rendered(image: Any, timeout: float = 180.0) -> tuple[int, int]:
    """Wait until an <img> has loaded with a non-zero natural size; return (width, height)."""
    wait_visible(image.page, image, timeout)
    # A rerun can replace the <img> between two calls: check and read its size in one call, again
    # on whatever element the locator finds now, until one has loaded.
    deadline = time.monotonic() + timeout
    while True:
        try:
            size = image.evaluate("img => img.complete && img.naturalWidth > 0 ? "
                                  "[img.naturalWidth, img.naturalHeight] : null", timeout=5_000)
        except Exception:  # detached mid-call: look again
            size = None
        if size:
            return size[0], size[1]
        if time.monotonic() > deadline:
            raise TimeoutError(f"no loaded image within {timeout:.0f} s")
        image.page.wait_for_timeout(200)


def trust_figures(page: Any) -> Any:
    """The first figure of a trust panel (its deletion area) on the page."""
    return page.locator('[data-testid="stMetricLabel"]').filter(has_text="Deletion area")


def run_app_bench(timeout: float = 300.0) -> dict[str, Any]:
    """{"first_paint_s", "first_gradcam_s", "first_trust_s", ...}: see the module docstring."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_browser(playwright)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            with AppServer() as server:
                load_average = os.getloadavg()[0]
                first = _first_page(page, server, timeout)
                first.pop("first_progress_s")  # reported by --first-page only (the documented keys of this run)
                loaded = _load_every_model(page, timeout)
                rss = server.rss_mb()
        finally:
            browser.close()
    figures = {"cold_start_s": first["first_paint_s"], **first, "server_rss_mb": round(rss, 1),
               "models_loaded": loaded, "load_average_at_start": round(load_average, 2)}
    return {**figures, "targets": TARGETS, "meets_targets": meets_targets(figures)}


def _first_page(page: Any, server: AppServer, timeout: float) -> dict[str, float]:
    """A newcomer's first page: title, then the start-up's progress (or the map), then the default page's
    Grad-CAM overlay and its trust figures, then the live page's controls; the server's memory meanwhile."""
    wait_for_app(page, server.url, timeout)
    paint = time.perf_counter() - server.started_at
    wait_visible(page, progress_message(page).or_(gradcam_image(page)), timeout)
    progress = time.perf_counter() - server.started_at
    wait_rendered(gradcam_image(page), timeout)
    gradcam = time.perf_counter() - server.started_at
    source = map_source(page)
    wait_visible(page, trust_figures(page), timeout)
    trust = time.perf_counter() - server.started_at
    rss = server.rss_mb()
    wait_visible(page, live_controls(page), timeout)
    controls = time.perf_counter() - server.started_at
    return {"first_paint_s": round(paint, 2), "first_progress_s": round(progress, 2),
            "first_gradcam_s": round(gradcam, 2), "first_trust_s": round(trust, 2),
            "server_rss_first_page_mb": round(rss, 1), "first_map_from": source, "first_controls_s": round(controls, 2),
            "server_rss_controls_mb": round(server.rss_mb(), 1)}


def live_controls(page: Any) -> Any:
    """The live Explain image page's class selector, enabled (the start-up's first map shows it greyed out):
    the page answers clicks from here on."""
    return (page.locator('[data-testid="stSelectbox"]').filter(has_text="Explain class")
            .filter(has=page.locator("input:not([disabled])")))


def map_source(page: Any) -> str:
    """Where the Grad-CAM overlay on screen came from: stored with the model, the start-up worker
    (workbench/first_page.py), or the server."""
    caption = page.locator('[data-testid="stImage"]').filter(has=page.get_by_text(re.compile(r"^gradcam(\+\+)? for")))
    text = caption.first.inner_text()
    if "stored with the model" in text:
        return "stored with the model"
    return "start-up worker" if "computed at start-up" in text else "server"


def _load_every_model(page: Any, timeout: float) -> list[str]:
    loaded = []
    for name in IMAGE_MODELS:
        choose_sidebar_model(page, name, timeout)
        wait_rendered(gradcam_image(page), timeout)
        loaded.append(name)
    open_page(page, "Batch", timeout)
    for name in TEXT_MODELS:
        choose_sidebar_model(page, name, timeout)
        page.get_by_text(re.compile(f"predicted by {re.escape(name)}")).first.wait_for(timeout=timeout * 1000)
        loaded.append(name)
    return loaded


def meets_targets(figures: dict[str, Any]) -> dict[str, bool]:
    """Each of issue 18's targets: met or not, from the figures of one run."""
    measured = {
        "first_gradcam_s": figures["first_gradcam_s"],
        "first_gradcam_after_paint_s": figures["first_gradcam_s"] - figures["first_paint_s"],
        "first_trust_after_gradcam_s": figures["first_trust_s"] - figures["first_gradcam_s"],
        "server_rss_first_page_mb": figures["server_rss_first_page_mb"],
    }
    return {name: bool(measured[name] <= limit) for name, limit in TARGETS.items()}


# The start-up's progress message on the Explain image page ("Step 2 of 3: Loading model digits…").
PROGRESS_TEXT = re.compile(r"^Step \d of \d: ")
PRELOAD_LINE = re.compile(r"workbench: preloaded (\S+) (\S+) in ([\d.]+) s \(map ready after ([\d.]+) s; (.*?)"
                          r"(?:, started ([\d.]+) s after the server process)?\)")


def progress_message(page: Any) -> Any:
    return page.get_by_text(PROGRESS_TEXT)


def preload_figures(log: str) -> dict[str, Any] | None:
    """The server's own account of its start-up, from its log line (workbench/preload.py), or None."""
    match = PRELOAD_LINE.search(log)
    if match is None:
        return None
    stages = {}
    for part in match.group(5).split(", "):  # "tensorflow 5.2 s"
        stage, seconds, _ = part.split(" ")
        stages[stage] = float(seconds)
    began = float(match.group(6)) if match.group(6) else None
    return {"model": f"{match.group(1)} {match.group(2)}", "started_s": began, "map_ready_s": float(match.group(4)),
            "total_s": float(match.group(3)), "stages_s": stages}


def first_page_bench(timeout: float = 300.0, preload: str | None = None, worker: bool = True,
                     workspace: Path | None = None, shipped: bool = True) -> dict[str, Any]:
    """One fresh server, the first page only: see the module docstring (`--first-page`).
    preload: when the server starts its preload (ui/serve.py's WORKBENCH_PRELOAD; None: its default)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_browser(playwright)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            env = {"WORKBENCH_PRELOAD": preload} if preload else {}
            if not worker:
                env["WORKBENCH_FIRST_MAP_WORKER"] = "off"
            if not shipped:
                env["WORKBENCH_SHIPPED_FIRST_MAPS"] = "off"
            stored = workspace is not None and any((workspace / "cache" / "first_page").glob("*/*.json"))
            server = AppServer(workspace=workspace, env=env).start()
            try:
                load_average = os.getloadavg()
                first = _first_page(page, server, timeout)
                time.sleep(0.5)  # the log line is written as the start-up's second phase ends
                account = preload_figures(server.log_path.read_text(errors="replace"))
            finally:
                server.stop()
        finally:
            browser.close()
    figures = {**first, "preload": account,
               "preload_moment": preload or "default", "first_map_worker": worker, "shipped_first_maps": shipped,
               "first_map_stored_before": stored, "load_average_at_start": [round(v, 2) for v in load_average]}
    return {**figures, "meets_targets": meets_targets(figures)}


_RSS_SCRIPT = """
import json, re, sys, time
def rss():
    status = open("/proc/self/status").read()
    return {k: int(re.search(rf"^{k}:\\s+(\\d+) kB", status, re.M).group(1)) / 1024 for k in ("VmRSS", "VmHWM")}
steps, started = {}, time.perf_counter()
def step(name):
    steps[name] = {**{k: round(v, 1) for k, v in rss().items()}, "s": round(time.perf_counter() - started, 2)}
step("python")
import tensorflow
step("tensorflow")
if "keras" in sys.argv:
    import keras
    step("keras")
if "model" in sys.argv:
    import numpy as np
    from workbench import api, preload
    model = api.load_model(preload.default_model())
    step("model")
    image = np.zeros((*model.image_size, 3), dtype=np.uint8)
    api.explain(model, "gradcam", [image])
    step("prediction_and_gradcam")
print(json.dumps(steps))
"""


def tensorflow_rss(runs: int = 3) -> dict[str, Any]:
    """Resident memory (MiB; VmRSS now and VmHWM, its peak) of a fresh Python process after importing
    TensorFlow, then Keras, then loading the default model and explaining one image with Grad-CAM:
    what TensorFlow costs whichever process holds it. `runs` processes, one at a time."""
    results = []
    for _ in range(runs):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        env.setdefault("WORKBENCH_HOME", tempfile.mkdtemp(prefix="wb-rss-"))
        done = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, "keras", "model"], cwd=REPO, env=env,
                              capture_output=True, text=True, check=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {"runs": results, "load_average": [round(v, 2) for v in os.getloadavg()]}


def _main(argv: list[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.app_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--first-page", action="store_true", help="the first page only, on fresh servers")
    parser.add_argument("--runs", type=int, default=1, help="fresh servers (or processes), one after another")
    parser.add_argument("--tensorflow-rss", action="store_true", help="TensorFlow's memory in a process alone")
    parser.add_argument("--preload", help="with --first-page: when the server preloads (listening, now, off)")
    parser.add_argument("--same-workspace", action="store_true",
                        help="with --first-page: every run on one workspace (later starts find the first map stored)")
    parser.add_argument("--no-worker", action="store_true",
                        help="with --first-page: without the start-up's first-map worker (WORKBENCH_FIRST_MAP_WORKER=off)")
    parser.add_argument("--no-shipped", action="store_true",
                        help="with --first-page: ignore the first maps shipped with the sample models "
                        "(WORKBENCH_SHIPPED_FIRST_MAPS=off)")
    args = parser.parse_args(argv)
    if args.tensorflow_rss:
        print(json.dumps(tensorflow_rss(args.runs)))
    elif args.first_page:
        workspace = Path(tempfile.mkdtemp(prefix="wb-app-bench-")) / "workspace" if args.same_workspace else None
        for _ in range(args.runs):
            print(json.dumps(first_page_bench(preload=args.preload, worker=not args.no_worker, workspace=workspace,
                                              shipped=not args.no_shipped)), flush=True)
    else:
        print(json.dumps(run_app_bench()))


if __name__ == "__main__":
    _main(sys.argv[1:])
