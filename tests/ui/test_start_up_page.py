"""The Explain image page around the server's start-up (issue 18): the sidebar lists models from
their manifests and loads only the chosen one; a preload that failed leaves a working page that
loads its model itself and says so; a preload that worked hands the page its model and map."""
from __future__ import annotations

import pytest

from models import store
from tests.app.conftest import start_app
from ui import loaders
from workbench import preload

IMAGE_MODELS = {"digits", "shapes", "shapes-shortcut"}


@pytest.fixture(autouse=True)
def fresh_start_up():
    preload.wait()
    preload.forget()
    loaders.model.clear()
    loaders.loads.clear()
    yield
    preload.wait()
    preload.forget()
    loaders.model.clear()
    loaders.loads.clear()


def _gradcam_captions(at) -> list[str]:
    return [c for element in at.get("image") for c in element.captions if c.startswith("gradcam for")]


def test_the_sidebar_lists_every_image_model_and_loads_only_the_chosen_one():
    at = start_app(image_model="shapes")
    assert not at.exception, at.exception
    listed = set(at.sidebar.selectbox(key="image_model").options)
    assert IMAGE_MODELS <= listed
    assert dict(loaders.loads) == {("shapes", store.current_version("shapes")): 1}
    assert _gradcam_captions(at)
    at.selectbox(key="image_model").set_value("shapes-shortcut").run()  # chosen: loaded now, once
    assert not at.exception, at.exception
    assert dict(loaders.loads) == {("shapes", store.current_version("shapes")): 1,
                                   ("shapes-shortcut", store.current_version("shapes-shortcut")): 1}


def test_after_a_failed_start_up_the_page_loads_its_model_itself_and_says_so():
    preload.start("no-such-model")  # a real failure: the preload raises, the server keeps going
    assert preload.wait(timeout=300) and preload.status().error
    at = start_app()
    assert not at.exception, at.exception
    name = preload.default_model()
    assert at.sidebar.selectbox(key="image_model").value == name
    assert dict(loaders.loads) == {(name, store.current_version(name)): 1}  # loaded on demand
    assert any("background start-up failed" in toast.value for toast in at.toast)
    assert _gradcam_captions(at)
    assert any("Can I trust this gradcam map?" in m.value for m in at.markdown)


def test_after_a_successful_start_up_the_page_loads_nothing_itself():
    preload.start()
    at = start_app()
    assert not at.exception, at.exception
    assert preload.status().done and preload.status().error is None
    assert not loaders.loads  # the preloaded model was handed out
    assert not any("start-up failed" in toast.value for toast in at.toast)
    assert _gradcam_captions(at)
    assert any("Can I trust this gradcam map?" in m.value for m in at.markdown)
