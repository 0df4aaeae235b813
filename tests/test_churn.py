"""Churn-risk graded response (SPEC B): calibration, owners, plans, loop, ROI, errors."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierctl.churn import (
    ChurnModel,
    add_months,
    benchmark_status,
    evaluate_kpis,
    followup_dates,
    intervention_effect,
    load_churn_model,
    percent,
    roi_report,
    rows_per_level,
    score_churn,
    wan,
    win_back_flags,
    won_back,
)
from tierctl.errors import InputError, ModelError, UsageError
from tierctl.models.loader import PACKAGED_DIR

AS_OF = date(2026, 11, 23)
CST = timezone(timedelta(hours=8))
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=CST)


@pytest.fixture(scope="module")
def model() -> ChurnModel:
    return load_churn_model()


def ago(days: int) -> pd.Timestamp:
    return pd.Timestamp(AS_OF - timedelta(days=days))


def frame(*rows: dict) -> pd.DataFrame:
    """Customers as the shared ingest would hand them over (typed, with _row)."""
    df = pd.DataFrame(list(rows))
    if "customer_id" not in df.columns:
        df["customer_id"] = [f"C{i:03d}" for i in range(len(df))]
    df["customer_id"] = df["customer_id"].astype("string")
    if "_row" not in df.columns:
        df["_row"] = np.arange(len(df)) + 2
    return df


def score(model: ChurnModel, *rows: dict, as_of: date = AS_OF, now: datetime = NOW):
    return score_churn(frame(*rows), model, as_of, now)


def one(model: ChurnModel, **row) -> dict:
    return score(model, row).customers.iloc[0].to_dict()


# ------------------------------------------------------------------------------------
# Calibration: the seed's four cases land in its tiers
# ------------------------------------------------------------------------------------
CASE_A = {"customer_id": "A", "last_visit": ago(120), "usual_interval_days": 90.0}
CASE_B = {"customer_id": "B", "satisfaction": 7.0, "prev_satisfaction": 9.0, "notes": "评价里说等待时间长，有点抱怨"}
CASE_C = {"customer_id": "C", "avg_ticket": 800.0, "prev_avg_ticket": 2500.0, "no_shows": 3, "satisfaction": 6.0}
CASE_D = {"customer_id": "D", "notes": "保养后出现故障，投诉处理不满意，电话不接", "open_complaint": True,
          "last_visit": ago(185), "calls_unanswered": 3}


def test_calibration_a_overdue_is_mid(model):
    r = one(model, **CASE_A)
    assert (r["risk_score"], r["level"]) == (45, "中")
    assert r["reasons"] == ["距上次到店 120 天 ≥ 平时间隔 90 天 × 1.25: +45"]


def test_calibration_b_rating_drop_and_waiting_complaint_is_mid(model):
    r = one(model, **CASE_B)
    assert (r["risk_score"], r["level"]) == (45, "中")
    assert "满意度从 9 降到 7（降 2 ≥ 2）: +25" in r["reasons"]
    assert any(x.startswith("备注提到「") and x.endswith(": +20") for x in r["reasons"])


def test_calibration_c_ticket_collapse_no_shows_is_high_68(model):
    r = one(model, **CASE_C)
    assert (r["risk_score"], r["level"]) == (68, "高")
    assert "客单价从 2500 元降到 800 元（降 68% ≥ 50%）: +25" in r["reasons"]
    assert "连续爽约 3 次 ≥ 3 次: +25" in r["reasons"]
    assert "最近满意度 6 ≤ 6: +18" in r["reasons"]


def test_calibration_d_incident_is_extreme_85(model):
    r = one(model, **CASE_D)
    assert (r["risk_score"], r["level"]) == (85, "极高")
    assert "距上次到店 185 天 ≥ 180 天: +25" in r["reasons"]
    assert "未接电话 3 次 ≥ 3 次: +15" in r["reasons"]
    assert "有未解决的投诉: +20" in r["reasons"]
    # the complaint words and the open-complaint flag are one group: counted once
    assert sum(int(x.rsplit("+", 1)[1]) for x in r["reasons"]) == 85


def test_calibration_d_with_usual_interval_stays_extreme_and_caps_at_100(model):
    r = one(model, **CASE_D, usual_interval_days=90.0)
    assert (r["risk_score"], r["level"]) == (100, "极高")


def test_no_signal_is_low(model):
    r = one(model, customer_id="Z", last_visit=ago(20), usual_interval_days=90.0, satisfaction=9.0,
            prev_satisfaction=9.0, notes="很满意，没有投诉，不比价")
    assert (r["risk_score"], r["level"], r["reasons"]) == (0, "低", [])
    assert r["owner"] == "系统自动" and r["respond_by"] is None and r["followups"] == []


# ------------------------------------------------------------------------------------
# Signals: exact thresholds, negation, missing columns
# ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("prev", "cur", "points"), [
    (2000.0, 1000.0, 25),     # exactly 50 % is the 50 % band
    (2000.0, 1000.01, 15),    # a cent less than half: the 30 % band
    (1000.0, 700.0, 15),      # exactly 30 %
    (1000.0, 700.01, 0),
    (0.0, 0.0, 0),            # no history: nothing to compare
])
def test_ticket_drop_bands_are_exact(model, prev, cur, points):
    r = one(model, avg_ticket=cur, prev_avg_ticket=prev)
    assert r["risk_score"] == points


@pytest.mark.parametrize(("days", "interval", "points"), [
    (150, 120.0, 45),   # 150 = 1.25 × 120 exactly, 30 days late
    (149, 120.0, 0),
    (50, 40.0, 0),      # 1.25 × but only 10 days late: not yet a signal
    (120, 60.0, 50),    # twice the usual interval
    (240, 120.0, 75),   # twice, and 180+ days away as well
])
def test_overdue_boundaries(model, days, interval, points):
    r = one(model, last_visit=ago(days), usual_interval_days=interval)
    assert r["risk_score"] == points


def test_visit_after_as_of_is_never_negative(model):
    r = one(model, last_visit=pd.Timestamp(AS_OF + timedelta(days=3)), usual_interval_days=90.0)
    assert r["risk_score"] == 0


@pytest.mark.parametrize(("notes", "fires"), [
    ("他说在别家比价了", True),
    ("没有比价", False),
    ("客户准备去4S店保养", True),
])
def test_competitor_keywords_respect_negation(model, notes, fires):
    r = one(model, notes=notes)
    assert (r["risk_score"] == 20) is fires


def test_negated_complaint_does_not_fire(model):
    assert one(model, notes="没有投诉，无不满")["risk_score"] == 0


def test_missing_columns_are_reported_not_fatal(model):
    res = score(model, {"customer_id": "X", "no_shows": 2})
    assert res.customers.iloc[0]["risk_score"] == 20
    joined = " ".join(res.unavailable_signals)
    assert "满意度下降" in joined and "上次满意度" in joined


def test_sum_is_capped(model):
    r = one(model, **CASE_D, satisfaction=3.0, prev_satisfaction=9.0, no_shows=4)
    assert r["risk_score"] == 100


# ------------------------------------------------------------------------------------
# Given risk score
# ------------------------------------------------------------------------------------
def test_given_risk_score_is_used_as_is(model):
    res = score(model, {"customer_id": "G", "risk_score": 72.0, **{k: v for k, v in CASE_A.items() if k != "customer_id"}},
                {"customer_id": "H", "risk_score": None, "last_visit": ago(120), "usual_interval_days": 90.0})
    g, h = res.customers.iloc[0], res.customers.iloc[1]
    assert (g["risk_score"], g["level"], g["score_source"]) == (72, "高", "given")
    assert g["reasons"] == ["流失风险分 72：取自导出表"]
    assert (h["risk_score"], h["score_source"]) == (45, "signals")


@pytest.mark.parametrize(("value", "level"), [(0.0, "低"), (40.0, "低"), (40.5, "中"), (41.0, "中"),
                                              (60.0, "中"), (61.0, "高"), (75.0, "高"), (76.0, "极高"),
                                              (100.0, "极高")])
def test_level_bands(model, value, level):
    assert one(model, risk_score=value)["level"] == level


def test_out_of_range_risk_score_names_row_and_column(model):
    df = frame({"customer_id": "1", "risk_score": 50.0, "_row": 5},
               {"customer_id": "2", "risk_score": 101.0, "_row": 6},
               {"customer_id": "3", "risk_score": -1.0, "_row": 9})
    with pytest.raises(InputError) as ei:
        score_churn(df, model, AS_OF, NOW)
    err = ei.value
    assert [(p.row, p.column, p.value) for p in err.problems] == [(6, "流失风险分", 101.0), (9, "流失风险分", -1.0)]
    assert "第 6 行" in str(err) and "流失风险分" in str(err) and "0–100" in str(err)


def test_error_uses_the_files_own_header_when_ingest_records_it(model):
    df = frame({"customer_id": "1", "risk_score": "很高", "_row": 3})
    df.attrs["headers"] = {"risk_score": "风险评分"}
    with pytest.raises(InputError) as ei:
        score_churn(df, model, AS_OF, NOW)
    assert ei.value.problems[0].column == "风险评分"
    assert ei.value.problems[0].row == 3


def test_satisfaction_out_of_range_is_an_input_error(model):
    with pytest.raises(InputError, match="满意度"):
        score(model, {"satisfaction": 11.0})


def test_duplicate_ids_are_reported_not_merged(model):
    df = frame({"customer_id": "007", "_row": 2}, {"customer_id": "008", "_row": 3}, {"customer_id": "007", "_row": 4})
    with pytest.raises(InputError) as ei:
        score_churn(df, model, AS_OF, NOW)
    assert [(p.row, p.value) for p in ei.value.problems] == [(4, "007")]
    assert "第 2 行" in ei.value.problems[0].message


def test_customer_ids_stay_text(model):
    res = score(model, {"customer_id": "00123"})
    assert res.to_json()["customers"][0]["customer_id"] == "00123"


# ------------------------------------------------------------------------------------
# Owner: value × risk matrix
# ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("spend", "risk", "owner"), [
    (9000.0, 50.0, "店长"),            # high value & mid → store manager
    (9000.0, 70.0, "区域经理"),         # high value & high → regional manager
    (3000.0, 70.0, "店长"),            # ordinary & high → store manager
    (3000.0, 90.0, "区域经理+店长"),     # ordinary & extreme → both
    (9000.0, 90.0, "区域经理+店长"),     # never lowered below the level's owner
    (3000.0, 50.0, "SA"),
    (8000.0, 50.0, "SA"),              # 8000 is not "> 8000"
    (8000.01, 50.0, "店长"),
    (None, 70.0, "店长"),              # unknown spend: ordinary
    (20000.0, 10.0, "系统自动"),
])
def test_owner_matrix(model, spend, risk, owner):
    assert one(model, risk_score=risk, annual_spend=spend)["owner"] == owner


def test_deadlines_per_level(model):
    res = score(model, *({"customer_id": str(i), "risk_score": s} for i, s in enumerate([10.0, 50.0, 70.0, 90.0])))
    rb = res.customers["respond_by"].tolist()
    assert rb == [None, NOW + timedelta(days=3), NOW + timedelta(hours=24), NOW + timedelta(hours=4)]
    assert res.customers["budget_min"].tolist() == [0, 50, 200, 800]
    assert res.customers["budget_max"].tolist() == [50, 200, 800, 3000]


def test_day_deadline_can_count_official_working_days(model):
    wd = dataclasses.replace(model, count_working_days=True)
    now = datetime(2026, 9, 30, 9, 0, tzinfo=CST)
    r = score_churn(frame({"risk_score": 50.0}), wd, date(2026, 9, 30), now).customers.iloc[0]
    # 国庆 1–7 Oct are off; Sat 10 Oct is a make-up working day (调休)
    assert r["respond_by"] == datetime(2026, 10, 10, 9, 0, tzinfo=CST)


# ------------------------------------------------------------------------------------
# Plans: by reason, by type for mid-risk, never one coupon for everybody
# ------------------------------------------------------------------------------------
def test_plan_by_churn_reason(model):
    res = score(model, *({"customer_id": str(i), "risk_score": 70.0, "churn_reason": reason}
                         for i, reason in enumerate(["价格", "不便", "服务", "技术"])))
    plans = res.customers["plan"].tolist()
    assert "9折" in plans[0] and "取送车" in plans[1] and "店长专属" in plans[2] and "技师总监" in plans[3]
    assert len(set(plans)) == 4
    assert all(p.startswith("店长当天亲自致电") for p in plans)
    assert res.customers["churn_reasons"].tolist() == [["price"], ["inconvenience"], ["service"], ["technical"]]


def test_mid_risk_incentive_by_customer_type(model):
    types = ["价格敏感", "远距离", "时间敏感", "品质客户"]
    res = score(model, *({"customer_id": str(i), "risk_score": 50.0, "customer_type": t, "churn_reason": "价格"}
                         for i, t in enumerate(types)))
    plans = res.customers["plan"].tolist()
    assert "保养套餐8折（约200元）" in plans[0]
    assert "免费取送车3次（约150元）" in plans[1]
    assert "预约快速通道" in plans[2]
    assert "专属技师" in plans[3]
    assert len(set(plans)) == 4


def test_mid_without_type_falls_back_to_reason_then_to_asking(model):
    res = score(model, {"customer_id": "1", "risk_score": 50.0, "churn_reason": "不便"},
                {"customer_id": "2", "risk_score": 50.0})
    p1, p2 = res.customers["plan"].tolist()
    assert "免费上门取送车" in p1
    assert "先电话问清流失原因" in p2


def test_reason_inferred_from_notes_with_negation(model):
    res = score(model, {"customer_id": "1", "risk_score": 70.0, "notes": "觉得太贵了"},
                {"customer_id": "2", "risk_score": 70.0, "notes": "价格不贵，就是车有异响没修好"})
    a, b = res.customers.iloc[0], res.customers.iloc[1]
    assert a["churn_reasons"] == ["price"] and "备注推断" in a["plan_basis"]
    assert b["churn_reasons"] == ["technical"]


def test_unrecognised_reason_is_a_warning(model):
    res = score(model, {"customer_id": "1", "risk_score": 70.0, "churn_reason": "搬家了", "_row": 7})
    assert any("第7行「搬家了」" in w for w in res.warnings)


def test_low_level_gets_upkeep_not_a_win_back_plan(model):
    r = one(model, risk_score=10.0, churn_reason="价格")
    assert r["plan"].startswith("系统自动维护") and "9折" not in r["plan"]


# ------------------------------------------------------------------------------------
# Triage order and JSON
# ------------------------------------------------------------------------------------
def test_high_value_high_risk_comes_first(model):
    res = score(model, {"customer_id": "low-value-extreme", "risk_score": 95.0, "annual_spend": 2000.0},
                {"customer_id": "high-value-high", "risk_score": 62.0, "annual_spend": 12000.0},
                {"customer_id": "mid", "risk_score": 55.0, "annual_spend": 30000.0})
    order = [c["customer_id"] for c in res.to_json()["customers"]]
    assert order == ["high-value-high", "low-value-extreme", "mid"]


def test_json_is_plain_and_complete(model):
    res = score(model, CASE_A, CASE_B, CASE_C, CASE_D)
    doc = res.to_json()
    assert json.loads(json.dumps(doc, ensure_ascii=False)) == doc
    assert doc["as_of"] == "2026-11-23" and doc["model"] == "churn"
    assert all(isinstance(x, str) for c in doc["customers"] for x in c["reasons"])
    c = doc["customers"][0]
    assert {"customer_id", "risk_score", "level", "owner", "respond_by", "plan", "reasons"} <= set(c)
    assert c["customer_id"] == "D" and c["respond_by"] == "2026-11-23T13:00:00+08:00"
    assert c["followups"] == ["2026-11-30", "2026-12-07", "2026-12-23", "2027-01-22", "2027-02-21"]


@settings(max_examples=25, deadline=None)
@given(st.randoms(use_true_random=False))
def test_row_order_never_changes_a_result(model, rnd):
    rows = [CASE_A, CASE_B, CASE_C, CASE_D,
            {"customer_id": "E", "risk_score": 45.0, "annual_spend": 9000.0},
            {"customer_id": "F", "risk_score": 45.0, "annual_spend": 9000.0}]
    base = score(model, *rows).to_json()
    shuffled = rows[:]
    rnd.shuffle(shuffled)
    assert score(model, *shuffled).to_json() == base


@settings(max_examples=60, deadline=None)
@given(no_shows=st.integers(0, 10), calls=st.integers(0, 10), sat=st.integers(0, 10),
       drop=st.integers(0, 10), more=st.integers(1, 5))
def test_more_evidence_never_lowers_the_score(model, no_shows, calls, sat, drop, more):
    prev = min(10, sat + drop)
    base = one(model, no_shows=no_shows, calls_unanswered=calls, satisfaction=float(sat),
               prev_satisfaction=float(prev))["risk_score"]
    worse = one(model, no_shows=no_shows + more, calls_unanswered=calls + more,
                satisfaction=float(max(0, sat - more)), prev_satisfaction=float(prev))["risk_score"]
    assert worse >= base


def test_any_index_and_passthrough_columns(model):
    df = frame(CASE_C, CASE_A)
    df.index = [40, 10]
    res = score_churn(df, model, AS_OF, NOW).customers
    assert res["customer_id"].tolist() == ["C", "A"] and res["risk_score"].tolist() == [68, 45]
    assert res["avg_ticket"].tolist()[0] == 800.0 and pd.isna(res["avg_ticket"].tolist()[1])


def test_empty_export(model):
    res = score_churn(frame({"customer_id": "x"}).iloc[0:0], model, AS_OF, NOW)
    assert res.to_json()["customers"] == []


# ------------------------------------------------------------------------------------
# Closed loop
# ------------------------------------------------------------------------------------
def test_followup_dates(model):
    d = date(2026, 11, 23)
    assert followup_dates("mid", d, model) == [date(2026, 12, 23)]
    assert followup_dates("high", d, model) == [date(2026, 11, 30), date(2026, 12, 23)]
    assert followup_dates("极高", d, model) == [d + timedelta(days=n) for n in (7, 14, 30, 60, 90)]
    assert followup_dates("低", d, model) == []
    with pytest.raises(UsageError):
        followup_dates("urgent", d, model)


def test_followups_in_the_result_count_from_as_of(model):
    r = one(model, risk_score=70.0)
    assert r["followups"] == [AS_OF + timedelta(days=7), AS_OF + timedelta(days=30)]


def test_intervention_effect(model):
    d0 = date(2026, 1, 1)
    # the seed's example: 68 before, 42 thirty days later
    assert intervention_effect((d0, 68), [(d0 + timedelta(days=30), 42)])
    assert not intervention_effect((d0, 68), [(d0 + timedelta(days=31), 42)])
    assert not intervention_effect((d0, 68), [(d0 + timedelta(days=10), 49)])   # 19 points
    assert intervention_effect((d0, 68), [(d0 + timedelta(days=10), 48)])       # exactly 20
    assert not intervention_effect((d0, 68), [(d0, 30)])                        # same day is "before"
    assert intervention_effect(68, [(d0 + timedelta(days=5), 70), (d0 + timedelta(days=20), 40)],
                               intervention_date=d0)
    assert intervention_effect(68, [(d0 + timedelta(days=40), 40)], intervention_date=d0,
                               within_days=model.effect_within_days + 15, drop=model.effect_drop)
    with pytest.raises(ValueError):
        intervention_effect(68, [])


def test_won_back_within_six_months():
    d0 = date(2026, 8, 31)
    assert add_months(d0, 6) == date(2027, 2, 28)
    assert won_back(d0, [date(2027, 2, 28)])
    assert not won_back(d0, [date(2027, 3, 1)])
    assert not won_back(d0, [d0])                                   # the intervention visit itself
    assert not won_back(d0, [(date(2026, 10, 1), -300.0)])         # a refund is not spending
    assert won_back(d0, [(date(2026, 10, 1), 880.0)])
    assert won_back(d0, [], as_of=date(2026, 12, 1)) is None       # window still open
    assert won_back(d0, [], as_of=date(2027, 3, 1)) is False


def test_win_back_flags_match_the_scalar_rule():
    iv = pd.DataFrame({"customer_id": ["a", "b", "c", "d"],
                       "intervention_date": pd.to_datetime(["2026-01-10", "2026-01-10", "2026-06-01", "2026-01-10"])})
    tx = pd.DataFrame({"customer_id": ["a", "b", "b", "c", "d"],
                       "date": pd.to_datetime(["2026-03-01", "2026-01-10", "2026-08-01", "2026-06-15", "2026-02-01"]),
                       "amount": [500.0, 300.0, 400.0, 200.0, -50.0]})
    got = win_back_flags(iv, tx, 6, as_of=date(2026, 9, 1))
    assert got.tolist() == [True, False, True, False]
    got_open = win_back_flags(iv.iloc[[3]].reset_index(drop=True), tx, 6, as_of=date(2026, 5, 1))
    assert got_open.isna().tolist() == [True]


@settings(max_examples=80, deadline=None)
@given(start=st.dates(date(2025, 1, 1), date(2027, 12, 31)),
       offsets=st.lists(st.tuples(st.integers(-30, 250), st.sampled_from([-100.0, 0.0, 350.0])), max_size=5),
       as_of_offset=st.integers(0, 300))
def test_win_back_flags_agree_with_won_back(start, offsets, as_of_offset):
    spending = [(start + timedelta(days=d), a) for d, a in offsets]
    as_of = start + timedelta(days=as_of_offset)
    iv = pd.DataFrame({"customer_id": ["x"], "intervention_date": [pd.Timestamp(start)]})
    tx = pd.DataFrame({"customer_id": ["x"] * len(spending), "date": [pd.Timestamp(d) for d, _ in spending],
                       "amount": [a for _, a in spending]})
    flag = win_back_flags(iv, tx, 6, as_of=as_of).iloc[0]
    expected = won_back(start, spending, 6, as_of=as_of)
    assert (None if pd.isna(flag) else bool(flag)) == expected


SEED = {"中": {"customers": 850, "intervened": 850, "won_back": 562, "cost": 128000},
        "高": {"customers": 320, "intervened": 320, "won_back": 150, "cost": 256000},
        "极高": {"customers": 180, "intervened": 180, "won_back": 54, "cost": 1080000}}


def test_seed_roi_table_exact(model):
    rep = roi_report(SEED, model)
    assert [(r.level_key, r.intervened, r.won_back, r.cost) for r in rep.levels] == [
        ("mid", 850, 562, 128000), ("high", 320, 150, 256000), ("extreme", 180, 54, 1080000)]
    assert (rep.intervened, rep.won_back, rep.cost) == (1350, 766, Decimal(1464000))
    assert rep.revenue == 3830000
    assert rep.roi == Decimal(3830000 - 1464000) / Decimal(1464000)
    assert rep.expected_churn == 810 and rep.expected_loss == 4050000
    assert rep.actual_churn == 584 and rep.churn_avoided == 226 and rep.saved == 1130000
    assert [r.benchmark_status for r in rep.levels] == ["within", "within", "within"]


def test_seed_roi_table_as_printed(model):
    rep = roi_report(SEED, model)
    assert [percent(r.rate) for r in rep.levels] == ["66%", "47%", "30%"]
    assert [wan(r.cost) for r in rep.levels] == ["12.8万", "25.6万", "108万"]
    assert (percent(rep.rate), wan(rep.cost), wan(rep.revenue), percent(rep.roi)) == ("57%", "146.4万", "383万", "162%")
    assert (wan(rep.expected_loss), wan(rep.saved)) == ("405万", "113万")
    text = "\n".join(rep.summary_lines())
    for printed in ("中风险：客户 850 人，干预 850 人，挽回 562 人，挽回率 66%，成本 12.8万",
                    "挽回收入：766 × 5000 = 383万元", "ROI = (383万 − 146.4万) ÷ 146.4万 = 162%",
                    "预计流失 810 人（60%流失率），损失收入 405万元",
                    "实际流失 584 人，减少流失 226 人，避免损失 113万元"):
        assert printed in text
    # the stricter view: only the churn avoided versus 60 % pays for the programme
    assert percent(rep.incremental_roi) == "-23%"


def test_seed_roi_from_per_intervention_records(model):
    recs = []
    for label, row in SEED.items():
        n, won, cost = row["intervened"], row["won_back"], row["cost"]
        recs.append(pd.DataFrame({"level": label, "won_back": [True] * won + [False] * (n - won),
                                  "cost": [Decimal(cost) / n] * n}))
    agg = rows_per_level(pd.concat(recs, ignore_index=True), model)
    rep = roi_report(agg, model)
    assert (rep.won_back, percent(rep.roi), wan(rep.cost)) == (766, "162%", "146.4万")


def test_roi_rejects_impossible_rows(model):
    with pytest.raises(InputError):
        roi_report({"mid": {"intervened": 10, "won_back": 11, "cost": 100}}, model)
    with pytest.raises(UsageError):
        roi_report({"urgent": {"intervened": 10, "won_back": 1, "cost": 100}}, model)


def test_benchmarks(model):
    assert benchmark_status("mid", Decimal("0.59"), model) == "below"
    assert benchmark_status("mid", Decimal("0.60"), model) == "within"
    assert benchmark_status("high", 0.5, model) == "within"
    assert benchmark_status("extreme", Decimal("0.36"), model) == "above"


def test_kpis_against_targets(model):
    res = {k.key: k for k in evaluate_kpis({"alert_response": (96, 100), "contact": Decimal("0.80"),
                                             "solved": 0.75, "win_back": (766, 1350)}, model)}
    assert res["alert_response"].met is True
    assert res["contact"].met is False          # targets are "more than": 80 % is not > 80 %
    assert res["solved"].met is True
    assert res["risk_reduced"].met is None and res["risk_reduced"].value is None
    assert res["win_back"].met is True and percent(res["win_back"].value) == "57%"
    with pytest.raises(UsageError):
        evaluate_kpis({"nps": 0.5}, model)


# ------------------------------------------------------------------------------------
# Model file errors name file and key
# ------------------------------------------------------------------------------------
PACKAGED = (PACKAGED_DIR / "churn.toml").read_text(encoding="utf-8")


def broken(tmp_path: Path, old: str, new: str) -> Path:
    assert old in PACKAGED, old
    p = tmp_path / "bad.toml"
    p.write_text(PACKAGED.replace(old, new, 1), encoding="utf-8")
    return p


@pytest.mark.parametrize(("old", "new", "key"), [
    ('type = "overdue"', 'type = "magic"', "signals[0].type"),
    ('bands = [{ at = 180, points = 25 }]', 'bands = []', "signals[1].bands"),
    ('reason = "距上次到店 {days} 天 ≥ {at} 天"', 'reason = "{weeks} 周"', "signals[1].reason"),
    ('column = "no_shows"', 'column = "no_show"', "signals[4].column"),
    ('min = 41', 'min = 42', "levels[1].min"),
    ('owner = "store_manager"\nrespond_hours = 24', 'owner = "ceo"\nrespond_hours = 24', "levels[2].owner"),
    ('budget = [50, 200]', 'budget = [200, 50]', "levels[1].budget"),
    ('base_churn_rate = "0.60"', 'base_churn_rate = "1.6"', "roi.base_churn_rate"),
    ('calendar = "lunar"', 'calendar = "gregorian"', "upkeep.festivals[0].calendar"),
    ('high_value_annual_spend = 8000', 'high_value_annual_spend = "很多"', "value.high_value_annual_spend"),
    ('kind = "churn"', 'kind = "rfm"', "kind"),
])
def test_bad_model_key_is_a_model_error(tmp_path, old, new, key):
    with pytest.raises(ModelError) as ei:
        load_churn_model(broken(tmp_path, old, new))
    assert ei.value.key == key
    assert "bad.toml" in str(ei.value)


def test_unknown_model_name():
    with pytest.raises(ModelError):
        load_churn_model("no-such-model")


# ------------------------------------------------------------------------------------
# Follow-up steps, outcomes and ingest columns are data too
# ------------------------------------------------------------------------------------
def test_followup_steps_carry_owner_channel_and_detail(model):
    steps = model.level("extreme").followups
    assert [s.days for s in steps] == [7, 14, 30, 60, 90]
    assert [s.owner for s in steps] == ["regional_manager", "store_manager", None, None, "regional_manager"]
    assert steps[1].channel == "登门拜访" and steps[0].detail


def test_outcomes(model):
    assert model.outcome("接通").key == "reached" and model.outcome("已解决").solved
    assert not model.outcome("未接通").reached and model.outcome("Refused").key == "refused"
    with pytest.raises(UsageError, match="已接通"):
        model.outcome("还行")


@pytest.mark.parametrize(("old", "new", "key"), [
    ('{ days = 7, owner = "store_manager"', '{ days = 7, owner = "boss"', "levels[2].followups[0].owner"),
    ('{ days = 14, owner = "store_manager"', '{ days = 3, owner = "store_manager"', "levels[3].followups"),
    ('aliases = ["拒绝", "明确拒绝", "refused"]', 'aliases = ["拒绝", "接通"]', "outcomes[3].aliases"),
    ('key = "solved"\nlabel = "已解决"\naliases = ["问题已解决", "解决", "已挽回", "solved"]\nreached = true',
     'key = "solved"\nlabel = "已解决"\naliases = ["问题已解决", "解决", "已挽回", "solved"]\nreached = false',
     "outcomes[0].solved"),
])
def test_bad_followups_and_outcomes_are_model_errors(tmp_path, old, new, key):
    with pytest.raises(ModelError) as ei:
        load_churn_model(broken(tmp_path, old, new))
    assert ei.value.key == key


def test_scoring_through_the_shared_ingest(model, tmp_path):
    from tierctl.io.ingest import read_export

    p = tmp_path / "export.csv"
    pd.DataFrame({"客户编号": ["007", "008"], "上次到店日期": ["2026年7月26日", "2026/11/01"],
                  "平均回厂间隔": ["90", "90"], "满意度": [11, 8]}).to_csv(p, index=False, encoding="gbk")
    ex = read_export(p, model.ingest_columns)
    with pytest.raises(InputError) as ei:
        score_churn(ex.frame, model, AS_OF, NOW, headers=ex.headers, path=ex.path)
    msg = str(ei.value)
    assert "export.csv" in msg and "第 2 行" in msg and "满意度" in msg
    ok = ex.frame.assign(satisfaction=pd.array([8.0, 8.0], dtype="Float64"))
    res = score_churn(ok, model, AS_OF, NOW, headers=ex.headers).customers
    assert res["customer_id"].tolist() == ["007", "008"] and res["level"].tolist() == ["中", "低"]
