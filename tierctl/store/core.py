"""The history store: one embedded SQLite file by default, or a PostgreSQL server shared
by a region's centres (issue 18); SQLAlchemy Core throughout.

Every job keeps its daily results here as *snapshots* keyed by centre, job kind
("shortage", "rfm", "churn", "grade" …) and as-of date (:mod:`tierctl.store.snapshots`).
The daily loop adds alerts, the contact log and manual overrides, keyed the same way
(:mod:`tierctl.store.records`).  A :class:`Store` is one centre's view of the database:
its reads never see, and its runs never compare with, another centre's rows.

Safety: a write is one transaction.  On SQLite it takes the file's write lock up front
(``BEGIN IMMEDIATE``), so a run killed at any moment leaves the database exactly as
before it, and a second process waits for the lock (busy timeout) instead of failing or
interleaving; the file runs in WAL mode (readers never block the writer).  On PostgreSQL
a write takes its centre's lock only (:mod:`tierctl.store.engine`): the morning runs of
twenty centres go side by side.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tierctl.errors import NotFoundError, StoreError
from tierctl.store import engine as eng
from tierctl.store import migrations
from tierctl.store.base import DEFAULT_TIMEOUT, default_centre, set_default_centre, utcnow
from tierctl.store.records import RecordsMixin, _refresh_latest
from tierctl.store.schema import snapshots
from tierctl.store.snapshots import EncodedSnapshot, SnapshotInfo, SnapshotsMixin, encode_snapshot
from tierctl.store.sqlutil import (
    GENERIC,
    _executemany,
    _fetch_raw,
    _fetch_text_columns,
    _frame,
    _frame_raw,
    _key_chunks,
    _pylist,
)

__all__ = ["DEFAULT_TIMEOUT", "GENERIC", "EncodedSnapshot", "SnapshotInfo", "Store", "default_centre",
           "encode_snapshot", "set_default_centre", "utcnow", "wait_closed",
           # the SQL helpers other store modules import from here
           "_executemany", "_fetch_raw", "_fetch_text_columns", "_frame", "_frame_raw", "_key_chunks", "_pylist",
           "_refresh_latest"]

_CLOSING: list[Any] = []  # threads of Store.close(background=True) not yet waited for


def wait_closed() -> None:
    """Wait until every store closed in the background is closed (its checkpoint done)."""
    while _CLOSING:
        _CLOSING.pop().join()


class Store(SnapshotsMixin, RecordsMixin):
    """The history database, as one centre sees it.  ``Store.open(":memory:")`` for
    tests; ``Store.open(path)`` creates the file (and its folder) and applies pending
    migrations; ``Store.open("postgresql://…")`` uses a server."""

    # -- opening -----------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path = ":memory:", *, centre: str | None = None, readonly: bool = False,
             migrate: bool = True, timeout: float = DEFAULT_TIMEOUT, target_version: int | None = None) -> Store:
        """Open (and unless ``readonly`` create and migrate) the store at ``path`` (a file
        or a ``postgresql://`` URL) for ``centre`` (default: :func:`default_centre`)."""
        cid = eng.check_centre(centre if centre is not None else default_centre())
        server = eng.is_server(path)
        p = eng.server_url(path) if server else str(path)
        shown = p.display if isinstance(p, eng.ServerURL) else p
        if server:
            engine = eng.server_engine(eng.server_url(path), readonly=readonly, timeout=timeout)
        else:
            engine, readonly = _sqlite_engine(p, readonly=readonly, timeout=timeout)
        store = cls(engine, shown, readonly, centre=cid)
        try:
            if readonly:
                with store.reading() as conn:
                    v = migrations.schema_version(conn)
                if v != migrations.CURRENT_VERSION:
                    raise StoreError(f"历史数据库 {shown} 的结构版本是 {v}，本程序需要 {migrations.CURRENT_VERSION}",
                                     hint="运行 tierctl db migrate（或正常运行一次 tierctl score）即可升级")
            elif migrate:
                migrations.migrate(store._begin_write, target=target_version, path=shown,
                                   begin_read=store.reading)
        except sa.exc.OperationalError as exc:
            engine.dispose()
            raise StoreError(f"无法打开历史数据库 {shown}：{eng.mask_password(str(exc.orig))}",
                             hint="检查文件权限或服务器地址，或用 --db 指定另一个数据库") from exc
        except sa.exc.DatabaseError as exc:
            engine.dispose()
            raise StoreError(f"{shown} 不是有效的 tierctl 历史数据库：{eng.mask_password(str(exc.orig))}",
                             hint="用 --db 指定正确的数据库文件") from exc
        except BaseException:
            engine.dispose()
            raise
        return store

    def for_centre(self, centre: str) -> Store:
        """The same database as another centre sees it (the region report reads each
        centre this way); shares this store's connections, closed with it."""
        other = type(self)(self.engine, self.path, self.readonly, centre=centre)
        other._owns_engine = False
        return other

    def close(self, *, background: bool = False) -> None:
        """Close the store.  Closing the last connection folds the write-ahead log into
        the database file (a checkpoint: tens of megabytes after a large snapshot).
        ``background``: do that on a thread, so a command can print its output meanwhile;
        the interpreter waits for the thread before it exits, and a process killed during
        the checkpoint loses nothing (the log stays and is folded in next time).
        :func:`wait_closed` waits for such closes (the command line does, before it returns)."""
        if not self._owns_engine:
            return
        if background and self.path != ":memory:":
            t = threading.Thread(target=self.engine.dispose, name="tierctl-store-close")
            t.start()
            _CLOSING.append(t)
            return
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def schema_version(self) -> int:
        with self.reading() as conn:
            return migrations.schema_version(conn)

    # -- the centres in this database --------------------------------------------------
    def centres(self) -> list[dict[str, Any]]:
        """Every centre with a snapshot here: id, snapshots, kinds, first and last as-of
        date (ordered by id)."""
        s = snapshots.c
        stmt = (sa.select(s.centre, sa.func.count(), sa.func.min(s.as_of), sa.func.max(s.as_of))
                .group_by(s.centre).order_by(s.centre))
        kinds = sa.select(s.centre, s.kind).distinct().order_by(s.centre, s.kind)
        with self.reading() as conn:
            rows = conn.execute(stmt).all()
            by: dict[str, list[str]] = {}
            for c, k in conn.execute(kinds):
                by.setdefault(c, []).append(k)
        return [{"centre": c, "snapshots": int(n), "kinds": by.get(c, []), "first": lo, "last": hi}
                for c, n, lo, hi in rows]


def _sqlite_engine(p: str, *, readonly: bool, timeout: float) -> tuple[sa.Engine, bool]:
    memory = p in (":memory:", "")
    if memory:
        engine = sa.create_engine("sqlite+pysqlite://", poolclass=sa.pool.StaticPool,
                                  connect_args={"check_same_thread": False})
        readonly = False
    else:
        fp = Path(p)
        if readonly:
            if not fp.exists():
                raise NotFoundError(f"历史数据库 {fp} 不存在", hint="先运行 tierctl score 保存一次评分")
            # a read-only WAL connection would create the -wal/-shm files; when no
            # other connection is open (no -wal file: the last writer checkpointed and
            # removed it) the file is complete and read as immutable, touching nothing
            wal = Path(f"{fp}-wal")
            flag = "mode=ro" if wal.exists() else "immutable=1"
            url = f"sqlite+pysqlite:///file:{fp.resolve().as_posix()}?{flag}&uri=true"
        else:
            try:
                fp.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"无法创建历史数据库所在的文件夹 {fp.parent}：{exc.strerror or exc}",
                                 hint="用 --db 或环境变量 TIERCTL_DB 指定一个可写的位置") from exc
            url = f"sqlite+pysqlite:///{fp.as_posix()}"
        engine = sa.create_engine(url, connect_args={"timeout": timeout})
    eng.configure_sqlite(engine, wal=not memory and not readonly, timeout=timeout)
    return engine, readonly
