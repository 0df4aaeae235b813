"""The engines the store's tests run on: SQLite (in memory or a file) and a real
PostgreSQL server named by $TIERCTL_TEST_PG (``.ci/run`` starts one; by hand:
``.ci/pg start /tmp/pg`` prints the URL).  Each PostgreSQL test gets a schema of its own,
dropped afterwards, in a database of its pytest-xdist worker's own (``<db>_gw0``, ...,
created on first use): advisory locks are per database, so a test that holds a centre's
lock never makes another worker's test wait.  Without a server the PostgreSQL cases skip, saying why — except
under CI ($CI set), where they fail."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

PG_ENV = "TIERCTL_TEST_PG"
ENGINES = ["sqlite", "postgresql"]


def pg_url_or_skip() -> str:
    url = os.environ.get(PG_ENV)
    if url:
        return _worker_database(url, os.environ.get("PYTEST_XDIST_WORKER", ""))
    why = (f"no PostgreSQL server for the store tests: set {PG_ENV}=postgresql://… "
           "(`.ci/pg start /tmp/pg` starts a throw-away one and prints its URL)")
    if os.environ.get("CI"):
        pytest.fail(why + " — under CI the PostgreSQL tests must run")
    pytest.skip(why)


@functools.cache
def _worker_database(url: str, worker: str) -> str:
    """The server's URL with the database of this xdist worker (created if missing); the
    URL itself when the tests run in one process."""
    if not worker:
        return url
    base, _, query = url.partition("?")
    server, _, db = base.rpartition("/")
    name = f"{db}_{re.sub(r'[^a-z0-9_]', '_', worker.lower())}"
    admin = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if conn.exec_driver_sql("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).first() is None:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()
    return f"{server}/{name}" + (f"?{query}" if query else "")


@contextlib.contextmanager
def pg_schema_url() -> Iterator[str]:
    """A URL whose connections work in a fresh, empty schema."""
    base = pg_url_or_skip()
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {name}")
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {name} CASCADE")
        admin.dispose()


@contextlib.contextmanager
def database_url(engine: str, tmp_path) -> Iterator[str]:  # noqa: ANN001 - pytest's tmp_path
    """A fresh database on ``engine``: a SQLite file in ``tmp_path`` or a PostgreSQL schema."""
    if engine == "sqlite":
        yield str(tmp_path / "history.db")
    else:
        with pg_schema_url() as url:
            yield url
