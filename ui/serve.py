"""Start the app: `python -m ui.serve [streamlit options]` (what `make run` does).

Why not plain `streamlit run app.py`: the design fixes the page folder's name as `pages/`,
and Streamlit treats a `pages/` folder beside the entry point as a legacy multipage app until
`st.navigation` has run once in the process. The first visitor who opens a deep link
(e.g. /explain_image) then gets that page without the router: Streamlit's automatic page
list, no model picker. Declaring up front that this app routes with `st.navigation` makes
every first request go through app.py.

Where it listens (issue 15). Without sign-in (no `[auth]` section in `.streamlit/secrets.toml`)
anyone who can reach the port could act as anyone, so the workbench is a single-person tool and
listens on 127.0.0.1 only, whatever Streamlit's own default (every interface) would be. Another
address without sign-in needs both `--server.address ADDRESS` (or `server.address` in a config
file, or `STREAMLIT_SERVER_ADDRESS`) and `WORKBENCH_ALLOW_UNAUTHENTICATED_NETWORK=1`, and prints
a warning; the address alone is refused before anything starts. With sign-in configured the
address is Streamlit's usual choice.

Before Streamlit starts, a separate process computes the default page's first map
(workbench/first_page.py), unless it is stored (the sample models ship theirs; an earlier start
stored it): a second process does not queue behind this one's interpreter lock, so the page can
show that map while this server is still starting. The server's own slow start-up
(workbench/preload.py: TensorFlow, the default model, its first Grad-CAM) begins in the background
after that process has finished (so the two never share the cores, nor hold two TensorFlows in
memory), once Streamlit listens and the first visitor's page has painted (and, when it drew the
stored map, a moment later, for the browser to fetch its images; or two seconds after listening when
nobody has come), so that page finds it under way instead of paying for it. Not earlier: importing
TensorFlow holds Python's global lock for long stretches; started alongside Streamlit's own start
it delayed the moment the server answered at all, and
alongside the page's own imports it delayed the page's title and progress message by 3-6 s. The
page, drawn first, says which step the start-up is at. `WORKBENCH_PRELOAD` chooses another
moment, for measurements: "now" (before Streamlit starts) or "off" (pages load models themselves).
"""
from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from foundation.errors import WorkbenchError
from workbench import first_page, preload

APP = Path(__file__).resolve().parent.parent / "app.py"
LOOPBACK = "127.0.0.1"
ALLOW_NETWORK_ENV = "WORKBENCH_ALLOW_UNAUTHENTICATED_NETWORK"
NETWORK_WARNING = (
    "WARNING: the workbench is listening on {address} without sign-in ({env}=1). Anyone who can "
    "reach this address can correct labels, retrain, promote and discard model versions under any "
    "name. Configure sign-in ([auth] in .streamlit/secrets.toml) or listen on 127.0.0.1 only."
)


def auth_configured(secrets_files: Iterable[str | Path]) -> bool:
    """True when one of Streamlit's secrets files has an `[auth]` section (sign-in is on)."""
    for path in map(Path, secrets_files):
        if not path.is_file():
            continue
        try:
            with open(path, "rb") as handle:
                if tomllib.load(handle).get("auth"):
                    return True
        except (OSError, tomllib.TOMLDecodeError):
            continue  # Streamlit reports a broken secrets file itself
    return False


def secrets_files(argv: Sequence[str], configured: Sequence[str]) -> list[str]:
    """The secrets files Streamlit will read: those given with `--secrets.files` (repeatable), else
    its configured ones (~/.streamlit/secrets.toml and .streamlit/secrets.toml under the working folder)."""
    given = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--secrets.files"]
    given += [arg.split("=", 1)[1] for arg in argv if arg.startswith("--secrets.files=")]
    return given or list(configured)


def requested_address(argv: Sequence[str], env: Mapping[str, str], configured: str | None) -> str | None:
    """The address Streamlit would listen on: the command line, then its env variable, then its config
    files; None means Streamlit's default (every interface)."""
    for index, arg in enumerate(argv):
        if arg == "--server.address" and index + 1 < len(argv):
            return argv[index + 1] or None
        if arg.startswith("--server.address="):
            return arg.split("=", 1)[1] or None
    return env.get("STREAMLIT_SERVER_ADDRESS") or configured or None


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def binding_arguments(argv: Sequence[str], *, signed_in: bool, env: Mapping[str, str],
                      configured: str | None) -> tuple[list[str], str | None]:
    """Streamlit's arguments with the binding rule applied, and the warning to print (or None).

    Raises WorkbenchError for a non-loopback address without sign-in and without the explicit setting.
    """
    argv = list(argv)
    if signed_in:
        return argv, None
    address = requested_address(argv, env, configured)
    if address is None:
        return [*argv, "--server.address", LOOPBACK], None
    if is_loopback(address):
        return argv, None
    if env.get(ALLOW_NETWORK_ENV, "").lower() not in {"1", "true", "yes"}:
        raise WorkbenchError(
            f"Refusing to listen on {address} without sign-in: anyone reaching it could act as anyone. "
            "Configure sign-in ([auth] in .streamlit/secrets.toml), or listen on 127.0.0.1, or set "
            f"{ALLOW_NETWORK_ENV}=1 to accept the risk (for a trusted network only).")
    return argv, NETWORK_WARNING.format(address=address, env=ALLOW_NETWORK_ENV)


PRELOAD_ENV = "WORKBENCH_PRELOAD"
WORKER_ENV = "WORKBENCH_FIRST_MAP_WORKER"  # "off": no start-up worker (the page computes its first map itself)
PRELOAD_MOMENTS = ("listening", "now", "off")
LISTEN_TIMEOUT_S = 30.0  # a server that is not up by then: start the preload all the same
# Once listening: a visitor's first run begins within this (a browser opened with the server), else
# nobody is there yet and the preload starts; a page that never says it painted is waited for this long.
VISITOR_GRACE_S = 2.0
PAINT_TIMEOUT_S = 6.0


def streamlit_listening() -> bool:
    """True once Streamlit's runtime has started (it accepts sessions from then on)."""
    from streamlit.runtime import Runtime, RuntimeState

    return Runtime.exists() and Runtime.instance().state is not RuntimeState.INITIAL


def start_first_map_worker() -> subprocess.Popen | None:
    """The separate process that computes the default page's first map (workbench/first_page.py)."""
    return first_page.start_worker(preload.default_model())


PREVIEW_TIMEOUT_S = 3.0  # a page that does not draw the worker's result by then is not waited for


def start_preload(moment: str, listening=streamlit_listening, timeout: float = LISTEN_TIMEOUT_S,
                  grace: float = VISITOR_GRACE_S, paint_timeout: float = PAINT_TIMEOUT_S,
                  worker: subprocess.Popen | None = None) -> threading.Thread | None:
    """Start the preload at `moment` (PRELOAD_MOMENTS); returns the thread that starts it, or None.
    "listening": a small daemon thread polls `listening()` (giving up after `timeout`), then starts the
    preload once the first visitor's page has painted its title and progress (or after `grace` seconds
    without a visitor; `preload.start_after_first_paint`), so the visitor sees the page before
    TensorFlow takes the interpreter's lock. worker: the first-map worker (`start_first_map_worker`),
    if one runs: the preload then also waits until that process has exited."""
    if moment not in PRELOAD_MOMENTS:
        print(f"workbench: {PRELOAD_ENV}={moment!r} is not one of {', '.join(PRELOAD_MOMENTS)}; "
              "using 'listening'", file=sys.stderr, flush=True)
        moment = "listening"
    if moment == "off":
        return None
    if moment == "now":
        return preload.start()
    preload.schedule()  # from now on a page waits for the preload instead of loading the model itself

    def when_listening() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if listening():
                    break
            except Exception:  # noqa: BLE001 - Streamlit's internals moved: do not wait for them
                break
            time.sleep(0.05)
        if worker is not None:
            # Its own TensorFlow and the default model: loading them here too meanwhile would only share
            # the two cores and hold both copies in memory at once. Unless a page can show nothing
            # before it has a model (another page, another input): that page does not wait for the worker.
            if first_page.wait_for_worker(worker, until=preload.model_is_wanted):
                # A waiting page draws the worker's final result (its trust figures) before this
                # server's TensorFlow import takes the interpreter's lock: measured, that import
                # delayed the drawing by up to 2 s.
                preload.wait_for_preview(first_page.stamp(str(preload.default_model())), PREVIEW_TIMEOUT_S)
        preload.start_after_first_paint(grace, paint_timeout)

    thread = threading.Thread(target=when_listening, name="preload-when-listening", daemon=True)
    thread.start()
    return thread


def keep_keras_state() -> bool:
    """Stop Streamlit from clearing Keras after every script run; True when that took effect.

    After each run Streamlit calls `keras.backend.clear_session()` (for TF1-era apps whose graph
    outlived a rerun). Here that is a full garbage collection over TensorFlow's objects and an
    emptied TensorFlow kernel cache, after every click: measured on the digits model (load ≈ 12),
    0.7 s per run, and the next prediction and Grad-CAM took 0.31-0.42 s instead of 0.02 s. The
    workbench loads each model once per process and keeps it (ui/loaders.py), so there is no stale
    graph to clear. matplotlib's figures are still closed as Streamlit does."""
    try:
        from streamlit.runtime.scriptrunner import script_runner
    except ImportError:
        return False
    if not hasattr(script_runner, "_clean_problem_modules"):
        return False  # Streamlit changed: leave it alone

    def close_matplotlib_figures_only() -> None:
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:
            pyplot.close("all")

    script_runner._clean_problem_modules = close_matplotlib_figures_only
    return True


def without_forced_gc(argv: Sequence[str]) -> list[str]:
    """Streamlit's arguments with `runner.postScriptGC` off unless given: its full collection after
    every run costs 0.7 s with TensorFlow loaded (426,000 objects, load ≈ 12); Python's own
    collector still frees cycles as usual."""
    if any(arg.startswith("--runner.postScriptGC") for arg in argv) or "STREAMLIT_RUNNER_POST_SCRIPT_GC" in os.environ:
        return list(argv)
    return [*argv, "--runner.postScriptGC", "false"]


def main(argv: list[str] | None = None) -> None:
    moment = os.environ.get(PRELOAD_ENV, "listening").strip().lower()
    # First of all, before Streamlit's own imports: the worker's TensorFlow import is the longest road
    # to the first map.
    wanted = moment not in ("now", "off") and os.environ.get(WORKER_ENV, "on").strip().lower() != "off"
    worker = start_first_map_worker() if wanted else None
    from streamlit import config
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.web import cli

    args = sys.argv[1:] if argv is None else argv
    try:
        args, warning = binding_arguments(
            args, signed_in=auth_configured(secrets_files(args, config.get_option("secrets.files"))), env=os.environ,
            configured=config.get_option("server.address"))
    except WorkbenchError as error:
        if worker is not None:
            worker.kill()
        sys.exit(f"workbench: {error}")
    if warning:
        print(warning, file=sys.stderr, flush=True)
    PagesManager.uses_pages_directory = False
    keep_keras_state()
    args = without_forced_gc(args)
    start_preload(moment, worker=worker)
    sys.argv = ["streamlit", "run", str(APP), *args]
    cli.main()


if __name__ == "__main__":
    main()
