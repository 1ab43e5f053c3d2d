"""Reason-corrected fine-tuning (issue 17) on tiny real Keras models.

The image task: colour squares (the class is the square's colour) with a planted shortcut, a
2 x 2 patch in the top-left corner whose brightness also names the class. Marking that corner
"not a reason" must take input-gradient mass out of it, compared with the same fine-tuning
without the penalty; the same seed must give the same weights.
"""
from __future__ import annotations

import keras
import numpy as np
import pytest

from foundation.errors import WorkbenchError
from foundation.types import Modality
from models.model_io import ModelIO, legacy_io
from models.reason_training import (
    ReasonConfig,
    counterfactual_image,
    counterfactual_text,
    input_gradient_mass,
    reason_fine_tune,
    text_token_mask,
    token_gradient_energy,
)
from tests.explainers import tiny_models
from tests.models import tutorial_models

IO = legacy_io(Modality.IMAGE)  # Rescaling inside the model, softmax out
CORNER = np.zeros((tiny_models.IMAGE_SIZE, tiny_models.IMAGE_SIZE), bool)
CORNER[:2, :2] = True


def cued_squares(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Colour squares kept out of the corner, with the corner painted 0 / 120 / 240 by class."""
    rng = np.random.default_rng(seed)
    images = np.full((n, 8, 8, 3), 90, np.uint8)
    labels = rng.integers(0, 3, size=n)
    for image, label in zip(images, labels):
        top, left = rng.integers(2, 5, size=2)
        image[top:top + 3, left:left + 3] = 0
        image[top:top + 3, left:left + 3, label] = 255
        image[:2, :2] = 120 * label
    return images, labels


def _fine_tuned(penalty: float, seed: int = 0, epochs: int = 12) -> keras.Model:
    images, labels = cued_squares(192, seed=1)
    model = tiny_models.flat_image_cnn()
    config = ReasonConfig(penalty=penalty, epochs=epochs, learning_rate=0.02, batch_size=32, seed=seed,
                          counterfactual=False, clipnorm=None, mark_repeats=1)
    reason_fine_tune(model, images, labels, [CORNER] * len(images), IO, config)
    return model


def test_the_penalty_moves_input_gradient_mass_out_of_the_marked_corner():
    test_images, test_labels = cued_squares(48, seed=2)
    masks = np.repeat(CORNER[None], len(test_images), axis=0)
    plain = input_gradient_mass(_fine_tuned(0.0), test_images, masks, IO).mean()
    corrected_model = _fine_tuned(30.0)
    corrected = input_gradient_mass(corrected_model, test_images, masks, IO).mean()
    # Measured: about 0.026 of the squared gradient sits in the corner without the penalty, 0.002
    # with it (seed 0).
    assert plain > 0.01
    assert corrected < plain / 4
    # And the model still names the colours.
    accuracy = (corrected_model.predict(test_images.astype(np.float32), verbose=0).argmax(1) == test_labels).mean()
    assert accuracy > 0.6


def test_the_same_seed_gives_the_same_weights_and_another_seed_does_not():
    first, second, other = _fine_tuned(5.0, epochs=2), _fine_tuned(5.0, epochs=2), _fine_tuned(5.0, seed=1, epochs=2)
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, c) for a, c in zip(first.get_weights(), other.get_weights()))


def test_unmarked_examples_pay_no_penalty_and_counterfactual_copies_join_the_data():
    images, labels = cued_squares(64, seed=3)
    marks = [CORNER if i < 4 else None for i in range(len(images))]
    history = reason_fine_tune(tiny_models.flat_image_cnn(), images, labels, marks, IO,
                               ReasonConfig(penalty=1.0, epochs=1, batch_size=16))
    assert history["penalty"][0] > 0
    unmarked = reason_fine_tune(tiny_models.flat_image_cnn(), images, labels, [None] * len(images), IO,
                                ReasonConfig(penalty=1.0, epochs=1, batch_size=16))
    assert unmarked["penalty"] == [0.0]
    # The copy: the corner painted with the border's median colour (90 here: the grey background).
    copy = counterfactual_image(images[0], CORNER)
    assert (copy[:2, :2] == 90).all() and (copy[~CORNER] == images[0][~CORNER]).all()
    with pytest.raises(WorkbenchError):
        reason_fine_tune(tiny_models.flat_image_cnn(), images, labels, marks[:3], IO, ReasonConfig(epochs=1))


def test_a_tutorial_logits_model_with_rescaling_inside_is_corrected_too():
    size = tutorial_models.IMAGE_SIZE
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=96)
    images = rng.integers(0, 40, size=(96, size, size, 3)).astype(np.uint8)
    # The class is written twice: in a central block (the reason) and in the corner (the shortcut).
    images[:, 12:20, 12:20] = (40 + 60 * labels)[:, None, None, None]
    images[:, :8, :8] = (40 + 60 * labels)[:, None, None, None]
    corner = np.zeros((size, size), bool)
    corner[:8, :8] = True
    io = ModelIO(modality=Modality.IMAGE, output_kind="logits")
    masks = np.repeat(corner[None], len(images), axis=0)
    results = {}
    # Logit models have small input gradients per unit of the 0..1 image: λ is large here.
    # Measured (seed 0): corner share 0.12 without the penalty, 0.035 with it.
    for penalty in (0.0, 3000.0):
        model = tutorial_models.four_class_logits()
        reason_fine_tune(model, images, labels, list(masks), io,
                         ReasonConfig(penalty=penalty, epochs=6, learning_rate=0.01, batch_size=32, clipnorm=None, mark_repeats=1))
        results[penalty] = input_gradient_mass(model, images[:32], masks[:32], io).mean()
    assert results[3000.0] < results[0.0] / 2


@pytest.mark.slow
def test_text_marks_address_words_and_the_penalty_lowers_their_embedding_gradient():
    io = ModelIO(modality=Modality.TEXT)
    # Word indices are into text.split(); a word of punctuation alone ("--", word 2) has no token,
    # so word 3 ("the") is the model's token 2.
    mask = text_token_mask(["Good, movie -- the plot", "bad"], [(3,), (0,)], io, 6)
    assert mask.tolist() == [[0, 0, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]]
    assert counterfactual_text("the plot was good", [1, 3]) == "the was"

    rng = np.random.default_rng(0)
    positive, negative = ["good", "great"], ["bad", "awful"]
    texts, labels, marks = [], [], []
    for _ in range(96):
        label = int(rng.integers(0, 2))
        word = rng.choice(positive if label else negative)
        cue = "movie" if label else "plot"  # the shortcut: the noun names the class
        texts.append(f"the {cue} was {word}")
        labels.append(label)
        marks.append((1,))
    energies = {}
    for penalty in (0.0, 50.0):
        model = tiny_models.text_cnn()
        reason_fine_tune(model, texts, labels, marks, io,
                         ReasonConfig(penalty=penalty, epochs=8, learning_rate=0.05, batch_size=32, clipnorm=None, mark_repeats=1))
        energy = token_gradient_energy(model, texts[:32], io)
        energies[penalty] = energy[:, 1].sum() / energy.sum()
    assert energies[50.0] < energies[0.0] / 2


def test_a_token_id_sigmoid_model_takes_the_text_penalty():
    io = ModelIO(modality=Modality.TEXT, output_kind="sigmoid", vocabulary=tuple(tutorial_models.VOCABULARY),
                 oov_id=1)
    texts = ["good movie", "awful plot", "great actors the", "poor music a"] * 8
    labels = [1, 0, 1, 0] * 8
    model = tutorial_models.token_id_bilstm()
    history = reason_fine_tune(model, texts, labels, [(1,)] * len(texts), io,
                               ReasonConfig(penalty=1.0, epochs=1, batch_size=16))
    assert history["penalty"][0] > 0 and np.isfinite(history["cross_entropy"][0])
