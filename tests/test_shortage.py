"""Job A scoring: the manual's worked examples, every band edge, every derivation and
escalation rule, and properties that must hold for any input."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from conftest import AS_OF, NOW, score_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tierctl.errors import InputError, ModelError
from tierctl.shortage import customer_key, escalate, load_model, score, tier_for


def by_name(result):
    return {r["name"]: r for r in result.records()}


# -- SPEC A1 worked examples (the formula is authoritative, not the seed's printed totals)
SEED_A1 = [
    # name, R, I, wait days, E, total, model tier, final tier
    ("张先生", 8, 10, 24, 8, 8.60, "P0", "P0"),
    ("王女士", 1, 8, 16, 4, 4.55, "P2", "P2"),
    ("李先生", 3, 3, 29, 6, 4.85, "P2", "P1"),
    ("赵先生", 1, 3, 10, 2, 2.15, "P3", "P3"),
]


def test_seed_examples_rite(rite, tmp_path):
    rows = [{"客户姓名": n, "R": r, "I": i, "等待天数": d, "E": e} for n, r, i, d, e, *_ in SEED_A1]
    res = by_name(score_rows(rows, rite, tmp_path))
    for name, *_dims, total, model_tier, final in SEED_A1:
        got = res[name]
        assert got["score"] == total, name
        assert got["model_tier"] == model_tier, name
        assert got["tier"] == final, name
    assert res["李先生"]["dims"]["T"] == 10
    fired = " ".join(res["李先生"]["escalations"])
    assert "A4.2" in fired and "A4.3" in fired


def test_eight_eights_is_exactly_p0(rite, tmp_path):
    res = score_rows([{"客户姓名": "x", "R": 8, "I": 8, "等待天数": 22, "E": 8}], rite, tmp_path)
    rec = res.records()[0]
    assert res.customers["total_scaled"].iat[0] == 800  # exact, not 799.999…
    assert rec["score"] == 8.0 and rec["model_tier"] == "P0"
    assert 8 * 0.35 + 8 * 0.30 + 8 * 0.20 + 8 * 0.15 < 8.0  # the float trap we avoid


SEED_A2 = [("张三", 30, 25, 26, 20, 95, "P0"), ("李四", 20, 15, 18, 15, 65, "P1"), ("王五", 10, 10, 12, 10, 40, "P2")]


def test_seed_examples_rite100(rite100, tmp_path):
    rows = [{"客户姓名": n, "R": r, "I": i, "等待天数": d, "E": e} for n, r, i, d, e, *_ in SEED_A2]
    res = by_name(score_rows(rows, rite100, tmp_path))
    for name, *_rest, total, tier in SEED_A2:
        assert res[name]["score"] == total
        assert res[name]["model_tier"] == tier
    # T derived from days in rite100: 26 d → 20, 18 d → 15, 12 d → 10
    assert [res[n]["dims"]["T"] for n in ("张三", "李四", "王五")] == [20, 15, 10]


@pytest.mark.parametrize("total,tier", [("8.0", "P0"), ("7.99", "P1"), ("6.0", "P1"), ("5.99", "P2"),
                                        ("4.0", "P2"), ("3.99", "P3"), ("1.0", "P3")])
def test_tier_thresholds_rite(rite, total, tier):
    assert tier_for(Decimal(total), rite) == tier


@pytest.mark.parametrize("total,tier", [(80, "P0"), (79, "P1"), (60, "P1"), (59, "P2"), (40, "P2"), (39, "P3")])
def test_tier_thresholds_rite100(rite100, total, tier):
    assert tier_for(total, rite100) == tier


@pytest.mark.parametrize("days,t", [(0, 1), (6, 1), (7, 3), (13, 3), (14, 6), (20, 6), (21, 8), (27, 8), (28, 10), (90, 10)])
def test_t_band_edges(rite, tmp_path, days, t):
    res = score_rows([{"客户姓名": "x", "等待天数": days}], rite, tmp_path)
    assert res.records()[0]["dims"]["T"] == t


def test_wait_from_start_date_and_as_of(rite, tmp_path):
    rows = [{"客户姓名": "a", "登记日期": "2026年11月1日"}, {"客户姓名": "b", "登记日期": "2026/11/20"},
            {"客户姓名": "c", "登记日期": "46340"},  # Excel serial 46340 = 2026-11-14
            {"客户姓名": "d", "登记日期": "2026-12-01"}]
    res = by_name(score_rows(rows, rite, tmp_path))
    assert res["a"]["wait_days"] == 23
    assert res["b"]["wait_days"] == 4
    assert res["c"]["wait_days"] == 10
    assert res["d"]["wait_days"] == 0  # in the future: never negative
    later = by_name(score_rows(rows, rite, tmp_path, as_of=dt.date(2026, 11, 30)))
    assert later["a"]["wait_days"] == 29


# -- A3 derivations --------------------------------------------------------------------
@pytest.mark.parametrize("facts,r", [
    ({}, 1),
    ({"粉丝数": 120000}, 10), ({"粉丝数": 100000}, 10), ({"粉丝数": 99999}, 8), ({"粉丝数": 10000}, 8),
    ({"粉丝数": 9999}, 5), ({"粉丝数": 1000}, 5), ({"粉丝数": 999}, 1), ({"粉丝数": "1.2万"}, 8),
    ({"身份/职业": "汽车自媒体"}, 10), ({"身份/职业": "记者"}, 10), ({"身份/职业": "律师"}, 10),
    ({"身份/职业": "公司高管"}, 8), ({"身份/职业": "行业专家"}, 8), ({"身份/职业": "KOL"}, 8),
    ({"社媒活跃": "是"}, 5), ({"沟通记录": "说要去投诉"}, 3), ({"沟通记录": "没有投诉"}, 1),
    ({"身份/职业": "记者", "粉丝数": 500}, 10),  # the maximum that applies
])
def test_r_derivation(rite, tmp_path, facts, r):
    res = score_rows([{"客户姓名": "x", "等待天数": 3, **facts}], rite, tmp_path)
    rec = res.records()[0]
    assert rec["dims"]["R"] == r
    assert rec["reasons"][0].startswith(f"R={r}: ")


def test_red_list_forces_r10(rite, tmp_path):
    rows = [{"客户编号": "007", "客户姓名": "x", "手机号": "13800000000", "等待天数": 3},
            {"客户编号": "008", "客户姓名": "y", "手机号": "13900000000", "等待天数": 3}]
    res = by_name(score_rows(rows, rite, tmp_path, red_list={"007"}))
    assert res["x"]["dims"]["R"] == 10 and "红名单" in res["x"]["reasons"][0]
    assert res["y"]["dims"]["R"] == 1


@pytest.mark.parametrize("usage,i", [("网约车", 10), ("出租车司机", 10), ("营运车辆", 10), ("唯一用车", 8),
                                     ("每天通勤", 8), ("接送孩子", 8), ("主要用车", 6), ("有替代的车", 6),
                                     ("家里第二辆", 6), ("周末用", 3), ("休闲", 3), ("备用", 1), ("很少开", 1),
                                     ("网约车兼周末自驾", 10)])
def test_i_derivation(rite, tmp_path, usage, i):
    res = score_rows([{"客户姓名": "x", "等待天数": 3, "用车场景": usage}], rite, tmp_path)
    assert res.records()[0]["dims"]["I"] == i
    assert not res.warnings


@pytest.mark.parametrize("usage", ["", "不知道"])
def test_unknown_usage_defaults_and_warns(rite, tmp_path, usage):
    res = score_rows([{"客户姓名": "钱七", "等待天数": 3, "用车场景": usage}], rite, tmp_path)
    assert res.records()[0]["dims"]["I"] == 6
    assert any("钱七" in w and "用车" in w for w in res.warnings)


@pytest.mark.parametrize("notes,contacts,e", [
    ("要找律师", 0, 10), ("去法院起诉你们", 0, 10), ("打12315", 0, 10), ("要找媒体曝光", 0, 10),
    ("你们就是骗人", 0, 8), ("太敷衍了", 0, 8), ("不负责任", 0, 8), ("别忽悠我", 0, 1 + 1),
    ("", 7, 6), ("", 9, 6), ("", 6, 4), ("", 2, 4), ("", 1, 2), ("表示理解", 0, 1), ("不急", 0, 1),
    ("没关系", 0, 1), ("", 0, 2), ("不理解为什么这么慢", 0, 2), ("不是骗子吧", 0, 2),
    ("没有投诉的打算", 0, 2), ("表示理解", 8, 6),
])
def test_e_derivation(rite, tmp_path, notes, contacts, e):
    res = score_rows([{"客户姓名": "x", "等待天数": 3, "沟通记录": notes, "近7天联系次数": contacts}], rite, tmp_path)
    assert res.records()[0]["dims"]["E"] == e


def test_mood_column(rite, tmp_path):
    rows = [{"客户姓名": m, "等待天数": 3, "客户情绪": m} for m in ("愤怒", "不满", "焦虑", "平和", "信任")]
    res = by_name(score_rows(rows, rite, tmp_path))
    assert [res[m]["dims"]["E"] for m in ("愤怒", "不满", "焦虑", "平和", "信任")] == [10, 8, 6, 2, 1]


def test_every_derived_score_has_a_reason(rite, tmp_path):
    res = score_rows([{"客户姓名": "x", "粉丝数": 120000, "等待天数": 24, "用车场景": "网约车",
                       "沟通记录": "说我们骗人"}], rite, tmp_path)
    reasons = res.records()[0]["reasons"]
    assert reasons[:4] == ["R=10: 粉丝 120000 ≥ 100000", "I=10: 用车场景含「网约车」（营运车辆）",
                           "T=8: 等待 24 天 ≥ 21 天", "E=8: 沟通记录提到「骗」（质疑诚信）"]


# -- given dimension columns --------------------------------------------------------------
def test_given_dimension_out_of_range_names_row_and_column(rite, tmp_path):
    rows = [{"客户姓名": "a", "舆情风险": 5, "等待天数": 3}, {"客户姓名": "b", "舆情风险": 11, "等待天数": 3}]
    with pytest.raises(InputError) as ei:
        score_rows(rows, rite, tmp_path)
    msg = str(ei.value)
    assert "第 3 行" in msg and "舆情风险" in msg and "11" in msg and "1–10" in msg


def test_given_dimension_blank_cell_is_derived(rite, tmp_path):
    rows = [{"客户姓名": "a", "R": "", "粉丝数": 20000, "等待天数": 3}, {"客户姓名": "b", "R": 3, "等待天数": 3}]
    res = by_name(score_rows(rows, rite, tmp_path))
    assert res["a"]["dims"]["R"] == 8 and res["b"]["dims"]["R"] == 3
    assert "取自导出表" in res["b"]["reasons"][0]


# -- A4 escalation ------------------------------------------------------------------------
def test_a4_1_p3_over_14_days(rite, tmp_path):
    res = by_name(score_rows([{"客户姓名": "a", "等待天数": 14, "用车场景": "备用"},
                              {"客户姓名": "b", "等待天数": 15, "用车场景": "备用"}], rite, tmp_path))
    assert res["a"]["tier"] == "P3" and res["b"]["tier"] == "P2"
    assert res["b"]["model_tier"] == "P3" and "A4.1" in res["b"]["escalations"][0]


def test_a4_2_p2_over_21_and_a4_3_over_28(rite, tmp_path):
    rows = [{"客户姓名": "p2_21", "R": 1, "I": 10, "等待天数": 21, "E": 2},  # T=8: 1*.35+3+1.6+.3=5.25 P2
            {"客户姓名": "p2_22", "R": 1, "I": 10, "等待天数": 22, "E": 2},
            {"客户姓名": "p3_28", "R": 1, "I": 1, "等待天数": 28, "E": 1},
            {"客户姓名": "p3_29", "R": 1, "I": 1, "等待天数": 29, "E": 1}]
    res = by_name(score_rows(rows, rite, tmp_path))
    assert (res["p2_21"]["model_tier"], res["p2_21"]["tier"]) == ("P2", "P2")
    assert (res["p2_22"]["model_tier"], res["p2_22"]["tier"]) == ("P2", "P1")
    # P3 at 28 days: A4.1 makes it P2, then A4.2 (waited > 21 days, now P2) P1 — issue 14
    assert (res["p3_28"]["model_tier"], res["p3_28"]["tier"]) == ("P3", "P1")
    assert res["p3_29"]["tier"] == "P1"


def test_a4_4_new_keyword_without_and_with_history(rite, tmp_path):
    rows = [{"客户编号": "1", "客户姓名": "a", "等待天数": 3, "用车场景": "备用", "沟通记录": "说要投诉"},
            {"客户编号": "2", "客户姓名": "b", "等待天数": 3, "用车场景": "备用", "沟通记录": "没有投诉"}]
    res = by_name(score_rows(rows, rite, tmp_path))
    assert res["a"]["tier"] == "P2" and "A4.4" in res["a"]["escalations"][0]
    assert res["b"]["tier"] == "P3"
    prev = pd.DataFrame({"key": ["1"], "notes": ["上次就说要投诉"]})
    again = by_name(score_rows(rows, rite, tmp_path, previous=prev))
    assert again["a"]["tier"] == "P3"  # not new: no escalation


def test_a4_5_contact_spike(rite, tmp_path):
    rows = [{"客户编号": "1", "客户姓名": "a", "等待天数": 3, "用车场景": "备用", "近7天联系次数": 3, "上周联系次数": 1},
            {"客户编号": "2", "客户姓名": "b", "等待天数": 3, "用车场景": "备用", "近7天联系次数": 2, "上周联系次数": 1},
            {"客户编号": "3", "客户姓名": "c", "等待天数": 3, "用车场景": "备用", "近7天联系次数": 5}]
    res = by_name(score_rows(rows, rite, tmp_path))
    assert res["a"]["tier"] == "P2" and "A4.5" in res["a"]["escalations"][0]
    assert res["b"]["tier"] == "P3"
    assert res["c"]["tier"] == "P3"  # no previous week known
    week = pd.DataFrame({"key": ["3"], "contacts_7d": [1]})
    assert by_name(score_rows(rows, rite, tmp_path, week_ago=week))["c"]["tier"] == "P2"


def test_a4_6_negative_post_is_p0(rite, tmp_path):
    res = score_rows([{"客户姓名": "a", "等待天数": 1, "用车场景": "备用", "社媒负面": "是"}], rite, tmp_path)
    rec = res.records()[0]
    assert rec["model_tier"] == "P3" and rec["tier"] == "P0" and "A4.6" in rec["escalations"][-1]


# -- policy and alerts ------------------------------------------------------------------
def test_policy_owner_and_respond_by(rite, tmp_path):
    res = by_name(score_rows([{"客户姓名": "x", "R": 8, "I": 8, "等待天数": 22, "E": 8}], rite, tmp_path))
    x = res["x"]
    assert x["owner"].startswith("服务经理") and x["cadence_days"] == 3
    assert x["respond_by"] == (NOW + dt.timedelta(hours=2)).isoformat()
    assert "高端代步车" in x["compensation"]
    assert x["alerts"] == ["wait21→服务经理: 等待已满 21 天"]


def test_sort_most_urgent_first(rite, tmp_path):
    rows = [{"客户姓名": "low", "等待天数": 1, "用车场景": "备用"},
            {"客户姓名": "hi", "R": 10, "I": 10, "等待天数": 30, "E": 10},
            {"客户姓名": "mid", "R": 8, "I": 8, "等待天数": 10, "E": 4}]
    res = score_rows(rows, rite, tmp_path)
    assert list(res.customers["name"]) == ["hi", "mid", "low"]


# -- errors --------------------------------------------------------------------------------
def test_missing_wait_everywhere(rite, tmp_path):
    with pytest.raises(InputError) as ei:
        score_rows([{"客户姓名": "a", "等待天数": 3, "登记日期": ""}, {"客户姓名": "b", "等待天数": "", "登记日期": ""}],
                   rite, tmp_path)
    assert "第 3 行" in str(ei.value)


def test_model_file_errors_name_file_and_key(tmp_path):
    from tierctl.models.loader import PACKAGED_DIR

    text = (PACKAGED_DIR / "rite.toml").read_text(encoding="utf-8").replace('weight = "0.35"', 'weight = "0.45"')
    p = tmp_path / "bad.toml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ModelError) as ei:
        load_model(p)
    assert "bad.toml" in str(ei.value) and "权重之和" in str(ei.value)
    p.write_text(text.replace('weight = "0.45"', 'weight = "0.35"').replace('type = "band"', 'type = "bend"', 1),
                 encoding="utf-8")
    with pytest.raises(ModelError) as ei:
        load_model(p)
    assert "dimensions[0].rules[2].type" in str(ei.value) and "bend" in str(ei.value)


def test_user_model_copy_changes_weights(tmp_path):
    from tierctl.models.loader import PACKAGED_DIR

    text = (PACKAGED_DIR / "rite.toml").read_text(encoding="utf-8")
    text = text.replace('weight = "0.35"', 'weight = "0.25"').replace('weight = "0.20"', 'weight = "0.30"')
    p = tmp_path / "mine.toml"
    p.write_text(text, encoding="utf-8")
    m = load_model(p)
    res = score_rows([{"客户姓名": "x", "R": 8, "I": 10, "等待天数": 24, "E": 8}], m, tmp_path)
    assert res.records()[0]["score"] == 8.6 - 0.8 + 0.8  # 8*.25 + 10*.3 + 8*.3 + 8*.15 = 8.6


# -- properties ----------------------------------------------------------------------------
dims_st = st.tuples(st.integers(1, 10), st.integers(1, 10), st.integers(0, 60), st.integers(1, 10))


def _frame(rows):
    df = pd.DataFrame(rows, columns=["R", "I", "wait_days", "E"]).astype("Int64")
    df["customer_id"] = pd.Series([f"c{i}" for i in range(len(rows))], dtype="str")
    df["_row"] = np.arange(2, len(rows) + 2)
    return df


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base=dims_st, which=st.sampled_from(["R", "I", "E"]), bump=st.integers(1, 9))
def test_total_never_falls_when_a_dimension_rises(rite, base, which, bump):
    lo = _frame([base])
    hi = lo.copy()
    hi[which] = min(10, int(lo[which].iat[0]) + bump)
    a = score(lo, rite, AS_OF, NOW).customers
    b = score(hi, rite, AS_OF, NOW).customers
    assert b["total_scaled"].iat[0] >= a["total_scaled"].iat[0]
    order = rite.tier_names
    assert order.index(b["tier"].iat[0]) <= order.index(a["tier"].iat[0])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(dims_st, min_size=1, max_size=25), notes=st.lists(st.sampled_from(["", "投诉", "没有投诉", "曝光了"]),
                                                                         min_size=25, max_size=25),
       flags=st.lists(st.booleans(), min_size=25, max_size=25))
def test_escalation_never_lowers_a_tier(rite, rows, notes, flags):
    f = _frame(rows)
    f["notes"] = pd.Series(notes[: len(rows)], dtype="str")
    f["negative_post"] = pd.array(flags[: len(rows)], dtype="boolean")
    res = score(f, rite, AS_OF, NOW).customers
    order = {t: i for i, t in enumerate(rite.tier_names)}
    assert (res["tier"].astype(str).map(order) <= res["model_tier"].astype(str).map(order)).all()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(dims_st, min_size=2, max_size=30), seed=st.integers(0, 2**16))
def test_row_order_never_changes_a_result(rite, rows, seed):
    f = _frame(rows)
    shuffled = f.sample(frac=1, random_state=seed).reset_index(drop=True)
    a = score(f, rite, AS_OF, NOW).records()
    b = score(shuffled, rite, AS_OF, NOW).records()
    strip = [{k: v for k, v in r.items() if k != "row"} for r in a]
    strip_b = [{k: v for k, v in r.items() if k != "row"} for r in b]
    assert strip == strip_b


def test_customer_key_prefers_id():
    f = pd.DataFrame({"customer_id": pd.Series(["A", None], dtype="str"), "name": ["x", "y"],
                      "phone": pd.Series(["1", None], dtype="str")})
    assert list(customer_key(f)) == ["A", "姓名:y/"]


def test_escalate_pure_function_reports_rules(rite):
    f = pd.DataFrame({"wait_days": [30], "key": ["k"]})
    final, text = escalate(f, np.array([3]), rite)
    assert final[0] == 1 and "A4.1" in text[0] and "A4.3" in text[0]
