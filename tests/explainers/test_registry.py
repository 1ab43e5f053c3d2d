"""The registry lists methods in their declared order, whatever order their modules were
imported in, and each method says why it cannot run on a model it does not fit."""
from __future__ import annotations

from explainers import registry
from explainers.base import Explainer
from tests.explainers import tiny_models


def test_methods_are_listed_in_declared_order():
    assert list(registry.all_methods()) == ["gradcam", "gradcam++", "shap", "shap-gradient", "lime"]
    assert list(registry.available(tiny_models.loaded_text_model())) == ["gradcam", "gradcam++", "shap", "lime"]


def test_listing_does_not_depend_on_registration_order(monkeypatch):
    methods = registry.all_methods()
    reversed_registry = {name: methods[name] for name in reversed(list(methods))}
    monkeypatch.setattr(registry, "_REGISTRY", reversed_registry)
    assert list(registry.all_methods()) == list(methods)


def test_only_shap_gradient_stays_off_the_pages():
    assert [name for name, cls in registry.all_methods().items() if not cls.on_pages] == ["shap-gradient"]


def test_unavailable_reasons_say_why_and_what_to_do():
    dense = tiny_models.loaded_image_model(tiny_models.dense_only_image_model())
    text = tiny_models.loaded_text_model()
    gradcam = registry.get("gradcam")
    assert gradcam.unavailable_reason(tiny_models.loaded_image_model()) is None
    assert gradcam.unavailable_reason(dense) == ("Grad-CAM needs a convolution layer, and this model has none. "
                                                 "Try SHAP or LIME.")
    assert not gradcam.supports(dense)
    assert registry.get("shap-gradient").unavailable_reason(text) == (
        "SHAP (Gradient) explains image models only; choose another method.")
    assert registry.get("shap-gradient").unavailable_reason(dense) is None
    assert all(cls.unavailable_reason(text) is None for cls in (registry.get("shap"), registry.get("lime")))


def test_a_card_naming_a_missing_layer_is_a_reason_too():
    wrong = tiny_models.loaded_image_model(gradcam_layer="no_such_layer")
    reason = registry.get("gradcam").unavailable_reason(wrong)
    assert reason.startswith("Grad-CAM cannot use the layer the model card names:") and "no_such_layer" in reason


def test_the_base_class_defaults():
    assert Explainer.on_pages is True and Explainer.order == 100
