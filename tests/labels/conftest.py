"""Every ledger test runs on a fresh SQLite file and, when a server is given, a fresh PostgreSQL schema.

PostgreSQL needs WORKBENCH_TEST_POSTGRES_URL (see .ci/postgres.sh); without it those runs skip.
"""
from __future__ import annotations

import os
import uuid
from typing import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from labels import Ledger
from labels.engine import dispose_engine

POSTGRES_ENV = "WORKBENCH_TEST_POSTGRES_URL"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'labels.sqlite'}"
        yield url
        dispose_engine(url)
        return
    yield from _postgres_schema_url()


@pytest.fixture
def ledger(db_url: str) -> Ledger:
    return Ledger(db_url)


def _postgres_schema_url() -> Iterator[str]:
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        if os.environ.get("CI") == "true":  # in CI a missing server is a failure, never a silent skip
            pytest.fail(f"{POSTGRES_ENV} is not set in CI: .ci/run must start PostgreSQL")
        pytest.skip(f"{POSTGRES_ENV} is not set (run .ci/postgres.sh)")
    schema = f"labels_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        # Every connection of the ledger (and of worker processes) lands in the private schema.
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        url_text = url.render_as_string(hide_password=False)
        yield url_text
        dispose_engine(url_text)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()
