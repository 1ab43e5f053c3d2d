"""The start-up worker's first map on the Explain image page (issue 18): drawn as the live page draws it
while the server loads TensorFlow, only for the input the page opens on, and cleared for the live page."""
from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from streamlit.testing.v1 import AppTest

from foundation.escaping import markdown_literal
from workbench import first_page, preload

pytestmark = pytest.mark.usefixtures("no_shipped_first_pages")  # the worker's path, but where marked `shipped`

@pytest.fixture(scope="module")
def digits_page():
    return first_page.compute("digits")


def _preview_script() -> None:
    import streamlit as st

    from ui import first_page_view

    st.write(f"drawn: {first_page_view.show('digits')}")


def _preview(**state) -> AppTest:
    at = AppTest.from_function(_preview_script, default_timeout=60)
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def test_the_stored_first_map_is_drawn_as_the_live_page_draws_it(digits_page, workspace):
    first_page.save(digits_page)
    at = _preview()
    assert not at.exception, at.exception
    assert at.markdown[-1].value == "drawn: True"
    captions = [c for image in at.get("image") for c in image.captions]
    label = digits_page.classes[digits_page.target]
    # Markdown-escaped as the live page's caption (ui/image_inputs.py): the id's "-" becomes "\\-".
    assert captions == [f"{markdown_literal(digits_page.example_id)} · true label: {digits_page.true_label}",
                        f"gradcam for “{label}” · computed at start-up in {digits_page.map_seconds:.2f} s"]
    assert any(m.value.startswith(f"The model says **{label}**") for m in at.markdown)
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["Deletion area"] == f"{digits_page.trust_figures['deletion_auc']:.2f}"
    assert metrics["Insertion area"] == f"{digits_page.trust_figures['insertion_auc']:.2f}"
    assert metrics["Sanity check"] == digits_page.sanity_outcome
    assert any(m.value == digits_page.trust_verdict for m in at.markdown)
    assert "Computed while the server started" in at.caption[0].value
    # The live page's controls, in its layout, greyed out until the live page takes over.
    controls = [at.radio(key="first_page_source"), at.selectbox(key="first_page_split"),
                at.number_input(key="first_page_index"), at.button(key="first_page_random"),
                at.selectbox(key="first_page_class"), at.slider(key="first_page_alpha"),
                at.radio(key="first_page_method"), at.selectbox(key="first_page_colormap"),
                at.toggle(key="first_page_trust")]
    assert all(control.disabled for control in controls)
    assert at.selectbox(key="first_page_class").value == label
    assert at.number_input(key="first_page_index").label == f"Example (0–{digits_page.split_size - 1})"


@pytest.mark.shipped
def test_a_first_map_stored_with_the_model_says_so(workspace):
    """The sample models ship their first page (written by `workbench train`): drawn without any worker."""
    at = _preview()
    assert at.markdown[-1].value == "drawn: True"
    shipped = first_page.load_current("digits")
    label = shipped.classes[shipped.target]
    assert [c for image in at.get("image") for c in image.captions][-1] == (
        f"gradcam for “{label}” · stored with the model (computed in {shipped.map_seconds:.2f} s)")
    assert at.caption[0].value.startswith("Stored with the model: the model's prediction and Grad-CAM")
    at = AppTest.from_function(_which_preview_script, default_timeout=60).run()
    assert at.markdown[0].value == "digits:True shapes:True headlines:False"  # every sample image model


def test_a_map_stored_before_its_trust_figures_says_they_are_being_measured(digits_page, workspace):
    first_page.save(replace(digits_page, trust_figures={}, trust_level="", trust_verdict="", sanity_outcome=None,
                            sanity_top_similarity=None))
    at = _preview()
    assert at.markdown[-1].value == "drawn: True" and not at.metric
    assert any(c.value == "Can I trust this gradcam map? measuring…" for c in at.caption)


@pytest.mark.parametrize("state", [{"image_source": "Upload an image"}, {"split_digits": "train"},
                                   {"sample_index_digits_test": 5}])
def test_nothing_is_drawn_for_another_input_or_without_a_stored_map(digits_page, workspace, state):
    at = _preview()
    assert [m.value for m in at.markdown] == ["drawn: False"] and not at.get("image")  # none stored yet
    first_page.save(digits_page)
    at = _preview(**state)
    assert [m.value for m in at.markdown] == ["drawn: False"] and not at.get("image")


def _which_preview_script() -> None:
    import streamlit as st

    from ui import first_page_view

    names = ("digits", "shapes", "headlines")
    st.write(" ".join(f"{name}:{first_page_view.preview(name) is not None}" for name in names))


def test_a_preview_is_offered_only_where_a_first_map_is_stored_or_coming(digits_page, workspace):
    assert preload.default_model() == "digits"  # the start-up worker computes the default model's first map
    at = AppTest.from_function(_which_preview_script, default_timeout=60).run()
    assert at.markdown[0].value == "digits:True shapes:False headlines:False"
    first_page.save(first_page.compute("shapes"))  # stored by an earlier start that had shapes as its default
    at = AppTest.from_function(_which_preview_script, default_timeout=60).run()
    assert at.markdown[0].value == "digits:True shapes:True headlines:False"
    at.session_state["image_source"] = "Upload an image"
    assert at.run().markdown[0].value == "digits:False shapes:False headlines:False"


def _waiting_script() -> None:
    import streamlit as st

    from ui import loaders

    calls = st.session_state.setdefault("preview_calls", [])
    # What there is to draw changes once, half a second in (the worker's map, then its trust figures).
    started = st.session_state.setdefault("started", __import__("time").monotonic())

    def state() -> str:
        return "map" if __import__("time").monotonic() - started < 0.5 else "map and trust"

    def draw() -> None:
        calls.append(state())
        st.write(f"drawing {len(calls)}")

    loaders.wait_for_start_up(lambda: loaders.Preview(state=state, draw=draw))
    st.write("the live page")


def test_while_the_server_starts_the_page_draws_the_preview_once_then_the_live_page():
    preload.wait()
    preload.forget()
    preload.schedule()  # as ui/serve.py does: the page waits for a start-up that has not begun
    starter = threading.Timer(1.5, preload.start)  # the server starts it a moment later
    starter.start()
    try:
        at = AppTest.from_function(_waiting_script, default_timeout=300).run()
        assert not at.exception, at.exception
        # Drawn once per change of what there is to draw, though the page waited in many steps.
        assert at.session_state["preview_calls"] == ["map", "map and trust"]
        assert [m.value for m in at.markdown] == ["the live page"]  # the preview gave way to the live page
        assert not preload.model_is_wanted()  # a page with something to show lets the server wait for its worker
    finally:
        starter.join()
        preload.map_shown()  # as the live page's trust panel would: the start-up's trust phase need not wait for it
        preload.wait()
        preload.forget()
