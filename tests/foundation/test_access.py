"""Issue 15: identities, roles and the roles file (foundation/access.py)."""
from __future__ import annotations

import pytest

from foundation import access
from foundation.access import AccessDenied, Identity
from foundation.errors import WorkbenchError

ROLES_TOML = """
default = "viewer"
[users]
"Alice@Example.org" = "annotator"
"bob" = "maintainer"
[groups]
"ml-admins" = "admin"
"labelers" = "annotator"
"""


@pytest.fixture
def roles_file(tmp_path, monkeypatch):
    path = tmp_path / "roles.toml"
    path.write_text(ROLES_TOML)
    monkeypatch.setenv(access.ROLES_ENV, str(path))
    return path


def person(role: str) -> Identity:
    return Identity(subject="sub-1", email="carol@example.org", name="Carol", role=role, signed_in=True)


def test_each_role_may_do_what_the_roles_below_may_and_more():
    allowed = {role: {action for action in access.NEEDS if person(role).can(action)} for role in access.ROLES}
    assert allowed["viewer"] == set()
    assert allowed["annotator"] == {access.LABEL}
    assert allowed["maintainer"] == {access.LABEL, access.RETRAIN, access.PROMOTE, access.ROLLBACK, access.DISCARD,
                                     access.REGISTER_MODEL, access.IMPORT_DATA}
    assert allowed["admin"] == set(access.NEEDS)


def test_the_refusal_names_the_person_their_role_and_the_role_needed():
    with pytest.raises(AccessDenied, match="^carol@example.org is a viewer; correcting labels needs the annotator role"):
        person("viewer").require(access.LABEL)
    with pytest.raises(AccessDenied, match="is an annotator; promoting a model version needs the maintainer role"):
        person("annotator").require(access.PROMOTE)
    assert isinstance(AccessDenied("x"), WorkbenchError)


def test_without_a_roles_file_the_local_operator_is_admin_and_a_signed_in_person_a_viewer(monkeypatch):
    monkeypatch.delenv(access.ROLES_ENV, raising=False)
    monkeypatch.setenv(access.OPERATOR_ENV, "dana")
    operator = access.local_operator()
    assert (operator.name, operator.role, operator.signed_in, operator.subject) == ("dana", "admin", False, "local:dana")
    assert access.signed_in("sub-9", "eve@example.org", "Eve").role == "viewer"


def test_the_roles_file_maps_emails_case_blind_and_groups_taking_the_highest(roles_file):
    assert access.signed_in("s", "alice@example.org", "Alice").role == "annotator"
    assert access.signed_in("s", "alice@example.org", "Alice", groups=["ml-admins"]).role == "admin"
    assert access.signed_in("s", "zed@example.org", "Zed", groups=["labelers"]).role == "annotator"
    assert access.signed_in("s", "zed@example.org", "Zed").role == "viewer"


def test_the_cli_operator_gets_the_role_the_file_gives_it(roles_file, monkeypatch):
    monkeypatch.setenv(access.OPERATOR_ENV, "bob")
    assert access.local_operator().role == "maintainer"
    monkeypatch.setenv(access.OPERATOR_ENV, "mallory")
    assert access.local_operator().role == "viewer"
    with pytest.raises(AccessDenied, match="mallory is a viewer; correcting labels"):
        access.acting(None, access.LABEL)


@pytest.mark.parametrize("text, problem", [
    ('default = "owner"\n', "default = 'owner' is not a role"),
    ('[users]\n"a@b.c" = "superuser"\n', "users.a@b.c = 'superuser' is not a role"),
    ('admins = ["a"]\n', "unknown key(s) admins"),
    ('default = \n', "cannot be read"),
])
def test_a_broken_roles_file_is_an_error_never_no_file(tmp_path, monkeypatch, text, problem):
    path = tmp_path / "roles.toml"
    path.write_text(text)
    monkeypatch.setenv(access.ROLES_ENV, str(path))
    with pytest.raises(WorkbenchError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        access.local_operator()


def test_a_missing_roles_file_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv(access.ROLES_ENV, str(tmp_path / "nope.toml"))
    with pytest.raises(WorkbenchError, match="does not exist"):
        access.local_operator()
