"""The day's questions answered from the store: tasks, open alerts, a customer's history,
why a score is what it is."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from tierctl.daily import owners
from tierctl.daily.cadence import CrisisResponse, days_text, effective
from tierctl.daily.calendar import WorkCalendar
from tierctl.daily.changes import explain, tier_events
from tierctl.daily.history import _alert_records
from tierctl.daily.reading import (
    _crisis_response,
    _dims,
    _local,
    _policy,
    _tiers,
    _who,
    last_contacts,
    resolve_customer,
    task_rows,
)
from tierctl.daily.tasks import describe_tasks, order_tasks, task_records
from tierctl.daily.values import KIND, _plain
from tierctl.errors import NotFoundError
from tierctl.store.core import SnapshotInfo, Store


def ordered_tasks(store: Store, info: SnapshotInfo, day: dt.date, now: dt.datetime, cal: WorkCalendar,
                  view: str = "due", generic: tuple[str, ...] | None = None, owner: str | None = None
                  ) -> tuple[pd.DataFrame, list[dict[str, Any]], int, dict[str, Any] | None]:
    """The task list of ``day`` from ``info`` ordered (:func:`tierctl.daily.order_tasks`)
    under the snapshot's contact policy and crisis level: (tasks, tiers, days the
    snapshot is old, what the crisis level changes — :func:`crisis_note`).  With
    ``owner``, one person's list: their customers, and those of the role they name."""
    tiers = _tiers(info)
    policy = _policy(info)
    crisis = _crisis_response(info, policy)
    rows, stale = task_rows(store, info, day, generic=generic)
    if owner is not None:
        rows = rows[owners.owner_mask(rows["label"], rows.get(owners.PERSON), owner, tiers)].reset_index(drop=True)
    tasks = order_tasks(rows, tiers, last_contacts(store, policy), day, now, cal, view=view, policy=policy,
                              crisis=crisis)
    return tasks, tiers, stale, crisis_note(info, tiers, crisis)


def tasks_report(store: Store, day: dt.date, now: dt.datetime, cal: WorkCalendar, view: str = "due",
                 limit: int | None = None, owner: str | None = None) -> dict[str, Any]:
    """The contact tasks of ``day``, from the latest snapshot on or before it and the
    contact log only (plus active overrides).  ``count`` and ``overdue`` cover every
    task; ``groups`` lists the first ``limit`` (all when None) — a screen shows a
    hundred, and turning ninety thousand tasks into records would cost more than
    finding them."""
    info = store.latest_snapshot(KIND, before=day + dt.timedelta(days=1))
    if info is None:
        raise NotFoundError(f"历史数据库 {store.path} 中没有 {day} 或更早的评分",
                            hint="先运行 tierctl score 导出文件.xlsx（不加 --dry-run）")
    tasks, tiers, stale, crisis = ordered_tasks(store, info, day, now, cal, view, owner=owner)
    listed = describe_tasks(tasks.head(limit) if limit else tasks, tiers, day, view=view)
    warnings = list(cal.warnings)
    if stale > 0:
        warnings.insert(0, f"最近一次评分是 {info.as_of}（{stale} 天前）：等待天数已顺延，分级可能已过时，请先运行 tierctl score")
    return {"date": day.isoformat(), "view": view, "now": now.isoformat(), "snapshot": info.to_json(),
            "count": int(len(tasks)), "overdue": int(tasks["overdue"].sum()) if view == "due" else int(
                (tasks["overdue"] & tasks["is_due"]).sum()),
            "crisis": crisis, "groups": task_records(listed), "warnings": warnings}


def crisis_note(info: SnapshotInfo, tiers: list[dict[str, Any]], crisis: CrisisResponse | None
                ) -> dict[str, Any] | None:
    """The crisis level behind the task list and what it changes: the tiers whose cadence
    it tightens and the tiers it hands to another owner."""
    c = info.meta.get("crisis")
    if not c:
        return None
    out = {"level": c.get("level"), "label": c.get("label"), "contact_max_days": None, "contact_note": None,
           "tightened": [], "owners": {}}
    if crisis is not None:
        out["contact_max_days"] = None if crisis.contact_max_days is None else float(crisis.contact_max_days)
        for t in tiers:
            e = effective(t, crisis)
            if e["capped"]:
                out["tightened"].append(t["name"])
                out["contact_note"] = crisis.contact_note or days_text(crisis.contact_max_days or 1)
            if e["owner_changed"]:
                out["owners"][t["name"]] = e["owner"]
    return out


# -- alerts ----------------------------------------------------------------------------------
def alerts_report(store: Store, tz: dt.tzinfo | None, *, include_closed: bool = False) -> dict[str, Any]:
    frame = store.alerts_list(KIND, statuses=None if include_closed else ("open",))
    latest = store.latest_snapshot(KIND)
    rules = latest.meta.get("alerts", []) if latest else []
    records = _alert_records(frame, tz, rules)
    _with_escalations(store, records, tz)
    return {"alerts": records, "count": int(len(frame))}


def _with_escalations(store: Store, records: list[dict[str, Any]], tz: dt.tzinfo | None) -> None:
    """Each alert's escalation (``escalated_to``, ``escalated_at``; None when it has not
    escalated): an alert nobody acknowledged in time goes on to the next recipient
    (:mod:`tierctl.notify.escalation`)."""
    from tierctl.store.notify import escalations

    esc = escalations(store, KIND)
    by = {int(r["alert_id"]): r for r in esc.to_dict("records")} if len(esc) else {}
    for a in records:
        e = by.get(int(a["id"]))
        a["escalated_to"] = e["to_recipient"] if e else None
        a["escalated_at"] = _local(e["escalated_at"], tz) if e else None


def ack_alerts(store: Store, ids: list[int], now: dt.datetime, by: str | None, note: str | None) -> dict[str, Any]:
    done = store.ack_alerts(ids, now, by, note)
    return {"acked": [d["id"] for d in done if d["status_before"] == "open"],
            "already_closed": [{"id": d["id"], "status": d["status_before"]} for d in done
                               if d["status_before"] != "open"],
            "alerts": done}


# -- contacts --------------------------------------------------------------------------------


# -- history and why ---------------------------------------------------------------------------
def history_report(store: Store, ident: str, tz: dt.tzinfo | None) -> dict[str, Any]:
    """Every tier change of a customer with its date, time and cause, manual overrides
    included, and the day-by-day trajectory."""
    c = resolve_customer(store, ident)
    key = c["customer_key"]
    rows = store.customer_rows(KIND, key)
    snaps = store.list_snapshots(KIND)
    latest = snaps[-1]
    tier_names = [t["name"] for t in _tiers(latest)]
    dims = _dims(latest.meta)
    events = tier_events(rows, [(s.as_of, s.created_at.astimezone(tz) if tz else s.created_at)
                                      for s in snaps], tier_names, dims)
    for o in store.overrides_list(KIND, key).to_dict("records"):
        events.append({"date": o["created_at"].astimezone(tz).date().isoformat(), "at": _local(o["created_at"], tz),
                       "type": "override", "from": o["previous_label"], "to": o["label"],
                       "cause": [f"人工调整（{o['by'] or '未署名'}）：{o['reason']}"]})
        if o["status"] != "active" and o.get("ended_at") is not None:
            kind = {"cleared": "override_cleared", "ended": "override_ended", "replaced": "override_replaced"}
            events.append({"date": o["ended_at"].astimezone(tz).date().isoformat(), "at": _local(o["ended_at"], tz),
                           "type": kind.get(o["status"], "override_ended"), "from": o["label"], "to": None,
                           "cause": [f"取消人工调整：{o['end_reason'] or ''}" + (f"（{o['ended_by']}）" if o.get("ended_by") else "")]})
    events.sort(key=lambda e: (e["at"] or e["date"], e["type"] not in ("listed", "returned")))
    trajectory = []
    for r in rows.to_dict("records") if len(rows) else []:
        trajectory.append({"date": r["as_of"].isoformat(), "tier": r["label"], "model_tier": r.get("model_tier"),
                           "score": _plain(r.get("score")), "wait_days": _plain(r.get("wait_days"))})
    contacts = store.contacts_list(KIND, key)
    active = store.active_overrides(KIND)
    active = active[active["customer_key"] == key] if len(active) else active
    return {"customer": _who(c), "listed": c["listed"], "tier": c["label"], "events": events,
            "trajectory": trajectory,
            "contacts": [{"at": _local(r["at"], tz), "result": r["result"], "note": r["note"], "by": r["by"]}
                         for r in contacts.to_dict("records")] if len(contacts) else [],
            "active_override": ({"to": active.iloc[-1]["label"], "reason": active.iloc[-1]["reason"],
                                 "by": active.iloc[-1]["by"], "since": _local(active.iloc[-1]["created_at"], tz)}
                                if len(active) else None)}


def why_report(store: Store, ident: str, day: dt.date | None, tz: dt.tzinfo | None) -> dict[str, Any]:
    """The stored score of a customer on ``day`` (default: the latest), rule by rule."""
    before = day + dt.timedelta(days=1) if day else None
    info = store.latest_snapshot(KIND, before=before)
    if info is None:
        raise NotFoundError(f"历史数据库 {store.path} 中没有{f' {day} 或更早' if day else '任何'}的评分")
    c = resolve_customer(store, ident, info)
    if not c["listed"]:
        raise NotFoundError(f"客户「{ident}」不在 {info.as_of} 的名单中",
                            hint="用 tierctl history 查看该客户在哪些日期有评分，再加 --date")
    rows = store.snapshot_rows(info.id, keys=[c["customer_key"]])
    row = {k: _plain(v) for k, v in rows.iloc[0].to_dict().items()}
    exp = explain(row, info.meta)
    tiers = {t["name"]: t for t in _tiers(info)}
    t = tiers.get(row["label"], {})
    respond = rows.iloc[0].get("respond_by")
    active = store.active_overrides(KIND)
    active = active[active["customer_key"] == c["customer_key"]] if len(active) else active
    facts = {k: _fact(v) for k, v in row.items() if k in FACT_KEYS and v is not None}
    return {"customer": _who(c), "as_of": info.as_of.isoformat(), "snapshot_id": info.id,
            "model": (info.meta.get("model") or {}).get("name", info.model_name), "facts": facts, **exp,
            "policy": {"owner": t.get("owner"), "respond_by": respond.isoformat() if isinstance(respond, pd.Timestamp)
                       and not pd.isna(respond) else None, "cadence_days": t.get("cadence_days"),
                       "channel": t.get("channel"), "action": t.get("action"),
                       # how often and by whom at the run's crisis level (what tasks asks for)
                       "contact": _contact_policy(info, t)},
            "active_override": ({"to": active.iloc[-1]["label"], "reason": active.iloc[-1]["reason"],
                                 "by": active.iloc[-1]["by"], "since": _local(active.iloc[-1]["created_at"], tz)}
                                if len(active) else None)}


def _contact_policy(info: SnapshotInfo, tier: dict[str, Any]) -> dict[str, Any] | None:
    if not tier:
        return None
    policy = _policy(info)
    response = _crisis_response(info, policy)
    e = effective(tier, response)
    return {"cadence_days": e["cadence_days"], "note": e["note"], "owner": e["owner"],
            "crisis_level": response.level if response else None, "tightened": e["capped"],
            "owner_changed": e["owner_changed"]}


FACT_KEYS = ("car", "part", "advisor", "wait_start", "wait_days", "followers", "identity", "usage", "contacts_7d",
             "contacts_prev_week", "notes", "mood", "negative_post", "media_attention", "complaint", "red_list")


def _fact(v: Any) -> Any:
    if isinstance(v, pd.Timestamp):
        return v.date().isoformat() if v == v.normalize() else v.isoformat()
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v
