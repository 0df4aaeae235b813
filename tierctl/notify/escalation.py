"""Alerts not acknowledged in time go to the next recipient (SLA-style), once.

The rules are data (``[[notify.escalation]]``, defaults in ``tierctl/data/notify.toml``):
an open alert whose recipient is a rule's ``from`` and that is still open on the
``after_days``-th (working) day after the day it fired escalates to the rule's ``to``.
The deadline counts whole days from the day the alert fired, so that the next morning's
run escalates a 14-day alert nobody acknowledged the day before, whatever the minute of
either run.  Each alert escalates at most once (the first rule that applies).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from tierctl.daily.calendar import WorkCalendar
from tierctl.daily.values import KIND
from tierctl.notify.config import EscalationRule
from tierctl.store.core import Store


def due_escalations(open_alerts: pd.DataFrame, rules: list[EscalationRule], day: dt.date,
                    tz: dt.tzinfo | None, calendars: dict[bool, WorkCalendar]) -> list[dict[str, Any]]:
    """The escalations due on ``day`` for ``open_alerts`` (open, not yet escalated:
    ``id``, ``customer_key``, ``rule_id``, ``recipient``, ``fired_at``)."""
    if not rules or not len(open_alerts):
        return []
    out = []
    for r in open_alerts.to_dict("records"):
        rule = next((x for x in rules if x.applies(str(r["recipient"]), str(r["rule_id"]))), None)
        if rule is None:
            continue
        fired = r["fired_at"]
        if isinstance(fired, str):
            fired = dt.datetime.fromisoformat(fired)
        fired_day = (fired.astimezone(tz) if tz else fired).date()
        due = calendars[rule.working_days].add_days(fired_day, rule.after_days)
        if day >= due:
            out.append({"alert_id": int(r["id"]), "customer_key": str(r["customer_key"]), "rule_id": str(r["rule_id"]),
                        "from_recipient": str(r["recipient"]), "to_recipient": rule.target,
                        "after_days": rule.after_days, "working_days": rule.working_days, "due_on": due})
    return out


def escalate(store: Store, rules: list[EscalationRule], day: dt.date, now: dt.datetime, *,
             dry_run: bool = False) -> dict[str, Any]:
    """Work out (and unless ``dry_run`` record) the escalations due on ``day``.
    Returns ``{"escalated": [...], "warnings": [...]}`` — what this call escalated
    (a dry run: what it would)."""
    from tierctl.store import notify as sn

    cals = {True: WorkCalendar(True), False: WorkCalendar(False)}
    due = due_escalations(sn.open_unescalated(store, KIND), rules, day, now.tzinfo, cals)
    ids: list[int | None] = [None] * len(due)
    if due and not dry_run:
        ids = list(sn.add_escalations(store, KIND, due, now))
    out = [{"id": i, **{k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in d.items()}}
           for i, d in zip(ids, due, strict=True)]
    return {"escalated": out, "warnings": list(dict.fromkeys(cals[True].warnings + cals[False].warnings))}


__all__ = ["due_escalations", "escalate"]
