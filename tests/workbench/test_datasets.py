"""The one dataset catalogue: samples, the 20k scale check and imports behind one API."""
import pytest

import sample_data
from foundation.errors import WorkbenchError
from foundation.types import Modality
from workbench import datasets


def test_shipped_entries_come_first_and_the_scale_check_is_one_of_them(workspace):
    assert datasets.names() == ["digits", "shapes", "shapes-shortcut", "headlines", "shapes-20k"]
    assert datasets.BUILTIN_NAMES == (*sample_data.DATASET_NAMES, "shapes-20k")


def test_the_scale_check_reads_like_any_entry_without_being_generated(workspace):
    # Asking about it costs nothing: only `load` generates the 20,000 images.
    assert datasets.splits("shapes-20k") == ("test",)
    assert datasets.classes("shapes-20k") == datasets.classes("shapes") == ("circle", "square", "triangle", "star")
    assert datasets.modality("shapes-20k") is Modality.IMAGE
    assert not datasets.is_imported("shapes-20k")
    with pytest.raises(WorkbenchError, match="has no split 'train'; choose one of test"):
        datasets.load("shapes-20k", "train")
    with pytest.raises(WorkbenchError, match="is a sample dataset"):
        datasets.imported_manifest("shapes-20k")


def test_samples_pass_through_and_unknown_names_are_refused(workspace):
    assert datasets.splits("shapes-shortcut") == sample_data.splits("shapes-shortcut")
    assert datasets.modality("headlines") is Modality.TEXT
    assert datasets.load("digits", "test") is sample_data.load("digits", "test")
    with pytest.raises(WorkbenchError, match="there is no dataset named 'mnist'; choose one of digits"):
        datasets.splits("mnist")
