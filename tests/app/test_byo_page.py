"""Issue 12 through the "Your model & data" page (AppTest, real Keras models): the tutorial-shaped
models are registered from the models folder, the page asks only for what the model cannot tell
(preprocessing for the grey MNIST convnet, the vocabulary for the token-id BiLSTM), the stored
manifests record the answers, and the Explain pages then predict with the registered models."""
from __future__ import annotations

import html
import json
import os
from pathlib import Path

import pytest

from models import store
from tests.app.conftest import start_app
from tests.models import tutorial_models as tm

PAGE = "pages/bring_your_own.py"
EXAMPLES = Path(__file__).resolve().parents[2] / "sample_data" / "examples"
KINDS = tuple(tm.KINDS)  # every tutorial kind but the 95 MB ResNet50 (tests/models/test_model_io.py has it)
QUESTION_KEYS = ("byo_classes", "byo_preprocessing", "byo_height", "byo_vocabulary")


def _errors(at) -> str:
    return " ".join(e.value for e in at.error)


def _said(elements) -> str:
    """What the reader sees: Markdown escapes and HTML entities undone."""
    return _unescape(" ".join(e.value for e in elements))


def _unescape(text: str) -> str:
    return html.unescape(text.replace("\\", ""))


def _table(at) -> dict[str, tuple[str, str]]:
    """The spec table as shown (its cells are escaped Markdown)."""
    frame = at.table[0].value
    return {_unescape(row["what"]): (_unescape(row["value"]), _unescape(row["how it was known"]))
            for _, row in frame.iterrows()}


def _asked(at) -> set[str]:
    """Keys of the questions the page shows for the chosen model."""
    keys = {w.key for kind in ("text_area", "selectbox", "number_input", "file_uploader") for w in at.get(kind)}
    return keys & set(QUESTION_KEYS)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The administrator's models folder, with the classes file beside each model (and the vocabulary)."""
    path = tmp_path_factory.mktemp("models-folder")
    for name in KINDS:
        tm.save(name, path)
    return path


@pytest.fixture(scope="module")
def registered(folder, tmp_path_factory):
    """Each model registered through the page, in one session as a user would; {name: (table, asked)}."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKBENCH_HOME", str(tmp_path_factory.mktemp("byo") / "ws"))
        patch.setenv("WORKBENCH_MODELS_DIR", str(folder))
        at = start_app(PAGE)
        assert not at.exception, at.exception
        assert at.selectbox(key="byo_model_file").options == sorted(f"{k}.keras" for k in KINDS)
        seen = {}
        for name in KINDS:
            at.selectbox(key="byo_model_file").set_value(f"{name}.keras").run()
            assert not at.exception and not at.error, (name, at.exception, _errors(at))
            seen[name] = (_table(at), _asked(at))
            if name == "token_id_bilstm":
                data = (folder / f"{name}.vocab.txt").read_bytes()
                at.file_uploader(key="byo_vocabulary").set_value(("vocab.txt", data, "text/plain")).run()
                assert not at.error, _errors(at)
            at.button(key="byo_register").click().run()
            assert not at.exception and not at.error, (name, at.exception, _errors(at))
            assert f"Registered model '{name}'" in _said(at.success), name
            card = _said(at.markdown)
            assert "**Output**:" in card and "**Input**:" in card, name
        manifests = {name: store.read_manifest(name) for name in KINDS}
        yield {"seen": seen, "manifests": manifests, "home": os.environ["WORKBENCH_HOME"]}


@pytest.fixture
def registered_home(registered, monkeypatch):
    """Later tests run in the workspace the page registered the models into."""
    monkeypatch.setenv("WORKBENCH_HOME", registered["home"])
    return registered


@pytest.mark.parametrize("name", KINDS)
def test_every_kind_is_registered_through_the_page_with_what_its_model_tells(registered, name):
    kind, convention = tm.EXPECTED[name]
    manifest = registered["manifests"][name]
    assert manifest["output"] == {"kind": kind} and manifest["created_by"] == "app"
    spec = manifest["input"]
    if manifest["modality"] == "text":
        assert spec.get("encoding", "strings") == convention
    else:
        assert spec["preprocessing"] == convention
    # Only what the model cannot tell was asked.
    expected_questions = {"mnist_convnet": {"byo_preprocessing"}, "token_id_bilstm": {"byo_vocabulary"}}
    assert registered["seen"][name][1] == expected_questions.get(name, set())


def test_binary_logit_model_is_registered_without_questions(registered):
    table, asked = registered["seen"]["binary_from_scratch"]
    assert asked == set()
    assert table["output"][0] == "one logit unit: the workbench applies the sigmoid for the second class"
    assert table["output"][1] == "the output layer"
    assert table["channels"][0] == "RGB (3 channels)"
    assert table["preprocessing"][0].startswith("inside the model")
    assert "Rescaling" in table["preprocessing"][1]
    manifest = registered["manifests"]["binary_from_scratch"]
    assert manifest["output"] == {"kind": "binary-logit"} and manifest["classes"] == tm.BINARY_CLASSES
    assert manifest["input"]["preprocessing"] == "inside" and manifest["created_by"] == "app"


def test_grey_mnist_convnet_asks_for_the_preprocessing_once(registered):
    table, asked = registered["seen"]["mnist_convnet"]
    assert asked == {"byo_preprocessing"}
    assert table["input size"][0] == "28 x 28 pixels" and table["channels"][0] == "grey (1 channel)"
    assert table["preprocessing"] == ("? (nothing in the model tells)", "asked below")
    manifest = registered["manifests"]["mnist_convnet"]
    assert manifest["input"]["channels"] == 1 and manifest["input"]["preprocessing"] == "0-1"
    assert manifest["inferred"]["preprocessing"] == "given"  # answered on the page, not assumed
    assert not any("assumed" in note for note in manifest.get("notes") or [])


def test_token_id_model_gets_its_uploaded_vocabulary(registered):
    table, asked = registered["seen"]["token_id_bilstm"]
    assert asked == {"byo_vocabulary"}
    assert table["text input"][0] == "token ids (integers)"
    assert table["vocabulary"][1] == "asked below" and table["sequence length"][0].startswith("not fixed")
    manifest = registered["manifests"]["token_id_bilstm"]
    assert manifest["input"]["encoding"] == "token_ids" and manifest["input"]["vocabulary"] == tm.VOCABULARY
    assert manifest["input"]["oov_id"] == 1 and manifest["input"]["padding"] == "post"
    assert manifest["output"] == {"kind": "sigmoid"}


def test_mobilenet_transfer_preprocessing_is_detected_not_asked(registered):
    table, asked = registered["seen"]["mobilenet_transfer"]
    assert asked == set()
    assert table["preprocessing"][0].startswith("-1 to 1")
    assert "nested Keras applications base" in table["preprocessing"][1]
    manifest = registered["manifests"]["mobilenet_transfer"]
    assert manifest["input"]["preprocessing"] == "-1..1" and manifest["output"] == {"kind": "softmax"}


def test_the_page_says_a_registered_file_is_registered(registered_home, folder, monkeypatch):
    monkeypatch.setenv("WORKBENCH_MODELS_DIR", str(folder))
    at = start_app(PAGE)
    at.selectbox(key="byo_model_file").set_value("mnist_convnet.keras").run()
    assert not at.exception
    assert any("already registered as model" in s.value for s in at.success)
    assert not _asked(at)


def test_explain_image_predicts_with_the_registered_grey_model(registered_home):
    at = start_app(image_model="mnist_convnet", image_lime_num_samples=100)
    assert not at.exception, at.exception
    data = (EXAMPLES / "shape_star.png").read_bytes()
    at.file_uploader(key="image_upload").set_value(("star.png", data, "image/png")).run()
    assert not at.exception, at.exception
    assert not at.error, _errors(at)
    assert "The model says" in " ".join(m.value for m in at.markdown)


def test_explain_text_predicts_with_the_registered_token_id_model(registered_home):
    at = start_app("pages/explain_text.py", text_model="token_id_bilstm", text_shap_max_evals=120,
                   text_lime_num_samples=300)
    assert not at.exception, at.exception
    at.radio(key="text_source").set_value("Type or paste text").run()
    at.text_area(key="text_input").set_value("A great movie with awful actors").run()
    assert not at.exception, at.exception
    assert not at.error, _errors(at)
    assert "The model says" in " ".join(m.value for m in at.markdown)


# ------------------------------------------------------------------ answers and refusals


@pytest.fixture
def one_model_page(workspace, folder, tmp_path, monkeypatch):
    """The page on a folder holding one chosen tutorial model (its sidecar files copied too)."""
    def open_page(name: str):
        target = tmp_path / "folder"
        target.mkdir(exist_ok=True)
        for path in folder.glob(f"{name}.*"):
            (target / path.name).write_bytes(path.read_bytes())
        monkeypatch.setenv("WORKBENCH_MODELS_DIR", str(target))
        at = start_app(PAGE)
        assert not at.exception, at.exception
        return at
    return open_page


def test_custom_preprocessing_takes_one_mean_and_std_for_a_grey_model(one_model_page):
    at = one_model_page("mnist_convnet")
    options = at.selectbox(key="byo_preprocessing").options
    assert at.selectbox(key="byo_preprocessing").value == "0-1"
    assert not any("caffe" in o or "torch" in o for o in options)  # colour-only presets are not offered to grey
    at.selectbox(key="byo_preprocessing").set_value("custom").run()
    assert [n.label for n in at.number_input] == ["Mean (grey)", "Std (grey)"]
    at.number_input(key="byo_mean_0").set_value(33.3).run()
    at.number_input(key="byo_std_0").set_value(78.6).run()
    at.button(key="byo_register").click().run()
    assert not at.exception and not at.error, _errors(at)
    spec = store.read_manifest("mnist_convnet")["input"]
    assert spec["preprocessing"] == "custom" and spec["mean"] == [33.3] and spec["std"] == [78.6]


@pytest.mark.parametrize("content, fragment", [
    (b"\xff\xfe\x00bad", "is not UTF-8 text"),
    (b"", "is empty"),
    (json.dumps([1, 2, 3]).encode(), "must be a list of tokens"),
])
def test_a_bad_vocabulary_file_gets_one_sentence_and_no_registration(one_model_page, workspace, content, fragment):
    at = one_model_page("token_id_bilstm")
    assert at.button(key="byo_register").disabled  # nothing to register with before the vocabulary
    at.file_uploader(key="byo_vocabulary").set_value(("[v](x).txt", content, "text/plain")).run()
    assert not at.exception
    assert len(at.error) == 1 and fragment in _errors(at).replace("\\", "")
    assert "\\[v\\]\\(x\\)" in _errors(at)  # the file name is shown as typed, not as a link
    assert at.button(key="byo_register").disabled
    assert "token_id_bilstm" not in store.model_names()


def test_a_vocabulary_larger_than_the_embedding_is_refused(one_model_page):
    at = one_model_page("token_id_bilstm")
    tokens = tm.VOCABULARY + [f"word{i}" for i in range(50)]
    at.file_uploader(key="byo_vocabulary").set_value(("big.json", json.dumps(tokens).encode(), "application/json")).run()
    assert not at.error
    at.number_input(key="byo_oov_id").set_value(1)
    at.radio(key="byo_padding").set_value("pre")
    at.button(key="byo_register").click().run()
    assert not at.exception and len(at.error) == 1
    assert "Embedding has only" in _errors(at)
    assert "token_id_bilstm" not in store.model_names()


def test_padding_and_oov_answers_are_stored(one_model_page):
    at = one_model_page("token_id_bilstm")
    at.file_uploader(key="byo_vocabulary").set_value(("v.json", json.dumps(tm.VOCABULARY).encode(), "application/json")).run()
    at.number_input(key="byo_oov_id").set_value(2)
    at.radio(key="byo_padding").set_value("pre")
    at.button(key="byo_register").click().run()
    assert not at.exception and not at.error, _errors(at)
    spec = store.read_manifest("token_id_bilstm")["input"]
    assert spec["oov_id"] == 2 and spec["padding"] == "pre"


def test_names_from_a_classes_file_are_shown_as_typed_and_an_edit_is_seen(one_model_page, tmp_path):
    at = one_model_page("binary_from_scratch")
    assert at.table[0].value.set_index("what").loc["classes", "value"] == "cat\\, dog"
    # The administrator fixes the class file beside the model: the page reads it again.
    (tmp_path / "folder" / "binary_from_scratch.classes.json").write_text(json.dumps(["*cat* $x$", "_dog_"]))
    at.run()
    assert not at.exception
    shown = at.table[0].value.set_index("what").loc["classes", "value"]
    assert shown == "\\*cat\\* \\$x\\$\\, \\_dog\\_"
