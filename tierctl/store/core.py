"""The history store: one embedded SQLite file by default, SQLAlchemy Core throughout.

Every job keeps its daily results here as *snapshots* keyed by job kind ("shortage",
"rfm", "churn", "grade" …) and as-of date, with one generic row per customer (key, id,
name, phone, label, score and a JSON payload for the rest).  The daily loop adds alerts,
the contact log and manual overrides, all keyed by kind too.

Safety: a write is one transaction that takes the write lock up front (``BEGIN
IMMEDIATE``), so a run killed at any moment leaves the database exactly as before it, and
a second process waits for the lock (busy timeout) instead of failing or interleaving.
The file runs in WAL mode: readers never block the writer.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy import event

from tierctl.errors import NotFoundError, StoreError
from tierctl.store import columnar, migrations
from tierctl.store.payload import column_type, decode_payloads, decode_values, json_key
from tierctl.store.schema import (
    AwareDateTime,
    alerts,
    contact_latest,
    contacts,
    overrides,
    snapshot_data,
    snapshot_rows,
    snapshots,
)

_CLOSING: list[Any] = []  # threads of Store.close(background=True) not yet waited for


def wait_closed() -> None:
    """Wait until every store closed in the background is closed (its checkpoint done)."""
    while _CLOSING:
        _CLOSING.pop().join()


GENERIC = ("customer_key", "customer_id", "name", "phone", "label", "score")
DEFAULT_TIMEOUT = 30.0  # seconds a writer waits for another one to finish


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class SnapshotInfo:
    """One stored snapshot (without its rows)."""

    id: int
    kind: str
    as_of: dt.date
    model_name: str | None
    source_name: str | None
    source_hash: str | None
    created_at: dt.datetime
    row_count: int
    meta: dict[str, Any] = field(default_factory=dict)
    layout: list[dict] | None = None
    replaced: int = 0
    storage: str = "rows"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "as_of": self.as_of.isoformat(), "model": self.model_name,
                "source_name": self.source_name, "source_hash": self.source_hash,
                "created_at": self.created_at.isoformat(), "rows": self.row_count, "replaced": self.replaced}


class Store:
    """The history database.  ``Store.open(":memory:")`` for tests; ``Store.open(path)``
    creates the file (and its folder) and applies pending migrations."""

    def __init__(self, engine: sa.Engine, path: str, readonly: bool = False) -> None:
        self.engine = engine
        self.path = path
        self.readonly = readonly
        self._conn: sa.Connection | None = None  # the open transaction, if any
        self._writing = False

    # -- opening -----------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path = ":memory:", *, readonly: bool = False, migrate: bool = True,
             timeout: float = DEFAULT_TIMEOUT, target_version: int | None = None) -> Store:
        """Open (and unless ``readonly`` create and migrate) the store at ``path``."""
        p = str(path)
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
        _configure(engine, wal=not memory and not readonly, timeout=timeout)
        store = cls(engine, p, readonly)
        try:
            if readonly:
                with store.reading() as conn:
                    v = migrations.schema_version(conn)
                if v != migrations.CURRENT_VERSION:
                    raise StoreError(f"历史数据库 {p} 的结构版本是 {v}，本程序需要 {migrations.CURRENT_VERSION}",
                                     hint="正常运行一次 tierctl score（不加 --dry-run）即可自动升级")
            elif migrate:
                migrations.migrate(store._begin_write, target=target_version, path=p)
        except sa.exc.OperationalError as exc:
            engine.dispose()
            raise StoreError(f"无法打开历史数据库 {p}：{exc.orig}",
                             hint="检查文件权限，或用 --db 指定另一个数据库文件") from exc
        except sa.exc.DatabaseError as exc:
            engine.dispose()
            raise StoreError(f"{p} 不是有效的 tierctl 历史数据库：{exc.orig}",
                             hint="用 --db 指定正确的数据库文件") from exc
        except BaseException:
            engine.dispose()
            raise
        return store

    def close(self, *, background: bool = False) -> None:
        """Close the store.  Closing the last connection folds the write-ahead log into
        the database file (a checkpoint: tens of megabytes after a large snapshot).
        ``background``: do that on a thread, so a command can print its output meanwhile;
        the interpreter waits for the thread before it exits, and a process killed during
        the checkpoint loses nothing (the log stays and is folded in next time).
        :func:`wait_closed` waits for such closes (the command line does, before it returns)."""
        if background and self.path != ":memory:":
            import threading

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

    # -- transactions --------------------------------------------------------------------
    @contextlib.contextmanager
    def _begin_write(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn:
            conn = conn.execution_options(tierctl_write=True)
            with conn.begin():
                yield conn

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
            if "locked" in str(exc.orig) or "busy" in str(exc.orig):
                raise StoreError(f"历史数据库 {self.path} 正被另一个 tierctl 进程长时间占用",
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
            self._conn = conn
            try:
                yield conn
            finally:
                self._conn = None

    # -- snapshots -----------------------------------------------------------------------
    def save_snapshot(self, kind: str, as_of: dt.date, model_name: str | None, source_name: str | None,
                      source_hash: str | None, rows: pd.DataFrame | EncodedSnapshot,
                      meta: Mapping[str, Any] | None = None, *, now: dt.datetime | None = None) -> int:
        """Store one day's result of job ``kind`` and return the snapshot id.

        ``rows`` needs ``customer_key`` (or ``key``); ``customer_id``, ``name``,
        ``phone``, ``label`` (or ``tier``) and ``score`` are the generic columns every
        job has, the rest is the job's own.  The rows are stored column-wise (one
        compressed Arrow file, :mod:`tierctl.store.columnar`) and come back from
        :meth:`snapshot_rows` in the same order with the same types.  ``rows`` may be
        :func:`encode_snapshot`'s result, worked out beforehand (on a thread, while the
        caller does other work).  A snapshot for the same kind and as-of date is
        replaced (same id), never duplicated."""
        enc = rows if isinstance(rows, EncodedSnapshot) else encode_snapshot(rows)
        created = now or utcnow()
        with self.transaction() as conn:
            existing = conn.execute(sa.select(snapshots.c.id, snapshots.c.replaced).where(
                snapshots.c.kind == kind, snapshots.c.as_of == as_of)).first()
            values = dict(model_name=model_name, source_name=source_name, source_hash=source_hash,
                          created_at=created, row_count=enc.row_count, meta=dict(meta or {}), columns=enc.layout,
                          storage="arrow")
            if existing is not None:
                sid = int(existing.id)
                conn.execute(sa.delete(snapshot_rows).where(snapshot_rows.c.snapshot_id == sid))
                conn.execute(sa.delete(snapshot_data).where(snapshot_data.c.snapshot_id == sid))
                conn.execute(sa.update(snapshots).where(snapshots.c.id == sid).values(
                    replaced=int(existing.replaced or 0) + 1, **values))
            else:
                sid = int(conn.execute(sa.insert(snapshots).values(kind=kind, as_of=as_of, replaced=0, **values)
                                       ).inserted_primary_key[0])
            self._write_snapshot_data(conn, sid, enc.parts)
        return sid

    def _write_snapshot_data(self, conn: sa.Connection, sid: int, parts: list[bytes]) -> None:
        conn.execute(sa.insert(snapshot_data), [{"snapshot_id": sid, "part": i, "data": b}
                                                for i, b in enumerate(parts)])

    def _snapshot_parts(self, info: SnapshotInfo) -> list[bytes]:
        with self.reading() as conn:
            parts = [bytes(r[0]) for r in conn.execute(
                sa.select(snapshot_data.c.data).where(snapshot_data.c.snapshot_id == info.id)
                .order_by(snapshot_data.c.part))]
        if not parts:
            raise StoreError(f"快照 {info.id} 的数据缺失（数据库可能已损坏）")
        return parts

    def _snapshot_table(self, info: SnapshotInfo, columns: Sequence[str] | None = None,
                        keys: pa.Array | None = None) -> pa.Table:
        """The stored Arrow table of a column-wise snapshot (only ``columns`` decoded).
        With ``keys``, only those customers' rows — and when they are few, only the
        record batches that hold them are decoded."""
        parts = self._snapshot_parts(info)
        rd = columnar.reader(parts, columns)
        if keys is None:
            return rd.read_all()
        if len(keys) * 20 >= max(info.row_count, 1):
            table = rd.read_all()
            return table.filter(pc.is_in(table.column("customer_key"), value_set=keys))
        # one chunk of the key column per record batch: decode the rest of a batch only on a hit
        key_col = columnar.reader(parts, ["customer_key"]).read_all().column("customer_key")
        batches = []
        for i, chunk in enumerate(key_col.chunks):
            hit = pc.is_in(chunk, value_set=keys)
            if pc.any(hit).as_py():
                batches.append(rd.get_batch(i).filter(hit))
        return pa.Table.from_batches(batches, schema=rd.schema)

    def _info(self, row: Any) -> SnapshotInfo:
        meta = row.meta if isinstance(row.meta, dict) else (json.loads(row.meta) if row.meta else {})
        layout = row.columns
        if isinstance(layout, str):
            layout = json.loads(layout)
        return SnapshotInfo(id=int(row.id), kind=row.kind, as_of=row.as_of, model_name=row.model_name,
                            source_name=row.source_name, source_hash=row.source_hash, created_at=row.created_at,
                            row_count=int(row.row_count or 0), meta=meta or {}, layout=layout,
                            replaced=int(row.replaced or 0), storage=getattr(row, "storage", None) or "rows")

    def _one(self, stmt: sa.Select) -> SnapshotInfo | None:
        with self.reading() as conn:
            row = conn.execute(stmt).first()
        return self._info(row) if row is not None else None

    def latest_snapshot(self, kind: str, before: dt.date | None = None) -> SnapshotInfo | None:
        """The newest snapshot of ``kind``; with ``before``, the newest strictly
        earlier than that date (the previous run of an as-of date)."""
        stmt = sa.select(snapshots).where(snapshots.c.kind == kind)
        if before is not None:
            stmt = stmt.where(snapshots.c.as_of < before)
        return self._one(stmt.order_by(snapshots.c.as_of.desc()).limit(1))

    def snapshot_on(self, kind: str, as_of: dt.date) -> SnapshotInfo | None:
        """The snapshot of ``kind`` for exactly ``as_of``."""
        return self._one(sa.select(snapshots).where(snapshots.c.kind == kind, snapshots.c.as_of == as_of))

    def snapshot(self, snapshot_id: int) -> SnapshotInfo:
        info = self._one(sa.select(snapshots).where(snapshots.c.id == snapshot_id))
        if info is None:
            raise NotFoundError(f"没有编号为 {snapshot_id} 的快照")
        return info

    def list_snapshots(self, kind: str) -> list[SnapshotInfo]:
        """Every snapshot of ``kind``, oldest first."""
        with self.reading() as conn:
            rows = conn.execute(sa.select(snapshots).where(snapshots.c.kind == kind)
                                .order_by(snapshots.c.as_of)).all()
        return [self._info(r) for r in rows]

    def snapshot_rows(self, snapshot_id: int, fields: Sequence[str] | None = None,
                      keys: Iterable[str] | None = None, *, generic: Sequence[str] = GENERIC) -> pd.DataFrame:
        """The rows of a snapshot, in the order they were saved: the ``generic`` columns
        (all by default; ``customer_key`` always) plus the payload's — all of them, or
        only ``fields``, extracted inside the database.  ``keys`` limits the rows to
        those customers."""
        info = self.snapshot(snapshot_id)
        gen = ["customer_key", *[g for g in generic if g != "customer_key"]]
        if info.storage == "arrow":
            return self._arrow_rows(info, gen, fields, keys)
        layout = info.layout
        by_name = {c["name"]: c for c in layout} if layout is not None else {}
        r = snapshot_rows.c
        # the saved order; rows written before v2 have no seq: their insertion order
        cols: list[Any] = [sa.func.coalesce(r.seq, r.id).label("pos"), *(r[g] for g in gen)]
        wanted: list[str] = []
        if fields is None:
            cols.append(sa.type_coerce(r.payload, sa.Text).label("payload"))
        else:
            for f in fields:
                c = by_name.get(f)
                if layout is not None and c is None:
                    continue  # a field this snapshot does not have
                wanted.append(f)
                cols.append(_json_field(r.payload, f, c).label(f"f_{len(wanted)}"))
        stmt = sa.select(*cols).where(r.snapshot_id == snapshot_id)
        key_list = list(dict.fromkeys(keys)) if keys is not None else None
        with self.reading() as conn:
            if key_list is None or len(key_list) * 2 > max(info.row_count, 1):
                rows = _fetch_raw(conn, stmt)  # many keys: one pass beats thousands of lookups
                if key_list is not None:
                    wanted_keys = set(key_list)
                    rows = [row for row in rows if row[1] in wanted_keys]
            else:
                rows = []
                for cond in _key_chunks(conn, r.customer_key, [str(k) for k in key_list]):
                    rows += _fetch_raw(conn, stmt.where(cond))
        # column-wise from here: one C-level transpose, then reorder with numpy
        table = pd.DataFrame(rows, columns=range(len(cols)), dtype=object) if rows \
            else pd.DataFrame({j: pd.Series(dtype=object) for j in range(len(cols))})
        pos = table[0].to_numpy(dtype=np.int64)
        order = np.argsort(pos, kind="stable")

        def column(j: int) -> np.ndarray:
            return table[j].to_numpy(dtype=object)[order]

        base = pd.DataFrame({g: pd.Series(column(1 + j), dtype=object) for j, g in enumerate(gen)})
        if "score" in base:
            base["score"] = pd.to_numeric(base["score"], errors="coerce").astype(float)
        p0 = 1 + len(gen)
        if fields is None:
            extra = decode_payloads(column(p0).tolist(), layout)
            return pd.concat([base, extra], axis=1) if len(extra.columns) else base
        for i, f in enumerate(wanted):
            vals = column(p0 + i).tolist()
            c = by_name.get(f)
            base[f] = decode_values(vals, c if c is not None else {"name": f, "type": "json", "dtype": "object"})
        return base

    def _arrow_rows(self, info: SnapshotInfo, gen: list[str], fields: Sequence[str] | None,
                    keys: Iterable[str] | None) -> pd.DataFrame:
        names = [c["name"] for c in info.layout or []]
        payload_cols = [n for n in names if n not in GENERIC]
        wanted = payload_cols if fields is None else [f for f in dict.fromkeys(fields) if f in payload_cols]
        cols = [*gen, *wanted]
        key_set = None if keys is None else pa.array(list(dict.fromkeys(str(k) for k in keys)),
                                                     type=pa.large_string())
        table = self._snapshot_table(info, cols, key_set)
        table = table.select([c for c in cols if c in table.column_names])
        return columnar.to_frame(table, info.layout)

    def customer_rows(self, kind: str, customer_key: str) -> pd.DataFrame:
        """One customer across every snapshot of ``kind`` (oldest first): ``as_of``,
        ``snapshot_id``, ``created_at``, the generic columns and the decoded payload."""
        r, s = snapshot_rows.c, snapshots.c
        stmt = (sa.select(s.id, s.as_of, s.created_at, s.columns, r.customer_key, r.customer_id, r.name, r.phone,
                          r.label, r.score, sa.type_coerce(r.payload, sa.Text).label("payload"))
                .join(snapshots, s.id == r.snapshot_id)
                .where(r.customer_key == customer_key, s.kind == kind).order_by(s.as_of))
        with self.reading() as conn:
            rows = conn.execute(stmt).all()
        records = self._arrow_customer_records(kind, customer_key)
        for row in rows:
            payload = json.loads(row.payload) if row.payload else {}
            layout = row.columns if not isinstance(row.columns, str) else json.loads(row.columns)
            if layout:
                raw, payload = payload, {}
                for c in layout:
                    v = raw.get(json_key(c))
                    if "dict" in c and isinstance(v, int):
                        v = c["dict"][v]
                    payload[c["name"]] = v
            records.append({"snapshot_id": row.id, "as_of": row.as_of, "created_at": row.created_at,
                            "customer_key": row.customer_key, "customer_id": row.customer_id, "name": row.name,
                            "phone": row.phone, "label": row.label, "score": row.score, **payload})
        records.sort(key=lambda r: r["as_of"])
        return pd.DataFrame.from_records(records)

    def _arrow_customer_records(self, kind: str, customer_key: str) -> list[dict[str, Any]]:
        """One customer's row in every column-wise snapshot of ``kind``: the key column
        of each is read to find the row, then only its record batch is decoded."""
        out = []
        for info in self.list_snapshots(kind):
            if info.storage != "arrow":
                continue
            parts = self._snapshot_parts(info)
            keys = columnar.reader(parts, ["customer_key"]).read_all().column("customer_key")
            rec = None
            for i, chunk in enumerate(keys.chunks):  # one chunk per record batch
                j = pc.index(chunk, customer_key).as_py()
                if j >= 0:
                    batch = columnar.reader(parts).get_batch(i).slice(j, 1)
                    row = columnar.to_frame(pa.Table.from_batches([batch]), info.layout)
                    rec = {k: _plain(v) for k, v in row.iloc[0].items()}
                    break
            if rec is None:
                continue
            out.append({"snapshot_id": info.id, "as_of": info.as_of, "created_at": info.created_at, **rec})
        return out

    def find_customers(self, snapshot_id: int, text: str) -> pd.DataFrame:
        """Rows of a snapshot whose key, id, name or phone equals ``text``."""
        r = snapshot_rows.c
        stmt = sa.select(r.customer_key, r.customer_id, r.name, r.phone, r.label, r.score).where(
            r.snapshot_id == snapshot_id,
            sa.or_(r.customer_key == text, r.customer_id == text, r.name == text, r.phone == text))
        info = self.snapshot(snapshot_id)
        text = str(text)
        if info.storage == "arrow":
            t = self._snapshot_table(info, list(GENERIC))
            m = None
            for c in ("customer_key", "customer_id", "name", "phone"):
                hit = pc.fill_null(pc.equal(t.column(c), text), False)
                m = hit if m is None else pc.or_(m, hit)
            return columnar.to_frame(t.filter(m).select(list(GENERIC)), info.layout)
        with self.reading() as conn:
            return _generic_result(conn.execute(stmt).all())

    def known_key(self, kind: str, customer_key: str) -> bool:
        customer_key = str(customer_key)
        for info in reversed(self.list_snapshots(kind)):
            if info.storage == "arrow" and pc.any(pc.equal(
                    self._snapshot_table(info, ["customer_key"]).column("customer_key"), customer_key)).as_py():
                return True
        r, s = snapshot_rows.c, snapshots.c
        stmt = sa.select(r.id).join(snapshots, s.id == r.snapshot_id).where(
            r.customer_key == customer_key, s.kind == kind).limit(1)
        with self.reading() as conn:
            return conn.execute(stmt).first() is not None

    # -- alerts --------------------------------------------------------------------------
    def active_alerts(self, kind: str, statuses: Sequence[str] = ("open", "acked")) -> pd.DataFrame:
        a = alerts.c
        stmt = sa.select(alerts).where(a.kind == kind, a.status.in_(list(statuses))).order_by(a.id)
        with self.reading() as conn:
            return _frame(conn.execute(stmt))

    def alerts_list(self, kind: str, *, statuses: Sequence[str] | None = ("open",)) -> pd.DataFrame:
        a = alerts.c
        stmt = sa.select(alerts).where(a.kind == kind)
        if statuses is not None:
            stmt = stmt.where(a.status.in_(list(statuses)))
        with self.reading() as conn:
            return _frame(conn.execute(stmt.order_by(a.fired_at, a.id)))

    def active_alert_keys(self, kind: str, keys: Sequence[str] | None = None) -> pd.DataFrame:
        """(customer_key, rule_id) of every open or acknowledged alert (of ``keys`` only,
        when given): what may not fire again."""
        a = alerts.c
        stmt = sa.select(a.customer_key, a.rule_id).where(a.kind == kind, a.status.in_(["open", "acked"]))
        if keys is None:
            with self.reading() as conn:
                return _frame_raw(conn, stmt)
        wanted = list(dict.fromkeys(str(k) for k in keys))
        # by the key index, not the status one (which spans every open alert): `status || ''`
        # keeps the planner off the latter
        stmt = sa.select(a.customer_key, a.rule_id).where(a.kind == kind, a.status.concat("").in_(["open", "acked"]))
        with self.reading() as conn:
            return pd.concat([_frame_raw(conn, stmt.where(cond)) for cond in _key_chunks(conn, a.customer_key, wanted)],
                             ignore_index=True)

    def count_alerts(self, kind: str, status: str = "open") -> int:
        a = alerts.c
        with self.reading() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(alerts).where(
                a.kind == kind, a.status == status)).scalar() or 0)

    def alerts_fired_on(self, kind: str, day: dt.date, keys: Sequence[str] | None = None) -> pd.DataFrame:
        """Alerts fired on ``day`` that are still open or acknowledged (times as stored:
        UTC ISO text — a first run may fire very many); of ``keys`` only, when given."""
        a = alerts.c
        stmt = sa.select(alerts).where(a.kind == kind, a.fired_on == day, a.status != "resolved").order_by(a.id)
        with self.reading() as conn:
            if keys is None:
                return _frame_raw(conn, stmt)
            wanted = list(dict.fromkeys(str(k) for k in keys))
            parts = [_frame_raw(conn, stmt.where(cond)) for cond in _key_chunks(conn, a.customer_key, wanted)]
        return pd.concat(parts, ignore_index=True).sort_values("id", kind="mergesort").reset_index(drop=True)

    def insert_alerts(self, kind: str, new: pd.DataFrame, fired_on: dt.date, fired_at: dt.datetime) -> int:
        """Open one alert per row of ``new`` (customer_key, customer_id, name, rule_id,
        recipient, reason)."""
        if not len(new):
            return 0
        cols = {
            "customer_key": _pylist(new["customer_key"]), "customer_id": _pylist(new["customer_id"]),
            "name": _pylist(new["name"]), "rule_id": _pylist(new["rule_id"]),
            "recipient": _pylist(new["recipient"]), "reason": _pylist(new["reason"]),
        }
        with self.transaction() as conn:
            _executemany(conn, alerts, cols, fixed={"kind": kind, "fired_on": fired_on.isoformat(),
                                                    "fired_at": _utc(fired_at), "status": "open"})
        return len(new)

    def resolve_alerts(self, kind: str, keys: Sequence[str], at: dt.datetime, note: str, *,
                       rules: Sequence[str] | None = None, statuses: Sequence[str] = ("open", "acked")) -> int:
        """Close the open/acked alerts of customers who left the list (or only those of
        ``rules`` in ``statuses``: a lower threshold replaced by a higher one)."""
        if not len(keys):
            return 0
        a = alerts.c
        n = 0
        with self.transaction() as conn:
            for cond in _key_chunks(conn, a.customer_key, [str(k) for k in keys]):
                # the key index, not the status one (which spans every open alert)
                only = a.rule_id.in_(list(rules)) if rules is not None else sa.true()
                res = conn.execute(sa.update(alerts).where(
                    a.kind == kind, a.status.concat("").in_(list(statuses)), cond, only
                ).values(status="resolved", closed_at=at, note=note))
                n += res.rowcount or 0
        return n

    def ack_alerts(self, ids: Sequence[int], at: dt.datetime, by: str | None, note: str | None) -> list[dict]:
        """Acknowledge alerts by id.  Unknown ids raise :class:`NotFoundError`;
        returns one ``{id, status_before}`` per id."""
        a = alerts.c
        out = []
        with self.transaction() as conn:
            found = {int(r.id): r for r in conn.execute(sa.select(alerts).where(a.id.in_(list(ids))))}
            missing = [i for i in ids if i not in found]
            if missing:
                raise NotFoundError(f"没有编号为 {', '.join(map(str, missing))} 的预警",
                                    hint="用 tierctl alerts 查看未处理预警及其编号")
            for i in ids:
                r = found[i]
                out.append({"id": i, "customer_id": r.customer_id, "name": r.name, "rule_id": r.rule_id,
                            "recipient": r.recipient, "status_before": r.status})
                if r.status == "open":
                    conn.execute(sa.update(alerts).where(a.id == i).values(
                        status="acked", closed_at=at, closed_by=by, note=note))
        return out

    # -- contacts ------------------------------------------------------------------------
    def add_contact(self, kind: str, **values: Any) -> int:
        values = {**values, "customer_key": str(values["customer_key"])}
        with self.transaction() as conn:
            cid = int(conn.execute(sa.insert(contacts).values(kind=kind, **values)).inserted_primary_key[0])
            _refresh_latest(conn, kind, [values["customer_key"]])
            return cid

    def add_contacts(self, kind: str, columns: dict[str, list[Any]]) -> int:
        """Many contacts in one transaction (bulk insert; ``at`` and ``logged_at`` aware
        datetimes or their stored text).  Returns how many."""
        n = len(columns["customer_key"])
        if not n:
            return 0
        stamp = AwareDateTime().process_bind_param  # aware datetimes or ISO text → UTC text
        stamped = {k: ([stamp(v, None) for v in vals] if k in ("at", "logged_at", "done_at") else vals)
                   for k, vals in columns.items()}
        stamped["customer_key"] = [str(k) for k in columns["customer_key"]]
        with self.transaction() as conn:
            _executemany(conn, contacts, {"kind": [kind] * n, **stamped})
            _refresh_latest(conn, kind, sorted(set(stamped["customer_key"])))
        return n

    def last_contacts(self, kind: str) -> pd.DataFrame:
        """Per customer, the time and result of the latest contact (``customer_key``,
        ``last_at``, ``last_result``), from ``contact_latest`` (kept with the log)."""
        c = contact_latest.c
        stmt = sa.select(c.customer_key, sa.type_coerce(c.last_at, sa.String).label("last_at"),
                         c.last_result).where(c.kind == kind)
        with self.reading() as conn:
            keys, stamps, results = _fetch_text_columns(conn, stmt)
        # stored as UTC ISO text: Arrow parses the lot in C
        last = pa.array(stamps, type=pa.string()).cast(pa.timestamp("us", tz="UTC")).to_pandas()
        return pd.DataFrame({"customer_key": pd.Series(keys, dtype=object), "last_at": last,
                             "last_result": pd.Series(results, dtype=object)})

    def contact_results(self, kind: str, keys: Sequence[str]) -> pd.DataFrame:
        """Every logged contact of ``keys``: ``customer_key``, ``at``, ``result`` (by time,
        then as logged)."""
        c = contacts.c
        parts = []
        with self.reading() as conn:
            for cond in _key_chunks(conn, c.customer_key, [str(k) for k in keys]):
                parts.append(_frame(conn.execute(sa.select(c.customer_key, c.at, c.result)
                                                 .where(c.kind == kind, cond).order_by(c.at, c.id))))
        parts = [p for p in parts if len(p)]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            {"customer_key": pd.Series(dtype=object), "at": pd.Series(dtype="datetime64[ns, UTC]"),
             "result": pd.Series(dtype=object)})

    def contacts_list(self, kind: str, customer_key: str | None = None, since: dt.datetime | None = None,
                      until: dt.datetime | None = None) -> pd.DataFrame:
        c = contacts.c
        stmt = sa.select(contacts).where(c.kind == kind)
        if customer_key is not None:
            stmt = stmt.where(c.customer_key == customer_key)
        if since is not None:
            stmt = stmt.where(c.at >= since)
        if until is not None:
            stmt = stmt.where(c.at < until)
        with self.reading() as conn:
            return _frame(conn.execute(stmt.order_by(c.at, c.id)))

    # -- overrides -----------------------------------------------------------------------
    def active_overrides(self, kind: str) -> pd.DataFrame:
        o = overrides.c
        with self.reading() as conn:
            return _frame(conn.execute(sa.select(overrides).where(o.kind == kind, o.status == "active")
                                       .order_by(o.id)))

    def overrides_list(self, kind: str, customer_key: str | None = None) -> pd.DataFrame:
        o = overrides.c
        stmt = sa.select(overrides).where(o.kind == kind)
        if customer_key is not None:
            stmt = stmt.where(o.customer_key == customer_key)
        with self.reading() as conn:
            return _frame(conn.execute(stmt.order_by(o.created_at, o.id)))

    def add_override(self, kind: str, **values: Any) -> int:
        with self.transaction() as conn:
            return int(conn.execute(sa.insert(overrides).values(kind=kind, status="active", **values)
                                    ).inserted_primary_key[0])

    def end_overrides(self, kind: str, keys: Sequence[str], *, at: dt.datetime, status: str, reason: str,
                      by: str | None = None) -> int:
        if not len(keys):
            return 0
        o = overrides.c
        n = 0
        with self.transaction() as conn:
            for cond in _key_chunks(conn, o.customer_key, [str(k) for k in keys]):
                res = conn.execute(sa.update(overrides).where(o.kind == kind, o.status == "active", cond)
                                   .values(status=status, ended_at=at, end_reason=reason, ended_by=by))
                n += res.rowcount or 0
        return n


@dataclass
class EncodedSnapshot:
    """A snapshot's rows checked and encoded for :meth:`Store.save_snapshot`."""

    layout: list[dict[str, Any]]
    parts: list[bytes]
    row_count: int


def encode_snapshot(rows: pd.DataFrame) -> EncodedSnapshot:
    """Check a snapshot's rows (every customer keyed, once) and encode them column-wise.
    Touches no database: a morning run encodes the snapshot on a thread while it works
    out the day's alerts."""
    frame = _generic_frame(rows)
    key_text = _arrow_text(frame["customer_key"])
    if key_text.null_count:
        raise StoreError("快照中有客户缺少 customer_key")
    if len(pc.unique(key_text)) != len(key_text):
        dup = np.flatnonzero(pd.Series(key_text.to_pylist()).duplicated().to_numpy())
        raise StoreError(f"快照中客户 {key_text[int(dup[0])].as_py()} 出现了多次（customer_key 必须唯一）")
    frame["customer_key"] = pd.Series(pd.array(key_text, dtype="str"), index=frame.index)
    frame["score"] = pd.to_numeric(frame["score"], errors="coerce").astype(float)
    for g in ("customer_id", "name", "phone", "label"):
        if column_type(frame[g]) != "str":  # numbers or mixed values: stored as their text
            frame[g] = pd.Series(pd.array(_arrow_text(frame[g]), dtype="str"), index=frame.index)
    table, layout = columnar.to_arrow(frame)
    return EncodedSnapshot(layout=layout, parts=columnar.encode(table), row_count=len(frame))


# -- helpers -------------------------------------------------------------------------------
def _configure(engine: sa.Engine, *, wal: bool, timeout: float) -> None:
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


def _refresh_latest(conn: sa.Connection, kind: str, keys: list[str]) -> None:
    """``contact_latest`` for ``keys`` worked out again from the contact log (the stored
    UTC texts sort like the times they are: the greatest is the latest), with the result
    of that latest contact (the last logged, when two share the time)."""
    c, latest = contacts.c, contact_latest.c
    for cond in _key_chunks(conn, latest.customer_key, keys):
        conn.execute(sa.delete(contact_latest).where(latest.kind == kind, cond))
    c2 = contacts.alias("c2")
    for cond in _key_chunks(conn, c.customer_key, keys):
        g = sa.select(c.kind.label("kind"), c.customer_key.label("customer_key"),
                      sa.func.max(sa.type_coerce(c.at, sa.String)).label("last_at")
                      ).where(c.kind == kind, cond).group_by(c.kind, c.customer_key).subquery()
        result = sa.select(c2.c.result).where(c2.c.kind == g.c.kind, c2.c.customer_key == g.c.customer_key,
                                              sa.type_coerce(c2.c.at, sa.String) == g.c.last_at
                                              ).order_by(c2.c.id.desc()).limit(1).scalar_subquery()
        conn.execute(sa.insert(contact_latest).from_select(
            ["kind", "customer_key", "last_at", "last_result"],
            sa.select(g.c.kind, g.c.customer_key, g.c.last_at, result)))


def _key_chunks(conn: sa.Connection, column: Any, keys: list[str]) -> list[Any]:
    """``column IN keys`` as conditions for one statement each: on SQLite a single one
    (the keys as one JSON array, unpacked by ``json_each``: no parameter limit and one
    compiled statement however many keys), elsewhere chunks of 500."""
    if not keys:
        return [sa.false()]
    if conn.dialect.name == "sqlite":
        values = sa.select(sa.column("value", sa.String)).select_from(
            sa.func.json_each(sa.literal(json.dumps(keys, ensure_ascii=False), sa.String)))
        return [column.in_(values)]
    return [column.in_(keys[i:i + 500]) for i in range(0, len(keys), 500)]


def _generic_frame(rows: pd.DataFrame) -> pd.DataFrame:
    f = rows.reset_index(drop=True)
    ren = {}
    if "customer_key" not in f and "key" in f:
        ren["key"] = "customer_key"
    if "label" not in f and "tier" in f:
        ren["tier"] = "label"
    if ren:
        f = f.rename(columns=ren)
    if "customer_key" not in f:
        raise StoreError("快照缺少 customer_key 列")
    for c in GENERIC:
        if c not in f:
            f[c] = None
    return f


def _arrow_text(s: pd.Series) -> pa.Array:
    """A column as Arrow text (missing → null; numbers and other values as their text)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    if pd.api.types.is_string_dtype(s.dtype) and s.dtype != np.dtype(object):
        arr = pa.array(s, type=pa.string(), from_pandas=True)
    else:
        vals = s.to_numpy(dtype=object)
        try:  # the common case, all text or missing: converted in C
            arr = pa.array(vals, type=pa.string(), from_pandas=True)
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            miss = pd.isna(vals)
            arr = pa.array([None if m else (v if isinstance(v, str) else str(v))
                            for v, m in zip(vals.tolist(), miss.tolist(), strict=True)], type=pa.string())
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _pylist(s: pd.Series, *, number: bool = False) -> list[Any]:
    """Plain Python values for the driver (None for missing)."""
    if number:
        arr = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        out = arr.tolist()
        if np.isnan(arr).any():
            out = [None if x != x else x for x in out]
        return out
    if isinstance(s.dtype, pd.StringDtype):  # text already: only the missing values to replace
        return s.to_numpy(dtype=object, na_value=None).tolist()
    vals = s.astype(object).to_numpy(dtype=object)
    missing = pd.isna(vals)
    if missing.any():
        vals = vals.copy()
        vals[missing] = None
    return [v if v is None or isinstance(v, str) else str(v) for v in vals.tolist()] \
        if vals.dtype == object else vals.tolist()


def _utc(t: dt.datetime) -> str:
    if t.tzinfo is None:
        raise ValueError("tierctl stores only timezone-aware timestamps")
    return t.astimezone(dt.UTC).isoformat()


def _sql_literal(v: int | str) -> sa.ColumnElement:
    if isinstance(v, int):
        return sa.literal_column(str(int(v)))
    return sa.literal_column("'" + str(v).replace("'", "''") + "'")


def _executemany(conn: sa.Connection, table: sa.Table, columns: dict[str, list[Any]],
                 fixed: dict[str, int | str] | None = None) -> None:
    """Insert many rows with one statement compiled for this database's dialect and the
    DBAPI's executemany (values must already be in their stored form).  ``fixed``
    values, the same on every row, are written into the statement (fewer parameters)."""
    names = list(columns)
    stmt = sa.insert(table)
    if fixed:
        stmt = stmt.values({k: _sql_literal(v) for k, v in fixed.items()})
    compiled = stmt.compile(dialect=conn.dialect, column_keys=names)
    sql = str(compiled)
    if compiled.positional:
        order = [columns[k] for k in compiled.positiontup or names]
        params: Iterable[Any] = zip(*order, strict=True)
    else:
        params = ({k: v for k, v in zip(names, vals, strict=True)} for vals in zip(*columns.values(), strict=True))
    cur = conn.connection.cursor()
    try:
        cur.executemany(sql, params)
    finally:
        cur.close()


def _fetch_raw(conn: sa.Connection, stmt: sa.Select) -> list[tuple]:
    """All rows of ``stmt`` as plain tuples.  The selected columns need no result
    processing (text, numbers, JSON values extracted as text/numbers), so the DBAPI
    cursor's own tuples are used — a million rows without building Row objects."""
    result = conn.execute(stmt)
    try:
        return result.cursor.fetchall() if result.cursor is not None else []
    finally:
        result.close()


def _fetch_text_columns(conn: sa.Connection, stmt: sa.Select) -> list[list[str | None]]:
    """The rows of ``stmt`` column by column, for columns of text (or NULL).  On SQLite
    each column comes back as one JSON array built by ``json_group_array`` in C, which
    for a hundred thousand rows takes half the time of fetching them as tuples; elsewhere
    the rows are fetched and transposed.  (Text only: SQLite writes reals into JSON with
    15 significant digits.)"""
    names = list(stmt.selected_columns.keys())
    if conn.dialect.name == "sqlite":
        sub = stmt.subquery()
        row = _fetch_raw(conn, sa.select(*[sa.func.json_group_array(sub.c[n]) for n in names]))[0]
        return [json.loads(x) for x in row]
    rows = _fetch_raw(conn, stmt)
    return [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in names]


def _frame_raw(conn: sa.Connection, stmt: sa.Select) -> pd.DataFrame:
    """``stmt``'s rows as a frame of plain values (no per-row result processing: stored
    timestamps stay UTC ISO text, dates ISO text)."""
    names = [c.key for c in stmt.selected_columns]
    rows = _fetch_raw(conn, stmt)
    if not rows:
        return pd.DataFrame({n: pd.Series(dtype=object) for n in names})
    return pd.DataFrame(rows, columns=names, dtype=object)


def _json_field(payload: Any, name: str, col: dict | None) -> Any:
    """One payload field, extracted inside the database."""
    item = payload[json_key(col) if col is not None else name]
    t = "json" if col is None else ("int" if "dict" in col else col["type"])
    if t == "int":
        return item.as_integer()
    if t == "float":
        return item.as_float()
    if t == "bool":
        return item.as_boolean()
    if t == "json":
        return item  # deserialised by the JSON type
    return item.as_string()


def _plain(v: Any) -> Any:
    """A pandas/numpy scalar as the plain Python value (missing → None)."""
    if _is_missing(v):
        return None
    return v.item() if isinstance(v, np.generic) else v


def _is_missing(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):  # lists, dicts
        return False


def _generic_result(rows: list[Any]) -> pd.DataFrame:
    cols = list(GENERIC)
    data = {c: [r[i] for r in rows] for i, c in enumerate(cols)}
    f = pd.DataFrame({c: pd.Series(data[c], dtype=object) for c in cols})
    f["score"] = pd.to_numeric(f["score"], errors="coerce").astype(float)
    return f


def _frame(result: sa.CursorResult) -> pd.DataFrame:
    keys = list(result.keys())
    rows = result.all()
    return pd.DataFrame({k: pd.Series([r[i] for r in rows], dtype=object) for i, k in enumerate(keys)})
