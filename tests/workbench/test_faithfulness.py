"""workbench.faithfulness: every method scored under every baseline, each against its own random reference."""
from __future__ import annotations

import pytest

from explainers import metrics
from foundation.errors import WorkbenchError
from tests.explainers import tiny_models as tm
from workbench import api, faithfulness


@pytest.fixture(scope="module")
def image_setup():
    # A name of its own: api.explain caches by model name and version.
    model = tm.loaded_image_model(name="faithfulness-tiny-image")
    return model, list(tm.random_images(5, seed=4))


def test_one_row_per_method_and_baseline_each_with_the_random_reference_of_its_baseline(image_setup):
    model, images = image_setup
    calls = []
    rows = faithfulness.faithfulness_table(model, images, ["gradcam", "gradcam++"], steps=8, seed=1,
                                           progress=lambda done, total, message: calls.append((done, total, message)))
    assert [(r["method"], r["baseline"]) for r in rows] == [
        (m, b) for b in metrics.IMAGE_BASELINES for m in ("gradcam", "gradcam++")]
    assert {r["baseline_description"] for r in rows} == {"a blurred copy", "the mean colour", "uniform noise", "black"}
    # 2 explanations + 2 methods x 4 baselines scored, then "done".
    assert [c[0] for c in calls] == list(range(11)) and {c[1] for c in calls} == {10} and calls[-1][2] == "done"
    by_key = {(r["method"], r["baseline"]): r for r in rows}
    targets = [int(t) for t in model.predict_proba(images).argmax(axis=1)]
    explanations = api.explain(model, "gradcam++", images, targets, seed=1)
    for baseline in metrics.IMAGE_BASELINES:
        # The same reference for both methods (it does not depend on the map) ...
        assert by_key["gradcam", baseline]["random_deletion_auc"] == by_key["gradcam++", baseline]["random_deletion_auc"]
        # ... and exactly what deletion_insertion gives for the method under that baseline.
        direct = metrics.deletion_insertion(model, images, explanations, targets=targets, steps=8, baseline=baseline,
                                            seed=1, random_repeats=faithfulness.DEFAULT_RANDOM_REPEATS)
        row = by_key["gradcam++", baseline]
        assert row["deletion_auc"] == pytest.approx(direct.deletion_auc.mean(), abs=1e-12)
        assert row["insertion_auc"] == pytest.approx(direct.insertion_auc.mean(), abs=1e-12)
        assert row["random_deletion_auc"] == pytest.approx(direct.random_deletion_auc.mean(), abs=1e-12)
        assert row["random_insertion_auc"] == pytest.approx(direct.random_insertion_auc.mean(), abs=1e-12)
        assert row["deletion_gain"] == pytest.approx(direct.random_deletion_auc.mean() - direct.deletion_auc.mean())
        assert row["n"] == 5 and 0.0 <= row["deletion_below_random"] <= 1.0
        assert {by_key[m, baseline]["deletion_rank"] for m in ("gradcam", "gradcam++")} == {1, 2}
    # The baselines really differ: the all-black end is not the all-noise end.
    assert by_key["gradcam", "black"]["random_deletion_auc"] != by_key["gradcam", "noise"]["random_deletion_auc"]
    ranks = faithfulness.rankings(rows)
    assert set(ranks) == set(metrics.IMAGE_BASELINES) and sorted(ranks["noise"]["deletion"]) == ["gradcam", "gradcam++"]
    # Paired differences to Grad-CAM: the difference of the means, positive = Grad-CAM++ better.
    paired = faithfulness.differences(rows, "gradcam")["noise"]["gradcam++"]
    one, other = by_key["gradcam", "noise"], by_key["gradcam++", "noise"]
    assert len(one["deletion_areas"]) == 5
    assert paired["deletion"] == pytest.approx(one["deletion_auc"] - other["deletion_auc"], abs=1e-12)
    assert paired["insertion"] == pytest.approx(other["insertion_auc"] - one["insertion_auc"], abs=1e-12)
    assert paired["deletion_se"] >= 0


def test_text_rows_for_removal_and_the_mask_token():
    model = tm.loaded_text_model(name="faithfulness-tiny-text")
    texts = ["the movie was good", "bad plot", "great movie the plot was awful"]
    rows = faithfulness.faithfulness_table(model, texts, ["lime"], steps=4, params={"lime": {"num_samples": 60}})
    assert [r["baseline"] for r in rows] == ["remove", "mask"]
    assert [r["baseline_description"] for r in rows] == ["nothing (the words are dropped)", "a mask token [UNK]"]
    remove, mask = rows
    assert remove["random_deletion_auc"] != mask["random_deletion_auc"]
    assert remove["deletion_rank"] == mask["deletion_rank"] == 1


def test_refusals_name_the_valid_baselines(image_setup):
    model, images = image_setup
    with pytest.raises(ValueError, match="choose one of blur, mean, noise, black"):
        faithfulness.faithfulness_table(model, images[:1], ["gradcam"], baselines=["remove"])
    with pytest.raises(WorkbenchError, match="at least one method"):
        faithfulness.faithfulness_table(model, images[:1], [])
    with pytest.raises(WorkbenchError, match="random_repeats"):
        faithfulness.faithfulness_table(model, images[:1], ["gradcam"], random_repeats=0)


def test_cli_prints_the_table_as_json_and_refuses_a_baseline_of_the_other_modality(capsys):
    import json

    from commandline.cli import main
    from models import store

    if "shapes" not in store.model_names():
        pytest.skip("sample model shapes is not in models/zoo (run `make zoo`)")
    code = main(["faithfulness", "--model", "shapes", "--methods", "gradcam", "--baselines", "noise,blur",
                 "--n", "3", "--steps", "4", "--random-repeats", "1", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert (result["model"], result["split"], result["n"], result["seed"]) == ("shapes", "test", 3, 0)
    assert result["baselines"] == ["noise", "blur"]
    assert [(r["method"], r["baseline_description"]) for r in result["rows"]] == [("gradcam", "uniform noise"),
                                                                                 ("gradcam", "a blurred copy")]
    assert result["rankings"]["noise"] == {"deletion": ["gradcam"], "insertion": ["gradcam"]}
    assert result["differences"] == {"noise": {}, "blur": {}}  # one method: nothing to compare with
    assert not any(key.endswith("_areas") for key in result["rows"][0])  # only with --per-input
    code = main(["faithfulness", "--model", "shapes", "--methods", "gradcam", "--baselines", "mask", "--n", "2"])
    assert code == 2 and "choose one of blur, mean, noise, black" in capsys.readouterr().err
