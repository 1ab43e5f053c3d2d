"""A newcomer's first visit to a freshly started server: while TensorFlow and the default model
load, the Explain image page says what it waits for (never a blank area); then the Grad-CAM overlay
of the default page appears, and its trust figures. No timing is asserted: speed is the app
benchmark's (benchmarks/app_bench.py)."""
from __future__ import annotations

import re

import pytest

from benchmarks import app_bench

pytestmark = pytest.mark.e2e


def test_the_first_page_shows_progress_then_the_map_and_its_trust_figures(browser, shot):
    with app_bench.AppServer() as server:  # its own fresh server: the shared one has started long ago
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
            app_bench.wait_visible(page, app_bench.trust_figures(page))
            shot(page, "first_visit_02_map_and_trust")
            assert progress.count() == 0  # the message is gone once the model is ready
            page.wait_for_timeout(500)  # the log line is written as the start-up's second phase ends
            account = app_bench.preload_figures(server.log_path.read_text(errors="replace"))
            assert account is not None, server.log_path.read_text(errors="replace")[-2000:]
            # The map's phase ended before the trust phase, and the preload began once Streamlit listened.
            assert 0 < account["map_ready_s"] <= account["total_s"] and account["started_s"] > 0
        finally:
            page.close()
