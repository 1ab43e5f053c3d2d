"""Issue 15's load check: N people signed in at once, working through the Review and Explain pages.

    .venv/bin/python -m benchmarks.team_load --sessions 10 --rounds 3     # prints JSON
    workbench bench --quick --no-app --team --json                         # the same, in the bench report

Everything runs on this machine and nothing is downloaded: a real OpenID Connect provider
(oidc-provider-mock, in a thread on 127.0.0.1, one predefined user per session), the real app
(`python -m ui.serve`, as `make run` starts it) with an `[auth]` secrets file pointing at that
provider and a roles file making every session's user an annotator, in a scratch workspace. The
label ledger is the workspace's SQLite file, or the PostgreSQL database WORKBENCH_DATABASE_URL
names when it is set (as a team would run it).

One headless Chromium (Debian's /usr/bin/chromium, asyncio Playwright: one event loop drives every
session, which is lighter on 2 cores than a browser per thread) with one browser context per
session, each signed in as its own user. Sessions sign in concurrently, wait for each other, then
all work at once, `rounds` times each:
- review_open: the sidebar link "Review labels" is clicked, until the queue's example is shown with
  its Grad-CAM maps and the page's run has ended;
- review_filter: one given label is picked in the queue's "Given label" filter (session i takes
  class i, so a team splits the queue instead of deciding on the same example), until the queue's
  progress shows the new total and its example is shown with its maps. A pick the browser's
  dropdown did not take (no tag in the box after 15 s: nothing was sent to the app) is made again,
  at most twice, and counted in `filter_repicks`;
- review_decision: "Keep label" is clicked, until the next example is shown with its maps;
- explain_open: the sidebar link "Explain image" is clicked, until the Grad-CAM overlay has loaded
  and the trust panel's figures are visible.
Each latency runs from the click to the awaited element (browser-side rendering included). An
error is any exception (a timeout included) or a Streamlit exception box or error alert on the
page; a session stops at its first error. sign_in (from opening the app to "Signed in as") is
reported on its own, not in `overall`: it measures the mock provider as much as the app.

A warm-up session (unmeasured) runs first, so the one-off costs (TensorFlow, the model, the
queue's audit, shap's warm-up) are not charged to anyone; then a single session (the reference),
then N sessions, on the same server. The report gives, per run, the number of interactions, the
median and 95th percentile (numpy's linear interpolation) per page and overall, the errors, the
1/5/15-minute load averages at its start and end and the server's resident memory; and the ratios
of the N-session median and p95 to the single session's.
"""
from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from benchmarks.app_bench import CHROMIUM, CHROMIUM_ARGS, RUN_ENDED, AppServer, free_port

PAGES = ("review_open", "review_filter", "review_decision", "explain_open")
COOKIE_SECRET = "a-load-check-cookie-secret-of-enough-length-0123456789"
ERROR_SELECTOR = '[data-testid="stException"], [data-testid="stAlertContentError"]'
STATE = """() => { const main = document.querySelector('[data-testid="stMain"]');
    const imgs = main ? [...main.querySelectorAll('img')] : [];
    return 'script=' + document.querySelector('[data-testid="stApp"]')?.getAttribute('data-test-script-state')
      + ' stale=' + document.querySelectorAll('[data-stale="true"]').length
      + ' images=' + imgs.length + ' unloaded=' + imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length
      + ' headings=' + JSON.stringify([...(main ? main.querySelectorAll('h1, h3') : [])].map(h => h.textContent)); }"""


def user(prefix: str, number: int) -> dict[str, str]:
    """The provider's predefined user `prefix`NN, with an e-mail and a display name."""
    sub = f"{prefix}{number:02d}"
    return {"sub": sub, "email": f"{sub}@example.org", "name": f"{prefix.title()} {number:02d}"}


class OidcProvider:
    """oidc-provider-mock's WSGI app served by werkzeug on 127.0.0.1 in a thread; `users` are its
    predefined users (one button each on its authorisation form)."""

    def __init__(self, users: list[dict[str, str]]) -> None:
        self.users = users
        self.url = ""

    def __enter__(self) -> "OidcProvider":
        import logging

        import werkzeug.serving
        from oidc_provider_mock import User, app

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request on stderr

        wsgi = app(user_claims=[User(sub=u["sub"], claims={"email": u["email"], "name": u["name"]})
                                for u in self.users])
        self._server = werkzeug.serving.make_server("127.0.0.1", free_port(), wsgi, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)


class SignedInAppServer(AppServer):
    """The app with sign-in on: `[auth]` pointing at `provider_url` and a roles file giving `roles`
    (e-mail -> role; everyone else is a viewer), in a scratch workspace (or `workspace`). The ledger
    follows WORKBENCH_DATABASE_URL when it is set (inherited from this process's environment, or
    passed in `env`)."""

    def __init__(self, provider_url: str, roles: dict[str, str], workspace: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        super().__init__(workspace)
        root = self.workspace.parent
        root.mkdir(parents=True, exist_ok=True)
        self.env = dict(env or {})
        self.secrets = root / "secrets.toml"
        self.secrets.write_text(
            "[auth]\n"
            f'redirect_uri = "{self.url}/oauth2callback"\n'
            f'cookie_secret = "{COOKIE_SECRET}"\n'
            'client_id = "workbench"\nclient_secret = "workbench-secret"\n'
            f'server_metadata_url = "{provider_url}/.well-known/openid-configuration"\n')
        self.roles = root / "roles.toml"
        self.roles.write_text('default = "viewer"\n[users]\n'
                              + "".join(f'"{email}" = "{role}"\n' for email, role in roles.items()))

    def start(self) -> "SignedInAppServer":
        super().start(extra_env={"WORKBENCH_ROLES": str(self.roles), **self.env},
                      extra_args=["--secrets.files", str(self.secrets)])
        return self


@dataclass
class SessionLog:
    """What one session measured: (page, seconds) per interaction, and its errors."""
    sub: str
    latencies: list[tuple[str, float]] = field(default_factory=list)
    sign_in_s: float | None = None
    errors: list[str] = field(default_factory=list)
    rounds_done: int = 0
    websockets_after_sign_in: int = 0  # websockets the page opened while working: more than 0 means a reconnect
    # Filter picks the browser's dropdown did not take (no tag appeared in the box, so nothing was
    # sent to the app), made again; a pick the app received and then lost is an error.
    repicks: int = 0


class AppError(RuntimeError):
    """The page showed a Streamlit exception box or error alert."""


class Timeout(RuntimeError):
    """An awaited state did not come in time (the message says which)."""


async def _until(page: Any, what: str, script: str, arg: Any, timeout_ms: float) -> None:
    """page.wait_for_function, failing with `what` in the message (which wait timed out)."""
    try:
        await page.wait_for_function(script, arg=arg, timeout=timeout_ms)
    except Exception as exc:
        if "Timeout" not in exc.__class__.__name__:
            raise
        try:  # what the page looked like then, to tell a slow server from a stuck page
            state = await page.evaluate(STATE)
        except Exception as inner:
            state = f"page state unavailable: {inner.__class__.__name__}"
        raise Timeout(f"{what} (not within {timeout_ms / 1000:g} s; {state})") from None


async def _check_errors(page: Any) -> None:
    errors = page.locator(ERROR_SELECTOR)
    for index in range(await errors.count()):
        if await errors.nth(index).is_visible():
            raise AppError((await errors.nth(index).inner_text())[:500])


async def _settled(page: Any, timeout_ms: float) -> None:
    """Wait until the page's script run has ended (Streamlit's script state, see RUN_ENDED)."""
    await _until(page, "the run to end", RUN_ENDED, None, timeout_ms)


async def _images_loaded(page: Any, scope: str, timeout_ms: float) -> None:
    """Every <img> under `scope` has loaded with a non-zero size (the maps are drawn, not just sent)."""
    await _until(page, f"every image under {scope} loaded",
        """scope => { const imgs = [...document.querySelectorAll(scope + ' img')];
                      return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0); }""",
        scope, timeout_ms)


async def _example_shown(page: Any, before: str | None, timeout_ms: float) -> str:
    """Wait for the Review page's example (a heading 'ID · N waiting' other than `before`) with its
    Grad-CAM maps, after the run ended; return the heading."""
    await _until(page, "a new example heading",
        """before => { const h = [...document.querySelectorAll('[data-testid="stMain"] h3')]
                           .find(e => e.textContent.includes('waiting'));
                       return h && h.textContent !== before && !h.closest('[data-stale="true"]'); }""",
        before, timeout_ms)
    await _settled(page, timeout_ms)
    await page.get_by_text(re.compile(r"^Grad-CAM for the given label")).first.wait_for(
        state="visible", timeout=timeout_ms)
    await _images_loaded(page, '[data-testid="stMain"]', timeout_ms)
    await _check_errors(page)
    return await _heading(page)


async def _heading(page: Any) -> str:
    return await page.locator('[data-testid="stMain"] h3').filter(has_text="waiting").first.text_content()


async def _progress(page: Any) -> str:
    """The queue's progress text ('N of M reviewed')."""
    return await page.locator('[data-testid="stMain"] [data-testid="stProgress"]').first.text_content()


async def _sign_in(page: Any, url: str, sub: str, timeout_ms: float) -> None:
    await page.goto(url, wait_until="domcontentloaded", timeout=timeout_ms)
    await page.locator("button:enabled", has_text="Sign in").first.click(timeout=timeout_ms)
    await page.locator(f'button[name="sub"][value="{sub}"]').click(timeout=timeout_ms)  # the provider's form
    await page.get_by_text("Signed in as").first.wait_for(state="visible", timeout=timeout_ms)


async def _nav(page: Any, title: str, timeout_ms: float) -> None:
    await page.locator('[data-testid="stSidebarNav"]').get_by_role(
        "link", name=re.compile(re.escape(title))).click(timeout=timeout_ms)


REPICKS = 2  # filter picks made again when the dropdown did not take one (SessionLog.repicks)


async def _pick_given_label(page: Any, label_index: int, timeout_ms: float) -> bool:
    """Pick one class in the queue's "Given label" filter; True once its tag shows in the box (the
    browser took the pick and sends it to the app), False when none appeared within 15 s."""
    given = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Given label")
    await given.locator("input").first.click(timeout=timeout_ms)
    options = page.get_by_role("option")
    await options.first.wait_for(timeout=timeout_ms)
    labels = [text.strip() for text in await options.all_text_contents() if text.strip() != "Select all"]
    label = labels[label_index % len(labels)]
    await options.filter(has_text=re.compile(f"^{re.escape(label)}$")).first.click(timeout=timeout_ms)
    await page.keyboard.press("Escape")
    # The dropdown must be gone before the next click, or that click would only close it.
    await _until(page, "the filter's dropdown closed", "() => !document.querySelector('[role=\"listbox\"]')",
                 None, timeout_ms)
    # Leave the filter's input, so the next click is not taken as a click out of the dropdown.
    await page.evaluate("() => document.activeElement && document.activeElement.blur()")
    tag = given.locator(f'[data-testid="stMultiSelectTagsContainer"] [data-tag][aria-label="{label}"]')
    try:
        await tag.first.wait_for(state="visible", timeout=15_000)
    except Exception as exc:
        if "Timeout" not in exc.__class__.__name__:
            raise
        return False
    return True


async def _round(page: Any, log: SessionLog, label_index: int, timeout_ms: float) -> None:
    """One pass through the pages; each latency is appended as soon as it is measured."""
    def timed(name: str, started: float) -> None:
        log.latencies.append((name, time.perf_counter() - started))

    started = time.perf_counter()
    await _nav(page, "Review labels", timeout_ms)
    await page.get_by_role("heading", name="Review labels").wait_for(timeout=timeout_ms)
    heading = await _example_shown(page, None, timeout_ms)
    timed("review_open", started)

    started = time.perf_counter()
    progress = await _progress(page)
    for attempt in range(1 + REPICKS):
        if await _pick_given_label(page, label_index, timeout_ms):
            break
        if attempt == REPICKS:
            raise Timeout(f"the filter's dropdown took no pick in {1 + REPICKS} attempts")
        log.repicks += 1
    # The filtered queue's first example may be the one already shown: its total changes, though.
    await _until(page, "the filtered queue's progress",
        """before => { const p = document.querySelector('[data-testid="stMain"] [data-testid="stProgress"]');
                       return p && p.textContent !== before && !p.closest('[data-stale="true"]'); }""",
        progress, timeout_ms)
    heading = await _example_shown(page, None, timeout_ms)
    timed("review_filter", started)

    started = time.perf_counter()
    await page.locator("button:enabled", has_text="Keep label").first.click(timeout=timeout_ms)
    await _example_shown(page, heading, timeout_ms)
    timed("review_decision", started)
    saved = page.get_by_text(re.compile(r"^Saved:"))
    if not await saved.count():  # the decision must have been stored, not just the page moved on
        raise AppError("no 'Saved:' message after Keep label")

    started = time.perf_counter()
    await _nav(page, "Explain image", timeout_ms)
    overlay = page.locator('[data-testid="stImage"]').filter(
        has=page.get_by_text(re.compile(r"^gradcam(\+\+)? for"))).locator("img").first
    await overlay.wait_for(state="visible", timeout=timeout_ms)
    await _until(page, "the Grad-CAM overlay loaded", "img => img.complete && img.naturalWidth > 0",
                 await overlay.element_handle(), timeout_ms)
    await page.locator('[data-testid="stMetricLabel"]').filter(has_text="Deletion area").first.wait_for(
        state="visible", timeout=timeout_ms)
    await _check_errors(page)
    timed("explain_open", started)


async def _session(browser: Any, url: str, who: dict[str, str], label_index: int, rounds: int,
                   signed_in: Callable[[], Any], timeout_ms: float, artifacts: Path | None) -> SessionLog:
    log = SessionLog(who["sub"])
    context = await browser.new_context(viewport={"width": 1440, "height": 1000})
    try:
        page = await context.new_page()
        page.set_default_timeout(timeout_ms)
        opened = [0]
        page.on("websocket", lambda _socket: opened.__setitem__(0, opened[0] + 1))
        try:
            started = time.perf_counter()
            await _sign_in(page, url, who["sub"], timeout_ms)
            log.sign_in_s = time.perf_counter() - started
            await _settled(page, timeout_ms)  # the landing page's run (unmeasured) ends first
        except Exception as exc:
            log.errors.append(f"sign_in: {exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        await signed_in()  # everyone starts working at once (also after a failed sign-in: no deadlock)
        if log.errors:
            return log
        at_start = opened[0]
        for _ in range(rounds):
            try:
                await _round(page, log, label_index, timeout_ms)
                log.rounds_done += 1
            except Exception as exc:
                step = PAGES[len(log.latencies) % len(PAGES)]
                log.errors.append(f"{step}: {exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
                await _screenshot(page, artifacts, f"{who['sub']}-{step}")
                return log
            finally:
                log.websockets_after_sign_in = opened[0] - at_start
    finally:
        await context.close()
    return log


async def _screenshot(page: Any, artifacts: Path | None, name: str) -> None:
    """What the browser showed when a session failed (best effort: the page may be gone)."""
    if artifacts is None:
        return
    try:
        artifacts.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(artifacts / f"{name}.png"), timeout=10_000)
    except Exception:
        pass


async def _run_sessions(browser: Any, url: str, people: list[dict[str, str]], rounds: int,
                        timeout_ms: float, artifacts: Path | None) -> list[SessionLog]:
    barrier = asyncio.Barrier(len(people))
    return list(await asyncio.gather(*(
        _session(browser, url, who, index, rounds, barrier.wait, timeout_ms, artifacts)
        for index, who in enumerate(people))))


def _figures(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "median_s": None, "p95_s": None, "max_s": None}
    array = np.asarray(values)
    return {"n": len(values), "median_s": round(float(np.median(array)), 3),
            "p95_s": round(float(np.percentile(array, 95)), 3), "max_s": round(float(array.max()), 3)}


def summarise(logs: list[SessionLog], rounds: int) -> dict[str, Any]:
    """Per page and overall latency figures, sign-in figures and errors of one run's sessions."""
    per_page = {name: [s for log in logs for page, s in log.latencies if page == name] for name in PAGES}
    everything = [s for log in logs for _, s in log.latencies]
    errors = [f"{log.sub}: {message}" for log in logs for message in log.errors]
    return {"sessions": len(logs), "rounds": rounds, "interactions": len(everything),
            "expected_interactions": len(logs) * rounds * len(PAGES),
            "errors": len(errors), "error_messages": errors[:20],
            "filter_repicks": sum(log.repicks for log in logs),
            "pages": {name: _figures(values) for name, values in per_page.items()},
            "overall": _figures(everything),
            "sign_in": _figures([log.sign_in_s for log in logs if log.sign_in_s is not None]),
            "per_session": [{"sub": log.sub, "interactions": len(log.latencies), "rounds_done": log.rounds_done,
                             "errors": len(log.errors), "websockets_after_sign_in": log.websockets_after_sign_in,
                             "filter_repicks": log.repicks}
                            for log in logs]}


def _load() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


async def _measure(browser: Any, server: SignedInAppServer, people: list[dict[str, str]], rounds: int,
                   timeout_ms: float, artifacts: Path | None) -> dict[str, Any]:
    load_start = _load()
    started = time.perf_counter()
    logs = await _run_sessions(browser, server.url, people, rounds, timeout_ms, artifacts)
    return {**summarise(logs, rounds), "wall_s": round(time.perf_counter() - started, 1),
            "load_average_start": load_start, "load_average_end": _load(),
            "server_rss_mb_end": round(server.rss_mb(), 1)}


def _ratio(team: dict[str, Any], single: dict[str, Any], key: str) -> float | None:
    a, b = team["overall"][key], single["overall"][key]
    return round(a / b, 2) if a is not None and b else None


async def _run(sessions: int, rounds: int, timeout: float, warm_up: bool, log: Callable[[str], None],
               artifacts: Path | None) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(f"{CHROMIUM} is missing; install Debian's chromium (apt-get install chromium)")
    warm, solo = user("warmup", 0), user("solo", 1)
    team = [user("member", i) for i in range(1, sessions + 1)]
    everyone = [warm, solo, *team]
    timeout_ms = timeout * 1000
    roles = {u["email"]: "annotator" for u in everyone}
    with OidcProvider(everyone) as provider, SignedInAppServer(provider.url, roles) as server:
        server.wait_healthy()
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                warm_up_run = None
                if warm_up:
                    log("warm-up session (not measured: model load, the queue's audit, first maps)…")
                    warm_up_run = await _measure(browser, server, [warm], 1, timeout_ms, artifacts)
                    log(f"warm-up: {warm_up_run['overall']} errors={warm_up_run['errors']}")
                log("single session…")
                single = await _measure(browser, server, [solo], rounds, timeout_ms, artifacts)
                log(f"single: {single['overall']} errors={single['errors']}")
                log(f"{sessions} sessions at once…")
                many = await _measure(browser, server, team, rounds, timeout_ms, artifacts)
                log(f"{sessions} sessions: {many['overall']} errors={many['errors']}")
            finally:
                await browser.close()
        failed = (warm_up_run or {}).get("errors", 0) + single["errors"] + many["errors"]
        if failed and artifacts is not None and server.log_path.exists():
            artifacts.mkdir(parents=True, exist_ok=True)
            (artifacts / "streamlit.log").write_bytes(server.log_path.read_bytes()[-200_000:])
    database = os.environ.get("WORKBENCH_DATABASE_URL", "")
    return {
        "benchmark": "team_load",
        "ledger": "postgresql" if database.startswith("postgres") else ("sqlite" if not database else "other"),
        "cpus": os.cpu_count(),
        "pages": list(PAGES),
        "warm_up": warm_up_run,
        "single": single,
        "team": many,
        "ratio_median": _ratio(many, single, "median_s"),
        "ratio_p95": _ratio(many, single, "p95_s"),
        "errors": single["errors"] + many["errors"],
    }


def run(sessions: int = 10, rounds: int = 3, timeout: float = 180.0, warm_up: bool = True,
        log: Callable[[str], None] = lambda message: None, artifacts: Path | None = None) -> dict[str, Any]:
    """The load check's report (see the module docstring). `timeout` bounds each awaited element, in
    seconds; a failed session's screenshot and the server's log (when anything failed) go to `artifacts`."""
    if sessions < 1 or rounds < 1:
        raise ValueError("sessions and rounds must be at least 1")
    def measure() -> dict[str, Any]:
        return asyncio.run(_run(sessions, rounds, timeout, warm_up, log, artifacts))

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return measure()
    # Called from a thread that already runs an event loop (sync Playwright's, in a test session).
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(measure).result()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--artifacts", type=Path, default=None, help="folder for failure screenshots and the server log")
    args = parser.parse_args(argv)
    report = run(args.sessions, args.rounds, args.timeout, artifacts=args.artifacts,
                 log=lambda message: print(f"team_load: {message}", file=sys.stderr, flush=True))
    print(json.dumps(report, indent=2))
    return 0 if report["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
