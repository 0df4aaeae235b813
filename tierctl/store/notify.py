"""What the group robots were told, and which alerts escalated (schema v7).

``notify_sent``: one row per robot and item (``summary:<date>``, ``alert:<id>``,
``escalation:<id>``, ``overdue:<date>:<owner>``, ``image:<date>:<file>``).  A row is
written ``pending`` in its own transaction *before* the message goes out and turned
``sent`` when the platform accepted it; a definite failure deletes it again.  A row still
``pending`` after the run means the run was killed while that message was on its way: it
may or may not have arrived, and it is not sent again unless asked
(``tierctl notify --resend-unconfirmed``) — an alert is never sent twice on a guess.

``alert_escalations``: an open alert not acknowledged in time, handed on to the next
recipient — at most once per alert (unique ``alert_id``).

The tables are described in :mod:`tierctl.store.schema`; migration 7
(:func:`tierctl.store.migrations._v7_notify`) creates them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa

from tierctl.store.core import Store, _frame
from tierctl.store.schema import alert_escalations, alerts, notify_sent


# -- what was sent ----------------------------------------------------------------------------
def sent_status(store: Store, robot: str, items: Sequence[str]) -> dict[str, str]:
    """``{item: status}`` of the ``items`` recorded for ``robot`` (absent: never sent)."""
    n = notify_sent.c
    out: dict[str, str] = {}
    wanted = list(dict.fromkeys(items))
    with store.reading() as conn:
        for i in range(0, len(wanted), 500):
            for item, status in conn.execute(sa.select(n.item, n.status).where(
                    store.centre_is(notify_sent), n.robot == robot, n.item.in_(wanted[i:i + 500]))):
                out[item] = status
    return out


def claim(store: Store, robot: str, platform: str, items: Sequence[str], message_no: int,
          at: dt.datetime) -> None:
    """Record ``items`` as on their way to ``robot`` (committed before the request)."""
    if not items:
        return
    with store.transaction() as conn:
        conn.execute(sa.insert(notify_sent), [
            {"robot": robot, "platform": platform, "item": it, "status": "pending", "message_no": message_no,
             "claimed_at": at} for it in dict.fromkeys(items)])


def confirm(store: Store, robot: str, items: Sequence[str], at: dt.datetime) -> None:
    n = notify_sent.c
    with store.transaction() as conn:
        wanted = list(dict.fromkeys(items))
        for i in range(0, len(wanted), 500):
            conn.execute(sa.update(notify_sent).where(store.centre_is(notify_sent), n.robot == robot, n.item.in_(wanted[i:i + 500]))
                         .values(status="sent", sent_at=at))


def release(store: Store, robot: str, items: Sequence[str]) -> None:
    """Forget a claim whose message certainly did not arrive (the platform said no)."""
    n = notify_sent.c
    with store.transaction() as conn:
        wanted = list(dict.fromkeys(items))
        for i in range(0, len(wanted), 500):
            conn.execute(sa.delete(notify_sent).where(store.centre_is(notify_sent), n.robot == robot, n.status == "pending",
                                                      n.item.in_(wanted[i:i + 500])))


def unconfirmed(store: Store, robot: str) -> list[str]:
    """Items left ``pending`` by a run that was killed while sending them."""
    n = notify_sent.c
    with store.reading() as conn:
        return [r[0] for r in conn.execute(sa.select(n.item).where(store.centre_is(notify_sent), n.robot == robot, n.status == "pending")
                                           .order_by(n.id))]


def drop_unconfirmed(store: Store, robot: str) -> int:
    n = notify_sent.c
    with store.transaction() as conn:
        return int(conn.execute(sa.delete(notify_sent).where(store.centre_is(notify_sent), n.robot == robot, n.status == "pending")).rowcount or 0)


def sent_log(store: Store, robot: str | None = None) -> pd.DataFrame:
    n = notify_sent.c
    stmt = sa.select(*store.row_columns(notify_sent)).where(store.centre_is(notify_sent))
    if robot is not None:
        stmt = stmt.where(store.centre_is(notify_sent), n.robot == robot)
    with store.reading() as conn:
        return _frame(conn.execute(stmt.order_by(n.id)))


# -- escalations --------------------------------------------------------------------------------
def open_unescalated(store: Store, kind: str) -> pd.DataFrame:
    """Open alerts of ``kind`` that have not escalated yet."""
    a, e = alerts.c, alert_escalations.c
    stmt = (sa.select(a.id, a.customer_key, a.customer_id, a.name, a.rule_id, a.recipient, a.reason, a.fired_on,
                      a.fired_at)
            .where(store.centre_is(alerts), a.kind == kind, a.status == "open", ~sa.exists().where(e.alert_id == a.id))
            .order_by(a.id))
    with store.reading() as conn:
        return _frame(conn.execute(stmt))


def add_escalations(store: Store, kind: str, rows: list[dict[str, Any]], at: dt.datetime) -> list[int | None]:
    """Record escalations (``alert_id``, ``customer_key``, ``rule_id``, ``from_recipient``,
    ``to_recipient``, ``after_days``, ``working_days``, ``due_on``); an alert that has
    escalated already is left as it is (None in its place of the returned ids)."""
    ids: list[int | None] = []
    e = alert_escalations.c
    with store.transaction() as conn:
        done = {int(x) for x in conn.execute(sa.select(e.alert_id).where(
            e.alert_id.in_([int(r["alert_id"]) for r in rows]))).scalars()} if rows else set()
        for r in rows:
            if int(r["alert_id"]) in done:
                ids.append(None)
                continue
            res = conn.execute(sa.insert(alert_escalations).values(kind=kind, escalated_at=at, **r))
            ids.append(int(res.inserted_primary_key[0]))  # type: ignore[index]
            done.add(int(r["alert_id"]))
    return ids


def escalations(store: Store, kind: str, *, alert_ids: Sequence[int] | None = None,
                open_only: bool = False) -> pd.DataFrame:
    """Recorded escalations with their alert's customer, reason and status."""
    a, e = alerts.c, alert_escalations.c
    stmt = (sa.select(e.id, e.alert_id, e.from_recipient, e.to_recipient, e.after_days, e.working_days, e.due_on,
                      e.escalated_at, a.customer_key, a.customer_id, a.name, a.rule_id, a.reason, a.fired_on,
                      a.fired_at, a.status)
            .join(alerts, a.id == e.alert_id).where(store.centre_is(alert_escalations), e.kind == kind))
    if open_only:
        stmt = stmt.where(a.status == "open")
    if alert_ids is not None:
        ids = [int(i) for i in alert_ids]
        stmt = stmt.where(e.alert_id.in_(ids) if ids else sa.false())
    with store.reading() as conn:
        return _frame(conn.execute(stmt.order_by(e.id)))


__all__ = ["add_escalations", "alert_escalations", "claim", "confirm", "drop_unconfirmed",
           "escalations", "notify_sent", "open_unescalated", "release", "sent_log", "sent_status", "unconfirmed"]
