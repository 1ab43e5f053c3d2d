"""The whole hostile corpus through the command line: `predict`, `explain` and `import-data`.

Valid files in odd colour modes give exit 0 and the prediction of the pixels they really
hold (built by hand here); everything else gives exit 2 and exactly one `error:` line, never
a traceback. Nothing is written outside the workspace and the output folder, and the label
ledger is unchanged.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from commandline import cli
from labels import Ledger
from models import store
from workbench import api

try:
    from tests.workbench import hostile
except ImportError:  # plain `pytest` puts this folder on sys.path instead
    import hostile

REPO = Path(__file__).resolve().parents[2]
_TF_NOISE = ("WARNING: All log messages before absl", "I0000", "W0000", "E0000", "To enable the following")

pytestmark = pytest.mark.skipif("digits" not in store.model_names(), reason="needs the shipped digits model (make zoo)")


def _row(values, mode="rgb"):
    array = np.asarray(values, dtype=np.uint8)
    if mode == "grey":
        array = np.repeat(array[:, None], 3, axis=1)
    return array[None]


def _exif_expected() -> np.ndarray:
    """Stored 64 x 32 with a red box at the stored top-left; orientation 6 shows it 32 x 64, box top-right."""
    image = np.full((64, 32, 3), 255, dtype=np.uint8)
    image[:16, 16:] = (255, 0, 0)
    return image


# The pixels each valid file really holds, and whether the format is lossy (JPEG).
EXPECTED = {
    "rgba_png": (_row(hostile.RGBA_EXPECTED), False),
    "la_png": (_row(hostile.LA_EXPECTED, "grey"), False),
    "palette_png": (_row([(255, 255, 255), (0, 255, 0)]), False),
    "cmyk_tiff": (_row(hostile.CMYK_EXPECTED), False),
    "cmyk_jpeg": (np.full((16, 16, 3), 255, dtype=np.uint8), True),
    "grey16_png": (_row(hostile.GREY16_EXPECTED, "grey"), False),
    "grey_png": (_row([0, 77, 255], "grey"), False),
    "bilevel_png": (_row([0, 255], "grey"), False),
    "exif_rotated_jpeg": (_exif_expected(), True),
    "animated_gif": (np.full((8, 8, 3), (255, 0, 0), dtype=np.uint8), False),  # the first frame
}
REFUSED = sorted(set(hostile.BUILDERS) - set(EXPECTED))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return hostile.build_corpus(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def digits():
    return api.load_model("digits")


@pytest.fixture
def guarded(workspace, tmp_path, corpus, monkeypatch):
    """Run from an empty folder; afterwards nothing may have changed outside workspace/ and out/."""
    monkeypatch.chdir(tmp_path)
    ledger = Ledger()
    ledger.record("digits", "digits-00001", "3", expected_event_id=None, annotator="tester")
    corpus_root = next(iter(corpus.values())).parent

    def snapshot():
        here = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.parts[len(tmp_path.parts)] not in {"workspace", "out"}}
        files = {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in corpus_root.iterdir()}
        return here, files

    before = snapshot()
    yield tmp_path / "out"
    assert snapshot() == before, "something was written outside the workspace and the output folder"
    assert Ledger().count() == 1


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith(_TF_NOISE)]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_every_file_through_predict(corpus, digits, guarded, capsys):
    for name, path in corpus.items():
        code = cli.main(["predict", "--model", "digits", str(path), "--json"])
        captured = capsys.readouterr()
        if name in EXPECTED:
            assert code == 0, (name, captured.err)
            row = json.loads(captured.out)
            got = np.array([row["probabilities"][c] for c in digits.classes])
            pixels, lossy = EXPECTED[name]
            expected = api.predict(digits, [pixels])[0]
            if lossy:
                assert row["label"] == digits.classes[int(expected.argmax())], name
                np.testing.assert_allclose(got, expected, atol=0.05, err_msg=name)
            else:
                np.testing.assert_allclose(got, expected, atol=1e-5, err_msg=name)
        else:
            assert code == 2 and captured.out == "", name
            line = _one_error_line(captured.err)
            assert f"'{path.name}'" in line, line  # the message names the file


def test_every_file_through_explain(corpus, guarded, capsys):
    out = guarded
    for name, path in corpus.items():
        target = out / name  # cmyk.tif and cmyk.jpg would share an overlay name in one folder
        code = cli.main(["explain", "--model", "digits", "--method", "gradcam", "--out", str(target), str(path), "--json"])
        captured = capsys.readouterr()
        if name in EXPECTED:
            assert code == 0, (name, captured.err)
            overlay = Path(json.loads(captured.out)["overlay"])
            assert overlay.is_file() and overlay.parent == target
        else:
            assert code == 2 and captured.out == "", name
            _one_error_line(captured.err)
            assert not target.exists()  # refused before anything is written
    assert sorted(p.name for p in out.iterdir()) == sorted(EXPECTED)


def test_every_file_through_import_data(corpus, guarded, capsys, workspace):
    refused = set(hostile.REFUSED_ZIPS) | {"oversized_csv", "bidi_text"}
    for name, path in corpus.items():
        code = cli.main(["import-data", str(path), "--name", "hostile", "--dry-run"])
        captured = capsys.readouterr()
        if code == 0:
            assert name not in refused and "dry run: nothing was stored." in captured.out, name
        else:
            assert code == 2 and captured.out == "", name
            _one_error_line(captured.err)
        if name in refused:
            assert code == 2, name
    root = workspace / "datasets"
    assert not root.exists() or list(root.iterdir()) == []


@pytest.mark.slow
def test_a_real_process_refuses_with_one_error_line_and_no_traceback(corpus, tmp_path):
    env = dict(os.environ, WORKBENCH_HOME=str(tmp_path / "workspace"))
    run = subprocess.run(
        [str(REPO / ".venv" / "bin" / "workbench"), "predict", "--model", "digits",
         str(corpus["rgba_png"]), str(corpus["bomb_png"]), "--json"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    # One bad file refuses the whole batch: nothing is printed for the good one either.
    assert run.returncode == 2 and run.stdout == ""
    assert "megapixels" in _one_error_line(run.stderr)
