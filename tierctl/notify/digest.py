"""What the morning message says, read from the store: the latest stored morning run's
crisis level and tier counts (with the change since the run before), the alerts that run
opened (still open), the escalations of alerts nobody acknowledged, and the overdue
contact tasks per owner.

JSON-ready data only; :mod:`tierctl.notify.compose` turns it into lines for a robot.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from tierctl.daily import KIND, WorkCalendar, history, reading
from tierctl.daily.tasks import describe_tasks, order_tasks
from tierctl.daily.values import _plain
from tierctl.errors import NotFoundError
from tierctl.notify.config import NotifyConfig
from tierctl.store.core import SnapshotInfo, Store


def _counts(store: Store, info: SnapshotInfo, names: list[str]) -> dict[str, int]:
    stored = info.meta.get("counts")
    if not isinstance(stored, dict):
        from tierctl.render.dashboard import _counts_sql

        stored = _counts_sql(store, [info.id]).get(info.id, {})
    return {n: int(stored.get(n, 0)) for n in names}


def morning_digest(store: Store, day: dt.date, now: dt.datetime, ncfg: NotifyConfig, *, lang: str = "zh",
                   working_days: bool = False, centre: str | None = None,
                   escalated: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The content of the morning message for ``day`` (the latest shortage run on or
    before it).  ``escalated``: escalations worked out but not stored (a dry run), shown
    beside the stored ones."""
    from tierctl.render.dashboard import _crisis, _shortage_model
    from tierctl.store import notify as sn

    info = store.latest_snapshot(KIND, before=day + dt.timedelta(days=1))
    if info is None:
        raise NotFoundError(f"历史数据库 {store.path} 中没有 {day} 或更早的配件短缺评分，没有可以通知的内容",
                            hint="先运行 tierctl score 导出文件.xlsx（不加 --dry-run）")
    tz = now.tzinfo
    tiers = reading._tiers(info)
    names = [t["name"] for t in tiers]
    prev = store.latest_snapshot(KIND, before=info.as_of)
    counts = _counts(store, info, names)
    model = _shortage_model(info)
    rules = info.meta.get("alerts", [])

    fired = store.alerts_fired_on(KIND, info.as_of)
    if len(fired):
        fired = fired[fired["status"] == "open"]
    alerts = [{k: a[k] for k in ("id", "customer_key", "customer_id", "name", "rule_id", "recipient", "reason",
                                  "fired_on", "since")} for a in history._alert_records(fired, tz, rules)]

    esc = [_escalation_record(r, tz) for r in sn.escalations(store, KIND, open_only=True).to_dict("records")]
    if escalated:
        by_id = {a["id"]: a for a in history._alert_records(store.active_alerts(KIND, ("open",)), tz)}
        for e in escalated:
            a = by_id.get(e["alert_id"])
            if a is not None:
                esc.append({"id": e.get("id"), "alert_id": e["alert_id"], "from": e["from_recipient"],
                            "to": e["to_recipient"], "after_days": e["after_days"], "working_days": e["working_days"],
                            "due_on": e["due_on"], "escalated_at": None, "customer_id": a["customer_id"],
                            "name": a["name"], "rule_id": a["rule_id"], "reason": a["reason"],
                            "fired_on": a["fired_on"]})

    overdue, warnings = _overdue(store, info, tiers, day, now, ncfg, working_days)
    stale = (day - info.as_of).days
    if stale > 0:
        warnings.insert(0, f"最近一次评分是 {info.as_of}（{stale} 天前）" if lang == "zh"
                        else f"The latest run is from {info.as_of} ({stale} days ago)")
    return {
        "date": day.isoformat(), "as_of": info.as_of.isoformat(), "stale_days": stale, "centre": centre or None,
        "lang": lang, "crisis": _crisis(info.meta.get("crisis"), model, lang), "tiers": names, "counts": counts,
        "customers": int(sum(counts.values())),
        "previous": ({"as_of": prev.as_of.isoformat(), "counts": _counts(store, prev, names)} if prev else None),
        "alerts": alerts, "alerts_open": store.count_alerts(KIND), "escalations": esc, "overdue": overdue,
        "warnings": warnings,
    }


def _escalation_record(r: dict[str, Any], tz: dt.tzinfo | None) -> dict[str, Any]:
    at = r["escalated_at"]
    return {"id": int(r["id"]), "alert_id": int(r["alert_id"]), "from": r["from_recipient"], "to": r["to_recipient"],
            "after_days": int(r["after_days"]), "working_days": bool(r["working_days"]),
            "due_on": str(r["due_on"]), "escalated_at": (at.astimezone(tz) if tz else at).isoformat() if at else None,
            "customer_id": r["customer_id"], "name": r["name"], "rule_id": r["rule_id"], "reason": r["reason"],
            "fired_on": str(r["fired_on"])}


def _overdue(store: Store, info: SnapshotInfo, tiers: list[dict[str, Any]], day: dt.date, now: dt.datetime,
             ncfg: NotifyConfig, working_days: bool) -> tuple[list[dict[str, Any]], list[str]]:
    """Overdue contact tasks per owner, as ``tierctl tasks`` finds them (same inputs as
    :func:`tierctl.daily.reports.tasks_report`).  A task of a tier whose owner role is one
    of ``named_owner_roles`` goes to the person in the customer's ``named_owner_field``
    (the export's 服务顾问 column) when there is one, else to the tier's owner."""

    rows, _ = reading.task_rows(store, info, day, generic=("customer_key", "customer_id", "name", "label", "score"))
    cal = WorkCalendar(working_days)
    tasks = order_tasks(rows, tiers, store.last_contacts(KIND), day, now, cal, view="due")
    late = tasks[tasks["overdue"].to_numpy(dtype=bool)].reset_index(drop=True)
    if not len(late):
        return [], list(cal.warnings)
    role = {t["name"]: t.get("owner_role") for t in tiers}
    owner = late["owner"].astype(object).to_numpy().copy()
    named = late["label"].map(role).isin(list(ncfg.named_owner_roles)).to_numpy(dtype=bool)
    field = ncfg.named_owner_field
    if field and named.any():
        who = store.snapshot_rows(info.id, fields=[field], keys=late["customer_key"][named].tolist(),
                                  generic=("customer_key",))
        if field in who:
            by = who.drop_duplicates("customer_key").set_index("customer_key")[field]
            person = late["customer_key"].map(by).to_numpy(dtype=object)
            ok = named & np.array([isinstance(p, str) and bool(p.strip()) for p in person], dtype=bool)
            owner[ok] = [p.strip() for p in person[ok]]
    late["person"] = owner
    head = describe_tasks(late.groupby("person", sort=False).head(ncfg.overdue_names), tiers, day)
    out = []
    for person, group in late.groupby("person", sort=False):
        listed = head[head["person"] == person]
        out.append({"owner": person, "role": str(group["owner"].iloc[0]), "count": int(len(group)),
                    "customers": [{"customer_id": _plain(r["customer_id"]), "name": _plain(r["name"]),
                                   "tier": r["label"], "status": r["status"]}
                                  for r in listed.to_dict("records")],
                    "more": int(len(group) - len(listed))})
    return out, list(cal.warnings)


def who(rec: dict[str, Any]) -> str:
    """A customer as the messages name them: 姓名（编号）."""
    name, cid = rec.get("name"), rec.get("customer_id")
    if name and cid and name != cid:
        return f"{name}（{cid}）"
    return str(name or cid or rec.get("customer_key") or "?")


__all__ = ["morning_digest", "who"]
