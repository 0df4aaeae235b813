"""Alerts not acknowledged in time escalate to the next recipient, once (SLA rules as data
in ``[[notify.escalation]]``), counted in working days by default; the escalation is
stored (schema v7) and shows in ``tierctl alerts`` (library and JSON)."""

from __future__ import annotations

import datetime as dt

import notify_robots as nr
import pytest

from tierctl.daily import reports as loop
from tierctl.errors import ConfigError
from tierctl.notify import parse
from tierctl.notify.escalation import escalate
from tierctl.store import CURRENT_VERSION, Store
from tierctl.store import notify as sn

FRI, SAT, SUN, MON, TUE = (dt.date(2026, 11, 20) + dt.timedelta(days=i) for i in range(5))


@pytest.fixture
def friday(tmp_path):
    """Alerts fired on Friday 09:00: C001 wait14 (SA 主管); C002 wait14 + wait21 (服务经理);
    C003 wait14, wait21, wait28 (区域总监)."""
    s = Store.open(":memory:")
    rows = [r[:3] + [start] + r[4:] for r, start in zip(nr.ROWS, ["2026-11-05", "2026-10-29", "2026-10-17", "2026-11-18"],
                                                         strict=True)]
    nr.run_day(s, nr.write(tmp_path / "e.csv", rows), FRI)
    yield s
    s.close()


def by_alert(store):
    alerts = {a["id"]: a for a in loop.alerts_report(store, nr.TZ)["alerts"]}
    return alerts


def test_an_unacknowledged_alert_escalates_on_the_next_working_day_once(friday):
    rules = parse(None).escalation  # the packaged chain: SA 主管 → 服务经理 → 区域总监, 1 working day
    assert escalate(friday, rules, SAT, nr.at(SAT))["escalated"] == []  # Saturday and Sunday are not working days
    assert escalate(friday, rules, SUN, nr.at(SUN))["escalated"] == []
    done = escalate(friday, rules, MON, nr.at(MON, 8, 0))["escalated"]
    alerts = by_alert(friday)
    got = sorted((alerts[e["alert_id"]]["customer_id"], alerts[e["alert_id"]]["rule_id"], e["from_recipient"],
                  e["to_recipient"], e["due_on"]) for e in done)
    # only the highest threshold reached is an alert (C003's 28-day one has no one above 区域总监)
    assert got == [("C001", "wait14", "SA 主管", "服务经理", "2026-11-23"),
                   ("C002", "wait21", "服务经理", "区域总监", "2026-11-23")]
    assert all(isinstance(e["id"], int) for e in done)
    # once: the next days add nothing (an escalated 14-day alert does not go on to 区域总监)
    assert escalate(friday, rules, TUE, nr.at(TUE))["escalated"] == []
    assert len(sn.escalations(friday, "shortage")) == 2
    # recorded, and shown with the alert (which stays open until acknowledged)
    alerts = by_alert(friday)
    c1 = next(a for a in alerts.values() if a["customer_id"] == "C001")
    assert c1["status"] == "open" and c1["recipient"] == "SA 主管"
    assert c1["escalated_to"] == "服务经理" and c1["escalated_at"] == "2026-11-23T08:00:00+08:00"
    assert next(a for a in alerts.values() if a["rule_id"] == "wait28")["escalated_to"] is None


def test_acknowledged_alerts_do_not_escalate_and_a_dry_run_records_nothing(friday):
    rules = parse(None).escalation
    c1 = next(a for a in by_alert(friday).values() if a["customer_id"] == "C001")
    loop.ack_alerts(friday, [c1["id"]], nr.at(FRI, 15), "周主管", "已致电")
    preview = escalate(friday, rules, MON, nr.at(MON), dry_run=True)["escalated"]
    assert len(preview) == 1 and all(e["id"] is None for e in preview)
    assert c1["id"] not in {e["alert_id"] for e in preview}
    assert len(sn.escalations(friday, "shortage")) == 0
    assert len(escalate(friday, rules, MON, nr.at(MON))["escalated"]) == 1


def test_calendar_days_and_rule_ids_are_data(friday):
    ncfg = parse({"escalation": [{"from": "SA主管", "to": "服务经理", "after_days": 1, "working_days": False,
                                  "rules": ["wait14"]},
                                 {"from": "区域总监", "to": "总部危机小组", "after_days": 3, "working_days": False}]})
    sat = escalate(friday, ncfg.escalation, SAT, nr.at(SAT))["escalated"]
    assert sorted(e["to_recipient"] for e in sat) == ["服务经理"]  # «SA主管» matches «SA 主管»
    assert escalate(friday, ncfg.escalation, SUN, nr.at(SUN))["escalated"] == []
    mon = escalate(friday, ncfg.escalation, MON, nr.at(MON))["escalated"]
    assert [(e["from_recipient"], e["to_recipient"]) for e in mon] == [("区域总监", "总部危机小组")]


def test_escalation_rules_are_checked_at_load():
    with pytest.raises(ConfigError, match=r"notify\.escalation\[0\]\.after_days"):
        parse({"escalation": [{"from": "SA 主管", "to": "服务经理", "after_days": -1}]})
    with pytest.raises(ConfigError, match=r"notify\.escalation\[0\]\.to.*不能与原接收人相同"):
        parse({"escalation": [{"from": "SA 主管", "to": "SA主管", "after_days": 1}]})


def test_schema_7_adds_the_notify_tables_to_an_older_database(tmp_path):
    db = tmp_path / "old.db"
    with Store.open(db, target_version=5) as s:
        assert s.schema_version() == 5
    with Store.open(db) as s:
        assert s.schema_version() == CURRENT_VERSION >= 7
        import sqlalchemy as sa

        names = set(sa.inspect(s.engine).get_table_names())
        assert {"notify_sent", "alert_escalations"} <= names
        sn.claim(s, "r", "wecom", ["alert:1"], 1, nr.at(MON))
        with pytest.raises(Exception, match="UNIQUE"):
            sn.claim(s, "r", "wecom", ["alert:1"], 2, nr.at(MON))  # one record per robot and item
