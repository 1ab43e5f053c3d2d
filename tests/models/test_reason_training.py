"""Reason-corrected fine-tuning (issue 17) on tiny real Keras models.

The hand-checked runs pin consistency=0 and transplants=0 (and mark_repeats=1): their measured
numbers are those of the input-gradient penalty alone; the consistency term and the transplants
have tests of their own at the end.

The image task: colour squares (the class is the square's colour) with a planted shortcut, a
2 x 2 patch in the top-left corner whose brightness also names the class. Marking that corner
"not a reason" must take input-gradient mass out of it, compared with the same fine-tuning
without the penalty; the same seed must give the same weights.
"""
from __future__ import annotations

from dataclasses import replace

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
    transplant_image,
    transplant_text,
)
from models.reason_training import _transplant_hosts
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
                          counterfactual=False, clipnorm=None, mark_repeats=1,
                          consistency=0.0, transplants=0)
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
                         ReasonConfig(penalty=penalty, epochs=6, learning_rate=0.01, batch_size=32, clipnorm=None, mark_repeats=1,
                                      consistency=0.0, transplants=0))
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
                         ReasonConfig(penalty=penalty, epochs=8, learning_rate=0.05, batch_size=32, clipnorm=None, mark_repeats=1,
                                      consistency=0.0, transplants=0))
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


# --- counterfactual consistency and transplants ----------------------------------------------


def _corner_reader(weight: float, bias: float = 0.0) -> keras.Model:
    """8 x 8 x 3 (0..255) -> softmax over 2 classes; logit 1 = `weight` x the red value of pixel
    (0, 0) + `bias`, logit 0 = 0: a model whose only reason is the top-left pixel, checkable by hand."""
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax")])
    kernel = np.zeros((8 * 8 * 3, 2), np.float32)
    kernel[0, 1] = weight  # flattened index 0: pixel (0, 0), red
    model.layers[-1].set_weights([kernel, np.array([0.0, bias], np.float32)])
    return model


def test_the_consistency_term_is_the_mean_squared_log_probability_change_when_the_mark_is_removed():
    images = np.full((4, 8, 8, 3), 90, np.uint8)
    images[:, 0, 0, 0] = 200
    corner = np.zeros((8, 8), bool)
    corner[0, 0] = True
    config = ReasonConfig(penalty=0.0, consistency=1.0, counterfactual=False, epochs=1, batch_size=4, mark_repeats=1,
                          transplants=0)
    history = reason_fine_tune(_corner_reader(0.01), images, [1, 1, 0, 0], [corner] * 4, IO, config)
    # By hand: logits (0, 2.0) on the image, (0, 0.9) on the copy (the corner painted 90, the
    # border's median); log p = logits - log(1 + e^logit1); the term is the mean over the 2
    # classes of the squared change, summed over the 4 marked rows and divided by the 4 rows.
    def log_p(z: float) -> np.ndarray:
        return np.array([0.0, z]) - np.log1p(np.exp(z))
    expected = np.mean((log_p(2.0) - log_p(0.9)) ** 2)  # changes -0.8857 and +0.2143: 0.4152
    assert history["consistency"][0] == pytest.approx(expected, rel=1e-4)
    assert expected == pytest.approx(0.41524, abs=1e-4)
    # A model that ignores the corner changes nothing when it is removed: the term is 0.
    ignoring = reason_fine_tune(_corner_reader(0.0), images, [1, 1, 0, 0], [corner] * 4, IO, config)
    assert ignoring["consistency"][0] == pytest.approx(0.0, abs=1e-9)
    # At weight 0: no second forward pass, the term reads 0.
    assert reason_fine_tune(_corner_reader(0.01), images, [1, 1, 0, 0], [corner] * 4, IO,
                            replace(config, consistency=0.0))["consistency"] == [0.0]


def test_the_consistency_term_moves_the_model_from_the_marked_pixel_to_the_other_evidence():
    # Black 8 x 8 images whose class is written twice: the red value of pixel (0, 0), marked "not a
    # reason", and of pixel (4, 4). The model starts reading the corner only, which already fits
    # the labels, so cross-entropy alone keeps it there; removing the corner then leaves it guessing.
    labels = np.array([0, 1] * 16)
    images = np.zeros((32, 8, 8, 3), np.uint8)
    images[:, 0, 0, 0] = images[:, 4, 4, 0] = np.where(labels == 1, 200, 40)
    corner = np.zeros((8, 8), bool)
    corner[0, 0] = True
    copies = np.stack([counterfactual_image(image, corner) for image in images])  # corner painted 0
    results = {}
    for consistency in (0.0, 1.0):
        model = _corner_reader(0.01, bias=-1.2)
        reason_fine_tune(model, images, labels, [corner] * 32, IO,
                         ReasonConfig(penalty=0.0, consistency=consistency, epochs=10, learning_rate=0.001,
                                      batch_size=16, counterfactual=False, clipnorm=None, mark_repeats=1, transplants=0))
        kernel = model.layers[-1].get_weights()[0]
        on_copies = (model.predict(copies.astype(np.float32), verbose=0).argmax(1) == labels).mean()
        results[consistency] = (kernel[0, 1], kernel[4 * 24 + 4 * 3, 1], on_copies)
    # Measured (seed 0): weights corner / centre 0.0119 / 0.0019 without the term, 0.0048 / 0.0129
    # with it; accuracy on the copies 0.5 (chance) and 1.0.
    (corner_plain, centre_plain, plain), (corner_paired, centre_paired, paired) = results[0.0], results[1.0]
    assert corner_plain > centre_plain and centre_paired > corner_paired
    assert plain == 0.5 and paired == 1.0


def test_transplants_paste_the_marked_content_into_examples_of_another_label():
    source = np.zeros((8, 8, 3), np.uint8)
    source[:2, :2] = 250
    host = np.full((8, 8, 3), 90, np.uint8)
    grafted = transplant_image(source, CORNER, host)
    assert (grafted[:2, :2] == 250).all() and (grafted[~CORNER] == 90).all() and (host == 90).all()
    # Words: inserted where the first marked word stood, in order; their new indices returned.
    assert transplant_text("the plot was good", [1], "a fine film") == ("a plot fine film", (1,))
    assert transplant_text("x y z w", [3, 2], "short") == ("short z w", (1, 2))
    # Hosts: unmarked rows of another label.
    y = np.array([0, 0, 1, 1, 2, 0])
    pairs = _transplant_hosts(y, [0, 1], 3, np.random.default_rng(0))
    assert len(pairs) == 6 and all(y[j] != y[i] and j not in (0, 1) for i, j in pairs)
    assert _transplant_hosts(y, [0], 0, np.random.default_rng(0)) == []


def test_transplants_and_consistency_run_on_a_text_model():
    io = ModelIO(modality=Modality.TEXT)
    texts = ["the movie was good", "the plot was bad", "the movie was great", "the plot was awful"] * 8
    labels = [1, 0, 1, 0] * 8
    history = reason_fine_tune(tiny_models.text_cnn(), texts, labels, [(1,)] * 4 + [()] * 28, io,
                               ReasonConfig(penalty=1.0, consistency=1.0, transplants=2, epochs=1, batch_size=16))
    assert history["penalty"][0] > 0 and history["consistency"][0] > 0 and np.isfinite(history["cross_entropy"][0])
