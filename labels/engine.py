"""One SQLAlchemy engine per database URL, and the write transaction that serialises edits.

SQLite: WAL journal (readers never block the writer), a 30 s busy timeout, and
`BEGIN IMMEDIATE` for writes so the write lock is taken *before* the ledger reads the
latest event; reads use a plain deferred `BEGIN`.

PostgreSQL: READ COMMITTED plus a transaction-scoped advisory lock per dataset. Writers to
one dataset queue on the lock, and each sees everything committed before it got the lock,
so check-then-append is atomic without SERIALIZABLE's retry loops. Corrections are
human-paced, so serialising a dataset's writers costs nothing noticeable.
"""
from __future__ import annotations

import hashlib
import os
import threading
from contextlib import contextmanager
from typing import Any, Iterator

from sqlalchemy import Connection, Engine, create_engine, event, func, select
from sqlalchemy.engine import make_url

BUSY_TIMEOUT_S = 30
_WRITE_OPTION = "labels_write"

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def get_engine(url: str) -> Engine:
    """The process-wide engine for `url`, created on first use."""
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _create(url)
            _engines[url] = engine
        return engine


def dispose_engine(url: str) -> None:
    """Close the pooled connections for `url` and forget its engine (tests, shutdown)."""
    with _engines_lock:
        engine = _engines.pop(url, None)
    if engine is not None:
        engine.dispose()


@contextmanager
def write_transaction(engine: Engine, dataset: str) -> Iterator[Connection]:
    """A transaction in which no other writer to `dataset` can interleave (threads or processes)."""
    with engine.execution_options(**{_WRITE_OPTION: True}).begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(_lock_key(dataset))))
        yield conn


def _create(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    # File databases get SQLAlchemy's QueuePool (one connection per thread in use);
    # `timeout` is sqlite3's busy handler, also set as a pragma below for clarity.
    engine = create_engine(url, pool_pre_ping=True, connect_args={"timeout": BUSY_TIMEOUT_S})
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin_sqlite)
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # Take BEGIN away from the sqlite3 module so `_begin_sqlite` decides which kind to emit.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; safe with WAL
    finally:
        cursor.close()


def _begin_sqlite(conn: Connection) -> None:
    # A deferred BEGIN that later writes fails with SQLITE_BUSY instead of waiting, and two
    # such writers could both pass the stale check; IMMEDIATE takes the write lock up front.
    write = conn.get_execution_options().get(_WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _lock_key(dataset: str) -> int:
    digest = hashlib.blake2b(f"labels.ledger:{dataset}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _forget_inherited_connections() -> None:
    # A forked child must not use (or close) the parent's pooled connections.
    global _engines_lock
    _engines_lock = threading.Lock()
    for engine in _engines.values():
        engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited_connections)
