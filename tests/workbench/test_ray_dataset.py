"""`workbench dataset-cache` on the local engine, and the Ray path's pure parts (no Ray needed here).

The Ray computation itself is compared with the local one in test_ray_engine.py, which starts Ray once.
"""
import json

import numpy as np
import pytest

from commandline.cli import main
from foundation.errors import WorkbenchError
from workbench import api, dataset_view
from workbench.ray_dataset import _assemble, contiguous_runs


def test_contiguous_runs_cover_the_rows_in_their_order():
    assert contiguous_runs(np.array([4, 5, 6, 0, 1, 9])) == [(4, 7), (0, 2), (9, 10)]
    assert contiguous_runs(np.array([3])) == [(3, 4)]
    assert contiguous_runs(np.array([], dtype=np.int64)) == []


def _block(ids, example_ids, layer="dense"):
    n = len(ids)
    return {"id": np.asarray(ids), "example_id": np.asarray(example_ids), "layer": np.asarray([layer] * n),
            "features": np.arange(n * 2, dtype=np.float32).reshape(n, 2) + 10 * np.asarray(ids)[:, None],
            "probabilities": np.full((n, 2), 0.5, np.float32), "property:cue": np.asarray(ids) % 2 == 0}


def test_blocks_come_back_in_split_order():
    dataset = dataset_view.open_split("shapes-6", "test")
    ids = list(dataset.ids)
    result = _assemble([_block([3, 4, 5], ids[3:]), _block([0, 1, 2], ids[:3])], dataset)
    np.testing.assert_array_equal(result.features[:, 0], [0, 12, 24, 30, 42, 54])  # row i starts at 10*i (+ its place)
    np.testing.assert_array_equal(result.properties["cue"], [True, False, True, False, True, False])
    assert result.feature_layer == "dense"


def test_workers_that_opened_another_split_are_refused():
    dataset = dataset_view.open_split("shapes-6", "test")
    wrong = [f"other-{i}" for i in range(6)]
    with pytest.raises(WorkbenchError, match="different shapes-6/test"):
        _assemble([_block(range(6), wrong)], dataset)
    with pytest.raises(WorkbenchError, match="returned 5 rows for 6"):
        _assemble([_block(range(5), list(dataset.ids)[:5])], dataset)
    with pytest.raises(WorkbenchError, match="disagreed on the feature layer"):
        ids = list(dataset.ids)
        _assemble([_block([0, 1, 2], ids[:3], "a"), _block([3, 4, 5], ids[3:], "b")], dataset)


def test_dataset_cache_computes_once_then_the_page_reads_it(capsys):
    """The command's entry is the page's entry: the second run and `cached_outputs` find it."""
    assert main(["dataset-cache", "--model", "shapes", "--dataset", "shapes-300", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert (first["n"], first["from_cache"], first["engine"], first["chance"]) == (300, False, "local", 0.25)
    model = api.load_model("shapes")
    dataset = dataset_view.open_split("shapes-300", "test")
    stored = dataset_view.cached_outputs(model, dataset)
    assert stored is not None and first["accuracy"] == round(float((stored.predicted == dataset.y).mean()), 4)
    assert first["accuracy"] > 0.9  # the shipped shapes model on shapes it was not trained on
    assert main(["dataset-cache", "--model", "shapes", "--dataset", "shapes-300", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["from_cache"] is True


def test_dataset_cache_refuses_a_mismatched_pair_in_one_line(capsys):
    assert main(["dataset-cache", "--model", "shapes", "--dataset", "headlines"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: model 'shapes' reads images but dataset 'headlines' holds texts")
    assert len(err.splitlines()) == 1


def test_the_page_jobs_engine_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(dataset_view.DATASET_ENGINE_ENV, raising=False)
    assert dataset_view.job_engine() == "local"
    monkeypatch.setenv(dataset_view.DATASET_ENGINE_ENV, " Ray ")
    assert dataset_view.job_engine() == "ray"
    monkeypatch.setenv(dataset_view.DATASET_ENGINE_ENV, "spark")
    with pytest.raises(WorkbenchError, match="WORKBENCH_DATASET_ENGINE='spark' is not an engine; use local or ray"):
        dataset_view.job_engine()
