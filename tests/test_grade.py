"""Customer grading (job D): tierctl.grade and tierctl/models/grade.toml."""

from __future__ import annotations

import json
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierctl.errors import InputError, ModelError
from tierctl.grade import compare, grade_customers, load_grade_model, percentile_rank

AS_OF = date(2026, 11, 25)
DEFAULT_WEIGHTS = {"spend": "0.30", "frequency": "0.20", "ticket": "0.10",
                   "tenure": "0.15", "satisfaction": "0.15", "potential": "0.10"}
GRADES = """
[[grades]]
name = "VIP"
min = 90
usual_share_pct = 5
aliases = ["VIP客户"]
[[grades]]
name = "核心"
min = 75
usual_share_pct = 15
[[grades]]
name = "潜力"
min = 60
usual_share_pct = 30
[[grades]]
name = "普通"
min = 45
usual_share_pct = 35
[[grades]]
name = "休眠"
min = 0
usual_share_pct = 15
"""


@pytest.fixture(scope="module")
def model():
    return load_grade_model()


def write_model(tmp_path: Path, indicators: dict[str, dict], grades: str = GRADES, extra: str = "") -> Path:
    """A model file where each indicator reads a number column of the same name."""
    lines = ['kind = "grade"', 'name = "test"',
             "[columns.customer_id]", 'kind = "text"', 'aliases = ["客户编号"]', "required = true",
             "[columns.name]", 'kind = "text"', 'aliases = ["姓名"]']
    for key in indicators:
        lines += [f"[columns.{key}]", 'kind = "number"', f'aliases = ["{key}"]']
    for key, spec in indicators.items():
        lines += [f"[indicators.{key}]", f'label = "{key}"', f'column = "{key}"', f'weight = "{spec["weight"]}"',
                  f'required = {str(spec.get("required", True)).lower()}',
                  f'blank = "{spec.get("blank", "reweight")}"']
        if "bands" in spec:
            bands = ", ".join(f"{{ min = {lo}, points = {pts} }}" for lo, pts in spec["bands"])
            lines += ['normalise = "thresholds"', f"bands = [{bands}]"]
    text = "\n".join(lines) + "\n" + extra + "\n" + grades
    p = tmp_path / "m.toml"
    p.write_text(text, encoding="utf-8")
    return p


def identity(points=range(0, 101)):
    """Threshold bands where an integer value v scores exactly v points."""
    return [(k, k) for k in points]


def frame(**cols) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    cols.setdefault("customer_id", [f"C{i:03d}" for i in range(n)])
    df = pd.DataFrame(cols)
    df["_row"] = range(2, n + 2)  # as the ingest numbers Excel rows (header = 1)
    return df


def recompute(model, row, **replace) -> Decimal:
    """The composite from the shown indicator scores, in Decimal, half-up (Excel's ROUND)."""
    used = [i for i in model.indicators if not pd.isna(row.get(f"{i.key}_score", np.nan))]
    score = {i.key: Decimal(str(row[f"{i.key}_score"])) for i in used} | replace
    total = sum(i.weight for i in used)
    return (sum(score[i.key] * i.weight for i in used) / total).quantize(Decimal("0.01"), ROUND_HALF_UP)


def full_frame(n: int = 12, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    visits = rng.integers(0, 6, n)
    return frame(
        customer_id=[f"{i:04d}" for i in range(n)],  # leading zeros are text
        name=[f"客户{i}" for i in range(n)],
        spend_12m=np.round(visits * rng.uniform(200, 3000, n), 2),
        visits_12m=visits,
        first_visit=pd.to_datetime("2026-11-01") - pd.to_timedelta(rng.integers(0, 3000, n), unit="D"),
        satisfaction=rng.integers(1, 6, n).astype(float),
        potential=rng.integers(0, 101, n).astype(float),
    )


# --------------------------------------------------------------------------------------
# the model file


def test_packaged_model_loads_with_the_spec_weights_and_bands(model):
    assert {i.key: i.weight for i in model.indicators} == {k: Decimal(v) for k, v in DEFAULT_WEIGHTS.items()}
    assert sum(i.weight for i in model.indicators) == 1
    assert [(g.name, g.min, g.usual_share_pct) for g in model.grades] == [
        ("VIP", 90, 5), ("核心", 75, 15), ("潜力", 60, 30), ("普通", 45, 35), ("休眠", 0, 15)]
    assert all(i.normalise == "percentile" for i in model.indicators)
    assert model.columns["customer_id"].required
    for col, alias in [("spend_12m", "近12个月消费"), ("visits_12m", "到店次数"), ("avg_ticket", "客单价"),
                       ("tenure_years", "客户年限"), ("satisfaction", "满意度"), ("potential", "潜力评分")]:
        assert alias in model.columns[col].aliases
    assert model.rank("VIP客户") == model.rank("VIP") == 4 and model.rank("休眠") == 0
    assert model.rank("金牌") is None


@pytest.mark.parametrize("change, key", [
    ({"a": {"weight": "0.5"}, "b": {"weight": "0.4"}}, "indicators"),             # sum 0.9
    ({"a": {"weight": "0.50001"}, "b": {"weight": "0.49999"}}, "indicators.a.weight"),
    ({"a": {"weight": "0"}, "b": {"weight": "1"}}, "indicators.a.weight"),
    ({"a": {"weight": "0.5", "bands": [(10, 50), (20, 40)]}, "b": {"weight": "0.5"}}, "indicators.a.bands"),
])
def test_bad_weights_and_bands_fail_at_load_naming_the_key(tmp_path, change, key):
    with pytest.raises(ModelError) as err:
        load_grade_model(write_model(tmp_path, change))
    assert f"[{key}]" in str(err.value)


@pytest.mark.parametrize("grades, text", [
    (GRADES.replace("min = 75", "min = 95"), "从高到低"),
    (GRADES.replace("min = 0", "min = 10"), "应为 0"),
    (GRADES.replace("usual_share_pct = 35", "usual_share_pct = 30"), "之和应为 100"),
    (GRADES.replace('name = "核心"', 'name = "核心"\naliases = ["VIP客户"]'), "两个等级"),
])
def test_bad_grade_bands_fail_at_load(tmp_path, grades, text):
    with pytest.raises(ModelError, match=text):
        load_grade_model(write_model(tmp_path, {"a": {"weight": "1"}}, grades=grades))


def test_a_model_of_another_kind_is_refused(tmp_path):
    p = tmp_path / "x.toml"
    p.write_text('kind = "rfm"\n', encoding="utf-8")
    with pytest.raises(ModelError, match="grade"):
        load_grade_model(p)


# --------------------------------------------------------------------------------------
# percentile or thresholds (issue 7 decision): a model-wide switch, bands always checked


def test_packaged_model_carries_threshold_bands_for_every_indicator(model):
    thr = load_grade_model(normalise="thresholds")
    assert model.normalise == "percentile" and thr.normalise == "thresholds"
    assert all(i.bands for i in thr.indicators)
    # the bands are the same objects whichever way the model is used
    assert [i.bands for i in model.indicators] == [i.bands for i in thr.indicators]


def test_model_wide_normalise_and_the_per_indicator_override(tmp_path):
    p = write_model(tmp_path, {"a": {"weight": "0.5", "bands": identity()}, "b": {"weight": "0.5"}})
    m = load_grade_model(p)
    assert {i.key: i.normalise for i in m.indicators} == {"a": "thresholds", "b": "percentile"}
    assert m.normalise == "mixed"
    assert load_grade_model(p, normalise="percentile").normalise == "percentile"
    with pytest.raises(ModelError) as err:
        load_grade_model(p, normalise="thresholds")  # b has no bands
    assert "[indicators.b.bands]" in str(err.value) and "--normalise thresholds" in str(err.value)
    text = p.read_text(encoding="utf-8").replace('kind = "grade"', 'kind = "grade"\nnormalise = "thresholds"')
    p.write_text(text.replace('normalise = "thresholds"\nbands', "bands"), encoding="utf-8")
    with pytest.raises(ModelError, match=r"indicators\.b\.bands"):
        load_grade_model(p)  # the file-wide switch needs bands everywhere too
    with pytest.raises(ModelError, match="zscore"):
        load_grade_model(p, normalise="zscore")


def test_unused_bands_are_still_checked_at_load(tmp_path):
    p = write_model(tmp_path, {"a": {"weight": "1", "bands": [(10, 50), (20, 40)]}})
    p.write_text(p.read_text(encoding="utf-8").replace('normalise = "thresholds"\n', 'normalise = "percentile"\n'),
                 encoding="utf-8")
    with pytest.raises(ModelError, match=r"indicators\.a\.bands"):
        load_grade_model(p)


def _spread(n: int = 400) -> pd.DataFrame:
    """Independent indicators: percentile composites bunch around 50."""
    rng = np.random.default_rng(3)
    return frame(customer_id=[f"{i:04d}" for i in range(n)], spend_12m=rng.uniform(0, 9000, n),
                 visits_12m=rng.integers(0, 8, n), satisfaction=rng.integers(1, 11, n).astype(float),
                 potential=rng.integers(1, 101, n).astype(float), tenure_years=rng.uniform(0, 10, n))


def test_share_note_explains_the_percentile_bunching_and_the_way_out(model):
    res = grade_customers(_spread(), model, AS_OF)
    d = res.distribution.set_index("grade")
    assert d.loc["VIP", "share_pct"] < 2.5 and d.loc["VIP", "flagged"]  # far below half the usual 5%
    assert abs(d.loc["VIP", "diff_pct"]) < 10  # … which the point tolerance alone would not flag
    notes = [w for w in res.warnings if "通常约" in w]
    assert len(notes) == 1  # one note, not one line per grade
    assert "VIP" in notes[0] and "休眠" in notes[0] and "相对名次" in notes[0] and "--normalise thresholds" in notes[0]
    thr = grade_customers(_spread(), load_grade_model(normalise="thresholds"), AS_OF)
    assert all("相对名次" not in w for w in thr.warnings)


def test_no_share_note_for_few_customers(model):
    assert not any("通常约" in w for w in grade_customers(_spread(60), model, AS_OF).warnings)


# --------------------------------------------------------------------------------------
# percentile rank


def test_percentile_ties_share_a_value():
    # 1,1,1,5: the three 1s beat nobody and tie with two others → (0 + 2/2)/3 = 33.33
    assert percentile_rank([1, 1, 1, 5]).tolist() == [33.33, 33.33, 33.33, 100.0]
    assert percentile_rank([3, 1, 2]).tolist() == [100.0, 0.0, 50.0]
    assert percentile_rank([7, 7, 7]).tolist() == [50.0, 50.0, 50.0]
    assert percentile_rank([42]).tolist() == [50.0]
    r = percentile_rank([1, np.nan, 2])
    assert r[0] == 0 and np.isnan(r[1]) and r[2] == 100  # blanks are not ranked


@given(st.lists(st.integers(0, 5), min_size=2, max_size=60))
def test_percentile_mean_is_50_and_equal_values_share_a_score(values):
    r = percentile_rank(values)
    assert abs(r.mean() - 50) <= 0.005 + 1e-9  # exact scores average 50; each is rounded to 2 decimals
    score_of: dict[int, set[float]] = {}
    for v, s in zip(values, r.tolist(), strict=True):
        score_of.setdefault(v, set()).add(s)
    assert all(len(s) == 1 for s in score_of.values())  # ties share one score
    ordered = [score_of[v].pop() for v in sorted(score_of)]
    assert ordered == sorted(ordered) and len(set(ordered)) == len(ordered)  # higher value, higher score


# --------------------------------------------------------------------------------------
# composite and grade bands, at their edges


def test_band_edges_use_the_rounded_composite(tmp_path):
    edges = [0, 44.99, 45, 59.99, 60, 74.99, 75, 89.99, 90, 100]
    m = load_grade_model(write_model(tmp_path, {"a": {"weight": "1", "bands": [(e, e) for e in edges]}}))
    res = grade_customers(frame(a=edges), m, AS_OF)
    assert res.customers["composite"].tolist() == edges
    assert res.customers["grade"].astype(str).tolist() == [
        "休眠", "休眠", "普通", "普通", "潜力", "潜力", "核心", "核心", "VIP", "VIP"]


def test_composite_rounds_half_up_to_two_decimals_before_the_band(tmp_path):
    bands = [(0, 0), (89.99, 89.99), (90, 90)]
    m = load_grade_model(write_model(tmp_path, {"a": {"weight": "0.5", "bands": bands},
                                                "b": {"weight": "0.5", "bands": bands}}))
    res = grade_customers(frame(a=[89.99, 89.99], b=[90, 89.99]), m, AS_OF)
    # (89.99 + 90) / 2 = 89.995 → shown 90.00 → VIP; the grade always agrees with the number shown
    assert res.customers["composite"].tolist() == [90.0, 89.99]
    assert res.customers["grade"].astype(str).tolist() == ["VIP", "核心"]


def test_weighted_composite_of_exactly_90_is_vip_where_floats_give_89_999(tmp_path):
    scores = [80, 89, 99, 98, 100, 86]
    assert sum(float(w) * s for w, s in zip(DEFAULT_WEIGHTS.values(), scores, strict=True)) < 90  # the trap
    m = load_grade_model(write_model(tmp_path, {k: {"weight": w, "bands": identity()}
                                                for k, w in DEFAULT_WEIGHTS.items()}))
    res = grade_customers(frame(**{k: [s] for k, s in zip(DEFAULT_WEIGHTS, scores, strict=True)}), m, AS_OF)
    assert res.customers["composite"].iat[0] == 90.0
    assert res.customers["grade"].iat[0] == "VIP"


@pytest.mark.parametrize("scores, composite, grade", [
    ([67, 90, 49, 98, 94, 32], 75.0, "核心"),   # floats: 74.99999999999999
    ([31, 98, 35, 100, 62, 33], 60.0, "潜力"),  # floats: 59.99999999999999
    ([15, 96, 4, 93, 31, 23], 45.0, "普通"),    # floats: 44.99999999999999
])
def test_other_band_edges_are_exact_with_the_default_weights(tmp_path, scores, composite, grade):
    m = load_grade_model(write_model(tmp_path, {k: {"weight": w, "bands": identity()}
                                                for k, w in DEFAULT_WEIGHTS.items()}))
    res = grade_customers(frame(**{k: [s] for k, s in zip(DEFAULT_WEIGHTS, scores, strict=True)}), m, AS_OF)
    assert (res.customers["composite"].iat[0], res.customers["grade"].iat[0]) == (composite, grade)


def test_thresholds_below_the_lowest_band_get_the_below_points(tmp_path):
    p = write_model(tmp_path, {"a": {"weight": "1", "bands": [(5, 100), (3, 50)]}})
    p.write_text(p.read_text(encoding="utf-8").replace('normalise = "thresholds"',
                                                       'normalise = "thresholds"\nbelow = 10'), encoding="utf-8")
    res = grade_customers(frame(a=[9, 5, 4.99, 3, 2]), load_grade_model(p), AS_OF)
    assert res.customers["a_score"].tolist() == [100, 100, 50, 50, 10]
    assert "≥5" in res.reasons["a"].iat[0] and "低于最低档" in res.reasons["a"].iat[4]


def test_packaged_model_grades_a_realistic_export(model):
    res = grade_customers(full_frame(40), model, AS_OF)
    c = res.customers
    assert len(c) == 40 and c["customer_id"].iat[0] == "0000"
    assert set(c["grade"].astype(str)) <= set(model.grade_names)
    assert c["composite"].between(0, 100).all()
    # the composite is exactly ROUND(Σ shown score × weight, 2) — what a manager recomputes in Excel
    assert [recompute(model, row) for _, row in c.iterrows()] == [Decimal(str(x)) for x in c["composite"]]
    assert any(recompute(model, row) != round(sum(float(row[f"{i.key}_score"]) * float(i.weight)
                                                  for i in model.indicators), 2) for _, row in c.iterrows())
    assert res.distribution["count"].sum() == 40
    assert res.distribution["usual_share_pct"].tolist() == [5, 15, 30, 35, 15]


# --------------------------------------------------------------------------------------
# missing indicators, derivations, blanks


def test_missing_optional_indicator_is_reweighted_with_a_warning(model):
    df = full_frame(30).drop(columns=["satisfaction"])
    res = grade_customers(df, model, AS_OF)
    assert res.missing_indicators == ["satisfaction"]
    assert "satisfaction_score" not in res.customers
    assert any("满意度" in w and "按比例" in w for w in res.warnings)
    assert res.weights["spend"] == Decimal("0.3529")  # 0.30 / 0.85
    c = res.customers
    assert [recompute(model, row) for _, row in c.iterrows()] == [Decimal(str(x)) for x in c["composite"]]


def test_missing_required_indicator_is_a_clear_error(model):
    with pytest.raises(InputError) as err:
        grade_customers(full_frame().drop(columns=["spend_12m"]), model, AS_OF)
    assert "近12个月消费" in str(err.value) and "缺少必需的指标" in str(err.value)


def test_an_entirely_blank_column_counts_as_missing(model):
    df = full_frame(30)
    df["potential"] = np.nan
    res = grade_customers(df, model, AS_OF)
    assert res.missing_indicators == ["potential"]


def test_average_ticket_is_derived_from_spend_and_visits_when_absent(model):
    df = frame(spend_12m=[3000.0, 1000.0, 500.0, 0.0], visits_12m=[3, 1, 0, 0])
    res = grade_customers(df, model, AS_OF)
    assert res.customers["ticket_value"].tolist() == [1000.0, 1000.0, 0.0, 0.0]  # no visit → blank → 0
    assert "推算" in res.reasons["ticket"].iat[0]
    # a given column wins; only its blank cells are derived
    df["avg_ticket"] = [800.0, np.nan, np.nan, np.nan]
    res = grade_customers(df, model, AS_OF)
    assert res.customers["ticket_value"].tolist() == [800.0, 1000.0, 0.0, 0.0]


def test_tenure_counts_completed_calendar_months(model):
    df = frame(spend_12m=[1.0, 2.0, 3.0, 4.0], visits_12m=[1, 1, 1, 1],
               first_visit=pd.to_datetime(["2023-11-25", "2023-11-26", "2024-02-29", None]))
    res = grade_customers(df, model, AS_OF)
    t = res.customers["tenure_value"].tolist()
    assert t[0] == 3.0                      # exactly three years on the anniversary
    assert t[1] == pytest.approx(35 / 12)   # one day short
    assert t[2] == pytest.approx(32 / 12)
    assert np.isnan(t[3]) and np.isnan(res.customers["tenure_score"].iat[3])


def test_first_visit_after_the_as_of_date_is_an_error(model):
    df = frame(spend_12m=[1.0, 2.0], visits_12m=[1, 1], first_visit=pd.to_datetime(["2020-01-01", "2026-12-01"]))
    with pytest.raises(InputError) as err:
        grade_customers(df, model, AS_OF)
    assert "第 3 行" in str(err.value) and "晚于评估日" in str(err.value)


def test_blank_policies_zero_and_reweight(model):
    df = frame(spend_12m=[np.nan, 100.0, 200.0], visits_12m=[1, 1, 1],
               satisfaction=[np.nan, 3.0, 5.0])
    res = grade_customers(df, model, AS_OF)
    c = res.customers
    assert c["spend_value"].iat[0] == 0 and c["spend_score"].iat[0] == 0   # blank spend = 0 元
    assert np.isnan(c["satisfaction_score"].iat[0])                        # not counted for him
    assert "空白" in res.reasons["satisfaction"].iat[0]
    # his composite uses only the indicators he has, weights scaled up: spend .3, visits .2, ticket .1
    assert Decimal(str(c["composite"].iat[0])) == recompute(model, c.iloc[0])
    assert [k for k in DEFAULT_WEIGHTS if not pd.isna(c.iloc[0].get(f"{k}_score"))] == ["spend", "frequency", "ticket"]


def test_blank_policy_error_names_the_rows(tmp_path):
    m = load_grade_model(write_model(tmp_path, {"a": {"weight": "0.5", "blank": "error"}, "b": {"weight": "0.5"}}))
    with pytest.raises(InputError) as err:
        grade_customers(frame(a=[1.0, np.nan, 3.0], b=[1.0, 2.0, 3.0]), m, AS_OF)
    assert "第 3 行" in str(err.value) and "不能为空" in str(err.value)


@pytest.mark.parametrize("col, values, text, row", [
    ("customer_id", ["A1", "A2", "A1"], "重复", "第 4 行"),
    ("customer_id", ["A1", " ", "A3"], "客户编号为空", "第 3 行"),
    ("spend_12m", ["100", "一百", "300"], "不是数字", "第 3 行"),
    ("visits_12m", [1, -2, 3], "不能小于 0", "第 3 行"),
])
def test_bad_cells_are_reported_with_their_excel_row(model, col, values, text, row):
    df = frame(customer_id=["A1", "A2", "A3"], spend_12m=[100.0, 200.0, 300.0], visits_12m=[1, 2, 3])
    df[col] = values
    with pytest.raises(InputError) as err:
        grade_customers(df, model, AS_OF, path="导出.xlsx")
    msg = str(err.value)
    assert msg.startswith("导出.xlsx") and text in msg and row in msg


# --------------------------------------------------------------------------------------
# properties


small = st.integers(min_value=0, max_value=4)  # few distinct values: plenty of ties


@st.composite
def exports(draw):
    n = draw(st.integers(min_value=1, max_value=25))
    col = lambda elems: draw(st.lists(elems, min_size=n, max_size=n))  # noqa: E731
    return {
        "customer_id": [f"K{i}" for i in range(n)],
        "spend_12m": [float(v) * 500 for v in col(small)],
        "visits_12m": col(small),
        "avg_ticket": [float(v) for v in col(st.integers(0, 3))],
        "tenure_years": [float(v) for v in col(small)],
        "satisfaction": [np.nan if v < 0 else float(v) for v in col(st.integers(-1, 5))],
        "potential": [float(v) for v in col(st.integers(0, 100))],
    }


@settings(max_examples=60, deadline=None)
@given(exports(), st.randoms(use_true_random=False))
def test_row_order_never_changes_a_result(model, data, rnd):
    df = frame(**data)
    order = list(range(len(df)))
    rnd.shuffle(order)
    a = grade_customers(df, model, AS_OF).customers.set_index("customer_id").sort_index()
    b = grade_customers(df.iloc[order], model, AS_OF).customers.set_index("customer_id").sort_index()
    pd.testing.assert_frame_equal(a, b)


@settings(max_examples=80, deadline=None)
@given(exports(), st.data())
def test_raising_one_indicator_never_lowers_that_customers_composite(model, data, draw):
    df = frame(**data)
    who = draw.draw(st.integers(0, len(df) - 1))
    col = draw.draw(st.sampled_from(["spend_12m", "visits_12m", "avg_ticket", "tenure_years",
                                     "satisfaction", "potential"]))
    by = draw.draw(st.integers(1, 5))
    before = grade_customers(df, model, AS_OF).customers
    raised = df.copy()
    if not np.isnan(raised[col].iat[who]):
        raised.loc[raised.index[who], col] = raised[col].iat[who] + by
    after = grade_customers(raised, model, AS_OF).customers
    assert after["composite"].iat[who] >= before["composite"].iat[who]
    assert after["grade"].cat.codes.iat[who] >= before["grade"].cat.codes.iat[who]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 100), min_size=6, max_size=6), st.integers(0, 5), st.integers(1, 30))
def test_thresholds_are_monotonic_too(tmp_path_factory, scores, k, by):
    m = load_grade_model(write_model(tmp_path_factory.mktemp("m"),
                                     {key: {"weight": w, "bands": identity(range(0, 101, 10))}
                                      for key, w in DEFAULT_WEIGHTS.items()}))
    keys = list(DEFAULT_WEIGHTS)
    base = grade_customers(frame(**{key: [s] for key, s in zip(keys, scores, strict=True)}), m, AS_OF)
    scores[k] += by
    up = grade_customers(frame(**{key: [s] for key, s in zip(keys, scores, strict=True)}), m, AS_OF)
    assert up.customers["composite"].iat[0] >= base.customers["composite"].iat[0]


# --------------------------------------------------------------------------------------
# overrides


def _graded_pair(model):
    """A 休眠, a middling and a VIP customer (three customers: scores 0 / 50 / 100)."""
    return frame(customer_id=["A", "B", "C"], spend_12m=[100.0, 5000.0, 20000.0], visits_12m=[1, 3, 8])


def test_override_wins_both_ways_and_is_shown_as_overridden(model):
    df = _graded_pair(model)
    ov = pd.DataFrame({"customer_id": ["A", "C"], "grade": ["VIP客户", "普通"],
                       "reason": ["转介绍 10 位客户", "恶意差评，经店长确认"], "by": ["王经理", "李店长"],
                       "at": ["2026-11-20 09:30", "2026-11-21"], "_row": [2, 3]})
    res = grade_customers(df, model, AS_OF, overrides=ov)
    c = res.customers.set_index("customer_id")
    assert c.loc["A", "computed_grade"] == "休眠" and c.loc["A", "grade"] == "VIP"
    assert c.loc["C", "computed_grade"] == "VIP" and c.loc["C", "grade"] == "普通"
    assert c["overridden"].tolist() == [True, False, True]
    assert c.loc["A", "override_reason"] == "转介绍 10 位客户" and c.loc["A", "override_by"] == "王经理"
    assert c.loc["A", "override_at"].startswith("2026-11-20T09:30")
    assert [(a["customer_id"], a["computed_grade"], a["grade"], a["reason"]) for a in res.audit] == [
        ("A", "休眠", "VIP", "转介绍 10 位客户"), ("C", "VIP", "普通", "恶意差评，经店长确认")]
    assert "人工调整为 VIP（系统评定 休眠）：转介绍 10 位客户" in res.reasons["override"].iat[0]
    assert pd.isna(res.reasons["override"].iat[1])
    # the distribution counts final grades; the computed ones are kept beside them
    d = res.distribution.set_index("grade")
    assert d.loc["VIP", "count"] == 1 and d.loc["VIP", "computed_count"] == 1
    assert d.loc["休眠", "count"] == 0 and d.loc["休眠", "computed_count"] == 1


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_override_without_a_reason_is_refused_naming_the_row(model, reason):
    ov = pd.DataFrame({"customer_id": ["A", "B"], "grade": ["VIP", "VIP"], "reason": ["老客户", reason],
                       "_row": [2, 3]})
    with pytest.raises(InputError) as err:
        grade_customers(_graded_pair(model), model, AS_OF, overrides=ov, overrides_path="overrides.csv")
    msg = str(err.value)
    assert "overrides.csv" in msg and "第 3 行" in msg and "原因" in msg and "客户 B" in msg


def test_override_to_an_unknown_grade_is_refused(model):
    ov = pd.DataFrame({"customer_id": ["A"], "grade": ["金牌"], "reason": ["x"], "_row": [2]})
    with pytest.raises(InputError, match="不是有效等级"):
        grade_customers(_graded_pair(model), model, AS_OF, overrides=ov)


def test_the_latest_override_wins_whatever_the_row_order(model):
    ov = pd.DataFrame({"customer_id": ["A", "A"], "grade": ["核心", "VIP"], "reason": ["一", "二"],
                       "at": ["2026-11-01", "2026-11-10"]})
    for o in (ov, ov.iloc[::-1]):
        res = grade_customers(_graded_pair(model), model, AS_OF, overrides=o)
        assert res.customers["grade"].iat[0] == "VIP" and res.customers["override_reason"].iat[0] == "二"


def test_two_overrides_at_the_same_time_are_a_conflict(model):
    ov = pd.DataFrame({"customer_id": ["A", "A"], "grade": ["核心", "VIP"], "reason": ["一", "二"], "_row": [2, 3]})
    with pytest.raises(InputError, match="冲突"):
        grade_customers(_graded_pair(model), model, AS_OF, overrides=ov)


def test_overrides_not_in_force_are_reported_not_applied(model):
    ov = pd.DataFrame({"customer_id": ["A", "B", "ZZZ"], "grade": ["VIP", "VIP", "VIP"],
                       "reason": ["以后的决定", "已到期", "不在名单"],
                       "at": ["2026-12-01", "2026-01-01", None], "until": [None, "2026-06-30", None]})
    res = grade_customers(_graded_pair(model), model, AS_OF, overrides=ov)
    assert not res.customers["overridden"].any() and res.audit == []
    text = " ".join(res.warnings)
    assert "晚于评估日" in text and "到期" in text and "ZZZ" in text


# --------------------------------------------------------------------------------------
# JSON


def test_json_is_plain_and_matches_the_frame(model):
    df = full_frame(15)
    ov = pd.DataFrame({"customer_id": ["0003"], "grade": ["VIP"], "reason": ["转介绍"], "by": ["王"],
                       "at": [pd.Timestamp("2026-11-01 10:00", tz="Asia/Shanghai")]})
    res = grade_customers(df, model, AS_OF, overrides=ov)
    doc = json.loads(json.dumps(res.to_json(), ensure_ascii=False, allow_nan=False))
    assert doc["as_of"] == "2026-11-25" and doc["count"] == 15
    rows = doc["customers"]
    c = res.customers
    assert [r["customer_id"] for r in rows] == c["customer_id"].tolist()
    assert [r["composite"] for r in rows] == c["composite"].tolist()
    assert [r["grade"] for r in rows] == c["grade"].astype(str).tolist()
    assert [r["overridden"] for r in rows] == c["overridden"].tolist()
    assert rows[3]["override"] == {"reason": "转介绍", "by": "王", "at": "2026-11-01T10:00:00+08:00"}
    assert set(rows[0]["indicators"]) == set(DEFAULT_WEIGHTS)
    assert rows[0]["indicators"]["spend"] == c["spend_score"].iat[0]
    assert rows[0]["reasons"][0].startswith("近12个月消费")


# --------------------------------------------------------------------------------------
# changes against the previous grading


def _two_months(model):
    n = 21
    base = frame(customer_id=[f"M{i:02d}" for i in range(n)], name=[f"客户{i}" for i in range(n)],
                 spend_12m=[float(1000 * i) for i in range(n)], visits_12m=list(range(n)),
                 avg_ticket=[float(i) for i in range(n)], satisfaction=[float(i) for i in range(n)])
    before = grade_customers(base, model, date(2026, 10, 25))
    after_df = base.copy()
    # M20 (VIP) lets his spend fall to the bottom; M00 (休眠) becomes the best customer
    after_df.loc[20, "spend_12m"] = -1.0
    after_df.loc[0, ["spend_12m", "visits_12m", "avg_ticket", "satisfaction"]] = [99999.0, 99, 99.0, 99.0]
    after_df = after_df[after_df["customer_id"] != "M10"]  # gone
    after_df = pd.concat([after_df, frame(customer_id=["NEW"], spend_12m=[1.0], visits_12m=[1])]
                         ).reset_index(drop=True)
    after = grade_customers(after_df, model, AS_OF)
    return before, after


def test_upgrades_and_downgrades_are_listed_and_only_downgrades_get_letters(model):
    before, after = _two_months(model)
    ch = compare(before.customers, after)
    b = before.customers.set_index("customer_id")["grade"]
    a = after.customers.set_index("customer_id")["grade"]
    common = b.index.intersection(a.index)
    expected_down = sorted(i for i in common if model.rank(a[i]) < model.rank(b[i]))
    expected_up = sorted(i for i in common if model.rank(a[i]) > model.rank(b[i]))
    assert expected_down and expected_up
    assert ch.downgrades["customer_id"].tolist() == expected_down
    assert ch.upgrades["customer_id"].tolist() == expected_up
    assert [x["customer_id"] for x in ch.letters] == expected_down  # one letter per downgrade, no other
    assert ch.new == ["NEW"] and ch.gone == ["M10"]
    assert ch.unchanged == len(common) - len(expected_down) - len(expected_up)
    json.dumps(ch.to_json(), allow_nan=False)


def test_a_downgrade_letter_names_the_indicator_that_moved_and_what_restores_the_grade(model):
    before, after = _two_months(model)
    ch = compare(before.customers, after)
    letter = next(x for x in ch.letters if x["customer_id"] == "M20")
    assert letter["prev_grade"] == "VIP" and letter["name"] == "客户20"
    assert letter["moved"][0]["indicator"] == "spend"
    assert letter["moved"][0]["impact"] < 0
    assert any("近12个月消费" in s for s in letter["basis"])
    r = letter["restore"]
    assert r["grade"] == "VIP" and r["composite_needed"] == 90.0
    assert r["gap"] == pytest.approx(90.0 - letter["composite"])
    first = r["options"][0]
    assert first["indicator"] == "spend" and first["reachable"]
    # the score named really restores the grade, and it is the least that does
    row = after.customers.set_index("customer_id").loc["M20"]
    needed = Decimal(str(first["score_needed"]))
    assert recompute(model, row, spend=needed) >= 90
    assert recompute(model, row, spend=needed - Decimal("0.01")) < 90
    assert all(o["indicator"] != "tenure" for o in r["options"])  # time alone restores tenure


def test_an_empty_export_says_so(model):
    with pytest.raises(InputError, match="没有客户数据"):
        grade_customers(frame(spend_12m=[1.0], visits_12m=[1]).iloc[:0], model, AS_OF)


def test_first_grading_has_no_previous_one(model):
    now = grade_customers(full_frame(5), model, AS_OF)
    ch = compare(pd.DataFrame({"customer_id": [], "grade": []}), now)
    assert ch.letters == [] and ch.upgrades.empty and ch.new == now.customers["customer_id"].tolist()


def test_same_grade_with_a_lower_composite_is_not_a_downgrade(model):
    df = full_frame(20)
    before = grade_customers(df, model, AS_OF)
    prev = before.customers.copy()
    prev["composite"] = prev["composite"] + 0.5  # a slightly better score last time, same grade
    ch = compare(prev, before)
    assert ch.letters == [] and ch.downgrades.empty and ch.upgrades.empty
    assert ch.unchanged == 20


def test_a_downgrade_by_override_says_so(model):
    df = _graded_pair(model)
    before = grade_customers(df, model, AS_OF)
    ov = pd.DataFrame({"customer_id": ["C"], "grade": ["普通"], "reason": ["恶意差评"]})
    after = grade_customers(df, model, AS_OF, overrides=ov)
    (letter,) = compare(before.customers, after).letters
    assert letter["customer_id"] == "C" and letter["overridden"]
    assert any("人工调整为 普通：恶意差评" in s for s in letter["basis"])
    assert letter["restore"]["gap"] == 0 and "人工调整" in letter["restore"]["text"][0]


def test_previous_grading_as_stored_with_aliases_and_nested_indicators(model):
    df = full_frame(10)
    now = grade_customers(df, model, AS_OF)
    prev = pd.DataFrame({
        "customer_id": now.customers["customer_id"],
        "grade": ["VIP客户"] * 9 + ["钻石"],  # an alias, and a grade the model no longer has
        "composite": [95.0] * 10,
        "indicators": [json.dumps({"spend": 100.0, "frequency": 100.0})] * 10,
    })
    ch = compare(prev, now)
    assert any("钻石" in w for w in ch.warnings)
    assert len(ch.letters) == sum(now.customers["grade"].iloc[:9] != "VIP")
    for letter in ch.letters:
        assert letter["prev_grade"] == "VIP"
        assert {m["indicator"] for m in letter["moved"]} <= {"spend", "frequency"}


def test_messages_and_reasons_name_columns_as_the_file_spells_them(model):
    df = full_frame(5)
    df.loc[2, "first_visit"] = pd.Timestamp("2027-01-01")
    with pytest.raises(InputError) as err:
        grade_customers(df, model, AS_OF, headers={"first_visit": "建档日期"})
    assert "建档日期" in str(err.value) and "第 4 行" in str(err.value)
    res = grade_customers(full_frame(5), model, AS_OF, headers={"first_visit": "建档日期"})
    assert "由建档日期推算" in res.reasons["tenure"].iat[0]
    assert res.customers.equals(grade_customers(full_frame(5), model, AS_OF).customers)
