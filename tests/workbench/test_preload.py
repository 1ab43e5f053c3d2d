"""The server's start-up preload: one model, loaded once, handed out as that object; a failure is
reported and changes nothing else; shap's warm-up waits its turn behind it."""
from __future__ import annotations

import threading
import time

import pytest

from foundation.types import Modality
from models import store
from workbench import preload


@pytest.fixture(autouse=True)
def fresh_preload():
    preload.wait()
    preload.forget()
    yield
    preload.wait()
    preload.forget()


def test_the_default_model_is_the_first_image_model_by_name():
    image_models = [n for n in store.model_names() if store.manifest(n).modality is Modality.IMAGE]
    assert preload.default_model() == image_models[0]


def test_the_preloaded_model_is_kept_and_handed_out_as_the_same_object():
    name = preload.default_model()
    version = store.current_version(name)
    thread = preload.start()
    assert preload.start() is thread and thread.daemon  # once per process, in the background
    model = preload.take(name, version)  # waits for the preload under way instead of loading again
    assert model is not None and (model.name, model.version) == (name, version)
    assert preload.status().ready  # take() waits for the map's phase only
    assert preload.take(name, version) is model
    assert preload.wait(timeout=300)
    status = preload.status()
    assert status.started and status.done and status.error is None and status.stage == ""
    assert status.target == (name, version) and 0 < status.ready_seconds <= status.seconds
    assert [stage for stage, _ in status.timings] == ["tensorflow", "model", "sample", "first_map",
                                                   "waited_for_map", "trust"]
    assert preload.take(name, "v999") is None  # another version was not preloaded


def test_the_default_pages_first_map_is_cached_before_its_trust_figures_are_measured(monkeypatch):
    """Phase 1 ends with the first sample's Grad-CAM in the core's cache (the page draws it at once);
    the trust figures come in phase 2, which the page does not wait for."""
    from workbench import api, cache, datasets

    release = threading.Event()
    measured = []
    real_measure = api.measure_trust

    def held_measure(*args, **kwargs):
        release.wait(60)  # hold phase 2 so the test sees the page's moment between the phases
        measured.append(args[1].method)
        return real_measure(*args, **kwargs)

    monkeypatch.setattr(preload.api, "measure_trust", held_measure)
    preload.start()
    try:
        assert preload.wait_ready(timeout=300)
        status = preload.status()
        assert status.ready and not status.done and status.error is None
        assert status.stage == preload.TRUST_STAGE
        name, version = status.target
        model = preload.take(name, version)
        sample = datasets.load(model.info.dataset, "test").x[0]
        [prepared] = api.prepare_images(model, [sample])
        target = int(api.predict(model, [sample])[0].argmax())
        key = cache.result_key(name, version, prepared, "gradcam", {"target": target, "seed": 0})
        assert cache.EXPLANATIONS.get(key) is not None  # the page's first map is already computed
        assert not preload.wait(timeout=0.2)  # the trust figures are still to come
    finally:
        release.set()
    assert preload.wait(timeout=300) and preload.status().done and measured == ["gradcam"]


def test_a_failure_in_the_trust_phase_leaves_the_model_and_its_map(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("trust broke")

    monkeypatch.setattr(preload.api, "measure_trust", broken)
    preload.start()
    assert preload.wait(timeout=300)
    status = preload.status()
    assert status.error is None and status.ready and status.done  # the page is not told anything failed
    assert preload.take(*status.target) is not None  # the trust panel measures itself, as before


def test_a_failing_preload_is_reported_and_hands_out_nothing(monkeypatch, capsys):
    def broken(name, version=None):
        raise OSError("disk unplugged")

    monkeypatch.setattr(preload.store, "load", broken)
    preload.start()
    assert preload.wait(timeout=300)
    status = preload.status()
    assert status.done and status.ready and status.error == "OSError: disk unplugged"
    assert "the model preload failed" in capsys.readouterr().err
    assert preload.take(*status.target) is None


def test_a_preload_of_a_model_that_does_not_exist_fails_without_raising():
    thread = preload.start("no-such-model")
    assert preload.wait_ready(timeout=300) and preload.wait(timeout=300)
    thread.join(timeout=60)
    assert not thread.is_alive()
    status = preload.status()
    assert status.error and "no-such-model" in status.error and status.target is None


def test_the_stage_says_what_is_left(monkeypatch):
    release = threading.Event()
    real_load = store.load

    def slow_load(name, version=None):
        release.wait(60)
        return real_load(name, version)

    monkeypatch.setattr(preload.store, "load", slow_load)
    preload.start()
    try:
        for _ in range(600):
            if preload.status().stage.startswith("Step 2 of 3: Loading model"):
                break
            threading.Event().wait(0.1)
        assert preload.status().stage == f"Step 2 of 3: Loading model {preload.default_model()}…"
        assert not preload.status().done
    finally:
        release.set()
    assert preload.wait(timeout=300) and preload.status().error is None


def test_forget_refuses_while_a_preload_runs(monkeypatch):
    release = threading.Event()
    monkeypatch.setattr(preload.store, "load", lambda name, version=None: release.wait(60))
    preload.start()
    try:
        with pytest.raises(RuntimeError):
            preload.forget()
    finally:
        release.set()


def test_shap_warm_up_waits_for_a_quiet_moment(monkeypatch):
    from workbench import warmup

    monkeypatch.setattr(warmup, "QUIET_S", 0.5)
    with warmup.busy():
        assert not warmup._quiet()  # a map is being computed for someone
    assert not warmup._quiet()  # ... and just was
    threading.Event().wait(0.6)
    assert warmup._quiet()


def test_an_image_sizes_shap_tree_is_built_in_the_background_once(monkeypatch):
    from explainers import shap_explainer
    from workbench import warmup

    monkeypatch.setattr(warmup, "QUIET_S", 0.0)
    shape = (24, 40, 3)  # a size no other test uses
    builds = shap_explainer.partition_tree_builds
    thread = warmup.warm_partition_tree(shape)
    assert warmup.warm_partition_tree(shape) is thread  # once per size
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert shap_explainer.partition_tree_builds == builds + 1
    tree = shap_explainer.image_partition_tree(shape)  # what SHAP's masker asks for: already there
    assert shap_explainer.partition_tree_builds == builds + 1
    assert tree.shape == (24 * 40 * 3 - 1, 4)


def test_with_a_visitor_waiting_the_trust_phase_waits_until_the_map_is_shown():
    """Phase 2 needs the model's lock and the cores the visitor's map needs: it lets the map go first."""
    with preload.visitor_waiting():  # a page waiting for phase 1, as ui/loaders.py marks it
        preload.start()
        assert preload.wait_ready(timeout=300)
    assert not preload.wait(timeout=1.0)  # no map shown yet: phase 2 holds back
    assert preload.status().stage == preload.TRUST_STAGE
    preload.map_shown()  # the page drew its map and asks for its trust figures
    assert preload.wait(timeout=300)
    timings = dict(preload.status().timings)
    assert timings["waited_for_map"] >= 1.0 and timings["trust"] > 0


def test_with_nobody_waiting_the_trust_phase_runs_at_once():
    preload.start()
    assert preload.wait(timeout=300)  # nobody called map_shown()
    assert dict(preload.status().timings)["waited_for_map"] < 1.0


def test_a_waiting_warm_up_does_not_hold_the_process_at_exit():
    """At exit the warm-ups still waiting for their turn are skipped (one in flight would be joined):
    numba compiling while Python finalises aborts the process."""
    import subprocess
    import sys
    import time as clock
    from pathlib import Path

    code = ("from workbench import warmup\n"
            "warmup.start(); warmup.warm_partition_tree((32, 32, 3))\n"  # no preload ran: both keep waiting
            "import time; time.sleep(0.5)\n")
    started = clock.monotonic()
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert clock.monotonic() - started < 60


def test_the_server_waits_for_a_waiting_page_to_draw_the_workers_result():
    """ui/serve.py holds its own TensorFlow import until the visitor's page has drawn the start-up worker's
    final result; without a visitor it does not wait at all."""
    started = time.monotonic()
    assert preload.wait_for_preview("final", timeout=30) is False  # nobody waiting: no wait
    assert time.monotonic() - started < 1
    with preload.visitor_waiting():
        started = time.monotonic()
        assert preload.wait_for_preview("final", timeout=30) is False  # a page that draws no preview: no wait
        assert time.monotonic() - started < 1
        preload.preview_drawn("map only")
        assert preload.wait_for_preview("final", timeout=0.3) is False  # the page did not draw it in time
        threading.Timer(0.3, preload.preview_drawn, args=("final",)).start()
        assert preload.wait_for_preview("final", timeout=30) is True
    assert preload.wait_for_preview("final", timeout=0) is True  # drawn already


def test_after_a_drawn_preview_the_start_up_leaves_the_browser_a_moment_unless_a_page_needs_its_model():
    """The browser fetches the preview's images from the server's process, which TensorFlow's import
    would hold up: the preload starts `settle` seconds after the page drew it, or at once on `model_wanted`."""
    preload.page_started()
    preload.preview_drawn("stored first map")
    preload.page_painted()
    started = time.monotonic()
    preload.start_after_first_paint(grace=5, paint_timeout=5, settle=0.6)
    assert time.monotonic() - started >= 0.6 and preload.status().started
    assert preload.wait(timeout=300)
    preload.forget()
    preload.page_started()
    preload.preview_drawn("stored first map")
    preload.page_painted()
    threading.Timer(0.2, preload.model_wanted).start()  # the visitor opens another page meanwhile
    started = time.monotonic()
    preload.start_after_first_paint(grace=5, paint_timeout=5, settle=60)
    assert time.monotonic() - started < 30 and preload.status().started
    assert preload.wait(timeout=300)
    preload.forget()
    preload.page_started()
    preload.page_painted()  # no preview drawn: no reason to wait
    started = time.monotonic()
    preload.start_after_first_paint(grace=5, paint_timeout=5, settle=60)
    assert time.monotonic() - started < 30
