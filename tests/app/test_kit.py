"""The shared UI kit on its own (AppTest scripts): the prediction block, attributions drawn for
either modality with the words escaped, and the footer's trust panel and report button."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _prediction_and_words():
    import numpy as np

    from foundation.types import Explanation, Modality
    from ui import kit

    kit.prediction_block(["<b>cat</b>", "dog"], np.array([0.8, 0.2]))
    words = Explanation(method="gradcam", modality=Modality.TEXT, target=0, target_label="cat",
                        values=np.array([0.5, -0.5], np.float32), model_name="m", model_version="v1",
                        seconds=0.0, tokens=("<script>", "fine"))
    kit.show_attribution(words, caption="words")
    picture = Explanation(method="gradcam", modality=Modality.IMAGE, target=0, target_label="cat",
                          values=np.ones((4, 4), np.float32), model_name="m", model_version="v1", seconds=0.0)
    kit.show_attribution(picture, np.zeros((4, 4, 3), np.uint8), caption="map", width=64)


def test_prediction_block_and_attributions():
    at = AppTest.from_function(_prediction_and_words)
    at.run()
    assert not at.exception, at.exception
    assert at.markdown[0].value == "The model says **&lt;b&gt;cat&lt;\\/b&gt;** (80.0%)."  # escaped, shown literally
    assert not at.get("plotly_chart")  # plain HTML bars: no plotly script for the browser to load first
    bars, tokens = [h.proto.body for h in at.get("html")]
    assert "&lt;b&gt;cat&lt;/b&gt;" in bars and "<b>" not in bars  # the class name is escaped
    assert bars.index("cat") < bars.index("dog") and "80.0%" in bars and "width:80.0%" in bars
    assert "&lt;script&gt;" in tokens and "<script>" not in tokens
    [image] = at.get("image")
    assert image.captions == ["map"]


def _footer():
    from tests.explainers import tiny_models
    from ui import kit
    from workbench import api

    model = tiny_models.loaded_image_model()
    result = api.explain_input(model, "gradcam", tiny_models.random_images(1, seed=1)[0])
    kit.explanation_footer(result, key="kit")


def test_explanation_footer_shows_trust_then_the_report_button():
    at = AppTest.from_function(_footer, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    assert any("Can I trust this gradcam map?" in m.value for m in at.markdown)
    [button] = at.get("download_button")
    assert button.label.startswith("⬇️ Download report")
    at.toggle(key="kit_on").set_value(False).run()  # trust off: the report still downloads
    assert not any("Can I trust" in m.value for m in at.markdown)
    assert len(at.get("download_button")) == 1


def _lime_footer():
    from tests.explainers import tiny_models
    from ui import kit
    from workbench import api

    model = tiny_models.loaded_image_model(name="tiny-lime-footer")
    result = api.explain_input(model, "lime", tiny_models.random_images(1, seed=2)[0], target=0,
                               params={"num_samples": 60})
    kit.explanation_footer(result, key="kit")


def test_lime_panel_offers_the_randomisation_check_and_then_draws_its_cascade():
    at = AppTest.from_function(_lime_footer, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    assert not at.get("plotly_chart") or len(at.get("plotly_chart")) == 1  # only the curves in the expander
    [button] = [b for b in at.button if b.label.startswith("Run the randomisation check")]
    assert button.label.endswith(" s)")  # "(about N s)"
    assert not any(metric.label == "Sanity check" for metric in at.metric)
    button.click().run()
    assert not at.exception, at.exception
    assert not any(b.label.startswith("Run the randomisation check") for b in at.button)
    [check] = [m.value for m in at.markdown if m.value.startswith("**Randomisation check.**")]
    # On an 8 x 8 random image LIME's superpixels are few, so any verdict may come out; the flow is the point.
    assert check.split("** ", 1)[1].split(":")[0] in {"Passes", "Passes in part", "Fails"}
    assert any(metric.label == "Sanity check" for metric in at.metric)
    assert len(at.get("plotly_chart")) == 2  # the cascade, and the curves


def test_rounds_caption_follows_the_explanations_record():
    import numpy as np

    from foundation.types import Explanation, Modality
    from ui import kit

    def explained(**extras):
        return Explanation(method="shap", modality=Modality.IMAGE, target=0, target_label="cat",
                           values=np.zeros((2, 2), np.float32), model_name="m", model_version="v1", seconds=0.0,
                           extras=extras)

    assert kit.rounds_caption(explained()) is None  # Grad-CAM, or a result cached before rounds existed
    assert kit.rounds_caption(explained(stopped="refining", evaluations_used=200, budget=500)) == \
        "refining… (200 of 500 evaluations)"
    assert kit.rounds_caption(explained(stopped="stable", evaluations_used=300, budget=500)) == \
        "stable after 300 of 500 evaluations"
    assert kit.rounds_caption(explained(stopped="budget", evaluations_used=500, budget=500)) == \
        "full budget: 500 evaluations"
    assert kit.rounds_caption(explained(stopped="budget", evaluations_used=2400, budget=5000)) == \
        "full budget: 2,400 of 5,000 evaluations"
