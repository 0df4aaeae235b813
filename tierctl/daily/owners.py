"""Named owners, pure: the tier policy decides the *role* that must act (服务经理, SA主管,
SA, 系统), the export's advisor column (服务顾问 / SA / 顾问 / advisor) or a stored
assignment (``tierctl assign``) decides the *person*.

``owner_person`` is the column name everywhere (run rows, tasks, JSON, CSV), beside the
existing ``owner`` (the role's text) and ``owner_role`` (the role's key); the group robot
and anyone else who needs the person read that field.  :func:`assign_owner` (``tierctl
assign``) records a person on the store (:mod:`tierctl.store.owners`).
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tierctl.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    from tierctl.store import Store

PERSON = "owner_person"
ADVISOR = "advisor"


def _norm(text: Any) -> str:
    return unicodedata.normalize("NFKC", str(text)).strip().casefold().replace(" ", "")


def with_person(frame: pd.DataFrame, assigned: pd.DataFrame | None, *, key: str = "key") -> pd.DataFrame:
    """``frame`` with ``owner_person``: the active assignment of the customer (``assigned``:
    ``customer_key``, ``person``), else the export's advisor, else missing."""
    n = len(frame)
    if ADVISOR in frame:
        base = frame[ADVISOR].astype(object).where(frame[ADVISOR].notna(), None).to_numpy(dtype=object)
    else:
        base = np.full(n, None, dtype=object)
    if assigned is not None and len(assigned) and n:
        by_key = dict(zip(assigned["customer_key"].astype(str), assigned["person"], strict=True))
        keys = frame[key].astype(str).to_numpy(dtype=object)
        hit = pd.Series(keys).map(by_key).to_numpy(dtype=object)
        took = pd.notna(hit)
        if took.any():
            base = base.copy()
            base[took] = hit[took]
    out = frame.copy(deep=False)
    out[PERSON] = pd.Series(base, index=frame.index, dtype=object)
    return out


def person_of(row: Mapping[str, Any]) -> str | None:
    """The person of one customer row (``owner_person``, else the advisor)."""
    for col in (PERSON, ADVISOR):
        if col in row:
            v = row[col]
            if v is not None and not (isinstance(v, float) and v != v) and v is not pd.NA and str(v).strip():
                return str(v).strip()
            if col == PERSON:
                return None
    return None


def role_names(tier: Mapping[str, Any]) -> set[str]:
    """Every way a user may name a tier's owner role (normalised)."""
    out = set()
    for k in ("owner", "owner_short", "owner_short_en", "owner_role"):
        v = tier.get(k)
        if v:
            out.add(_norm(v))
    return out


def owner_mask(labels: pd.Series, persons: pd.Series | None, who: str,
               tiers: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Rows whose person is ``who``, or whose tier's owner role is named ``who``
    (服务经理 / SA主管 / SA / service_manager …)."""
    want = _norm(who)
    roles = {t["name"]: role_names(t) for t in tiers}
    by_role = labels.astype(object).map(lambda t: want in roles.get(t, set())).to_numpy(dtype=bool, na_value=False)
    if persons is None:
        return by_role
    p = persons.astype(object)
    by_person = p.map(lambda v: v is not None and v == v and _norm(v) == want).to_numpy(dtype=bool, na_value=False)
    return by_role | by_person


def known_people(persons: pd.Series | None) -> list[str]:
    if persons is None:
        return []
    return sorted({str(v) for v in persons.dropna().tolist() if str(v).strip()})


def assign_owner(store: Store, ident: str, person: str | None, *, by: str | None, now: dt.datetime,
                 clear_it: bool = False) -> dict[str, Any]:
    """``tierctl assign``: name the person who owns a shortage customer (on the latest
    list), or with ``clear_it`` give the customer back to the export's advisor."""
    from tierctl.daily.reading import resolve_customer
    from tierctl.daily.values import KIND
    from tierctl.store.owners import active_assignments, assign, clear

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
