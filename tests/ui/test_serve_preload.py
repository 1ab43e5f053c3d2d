"""When `python -m ui.serve` starts the preload (issue 18): once Streamlit listens and the first visitor's page
has painted, not before (TensorFlow's import holds Python's lock: it delayed the server's first answer, then
the page's title); at once with "now"; never with "off"."""
from __future__ import annotations

import threading

import pytest

from models import store
from ui import serve
from workbench import preload


@pytest.fixture(autouse=True)
def fresh_preload():
    preload.wait()
    preload.forget()
    yield
    preload.wait()
    preload.forget()


def test_the_preload_waits_until_streamlit_listens():
    listening = threading.Event()
    starter = serve.start_preload("listening", listening=listening.is_set, timeout=60)
    assert starter is not None and starter.daemon
    starter.join(timeout=0.5)
    assert starter.is_alive() and not preload.status().started  # the server is not up: nothing started
    listening.set()
    starter.join(timeout=10)
    assert not starter.is_alive() and preload.status().started
    assert preload.wait(timeout=300) and preload.status().error is None


def test_the_preload_waits_for_the_first_visitors_page_to_paint():
    starter = serve.start_preload("listening", listening=lambda: True, grace=60, paint_timeout=60)
    preload.page_started()  # a visitor's first run began
    starter.join(timeout=1.0)
    assert starter.is_alive() and not preload.status().started
    # Meanwhile a page waits for it (with the step it will start with) instead of loading the model itself.
    assert preload.wait_ready(0) is False and preload.wait(0) is False
    assert preload.status().stage == f"Step 1 of 3: {preload.STARTING_TENSORFLOW}"
    preload.page_painted()  # the page shows its title and that progress message
    starter.join(timeout=10)
    assert not starter.is_alive() and preload.status().started
    assert preload.wait(timeout=300) and preload.status().error is None


def test_without_a_visitor_the_preload_starts_after_the_grace():
    starter = serve.start_preload("listening", listening=lambda: True, grace=0.3, paint_timeout=60)
    starter.join(timeout=10)
    assert not starter.is_alive() and preload.status().started


def test_a_page_that_needs_the_model_starts_the_preload_at_once():
    """A first page that asks for the model (without a progress message) does not wait for a timeout."""
    starter = serve.start_preload("listening", listening=lambda: True, grace=60, paint_timeout=60)
    preload.page_started()
    name = preload.default_model()
    model = preload.take(name, store.current_version(name))  # blocks until the preload it started is ready
    assert model is not None and model.name == name
    starter.join(timeout=10)
    assert not starter.is_alive() and preload.wait(timeout=300)


def test_the_preload_waits_for_the_first_map_worker_to_exit():
    """The start-up worker (workbench/first_page.py) has its own TensorFlow: the server's starts after it."""
    import subprocess
    import sys

    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.5)"])
    starter = serve.start_preload("listening", listening=lambda: True, grace=0.1, paint_timeout=60, worker=worker)
    starter.join(timeout=0.8)
    assert starter.is_alive() and worker.poll() is None and not preload.status().started
    starter.join(timeout=30)
    assert not starter.is_alive() and worker.returncode == 0 and preload.status().started
    assert preload.wait(timeout=300)


def test_a_page_that_needs_its_model_now_does_not_wait_for_the_worker():
    """A first visit to a page that can show nothing before its model (not the default Explain image input)."""
    import subprocess
    import sys

    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        starter = serve.start_preload("listening", listening=lambda: True, grace=60, paint_timeout=60, worker=worker)
        starter.join(timeout=0.5)
        assert starter.is_alive() and not preload.status().started
        preload.page_started()
        preload.model_wanted()  # loaders.wait_for_start_up without a preview, or preload.take
        starter.join(timeout=10)
        assert not starter.is_alive() and preload.status().started and worker.poll() is None
        assert preload.wait(timeout=300)
    finally:
        worker.kill()
        worker.wait()


def test_the_server_starts_no_worker_when_the_first_map_is_stored(workspace):
    from workbench import first_page

    name = preload.default_model()
    assert first_page.has_first_page(name)
    first_page.save(first_page.compute(name))
    assert serve.start_first_map_worker() is None


def test_a_server_that_never_says_it_listens_gets_its_preload_after_the_timeout():
    starter = serve.start_preload("listening", listening=lambda: False, timeout=0.3)
    starter.join(timeout=10)
    assert preload.status().started


def test_now_starts_at_once_and_off_never():
    assert serve.start_preload("off") is None and not preload.status().started
    thread = serve.start_preload("now")
    assert thread is preload.start() and preload.status().started


def test_an_unknown_moment_is_reported_and_means_listening(capsys):
    starter = serve.start_preload("sometime", listening=lambda: True)
    starter.join(timeout=10)
    assert preload.status().started
    assert "WORKBENCH_PRELOAD='sometime' is not one of listening, now, off" in capsys.readouterr().err


def test_outside_a_server_streamlit_is_not_listening():
    assert serve.streamlit_listening() is False


def test_streamlit_no_longer_clears_keras_after_a_run(monkeypatch):
    """Streamlit's clean-up after a run would reset Keras (names restart, kernels re-made)."""
    import keras
    from streamlit.runtime.scriptrunner import script_runner

    monkeypatch.setattr(script_runner, "_clean_problem_modules", script_runner._clean_problem_modules)
    keras.backend.clear_session()  # names start again: the first Dense is "dense"
    first = keras.layers.Dense(2).name
    assert serve.keep_keras_state()
    script_runner._clean_problem_modules()  # the server's: Keras keeps its state, so no second "dense"
    assert keras.layers.Dense(2).name != first


def test_the_forced_collection_after_each_run_is_off_unless_asked_for(monkeypatch):
    monkeypatch.delenv("STREAMLIT_RUNNER_POST_SCRIPT_GC", raising=False)
    assert serve.without_forced_gc(["--server.port", "1"]) == ["--server.port", "1", "--runner.postScriptGC", "false"]
    assert serve.without_forced_gc(["--runner.postScriptGC=true"]) == ["--runner.postScriptGC=true"]
    monkeypatch.setenv("STREAMLIT_RUNNER_POST_SCRIPT_GC", "true")
    assert serve.without_forced_gc([]) == []
