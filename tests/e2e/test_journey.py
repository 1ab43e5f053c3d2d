"""The main journey in a real browser: explain an image, compare methods, correct a label,
retrain, promote, and see the new version in the sidebar. One screenshot per step."""
from __future__ import annotations

import re

import pytest

from benchmarks import app_bench

LONG = 600_000  # ms: a retrain on a loaded 2-core machine
MODEL = "digits"  # the fastest sample model to retrain


def _main(page):
    return page.locator('[data-testid="stMain"]')


def _sidebar(page):
    return page.locator('[data-testid="stSidebar"]')


def _choose_example(page, number: int) -> None:
    """Type a sample number on Explain image and wait until that example is on screen."""
    box = page.get_by_label(re.compile(r"^Example \(0"))
    box.fill(str(number))
    box.press("Enter")
    # The input's caption names the example: wait for the rerun to show the new one.
    page.wait_for_function(
        """n => [...document.querySelectorAll('[data-testid="stImage"]')].some(
               el => /· true label/.test(el.innerText)) &&
             document.querySelector('[data-testid="stApp"]').getAttribute('data-test-script-state') === 'notRunning'""",
        arg=number, timeout=120_000)


@pytest.mark.timeout(1800)
def test_main_journey(page, shot):
    # 1. Explain image: a sample image and its Grad-CAM overlay, really rendered.
    _main(page).get_by_text("Explain image").first.wait_for()
    app_bench.choose_sidebar_model(page, MODEL)
    _choose_example(page, 5)
    overlay = app_bench.gradcam_image(page)
    width, height = app_bench.wait_rendered(overlay)
    assert width > 0 and height > 0
    shot(page, "01_explain_image", overlay)

    # 2. The compare view: every method side by side.
    page.get_by_role("tab", name="Compare").click()
    agreement = app_bench.wait_visible(page, _main(page).get_by_text("How far the methods agree"), LONG / 1000)
    shot(page, "02_compare", agreement, block="end")

    # 3. Review: type a name once, then correct the first label in the queue.
    app_bench.open_page(page, "Review labels")
    name_box = _sidebar(page).get_by_label("Your name (for label corrections)", exact=True)
    name_box.fill("e2e-tester")
    name_box.press("Enter")
    take = app_bench.wait_visible(page, page.get_by_role("button", name=re.compile(r"^Take model's label")), LONG / 1000)
    page.wait_for_function("b => !b.disabled", arg=take.element_handle(), timeout=60_000)
    app_bench.wait_run_ended(page)  # a click while the page still moves can land beside the button
    shot(page, "03_review_before", take)
    take.click()
    saved = app_bench.wait_visible(page, _main(page).get_by_text(re.compile(r"^Saved:")))
    shot(page, "04_review_saved", saved)

    # 4. Retrain quickly from that correction and watch the job finish.
    app_bench.open_page(page, "Retrain")
    app_bench.wait_run_ended(page)
    _main(page).get_by_text("Training settings").click()
    _main(page).get_by_text(re.compile(r"^Quick trial run")).click()
    app_bench.wait_run_ended(page)
    page.get_by_role("button", name=re.compile("Start retraining")).click()
    app_bench.wait_visible(page, _main(page).get_by_text("Retraining…"))
    shot(page, "05_retrain_running")
    result = app_bench.wait_visible(page, _main(page).get_by_text(re.compile(rf"^Result: {MODEL} v2")), LONG / 1000)
    shot(page, "06_retrain_done", result, block="start")

    # 5. Promote the candidate; the sidebar now says v2 is in use.
    app_bench.wait_run_ended(page)
    page.get_by_role("button", name=re.compile(r"Promote v2")).click()
    app_bench.wait_visible(page, _sidebar(page).get_by_text(re.compile(r"Version in use:\s*v2")))
    shot(page, "07_promoted")
