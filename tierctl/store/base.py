"""The store's transactions and its centre: what every part of
:class:`~tierctl.store.core.Store` builds on.

A store belongs to one centre (``centre.id`` / ``--centre``): it reads and writes that
centre's rows only.  Code that runs SQL of its own scopes it with :meth:`StoreBase.scoped`
(``store.scoped(sa.select(alerts), alerts)``) or :meth:`StoreBase.centre_is`; an insert
through :mod:`tierctl.store.schema`'s tables gets the centre by itself.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any, TypeVar

import sqlalchemy as sa

from tierctl.errors import StoreError
from tierctl.store import engine as eng

DEFAULT_TIMEOUT = 30.0  # seconds a writer waits for another one to finish
DEFAULT_CENTRE = "default"
_default_centre: list[str] = []  # set by the command line (--centre / centre.id), see set_default_centre

S = TypeVar("S", bound=Any)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def set_default_centre(centre: str | None) -> None:
    """The centre of stores opened without one (the command line sets it once from
    ``--centre``, ``TIERCTL_CENTRE`` or ``centre.id``)."""
    _default_centre.clear()
    if centre is not None:
        _default_centre.append(eng.check_centre(centre))


def default_centre() -> str:
    return _default_centre[0] if _default_centre else DEFAULT_CENTRE


class StoreBase:
    def __init__(self, engine: sa.Engine, path: str, readonly: bool = False, *,
                 centre: str = DEFAULT_CENTRE) -> None:
        self.engine = engine
        self.path = path
        self.readonly = readonly
        self.centre = eng.check_centre(centre)
        self._conn: sa.Connection | None = None  # the open transaction, if any
        self._writing = False
        self._owns_engine = True

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # -- the centre ----------------------------------------------------------------------
    def centre_is(self, table: sa.Table | sa.TableClause | Any) -> sa.ColumnElement[bool]:
        """``table.centre = <this store's centre>``."""
        return table.c.centre == self.centre

    def scoped(self, stmt: S, table: sa.Table | Any) -> S:
        """``stmt`` (a select, update or delete) limited to this store's centre in ``table``."""
        return stmt.where(self.centre_is(table))

    @staticmethod
    def row_columns(table: sa.Table) -> list[sa.Column]:
        """``table``'s columns without ``centre``: ``sa.select(*store.row_columns(t))``
        gives frames shaped as before there were centres."""
        return [c for c in table.columns if c.name != "centre"]

    # -- transactions --------------------------------------------------------------------
    @contextlib.contextmanager
    def _begin_write(self, *, migration: Any = None) -> Iterator[sa.Connection]:
        server = self.dialect != "sqlite"
        with self.engine.connect() as conn:
            conn.info["tierctl_centre"] = self.centre
            conn = conn.execution_options(tierctl_write=True)
            fk_off = migration is not None and migration.rebuilds and not server
            if fk_off:
                eng.sqlite_foreign_keys(conn, False)
            try:
                with conn.begin():
                    if server:  # one writer per centre (or for the migrations), never one for all
                        eng.lock_centre(conn, eng.MIGRATION_LOCK if migration is not None
                                        else f"tierctl:centre:{self.centre}")
                    yield conn
            finally:
                if fk_off:
                    eng.sqlite_foreign_keys(conn, True)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """One write transaction: everything inside commits together or not at all.
        Store methods called inside it join it."""
        if self._conn is not None:
            if not self._writing:
                raise StoreError("内部错误：不能在只读事务中写入历史数据库")
            yield self._conn
            return
        if self.readonly:
            raise StoreError(f"历史数据库 {self.path} 以只读方式打开，不能写入")
        try:
            with self._begin_write() as conn:
                self._conn, self._writing = conn, True
                try:
                    yield conn
                finally:
                    self._conn, self._writing = None, False
        except sa.exc.OperationalError as exc:
            text = str(exc.orig)
            if "locked" in text or "busy" in text or "lock timeout" in text:
                raise StoreError(f"历史数据库 {self.path} 正被另一个 tierctl 进程长时间占用"
                                 f"（服务中心 {self.centre}）",
                                 hint="稍后重试；或检查是否有卡住的 tierctl 进程") from exc
            raise StoreError(f"写入历史数据库 {self.path} 失败：{exc.orig}") from exc

    @contextlib.contextmanager
    def reading(self) -> Iterator[sa.Connection]:
        """A consistent read; store methods called inside it join it (as they join an
        open write transaction)."""
        if self._conn is not None:
            yield self._conn
            return
        with self.engine.connect() as conn, conn.begin():
            conn.info["tierctl_centre"] = self.centre
            if self.dialect != "sqlite":  # one snapshot of the database for the whole read
                conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            self._conn = conn
            try:
                yield conn
            finally:
                self._conn = None
