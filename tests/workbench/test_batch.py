"""Batch predictions + explanations: table, safe CSV, overlay zip, progress, and `workbench explain-batch`."""
import csv
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from commandline.cli import main
from foundation.errors import WorkbenchError
from tests.explainers import tiny_models
from workbench import batch, inputs

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "sample_data" / "examples"


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _image_items():
    images = tiny_models.random_images(5, seed=1)
    items = [batch.BatchInput(f"img{i}.png", image) for i, image in enumerate(images)]
    items.insert(2, batch.BatchInput("broken.png", error="'broken.png' is not an image we can read."))
    big = np.random.default_rng(2).integers(0, 256, size=(300, 600, 3), dtype=np.uint8)
    items.append(batch.BatchInput("=HYPERLINK(\"http://x\").png", big))
    return items


def test_run_batch_table_overlays_and_progress():
    model = tiny_models.loaded_image_model()
    items = _image_items()
    calls = []
    sink = batch.ZipSink()
    result = batch.run_batch(model, items, "gradcam", batch_size=2, overlays=sink,
                             progress=lambda done, total, eta: calls.append((done, total, eta)))
    table = result.table
    assert list(table.columns) == ["input", "status", "predicted", "confidence", "p_cat", "p_dog", "p_bird",
                                   "method", "target", "seconds", "overlay", "error"]
    assert len(table) == 7 and table["status"].tolist().count("error") == 1
    assert table.loc[2, "status"] == "error" and "not an image" in table.loc[2, "error"]
    ok = table[table["status"] == "ok"]
    values = [item.value for item in items if item.error is None]
    expected = model.predict_proba(values)
    assert ok["predicted"].tolist() == [model.classes[i] for i in expected.argmax(axis=1)]
    np.testing.assert_allclose(ok[["p_cat", "p_dog", "p_bird"]].to_numpy(dtype=float), expected, atol=1e-5)
    assert (ok["target"] == ok["predicted"]).all() and (ok["method"] == "gradcam").all()
    assert (result.n_ok, result.n_failed, result.overlays_written) == (6, 1, 6)
    # Progress: starts at 0 with no estimate, rises monotonically in steps of the batch size, ends at the total.
    assert calls[0] == (0, 6, None)
    assert [c[0] for c in calls] == [0, 2, 4, 6] and all(c[1] == 6 for c in calls)
    assert all(c[2] is not None and c[2] >= 0 for c in calls[1:]) and calls[-1][2] == 0
    # The overlay zip: one PNG per readable input, named after it, at the (bounded) input size.
    archive = zipfile.ZipFile(io.BytesIO(sink.getvalue()))
    names = archive.namelist()
    assert names == ok["overlay"].tolist()
    assert names[0] == "00000_img0_gradcam.png" and "broken" not in " ".join(names)
    assert Image.open(io.BytesIO(archive.read(names[0]))).size == (8, 8)
    assert Image.open(io.BytesIO(archive.read(names[-1]))).size == (512, 256)  # 600 x 300 shrunk to 512 wide


def test_csv_is_formula_safe():
    model = tiny_models.loaded_image_model()
    result = batch.run_batch(model, _image_items(), batch.NO_METHOD)
    rows = list(csv.DictReader(io.StringIO(batch.results_csv_bytes(result).decode("utf-8"))))
    assert len(rows) == 7
    hostile = rows[-1]["input"]
    assert hostile.startswith("'=HYPERLINK")
    assert rows[0]["method"] == "" and rows[0]["overlay"] == ""  # predictions only
    assert float(rows[0]["confidence"]) > 0


def test_text_batch_from_a_csv_table_with_html_overlays():
    model = tiny_models.loaded_text_model()
    data = "id,headline\n1,good movie\n2,<script>alert(1)</script> awful plot\n3,\u200b\n".encode("utf-8")
    table = inputs.read_table_csv(data, "news.csv")
    assert batch.guess_text_column(table) == "headline"
    items = batch.texts_from_table(table, "headline", max_tokens=model.sequence_length)
    assert [item.name for item in items] == ["line 2", "line 3", "line 4"]
    assert items[2].error is not None  # only an invisible character
    sink = batch.ZipSink()
    result = batch.run_batch(model, items, "gradcam", overlays=sink)
    assert result.table["status"].tolist() == ["ok", "ok", "error"]
    archive = zipfile.ZipFile(io.BytesIO(sink.getvalue()))
    page = archive.read(archive.namelist()[1]).decode("utf-8")
    assert "<script" not in page.lower() and "awful" in page
    with pytest.raises(WorkbenchError):
        batch.texts_from_table(table, "nope")


def test_unknown_or_unsuitable_methods_are_refused():
    model = tiny_models.loaded_image_model()
    with pytest.raises(WorkbenchError, match="unknown explanation method"):
        batch.run_batch(model, _image_items(), "magic")


def test_folder_reading_skips_hidden_and_reports_broken(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.png").write_bytes(_png(np.zeros((10, 10, 3), np.uint8)))
    (tmp_path / "b.PNG").write_bytes(_png(np.full((700, 100, 3), 9, np.uint8)))
    (tmp_path / "c.png").write_bytes(b"garbage")
    (tmp_path / ".hidden.png").write_bytes(_png(np.zeros((4, 4, 3), np.uint8)))
    (tmp_path / "notes.txt").write_text("skip me")
    files = batch.image_files_in(tmp_path)
    assert [p.name for p in files] == ["b.PNG", "c.png", "a.png"]
    items = batch.read_image_files(files, root=tmp_path)
    assert [i.name for i in items] == ["b.PNG", "c.png", "sub/a.png"]
    assert items[0].value.shape == (512, 73, 3)  # shrunk on reading
    assert items[1].error and items[2].value.shape == (10, 10, 3)


# --- the CLI (real sample models) ---------------------------------------------------------------------------


def _folder_of_examples(folder: Path) -> Path:
    folder.mkdir()
    for name in ("shape_circle.png", "shape_star.png", "shape_square.jpg"):
        (folder / name).write_bytes((EXAMPLES / name).read_bytes())
    (folder / "bad.png").write_bytes(b"nope")
    return folder


def test_cli_explains_a_folder(tmp_path, capsys):
    folder = _folder_of_examples(tmp_path / "in")
    out = tmp_path / "out"
    code = main(["explain-batch", "--model", "shapes", "--method", "gradcam", str(folder), "--out", str(out),
                 "--batch-size", "2", "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["explained"], summary["failed"], summary["overlays"]) == (3, 1, 3)
    assert summary["inputs_per_second"] > 0
    rows = list(csv.DictReader(open(out / "results.csv", encoding="utf-8")))
    assert {r["input"] for r in rows} == {"in/shape_circle.png", "in/shape_star.png", "in/shape_square.jpg", "in/bad.png"}
    assert sorted(p.suffix for p in (out / "overlays").iterdir()) == [".png"] * 3


def test_cli_texts_from_csv(tmp_path, capsys):
    source = tmp_path / "news.csv"
    source.write_text("text\nAcme shares plunge after profit warning\nGlobex beats forecasts\n", encoding="utf-8")
    code = main(["explain-batch", "--model", "headlines", "--method", "none", str(source), "--out", str(tmp_path / "o"),
                 "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["explained"] == 2


def test_cli_refuses_bad_input_with_one_line(tmp_path, capsys):
    code = main(["explain-batch", "--model", "shapes", str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")


def test_cli_refuses_a_zip_escaping_its_folder(tmp_path, capsys):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(EXAMPLES / "shape_circle.png", "pics/shape_circle.png")
        zf.writestr("../evil.png", b"x")
    code = main(["explain-batch", "--model", "shapes", str(archive), "--out", str(tmp_path / "o")])
    assert code == 2 and capsys.readouterr().err.startswith("error:")
    assert not (tmp_path / "evil.png").exists() and not (tmp_path / "o" / "results.csv").exists()


def test_cli_subprocess_with_a_zip(tmp_path):
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ("shape_circle.png", "shape_star.png"):
            zf.write(EXAMPLES / name, f"pics/{name}")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([str(Path(sys.executable).parent / "workbench"), "explain-batch", "--model", "shapes",
                           str(archive), "--out", str(tmp_path / "o"), "--json"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["overlays"] == 2 and summary["model"] == "shapes"
    assert sorted(p.name for p in (tmp_path / "o" / "overlays").iterdir()) == [
        "00000_shape_circle_gradcam.png", "00001_shape_star_gradcam.png"]
