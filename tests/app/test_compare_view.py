"""The Compare view: the agreement maths and sentences on hand-made maps, and the Explain
image page's SHAP, LIME and Compare tabs on the shipped shapes model (AppTest)."""
from __future__ import annotations

import numpy as np
import pytest

from foundation.types import Explanation, Modality
from tests.app.conftest import start_app
from ui import compare_views

PAGE_STATE = {"image_model": "shapes", "image_shap_max_evals": 100, "image_lime_num_samples": 200}


def _image_explanation(values, method="m") -> Explanation:
    return Explanation(method=method, modality=Modality.IMAGE, target=0, target_label="a",
                       values=np.asarray(values, dtype=np.float32), model_name="x", model_version="v1", seconds=0.0)


# --- pure parts -------------------------------------------------------------------------------------


def test_normalised_scales_by_the_largest_magnitude():
    np.testing.assert_allclose(compare_views.normalised(np.array([[-4.0, 2.0], [1.0, 0.0]])),
                               [[-1.0, 0.5], [0.25, 0.0]])
    np.testing.assert_array_equal(compare_views.normalised(np.zeros((2, 2))), np.zeros((2, 2)))


def test_grey_underlay_keeps_brightness_and_drops_colour():
    image = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [10, 10, 10]]], dtype=np.uint8)
    grey = compare_views.grey_underlay(image)
    assert grey.dtype == np.uint8 and grey.shape == image.shape
    np.testing.assert_array_equal(grey[..., 0], [[76, 150], [29, 10]])  # 0.299, 0.587, 0.114 weights
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()


def test_shared_scale_overlay_colours_by_relative_value():
    image = np.full((2, 2, 3), 100, dtype=np.uint8)
    # Same map at two magnitudes: identical colours on the shared relative scale.
    small = compare_views.shared_scale_overlay(image, np.array([[0.01, -0.02], [0.0, 0.02]]), alpha=1.0)
    large = compare_views.shared_scale_overlay(image, np.array([[5.0, -10.0], [0.0, 10.0]]), alpha=1.0)
    np.testing.assert_array_equal(small, large)
    assert tuple(large[0, 1]) == (33, 84, 160)  # -1: the diverging map's blue end
    assert tuple(large[1, 1]) == (196, 84, 10)  # +1: its orange end
    assert tuple(large[1, 0]) == (247, 247, 247)  # 0: near white


def test_agreements_of_identical_reversed_and_partial_maps():
    ramp = np.arange(100, dtype=np.float64).reshape(10, 10)
    half = ramp.copy()
    half[9] = ramp[9][::-1]  # the top row (the 10 largest values) reversed among itself
    shifted = np.roll(ramp.ravel(), 5).reshape(10, 10)
    maps = [_image_explanation(ramp), _image_explanation(-ramp), _image_explanation(half), _image_explanation(shifted)]
    pairs = {(p.first, p.second): p for p in compare_views.agreements(maps, ["A", "B", "C", "D"])}
    assert len(pairs) == 6
    assert pairs["A", "B"].rank_correlation == pytest.approx(-1.0)
    assert pairs["A", "B"].top_overlap == 0.0
    assert pairs["A", "C"].top_overlap == 1.0  # same ten top pixels, in another order
    # Shifting by 5 keeps 5 of the top 10 (95..99 -> 0..4 wrap out): IoU 5 / 15.
    assert pairs["A", "D"].top_overlap == pytest.approx(5 / 15)
    assert pairs["A", "D"].shared == 5 and pairs["A", "D"].top_k == 10


def test_agreement_sentences_say_it_plainly():
    strong = compare_views.PairAgreement("SHAP", "LIME", 0.82, 0.5, 10)
    sentence = compare_views.agreement_sentence(strong)
    assert sentence.startswith("SHAP and LIME agree strongly")
    assert "rank correlation +0.82" in sentence and "top 10%, 50% are in both" in sentence
    assert "contradict" in compare_views.agreement_sentence(compare_views.PairAgreement("A", "B", -0.6, 0.0, 10))
    words = compare_views.agreement_sentence(compare_views.PairAgreement("A", "B", 0.45, 1 / 3, 2), unit="words")
    assert "agree moderately" in words and "share 1 of their 2 strongest words" in words


# --- the page ---------------------------------------------------------------------------------------


def _open_tab(at, view: str) -> None:
    """Switch tabs as a click does: the tab state and its query parameter (the tabs are bound to the URL)."""
    at.session_state["image_view"] = view
    at.query_params["image_view"] = view
    at.run()
    assert not at.exception, at.exception


def _captions(at) -> list[str]:
    return [caption for element in at.get("image") for caption in element.captions]


def test_compare_tab_shows_three_maps_on_one_scale_with_agreement():
    at = start_app(image_view="Compare", **PAGE_STATE)
    assert not at.exception, at.exception
    captions = _captions(at)
    assert [c.split(" · ")[0] for c in captions[1:]] == ["Grad-CAM", "SHAP", "LIME"]
    [table] = at.dataframe
    assert list(table.value["Pair"]) == ["Grad-CAM vs SHAP", "Grad-CAM vs LIME", "SHAP vs LIME"]
    assert table.value["Rank correlation"].between(-1, 1).all()
    assert table.value["Top overlap"].between(0, 1).all()
    sentences = [m.value for m in at.markdown if m.value.startswith("- ")]
    assert len(sentences) == 3 and all("rank correlation" in s for s in sentences)
    assert any("wb-legend" in h.proto.body for h in at.get("html"))
    assert "one colour scale" in " ".join(c.value for c in at.caption)
    [status] = at.get("status")
    assert status.label.startswith("3 explanations") and status.state == "complete"
    assert any(b.label.startswith("⬇️ Download report") for b in at.get("download_button"))


def test_method_settings_survive_a_visit_to_compare_and_repeats_come_from_cache():
    at = start_app(image_view="SHAP", **PAGE_STATE)
    assert not at.exception, at.exception
    at.number_input(key="image_shap_max_evals").set_value(150).run()
    at.radio(key="image_shap_masker").set_value("inpaint").run()
    assert not at.exception, at.exception
    assert "SHAP for “" in _captions(at)[-1]
    _open_tab(at, "LIME")
    at.radio(key="image_lime_segmentation").set_value("quickshift").run()
    assert not at.exception, at.exception
    _open_tab(at, "Compare")
    assert not at.exception, at.exception
    settings = " ".join(c.value for c in at.caption)
    assert "150 evaluations · inpaint masker" in settings and "quickshift segments" in settings
    # SHAP and LIME were computed in their tabs with these settings: Compare reuses them.
    captions = _captions(at)
    assert "from cache" in captions[2] and "from cache" in captions[3]
    # And back in the SHAP tab the chosen budget is still there.
    _open_tab(at, "SHAP")
    assert at.number_input(key="image_shap_max_evals").value == 150


def test_lime_tab_offers_both_segmentations():
    at = start_app(image_view="LIME", **PAGE_STATE)
    assert not at.exception, at.exception
    assert at.radio(key="image_lime_segmentation").options == ["SLIC", "Quickshift"]
    at.number_input(key="image_lime_n_segments").set_value(20).run()
    assert not at.exception
    assert "about 20 segments" in " ".join(c.value for c in at.caption)


def test_explained_class_follows_the_prediction_when_the_image_changes():
    from workbench import api, datasets

    model = api.load_model("shapes")
    data = datasets.load("shapes", "test")
    predicted = [model.classes[int(p.argmax())] for p in api.predict(model, list(data.x[:3]))]
    at = start_app(**PAGE_STATE)
    assert at.selectbox(key="target_class").value == predicted[0]
    other = next(c for c in model.classes if c != predicted[0])
    at.selectbox(key="target_class").set_value(other).run()
    assert at.selectbox(key="target_class").value == other  # the user's choice holds for this image
    at.number_input(key="sample_index_shapes_test").set_value(2).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="target_class").value == predicted[2]
    assert f"for “{predicted[2]}”" in " ".join(_captions(at))
