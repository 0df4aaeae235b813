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
        key = conn.execute(sa.insert(assignments).values(
            kind=kind, customer_key=str(customer_key), customer_id=customer_id, name=name, person=person,
            previous_person=previous, by=by, created_at=now, status="active")).inserted_primary_key
        assert key is not None
        return int(key[0])


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
