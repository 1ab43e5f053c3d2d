"""Preparing an input for a model: any size and colour layout in, model-sized uint8 RGB out,
and the float tensor the Keras model receives derived from it in one place."""
from __future__ import annotations

import numpy as np
import pytest

from foundation.errors import ModelError
from foundation.types import Modality
from models.loaded import LoadedModel, fit_image
from tests.explainers import tiny_models

SIZE = tiny_models.IMAGE_SIZE


@pytest.fixture(scope="module")
def model() -> LoadedModel:
    return tiny_models.loaded_image_model()


def _raw(model: LoadedModel) -> LoadedModel:
    manifest = {**model.manifest, "input": {**model.manifest["input"], "rescales_inputs": False}}
    return LoadedModel(name="raw", version="v1", manifest=manifest, keras_model=model.keras_model)


def test_every_colour_layout_becomes_three_channels_uint8():
    rgb = np.random.default_rng(0).integers(0, 256, size=(SIZE, SIZE, 3), dtype=np.uint8)
    np.testing.assert_array_equal(fit_image(rgb, SIZE, SIZE), rgb)
    grey = rgb[..., 0]
    for layout in (grey, grey[..., None]):
        out = fit_image(layout, SIZE, SIZE)
        assert out.shape == (SIZE, SIZE, 3) and out.dtype == np.uint8
        assert (out == grey[..., None]).all()
    rgba = np.concatenate([rgb, np.full((SIZE, SIZE, 1), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(fit_image(rgba, SIZE, SIZE), rgb)  # alpha dropped


def test_float_values_are_rounded_and_clipped():
    image = np.array([[[12.6, -3.0, 300.0]]], dtype=np.float64)
    np.testing.assert_array_equal(fit_image(image, 1, 1)[0, 0], [13, 0, 255])


def test_other_sizes_are_resized_and_odd_shapes_refused(model):
    big = np.random.default_rng(1).integers(0, 256, size=(3 * SIZE, 2 * SIZE, 3), dtype=np.uint8)
    prepared = model.prepare_images([big, big[:SIZE // 2, :SIZE // 2]])
    assert prepared.shape == (2, SIZE, SIZE, 3) and prepared.dtype == np.uint8
    with pytest.raises(ValueError, match="grey, RGB or RGBA"):
        model.prepare_images([np.zeros((SIZE, SIZE, 2), np.uint8)])


def test_the_float_tensor_comes_from_the_prepared_images(model):
    images = tiny_models.random_images(3, seed=2)
    np.testing.assert_array_equal(model.to_model_input(list(images)), images.astype(np.float32))
    np.testing.assert_allclose(_raw(model).to_model_input(list(images)), images / 255.0, atol=1e-6)
    # Float variants (a perturbation method's) go straight to the tensor, unrounded.
    variants = images.astype(np.float32) + 0.25
    np.testing.assert_array_equal(model.image_tensor(variants), variants)
    with pytest.raises(ValueError, match="prepare_images first"):
        model.image_tensor(np.zeros((1, SIZE + 1, SIZE, 3), np.float32))


def test_texts_are_prepared_as_strings():
    text_model = tiny_models.loaded_text_model()
    assert text_model.prepare_inputs(["good movie", 3]) == ["good movie", "3"]
    assert text_model.to_model_input(["good movie"]).shape == (1, 1)


def test_the_properties_read_the_typed_manifest(model):
    assert model.input_spec is model.info.input and model.image_size == (SIZE, SIZE)
    assert model.modality is Modality.IMAGE and model.classes == list(model.info.classes)
    assert model.sequence_length == 0  # an image model records no token limit
    text_model = tiny_models.loaded_text_model()
    assert text_model.modality is Modality.TEXT and text_model.sequence_length == tiny_models.SEQUENCE_LENGTH


def test_an_image_model_without_a_recorded_size_is_refused_by_name(model):
    sizeless = LoadedModel(name="sizeless", version="v1", manifest={**model.manifest, "input": {"type": "image"}},
                           keras_model=model.keras_model)
    with pytest.raises(ModelError, match="'sizeless' v1 records no input height and width"):
        sizeless.prepare_images([np.zeros((SIZE, SIZE, 3), np.uint8)])
