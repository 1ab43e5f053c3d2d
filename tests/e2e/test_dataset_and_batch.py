"""The Dataset and Batch pages in a real browser: chart clicks, uploads, progress and downloads."""
from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path

import pytest

from benchmarks import app_bench

EXAMPLES = Path(__file__).resolve().parents[2] / "sample_data" / "examples"
MODEL = "shapes-shortcut"

# Page coordinates of the category cell (row `t`, column `p`) of a plotly chart, from its own axes.
_CELL_JS = """(el, [t, p]) => {
  const gd = el.querySelector('.js-plotly-plot'); const fl = gd._fullLayout; const box = gd.getBoundingClientRect();
  return [box.x + fl.xaxis._offset + fl.xaxis.l2p(p), box.y + fl.yaxis._offset + fl.yaxis.l2p(t)];
}"""
# The most isolated point of the map (so a click cannot hit a neighbour): its page position and dataset index.
_POINT_JS = """el => {
  const gd = el.querySelector('.js-plotly-plot'); const fl = gd._fullLayout; const box = gd.getBoundingClientRect();
  const pts = [];
  for (const tr of gd._fullData) { for (let i = 0; i < tr.x.length; i++) {
    pts.push([fl.xaxis._offset + fl.xaxis.l2p(tr.x[i]), fl.yaxis._offset + fl.yaxis.l2p(tr.y[i]), tr.customdata[i]]); } }
  let best = null, bestGap = -1;
  for (const a of pts) {
    if (a[0] < 20 || a[1] < 20 || a[0] > box.width - 20 || a[1] > box.height - 60) continue;
    let gap = Infinity;
    for (const b of pts) { if (a !== b) gap = Math.min(gap, Math.hypot(a[0] - b[0], a[1] - b[1])); }
    if (gap > bestGap) { bestGap = gap; best = a; }
  }
  return [box.x + best[0], box.y + best[1], Number(best[2]), bestGap];
}"""


def _main(page):
    return page.locator('[data-testid="stMain"]')


def _wait_idle(page, timeout: int = 120_000) -> None:
    """Until Streamlit's "Running…" indicator is gone and no element is left over from the previous run."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        f"() => ({app_bench.RUN_ENDED})() && !document.querySelector('[data-stale=\"true\"]')", timeout=timeout)


@pytest.mark.timeout(900)
def test_dataset_page_clicks_and_report(page, shot, tmp_path):
    app_bench.open_page(page, "Dataset")
    app_bench.choose_sidebar_model(page, MODEL)
    confusion = page.locator('.st-key-dataset_confusion_chart:not([data-stale="true"])')
    app_bench.wait_visible(page, confusion.locator(".js-plotly-plot"), 300)
    _wait_idle(page)

    # Clicking a confusion-matrix cell lists its examples (here the diagonal cell of the third class).
    confusion.scroll_into_view_if_needed()
    x, y = confusion.evaluate(_CELL_JS, [2, 2])
    page.mouse.click(x, y)
    app_bench.wait_visible(page, _main(page).get_by_text(re.compile(r"^Truth triangle, predicted triangle")))
    shot(page, "10_dataset_confusion", confusion, block="start")

    # Clicking a point of the embedding map opens that example with its Grad-CAM overlay.
    embedding = page.locator('.st-key-dataset_embedding_chart:not([data-stale="true"])')
    _wait_idle(page)
    page.get_by_role("radiogroup").filter(has_text="Correct?").get_by_text("Correct?").click()
    _wait_idle(page)
    embedding.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    x, y, index, gap = embedding.evaluate(_POINT_JS)
    assert gap > 3, "no isolated point to click"
    page.mouse.click(x, y)
    example = page.get_by_label(re.compile(r"^Example \(0"))
    page.wait_for_function("([el, n]) => el.value === String(n)", arg=[example.element_handle(), index],
                           timeout=120_000)
    _wait_idle(page)
    overlay = page.locator('[data-testid="stImage"]').filter(has=page.get_by_text(re.compile(r"^gradcam for")))
    app_bench.wait_rendered(overlay.locator("img").first)
    shot(page, "11_dataset_embedding", embedding, block="start")
    shot(page, "12_dataset_example", overlay, block="center")

    # The report downloads as one self-contained HTML file.
    with page.expect_download(timeout=180_000) as download:
        page.get_by_role("button", name=re.compile("Download report")).click()
    path = tmp_path / "report.html"
    download.value.save_as(path)
    text = path.read_text(encoding="utf-8")
    assert "data:image/png;base64," in text and "<script" not in text.lower()
    assert MODEL in text and "Failure slices" in text


def _zip_of_examples() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in ("shape_circle.png", "shape_star.png", "shape_square.jpg", "shape_triangle.png",
                     "shortcut_circle_cue.png"):
            archive.write(EXAMPLES / name, f"examples/{name}")
        archive.writestr("examples/broken.png", b"not an image")
    return buffer.getvalue()


@pytest.mark.timeout(600)
def test_batch_page_upload_run_and_download(page, shot, tmp_path):
    app_bench.open_page(page, "Batch")
    app_bench.choose_sidebar_model(page, MODEL)
    # The model switch reruns the page: upload only once that run has finished, or the
    # uploader of the old run swallows the file.
    app_bench.wait_visible(page, _main(page).get_by_text(re.compile(rf"predicted by {re.escape(MODEL)}")))
    _wait_idle(page)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        files=[{"name": "examples.zip", "mimeType": "application/zip", "buffer": _zip_of_examples()}])
    app_bench.wait_visible(page, _main(page).get_by_text(re.compile(r"6 inputs read, 1 unreadable")))
    _wait_idle(page)
    page.get_by_role("button", name=re.compile(r"Explain 6 inputs")).click()
    csv_button = app_bench.wait_visible(page, page.get_by_role("button", name=re.compile(r"Results \(CSV\)")), 300)
    _wait_idle(page)
    shot(page, "13_batch_results", csv_button, block="center")
    with page.expect_download(timeout=60_000) as download:
        csv_button.click()
    path = tmp_path / "results.csv"
    download.value.save_as(path)
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert len(rows) == 6 and sorted(r["status"] for r in rows).count("ok") == 5
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name=re.compile(r"Overlays \(ZIP, 5 files\)")).click()
    archive = tmp_path / "overlays.zip"
    download.value.save_as(archive)
    assert len(zipfile.ZipFile(archive).namelist()) == 5
