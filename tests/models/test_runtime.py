"""models.runtime: the LiteRT scoring forward on a tiny conv model (seconds, not minutes).

The converted forward matches Keras within the stated tolerance, is cached in the workspace and
reused, falls back to Keras with a one-sentence notice when conversion fails or disagrees, and
WORKBENCH_RUNTIME=keras turns it off. The size and speed gates are lowered here: the tiny model is
below models.runtime.MIN_PIXELS and too small to be reliably faster.
"""
from __future__ import annotations

import logging

import keras
import numpy as np
import pytest

from explainers import perturb
from foundation.types import Modality
from models import runtime
from models.loaded import LoadedModel
from models.manifest import InputSpec, Lineage, Manifest

SIZE = 16
CLASSES = ("a", "b", "c")


def tiny_conv(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(len(CLASSES), activation="softmax")(x)
    return keras.Model(inputs, outputs)


def loaded(keras_model: keras.Model | None = None, sha256: str | None = "ab" * 32,
           modality: Modality = Modality.IMAGE) -> LoadedModel:
    manifest = Manifest(modality=modality, classes=CLASSES, lineage=Lineage(sha256=sha256),
                        input=InputSpec(height=SIZE, width=SIZE, channels=3, rescales_inputs=False))
    return LoadedModel(name="tiny", version="v1", manifest=manifest.to_dict(), keras_model=keras_model or tiny_conv())


def images(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, SIZE, SIZE, 3), dtype=np.uint8)


@pytest.fixture(autouse=True)
def gates(workspace, monkeypatch):
    """A fresh workspace per test; the size and speed gates opened for the tiny model."""
    monkeypatch.delenv(runtime.ENV_VAR, raising=False)
    monkeypatch.setattr(runtime, "MIN_PIXELS", 0)
    monkeypatch.setattr(runtime, "MIN_SPEEDUP", 0.0)
    return workspace


def test_converted_forward_matches_keras_within_tolerance(workspace):
    model = loaded()
    status = runtime.scorer(model).wait()
    assert (status.runtime, status.state, status.source) == ("litert", "ready", "converted"), status
    assert status.max_abs_difference <= runtime.TOLERANCE
    assert "LiteRT" in status.describe()
    batch = model.image_tensor(images(37))  # not a multiple of the sub-batch: the last part is shorter
    ours = runtime.scorer(model)(batch)
    keras_probabilities = model.forward(batch)
    assert ours.shape == (37, 3) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, keras_probabilities, atol=runtime.TOLERANCE)
    assert np.array_equal(ours.argmax(1), keras_probabilities.argmax(1))
    # Perturbation scoring goes through it; displayed predictions stay on Keras.
    np.testing.assert_array_equal(perturb.batched_probabilities(model, batch, batch_size=10), ours)
    np.testing.assert_array_equal(model.predict_proba(list(images(37))), keras_probabilities)
    cached = list((workspace / "cache" / runtime.CACHE_FOLDER / ("ab" * 32)).glob("*/model.tflite"))
    assert len(cached) == 1 and runtime.runtime_key((SIZE, SIZE, 3)) == cached[0].parent.name


def test_a_second_load_reuses_the_cached_conversion(monkeypatch):
    keras_model = tiny_conv()
    first = loaded(keras_model)
    assert runtime.scorer(first).wait().source == "converted"

    def must_not_convert(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(runtime, "convert", must_not_convert)
    again = loaded(keras_model)  # the same file (sha256) loaded again, e.g. in a new process
    status = runtime.scorer(again).wait()
    assert (status.runtime, status.source) == ("litert", "cache"), status
    batch = again.image_tensor(images(5))
    np.testing.assert_allclose(runtime.scorer(again)(batch), again.forward(batch), atol=runtime.TOLERANCE)


def test_a_failing_conversion_falls_back_to_keras_with_a_notice(monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("unsupported op FancyOp\nmore detail")

    monkeypatch.setattr(runtime, "convert", broken)
    model = loaded()
    with caplog.at_level(logging.WARNING, logger="models.runtime"):
        status = runtime.scorer(model).wait()
    assert (status.runtime, status.state) == ("keras", "fallback")
    assert status.notice == ("Perturbation scoring uses Keras: the LiteRT conversion failed "
                             "(RuntimeError: unsupported op FancyOp).")
    assert status.describe() == status.notice
    assert status.notice in caplog.text
    batch = model.image_tensor(images(4))
    np.testing.assert_array_equal(runtime.scorer(model)(batch), model.forward(batch))


def test_a_disagreeing_conversion_is_refused_and_not_tried_again(monkeypatch):
    real_runner = runtime.interpreter_runner

    def off_by_a_little(*args, **kwargs):
        run = real_runner(*args, **kwargs)
        return lambda batch: run(batch) + np.float32(1e-3)  # still the same top class

    monkeypatch.setattr(runtime, "interpreter_runner", off_by_a_little)
    model = loaded()
    status = runtime.scorer(model).wait()
    assert (status.runtime, status.state) == ("keras", "fallback")
    assert "differ from the Keras model's by up to" in status.notice and "tolerance 1e-04" in status.notice

    monkeypatch.setattr(runtime, "convert", lambda *a, **k: pytest.fail("converted again"))
    model_again = loaded()
    again = runtime.scorer(model_again).wait()
    assert (again.runtime, again.notice) == ("keras", status.notice)


def test_a_model_not_faster_than_keras_keeps_keras(monkeypatch):
    monkeypatch.setattr(runtime, "MIN_SPEEDUP", 1e9)
    model = loaded()
    status = runtime.scorer(model).wait()
    assert status.runtime == "keras" and "not faster than Keras" in status.notice


def test_the_environment_variable_turns_it_off(monkeypatch):
    monkeypatch.setenv(runtime.ENV_VAR, "keras")
    monkeypatch.setattr(runtime, "convert", lambda *a, **k: pytest.fail("converted although turned off"))
    model = loaded()
    status = runtime.scorer(model).wait()
    assert (status.runtime, status.state) == ("keras", "off")
    assert status.describe() == "WORKBENCH_RUNTIME=keras: perturbation scoring uses Keras."
    batch = model.image_tensor(images(3))
    np.testing.assert_array_equal(perturb.batched_probabilities(model, batch), model.forward(batch))


def test_an_unknown_value_keeps_keras_and_says_so(monkeypatch):
    monkeypatch.setenv(runtime.ENV_VAR, "tensorrt")
    model = loaded()
    status = runtime.scorer(model).wait()
    assert status.runtime == "keras" and "'tensorrt' is not one of auto, keras" in status.notice


@pytest.mark.parametrize("kwargs, reason", [
    ({"sha256": None}, "records no sha256"),
    ({"modality": Modality.TEXT}, "text models"),
])
def test_models_that_keep_keras_without_trying(monkeypatch, kwargs, reason):
    monkeypatch.setattr(runtime, "convert", lambda *a, **k: pytest.fail("tried to convert"))
    model = loaded(**kwargs)
    status = runtime.scorer(model).wait()
    assert (status.runtime, status.state, status.notice) == ("keras", "off", None)
    assert reason in status.reason


def test_small_inputs_keep_keras(monkeypatch):
    monkeypatch.setattr(runtime, "MIN_PIXELS", 96 * 96)
    model = loaded()
    status = runtime.scorer(model).wait()
    assert status.state == "off" and "already cheap" in status.reason


def test_scoring_uses_keras_until_the_background_conversion_is_ready(monkeypatch):
    import threading

    release = threading.Event()
    real_convert = runtime.convert

    def slow_convert(*args, **kwargs):
        assert release.wait(60)
        return real_convert(*args, **kwargs)

    monkeypatch.setattr(runtime, "convert", slow_convert)
    model = loaded()
    batch = model.image_tensor(images(6))
    scorer = runtime.scorer(model)
    first = scorer(batch)  # starts the conversion in the background and does not wait for it
    assert scorer.status().state == "converting" and "while the LiteRT conversion runs" in scorer.status().describe()
    np.testing.assert_array_equal(first, model.forward(batch))
    release.set()
    assert scorer.wait(120).runtime == "litert"
    np.testing.assert_allclose(scorer(batch), model.forward(batch), atol=runtime.TOLERANCE)


def test_loaded_model_score_and_scoring_runtime():
    model = loaded()
    assert model.scoring_runtime().runtime == "litert"
    batch = model.image_tensor(images(3))
    np.testing.assert_array_equal(model.score(batch), runtime.scorer(model)(batch))


def test_an_interpreter_failing_on_a_batch_switches_to_keras(monkeypatch):
    model = loaded()
    scorer = runtime.scorer(model)
    assert scorer.wait().runtime == "litert"

    def broken(batch):
        raise RuntimeError("tensor arena exhausted")

    scorer._runner = broken
    batch = model.image_tensor(images(4))
    np.testing.assert_array_equal(scorer(batch), model.forward(batch))
    assert scorer.status().runtime == "keras" and "failed on a batch" in scorer.status().notice
