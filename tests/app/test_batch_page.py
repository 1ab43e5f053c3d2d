"""AppTest of the Batch page: a zip of images and a CSV of texts, run with results and downloads."""
import io
import zipfile
from pathlib import Path

from tests.app.conftest import start_app

PAGE = "pages/batch.py"
EXAMPLES = Path(__file__).resolve().parents[2] / "sample_data" / "examples"


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in ("shape_circle.png", "shape_star.png", "shape_square.jpg"):
            archive.write(EXAMPLES / name, f"imgs/{name}")
        archive.writestr("imgs/broken.png", b"not an image")
        archive.writestr("__MACOSX/._x.png", b"junk")
    return buffer.getvalue()


def _metrics(at):
    return {m.label: m.value for m in at.metric}


def test_zip_of_images_is_explained_with_downloads():
    at = start_app(PAGE, any_model="shapes")
    assert not at.exception, at.exception
    assert any("Upload a ZIP" in info.value for info in at.info)
    at.file_uploader(key="batch_zip").set_value(("pics.zip", _zip(), "application/zip")).run()
    assert not at.exception, at.exception
    assert any("4 inputs read, 1 unreadable" in c.value for c in at.caption)
    assert at.selectbox(key="batch_method").value == "gradcam"
    at.button(key="batch_run").click().run()
    assert not at.exception, at.exception
    assert _metrics(at)["Explained"] == "3" and _metrics(at)["Unreadable"] == "1"
    table = at.dataframe[0].value
    assert sorted(table["status"]) == ["error", "ok", "ok", "ok"]
    assert table[table["status"] == "ok"]["overlay"].str.endswith("_gradcam.png").all()
    labels = [element.proto.label for element in at.get("download_button")]
    assert labels == ["⬇️ Results (CSV)", "⬇️ Overlays (ZIP, 3 files)"]
    assert len([e for e in at.get("image")]) >= 1  # the overlay preview


def test_csv_of_texts_predictions_only():
    at = start_app(PAGE, any_model="headlines")
    assert not at.exception, at.exception
    data = "id;headline;source\n1;Acme shares plunge after profit warning;x\n2;Globex beats forecasts;y\n".encode()
    at.file_uploader(key="batch_csv").set_value(("news.csv", data, "text/csv")).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="batch_text_column").value == "headline"
    at.selectbox(key="batch_method").set_value("none")
    at.button(key="batch_run").click().run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert table["input"].tolist() == ["line 2", "line 3"]
    assert set(table["predicted"]) <= {"negative", "neutral", "positive"}
    labels = [element.proto.label for element in at.get("download_button")]
    assert labels == ["⬇️ Results (CSV)"]


def test_a_damaged_upload_shows_one_error():
    at = start_app(PAGE, any_model="shapes")
    at.file_uploader(key="batch_zip").set_value(("pics.zip", b"PK\x03\x04 broken", "application/zip")).run()
    assert not at.exception
    assert len(at.error) == 1 and "ZIP" in at.error[0].value
