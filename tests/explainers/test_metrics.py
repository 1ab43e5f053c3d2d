"""Trust metrics on tiny hand-built cases whose right answers are known."""
from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
import pytest

from explainers import metrics
from explainers.gradcam import GradCAM
from foundation.types import Explanation, Modality
from tests.explainers import tiny_models as tm

SIZE = tm.IMAGE_SIZE
REGION = (slice(0, 4), slice(0, 4))  # the only pixels the region model reads


# --- a model whose score depends only on known pixels -------------------------------------------


def region_model(region=REGION, strength: float = 8.0) -> keras.Model:
    """Class 0's logit = strength x mean brightness (0..1) of `region`; the other logits are 0."""
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    x = keras.layers.Flatten()(x)
    dense = keras.layers.Dense(3, activation="softmax")
    outputs = dense(x)
    weights = np.zeros((SIZE, SIZE, 3), np.float32)
    weights[region] = 1.0
    kernel = np.zeros((SIZE * SIZE * 3, 3), np.float32)
    kernel[:, 0] = weights.ravel() * strength / weights.sum()
    dense.set_weights([kernel, np.zeros(3, np.float32)])
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def region_setup():
    model = tm.loaded_image_model(region_model())
    rng = np.random.default_rng(0)
    images = rng.integers(0, 60, size=(40, SIZE, SIZE, 3)).astype(np.uint8)
    images[:, REGION[0], REGION[1]] = 255  # bright region: class 0 is confident
    perfect = np.zeros((SIZE, SIZE))
    perfect[REGION] = 1.0
    return model, list(images), perfect


def _curves(model, images, attribution, **kwargs):
    return metrics.deletion_insertion(model, images, [attribution] * len(images), targets=[0] * len(images),
                                      baseline="black", steps=16, **kwargs)


def test_perfect_attribution_beats_random_which_beats_reversed(region_setup):
    model, images, perfect = region_setup
    good, bad = _curves(model, images, perfect), _curves(model, images, -perfect)
    assert good.deletion_auc.mean() < good.random_deletion_auc.mean() < bad.deletion_auc.mean()
    assert good.insertion_auc.mean() > good.random_insertion_auc.mean() > bad.insertion_auc.mean()
    # By hand: 64 px / 16 steps = 4 px per step, all from the 16-px region first, so after k
    # steps the region's mean brightness is 1 - min(k, 4) / 4 and class 0's logit 8 times that.
    high = 1 / (1 + 2 * math.exp(-8.0))  # logit 8 vs 0, 0
    low = 1 / 3  # region black: all logits 0
    scores = [1 / (1 + 2 * math.exp(-8.0 * (1 - min(k, 4) / 4))) for k in range(17)]
    expected = sum((a + b) / 2 for a, b in zip(scores, scores[1:])) / 16
    assert good.deletion[0, 0] == pytest.approx(high, abs=1e-5)
    assert good.deletion[0, -1] == pytest.approx(low, abs=1e-5)
    assert good.deletion_auc[0] == pytest.approx(expected, abs=1e-4)


def test_constant_attribution_equals_random_order_in_expectation(region_setup):
    model, images, _ = region_setup
    many = images * 5  # 200 inputs; each gets its own random tie-breaking and random order
    curves = _curves(model, many, np.ones((SIZE, SIZE)))
    spread = np.sqrt(curves.deletion_auc.var() / len(many) + curves.random_deletion_auc.var() / len(many))
    assert abs(curves.deletion_auc.mean() - curves.random_deletion_auc.mean()) < 4 * spread
    assert abs(curves.insertion_auc.mean() - curves.random_insertion_auc.mean()) < 4 * spread


def test_curves_are_deterministic_for_a_seed(region_setup):
    model, images, perfect = region_setup
    first = _curves(model, images[:3], np.ones((SIZE, SIZE)), seed=7)
    again = _curves(model, images[:3], np.ones((SIZE, SIZE)), seed=7)
    other = _curves(model, images[:3], np.ones((SIZE, SIZE)), seed=8)
    np.testing.assert_array_equal(first.deletion, again.deletion)
    assert not np.array_equal(first.random_deletion, other.random_deletion)


def test_blur_baseline_keeps_colours_and_removes_detail():
    checker = np.indices((64, 64)).sum(axis=0) % 2 * 255
    image = np.repeat(checker[..., None], 3, axis=2).astype(np.uint8)
    blurred = metrics.image_baseline(image, "blur")
    assert blurred.std() < 0.05 * image.std()
    assert blurred.mean() == pytest.approx(image.mean(), rel=0.02)
    with pytest.raises(ValueError, match="unknown baseline"):
        metrics.image_baseline(image, "fog")


def test_text_curves_remove_and_keep_tokens_in_attribution_order():
    model = tm.loaded_text_model()
    text = "the movie was good"
    tokens = model.tokenize(text)
    values = np.array([0.1, 0.4, 0.0, 0.9])  # order: good, movie, the, was
    curves = metrics.deletion_insertion(model, [text], [values], targets=[1], steps=4)
    deletion_texts = [text, "the movie was", "the was", "was", ""]
    insertion_texts = ["", "good", "movie good", "the movie good", "the movie was good"]
    deletion = model.predict_proba(deletion_texts)[:, 1]
    insertion = model.predict_proba(insertion_texts)[:, 1]
    # 4 tokens and 4 steps: the grid points are exactly k = 0..4 tokens.
    np.testing.assert_allclose(curves.deletion[0], deletion, atol=1e-6)
    np.testing.assert_allclose(curves.insertion[0], insertion, atol=1e-6)
    assert curves.deletion_auc[0] == pytest.approx(metrics.curve_area(np.linspace(0, 1, 5), deletion), abs=1e-6)
    assert len(tokens) == 4 and curves.baseline == "nothing (the words are dropped)"


def test_text_values_must_match_the_model_tokens():
    model = tm.loaded_text_model()
    with pytest.raises(ValueError, match="tokens the model reads"):
        metrics.deletion_insertion(model, ["the movie was good"], [np.ones(3)], targets=[0])


# --- baselines: what a removed pixel or token becomes -----------------------------------------


def _expit(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _brightness_probability(images: np.ndarray) -> np.ndarray:
    """Class 0 of region_model over the whole image: softmax(8 x mean brightness, 0, 0)[0]."""
    logit = 8.0 * np.asarray(images, np.float64).reshape(len(images), -1).mean(axis=1) / 255.0
    return np.exp(logit) / (np.exp(logit) + 2.0)


@pytest.fixture(scope="module")
def brightness_model():
    return tm.loaded_image_model(region_model(region=(slice(None), slice(None))))


def test_baseline_names_per_modality_and_refusals_that_name_them(region_setup):
    model, images, perfect = region_setup
    assert metrics.IMAGE_BASELINES[0] == "blur" and metrics.TEXT_BASELINES[0] == "remove"
    assert set(metrics.IMAGE_BASELINES) == {"blur", "mean", "noise", "black"}
    assert metrics.BASELINES[Modality.TEXT] == ("remove", "mask")
    with pytest.raises(ValueError, match="image inputs; choose one of blur, mean, noise, black") as error:
        metrics.deletion_insertion(model, images[:1], [perfect], targets=[0], baseline="mask")
    assert "text: remove, mask" in str(error.value)
    text_model = tm.loaded_text_model()
    with pytest.raises(ValueError, match="text inputs; choose one of remove, mask"):
        metrics.deletion_insertion(text_model, ["the movie was good"], [np.ones(4)], targets=[0], baseline="blur")
    assert metrics.check_baseline(Modality.IMAGE, None) == "blur"
    assert metrics.check_baseline(Modality.TEXT, None) == "remove"


def test_noise_baseline_is_seeded_uniform_and_in_the_pixel_range():
    image = np.random.default_rng(0).integers(0, 256, size=(64, 64, 3)).astype(np.uint8)
    noise = metrics.image_baseline(image, "noise", seed=3)
    np.testing.assert_array_equal(noise, metrics.image_baseline(image, "noise", seed=3))
    np.testing.assert_array_equal(noise, metrics.image_baseline(image.astype(np.float32), "noise", seed=3))
    assert not np.array_equal(noise, metrics.image_baseline(image, "noise", seed=4))
    assert not np.array_equal(noise, metrics.image_baseline(255 - image, "noise", seed=3))
    assert noise.dtype == np.float32 and noise.shape == image.shape
    assert noise.min() >= 0 and noise.max() <= 255 and np.array_equal(noise, np.rint(noise))
    # Uniform on 0..255: mean 127.5 and std 73.9; 12,288 values put the mean within ~0.7 (1 s.e.).
    assert noise.mean() == pytest.approx(127.5, abs=4) and noise.std() == pytest.approx(73.9, abs=2)
    assert len(np.unique(noise)) == 256


def test_noise_baseline_curves_by_hand(brightness_model):
    # The model reads only the mean brightness, so every point of the curves can be redone in numpy.
    model = brightness_model
    image = np.full((SIZE, SIZE, 3), 200, np.uint8)
    image[:, :4] = 40
    values = np.arange(SIZE * SIZE, dtype=float).reshape(SIZE, SIZE)  # no ties: the order is known
    curves = metrics.deletion_insertion(model, [image], [values], targets=[0], steps=16, baseline="noise", seed=5)
    assert curves.baseline == "uniform noise" and curves.baseline_name == "noise"
    noise = metrics.image_baseline(image.astype(np.float32), "noise", seed=5)
    order = np.argsort(-values.ravel())
    deletion, insertion = [], []
    for count in np.rint(np.linspace(0, 1, 17) * SIZE * SIZE).astype(int):
        taken = np.zeros(SIZE * SIZE, bool)
        taken[order[:count]] = True
        taken = taken.reshape(SIZE, SIZE, 1)
        deletion.append(np.where(taken, noise, image))
        insertion.append(np.where(taken, image, noise))
    np.testing.assert_allclose(curves.deletion[0], _brightness_probability(np.stack(deletion)), atol=1e-5)
    np.testing.assert_allclose(curves.insertion[0], _brightness_probability(np.stack(insertion)), atol=1e-5)
    # The ends: the image itself and all noise (about mid-grey: logit 8 x 0.5 = 4).
    all_noise = float(_brightness_probability(noise[None])[0])
    assert curves.deletion[0, -1] == pytest.approx(all_noise, abs=1e-5)
    assert all_noise == pytest.approx(math.exp(4) / (math.exp(4) + 2), abs=0.05)
    # The random order ends at the same noise image: it is scored against the same baseline.
    assert curves.random_deletion[0, -1] == pytest.approx(all_noise, abs=1e-5)
    assert curves.random_insertion[0, 0] == pytest.approx(all_noise, abs=1e-5)


def test_the_noise_is_the_same_for_an_image_wherever_it_is_scored(brightness_model):
    model = brightness_model
    images = list(np.random.default_rng(1).integers(0, 256, size=(2, SIZE, SIZE, 3)).astype(np.uint8))
    values = np.ones((SIZE, SIZE))
    alone = metrics.deletion_insertion(model, images[1:], [values], targets=[0], baseline="noise", seed=2)
    second = metrics.deletion_insertion(model, images, [values] * 2, targets=[0, 0], baseline="noise", seed=2)
    other_seed = metrics.deletion_insertion(model, images[1:], [values], targets=[0], baseline="noise", seed=3)
    assert alone.deletion[0, -1] == second.deletion[1, -1]  # all noise: the order does not matter
    assert alone.deletion[0, -1] != other_seed.deletion[0, -1]


def test_mean_colour_baseline_keeps_the_mean_brightness(brightness_model):
    # Every pixel replaced by the image's mean colour leaves the mean brightness, and so this
    # model's output, where it was: the curves end where they start. Black ends at 1/3.
    image = np.full((SIZE, SIZE, 3), 230, np.uint8)
    image[:, : SIZE // 2] = 10
    values = np.random.default_rng(0).random((SIZE, SIZE))
    mean = metrics.deletion_insertion(brightness_model, [image], [values], targets=[0], baseline="mean", steps=8)
    assert mean.baseline == "the mean colour"
    assert mean.deletion[0, -1] == pytest.approx(mean.deletion[0, 0], abs=1e-5)
    assert mean.insertion[0, 0] == pytest.approx(mean.insertion[0, -1], abs=1e-5)
    black = metrics.deletion_insertion(brightness_model, [image], [values], targets=[0], baseline="black", steps=8)
    assert black.deletion[0, -1] == pytest.approx(1 / 3, abs=1e-6)


def test_without_a_random_reference_the_curves_are_unchanged(region_setup):
    model, images, perfect = region_setup
    full = _curves(model, images[:4], perfect, random_repeats=3)
    bare = _curves(model, images[:4], perfect, random_repeats=0)
    np.testing.assert_array_equal(full.deletion, bare.deletion)
    np.testing.assert_array_equal(full.insertion_auc, bare.insertion_auc)
    assert np.isnan(bare.random_deletion_auc).all() and np.isnan(bare.random_insertion).all()


# Text: one embedding value per id, averaged over the 4 positions (padding included), is the logit
# of "positive". Ids: 0 padding, 1 out-of-vocabulary, then good, movie, bad.
SCORE_VOCAB = ["good", "movie", "bad"]
SCORE_EMBEDDING = np.array([[0.0], [-2.0], [3.0], [0.5], [-3.0]], np.float32)


def _scoring_head(ids: Any) -> Any:
    embed = keras.layers.Embedding(5, 1, name="embed")
    x = embed(ids)
    x = keras.layers.GlobalAveragePooling1D(name="mean")(x)
    dense = keras.layers.Dense(1, name="logit")
    out = dense(x)
    embed.set_weights([SCORE_EMBEDDING])
    dense.set_weights([np.ones((1, 1), np.float32), np.zeros(1, np.float32)])
    return out


def _string_scoring_model(vocabulary=SCORE_VOCAB):
    from models.manifest import InputSpec, Manifest

    inputs = keras.Input(shape=(1,), dtype="string")
    ids = keras.layers.TextVectorization(output_sequence_length=4, vocabulary=list(vocabulary), name="vectorize")(inputs)
    manifest = Manifest(modality=Modality.TEXT, classes=("negative", "positive"), output={"kind": "binary-logit"},
                        input=InputSpec(sequence_length=4))
    from models.loaded import LoadedModel

    return LoadedModel(name="scores", version="v1", manifest=manifest.to_dict(),
                       keras_model=keras.Model(inputs, _scoring_head(ids)))


def _token_id_scoring_model(oov_id: int | None = 1):
    from models.loaded import LoadedModel
    from models.manifest import InputSpec, Manifest

    inputs = keras.Input(shape=(4,), dtype="int32")
    vocabulary = ("", "[UNK]", *SCORE_VOCAB) if oov_id is not None else ("", "unused", *SCORE_VOCAB)
    spec = InputSpec(sequence_length=4, encoding="token_ids", vocabulary=vocabulary, oov_id=oov_id, padding="post")
    manifest = Manifest(modality=Modality.TEXT, classes=("negative", "positive"), output={"kind": "binary-logit"},
                        input=spec)
    return LoadedModel(name="ids", version="v1", manifest=manifest.to_dict(),
                       keras_model=keras.Model(inputs, _scoring_head(inputs)))


@pytest.mark.parametrize("build", [_string_scoring_model, _token_id_scoring_model], ids=["strings", "token-ids"])
def test_mask_token_keeps_positions_and_reads_as_unknown_where_removal_drops_words(build):
    model = build()
    values = np.array([0.9, 0.1, 0.5])  # order: good, bad, movie
    # Sums of the embedding values (divided by the 4 positions below) for k = 0..3 tokens taken:
    removal_deletion = [3 + 0.5 - 3, 0.5 - 3, 0.5, 0.0]  # good movie bad / movie bad / movie / ""
    removal_insertion = [0.0, 3.0, 3 - 3, 3 + 0.5 - 3]  # "" / good / good bad / good movie bad
    mask_deletion = [0.5, -2 + 0.5 - 3, -2 + 0.5 - 2, -6.0]  # the taken words become OOV (-2)
    mask_insertion = [-6.0, 3 - 2 - 2, 3 - 2 - 3, 0.5]  # from three masks
    for baseline, deletion, insertion in (("remove", removal_deletion, removal_insertion),
                                          ("mask", mask_deletion, mask_insertion)):
        curves = metrics.deletion_insertion(model, ["Good movie, bad!"], [values], targets=[1], steps=3,
                                            baseline=baseline, random_repeats=2)
        np.testing.assert_allclose(curves.deletion[0], [_expit(s / 4) for s in deletion], atol=1e-6)
        np.testing.assert_allclose(curves.insertion[0], [_expit(s / 4) for s in insertion], atol=1e-6)
        # The random orders start and end at the same texts as the explanation's.
        assert curves.random_insertion[0, 0] == pytest.approx(_expit(insertion[0] / 4), abs=1e-6)
        assert curves.random_deletion[0, -1] == pytest.approx(_expit(deletion[-1] / 4), abs=1e-6)
        assert curves.baseline_name == baseline
    assert curves.baseline == "a mask token [UNK]"
    assert metrics.text_mask_token(model) == "[UNK]"


def test_remove_is_the_default_text_baseline_unchanged():
    model = tm.loaded_text_model()
    values = np.array([0.1, 0.4, 0.0, 0.9])  # order: good, movie, the, was
    default = metrics.deletion_insertion(model, ["the movie was good"], [values], targets=[1], steps=4, random_repeats=2)
    named = metrics.deletion_insertion(model, ["the movie was good"], [values], targets=[1], steps=4, random_repeats=2,
                                       baseline="remove")
    for name in ("deletion", "insertion", "random_deletion", "random_insertion"):
        np.testing.assert_array_equal(getattr(default, name), getattr(named, name))
    assert default.baseline == named.baseline == "nothing (the words are dropped)"
    masked = metrics.deletion_insertion(model, ["the movie was good"], [values], targets=[1], steps=4, baseline="mask")
    # The tiny CNN's "[UNK]" embedding differs from its padding's: masking is not removal here.
    assert not np.allclose(masked.deletion, default.deletion)
    expected = model.predict_proba(["the [UNK] was [UNK]", "[UNK] [UNK] [UNK] [UNK]"])[:, 1]
    np.testing.assert_allclose(masked.deletion[0, [2, 4]], expected, atol=1e-6)


def test_mask_token_falls_back_when_the_vocabulary_knows_unk_and_needs_an_oov_id():
    knows_unk = _string_scoring_model(["good", "unk", "bad"])
    assert knows_unk.tokenize("[UNK]") == ["unk"]
    assert metrics.text_mask_token(knows_unk) == "[MASK]"
    with pytest.raises(ValueError, match="no out-of-vocabulary id"):
        metrics.deletion_insertion(_token_id_scoring_model(oov_id=None), ["good movie"], [np.ones(2)], targets=[1],
                                   baseline="mask")


# --- localisation -------------------------------------------------------------------------------


def test_mask_mass_counts_positive_mass_only():
    values = np.array([[1.0, -5.0], [3.0, 0.0]])
    mask = np.array([[True, False], [False, False]])
    assert metrics.mask_mass(values, mask) == pytest.approx(0.25)
    assert metrics.mask_mass(np.ones((4, 4)), np.eye(4, dtype=bool)) == pytest.approx(0.25)  # uniform = area share
    assert metrics.area_share(np.eye(4, dtype=bool)) == pytest.approx(0.25)
    assert math.isnan(metrics.mask_mass(np.zeros((2, 2)), mask))
    batch = metrics.mask_mass(np.stack([values, values * 0 + 1]), np.stack([mask, mask]))
    np.testing.assert_allclose(batch, [0.25, 0.25])
    assert metrics.cue_mass(values, mask) == pytest.approx(0.25)


def test_mask_mass_resizes_a_coarse_map_to_the_mask():
    coarse = np.array([[1.0, 0.0], [0.0, 0.0]])
    mask = np.zeros((8, 8), dtype=bool)
    mask[:4, :4] = True
    # Bilinear 2 -> 8 px along one axis gives the profile 1, 1, .875, .625, .375, .125, 0, 0:
    # 3.5 of its 4 units in the first half, so (3.5 / 4)^2 of the mass lies in the quarter.
    assert metrics.mask_mass(coarse, mask) == pytest.approx((3.5 / 4) ** 2)


def test_pointing_game_hits_misses_ties_and_tolerance():
    mask = np.zeros((8, 8), dtype=bool)
    mask[2:4, 2:4] = True
    inside, outside, near = (np.zeros((8, 8)) for _ in range(3))
    inside[3, 3] = 1.0
    outside[7, 7] = 1.0
    near[3, 5] = 1.0  # two pixels right of the mask
    assert metrics.pointing_game(inside, mask, tolerance=0) == 1.0
    assert metrics.pointing_game(outside, mask, tolerance=0) == 0.0
    assert metrics.pointing_game(near, mask, tolerance=0) == 0.0
    assert metrics.pointing_game(near, mask, tolerance=2) == 1.0
    tie = inside + outside
    assert metrics.pointing_game(tie, mask, tolerance=0) == 0.5
    # A constant map has no peak: it scores the chance level, the mask's share.
    assert metrics.pointing_game(np.ones((8, 8)), mask, tolerance=0) == pytest.approx(4 / 64)
    np.testing.assert_allclose(metrics.pointing_game(np.stack([inside, outside]), np.stack([mask, mask]), tolerance=0), [1, 0])
    assert metrics.default_pointing_tolerance((64, 64)) == 4


def test_rationale_overlap_and_chance():
    tokens = ["shares", "plunge", "after", "warning"]
    rationale = ("plunge", "warning")
    assert metrics.rationale_overlap(tokens, [0.1, 0.9, 0.0, 0.5], rationale) == 1.0
    assert metrics.rationale_overlap(tokens, [0.9, 0.1, 0.5, 0.0], rationale) == 0.0
    assert metrics.rationale_overlap(tokens, [0.9, 0.8, 0.5, 0.0], rationale) == 0.5
    assert metrics.rationale_overlap(tokens, [0.9, 0.8, 0.5, 0.0], rationale, k=1) == 0.0
    assert metrics.rationale_chance(tokens, rationale) == 0.5
    assert math.isnan(metrics.rationale_overlap(tokens, [1, 2, 3, 4], ("missing",)))


# --- agreement ----------------------------------------------------------------------------------


def test_agreement_of_identical_reversed_and_constant_maps():
    a = np.arange(100, dtype=float).reshape(10, 10)
    assert metrics.agreement(a, a) == {"rank_correlation": pytest.approx(1.0), "top_overlap": 1.0}
    reversed_ = metrics.agreement(a, -a)
    assert reversed_["rank_correlation"] == pytest.approx(-1.0) and reversed_["top_overlap"] == 0.0
    # Top 10 % of 100 = 10 positions; shifting by 5 keeps 5 of them: IoU 5 / 15.
    shifted = np.roll(a.ravel(), 5).reshape(10, 10)
    assert metrics.agreement(a, shifted, top_fraction=0.1)["top_overlap"] == pytest.approx(5 / 15)
    assert metrics.agreement(np.ones(5), np.ones(5))["rank_correlation"] == 1.0
    assert metrics.agreement(np.ones(5), np.arange(5.0))["rank_correlation"] == 0.0
    with pytest.raises(ValueError, match="same shape"):
        metrics.agreement(np.ones(4), np.ones(5))


# --- a tiny trained model -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_tiny():
    loaded, test_images, test_labels = tm.trained_colour_model(12)
    assert (loaded.predict_proba(test_images).argmax(axis=1) == test_labels).mean() > 0.8
    return loaded, test_images


def _hand_curves(deletion, random_deletion, insertion, random_insertion) -> metrics.Curves:
    fractions = np.linspace(0.0, 1.0, len(deletion))
    rows = {name: np.asarray([c], dtype=float) for name, c in (
        ("deletion", deletion), ("random_deletion", random_deletion),
        ("insertion", insertion), ("random_insertion", random_insertion))}
    areas = {f"{name}_auc": metrics.curve_area(fractions, row) for name, row in rows.items()}
    return metrics.Curves(fractions=fractions, **rows, **areas, targets=np.array([0]), baseline="black")


def test_curve_tests_count_a_win_only_where_there_is_room_to_win():
    # Deletion: random area 0.5, best possible 0 (gap 0.5); the map's area 0.25 closes half of it.
    # Insertion: random 0.99 vs best 1.0: a gap of 0.01 < MIN_GAP, so the test says nothing.
    curves = _hand_curves([1, 0, 0], [1, 0.5, 0], [0.98, 0.99, 1.0], [0.98, 0.99, 1.0])
    tests = metrics.curve_tests(curves)
    assert tests["deletion"]["gain"] == pytest.approx(0.25) and tests["deletion"]["gap"] == pytest.approx(0.5)
    assert tests["deletion"]["won"] and tests["deletion"]["informative"]
    assert not tests["insertion"]["informative"] and not tests["insertion"]["won"]
    # A gain below a quarter of the gap is not a win: 0.1 of 0.5.
    close = _hand_curves([1, 0.3, 0], [1, 0.5, 0], [0, 0.5, 1], [0, 0.5, 1])
    assert not metrics.curve_tests(close)["deletion"]["won"]


# --- trust summary ------------------------------------------------------------------------------


def test_trust_summary_reports_figures_and_a_verdict(region_setup):
    model, images, perfect = region_setup
    explanation = Explanation(method="handmade", modality=Modality.IMAGE, target=0, target_label="cat",
                              values=perfect, model_name=model.name, model_version=model.version, seconds=0.0)
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    mask[REGION] = True
    report = metrics.trust_summary(model, explanation, images[0], mask, baseline="black")
    assert report.level == "good" and report.verdict.startswith("Faithful")
    assert report.figures["mask_mass"] == pytest.approx(1.0)
    assert report.figures["mask_share"] == pytest.approx(16 / 64)
    assert report.figures["pointing_game"] == 1.0
    # Chance: the 4 x 4 corner grown by the 1-pixel tolerance (a 3 x 3 cross) covers 5 x 5 - 1 pixels.
    assert report.figures["pointing_chance"] == pytest.approx(24 / 64)
    flat = Explanation(method="flat", modality=Modality.IMAGE, target=0, target_label="cat",
                       values=np.ones((SIZE, SIZE)), model_name=model.name, model_version=model.version, seconds=0.0)
    assert metrics.trust_summary(model, flat, images[0], baseline="black").level in {"poor", "mixed"}


def test_trust_summary_adds_agreement_with_other_methods(trained_tiny):
    model, images = trained_tiny
    explanation = GradCAM(model).explain(images[:1])[0]
    other = Explanation(method="edges", modality=Modality.IMAGE, target=explanation.target, target_label="",
                        values=np.ones((SIZE, SIZE)), model_name=model.name, model_version=model.version, seconds=0.0)
    report = metrics.trust_summary(model, explanation, images[0], others=[other])
    assert "agreement_edges_rank" in report.figures and "agreement_edges_top" in report.figures
    assert report.seconds < 5
