"""Alerts, the contact log (with each customer's latest contact) and manual overrides,
all keyed by centre and job kind."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from tierctl.errors import NotFoundError
from tierctl.store.base import StoreBase
from tierctl.store.schema import AwareDateTime, alerts, contact_latest, contacts, overrides
from tierctl.store.sqlutil import (
    _executemany,
    _fetch_text_columns,
    _frame,
    _frame_raw,
    _key_chunks,
    _pylist,
    _rows_of,
    _utc,
)


class RecordsMixin(StoreBase):
    """The daily loop's half of :class:`~tierctl.store.core.Store` (of its centre)."""

    # -- alerts --------------------------------------------------------------------------
    def active_alerts(self, kind: str, statuses: Sequence[str] = ("open", "acked")) -> pd.DataFrame:
        a = alerts.c
        stmt = sa.select(*_rows_of(alerts)).where(a.centre == self.centre, a.kind == kind, a.status.in_(list(statuses))).order_by(a.id)
        with self.reading() as conn:
            return _frame(conn.execute(stmt))

    def alerts_list(self, kind: str, *, statuses: Sequence[str] | None = ("open",)) -> pd.DataFrame:
        a = alerts.c
        stmt = sa.select(*_rows_of(alerts)).where(a.centre == self.centre, a.kind == kind)
        if statuses is not None:
            stmt = stmt.where(a.status.in_(list(statuses)))
        with self.reading() as conn:
            return _frame(conn.execute(stmt.order_by(a.fired_at, a.id)))

    def active_alert_keys(self, kind: str, keys: Sequence[str] | None = None) -> pd.DataFrame:
        """(customer_key, rule_id) of every open or acknowledged alert (of ``keys`` only,
        when given): what may not fire again."""
        a = alerts.c
        stmt = sa.select(a.customer_key, a.rule_id).where(a.centre == self.centre, a.kind == kind, a.status.in_(["open", "acked"]))
        if keys is None:
            with self.reading() as conn:
                return _frame_raw(conn, stmt)
        wanted = list(dict.fromkeys(str(k) for k in keys))
        # by the key index, not the status one (which spans every open alert): `status || ''`
        # keeps the planner off the latter
        stmt = sa.select(a.customer_key, a.rule_id).where(a.centre == self.centre, a.kind == kind, a.status.concat("").in_(["open", "acked"]))
        with self.reading() as conn:
            return pd.concat([_frame_raw(conn, stmt.where(cond)) for cond in _key_chunks(conn, a.customer_key, wanted)],
                             ignore_index=True)

    def count_alerts(self, kind: str, status: str = "open") -> int:
        a = alerts.c
        with self.reading() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(alerts).where(
                a.centre == self.centre, a.kind == kind, a.status == status)).scalar() or 0)

    def alerts_fired_on(self, kind: str, day: dt.date, keys: Sequence[str] | None = None) -> pd.DataFrame:
        """Alerts fired on ``day`` that are still open or acknowledged (times as stored:
        UTC ISO text — a first run may fire very many); of ``keys`` only, when given."""
        a = alerts.c
        stmt = sa.select(*_rows_of(alerts)).where(a.centre == self.centre, a.kind == kind, a.fired_on == day, a.status != "resolved").order_by(a.id)
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
            _executemany(conn, alerts, cols, fixed={"centre": self.centre, "kind": kind, "fired_on": fired_on.isoformat(),
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
                    a.centre == self.centre, a.kind == kind, a.status.concat("").in_(list(statuses)), cond, only
                ).values(status="resolved", closed_at=at, note=note))
                n += res.rowcount or 0
        return n

    def ack_alerts(self, ids: Sequence[int], at: dt.datetime, by: str | None, note: str | None) -> list[dict]:
        """Acknowledge alerts by id.  Unknown ids raise :class:`NotFoundError`;
        returns one ``{id, status_before}`` per id."""
        a = alerts.c
        out = []
        with self.transaction() as conn:
            found = {int(r.id): r for r in conn.execute(sa.select(alerts).where(a.centre == self.centre, a.id.in_(list(ids))))}
            missing = [i for i in ids if i not in found]
            if missing:
                raise NotFoundError(f"没有编号为 {', '.join(map(str, missing))} 的预警",
                                    hint="用 tierctl alerts 查看未处理预警及其编号")
            for i in ids:
                r = found[i]
                out.append({"id": i, "customer_id": r.customer_id, "name": r.name, "rule_id": r.rule_id,
                            "recipient": r.recipient, "status_before": r.status})
                if r.status == "open":
                    conn.execute(sa.update(alerts).where(a.centre == self.centre, a.id == i).values(
                        status="acked", closed_at=at, closed_by=by, note=note))
        return out

    # -- contacts ------------------------------------------------------------------------
    def add_contact(self, kind: str, **values: Any) -> int:
        values = {**values, "customer_key": str(values["customer_key"])}
        with self.transaction() as conn:
            res = conn.execute(sa.insert(contacts).values(centre=self.centre, kind=kind, **values))
            cid = int(res.inserted_primary_key[0])  # type: ignore[index]
            _refresh_latest(conn, self.centre, kind, [values["customer_key"]])
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
            _executemany(conn, contacts, {"centre": [self.centre] * n, "kind": [kind] * n, **stamped})
            _refresh_latest(conn, self.centre, kind, sorted({str(k) for k in stamped["customer_key"]}))
        return n

    def last_contacts(self, kind: str) -> pd.DataFrame:
        """Per customer, the time and result of the latest contact (``customer_key``,
        ``last_at``, ``last_result``), from ``contact_latest`` (kept with the log)."""
        c = contact_latest.c
        stmt = sa.select(c.customer_key, sa.type_coerce(c.last_at, sa.String).label("last_at"),
                         c.last_result).where(c.centre == self.centre, c.kind == kind)
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
                                                 .where(c.centre == self.centre, c.kind == kind, cond).order_by(c.at, c.id))))
        parts = [p for p in parts if len(p)]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            {"customer_key": pd.Series(dtype=object), "at": pd.Series(dtype="datetime64[ns, UTC]"),
             "result": pd.Series(dtype=object)})

    def contacts_list(self, kind: str, customer_key: str | None = None, since: dt.datetime | None = None,
                      until: dt.datetime | None = None) -> pd.DataFrame:
        c = contacts.c
        stmt = sa.select(*_rows_of(contacts)).where(c.centre == self.centre, c.kind == kind)
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
            return _frame(conn.execute(sa.select(*_rows_of(overrides)).where(o.centre == self.centre, o.kind == kind, o.status == "active")
                                       .order_by(o.id)))

    def overrides_list(self, kind: str, customer_key: str | None = None) -> pd.DataFrame:
        o = overrides.c
        stmt = sa.select(*_rows_of(overrides)).where(o.centre == self.centre, o.kind == kind)
        if customer_key is not None:
            stmt = stmt.where(o.customer_key == customer_key)
        with self.reading() as conn:
            return _frame(conn.execute(stmt.order_by(o.created_at, o.id)))

    def add_override(self, kind: str, **values: Any) -> int:
        with self.transaction() as conn:
            return int(conn.execute(sa.insert(overrides).values(  # type: ignore[index]
                centre=self.centre, kind=kind, status="active", **values)
                                    ).inserted_primary_key[0])

    def end_overrides(self, kind: str, keys: Sequence[str], *, at: dt.datetime, status: str, reason: str,
                      by: str | None = None) -> int:
        if not len(keys):
            return 0
        o = overrides.c
        n = 0
        with self.transaction() as conn:
            for cond in _key_chunks(conn, o.customer_key, [str(k) for k in keys]):
                res = conn.execute(sa.update(overrides).where(o.centre == self.centre, o.kind == kind, o.status == "active", cond)
                                   .values(status=status, ended_at=at, end_reason=reason, ended_by=by))
                n += res.rowcount or 0
        return n


def _refresh_latest(conn: sa.Connection, centre: str, kind: str, keys: list[str]) -> None:
    """``contact_latest`` for ``keys`` worked out again from the contact log (the stored
    UTC texts sort like the times they are: the greatest is the latest), with the result
    of that latest contact (the last logged, when two share the time)."""
    c, latest = contacts.c, contact_latest.c
    for cond in _key_chunks(conn, latest.customer_key, keys):
        conn.execute(sa.delete(contact_latest).where(latest.centre == centre, latest.kind == kind, cond))
    c2 = contacts.alias("c2")
    for cond in _key_chunks(conn, c.customer_key, keys):
        g = sa.select(c.centre.label("centre"), c.kind.label("kind"), c.customer_key.label("customer_key"),
                      sa.func.max(sa.type_coerce(c.at, sa.String)).label("last_at")
                      ).where(c.centre == centre, c.kind == kind, cond).group_by(c.centre, c.kind, c.customer_key).subquery()
        result = sa.select(c2.c.result).where(c2.c.centre == g.c.centre, c2.c.kind == g.c.kind, c2.c.customer_key == g.c.customer_key,
                                              sa.type_coerce(c2.c.at, sa.String) == g.c.last_at
                                              ).order_by(c2.c.id.desc()).limit(1).scalar_subquery()
        conn.execute(sa.insert(contact_latest).from_select(
            ["centre", "kind", "customer_key", "last_at", "last_result"],
            sa.select(g.c.centre, g.c.kind, g.c.customer_key, g.c.last_at, result)))
