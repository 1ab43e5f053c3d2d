"""Ids that become paths: the one validator accepts real ids and refuses hostile ones."""
import pytest

from foundation.errors import ModelError, WorkbenchError
from foundation.ids import MAX_ID_LENGTH, check_path_id, is_path_id

HOSTILE = ["../x", "a/b", "a\\b", "v1\x00", "", ".", "..", "v1..", ".hidden", "v" * (MAX_ID_LENGTH + 1), "v 1", None]


@pytest.mark.parametrize("value", ["v1", "v12", "20261202-053000-digits-ab12cd", "shapes-shortcut", "a.b_c"])
def test_real_ids_pass(value):
    assert is_path_id(value) and check_path_id(value, "id") == value


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_ids_are_refused_with_one_sentence(value):
    assert not is_path_id(value)
    with pytest.raises(WorkbenchError, match="is not a valid version id: use up to 128") as raised:
        check_path_id(value, "version id")
    assert "\n" not in str(raised.value) and len(str(raised.value)) < 300


def test_the_error_class_is_the_callers_choice():
    with pytest.raises(ModelError):
        check_path_id("../x", "version id", ModelError)
