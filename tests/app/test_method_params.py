"""The settings widgets are built from the methods' declared parameters: the keys, defaults,
bounds and choices the pages rely on, the variant choice, and the choice they return."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _settings_app(prefix: str, method: str) -> None:
    import streamlit as st

    from ui import method_params

    method_params.keep_state(prefix)
    chosen = method_params.widgets(prefix, method)
    st.caption(f"{chosen.method}|{dict(chosen.params)}|{chosen.seed}|{chosen.describe()}")


def _run(prefix: str, method: str) -> AppTest:
    at = AppTest.from_function(_settings_app, args=(prefix, method), default_timeout=60).run()
    assert not at.exception, at.exception
    return at


def _choice(at: AppTest) -> list[str]:
    return at.caption[-1].value.split("|")


def test_image_shap_widgets_have_the_declared_keys_bounds_and_defaults():
    at = _run("image", "shap")
    evals = at.number_input(key="image_shap_max_evals")
    assert (evals.value, evals.min, evals.max, evals.step) == (500, 50, 5000, 50)
    assert at.number_input(key="image_shap_seed").value == 0
    assert at.radio(key="image_shap_masker").options == ["Blur", "Inpaint (Telea)"]
    assert _choice(at) == ["shap", "{'max_evals': 500, 'masker': 'blur'}", "0",
                           "SHAP · 500 evaluations · blur masker · seed 0"]
    at.number_input(key="image_shap_max_evals").set_value(150).run()
    at.radio(key="image_shap_masker").set_value("inpaint").run()
    assert _choice(at)[3] == "SHAP · 150 evaluations · inpaint masker · seed 0"


def test_lime_segment_count_is_offered_only_for_slic():
    at = _run("image", "lime")
    assert at.number_input(key="image_lime_num_samples").value == 1000
    assert at.number_input(key="image_lime_n_segments").value == 50
    assert not at.number_input(key="image_lime_n_segments").disabled
    assert _choice(at)[3] == "LIME · 1,000 samples · SLIC, about 50 segments · seed 0"
    at.radio(key="image_lime_segmentation").set_value("quickshift").run()
    assert at.number_input(key="image_lime_n_segments").disabled
    assert "n_segments" not in _choice(at)[1]
    assert _choice(at)[3] == "LIME · 1,000 samples · quickshift segments · seed 0"


def test_text_pages_show_only_the_parameters_that_apply_to_text():
    at = _run("text", "lime")
    assert at.number_input(key="text_lime_num_samples").value == 5000
    assert not [r for r in at.radio if r.key and r.key.startswith("text_lime")]
    assert _choice(at)[1] == "{'num_samples': 5000}"


def test_gradcam_offers_its_variant_and_no_seed():
    at = _run("image", "gradcam")
    assert at.radio(key="cam_method").options == ["Grad-CAM", "Grad-CAM++"]
    assert not at.number_input
    at.radio(key="cam_method").set_value("gradcam++").run()
    assert _choice(at) == ["gradcam++", "{}", "0", "Grad-CAM++"]
    text = _run("text", "gradcam")
    assert text.radio(key="text_cam_method").value == "gradcam"


def _variant_app() -> None:
    import streamlit as st

    from ui import method_params

    method_params.keep_state("image")
    st.caption(" ".join(method_params.chosen_variant("image", m) for m in ("gradcam", "shap", "lime")))


def test_chosen_variant_reads_the_pick_without_rendering_the_tab():
    at = AppTest.from_function(_variant_app, default_timeout=60).run()
    assert not at.exception, at.exception
    assert at.caption[0].value == "gradcam shap lime"  # each method's own tab runs itself by default
    at.session_state["cam_method"] = "gradcam++"
    at.run()
    assert at.caption[0].value == "gradcam++ shap lime"
