"""The UI's model cache hands out the model the server preloaded, and loads it itself when the preload failed."""
from __future__ import annotations

import pytest

from models import store
from ui import loaders
from workbench import preload


@pytest.fixture(autouse=True)
def fresh_caches():
    preload.wait()
    preload.forget()
    loaders.model.clear()
    yield
    preload.wait()
    preload.forget()
    loaders.model.clear()


def test_the_loader_hands_out_the_preloaded_object():
    name = preload.default_model()
    version = store.current_version(name)
    preload.start()
    assert loaders.model(name, version) is preload.take(name, version)


def test_after_a_failed_preload_the_loader_loads_the_model_itself(monkeypatch):
    name = preload.default_model()
    version = store.current_version(name)
    real_load = store.load
    monkeypatch.setattr(preload.store, "load", lambda *a, **k: (_ for _ in ()).throw(OSError("no")))
    preload.start()
    assert preload.wait(timeout=300) and preload.status().error
    monkeypatch.setattr(preload.store, "load", real_load)
    model = loaders.model(name, version)
    assert (model.name, model.version) == (name, version)
    assert preload.take(name, version) is None
