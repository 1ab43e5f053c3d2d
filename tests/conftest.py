"""Test-wide setup: every test session writes into its own throwaway workspace."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest


@pytest.fixture(autouse=True, scope="session")
def _session_workspace(tmp_path_factory):
    previous = os.environ.get("WORKBENCH_HOME")
    os.environ["WORKBENCH_HOME"] = str(tmp_path_factory.mktemp("workspace"))
    yield
    if previous is None:
        os.environ.pop("WORKBENCH_HOME", None)
    else:
        os.environ["WORKBENCH_HOME"] = previous


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A fresh, empty workspace for one test."""
    path = tmp_path / "workspace"
    monkeypatch.setenv("WORKBENCH_HOME", str(path))
    return path


@pytest.fixture
def no_shipped_first_pages(request, monkeypatch):
    """The start-up worker's path, as for a model that carries no first page of its own (the sample models
    ship theirs: workbench/first_page.py). Tests marked `shipped` keep them."""
    if request.node.get_closest_marker("shipped") is None:
        monkeypatch.setenv("WORKBENCH_SHIPPED_FIRST_MAPS", "off")
