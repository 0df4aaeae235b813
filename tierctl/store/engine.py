"""Where a store lives and how its engine is set up: an embedded SQLite file (the
default) or a PostgreSQL server shared by a region's centres (issue 18).

``location`` is what ``--db`` / ``TIERCTL_DB`` / ``store.db`` say: a file path, or a
``postgresql://user@host:port/db`` URL.  SQLite takes its write lock at ``BEGIN
IMMEDIATE`` (one writer per file); PostgreSQL keeps row-level locking and a write
transaction takes a lock on its *centre* only (an advisory transaction lock keyed by
the centre id), so twenty centres write at the same moment and two runs of one centre
still follow each other.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from tierctl.errors import StoreError

_SERVER = re.compile(r"^(postgres(?:ql)?)(\+\w+)?:/+", re.IGNORECASE)
CENTRE_MAX = 64
MIGRATION_LOCK = "tierctl:migrations"


class ServerURL(str):
    """A server database's URL where a path is expected: it "exists" (the server says
    otherwise when it does not) and prints without its password."""

    def exists(self) -> bool:
        return True


    @property
    def display(self) -> str:
        return mask_password(str(self))


_USER_PASSWORD = re.compile(r"(postgres(?:ql)?(?:\+\w+)?://[^:/@\s]*):[^@\s]*@", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&\s]*", re.IGNORECASE)


def mask_password(text: str) -> str:
    """``text`` with the password of every PostgreSQL URL in it shown as ``***``
    (``postgresql://user:***@host/db``, ``...?password=***``): for anything printed or
    logged, never for connecting."""
    return _QUERY_PASSWORD.sub(r"\1***", _USER_PASSWORD.sub(r"\1:***@", text))


def is_server(location: object) -> bool:
    return bool(_SERVER.match(str(location)))


def server_url(location: object) -> ServerURL:
    """The URL as typed, repaired where a path type folded its ``//`` (``Path("postgresql://h/db")``
    reads ``postgresql:/h/db``)."""
    text = str(location)
    m = _SERVER.match(text)
    if m is None:
        raise StoreError(f"{mask_password(text)} 不是 PostgreSQL 地址", hint="写成 postgresql://用户@主机:端口/数据库")
    return ServerURL(f"{m.group(1).lower()}{m.group(2) or ''}://{text[m.end():]}")


def driver_url(url: str) -> str:
    """The SQLAlchemy URL with the psycopg (3) driver unless another one is named."""
    m = _SERVER.match(url)
    assert m is not None
    return f"postgresql{m.group(2) or '+psycopg'}://{url[m.end():]}"


def check_centre(centre: object, *, where: str = "--centre") -> str:
    """A centre id as stored with every row: non-empty text of at most 64 characters,
    no control characters, no surrounding spaces."""
    text = str(centre) if centre is not None else ""
    if not text or text != text.strip() or len(text) > CENTRE_MAX or any(ord(ch) < 32 for ch in text):
        raise StoreError(f"{where} 的服务中心编号「{text}」无效",
                         hint=f"用 1–{CENTRE_MAX} 个字符、前后无空格，例如 SH-PD01")
    return text


def server_engine(url: ServerURL, *, readonly: bool, timeout: float) -> sa.Engine:
    try:
        engine = sa.create_engine(driver_url(url), pool_pre_ping=False, connect_args={"connect_timeout": 10})
    except (ImportError, sa.exc.ArgumentError) as exc:
        raise StoreError(f"无法连接 {url.display}：{mask_password(str(exc))}",
                         hint="PostgreSQL 需要 psycopg（pip install 'psycopg[binary]'）") from exc

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # a writer waits for another run of its centre at most `timeout` (SQLite's busy timeout)
        with dbapi_conn.cursor() as cur:
            cur.execute(f"SET lock_timeout = '{int(timeout * 1000)}ms'")
            if readonly:
                cur.execute("SET default_transaction_read_only = on")
        dbapi_conn.commit()

    return engine


def configure_sqlite(engine: sa.Engine, *, wal: bool, timeout: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # we issue BEGIN ourselves (pysqlite's implicit transactions would defer the lock)
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        cur.execute("PRAGMA foreign_keys = ON")
        if wal:
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
            # the log is folded into the file when the last connection closes (see close),
            # not inside a morning run's commit, where it would add its time to the run; a
            # connection kept open for many writes still folds it in past 100,000 pages
            cur.execute("PRAGMA wal_autocheckpoint = 100000")
        cur.execute("PRAGMA cache_size = -65536")
        cur.execute("PRAGMA mmap_size = 2147418112")  # reads map the file (SQLite's ceiling, ~2 GB)
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # a writer takes the lock at BEGIN, so it waits (busy timeout) rather than failing
        # half-way when another process writes
        write = conn.get_execution_options().get("tierctl_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def sqlite_foreign_keys(conn: sa.Connection, on: bool) -> None:
    """Switch SQLite's foreign-key enforcement (outside a transaction only: a migration
    that rebuilds a parent table needs it off, or dropping the old table would cascade)."""
    raw = conn.connection.dbapi_connection
    assert raw is not None
    raw.execute(f"PRAGMA foreign_keys = {'ON' if on else 'OFF'}")


def lock_centre(conn: sa.Connection, key: str) -> None:
    """PostgreSQL: the write lock of one centre (or of the migrations), held until the
    transaction ends.  Other centres' rows and locks are untouched."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": key})
