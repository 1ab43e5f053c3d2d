"""The Dataset page on a generated 5,000-example split in a real browser: the first open computes
and stores the split's results (with progress), then a confusion-cell click updates the example
list in under a second (median of three clicks, each from the click to the new list's heading;
the cell's part of the page is a fragment, so nothing else reruns). The same paths at 100,000
examples are timed by `benchmarks/scale_dataset.py`."""
from __future__ import annotations

import os
import re
import statistics
import time

import pytest

from benchmarks import app_bench

N = 5_000
NAME = "shapes-5k"
MODEL = "shapes"
CLASSES = ("circle", "square", "triangle", "star")
# Page coordinates of the category cell (row `t`, column `p`) of a plotly chart, from its own axes.
_CELL_JS = """(el, [t, p]) => {
  const gd = el.querySelector('.js-plotly-plot'); const fl = gd._fullLayout; const box = gd.getBoundingClientRect();
  return [box.x + fl.xaxis._offset + fl.xaxis.l2p(p), box.y + fl.yaxis._offset + fl.yaxis.l2p(t)];
}"""


@pytest.fixture(scope="module")
def scale_server(chromium_path, tmp_path_factory):
    """The app with the 5,000-example scale set on offer (its own process and workspace)."""
    root = tmp_path_factory.mktemp("e2e-scale")
    server = app_bench.AppServer(workspace=root / "workspace", log_path=root / "streamlit.log")
    server.start(extra_env={"WORKBENCH_SCALE_SIZES": str(N)})
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_scale_split_cell_click_answers_within_a_second(browser, scale_server, shot):
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(120_000)
    try:
        app_bench.wait_for_app(page, scale_server.url)
        app_bench.open_page(page, "Dataset")
        app_bench.choose_sidebar_model(page, MODEL)
        main = page.locator('[data-testid="stMain"]')
        main.locator(".st-key-dataset_view_name").locator('[data-testid="stSelectbox"]').click()
        page.get_by_role("option", name=NAME, exact=True).click()
        # The first open runs the batch pass (progress bar), then the page is drawn from the stored table.
        app_bench.wait_visible(page, main.get_by_text(f"{N:,}", exact=True), 400)
        app_bench.wait_visible(page, main.get_by_text(re.compile(rf"All {N:,} points drawn")), 120)
        app_bench.wait_run_ended(page)
        confusion = page.locator('.st-key-dataset_confusion_chart:not([data-stale="true"])')
        confusion.scroll_into_view_if_needed()
        page.wait_for_timeout(500)

        timings = []
        for t, p in ((0, 1), (3, 3), (2, 0)):
            heading = main.get_by_text(re.compile(rf"^Truth {CLASSES[t]}, predicted {CLASSES[p]}:"))
            x, y = confusion.evaluate(_CELL_JS, [t, p])
            started = time.perf_counter()
            page.mouse.click(x, y)
            heading.first.wait_for(state="visible", timeout=30_000)
            shown = time.perf_counter() - started
            app_bench.wait_run_ended(page)
            ended = time.perf_counter() - started
            timings.append((shown, ended))
            # The list is that cell's: every thumbnail's caption names the predicted class. On a loaded
            # machine the previous cell's thumbnails can still be on screen for a moment after the
            # heading changed (CI, 2026-12-03), so give the list a few seconds to be replaced.
            captions = main.locator('[data-testid="stImageCaption"]').filter(has_text=re.compile(rf"^{NAME}-"))
            deadline = time.monotonic() + 15
            while True:
                texts = captions.all_inner_texts()
                if all(text.endswith(CLASSES[p]) for text in texts) or time.monotonic() > deadline:
                    break
                page.wait_for_timeout(250)
            if texts:  # an empty off-diagonal cell lists nothing
                assert all(text.endswith(CLASSES[p]) for text in texts), texts
            page.wait_for_timeout(300)
        shot(page, "14_dataset_scale_cell", confusion, block="start")

        # Choosing the worst slice (its row's selection marker) lists its mistakes; that part is a fragment too.
        table = page.locator(".st-key-dataset_slices_table")
        table.evaluate("el => el.scrollIntoView({block: 'center'})")
        page.wait_for_timeout(800)
        box = table.bounding_box()
        started = time.perf_counter()
        page.mouse.click(box["x"] + 14, box["y"] + 35 + 17)  # below the header row, in the marker column
        app_bench.wait_visible(page, main.get_by_text(re.compile(r"^Mistakes in “")), 60)
        slice_shown = time.perf_counter() - started
        app_bench.wait_run_ended(page)
        shot(page, "15_dataset_scale_slice", main.get_by_text(re.compile(r"^Mistakes in “")), block="center")
        print(f"slice row to its mistakes: {slice_shown:.3f} s")

        # "Open" in that (fragment's) list still opens the example in the panel above it (a full run).
        first = main.locator('[data-testid="stImageCaption"]').filter(has_text=re.compile(rf"^{NAME}-")).last
        opened_id = first.inner_text().split(" ·")[0].strip()
        index = int(opened_id.rsplit("-", 1)[1])  # ids are "<name>-<index>"
        main.locator(f".st-key-slice_open_{index} button").click()
        app_bench.wait_visible(page, main.locator("code").filter(has_text=opened_id), 60)
        app_bench.wait_run_ended(page)
        assert page.get_by_label(re.compile(r"^Example \(0")).input_value() == str(index)
        load = os.getloadavg()[0]
        print(f"click to list, click to run end (s), load {load:.1f}:",
              [(round(a, 3), round(b, 3)) for a, b in timings])
        # The median of three clicks: on 2 shared cores one click can lose a second to other work.
        assert statistics.median(shown for shown, _ in timings) < 1.0, (timings, load)
    finally:
        context.close()
