"""ModelIO: the tensor each kind of model receives, and the probabilities read from its outputs.

Each preprocessing preset is checked against the Keras applications family's own
`preprocess_input` (the reference users trained with), through a registered model: what the
model receives, and what it predicts, must equal the model called on the reference tensor.
"""
from __future__ import annotations

import json
import re

import cv2
import keras
import numpy as np
import pytest

from foundation.errors import ModelError
from foundation.types import Modality
from models import model_io
from models.inspect import APPLICATION_FAMILIES, parse_vocabulary
from workbench import api, user_models

SIZE = 16


def _image(seed: int = 0, size: tuple[int, int] = (23, 19)) -> np.ndarray:
    """An RGB image of another size than the model's, so resizing is part of the path."""
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def _probe_model(channels: int = 3, units: int = 3, activation: str | None = "softmax") -> keras.Model:
    keras.utils.set_random_seed(3)
    return keras.Sequential([
        keras.Input((SIZE, SIZE, channels)),
        keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(units, activation=activation, name="head"),
    ])


def _register(model: keras.Model, tmp_path, name: str, classes: list[str], **overrides) -> object:
    path = tmp_path / f"{name}.keras"
    model.save(path)
    (tmp_path / f"{name}.classes.json").write_text(json.dumps(classes))
    user_models.register(path, name=name, overrides=overrides)
    return api.load_model(name)


def _resized(image: np.ndarray) -> np.ndarray:
    return cv2.resize(image, (SIZE, SIZE), interpolation=cv2.INTER_AREA).astype(np.float32)


REFERENCES = {
    "caffe": lambda x: keras.applications.resnet50.preprocess_input(x.copy()),
    "-1..1": lambda x: keras.applications.mobilenet_v2.preprocess_input(x.copy()),
    "torch": lambda x: keras.applications.densenet.preprocess_input(x.copy()),
    "0-1": lambda x: x / 255.0,
    "0-255": lambda x: x,
    "inside": lambda x: x,
}


@pytest.mark.parametrize("preset", list(REFERENCES))
def test_each_preset_feeds_the_tensor_of_the_familys_own_preprocess_input(preset, tmp_path, workspace):
    model = _register(_probe_model(), tmp_path, f"probe-{preset.replace('..', '-').strip('-')}", ["a", "b", "c"],
                      preprocessing=preset)
    assert model.input_spec.preprocessing == preset
    image = _image()
    received = model.image_tensor(model.prepare_images([image]))
    reference = REFERENCES[preset](_resized(image)[None])
    np.testing.assert_allclose(received, reference, rtol=1e-5, atol=1e-4)
    # The prediction is the model called on the reference tensor.
    expected = np.asarray(model.keras_model(reference.astype(np.float32), training=False))
    np.testing.assert_allclose(model.predict_proba([image]), expected, rtol=1e-5, atol=1e-6)


def test_custom_mean_and_std_are_applied_per_channel_in_rgb_order(tmp_path, workspace):
    mean, std = [100.0, 120.0, 140.0], [50.0, 60.0, 70.0]
    model = _register(_probe_model(), tmp_path, "custom", ["a", "b", "c"], preprocessing="custom", mean=mean, std=std)
    image = _image(1)
    received = model.image_tensor(model.prepare_images([image]))
    np.testing.assert_allclose(received, (_resized(image)[None] - np.array(mean)) / np.array(std), rtol=1e-5, atol=1e-5)
    with pytest.raises(ModelError, match="3 finite mean"):
        model_io.Preprocessing("custom", mean=[1.0, 2.0], std=[1.0, 1.0, 1.0])
    with pytest.raises(ModelError, match="std to be above 0"):
        model_io.Preprocessing("custom", mean=[1.0, 2.0, 3.0], std=[1.0, 0.0, 1.0])


def test_a_grey_model_is_fed_the_luminance_of_any_upload(tmp_path, workspace):
    model = _register(_probe_model(channels=1), tmp_path, "grey", ["a", "b", "c"], preprocessing="0-1")
    image = _image(2)
    received = model.image_tensor(model.prepare_images([image]))
    assert received.shape == (1, SIZE, SIZE, 1)
    grey = cv2.cvtColor(_resized(image).astype(np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    np.testing.assert_allclose(received[0, :, :, 0], grey, atol=0.51 / 255)  # OpenCV rounds to whole grey levels
    with pytest.raises(ModelError, match="3-channel colour models"):
        model_io.Preprocessing("caffe", channels=1)


@pytest.mark.parametrize("kind, units, activation", [("logits", 3, None), ("binary-logit", 1, None), ("sigmoid", 1, "sigmoid")])
def test_outputs_become_probabilities_the_way_each_kind_means_them(kind, units, activation, tmp_path, workspace):
    classes = ["a", "b", "c"][: max(units, 2)]
    model = _register(_probe_model(units=units, activation=activation), tmp_path, f"out-{kind}", classes,
                      preprocessing="0-1")
    assert model.io.output_kind == kind and model.info.output_kind == kind
    images = [_image(3), _image(4)]
    raw = np.asarray(model.keras_model(model.image_tensor(model.prepare_images(images)), training=False), np.float64)
    if kind == "logits":
        expected = np.exp(raw) / np.exp(raw).sum(axis=1, keepdims=True)
    else:
        positive = 1 / (1 + np.exp(-raw[:, 0])) if kind == "binary-logit" else raw[:, 0]
        expected = np.stack([1 - positive, positive], axis=1)
    probabilities = model.predict_proba(images)
    np.testing.assert_allclose(probabilities, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    # The symbolic/tensor path (used inside gradient tapes) gives the same numbers.
    np.testing.assert_allclose(np.asarray(model_io.probabilities(keras.ops.convert_to_tensor(raw), kind)), expected,
                               rtol=1e-5)


def _token_io(**kwargs) -> model_io.ModelIO:
    vocabulary = ("", "[UNK]", "good", "movie", "bad")
    return model_io.ModelIO(modality=Modality.TEXT, vocabulary=vocabulary, oov_id=model_io.find_oov_id(vocabulary),
                            **kwargs)


def test_token_ids_follow_the_vocabulary_with_oov_padding_and_truncation():
    io = _token_io()
    assert io.oov_id == 1
    np.testing.assert_array_equal(io.encode(["Good movie!", "a BAD, bad movie"]),
                                  [[2, 3, 0, 0], [1, 4, 4, 3]])  # padded to the longest text, post
    np.testing.assert_array_equal(_token_io(padding="pre", sequence_length=3).encode(["good movie", "a bad bad movie"]),
                                  [[0, 2, 3], [1, 4, 4]])  # fixed length: cut after 3 tokens, padded in front
    no_oov = model_io.ModelIO(modality=Modality.TEXT, vocabulary=("", "good"), oov_id=None)
    np.testing.assert_array_equal(no_oov.encode(["good unknown good"]), [[1, 1]])  # unknown words are skipped
    np.testing.assert_array_equal(io.encode([""]), [[0]])  # an empty text is one padding id


def test_vocabulary_files_are_read_as_json_or_lines_and_refused_clearly():
    assert parse_vocabulary(b'["", "[UNK]", "good"]', "v.json") == ["", "[UNK]", "good"]
    assert parse_vocabulary("\n[UNK]\nb\u00e9b\u00e9\r\n".encode(), "v.txt") == ["", "[UNK]", "b\u00e9b\u00e9"]
    with pytest.raises(ModelError, match="not UTF-8"):
        parse_vocabulary(b"\xff\xfe\x00bad", "v.txt")
    with pytest.raises(ModelError, match="empty"):
        parse_vocabulary(b"", "v.txt")
    with pytest.raises(ModelError, match="list of tokens"):
        parse_vocabulary(b'["a", 3]', "v.json")


def test_a_vocabulary_larger_than_the_embedding_is_refused(tmp_path, workspace):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(3, 2),
                              keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(1, activation="sigmoid")])
    path = tmp_path / "ids.keras"
    model.save(path)
    with pytest.raises(ModelError, match="only 3 rows"):
        user_models.register(path, classes=["no", "yes"], overrides={"vocabulary": ["", "[UNK]", "a", "b"]})


def test_applications_bases_are_recognised_by_family_name():
    def family(name: str) -> str | None:
        return next((preset for pattern, preset in APPLICATION_FAMILIES if re.match(pattern, name)), None)

    assert family("resnet50") == family("resnet101") == family("vgg16") == "caffe"
    assert family("resnet50v2") == family("mobilenetv2_1.00_224") == family("inception_v3") == "-1..1"
    assert family("densenet121") == "torch"
    assert family("resnet50_head") == "caffe" and family("my_resnet50") is None and family("efficientnetb0") is None


@pytest.mark.slow
def test_the_resnet50_recipe_predicts_what_the_model_predicts_on_resnet50_preprocess_input(tmp_path, workspace):
    from tests.models import tutorial_models

    path = tutorial_models.save("resnet50_transfer", tmp_path)
    manifest = user_models.register(path)
    assert manifest.input.preprocessing == "caffe" and "resnet50" in manifest.inferred["preprocessing"]
    model = api.load_model("resnet50_transfer")
    images = [_image(5, (32, 32)), _image(6, (32, 32))]
    reference = keras.applications.resnet50.preprocess_input(np.stack(images).astype(np.float32))
    expected = np.asarray(model.keras_model(reference, training=False))
    np.testing.assert_allclose(model.predict_proba(images), expected, rtol=1e-5, atol=1e-6)
