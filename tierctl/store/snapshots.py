"""Snapshots: one day's result of a job, stored column-wise (see
:mod:`tierctl.store.columnar`), one per centre, job kind and as-of date."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from tierctl.errors import NotFoundError, StoreError
from tierctl.store import columnar
from tierctl.store.base import StoreBase, utcnow
from tierctl.store.payload import column_type, decode_payloads, decode_values, json_key
from tierctl.store.schema import snapshot_data, snapshot_rows, snapshots
from tierctl.store.sqlutil import (
    GENERIC,
    _arrow_text,
    _fetch_raw,
    _generic_frame,
    _generic_result,
    _json_field,
    _key_chunks,
    _plain,
)


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


class SnapshotsMixin(StoreBase):
    """The snapshot half of :class:`~tierctl.store.core.Store` (of its centre)."""

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
                snapshots.c.centre == self.centre, snapshots.c.kind == kind, snapshots.c.as_of == as_of)).first()
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
                sid = int(conn.execute(sa.insert(snapshots).values(  # type: ignore[index]
                    centre=self.centre, kind=kind, as_of=as_of, replaced=0, **values)
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
        stmt = sa.select(snapshots).where(snapshots.c.centre == self.centre, snapshots.c.kind == kind)
        if before is not None:
            stmt = stmt.where(snapshots.c.as_of < before)
        return self._one(stmt.order_by(snapshots.c.as_of.desc()).limit(1))

    def snapshot_on(self, kind: str, as_of: dt.date) -> SnapshotInfo | None:
        """The snapshot of ``kind`` for exactly ``as_of``."""
        return self._one(sa.select(snapshots).where(snapshots.c.centre == self.centre, snapshots.c.kind == kind, snapshots.c.as_of == as_of))

    def snapshot(self, snapshot_id: int) -> SnapshotInfo:
        info = self._one(sa.select(snapshots).where(snapshots.c.centre == self.centre, snapshots.c.id == snapshot_id))
        if info is None:
            raise NotFoundError(f"没有编号为 {snapshot_id} 的快照")
        return info

    def list_snapshots(self, kind: str) -> list[SnapshotInfo]:
        """Every snapshot of ``kind``, oldest first."""
        with self.reading() as conn:
            rows = conn.execute(sa.select(snapshots).where(snapshots.c.centre == self.centre, snapshots.c.kind == kind)
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
                .where(r.customer_key == customer_key, s.centre == self.centre, s.kind == kind).order_by(s.as_of))
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
            r.customer_key == customer_key, s.centre == self.centre, s.kind == kind).limit(1)
        with self.reading() as conn:
            return conn.execute(stmt).first() is not None


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
