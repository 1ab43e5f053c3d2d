"""Real-browser fixtures: the real app (`streamlit run app.py`) on a free port with a fresh workspace,
and Debian's Chromium driven by Playwright. Screenshots go to test-artifacts/e2e/<step>.png."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks import app_bench

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(app_bench.CHROMIUM).exists():
        pytest.skip(f"{app_bench.CHROMIUM} is missing: install Debian's chromium (`apt-get install chromium`; "
                    ".ci/run does this) to run the real-browser tests")
    return app_bench.CHROMIUM


@pytest.fixture(scope="session")
def app_server(chromium_path, tmp_path_factory):
    """The whole app in its own process and workspace, for every e2e test of the session."""
    root = tmp_path_factory.mktemp("e2e")
    server = app_bench.AppServer(workspace=root / "workspace", log_path=root / "streamlit.log")
    server.start()
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()
        log = root / "streamlit.log"
        if log.exists():
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            (ARTIFACTS / "streamlit.log").write_bytes(log.read_bytes()[-200_000:])


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = app_bench.launch_browser(playwright)
        yield instance
        instance.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def page(browser, app_server, request):
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(120_000)
    app_bench.wait_for_app(page, app_server.url)
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:  # what the browser showed when the test failed
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"FAILED-{request.node.name}.png"))
    context.close()


@pytest.fixture
def shot():
    """shot(page, "01_step", focus) saves a screenshot (test artifact) and returns its path.

    Streamlit scrolls inside its main container, not the document, so a full-page shot would
    still show only the top: `focus` (a locator) is scrolled to the middle of the view first.
    """
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(page, step: str, focus=None, block: str = "center") -> Path:
        if focus is not None:
            focus.first.evaluate("(el, block) => el.scrollIntoView({block, inline: 'nearest'})", block)
            page.wait_for_timeout(400)  # let images and charts settle after the scroll
        try:  # images in view finish loading (lazy ones out of view never do: hence the bound)
            page.wait_for_function(
                """() => [...document.images].every(img => img.complete ||
                     img.getBoundingClientRect().bottom < 0 || img.getBoundingClientRect().top > innerHeight)""",
                timeout=5_000)
        except Exception:
            pass
        path = ARTIFACTS / f"{step}.png"
        page.screenshot(path=str(path))
        return path

    return take


def pytest_collection_modifyitems(items):
    # Every test here drives the real app: mark them so `-m "not e2e"` skips them quickly.
    here = str(Path(__file__).parent)
    for item in items:
        if str(item.fspath).startswith(here + os.sep):
            item.add_marker(pytest.mark.e2e)
