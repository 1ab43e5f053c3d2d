"""Hostile uploads through the real app (AppTest): every file gets a clear error or a correct
result and the app never shows an exception; nothing is stored by a refused upload.

Covers the Explain image page (every file of the hostile corpus) and the "Your model & data"
page (malicious model files, hostile archives and CSVs, then the good paths end to end)."""
from __future__ import annotations

import io
import json
import zipfile

import pytest
from PIL import Image

from models import store
from tests.app.conftest import start_app
from tests.models import byo_models as bm

try:
    from tests.workbench import hostile
except ImportError:
    import hostile

PAGE = "pages/bring_your_own.py"
VALID_IMAGES = {
    "rgba_png", "la_png", "palette_png", "cmyk_tiff", "cmyk_jpeg", "grey16_png", "grey_png",
    "bilevel_png", "exif_rotated_jpeg", "animated_gif",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return hostile.build_corpus(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    files = {key: build(folder) for key, (build, _) in bm.MALICIOUS.items()}
    files["cnn"] = bm.save(bm.plain_cnn(), folder / "good", "cnn")  # no class list: must be asked
    files["text"] = bm.save(bm.text_model(), folder / "admin", "text", bm.TEXT_CLASSES)
    return files


def _errors(at) -> str:
    return " ".join(e.value for e in at.error)


def _button(at, label):
    return next(b for b in at.button if b.label.startswith(label))


# ------------------------------------------------------------------ Explain image


@pytest.mark.skipif("digits" not in store.model_names(), reason="needs the shipped digits model")
@pytest.mark.slow
def test_every_hostile_file_on_the_explain_image_page(corpus, workspace):
    at = start_app(image_model="digits")
    at.radio(key="image_source").set_value("Upload an image").run()
    allowed = {f".{t}" for t in at.file_uploader(key="image_upload").allowed_type} | {
        t for t in at.file_uploader(key="image_upload").allowed_type
    }
    for name, path in corpus.items():
        # The uploader (like the browser) only takes its advertised extensions; anything else
        # arrives renamed, which is exactly the "renamed file" attack.
        filename = path.name if path.suffix.lower() in allowed else f"{path.stem}.png"
        at.file_uploader(key="image_upload").set_value((filename, path.read_bytes(), "application/octet-stream")).run()
        assert not at.exception, (name, at.exception)
        said = " ".join(m.value for m in at.markdown)
        if name in VALID_IMAGES:
            assert not at.error and "The model says" in said, name
        else:
            assert len(at.error) == 1 and "The model says" not in said, name
            assert filename in _errors(at), (name, _errors(at))
    # No model or dataset was stored (the model store may create its empty folder).
    for folder in ("datasets", "models"):
        assert not any(p.is_file() for p in (workspace / folder).rglob("*")), folder


# -------------------------------------------------------------- models on my page


def test_model_upload_is_off_by_default_and_says_how_to_enable_it(workspace, monkeypatch):
    monkeypatch.delenv("WORKBENCH_ALLOW_MODEL_UPLOAD", raising=False)
    monkeypatch.delenv("WORKBENCH_MODELS_DIR", raising=False)
    at = start_app(PAGE)
    assert not at.exception
    assert any("WORKBENCH\\_MODELS\\_DIR" in i.value for i in at.info)
    at.radio(key="byo_model_source").set_value("Upload a .keras file").run()
    assert not at.exception
    assert any("WORKBENCH\\_ALLOW\\_MODEL\\_UPLOAD=1" in i.value for i in at.info)
    assert not [u for u in at.file_uploader if u.key == "model_upload"]


def test_malicious_model_uploads_are_refused_on_screen(model_files, workspace, monkeypatch):
    monkeypatch.setenv("WORKBENCH_ALLOW_MODEL_UPLOAD", "1")
    at = start_app(PAGE)
    at.radio(key="byo_model_source").set_value("Upload a .keras file").run()
    for key, (_, fragment) in bm.MALICIOUS.items():
        path = model_files[key]
        at.file_uploader(key="model_upload").set_value((path.name, path.read_bytes(), "application/octet-stream")).run()
        assert not at.exception, (key, at.exception)
        assert len(at.error) == 1, key
        # Markdown characters are escaped for display; compare without the backslashes.
        assert fragment.replace(".", "") in _errors(at).replace("\\", "").replace(".", ""), key
    models = workspace / "models"
    assert not models.exists() or [p.name for p in models.iterdir()] == []


def test_an_uploaded_model_asks_once_for_what_it_cannot_infer(model_files, workspace, monkeypatch):
    monkeypatch.setenv("WORKBENCH_ALLOW_MODEL_UPLOAD", "1")
    at = start_app(PAGE)
    at.radio(key="byo_model_source").set_value("Upload a .keras file").run()
    path = model_files["cnn"]
    at.file_uploader(key="model_upload").set_value(("My CNN.keras", path.read_bytes(), "application/octet-stream")).run()
    assert not at.exception and not at.error
    table = at.table[0].value  # cells are escaped Markdown
    assert list(table["what"]) == ["modality", "output", "input size", "channels", "preprocessing", "classes",
                                   "Grad\\-CAM layer"]
    assert table.set_index("what").loc["input size", "value"] == "32 x 32 pixels"
    at.text_area(key="byo_classes").set_value("left\nright")
    assert at.selectbox(key="byo_preprocessing").value == "0-1"  # the tutorials' convention, preselected
    at.selectbox(key="byo_preprocessing").set_value("0-255")
    _button(at, "Register model").click().run()
    assert not at.exception and not at.error, _errors(at)
    assert any("Registered model" in s.value for s in at.success)
    manifest = store.read_manifest("my-cnn")
    assert manifest["classes"] == ["left", "right"] and manifest["input"]["preprocessing"] == "0-255"
    assert manifest["inferred"]["preprocessing"] == "given"
    assert manifest["created_by"] == "app" and manifest["source"]["path"] == "upload: My CNN.keras"
    # Asked once: the page now says it is registered instead of asking again.
    at.run()
    assert any("already registered as model" in s.value for s in at.success)
    assert not [t for t in at.text_area if t.key == "byo_classes"]


def test_a_model_from_the_admin_folder_is_registered_without_questions(model_files, workspace, monkeypatch):
    monkeypatch.setenv("WORKBENCH_MODELS_DIR", str(model_files["text"].parent))
    at = start_app(PAGE)
    assert at.selectbox(key="byo_model_file").options == ["text.keras"]
    assert not at.text_area and not at.error
    _button(at, "Register model").click().run()
    assert not at.exception and not at.error, _errors(at)
    assert store.read_manifest("text")["classes"] == bm.TEXT_CLASSES


# ---------------------------------------------------------------- data on my page


def _png(colour, shade) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (colour, shade, 0)).save(buffer, "PNG")
    return buffer.getvalue()


def _good_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label, colour in (("cat", 250), ("dog", 10)):
            for i in range(4):
                archive.writestr(f"{label}/{i}.png", _png(colour, i))
        archive.writestr("dog/broken.png", b"\x89PNG nope")
    return buffer.getvalue()


def test_hostile_archives_and_tables_are_refused_on_screen(corpus, workspace):
    at = start_app(PAGE)
    for key in sorted(hostile.REFUSED_ZIPS) + ["nested_zip"]:
        path = corpus[key]
        at.file_uploader(key="data_upload").set_value((path.name, path.read_bytes(), "application/zip")).run()
        at.text_input(key="byo_dataset_name").set_value("upload").run()
        at.button(key="byo_check").click().run()
        assert not at.exception, (key, at.exception)
        assert at.error, key  # refused outright, or (nested_zip) listed with nothing importable
    at.radio(key="byo_data_kind").set_value("Texts (CSV)").run()
    for key in ["oversized_csv", "bidi_text", "garbage_png"]:
        path = corpus[key]
        filename = path.name if path.suffix in {".csv", ".txt"} else f"{path.stem}.csv"  # a renamed image
        at.file_uploader(key="data_upload").set_value((filename, path.read_bytes(), "text/csv")).run()
        assert not at.exception and len(at.error) == 1, key
    root = workspace / "datasets"
    assert not root.exists() or list(root.iterdir()) == []


def test_a_zip_is_checked_then_imported_skipping_problem_rows(workspace):
    at = start_app(PAGE)
    at.file_uploader(key="data_upload").set_value(("pets.zip", _good_zip(), "application/zip")).run()
    at.button(key="byo_check").click().run()
    assert not at.exception and not at.error
    problems = at.dataframe[-1].value
    assert list(problems["where"]) == ["dog/broken.png"] and list(problems["problem"]) == ["unreadable"]
    assert not (workspace / "datasets" / "pets").exists()  # checked, not stored
    _button(at, "Import, skipping 1 problem row").click().run()
    assert not at.exception and not at.error
    assert any("Imported dataset" in s.value for s in at.success)
    manifest = json.loads((workspace / "datasets" / "pets" / "manifest.json").read_text())
    assert manifest["rows_imported"] == 8 and manifest["created_by"] == "app"


def test_a_csv_is_checked_and_cancelled_with_nothing_stored(workspace):
    rows = "sentiment;headline\n" + "".join(f"{'up' if i % 2 else 'down'};headline {i}\n" for i in range(10))
    at = start_app(PAGE)
    at.radio(key="byo_data_kind").set_value("Texts (CSV)").run()
    at.file_uploader(key="data_upload").set_value(("news.csv", rows.encode("utf-16"), "text/csv")).run()
    assert at.selectbox(key="byo_text_column").value == "headline"
    assert at.selectbox(key="byo_label_column").value == "sentiment"
    at.button(key="byo_check").click().run()
    assert not at.exception and not at.error
    assert at.button(key="byo_commit").label == "Import"
    at.button(key="byo_cancel").click().run()
    assert any("nothing was stored" in i.value for i in at.info)
    root = workspace / "datasets"
    assert not root.exists() or list(root.iterdir()) == []
