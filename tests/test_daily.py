"""The daily loop: working days, changes between runs, escalation from history (A4.4,
A4.5), alerts that fire once, tasks due and cleared by a contact, manual overrides, the
crisis level (A7) and the explanation of a stored score — over a multi-day scenario of
small exports written in tmp_path."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierctl import daily, shortage
from tierctl.daily import actions as daily_actions
from tierctl.daily import history
from tierctl.daily import history as daily_history
from tierctl.daily import reading as daily_reading
from tierctl.daily import reports as daily_reports
from tierctl.daily import values as daily_values
from tierctl.errors import NotFoundError, UsageError
from tierctl.io.ingest import Export, read_export
from tierctl.store import Store

TZ = dt.timezone(dt.timedelta(hours=8))
D0, D1, D2, D3 = dt.date(2026, 11, 16), dt.date(2026, 11, 21), dt.date(2026, 11, 22), dt.date(2026, 11, 23)
HEAD = ["客户编号", "客户姓名", "手机号", "登记日期", "用车场景", "近7天联系次数", "沟通记录"]


def at(day: dt.date, hour: int = 9, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=TZ)


def write(path: Path, rows: list[list[object]], head: list[str] = HEAD) -> Path:
    with open(path, "w", newline="", encoding="utf-8-sig") as fh:
        w = csv.writer(fh)
        w.writerow(head)
        w.writerows(rows)
    return path


def run_day(store: Store, path: Path, day: dt.date, *, red: set[str] | None = None, dry_run: bool = False,
            export: Export | None = None):
    """What ``tierctl score`` does, at library level (``export``: ``path`` read already)."""
    return record_day(store, score_day(store, path, day, red=red, export=export), path, dry_run=dry_run)


def score_day(store: Store, path: Path, day: dt.date, *, red: set[str] | None = None,
              export: Export | None = None) -> shortage.ShortageResult:
    """The scoring half of :func:`run_day`: the export scored against the store's history."""
    model = shortage.load_model("rite")
    if export is None:
        export = read_export(path, model.columns)
    prev, week = daily_history.previous_frames(store, model, day)
    return shortage.score(export.frame, model, day, at(day), previous=prev, week_ago=week, red_list=red,
                          headers=export.headers, path=export.path)


def record_day(store: Store, result: shortage.ShortageResult, path: Path, *, dry_run: bool = False):
    """The storing half of :func:`run_day`."""
    rec = daily_history.record_run(store, result, shortage.crisis_level(result), source_name=path.name, source_hash="h",
                                   dry_run=dry_run)
    return result, rec


def row(result: shortage.ShortageResult, cid: str) -> dict:
    c = result.customers
    return c[c["customer_id"] == cid].iloc[0].to_dict()


# -- working days ----------------------------------------------------------------------------
def test_calendar_days_by_default():
    cal = daily.WorkCalendar(False)
    assert cal.add_days(dt.date(2026, 9, 30), 3) == dt.date(2026, 10, 3)
    assert cal.add_days(dt.date(2026, 11, 23), 7) == dt.date(2026, 11, 30)
    assert cal.warnings == []


def test_working_days_skip_the_national_holiday_and_count_the_make_up_saturday():
    cal = daily.WorkCalendar(True)
    # 10-01…10-07 are the National Day holiday; Saturday 10-10 is a make-up workday (调休)
    assert cal.add_days(dt.date(2026, 9, 30), 3) == dt.date(2026, 10, 10)
    assert cal.add_days(dt.date(2026, 9, 30), 1) == dt.date(2026, 10, 8)
    # an ordinary week: "weekly" is 5 working days, so Monday → next Monday
    assert cal.add_days(dt.date(2026, 11, 23), 7) == dt.date(2026, 11, 30)
    assert cal.add_days(dt.date(2026, 11, 27), 3) == dt.date(2026, 12, 2)  # Friday + 3 → Wednesday
    assert cal.warnings == []


def test_beyond_the_holiday_data_working_days_fall_back_to_monday_to_friday_with_a_warning():
    cal = daily.WorkCalendar(True)
    # 2027-01-01 is a Friday: without holiday data it counts as a workday
    assert cal.add_days(dt.date(2026, 12, 31), 3) == dt.date(2027, 1, 5)
    assert cal.add_days(dt.date(2027, 3, 5), 1) == dt.date(2027, 3, 8)
    assert len(cal.warnings) == 1 and "2027" in cal.warnings[0] and "周一至周五" in cal.warnings[0]


def test_week_ago_snapshot_is_the_closest_to_seven_days_back():
    days = [dt.date(2026, 11, d) for d in (10, 14, 15, 20, 22)]
    assert daily.pick_week_ago(days, dt.date(2026, 11, 22)) == dt.date(2026, 11, 15)
    assert daily.pick_week_ago(days, dt.date(2026, 11, 21)) == dt.date(2026, 11, 14)
    # a tie (2 days either side) takes the earlier one
    assert daily.pick_week_ago([dt.date(2026, 11, 13), dt.date(2026, 11, 17)], dt.date(2026, 11, 22)) \
        == dt.date(2026, 11, 13)
    # only yesterday: not a previous week
    assert daily.pick_week_ago([dt.date(2026, 11, 21)], dt.date(2026, 11, 22)) is None


# -- pure pieces -------------------------------------------------------------------------------
def test_alerts_fire_for_the_highest_threshold_reached_and_never_twice():
    rules = [{"id": "wait14", "min_days": 14, "recipient": "SA 主管", "reason": "等待已满 14 天"},
             {"id": "wait21", "min_days": 21, "recipient": "服务经理", "reason": "等待已满 21 天"},
             {"id": "wait28", "min_days": 28, "recipient": "区域总监", "reason": "等待已满 28 天"}]
    red = {"recipient": "区域总监", "reason": "红名单客户投诉"}
    cur = pd.DataFrame({"customer_key": ["a", "b", "c"], "customer_id": ["a", "b", "c"], "name": ["甲", "乙", "丙"],
                        "wait_days": [13, 22, 3], "redlist_complaint": [False, False, True]})
    new = daily.alerts_to_fire(cur, rules, red, None)
    assert sorted(zip(new["customer_key"], new["rule_id"], strict=True)) == [("b", "wait21"), ("c", "redlist")]
    assert new.loc[new["rule_id"] == "wait21", "reason"].item() == "等待已满 21 天（已等待 22 天）"
    active = new[["customer_key", "rule_id"]]
    assert len(daily.alerts_to_fire(cur, rules, red, active)) == 0
    cur["wait_days"] = [14, 29, 3]
    again = daily.alerts_to_fire(cur, rules, red, active)
    assert sorted(zip(again["customer_key"], again["rule_id"], strict=True)) == [("a", "wait14"), ("b", "wait28")]
    # an open higher alert covers a lower threshold (a corrected, shorter wait fires nothing)
    cur["wait_days"] = [14, 15, 3]
    assert len(daily.alerts_to_fire(cur, rules, red, pd.concat([active, again[["customer_key", "rule_id"]]]))) == 0


TIERS = [{"name": "P0", "owner_short": "服务经理", "channel": "电话", "cadence_days": 3, "first_contact_hours": 2,
          "cadence_note": "每 3 天主动联系"},
         {"name": "P1", "owner_short": "SA主管", "channel": "电话", "cadence_days": 5, "first_contact_hours": 4,
          "cadence_note": "每 5 天更新进展"},
         {"name": "P3", "owner_short": "系统", "channel": "短信", "cadence_days": 7, "first_contact_hours": 48,
          "cadence_note": "每周群发"}]


def task_rows() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_key": ["a", "b", "c", "d"], "customer_id": ["a", "b", "c", "d"], "name": list("甲乙丙丁"),
        "phone": [None] * 4, "label": ["P1", "P0", "P1", "P3"], "score": [6.5, 8.5, 7.0, 2.0],
        "wait_days": [16, 3, 20, 2],
        "first_seen": [at(D1, 0)] * 4,
        "first_due": [at(D1, 13), at(D3, 11), at(D1, 13), at(D3, 9) + dt.timedelta(hours=48)],
    })


def test_tasks_first_contact_and_cadence_grouped_by_owner_overdue_first():
    last = pd.DataFrame({"customer_key": ["c", "d"], "last_at": [at(D1, 15), at(D3, 8)]})
    t = daily.compute_tasks(task_rows(), TIERS, last, D3, at(D3, 10), daily.WorkCalendar(False))
    # a (never contacted, deadline passed) and b (never contacted, 1 h left) are due; c was contacted
    # 2 days ago (cadence 5), d this morning
    assert t["customer_key"].tolist() == ["b", "a"]
    assert t["owner"].tolist() == ["服务经理", "SA主管"]  # the most urgent owner first
    a = t.set_index("customer_key").loc["a"]
    assert a["due_kind"] == "first" and a["overdue"] and a["status"].startswith("逾期 1 天")
    b = t.set_index("customer_key").loc["b"]
    assert b["task"] == "首次联系" and not b["overdue"] and b["status"] == "剩 1 小时"
    later = daily.compute_tasks(task_rows(), TIERS, last, dt.date(2026, 11, 27), at(dt.date(2026, 11, 27), 10),
                                daily.WorkCalendar(False)).set_index("customer_key")
    assert later.loc["c", "due"] == "2026-11-26" and later.loc["c", "status"] == "逾期 1 天"
    assert later.loc["c", "task"] == "每 5 天更新进展" and later.loc["c", "channel"] == "电话"
    assert "d" not in later.index  # weekly: due 11-30
    grouped = daily.task_records(later.reset_index())
    assert [g["owner"] for g in grouped] == ["服务经理", "SA主管"]
    assert grouped[1]["tasks"][0]["customer_key"] in ("a", "c") and grouped[1]["tasks"][0]["overdue"]


def test_tasks_views_calls_and_evening():
    last = pd.DataFrame({"customer_key": ["c"], "last_at": [at(D3, 8)]})
    calls = daily.compute_tasks(task_rows(), TIERS, last, D3, at(D3, 16), daily.WorkCalendar(False), view="calls")
    assert sorted(calls["customer_key"]) == ["a", "b", "c"]  # every P0 and P1, due or not
    evening = daily.compute_tasks(task_rows(), TIERS, last, D3, at(D3, 18), daily.WorkCalendar(False),
                                  view="evening")
    assert sorted(evening["customer_key"]) == ["a", "c"]  # waiting ≥ 15 days
    assert set(evening["channel"]) == {"短信/微信（书面）"}


def test_a_contact_from_an_earlier_stay_on_the_list_does_not_count():
    rows = task_rows().iloc[[0]].copy()
    rows["first_seen"] = [at(D3, 0)]
    rows["first_due"] = [at(D3, 13)]
    last = pd.DataFrame({"customer_key": ["a"], "last_at": [at(D1, 10)]})
    t = daily.compute_tasks(rows, TIERS, last, D3, at(D3, 10), daily.WorkCalendar(False))
    assert t["due_kind"].tolist() == ["first"]


def test_explain_is_exact_on_the_boundary():
    meta = daily.model_meta(shortage.load_model("rite"))
    r = {"R": 8, "I": 8, "T": 8, "E": 8, "total_scaled": 800, "model_tier": "P0", "label": "P0",
         "reason_R": "R=8: x", "reason_I": "I=8: y", "reason_T": "T=8: z", "reason_E": "E=8: w",
         "escalations": "", "alerts": ""}
    e = daily.explain(r, meta)
    assert e["total"] == "8.00"
    assert e["sum"] == "8×0.35 + 8×0.30 + 8×0.20 + 8×0.15 = 8.00"
    assert [x["contribution"] for x in e["dimensions"]] == ["2.80", "2.40", "1.60", "1.20"]
    assert e["thresholds"][0] == {"tier": "P0", "min": "8.0", "label": "极高风险", "reached": True}
    assert e["escalations"] == [] and e["override"] is None


# -- crisis level (A7): the seed cases ------------------------------------------------------------
def dims_export(tmp_path: Path, spec: list[tuple[int, int, int]]) -> Path:
    """(count, all four dimension scores, days waited) groups, dimensions given in the export."""
    rows, i = [], 0
    for count, d, wait in spec:
        for _ in range(count):
            i += 1
            rows.append([f"K{i:03d}", f"客户{i}", wait, d, d, d, d])
    return write(tmp_path / "dims.csv", rows, ["客户编号", "客户姓名", "等待天数", "R", "I", "T", "E"])


@pytest.mark.parametrize("spec, customers, p0, longest", [
    ([(3, 8, 10), (29, 2, 3)], 32, 3, 10),            # 32 customers with 3 P0 → red
    ([(7, 9, 82), (36, 3, 20)], 43, 7, 82),           # 43 cars, 82 days, 7 P0 → red
])
def test_crisis_seed_cases_are_red_and_stored_with_the_snapshot(tmp_path, spec, customers, p0, longest):
    store = Store.open(":memory:")
    result, rec = run_day(store, dims_export(tmp_path, spec), D1)
    assert len(result.customers) == customers and result.counts()["P0"] == p0
    crisis = rec["crisis"]
    assert (crisis.level, crisis.color, crisis.label) == (4, "red", "极度")
    by = {c["name"]: c for c in crisis.criteria}
    assert by["affected"]["level"] == 4 and by["tiers"]["level"] == 4
    assert by["longest_wait"]["value"] == longest
    assert store.latest_snapshot("shortage").meta["crisis"]["level"] == 4


def test_crisis_below_the_thresholds_is_not_red(tmp_path):
    store = Store.open(":memory:")
    _, rec = run_day(store, dims_export(tmp_path, [(2, 8, 10), (10, 2, 3)]), D1)
    assert rec["crisis"].level == 3  # 1–2 P0 → orange


# -- the multi-day scenario -----------------------------------------------------------------------
def exports(tmp_path: Path) -> dict[dt.date, Path]:
    """Four days of a changing export (wait start dates, so waits grow by themselves)."""
    a = ["C001", "甲", "13900000001", "2026-11-11", "通勤"]
    b = ["C002", "乙", "13900000002", "2026-11-16", "通勤"]
    y = ["C003", "丙", "13900000003", "2026-11-12", "通勤"]
    w = ["C004", "丁", "13900000004", "2026-11-08", "通勤"]  # 13 days on D1, 14 on D2
    v = ["C005", "戊", "13900000005", "2026-11-03", "通勤"]  # 18 days on D1; leaves the list on D3
    u = ["C006", "己", "13900000006", "2026-11-20", "周末"]  # new on D2
    return {
        D0: write(tmp_path / "d0.csv", [a + [1, "等配件"], y + [5, ""]]),
        D1: write(tmp_path / "d1.csv", [a + [1, "客户说要投诉"], b + [0, ""], y + [1, ""], w + [0, ""],
                                        v + [0, ""]]),
        D2: write(tmp_path / "d2.csv", [a + [1, "客户说要投诉"], b + [0, "要找律师"], y + [2, ""], w + [0, ""],
                                        v + [0, ""], u + [0, ""]]),
        D3: write(tmp_path / "d3.csv", [a + [4, "客户说要投诉"], b + [0, "要找律师"], y + [6, ""], w + [0, ""],
                                        u + [0, ""]]),
    }


def esc_ids(result, cid: str) -> list[str]:
    text = row(result, cid)["escalations"]
    return [x.split(":")[0] for x in text.split("\n")] if text else []


def test_multi_day_scenario(tmp_path):
    files = exports(tmp_path)
    store = Store.open(":memory:")
    run_day(store, files[D0], D0)

    # D1 — A newly mentions 投诉 (not in D0's note): A4.4 fires
    r1, rec1 = run_day(store, files[D1], D1)
    assert esc_ids(r1, "C001") == ["A4.4"] and row(r1, "C001")["tier"] == "P1"
    assert {x["customer_id"] for x in rec1["changes"]["new"]} == {"C002", "C004", "C005"}
    assert [x["rule_id"] for x in rec1["alerts_fired"] if x["customer_id"] == "C004"] == []  # 13 days
    v_alerts = {x["rule_id"] for x in rec1["alerts_fired"] if x["customer_id"] == "C005"}
    assert v_alerts == {"wait14"}  # 18 days

    # D2 — A's mention is no longer new, but yesterday's raise holds (issue 14); B's is new (律师)
    r2, rec2 = run_day(store, files[D2], D2)
    assert esc_ids(r2, "C001") == ["A4.4"] and "自 2026-11-21 起保持" in row(r2, "C001")["escalations"]
    assert row(r2, "C001")["tier"] == "P1" and "A4.4" in esc_ids(r2, "C002")
    ch = rec2["changes"]
    assert ch["previous_as_of"] == "2026-11-21"
    assert [x["customer_id"] for x in ch["new"]] == ["C006"]
    up = {x["customer_id"]: x for x in ch["upgraded"]}
    down = {x["customer_id"]: x for x in ch["downgraded"]}
    assert up["C002"]["from"] == "P3" and up["C002"]["to"] == "P1"
    assert any(w.startswith("A4.4") for w in up["C002"]["why"]) and any(w.startswith("E 2→10") for w in up["C002"]["why"])
    assert "C001" not in down  # the raise holds: no "A4.4 不再适用"
    # W reaches 14 days today: its alert fires now, once
    fired2 = [(x["customer_id"], x["rule_id"]) for x in rec2["alerts_fired"]]
    assert fired2 == [("C004", "wait14")]
    w_alert = rec2["alerts_fired"][0]
    assert w_alert["recipient"] == "SA 主管" and w_alert["since"] == at(D2).isoformat()

    # D2 again (same export): replaces the day, same alerts, no duplicates
    _, again = run_day(store, files[D2], D2)
    assert again["snapshot"]["replaced"] and again["snapshot"]["id"] == rec2["snapshot"]["id"]
    assert [(x["customer_id"], x["rule_id"]) for x in again["alerts_fired"]] == fired2
    assert len(store.list_snapshots("shortage")) == 3
    assert len(store.alerts_list("shortage")) == len(store.alerts_list("shortage", statuses=None)) - 0

    # a manual override before D3: C003 to P0, with its reason
    o = daily_actions.set_override(store, "丙", "p0", reason="区域经理要求重点关注", by="王经理", now=at(D2, 17))
    assert o["from"] == "P3" and o["to"] == "P0"

    # D3 — A's contacts jump from 1 (the week-ago snapshot D0) to 4: A4.5 on top of the held
    # A4.4.  Y's go 2 → 6 since yesterday but 5 → 6 on the week: no A4.5.  V left the list.
    r3, rec3 = run_day(store, files[D3], D3)
    assert esc_ids(r3, "C001") == ["A4.4", "A4.5"] and row(r3, "C001")["tier"] == "P0"
    assert "上周 1 次" in row(r3, "C001")["escalations"]
    assert "A4.5" not in esc_ids(r3, "C003")
    assert esc_ids(r3, "C002") == ["A4.4"] and row(r3, "C002")["tier"] == "P1"  # held from D2
    ch3 = rec3["changes"]
    assert [x["customer_id"] for x in ch3["resolved"]] == ["C005"] and ch3["resolved"][0]["name"] == "戊"
    assert {x["customer_id"] for x in ch3["upgraded"]} >= {"C001", "C003"}
    c003 = row(r3, "C003")
    assert c003["tier"] == "P0" and c003["model_tier"] == "P3" and "人工调整" in c003["escalations"]
    assert c003["owner"].startswith("服务经理")
    # alerts: nothing new for W (still 15 days); V's alert was closed when V left
    assert rec3["alerts_fired"] == []
    statuses = store.alerts_list("shortage", statuses=None).set_index("customer_id")["status"]
    assert statuses["C005"] == "resolved" and statuses["C004"] == "open"

    # tasks on D3 at 10:00: B (P1, its A4.4 raise held) never contacted → due (first contact); a contact moves it on.
    # A and B have complained, so the crisis is at level 4 (red): every cadence is capped at 12 hours
    # and the HQ crisis team owns P0 (see test_loop_issue14 for the tiers' own cadences)
    assert rec3["crisis"].level == 4
    cal = daily.WorkCalendar(False)
    t = daily_reports.tasks_report(store, D3, at(D3, 10), cal)
    due = {x["customer_id"]: x for g in t["groups"] for x in g["tasks"]}
    assert due["C002"]["due_kind"] == "first" and due["C002"]["tier"] == "P1"
    assert due["C001"]["tier"] == "P0"
    assert t["groups"][0]["owner"] == "总部危机小组"  # C003 (P0 by override) and C001 (P0) first
    assert t["crisis"]["level"] == 4 and t["crisis"]["tightened"] == ["P0", "P1", "P2", "P3"]
    c = daily_actions.log_contact(store, "C002", result="已接通", note="客户同意等待", at=at(D3, 10, 30), now=at(D3, 10, 31),
                         cal=cal, by="李主管")
    assert c["next_due"] == at(D3, 22, 30).isoformat() and c["tier"] == "P1" and c["reached"]
    t = daily_reports.tasks_report(store, D3, at(D3, 11), cal)
    a = next(x for g in t["groups"] for x in g["tasks"] if x["customer_id"] == "C002")
    assert a["due_kind"] == "cadence" and a["due"] == at(D3, 22, 30).isoformat() and not a["overdue"]
    assert a["task"].startswith("每日两次联系") and a["status"].startswith("剩 ")
    # … and late once the 12 hours have run out
    later = daily_reports.tasks_report(store, dt.date(2026, 11, 28), at(dt.date(2026, 11, 28), 9), cal)
    again = {x["customer_id"]: x for g in later["groups"] for x in g["tasks"]}
    assert again["C002"]["due_kind"] == "cadence" and again["C002"]["status"] == "逾期 4 天 10 小时"
    assert later["warnings"][0].startswith("最近一次评分是 2026-11-23")
    # the crisis cap counts calendar time: working days change nothing
    wd = daily_reports.tasks_report(store, dt.date(2026, 11, 28), at(dt.date(2026, 11, 28), 9), daily.WorkCalendar(True))
    assert {x["customer_id"]: x["due"] for g in wd["groups"] for x in g["tasks"]}["C002"] == again["C002"]["due"]

    # alerts: acknowledge W's, it stays closed on later runs
    open_ = daily_reports.alerts_report(store, TZ)
    wid = next(a["id"] for a in open_["alerts"] if a["customer_id"] == "C004")
    ack = daily_reports.ack_alerts(store, [wid], at(D3, 12), "王经理", "已电话安抚")
    assert ack["acked"] == [wid]
    assert daily_reports.ack_alerts(store, [wid], at(D3, 12), None, None)["already_closed"] == [{"id": wid, "status": "acked"}]
    with pytest.raises(NotFoundError):
        daily_reports.ack_alerts(store, [9999], at(D3, 12), None, None)
    assert wid not in {a["id"] for a in daily_reports.alerts_report(store, TZ)["alerts"]}

    # history: the audit trail, manual override included
    h = daily_reports.history_report(store, "C003", TZ)
    kinds = [(e["type"], e["from"], e["to"]) for e in h["events"]]
    assert ("override", "P3", "P0") in kinds and ("upgraded", "P3", "P0") in kinds
    assert h["active_override"]["reason"] == "区域经理要求重点关注"
    hv = daily_reports.history_report(store, "C005", TZ)
    assert hv["events"][-1]["type"] == "left" and hv["events"][-1]["date"] == "2026-11-23"
    assert not hv["listed"]
    ha = daily_reports.history_report(store, "C001", TZ)
    assert [(e["type"], e["to"]) for e in ha["events"]] == [
        ("listed", "P3"), ("upgraded", "P1"), ("upgraded", "P0")]  # the A4.4 raise held on D2
    assert ha["events"][1]["date"] == "2026-11-21" and ha["events"][1]["at"] == at(D1).isoformat()
    assert [t["tier"] for t in ha["trajectory"]] == ["P3", "P1", "P1", "P0"]

    # why: the stored score, rule by rule
    why = daily_reports.why_report(store, "C001", D3, TZ)
    assert why["escalations"][0].startswith("A4.4") and why["escalations"][1].startswith("A4.5")
    assert why["model_tier"] == "P2" and why["tier"] == "P0"
    assert [(h["rule"], h["since"]) for h in why["holds"]] == [("A4.4", "2026-11-21"), ("A4.5", "2026-11-23")]
    assert why["total"] == f"{row(r3, 'C001')['total_scaled'] / 100:.2f}"
    old = daily_reports.why_report(store, "甲", D1, TZ)
    assert old["as_of"] == "2026-11-21" and old["escalations"][0].startswith("A4.4")

    # clearing the override: the next run goes back to the model's tier
    daily_actions.clear_override(store, "C003", reason="客户已安抚", by="王经理", now=at(D3, 13))
    with pytest.raises(NotFoundError):
        daily_actions.clear_override(store, "C003", reason=None, by=None, now=at(D3, 13))
    r3b, _ = run_day(store, files[D3], D3)
    assert row(r3b, "C003")["tier"] == "P3"


def test_an_override_ends_when_the_customer_leaves_and_needs_a_reason(tmp_path):
    files = exports(tmp_path)
    store = Store.open(":memory:")
    run_day(store, files[D2], D2)
    with pytest.raises(UsageError, match="原因"):
        daily_actions.set_override(store, "C005", "P0", reason=" ", by=None, now=at(D2, 12))
    with pytest.raises(UsageError, match="未知的分级"):
        daily_actions.set_override(store, "C005", "P9", reason="x", by=None, now=at(D2, 12))
    daily_actions.set_override(store, "C005", "P0", reason="媒体关注", by=None, now=at(D2, 12))
    run_day(store, files[D3], D3)  # C005 is not on D3's export
    assert store.active_overrides("shortage").empty
    ended = store.overrides_list("shortage", "C005").iloc[0]
    assert ended["status"] == "ended" and ended["end_reason"] == daily_reading.NOT_LISTED


def test_a_dry_run_reports_but_stores_nothing(tmp_path):
    files = exports(tmp_path)
    store = Store.open(":memory:")
    run_day(store, files[D1], D1)
    _, rec = run_day(store, files[D2], D2, dry_run=True)
    assert not rec["snapshot"]["stored"] and rec["snapshot"]["id"] is None
    assert [(x["customer_id"], x["rule_id"], x["id"]) for x in rec["alerts_fired"]] == [("C004", "wait14", None)]
    assert rec["changes"]["counts"]["new"] == 1
    assert [s.as_of for s in store.list_snapshots("shortage")] == [D1]
    assert len(store.alerts_list("shortage", statuses=None)) == 1  # only D1's (C005)


def test_rescoring_an_older_day_fires_and_closes_nothing(tmp_path):
    files = exports(tmp_path)
    store = Store.open(":memory:")
    run_day(store, files[D3], D3)
    before = store.alerts_list("shortage", statuses=None)
    _, rec = run_day(store, files[D1], D1)  # yesterday's file re-scored after today's
    assert rec["snapshot"]["latest"] is False and rec["alerts_fired"] == []
    assert len(store.alerts_list("shortage", statuses=None)) == len(before)
    assert [s.as_of for s in store.list_snapshots("shortage")] == [D1, D3]


def test_first_contact_deadline_is_kept_from_the_first_day_on_the_list(tmp_path):
    files = exports(tmp_path)
    store = Store.open(":memory:")
    run_day(store, files[D1], D1)
    run_day(store, files[D2], D2)
    rows = store.snapshot_rows(store.snapshot_on("shortage", D2).id, fields=["first_seen", "first_due"])
    by = rows.set_index("customer_key")
    assert by.loc["C004", "first_seen"] == pd.Timestamp(at(D1, 0))
    assert by.loc["C004", "first_due"] <= pd.Timestamp(at(D1, 9) + dt.timedelta(hours=48))
    assert by.loc["C006", "first_seen"] == pd.Timestamp(at(D2, 0))  # new on D2


def test_result_rebuilt_from_the_store_equals_the_scored_one(tmp_path):
    files = exports(tmp_path)
    store = Store.open(":memory:")
    run_day(store, files[D1], D1)
    r2, _ = run_day(store, files[D2], D2)
    back = daily_reading.load_result(store, D2)
    assert back.as_of == D2 and back.now == r2.now
    assert back.to_json()["customers"] == r2.to_json()["customers"]
    assert back.counts() == r2.counts()
    later = daily_reading.load_result(store, dt.date(2026, 12, 1))
    assert later.as_of == D2 and any("使用最近一次" in w for w in later.warnings)
    with pytest.raises(NotFoundError, match="没有"):
        daily_reading.load_result(store, dt.date(2026, 1, 1))


def test_redlist_complaint_alerts_the_regional_director(tmp_path):
    path = write(tmp_path / "r.csv", [["C009", "记者", "13900000009", "2026-11-20", "通勤", 0, "说要去12315投诉"]])
    store = Store.open(":memory:")
    _, rec = run_day(store, path, D1, red={"C009"})
    assert [(x["rule_id"], x["recipient"]) for x in rec["alerts_fired"]] == [("redlist", "区域总监")]
    _, rec2 = run_day(store, path, D2, red={"C009"})
    assert rec2["alerts_fired"] == []  # once


def test_unknown_customer_and_ambiguous_name(tmp_path):
    path = write(tmp_path / "n.csv", [["C1", "张伟", "1", "2026-11-20", "通勤", 0, ""],
                                      ["C2", "张伟", "2", "2026-11-20", "通勤", 0, ""]])
    store = Store.open(":memory:")
    with pytest.raises(NotFoundError, match="还没有任何评分"):
        daily_reports.history_report(store, "C1", TZ)
    run_day(store, path, D1)
    with pytest.raises(UsageError, match="多位客户"):
        daily_reports.why_report(store, "张伟", None, TZ)
    with pytest.raises(NotFoundError, match="找不到"):
        daily_reports.history_report(store, "C404", TZ)
    assert daily_reports.why_report(store, "C2", None, TZ)["customer"]["customer_id"] == "C2"


def test_changes_are_vectorised_and_complete():
    prev = pd.DataFrame({"customer_key": ["a", "b", "c"], "customer_id": ["a", "b", "c"], "name": ["甲", "乙", "丙"],
                         "label": ["P1", "P2", "P3"], "score": [6.0, 4.0, 2.0], "escalations": ["", "", ""],
                         "R": [5, 5, 1], "reason_R": ["R=5: x", "R=5: x", "R=1: y"]})
    cur = prev.iloc[[1, 0]].copy()
    cur.loc[cur["customer_key"] == "a", ["label", "R", "reason_R", "score"]] = ["P0", 10, "R=10: 红名单", 8.5]
    cur = pd.concat([cur, pd.DataFrame({"customer_key": ["d"], "customer_id": ["d"], "name": ["丁"],
                                        "label": ["P2"]})], ignore_index=True)
    ch = daily.diff_snapshots(prev, cur, ["P0", "P1", "P2", "P3"], ["R"], D1)
    assert ch["counts"] == {"new": 1, "upgraded": 1, "downgraded": 0, "resolved": 1}
    assert ch["upgraded"][0] == {"customer_key": "a", "customer_id": "a", "name": "甲", "from": "P1", "to": "P0",
                                 "why": ["R 5→10（红名单）"]}
    assert ch["resolved"] == [{"customer_key": "c", "customer_id": "c", "name": "丙", "tier": "P3"}]
    first = daily.diff_snapshots(None, cur, ["P0", "P1", "P2", "P3"], ["R"])
    assert first["counts"]["new"] == 3 and first["previous_as_of"] is None
    assert np.array_equal(daily.tier_moves(prev, cur, ["P0", "P1", "P2", "P3"])["pos"], [1, 0, -1])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["P0", "P1", "P2", "P3"]), st.sampled_from(["P0", "P1", "P2", "P3"]),
                          st.sampled_from([1, 5, 10, None]), st.sampled_from([1, 5, 10, None]),
                          st.sampled_from(["", "A4.1: 投诉", "A4.1: 投诉\nA4.4: 新词", None]),
                          st.sampled_from(["", "A4.1: 投诉", None]), st.sampled_from([2.0, 4.5, None])),
                min_size=1, max_size=30))
def test_each_moved_customers_why_equals_explaining_their_two_rows(rows):
    """The why of every upgrade and downgrade (worked out once per combination) against
    :func:`change_causes` on that customer's previous and current row, one by one."""
    n = len(rows)
    keys = [f"k{i:02d}" for i in range(n)]
    col = list(zip(*rows, strict=True))
    prev = pd.DataFrame({"customer_key": keys, "customer_id": keys, "name": keys, "label": list(col[0]),
                         "R": pd.array(col[2], dtype="Int64"), "reason_R": [f"R={v}: 旧" for v in col[2]],
                         "escalations": list(col[5]), "score": [4.0] * n})
    cur = pd.DataFrame({"customer_key": keys[::-1], "customer_id": keys[::-1], "name": keys[::-1],
                        "label": list(col[1])[::-1], "R": pd.array(col[3][::-1], dtype="Int64"),
                        "reason_R": [f"R={v}: 新" for v in col[3][::-1]], "escalations": list(col[4])[::-1],
                        "score": list(col[6])[::-1]})
    ch = daily.diff_snapshots(prev, cur, ["P0", "P1", "P2", "P3"], ["R"], D1)
    fields = ["score", "escalations", "R", "reason_R"]
    p_rows, c_rows = prev.set_index("customer_key"), cur.set_index("customer_key")
    seen = 0
    for kind, up in (("upgraded", True), ("downgraded", False)):
        for rec in ch[kind]:
            k = rec["customer_key"]
            p = {f: daily_values._plain(p_rows.at[k, f]) for f in fields}
            c = {f: daily_values._plain(c_rows.at[k, f]) for f in fields}
            assert rec["why"] == daily.change_causes(p, c, ["R"], up=up), (kind, k)
            seen += 1
    assert seen == ch["counts"]["upgraded"] + ch["counts"]["downgraded"]


def test_change_lists_can_stop_at_a_screenful_with_complete_counts():
    n = 40
    keys = [f"k{i:02d}" for i in range(n)]
    prev = pd.DataFrame({"customer_key": keys, "customer_id": keys, "name": keys, "label": ["P2"] * n,
                         "score": [4.0] * n, "escalations": [""] * n, "R": [5] * n, "reason_R": ["R=5: x"] * n})
    cur = prev.iloc[:30].copy()  # k30–k39 left the list
    cur["label"] = ["P0" if i % 3 == 0 else "P3" if i % 3 == 1 else "P2" for i in range(30)]
    cur = pd.concat([cur, prev.iloc[:12].assign(customer_key=[f"n{i}" for i in range(12)])], ignore_index=True)
    tiers = ["P0", "P1", "P2", "P3"]
    full = daily.diff_snapshots(prev, cur, tiers, ["R"], D1)
    short = daily.diff_snapshots(prev, cur, tiers, ["R"], D1, limit=4)
    assert short["counts"] == full["counts"] == {"new": 12, "upgraded": 10, "downgraded": 10, "resolved": 10}
    for k in ("new", "upgraded", "downgraded", "resolved"):
        assert len(full[k]) == full["counts"][k] and short[k] == full[k][:4]


@pytest.mark.parametrize("seed", range(6))
def test_alerts_known_from_the_previous_run_equal_asking_the_store(tmp_path, monkeypatch, seed):
    """The morning run skips looking up alerts it knows are open (listed yesterday and past
    the threshold then).  Over random weeks — customers coming, leaving and coming back,
    alerts acknowledged, a day scored again and again, a day skipped — the alerts table must end up exactly
    as when every alert is looked up in the store."""
    rng = np.random.default_rng(seed)
    pool = [f"K{i:03d}" for i in range(60)]
    start = {k: D0 - dt.timedelta(days=int(rng.integers(0, 40))) for k in pool}
    stores = {"known": Store.open(tmp_path / "a.db"), "asked": Store.open(tmp_path / "b.db")}
    real = daily_history._alerts_known
    day = D0
    for step in range(8):
        listed = [k for k in pool if rng.random() < 0.7]
        rows = [[k, f"客户{k}", f"139{k[1:]:0>8}", start[k].isoformat(), "通勤", 1, ""] for k in listed]
        path = write(tmp_path / f"d{step}.csv", rows)
        export = read_export(path, shortage.load_model("rite").columns)  # read once, scored four times
        repeat = step in (3, 4)  # the same day three times, each with another file
        for name, store in stores.items():
            monkeypatch.setattr(history, "_alerts_known", real if name == "known" else (lambda *a, **k: None))
            # the dry run and the run score the same export against the same history (a dry
            # run stores nothing): scored once, each run given its own result object
            scored = score_day(store, path, day, export=export)
            _, preview = record_day(store, dataclasses.replace(scored), path, dry_run=True)
            _, rec = record_day(store, scored, path)
            # the dry run announces what the run then does
            for k in ("alerts_closed", "alerts_fired", "alerts_fired_customers"):
                assert preview["snapshot"][k] == rec["snapshot"][k], (name, step, k)
            if step in (2, 4):  # the manager acknowledges some alerts
                ids = store.alerts_list(daily_values.KIND)["id"].tolist()[::3]
                store.ack_alerts([int(i) for i in ids], at(day, 10), "王经理", None)
        with stores["known"].reading() as c1, stores["asked"].reading() as c2:
            q = "SELECT customer_key, rule_id, status, fired_on FROM alerts ORDER BY customer_key, rule_id, id"
            assert c1.exec_driver_sql(q).fetchall() == c2.exec_driver_sql(q).fetchall(), f"step {step}"
        if not repeat:
            day += dt.timedelta(days=int(rng.integers(1, 3)))
        for k in pool:  # some customers' cars are fixed and they come back later with a new wait
            if rng.random() < 0.05:
                start[k] = day - dt.timedelta(days=int(rng.integers(0, 5)))
            elif rng.random() < 0.05:  # a corrected export: the car came in earlier than recorded
                start[k] -= dt.timedelta(days=int(rng.integers(1, 20)))
    for s in stores.values():
        s.close()


RULES = [{"id": "A6.1", "min_days": 14}, {"id": "A6.2", "min_days": 21}, {"id": "A6.3", "min_days": 28}]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcde"), st.sampled_from(["A6.1", "A6.2", "A6.3", "A6.4"]),
                          st.sampled_from(["2026-11-23T01:00:00+00:00", "2026-11-22T01:00:00+00:00", ""])),
                min_size=1, max_size=25), st.randoms())
def test_alerts_are_listed_customer_by_customer_the_most_severe_first(alerts, rnd):
    """The order of the alert lists, against the rule written out plainly: each customer
    ranks by their most severe alert (then the earliest, then the lowest id), and a
    customer's alerts follow one another by the same key."""
    ids = list(range(1, len(alerts) + 1))
    rnd.shuffle(ids)
    f = pd.DataFrame({"customer_key": [a[0] for a in alerts], "rule_id": [a[1] for a in alerts],
                      "fired_at": [a[2] for a in alerts], "id": ids})
    key = [(daily_history.alert_severity(r, RULES), at, i) for (_, r, at), i in zip(alerts, ids, strict=True)]
    lead = {}
    for (c, _, _), k in zip(alerts, key, strict=True):
        lead[c] = min(lead.get(c, k), k)
    want = sorted(range(len(alerts)), key=lambda j: (lead[alerts[j][0]], key[j]))
    assert daily_history._severity_order(f, RULES).tolist() == want


@pytest.mark.parametrize("seed", [1, 2])
def test_the_morning_run_reuses_the_join_scoring_made_with_the_previous_run(tmp_path, monkeypatch, seed):
    """Scoring joins today's customers with the previous run (A4.4); the morning run reuses
    that join for the changes, deadlines and alerts.  Over random days — customers coming,
    leaving, rows reordered, notes changing, a day scored again — every change, deadline and
    alert must equal what joining afresh gives — also after a manual override."""
    rng = np.random.default_rng(seed)
    pool = [f"K{i:03d}" for i in range(40)]
    start = {k: D0 - dt.timedelta(days=int(rng.integers(0, 30))) for k in pool}
    notes = ["", "催问进度", "要投诉", "找律师", "没有投诉"]
    stores = {"reused": Store.open(":memory:"), "fresh": Store.open(":memory:")}
    reused = []
    real = shortage.ShortageResult.positions_in_previous

    def spy(self, ident):
        out = real(self, ident)
        reused.append(out is not None)
        return out

    day = D0
    for step in range(6):
        listed = [k for k in pool if rng.random() < 0.75]
        rng.shuffle(listed)
        rows = [[k, f"客户{k}", f"139{k[1:]:0>8}", start[k].isoformat(), "通勤", int(rng.integers(0, 6)),
                 notes[int(rng.integers(0, len(notes)))]] for k in listed]
        path = write(tmp_path / f"d{step}.csv", rows)
        export = read_export(path, shortage.load_model("rite").columns)  # read once, scored for each store
        out = {}
        for name, store in stores.items():
            monkeypatch.setattr(shortage.ShortageResult, "positions_in_previous",
                                spy if name == "reused" else (lambda self, ident: None))
            _, rec = run_day(store, path, day, export=export)
            out[name] = rec
        assert out["reused"]["changes"] == out["fresh"]["changes"], step
        assert out["reused"]["alerts_fired"] == out["fresh"]["alerts_fired"], step
        for k in ("alerts_closed", "alerts_fired"):
            assert out["reused"]["snapshot"][k] == out["fresh"]["snapshot"][k]
        if step == 2:  # a manual override re-sorts the next run's rows after scoring
            for store in stores.values():
                daily_actions.set_override(store, listed[-1], "P0", reason="区域经理要求", by="王经理", now=at(day, 17))
        a, b = (s.snapshot_rows(s.latest_snapshot(daily_values.KIND).id, fields=["first_seen", "first_due"])
                for s in stores.values())
        pd.testing.assert_frame_equal(a, b)
        if step != 2:
            day += dt.timedelta(days=1)
    assert any(reused)  # the join really was reused on the days after the first
    for s in stores.values():
        s.close()


def test_a_previous_frame_reordered_by_the_caller_is_joined_afresh(tmp_path):
    """A library caller may hand scoring the previous run's rows in another order (or a
    filtered copy): the morning run then must not reuse scoring's positions for its own
    rows of that run — who left, deadlines and alerts come from a fresh join."""
    rows = [[k, f"客户{k}", f"139{k[1:]:0>8}", (D0 - dt.timedelta(days=20)).isoformat(), "通勤", 1, ""]
            for k in ("K001", "K002", "K003")]
    store = Store.open(":memory:")
    run_day(store, write(tmp_path / "a.csv", rows), D1)
    model = shortage.load_model("rite")
    export = read_export(write(tmp_path / "b.csv", [rows[0], rows[1], ["K004", *rows[2][1:]]]), model.columns)
    prev, week = daily_history.previous_frames(store, model, D2)
    shuffled = prev.sort_values("key", ascending=False)
    result = shortage.score(export.frame, model, D2, at(D2), previous=shuffled, week_ago=week)
    assert result.previous_positions is not None
    rec = daily_history.record_run(store, result, shortage.crisis_level(result), source_name="b.csv", source_hash="h")
    assert [x["customer_id"] for x in rec["changes"]["resolved"]] == ["K003"]
    assert [x["customer_id"] for x in rec["changes"]["new"]] == ["K004"]
    assert rec["snapshot"]["alerts_closed"] == len(store.alerts_list(daily_values.KIND, statuses=("resolved",)))
    closed = store.alerts_list(daily_values.KIND, statuses=("resolved",))["customer_key"].unique().tolist()
    assert closed == ["K003"]
    store.close()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.integers(-5, 9)), st.one_of(st.none(), st.sampled_from(["P0", "P1"])),
                          st.one_of(st.none(), st.text(max_size=3)), st.booleans()), max_size=12), st.randoms())
def test_records_of_some_rows_equal_the_rows_one_by_one(rows, rnd):
    """The change and alert lists take a few rows of a wide frame column by column: the
    same plain values (missing → None) as the rows taken first and written out one by one,
    for the column types a snapshot holds."""
    f = pd.DataFrame({"i": pd.array([r[0] for r in rows], dtype="Int64"),
                      "c": pd.Categorical([r[1] for r in rows], categories=["P0", "P1"]),
                      "s": pd.Series([r[2] for r in rows], dtype="str"), "o": pd.Series([r[2] for r in rows], dtype=object),
                      "t": pd.to_datetime([None if r[0] is None else f"2026-11-2{abs(r[0])}T09:00:00+08:00"
                                           for r in rows]),
                      "f": [np.nan if r[0] is None else r[0] / 2 for r in rows], "b": [r[3] for r in rows]})
    pos = np.array(rnd.sample(range(len(rows)), rnd.randint(0, len(rows))), dtype=np.int64)
    mask = np.array([r[3] for r in rows], dtype=bool)
    cols = ["i", "c", "s", "o", "t", "f", "b", "missing"]
    for take, part in ((pos, f.iloc[pos]), (mask, f[mask])):
        plain = [{"I" if k == "i" else k: None if k == "missing" or pd.isna(r[k]) else r[k] for k in cols}
                 for r in part.reindex(columns=cols).astype(object).to_dict("records")]
        assert daily_values._records(f, cols, {"i": "I"}, rows=take) == plain
