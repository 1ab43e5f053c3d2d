"""A newcomer's first visit to a freshly started server: while TensorFlow and the default model
load, the Explain image page says what it waits for (never a blank area) and shows the default page's
Grad-CAM overlay and its trust figures, stored with the sample model (written by `workbench train`)
or, for a model that carries none, computed by the start-up worker (workbench/first_page.py); then the
live page with its controls and its own map. No timing is asserted: speed is the app benchmark's
(benchmarks/app_bench.py)."""
from __future__ import annotations

import re

import pytest

from benchmarks import app_bench

pytestmark = pytest.mark.e2e


def test_the_first_page_shows_progress_then_the_map_and_its_trust_figures(browser, shot):
    # Its own fresh server (the shared one has started long ago), as for a model that ships no first page.
    with app_bench.AppServer(env={"WORKBENCH_SHIPPED_FIRST_MAPS": "off"}) as server:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            app_bench.wait_for_app(page, server.url)
            progress = page.get_by_text(re.compile(r"^Step \d of 3: "))
            app_bench.wait_visible(page, progress.or_(app_bench.gradcam_image(page)))
            shot(page, "first_visit_01_waiting")  # what a newcomer sees while the server starts
            # Either the message is up (the usual case: TensorFlow alone takes seconds) or, on a very fast
            # start, the map already is; a blank main area matches neither and times out.
            width, height = app_bench.wait_rendered(app_bench.gradcam_image(page))
            assert width > 0 and height > 0
            assert app_bench.map_source(page) == "start-up worker"  # before the server's own model was ready
            app_bench.wait_visible(page, app_bench.trust_figures(page))
            shot(page, "first_visit_02_first_map_from_the_worker")
            app_bench.wait_visible(page, app_bench.live_controls(page))
            app_bench.wait_rendered(app_bench.gradcam_image(page))
            assert app_bench.map_source(page) == "server"  # the live page replaced the worker's map
            app_bench.wait_visible(page, app_bench.trust_figures(page))
            shot(page, "first_visit_03_live_page")
            assert progress.count() == 0  # the message is gone once the model is ready
            assert page.get_by_text("computed at start-up").count() == 0
            page.wait_for_timeout(500)  # the log line is written as the start-up's second phase ends
            account = app_bench.preload_figures(server.log_path.read_text(errors="replace"))
            assert account is not None, server.log_path.read_text(errors="replace")[-2000:]
            # The map's phase ended before the trust phase, and the preload began once Streamlit listened.
            assert 0 < account["map_ready_s"] <= account["total_s"] and account["started_s"] > 0
        finally:
            page.close()


def test_a_sample_model_shows_its_stored_first_map_while_the_server_starts(browser, shot):
    with app_bench.AppServer() as server:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            app_bench.wait_for_app(page, server.url)
            app_bench.wait_rendered(app_bench.gradcam_image(page))
            # Drawn only while the page waits for the server's model (ui/loaders.py); no worker was needed.
            assert app_bench.map_source(page) == "stored with the model"
            app_bench.wait_visible(page, app_bench.trust_figures(page))
            shot(page, "first_visit_04_stored_first_map")
            app_bench.wait_visible(page, app_bench.live_controls(page))
            app_bench.wait_rendered(app_bench.gradcam_image(page))
            assert app_bench.map_source(page) == "server"
            assert not (server.workspace / "cache" / "first_page" / "worker.log").exists()
        finally:
            page.close()
