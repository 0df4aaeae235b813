"""What people record in the daily loop: contacts, manual overrides, the execution record."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from tierctl.daily.cadence import effective
from tierctl.daily.calendar import WorkCalendar
from tierctl.daily.reading import (
    _crisis_response,
    _last_contact_of,
    _policy,
    _tiers,
    _who,
    resolve_customer,
    task_rows,
)
from tierctl.daily.tasks import describe_tasks, order_tasks
from tierctl.daily.values import KIND
from tierctl.errors import NotFoundError, UsageError
from tierctl.shortage import (
    parse_holds,
)
from tierctl.store.core import SnapshotInfo, Store


def log_contact(store: Store, ident: str, *, result: str, at: dt.datetime, now: dt.datetime,
                cal: WorkCalendar, note: str | None = None, by: str | None = None, plan: str | None = None,
                done_at: dt.datetime | None = None, channel: str | None = None) -> dict[str, Any]:
    """Log a contact.  One that reached the customer resets their contact clock; one
    whose result says they were not reached (``[contacts] not_reached`` of the model:
    未接通, 关机 …) does not, and they are due again the next (working) day.
    ``next_due`` is the customer's next deadline as ``tierctl tasks`` will show it."""
    if not result.strip():
        raise UsageError("--result 不能为空", hint="例如 --result 已接通 或 --result 未接通")
    c = resolve_customer(store, ident)
    info: SnapshotInfo = c["snapshot"]
    tier_list = _tiers(info)
    tiers = {t["name"]: t for t in tier_list}
    policy = _policy(info)
    crisis = _crisis_response(info, policy)
    label = c["label"]
    ovr = store.active_overrides(KIND)
    if len(ovr):
        mine = ovr[ovr["customer_key"] == c["customer_key"]]
        if len(mine):
            label = mine.iloc[-1]["label"]
    tier = tiers.get(label, {})
    owner = by or (effective(tier, crisis)["owner"] if tier else None)
    cid = store.add_contact(KIND, customer_key=c["customer_key"], customer_id=c.get("customer_id"),
                            name=c.get("name"), at=at, result=result.strip(), note=note, plan=plan, done_at=done_at,
                            by=by, score=c.get("score"), label=label, owner=owner, logged_at=now,
                            channel=channel)
    reached = policy.is_reached(result)
    next_due = None
    if c["listed"] and tier:
        day = now.astimezone(now.tzinfo).date()
        rows, _ = task_rows(store, info, day, keys=[c["customer_key"]])
        last = _last_contact_of(store, c["customer_key"], policy)
        t = describe_tasks(order_tasks(rows, tier_list, last, day, now, cal, view="all", policy=policy,
                                                   crisis=crisis), tier_list, day)
        if len(t):
            next_due = str(t["due"].iat[0])
    return {"id": cid, **_who(c), "tier": label, "at": at.isoformat(), "result": result.strip(), "note": note,
            "by": by, "owner": owner, "channel": channel, "listed": c["listed"], "reached": reached,
            "next_due": next_due, "warnings": list(cal.warnings)}


# the execution record (SPEC B) plus the channel, which tierctl contacts import reads back
EXPORT_COLUMNS = ["客户", "风险分", "等级", "负责人", "联系时间", "联系结果", "客户反馈", "后续方案", "完成时间", "渠道"]


def contacts_record(store: Store, tz: dt.tzinfo | None, since: dt.date | None = None,
                    until: dt.date | None = None) -> pd.DataFrame:
    """The execution record (执行记录): one row per logged contact, oldest first."""
    lo = dt.datetime.combine(since, dt.time(0), tzinfo=tz) if since else None
    hi = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(0), tzinfo=tz) if until else None
    f = store.contacts_list(KIND, since=lo, until=hi)

    def when(t: Any) -> str:
        return t.astimezone(tz).strftime("%Y-%m-%d %H:%M") if isinstance(t, dt.datetime) else ""

    from tierctl.daily.contacts_model import load_contacts_model

    channels = load_contacts_model()
    rows = []
    for r in f.to_dict("records") if len(f) else []:
        who = r["name"] or ""
        if r["customer_id"] and r["customer_id"] != r["name"]:
            who = f"{who}（{r['customer_id']}）" if who else str(r["customer_id"])
        rows.append([who, r["score"], r["label"] or "", r["owner"] or r["by"] or "", when(r["at"]), r["result"] or "",
                     r["note"] or "", r["plan"] or "", when(r["done_at"]),
                     channels.label_of(r.get("channel")) if r.get("channel") else ""])
    out = pd.DataFrame(rows, columns=EXPORT_COLUMNS) if rows else pd.DataFrame({c: [] for c in EXPORT_COLUMNS})
    return out


# -- overrides --------------------------------------------------------------------------------
def set_override(store: Store, ident: str, tier: str, *, reason: str, by: str | None,
                 now: dt.datetime) -> dict[str, Any]:
    """Record a manual tier for a customer on the current list.  It holds from the next
    score run on (and at once in tasks) until cleared or the customer leaves the list."""
    if not reason or not reason.strip():
        raise UsageError("人工调整必须写明原因", hint='例如 --reason "客户已上门投诉，区域经理要求按 P0 处理"')
    info = store.latest_snapshot(KIND)
    c = resolve_customer(store, ident, info)
    names = [t["name"] for t in _tiers(c["snapshot"])]
    tier = tier.strip().upper()
    if tier not in names:
        raise UsageError(f"未知的分级「{tier}」", hint=f"可选：{'、'.join(names)}")
    if not c["listed"]:
        raise NotFoundError(f"客户「{ident}」不在最新（{c['snapshot'].as_of}）的名单中，无需调整")
    releases: list[dict[str, str]] = []
    if c["label"] in names and names.index(tier) > names.index(c["label"]):
        # lowering the tier releases the raises that hold (issue 14): say which, before the next run drops them
        held = store.snapshot_rows(c["snapshot"].id, fields=["holds"], keys=[c["customer_key"]],
                                   generic=("customer_key",))
        if "holds" in held and len(held):
            releases = parse_holds(held["holds"].iat[0])
    with store.transaction():
        store.end_overrides(KIND, [c["customer_key"]], at=now, status="replaced", reason="被新的人工调整取代", by=by)
        oid = store.add_override(KIND, customer_key=c["customer_key"], customer_id=c.get("customer_id"),
                                 name=c.get("name"), label=tier, previous_label=c["label"], reason=reason.strip(),
                                 by=by, created_at=now)
    return {"id": oid, **_who(c), "from": c["label"], "to": tier, "reason": reason.strip(), "by": by,
            "at": now.isoformat(), "holds": "直到用 --clear 取消，或客户离开名单",
            "releases": releases}


def clear_override(store: Store, ident: str, *, reason: str | None, by: str | None, now: dt.datetime
                   ) -> dict[str, Any]:
    c = resolve_customer(store, ident)
    n = store.end_overrides(KIND, [c["customer_key"]], at=now, status="cleared", reason=(reason or "").strip()
                            or "手动取消", by=by)
    if not n:
        raise NotFoundError(f"客户「{ident}」没有生效中的人工调整")
    return {**_who(c), "cleared": n, "at": now.isoformat(), "reason": reason, "by": by,
            "note": "下一次 tierctl score 起按模型分级"}


def assign_owner(store: Store, ident: str, person: str | None, *, by: str | None, now: dt.datetime,
                 clear_it: bool = False) -> dict[str, Any]:
    """``tierctl assign``: name the person who owns a shortage customer (on the latest
    list), or with ``clear_it`` give the customer back to the export's advisor."""
    from tierctl.daily.owners import ADVISOR
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
