"""models.inspect on real saved models: what is inferred, what is asked, what is refused,
and Grad-CAM after registration checked against an independent tape computation."""
from __future__ import annotations

import json

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from foundation.errors import ModelError
from foundation.types import Modality
from models.inspect import (
    check_classes,
    check_name,
    inspect_model,
    parse_typed_classes,
    rescales_itself,
    suggest_name,
)
from models.safe_load import load_keras_model
from tests.models import byo_models as bm
from workbench import api, user_models


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("user_models")
    return {
        "nested": bm.save(bm.nested_mobilenet(), folder, "nested"),
        "cnn": bm.save(bm.plain_cnn(), folder, "cnn"),
        "text": bm.save(bm.text_model(), folder, "text"),
    }


@pytest.fixture(scope="module")
def loaded(saved):
    """Each saved model loaded once through the safe loader (MobileNetV2 takes seconds to load)."""
    return {key: load_keras_model(path) for key, path in saved.items()}


@pytest.fixture
def spec_of(saved, loaded):
    def spec(key, **kwargs):
        return inspect_model(loaded[key], saved[key], **kwargs)

    return spec


# ------------------------------------------------------------------ inference


def test_nested_base_in_a_sequential_is_fully_inferred_except_the_class_names(spec_of, loaded):
    spec = spec_of("nested")
    base = loaded["nested"].layers[1]
    assert spec.modality is Modality.IMAGE
    assert spec.input == {"type": "image", "height": 64, "width": 64, "channels": 3, "preprocessing": "inside",
                          "rescales_inputs": True, "value_range": [0, 255]}
    assert spec.n_classes == 3
    # MobileNetV2's last convolution is Conv_1, inside the nested base.
    assert spec.gradcam_layer == f"{base.name}/Conv_1"
    assert spec.missing == ("classes",)
    assert "Rescaling" in spec.sources["preprocessing"]
    assert spec.output_kind == "softmax"


def test_class_names_come_from_the_sidecar_files_in_order(loaded, tmp_path):
    path = tmp_path / "m.keras"  # only its name and folder matter here
    model = loaded["cnn"]
    (tmp_path / "classes.json").write_text(json.dumps(["b", "a"]))
    spec = inspect_model(model, path)
    assert spec.classes == ("b", "a") and spec.sources["classes"] == "classes.json beside the model"
    (tmp_path / "m.classes.json").write_text(json.dumps(["left", "right"]))
    spec = inspect_model(model, path)  # <stem>.classes.json wins over classes.json
    assert spec.classes == ("left", "right") and spec.sources["classes"].startswith("m.classes.json")
    # Names given explicitly win over both.
    assert inspect_model(model, path, classes=["x", "y"]).classes == ("x", "y")


def test_a_cnn_without_rescaling_asks_for_its_preprocessing(spec_of):
    spec = spec_of("cnn", classes=bm.CNN_CLASSES)
    assert spec.missing == ("preprocessing",)
    assert spec.input["rescales_inputs"] is None
    assert spec.gradcam_layer == "last_conv"
    with pytest.raises(ModelError, match="still unknown: how the model expects its pixels"):
        spec.manifest_fields()
    answered = spec_of("cnn", classes=bm.CNN_CLASSES, overrides={"rescales_inputs": False})
    assert answered.complete
    assert answered.manifest_fields()["input"]["value_range"] == [0, 1]
    assert answered.manifest_fields()["input"]["preprocessing"] == "0-1"
    caffe = spec_of("cnn", classes=bm.CNN_CLASSES, overrides={"preprocessing": "caffe"})
    assert caffe.manifest_fields()["input"]["preprocessing"] == "caffe" and caffe.sources["preprocessing"] == "given"


def test_rescaling_only_counts_before_the_first_layer_with_weights():
    early = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Normalization(mean=0.0, variance=1.0),
                              keras.layers.Conv2D(2, 3)])
    late = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3), keras.layers.Rescaling(0.5)])
    assert rescales_itself(early) is True
    assert rescales_itself(late) is False


def test_text_model_reads_sequence_length_from_text_vectorization(spec_of):
    spec = spec_of("text", classes=bm.TEXT_CLASSES)
    assert spec.modality is Modality.TEXT
    assert spec.input["sequence_length"] == bm.TEXT_LENGTH
    assert spec.gradcam_layer == "text_conv"
    assert spec.complete and spec.notes == ()


# ------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "build, fragment",
    [
        (lambda: keras.Sequential([keras.Input((8, 8, 2)), keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax")]),
         "2 channel"),
        (lambda: keras.Sequential([keras.Input((5, 3), dtype="int32"), keras.layers.Flatten(),
                                   keras.layers.Dense(2, activation="softmax")]),
         "token-id text models take N x sequence-length ids"),
        (lambda: keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(3, activation="sigmoid")]),
         "multi-label"),
        (lambda: keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(1, activation="relu")]),
         "relu activation"),
    ],
    ids=["two_channels", "token_id_grid", "multi_label", "relu_unit"],
)
def test_models_the_workbench_cannot_drive_are_refused_with_advice(build, fragment):
    with pytest.raises(ModelError) as caught:
        inspect_model(build(), classes=["a", "b"])
    message = str(caught.value)
    assert "\n" not in message and fragment in message


def test_two_inputs_are_refused():
    a, b = keras.Input((4,)), keras.Input((4,))
    model = keras.Model([a, b], keras.layers.Dense(2, activation="softmax")(keras.layers.Concatenate()([a, b])))
    with pytest.raises(ModelError, match="2 inputs"):
        inspect_model(model, classes=["a", "b"])


def test_class_lists_must_match_the_outputs(spec_of, tmp_path):
    with pytest.raises(ModelError, match="lists 2 class names but the model has 3 outputs"):
        spec_of("nested", classes=["a", "b"])
    with pytest.raises(ModelError, match="'a' twice"):
        check_classes(["a", "a"], 2, "x")
    with pytest.raises(ModelError, match="control characters"):
        check_classes(["a\u202eb", "c"], 2, "x")
    with pytest.raises(ModelError, match="may not contain"):
        check_classes(["![x](https://tracker.example/p.png)", "c"], 2, "x")
    assert check_classes([" T-shirt/top ", "New York, NY (2)"], 2, "x") == ("T-shirt/top", "New York, NY (2)")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        spec_of("nested", classes=bad)
    bad.write_text(json.dumps({"0": "cat"}))
    with pytest.raises(ModelError, match="JSON list of class names"):
        spec_of("nested", classes=bad)


def test_typed_class_names_and_model_names():
    assert parse_typed_classes(" cat, dog ,bird ") == ["cat", "dog", "bird"]
    assert parse_typed_classes("New York, NY\nBoston\n\n") == ["New York, NY", "Boston"]
    assert suggest_name("/x/My Model (final).keras") == "my-model-final"
    assert suggest_name("../../etc.keras") == "etc"
    assert check_name("pets_v2") == "pets_v2"
    for bad in ["../x", "a/b", "", "Caps", "-lead", "x" * 49]:
        with pytest.raises(ModelError):
            check_name(bad)


# --------------------------------------------- Grad-CAM after registration


def _reference_cam(conv: np.ndarray, grads: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Grad-CAM by its definition: ReLU(sum_k mean(dy/dA_k) A_k), bilinear to size, / max."""
    weights = grads.mean(axis=(0, 1))
    cam = np.maximum((conv * weights).sum(axis=-1), 0.0).astype(np.float32)
    cam = cv2.resize(cam, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return cam / cam.max()


def _images(size: int, n: int = 3) -> list[np.ndarray]:
    return [np.random.default_rng(10 + i).integers(0, 256, (size, size, 3), dtype=np.uint8) for i in range(n)]


def test_gradcam_on_a_registered_nested_mobilenet_matches_the_definition(saved, workspace):
    user_models.register_model(saved["nested"], classes=bm.NESTED_CLASSES, name="nested")
    model = api.load_model("nested")
    images = _images(bm.NESTED_SIZE)
    explanations = api.explain(model, "gradcam", images)

    scale, base, pool, head = model.keras_model.layers
    inner = keras.Model(base.inputs, [base.get_layer("Conv_1").output, base.output])
    x = tf.constant(np.stack(images).astype("float32"))
    with tf.GradientTape() as tape:
        conv, features = inner(scale(x), training=False)
        logits = tf.matmul(pool(features), head.kernel) + head.bias  # the softmax head's pre-activation
        targets = tf.argmax(logits, axis=1)
        scores = tf.gather(logits, targets, axis=1, batch_dims=1)
    grads = tape.gradient(scores, conv).numpy()
    for i, explanation in enumerate(explanations):
        assert explanation.target == int(targets[i])
        assert explanation.params["layer"] == f"{base.name}/Conv_1"
        expected = _reference_cam(conv.numpy()[i], grads[i], (64, 64))
        np.testing.assert_allclose(explanation.values, expected, atol=1e-4)
        # Non-trivial: some evidence, not everywhere the same.
        assert explanation.values.max() == pytest.approx(1.0) and explanation.values.std() > 0.05


def test_gradcam_on_a_registered_sequential_cnn_matches_the_definition(saved, workspace):
    user_models.register_model(saved["cnn"], classes=bm.CNN_CLASSES, overrides={"rescales_inputs": False}, name="cnn")
    model = api.load_model("cnn")
    images = _images(bm.CNN_SIZE)
    explanations = api.explain(model, "gradcam", images)

    conv_a, pool_a, last_conv, gap, logits, softmax = model.keras_model.layers
    x = tf.constant(np.stack(images).astype("float32") / 255.0)  # the model was registered as wanting 0-1
    with tf.GradientTape() as tape:
        conv = last_conv(pool_a(conv_a(x)))
        scores_all = logits(gap(conv))  # the input of the Softmax layer: the paper's pre-softmax score
        targets = tf.argmax(softmax(scores_all), axis=1)
        scores = tf.gather(scores_all, targets, axis=1, batch_dims=1)
    grads = tape.gradient(scores, conv).numpy()
    for i, explanation in enumerate(explanations):
        expected = _reference_cam(conv.numpy()[i], grads[i], (32, 32))
        np.testing.assert_allclose(explanation.values, expected, atol=1e-4)
        assert explanation.values.std() > 0.05


def test_gradcam_on_a_registered_text_model_gives_one_value_per_token(saved, workspace):
    user_models.register_model(saved["text"], classes=bm.TEXT_CLASSES, name="reviews")
    model = api.load_model("reviews")
    [explanation] = api.explain(model, "gradcam", ["Good movie, awful plot!"])
    assert explanation.tokens == ("good", "movie", "awful", "plot")
    assert explanation.values.shape == (4,) and explanation.values.max() == pytest.approx(1.0)


def test_input_size_is_asked_only_for_models_without_a_fixed_size():
    flexible = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 3, name="c"),
                                 keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2, activation="softmax")])
    spec = inspect_model(flexible, classes=["a", "b"], overrides={"rescales_inputs": True})
    assert spec.missing == ("input_size",)
    sized = inspect_model(flexible, classes=["a", "b"], overrides={"rescales_inputs": True, "height": 48, "width": 40})
    assert (sized.input["height"], sized.input["width"]) == (48, 40) and sized.complete
    fixed = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax")])
    with pytest.raises(ModelError, match="fixed at 16 x 16"):
        inspect_model(fixed, classes=["a", "b"], overrides={"rescales_inputs": True, "height": 32, "width": 32})
    assert inspect_model(fixed, classes=["a", "b"], overrides={"height": 16, "width": 16, "rescales_inputs": True}).complete
