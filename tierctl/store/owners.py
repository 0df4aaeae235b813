"""Named owners in the store: the person a customer is assigned to (``tierctl assign``).

An assignment overrides the export's advisor column (服务顾问) until it is changed by
another assignment or cleared; every assignment is kept (status ``active``, then
``replaced`` or ``cleared``), so who owned a customer when stays visible.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import sqlalchemy as sa

from tierctl.store.core import Store, _frame
from tierctl.store.schema import assignments


def active_assignments(store: Store, kind: str) -> pd.DataFrame:
    """``customer_key``, ``person`` (and the rest of the row) of every active assignment."""
    a = assignments.c
    with store.reading() as conn:
        f = _frame(conn.execute(sa.select(*store.row_columns(assignments)).where(store.centre_is(assignments), a.kind == kind, a.status == "active").order_by(a.id)))
    if not len(f):
        return pd.DataFrame({"customer_key": pd.Series(dtype=object), "person": pd.Series(dtype=object)})
    return f.drop_duplicates("customer_key", keep="last").reset_index(drop=True)


def assign(store: Store, kind: str, *, customer_key: str, customer_id: Any, name: Any, person: str,
           previous: str | None, by: str | None, now: dt.datetime) -> int:
    """Assign ``person`` to a customer (ending the assignment in force, if any)."""
    a = assignments.c
    with store.transaction() as conn:
        conn.execute(sa.update(assignments).where(store.centre_is(assignments), a.kind == kind, a.customer_key == str(customer_key),
                                                  a.status == "active")
                     .values(status="replaced", ended_at=now, ended_by=by))
        return int(conn.execute(sa.insert(assignments).values(
            kind=kind, customer_key=str(customer_key), customer_id=customer_id, name=name, person=person,
            previous_person=previous, by=by, created_at=now, status="active")).inserted_primary_key[0])


def clear(store: Store, kind: str, customer_key: str, *, by: str | None, now: dt.datetime) -> int:
    """End a customer's assignment (the export's advisor applies again); how many ended."""
    a = assignments.c
    with store.transaction() as conn:
        res = conn.execute(sa.update(assignments).where(store.centre_is(assignments), a.kind == kind, a.customer_key == str(customer_key),
                                                        a.status == "active")
                           .values(status="cleared", ended_at=now, ended_by=by))
        return int(res.rowcount or 0)


def history(store: Store, kind: str, customer_key: str) -> pd.DataFrame:
    a = assignments.c
    with store.reading() as conn:
        return _frame(conn.execute(sa.select(*store.row_columns(assignments)).where(store.centre_is(assignments), a.kind == kind, a.customer_key == str(customer_key))
                                   .order_by(a.id)))


def assign_owner(store: Store, ident: str, person: str | None, *, by: str | None, now: dt.datetime,
                 clear_it: bool = False) -> dict[str, Any]:
    """``tierctl assign``: name the person who owns a shortage customer (on the latest
    list), or with ``clear_it`` give the customer back to the export's advisor."""
    from tierctl.daily import KIND
    from tierctl.errors import NotFoundError, UsageError
    from tierctl.owners import ADVISOR
    from tierctl.store.loop import resolve_customer

    c = resolve_customer(store, ident)
    if not c["listed"]:
        raise NotFoundError(f"客户「{ident}」不在最新（{c['snapshot'].as_of}）的名单中，无需指定负责人")
    key = str(c["customer_key"])
    row = store.snapshot_rows(c["snapshot"].id, fields=[ADVISOR], keys=[key], generic=("customer_key",))
    advisor = row[ADVISOR].iloc[0] if ADVISOR in row and len(row) else None
    advisor = None if advisor is None or advisor != advisor else str(advisor)
    current = active_assignments(store, KIND)
    mine = current[current["customer_key"].astype(str) == key]
    before = str(mine["person"].iloc[-1]) if len(mine) else advisor
    who = {"customer_key": key, "customer_id": c.get("customer_id"), "name": c.get("name"), "tier": c["label"]}
    if clear_it:
        n = clear(store, KIND, key, by=by, now=now)
        if not n:
            raise NotFoundError(f"客户「{ident}」没有用 tierctl assign 指定的负责人", hint="导出表中的服务顾问列照常生效")
        return {**who, "cleared": n, "owner_person": advisor, "previous": before, "at": now.isoformat(), "by": by}
    person = (person or "").strip()
    if not person:
        raise UsageError("缺少负责人姓名", hint="tierctl assign 客户编号 张三")
    aid = assign(store, KIND, customer_key=key, customer_id=c.get("customer_id"), name=c.get("name"),
                 person=person, previous=before, by=by, now=now)
    return {**who, "id": aid, "owner_person": person, "previous": before, "export_advisor": advisor,
            "at": now.isoformat(), "by": by}
