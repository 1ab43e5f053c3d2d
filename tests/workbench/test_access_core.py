"""Issue 15: every write of the core checks the actor's role and records who acted — promote,
roll back, discard (promotions.jsonl), retrain jobs (spec and status), model registration
(registrations.jsonl) and data import (the dataset's manifest). Real toy models, real files."""
from __future__ import annotations

import json

import pytest

from foundation import access
from foundation.access import AccessDenied, Identity
from foundation.errors import WorkbenchError
from models import store, versions
from tests.models import byo_models as bm
from tests.models.toy import MANIFEST
from tests.models.toy import toy_model as _model
from tests.workbench.test_imports import class_folder_zip, zip_bytes
from workbench import imports, jobs, user_models


def person(role: str, email: str | None = None) -> Identity:
    email = email or f"{role}@example.org"
    return Identity(subject=f"oidc|{role}", email=email, name=role.title(), role=role, signed_in=True)


VIEWER, ANNOTATOR, MAINTAINER = person("viewer"), person("annotator"), person("maintainer")


@pytest.fixture
def toy(workspace, monkeypatch):
    monkeypatch.delenv(access.ROLES_ENV, raising=False)
    store.publish_version("toy", _model(0), dict(MANIFEST, parent=None))
    for seed in (1, 2):
        store.publish_version("toy", _model(seed), dict(MANIFEST, parent="v1", created_as="candidate"))


def test_viewers_and_annotators_cannot_change_versions_and_nothing_changes(toy):
    for actor in (VIEWER, ANNOTATOR):
        with pytest.raises(AccessDenied, match=f"^{actor.email} is an? {actor.role}; promoting a model version "
                                               "needs the maintainer role"):
            versions.promote("toy", "v2", actor=actor)
        with pytest.raises(AccessDenied, match="discarding a model version needs the maintainer role"):
            versions.discard("toy", "v3", actor=actor)
        with pytest.raises(AccessDenied, match="rolling back a model version needs the maintainer role"):
            versions.rollback("toy", "v1", actor=actor)
    assert store.current_version("toy") == "v1" and store.all_version_ids("toy") == ["v1", "v2", "v3"]
    assert versions.history("toy") == []


def test_a_maintainer_promotes_rolls_back_and_discards_and_the_log_says_who(toy, monkeypatch):
    versions.promote("toy", "v2", by="Maintainer", actor=MAINTAINER)
    versions.rollback("toy", "v1", by="Maintainer", actor=MAINTAINER)
    monkeypatch.setenv(access.OPERATOR_ENV, "ops")
    versions.discard("toy", "v3")  # the CLI: the local operator, admin without a roles file
    log = versions.history("toy")
    assert [(e["action"], e["actor"]["email"], e["actor"]["role"]) for e in log[:2]] == [
        ("promote", "maintainer@example.org", "maintainer"), ("rollback", "maintainer@example.org", "maintainer")]
    assert log[0]["actor"]["subject"] == "oidc|maintainer" and log[0]["actor"]["signed_in"] is True
    assert (log[2]["action"], log[2]["actor"]["subject"], log[2]["actor"]["role"]) == ("discard", "local:ops", "admin")


def test_the_cli_operator_without_the_role_in_the_roles_file_is_refused(toy, tmp_path, monkeypatch):
    roles = tmp_path / "roles.toml"
    roles.write_text('default = "viewer"\n[users]\n"ops" = "annotator"\n')
    monkeypatch.setenv(access.ROLES_ENV, str(roles))
    monkeypatch.setenv(access.OPERATOR_ENV, "ops")
    with pytest.raises(AccessDenied, match="^ops is an annotator; promoting"):
        versions.promote("toy", "v2")
    roles.write_text('default = "viewer"\n[users]\n"ops" = "maintainer"\n')  # read again on every call
    assert versions.promote("toy", "v2")["actor"]["role"] == "maintainer"


def test_a_retrain_job_needs_a_maintainer_and_records_who_started_it(toy, workspace):
    with pytest.raises(AccessDenied, match="annotator@example.org is an annotator; retraining a model needs the "
                                           "maintainer role"):
        jobs.start_retrain("toy", quick=True, actor=ANNOTATOR)
    assert jobs.list_jobs("toy") == [] and not jobs.lock_path("toy").exists()
    job_id = jobs.start_retrain("toy", quick=True, created_by="Maintainer", actor=MAINTAINER,
                                config_overrides={"head_epochs": 200, "finetune_epochs": 0, "patience": 200})
    try:
        status = jobs.read_status(job_id)
        assert status["actor"] == MAINTAINER.record()
        spec = json.loads((jobs.job_dir(job_id) / "spec.json").read_text())
        assert access.identity_of(spec["actor"]) == MAINTAINER
        with pytest.raises(AccessDenied, match="annotator@example.org is an annotator; retraining a model needs"):
            jobs.cancel(job_id, actor=ANNOTATOR)
    finally:
        try:
            jobs.cancel(job_id)
        except WorkbenchError:
            pass  # it already ended (the toy model records no dataset to train on)
        jobs.wait(job_id, timeout=120)


def test_registering_a_model_needs_a_maintainer_and_is_logged(workspace, tmp_path, monkeypatch):
    monkeypatch.delenv(access.ROLES_ENV, raising=False)
    path = bm.save(bm.plain_cnn(), tmp_path / "good", "cnn", bm.CNN_CLASSES)
    before = store.model_names()
    with pytest.raises(AccessDenied, match="annotator@example.org is an annotator; registering a model needs"):
        user_models.register(path, actor=ANNOTATOR)
    assert store.model_names() == before
    info = user_models.register(path, created_by="app", actor=MAINTAINER)
    (event,) = user_models.registrations(info.name)
    assert (event["action"], event["by"], event["actor"]["email"], event["actor"]["role"]) == (
        "register", "app", "maintainer@example.org", "maintainer")


def test_importing_data_needs_a_maintainer_and_the_manifest_says_who(workspace, monkeypatch):
    monkeypatch.delenv(access.ROLES_ENV, raising=False)
    plan = imports.import_image_zip(zip_bytes(class_folder_zip(per_class=10)), "pets")
    with pytest.raises(AccessDenied, match="viewer@example.org is a viewer; importing data needs the maintainer"):
        imports.commit(plan, actor=VIEWER)
    assert not (workspace / "datasets" / "pets").exists()
    imports.commit(plan, created_by="app", actor=MAINTAINER)
    manifest = json.loads((workspace / "datasets" / "pets" / "manifest.json").read_text())
    assert manifest["actor"]["email"] == "maintainer@example.org" and manifest["actor"]["role"] == "maintainer"


def test_the_cli_acts_as_the_local_operator_with_the_roles_file_role(toy, tmp_path, monkeypatch, capsys):
    from commandline import cli

    roles = tmp_path / "roles.toml"
    roles.write_text('default = "viewer"\n[users]\n"ops" = "maintainer"\n')
    monkeypatch.setenv(access.ROLES_ENV, str(roles))
    monkeypatch.setenv(access.OPERATOR_ENV, "guest")
    assert cli.main(["models", "promote", "toy", "v2"]) == 2
    assert capsys.readouterr().err.startswith(
        "error: guest is a viewer; promoting a model version needs the maintainer role")
    assert store.current_version("toy") == "v1"
    monkeypatch.setenv(access.OPERATOR_ENV, "ops")
    assert cli.main(["models", "promote", "toy", "v2", "--json"]) == 0
    event = json.loads(capsys.readouterr().out)
    assert (event["actor"]["subject"], event["actor"]["role"], event["actor"]["signed_in"]) == (
        "local:ops", "maintainer", False)
