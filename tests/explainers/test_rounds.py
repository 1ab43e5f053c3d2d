"""SHAP and LIME in rounds: the agreement measure by hand, early stops, the full budget, the hook."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from explainers.lime_explainer import LIMEExplainer
from explainers.perturb import forward_fn
from explainers import shap_explainer
from explainers.rounds import (
    MemoForward,
    RoundResult,
    agreement,
    round_budgets,
    fixed_record,
    round_plan,
    run_rounds,
    spearman,
    top_iou,
    unsettled,
)
from explainers.shap_explainer import SHAPExplainer, seeded_global_numpy, warm_up_shap
from foundation.types import Modality
from models.loaded import LoadedModel
from models.manifest import InputSpec, Manifest
from tests.explainers import tiny_models

SIZE = 8


@pytest.fixture(scope="module", autouse=True)
def _warm_shap():
    warm_up_shap()


@pytest.fixture(scope="module")
def image_model() -> LoadedModel:
    return tiny_models.loaded_image_model()


@pytest.fixture(scope="module")
def text_model() -> LoadedModel:
    return tiny_models.loaded_text_model()


@pytest.fixture(scope="module")
def corner_model() -> LoadedModel:
    """p(class 0) depends on the top-left 2 x 2 pixels only: a map that settles early."""
    inputs = keras.Input(shape=(SIZE, SIZE, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    x = keras.layers.Cropping2D(((0, SIZE - 2), (0, SIZE - 2)))(x)
    x = keras.layers.Flatten()(x)
    dense = keras.layers.Dense(2, activation="softmax")
    model = keras.Model(inputs, dense(x), name="corner")
    kernel = np.zeros((12, 2), np.float32)
    kernel[:, 0] = np.linspace(0.5, 3.0, 12)
    dense.set_weights([kernel, np.zeros(2, np.float32)])
    manifest = Manifest(modality=Modality.IMAGE, classes=("a", "b"),
                        input=InputSpec(height=SIZE, width=SIZE, channels=3, rescales_inputs=True))
    return LoadedModel(name="corner", version="v1", manifest=manifest.to_dict(), keras_model=model)


# --- the agreement measure, by hand ------------------------------------------------------------


def test_top_ten_percent_iou_by_hand():
    a = np.arange(20, dtype=float)  # top 10 % = the 2 largest: positions 19 and 18
    b = a.copy()
    b[[18, 17]] = b[[17, 18]]  # top 2 of b: positions 19 and 17
    assert top_iou(a, b) == pytest.approx(1 / 3)  # {19} / {17, 18, 19}
    assert top_iou(a, a) == 1.0
    assert top_iou(a, -a) == 0.0  # {18, 19} against {0, 1}
    # Maps: the same on a 2-D array (100 pixels: top 10 each).
    m = np.arange(100, dtype=float).reshape(10, 10)
    shifted = np.roll(m.ravel(), 5).reshape(10, 10)  # top 10 moves to positions 95..99 -> 0..4 and 90..94 -> 95..99
    assert top_iou(m, shifted) == pytest.approx(5 / 15)


def test_spearman_by_hand():
    a = np.arange(10, dtype=float)
    b = a.copy()
    b[[8, 9]] = b[[9, 8]]  # two ranks off by one: rho = 1 - 6 * 2 / (10 * 99)
    assert spearman(a, b) == pytest.approx(1 - 12 / 990)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(a, a ** 3) == pytest.approx(1.0)  # ranks, not values
    # Ties take their average rank: [1, 2, 2, 3] has ranks [1, 2.5, 2.5, 4].
    ties, plain = np.array([1.0, 2.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0, 4.0])
    r1, r2 = np.array([1, 2.5, 2.5, 4]), np.array([1, 2, 3, 4.0])
    expected = np.corrcoef(r1, r2)[0, 1]
    assert spearman(ties, plain) == pytest.approx(expected)
    assert spearman(np.zeros(5), np.zeros(5)) == 1.0 and spearman(np.zeros(5), a[:5]) == 0.0


def test_stable_needs_both_figures():
    a = np.arange(100, dtype=float)
    assert agreement(a, a).stable
    swapped = a.copy()
    swapped[[99, 0]] = swapped[[0, 99]]  # rank order nearly kept, but the top region loses one of ten
    measured = agreement(a, swapped)
    assert measured.iou == pytest.approx(9 / 11) and not measured.stable


def test_round_budgets_double_up_to_the_budget():
    assert round_budgets(100, 500) == [100, 200, 400, 500]
    assert round_budgets(150, 1000) == [150, 300, 600, 1000]
    assert round_budgets(100, 400) == [100, 200, 400]
    assert round_budgets(100, 50) == [50]


def test_a_preview_round_comes_first_only_when_smaller_than_both():
    assert round_budgets(100, 500, preview=50) == [50, 100, 200, 400, 500]
    assert round_plan(100, 500, 50) == ([50, 100, 200, 400, 500], 1)
    assert round_plan(150, 1000, 60) == ([60, 150, 300, 600, 1000], 1)
    assert round_plan(100, 40, 50) == ([40], 0)
    assert round_plan(100, 500, None) == ([100, 200, 400, 500], 0)


def test_a_preview_round_is_never_compared_so_stopping_is_unchanged():
    same = np.arange(20.0)

    def compute(budget):
        return RoundResult(comparable=same, payload=budget, evaluations=budget)

    # Without a preview, two equal maps stop at the second round ...
    result, record = run_rounds([100, 200, 400], compute)
    assert result.payload == 200 and record["stopped"] == "stable"
    # ... with one, the preview (50) is not compared with 100: the stop comes at 200 as before.
    seen = []
    result, record = run_rounds([50, 100, 200, 400], compute, lambda i, r, rec: seen.append(rec["stopped"]), previews=1)
    assert result.payload == 200 and record["stopped"] == "stable" and record["rounds"] == 3
    assert record["round_agreement"][1]["iou"] is None and record["round_agreement"][2]["iou"] == 1.0
    assert seen == ["refining", "refining", "stable"]


def test_unsettled_means_the_budget_was_spent_with_the_last_two_maps_still_disagreeing():
    rng = np.random.default_rng(0)
    noise = [rng.normal(size=50) for _ in range(3)]
    same = np.arange(50.0)

    def record(maps, previews=0):
        budgets = [100, 200, 400][-len(maps):]
        return run_rounds(budgets, lambda b: RoundResult(maps[budgets.index(b)], None, b), previews=previews)[1]

    assert unsettled(record(noise))  # every comparison failed, up to the budget
    assert not unsettled(record([noise[0], same, same]))  # settled in the last round
    assert not unsettled(record([same, same, noise[0]]))  # stopped stable at 200: the third map never came
    assert not unsettled(record(noise[:2], previews=1))  # the only round after a preview compares nothing
    assert not unsettled(fixed_record(400, 400))  # the full budget asked for
    assert not unsettled({})  # a method without rounds
    assert not unsettled({**record(noise), "stopped": "refining"})  # still running


def test_shap_image_preview_comes_sooner_and_changes_neither_the_map_nor_the_evaluations(corner_model, monkeypatch):
    image = tiny_models.random_images(1, seed=3)
    seen = []
    [with_preview] = SHAPExplainer(corner_model, max_evals=2000).explain(
        image, targets=[0], seed=0, on_round=lambda i, e: seen.append(e))
    assert seen[0].extras["evaluations_used"] <= shap_explainer.SHAP_PREVIEW_ROUND + 2
    assert seen[0].extras["round_agreement"][0]["budget"] == shap_explainer.SHAP_PREVIEW_ROUND
    monkeypatch.setattr(shap_explainer, "SHAP_PREVIEW_ROUND", None)
    [without] = SHAPExplainer(corner_model, max_evals=2000).explain(image, targets=[0], seed=0)
    np.testing.assert_array_equal(with_preview.values, without.values)
    assert with_preview.extras["stopped"] == without.extras["stopped"] == "stable"
    assert with_preview.extras["evaluations_used"] == without.extras["evaluations_used"]
    assert with_preview.extras["rounds"] == without.extras["rounds"] + 1


def test_memo_forward_scores_each_distinct_input_once():
    calls = []

    def predict(batch):
        calls.append(len(batch))
        return np.stack([np.asarray(batch, dtype=float).reshape(len(batch), -1).sum(axis=1)] * 2, axis=1)

    memo = MemoForward(predict)
    x = np.arange(12, dtype=np.float32).reshape(3, 2, 2)
    first = memo(x)
    again = memo(np.concatenate([x[::-1], x[:1]]))
    np.testing.assert_array_equal(again, np.concatenate([first[::-1], first[:1]]))
    assert calls == [3] and memo.evaluations == 3


# --- SHAP ------------------------------------------------------------------------------------


def test_shap_stops_early_on_a_stable_map_with_fewer_evaluations(corner_model):
    image = tiny_models.random_images(1, seed=3)
    [exp] = SHAPExplainer(corner_model, max_evals=2000).explain(image, targets=[0], seed=0)
    assert exp.extras["stopped"] == "stable"
    assert exp.extras["budget"] == 2000
    assert exp.extras["evaluations_used"] < 2000
    assert exp.extras["rounds"] == len(exp.extras["round_agreement"]) < len(round_budgets(100, 2000))
    last = exp.extras["round_agreement"][-1]
    assert last["iou"] >= 0.9 and last["spearman"] >= 0.95
    assert exp.extras["model_evaluations"] == exp.extras["evaluations_used"]
    # The evidence sits where the model reads.
    positive = np.clip(exp.values, 0, None)
    assert positive[:2, :2].sum() > 0.9 * positive.sum()


def test_shap_full_budget_is_the_fixed_partition_run(image_model):
    images = tiny_models.random_images(2, seed=1)
    full = SHAPExplainer(image_model, max_evals=300, batch_size=64, stopping="budget").explain(images, seed=4)
    import shap

    predict = forward_fn(image_model, 64)
    masker = shap.maskers.Image("blur(8,8)", (SIZE, SIZE, 3))
    for image, exp in zip(images, full):
        with seeded_global_numpy(4):
            result = shap.explainers.Partition(predict, masker)(
                image[None].astype(np.float32), max_evals=300, batch_size=64, outputs=np.array([exp.target]),
                silent=True,
            )
        np.testing.assert_allclose(exp.values, result.values[0][..., 0].sum(axis=-1), rtol=1e-6, atol=1e-7)
        assert exp.extras["stopped"] == "budget" and exp.extras["rounds"] == 1
        assert exp.extras["budget"] == 300 and exp.extras["evaluations_used"] == exp.extras["model_evaluations"]
        assert exp.params["stopping"] == "budget"


def test_shap_rounds_that_reach_the_budget_give_the_full_budget_map(image_model):
    # Random pixels on the tiny CNN: the map keeps changing, so every round runs; memoised
    # evaluations mean the rounds together score no more than the budget.
    images = tiny_models.random_images(1, seed=1)
    fixed = SHAPExplainer(image_model, max_evals=500, stopping="budget").explain(images, seed=1)[0]
    rounds = SHAPExplainer(image_model, max_evals=500).explain(images, seed=1)[0]
    if rounds.extras["stopped"] == "budget":
        np.testing.assert_allclose(rounds.values, fixed.values, rtol=1e-5, atol=1e-6)
    assert rounds.extras["evaluations_used"] <= 500


def test_shap_rounds_are_deterministic_and_the_hook_sees_each_round(corner_model):
    image = tiny_models.random_images(1, seed=3)
    seen = []
    explainer = SHAPExplainer(corner_model, max_evals=2000)
    [first] = explainer.explain(image, seed=2, on_round=lambda i, e: seen.append((i, e)))
    [again] = explainer.explain(image, seed=2)
    np.testing.assert_array_equal(first.values, again.values)
    assert first.extras["round_agreement"] == again.extras["round_agreement"]
    assert [i for i, _ in seen] == list(range(first.extras["rounds"]))
    assert [e.extras["stopped"] for _, e in seen] == ["refining"] * (len(seen) - 1) + [first.extras["stopped"]]
    used = [e.extras["evaluations_used"] for _, e in seen]
    assert used == sorted(used) and used[-1] == first.extras["evaluations_used"]
    np.testing.assert_array_equal(seen[-1][1].values, first.values)
    assert all(e.values.shape == (SIZE, SIZE) for _, e in seen)


# --- LIME ------------------------------------------------------------------------------------


def test_lime_text_stops_early_and_is_deterministic(text_model):
    texts = ["the movie was good but the plot", "great movie bad plot"]
    seen = []
    first = LIMEExplainer(text_model).explain(texts, seed=1, on_round=lambda i, e: seen.append((i, e)))
    again = LIMEExplainer(text_model).explain(texts, seed=1)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.values, b.values)
        assert a.extras["stopped"] == "stable" and a.extras["budget"] == 5000
        assert a.extras["evaluations_used"] < 5000 and a.extras["rounds"] < len(round_budgets(150, 5000))
    assert len(seen) == first[0].extras["rounds"] + first[1].extras["rounds"]
    assert all(e.tokens is not None and len(e.tokens) == len(e.values) for _, e in seen)


def test_lime_full_budget_is_the_fixed_run_and_rounds_reach_it(text_model, image_model):
    # Text: the fixed run (masks drawn from the seed) against rounds forced to the last round.
    text = "the movie was good but the plot"
    fixed = LIMEExplainer(text_model, num_samples=300, stopping="budget").explain([text], seed=3)[0]
    assert fixed.extras["stopped"] == "budget" and fixed.extras["rounds"] == 1
    assert fixed.params["stopping"] == "budget"
    # 300 samples = rounds of 150 and 300: the last round fits on the fixed run's samples.
    rounds = LIMEExplainer(text_model, num_samples=300).explain([text], seed=3)[0]
    if rounds.extras["stopped"] == "budget":
        np.testing.assert_allclose(rounds.values, fixed.values, rtol=1e-5, atol=1e-7)
    # Images: the pool of perturbations is the library's draw, so the last round equals the fixed run.
    images = tiny_models.random_images(1, seed=5)
    fixed_image = LIMEExplainer(image_model, num_samples=300, stopping="budget").explain(images, seed=2)[0]
    assert fixed_image.extras["evaluations_used"] == 300
    explainer = LIMEExplainer(image_model, num_samples=300)
    explainer.adaptive = True
    seen = []
    rounds_image = explainer.explain(images, seed=2, on_round=lambda i, e: seen.append(e))[0]
    assert rounds_image.extras["evaluations_used"] <= 300
    if rounds_image.extras["stopped"] == "budget":
        np.testing.assert_allclose(rounds_image.values, fixed_image.values, rtol=1e-5, atol=1e-7)
        assert rounds_image.extras["score"] == pytest.approx(fixed_image.extras["score"])
    # A preview round of 60 samples comes first (images only); it is a prefix of the pool.
    assert [e.extras["evaluations_used"] for e in seen] == [60, 150, 300][: len(seen)]
