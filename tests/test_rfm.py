"""Tests for the RFM core (job C): every pitfall listed in SPEC part C."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tierctl.errors import InputError, ModelError, UsageError
from tierctl.models.loader import PACKAGED_DIR
from tierctl.rfm import (
    Edges,
    compute_rfm,
    load_rfm_model,
    migrate,
    quantile_scores,
    rfm_type,
    rfm_types,
)

AS_OF = date(2026, 11, 23)


def ago(days: int) -> str:
    return (AS_OF - timedelta(days=days)).isoformat()


def visits(records: list[tuple], *, with_orders: bool = True, **extra: list) -> pd.DataFrame:
    """A frame shaped like the shared ingest's output.

    ``records``: ``(customer_id, date, amount)`` or ``(customer_id, date, amount, order_id)``.
    """
    cols: dict = {
        "customer_id": pd.array([r[0] for r in records], dtype="str"),
        "visit_date": pd.to_datetime(pd.Series([r[1] for r in records], dtype=object)),
        "amount": pd.array([r[2] for r in records], dtype="Float64"),
    }
    if with_orders:
        cols["order_id"] = pd.array([r[3] if len(r) > 3 else None for r in records], dtype="str")
    for name, values in extra.items():
        dtype = "boolean" if name == "kol" else "str"
        cols[name] = pd.array(values, dtype=dtype)
    cols["_row"] = np.arange(2, len(records) + 2, dtype=np.int64)
    return pd.DataFrame(cols)


@pytest.fixture(scope="module")
def model():
    return load_rfm_model()


@pytest.fixture(scope="module")
def fixed(model):
    """The packaged model with fixed business thresholds instead of quantiles."""
    return replace(model, binning="thresholds")


def scores_of(result) -> dict[str, tuple[int, int, int]]:
    c = result.customers
    return {cid: (int(r), int(f), int(m))
            for cid, r, f, m in zip(c[result.unit_column], c["r"], c["f"], c["m"], strict=True)}


# ---------------------------------------------------------------------------------------
# model file
# ---------------------------------------------------------------------------------------
def test_packaged_model(model):
    assert model.window_days == 365 and model.unit == "owner"
    assert model.monetary == "sum" and model.binning == "quantile" and model.high_min == 4
    assert sorted(t.no for t in model.types) == list(range(1, 9))
    assert model.red_alert_types == {2, 4}
    assert model.type_by_no(3).name_zh == "重要发展" and model.type_by_no(3).pattern == "HLH"
    assert {c.name for c in model.columns.specs.values() if c.required} == {
        "customer_id", "visit_date", "amount"}
    assert "工单号" in model.columns.specs["order_id"].aliases
    assert "发票号" in model.columns.specs["order_id"].aliases
    assert model.columns.specs["kol"].kind == "bool"
    flows = {f.key: (f.from_type, f.to_type) for f in model.key_flows}
    assert flows == {"churn_warning": (1, 2), "conversion": (3, 1)}


def _write_model(tmp_path: Path, old: str, new: str) -> Path:
    text = (PACKAGED_DIR / "rfm.toml").read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / "my_rfm.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(("old", "new", "key"), [
    ("window_days = 365", 'window_days = "一年"', "settings.window_days"),
    ("window_days = 365", "windows_days = 365", "settings.windows_days"),
    ("window_days = 365", "window_days = 0", "settings.window_days"),
    ('unit = "owner"', 'unit = "store"', "settings.unit"),
    ('binning = "quantile"', 'binning = "qcut"', "settings.binning"),
    ("high_min = 4", "high_min = 9", "settings.high_min"),
    ("frequency = [2, 3, 4, 6]", "frequency = [6, 4, 3, 2]", "thresholds.frequency"),
    ("frequency = [2, 3, 4, 6]", "frequency = [2, 3, 4]", "thresholds.frequency"),
    ("recency_days = [270, 180, 90, 30]", "recency_days = [30, 90, 180, 270]",
     "thresholds.recency_days"),
    ("red_alert_types = [2, 4]", "red_alert_types = [2, 9]", "alerts.red_alert_types[1]"),
    ('pattern = "LLH"', 'pattern = "LHH"', "types[3].pattern"),
    ('pattern = "LLH"', 'pattern = "LXH"', "types[3].pattern"),
    ("share_pct = [5, 8]", "share_pct = [8, 5]", "types[0].share_pct"),
    ("from_type = 3", "from_type = 30", "migration.key_flows[1].from_type"),
    ('[columns.amount]\nkind = "number"', '[columns.amount]\nkind = "text"', "columns.amount.kind"),
])
def test_bad_model_names_the_key(tmp_path, old, new, key):
    path = _write_model(tmp_path, old, new)
    with pytest.raises(ModelError) as info:
        load_rfm_model(path)
    assert info.value.key == key
    assert f"[{key}]" in str(info.value) and "my_rfm.toml" in str(info.value)


def test_model_of_another_kind(tmp_path):
    path = _write_model(tmp_path, 'kind = "rfm"', 'kind = "churn"')
    with pytest.raises(ModelError) as info:
        load_rfm_model(path)
    assert info.value.key == "kind"


def test_model_missing_a_pattern(tmp_path):
    # drop type 8 (LLL) entirely: the 8 combinations are no longer covered
    text = (PACKAGED_DIR / "rfm.toml").read_text(encoding="utf-8")
    cut = text.rindex("[[types]]")
    path = tmp_path / "seven.toml"
    path.write_text(text[:cut], encoding="utf-8")
    with pytest.raises(ModelError) as info:
        load_rfm_model(path)
    assert info.value.key == "types" and "LLL" in str(info.value)


# ---------------------------------------------------------------------------------------
# type mapping
# ---------------------------------------------------------------------------------------
def test_all_125_combinations_map_to_exactly_one_type(model):
    r, f, m = (a.ravel() for a in np.meshgrid(*[np.arange(1, 6)] * 3, indexing="ij"))
    vec = rfm_types(r, f, m, model)
    assert len(vec) == 125
    assert set(vec.tolist()) == set(range(1, 9))  # every type reachable
    for ri, fi, mi, no in zip(r, f, m, vec, strict=True):
        t = rfm_type(int(ri), int(fi), int(mi), model)
        assert t.no == no
        matches = [x for x in model.types
                   if (x.r_high, x.f_high, x.m_high) == (ri >= 4, fi >= 4, mi >= 4)]
        assert [x.no for x in matches] == [no]
    # 5^3 combos: high = {4,5} (2 values), low = {1,2,3} (3 values)
    counts = pd.Series(vec).value_counts()
    assert counts[1] == 2 * 2 * 2 and counts[8] == 3 * 3 * 3 and counts[3] == 2 * 3 * 2


def test_type_patterns(model):
    expected = {1: "HHH", 2: "LHH", 3: "HLH", 4: "LLH", 5: "HHL", 6: "LHL", 7: "HLL", 8: "LLL"}
    assert {t.no: t.pattern for t in model.types} == expected


def test_lin_example(model):
    # seed 003: 林女士 5-1-4 (重要发展), twelve months later 5-4-4 (重要价值)
    assert rfm_type(5, 1, 4, model).name_zh == "重要发展"
    assert rfm_type(5, 1, 4, model).no == 3
    assert rfm_type(5, 4, 4, model).no == 1
    assert rfm_type(5, 4, 4, model).name_zh == "重要价值"


def test_rfm_type_rejects_out_of_range(model):
    with pytest.raises(UsageError):
        rfm_type(0, 3, 3, model)
    with pytest.raises(UsageError):
        rfm_type(6, 3, 3, model)


def test_lin_history_with_business_thresholds(fixed):
    # First visit at delivery: 18,000 元 (extended warranty + accessories + charger) → 5-1-4
    first = visits([("LIN", ago(10), 18000.0, "W1")])
    res = compute_rfm(first, fixed, AS_OF)
    row = res.customers.iloc[0]
    assert (row.r, row.f, row.m, row.rfm) == (5, 1, 4, "5-1-4")
    assert row.type_no == 3 and row.type_name == "重要发展"
    assert res.binning == "thresholds"

    # Twelve months later: 5 visits in the year, 13,800 元 → 5-4-4
    later = AS_OF + timedelta(days=365)
    year = [("LIN", (later - timedelta(days=d)).isoformat(), a, f"Y{i}")
            for i, (d, a) in enumerate([(300, 1200.0), (200, 3500.0), (120, 4000.0),
                                        (60, 2600.0), (5, 2500.0)])]
    res2 = compute_rfm(visits(year), fixed, later)
    row2 = res2.customers.iloc[0]
    assert (row2.frequency, row2.monetary) == (5, 13800.0)
    assert row2.rfm == "5-4-4" and row2.type_no == 1 and row2.type_name == "重要价值"


# ---------------------------------------------------------------------------------------
# quantile binning pitfalls
# ---------------------------------------------------------------------------------------
def test_heavy_ties_80_percent_one_visit(model):
    recs = []
    for i in range(1000):
        cid = f"C{i:04d}"
        n_visits = 1 if i < 800 else 2 + i % 7
        for k in range(n_visits):
            recs.append((cid, ago(k * 20 + i % 11), 100.0 + i % 5, f"{cid}-{k}"))
    df = visits(recs)
    # the failure a naive tool hits
    freq = df.groupby("customer_id")["order_id"].nunique()
    with pytest.raises(ValueError, match="Bin edges must be unique"):
        pd.qcut(freq, 5, labels=False)

    res = compute_rfm(df, model, AS_OF)
    c = res.customers.set_index("customer_id")
    assert len(c) == 1000
    one = c[c["frequency"] == 1]
    assert len(one) == 800 and set(one["f"]) == {1}  # one visit is low F, all alike
    # every group of equal values shares one score, in all three dimensions
    for value, score in (("recency_days", "r"), ("frequency", "f"), ("monetary", "m")):
        assert (c.groupby(value)[score].nunique() == 1).all()
        # and scores never decrease as the value gets better
        ordered = c.sort_values(value, ascending=value != "recency_days")[score].to_numpy()
        assert (np.diff(ordered) >= 0).all()
    assert any(q["kind"] == "ties" and q["detail"].startswith("F") for q in res.quality)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_tiny_inputs(model, n):
    recs = [(f"C{i}", ago(5 + 30 * i), 1000.0 * (n - i), f"O{i}") for i in range(n)]
    res = compute_rfm(visits(recs), model, AS_OF)
    assert len(res.customers) == n
    assert int(res.summary["customers"].sum()) == n
    json.dumps(res.to_json())
    if n == 0:
        assert res.edges.recency_days == (None, None, None, None)
        assert list(res.customers.columns)[:3] == ["customer_id", "name", "phone"]
    if n == 1:
        row = res.customers.iloc[0]
        assert (row.r, row.f, row.m) == (1, 1, 1)  # quantiles of one customer say nothing
        assert any(q["kind"] == "small_sample" for q in res.quality)
    if n == 2:
        c = res.customers.set_index("customer_id")
        assert c.loc["C0", "r"] > c.loc["C1", "r"]  # more recent scores higher
        assert c.loc["C0", "m"] > c.loc["C1", "m"]
        assert c.loc["C0", "f"] == c.loc["C1", "f"]


def test_all_equal_values(model):
    recs = [(f"C{i:02d}", ago(7), 500.0, f"O{i}") for i in range(20)]
    res = compute_rfm(visits(recs), model, AS_OF)
    c = res.customers
    assert c[["r", "f", "m"]].drop_duplicates().shape[0] == 1
    assert set(c["type_no"]) == {8}
    assert res.edges.monetary == (None, None, None, None)


def test_quantile_formula_and_ties():
    # values 10,20,20,30,40 (more is better): ranks_min 1,2,2,4,5 → (rank-1)*5//5+1
    assert quantile_scores(np.array([10, 20, 20, 30, 40]), True).tolist() == [1, 2, 2, 4, 5]
    # fewer is better (recency): the smallest value is best
    assert quantile_scores(np.array([1, 5, 5, 9]), False).tolist() == [4, 2, 2, 1]
    assert quantile_scores(np.array([]), True).tolist() == []


def test_most_recent_visitor_gets_r5(model):
    recs = [(f"C{i}", ago(3 + 17 * i), 800.0, f"O{i}") for i in range(10)]
    c = compute_rfm(visits(recs), model, AS_OF).customers.set_index("customer_id")
    assert c.loc["C0", "r"] == 5 and c.loc["C0", "recency_days"] == 3
    assert c.loc["C9", "r"] == 1


# ---------------------------------------------------------------------------------------
# R / F / M rules
# ---------------------------------------------------------------------------------------
def test_refunds_lower_m_and_are_not_visits(model):
    df = visits([
        ("A", ago(40), 1000.0, "O1"),
        ("A", ago(2), -300.0, "R1"),  # later refund must not make A "recent"
        ("B", ago(40), 1000.0, "O2"),
    ])
    res = compute_rfm(df, model, AS_OF)
    c = res.customers.set_index("customer_id")
    assert c.loc["A", "monetary"] == 700.0 and c.loc["A", "frequency"] == 1
    assert c.loc["A", "recency_days"] == 40
    assert c.loc["B", "monetary"] == 1000.0
    refunds = [q for q in res.quality if q["kind"] == "refund"]
    assert [(q["row"], q["customer_id"]) for q in refunds] == [(3, "A")]


def test_refund_only_customer_is_not_scored(model):
    df = visits([("A", ago(10), 500.0, "O1"), ("Z", ago(3), -200.0, "R9")])
    res = compute_rfm(df, model, AS_OF)
    assert res.customers["customer_id"].tolist() == ["A"]
    assert any(q["kind"] == "refund_only" and q["customer_id"] == "Z" for q in res.quality)


def test_same_day_different_orders_count_twice(model):
    df = visits([
        ("A", ago(5), 300.0, "W1"),
        ("A", ago(5), 200.0, "W2"),  # second repair order the same day
        ("B", ago(5), 300.0, "W3"),
        ("B", ago(5), 200.0, "W3"),  # two lines of one order
    ])
    res = compute_rfm(df, model, AS_OF)
    c = res.customers.set_index("customer_id")
    assert res.frequency_basis == "order_id"
    assert c.loc["A", "frequency"] == 2 and c.loc["B", "frequency"] == 1
    assert c.loc["A", "monetary"] == c.loc["B", "monetary"] == 500.0


def test_without_order_numbers_distinct_days_count(model):
    df = visits([("A", ago(5), 300.0), ("A", ago(5), 200.0), ("A", ago(9), 50.0)],
                with_orders=False)
    res = compute_rfm(df, model, AS_OF)
    assert res.frequency_basis == "visit_date"
    assert res.customers.iloc[0]["frequency"] == 2
    # an order_id column that is entirely empty falls back the same way
    res2 = compute_rfm(visits([("A", ago(5), 300.0), ("A", ago(9), 50.0)]), model, AS_OF)
    assert res2.frequency_basis == "visit_date" and res2.customers.iloc[0]["frequency"] == 2


def test_rows_missing_an_order_number(model):
    df = visits([
        ("A", ago(5), 300.0, "W1"),
        ("A", ago(5), 20.0),  # same day as W1: a line of that order
        ("A", ago(8), 80.0),  # another day, no number: a visit of its own
    ])
    res = compute_rfm(df, model, AS_OF)
    assert res.customers.iloc[0]["frequency"] == 2
    note = [q for q in res.quality if q["kind"] == "missing_order_id"]
    assert len(note) == 1 and note[0]["row"] == 3


def test_rows_after_as_of_are_dropped_and_logged(model):
    df = visits([
        ("A", ago(10), 300.0, "O1"),
        ("A", ago(-2), 900.0, "O2"),  # dated after the as-of date
        ("B", ago(-1), 100.0, "O3"),
    ])
    res = compute_rfm(df, model, AS_OF)
    assert res.customers["customer_id"].tolist() == ["A"]
    row = res.customers.iloc[0]
    assert (row.recency_days, row.frequency, row.monetary) == (10, 1, 300.0)
    future = [q for q in res.quality if q["kind"] == "after_as_of"]
    assert [(q["row"], q["customer_id"]) for q in future] == [(3, "A"), (4, "B")]
    assert ago(-2) in future[0]["detail"]


def test_window_excludes_old_rows(model):
    df = visits([("A", ago(364), 100.0, "O1"), ("A", ago(365), 5000.0, "O0"),
                 ("B", ago(400), 100.0, "O2")])
    res = compute_rfm(df, model, AS_OF)
    assert res.customers["customer_id"].tolist() == ["A"]
    assert res.customers.iloc[0]["monetary"] == 100.0
    assert res.window_start == AS_OF - timedelta(days=364)
    assert any(q["kind"] == "outside_window" and q["detail"].startswith("2 行") for q in res.quality)


def test_monetary_mean(model):
    mean_model = replace(model, monetary="mean")
    df = visits([("A", ago(5), 300.0, "O1"), ("A", ago(9), 100.0, "O2"),
                 ("A", ago(9), -100.0, "R1")])
    res = compute_rfm(df, mean_model, AS_OF)
    row = res.customers.iloc[0]
    assert res.monetary_basis == "mean"
    assert (row.frequency, row.monetary, row.revenue) == (2, 150.0, 300.0)


def test_amounts_summed_in_fen(model):
    # 0.1 + 0.2 in floats is 0.30000000000000004; money is summed in whole fen
    df = visits([("A", ago(5), 0.1, "O1"), ("A", ago(6), 0.2, "O2"), ("B", ago(5), 0.3, "O3")])
    c = compute_rfm(df, model, AS_OF).customers.set_index("customer_id")
    assert c.loc["A", "monetary"] == c.loc["B", "monetary"] == 0.3
    assert c.loc["A", "m"] == c.loc["B", "m"]


def test_unit_vin(model):
    vin_model = replace(model, unit="vin")
    df = visits([("OWNER1", ago(5), 300.0, "O1"), ("OWNER1", ago(50), 900.0, "O2"),
                 ("OWNER2", ago(3), 100.0, "O3")],
                vin=["VIN-A", "VIN-B", "VIN-B"])  # VIN-B was sold to OWNER2
    res = compute_rfm(df, vin_model, AS_OF)
    c = res.customers.set_index("vin")
    assert sorted(c.index) == ["VIN-A", "VIN-B"]
    assert c.loc["VIN-B", "customer_id"] == "OWNER2"  # owner on the latest visit
    assert c.loc["VIN-B", "frequency"] == 2 and c.loc["VIN-B", "monetary"] == 1000.0
    assert res.to_json()["customers"][0]["vin"] in {"VIN-A", "VIN-B"}
    with pytest.raises(InputError, match="vin"):
        compute_rfm(df.drop(columns="vin"), vin_model, AS_OF)


def test_missing_required_column(model):
    with pytest.raises(InputError, match="amount"):
        compute_rfm(visits([("A", ago(1), 1.0)]).drop(columns="amount"), model, AS_OF)


def test_rows_with_missing_values_are_logged(model):
    df = visits([("A", ago(5), 300.0, "O1"), ("B", ago(5), 100.0, "O2")])
    df.loc[1, "amount"] = pd.NA
    res = compute_rfm(df, model, AS_OF)
    assert res.customers["customer_id"].tolist() == ["A"]
    miss = [q for q in res.quality if q["kind"] == "missing_value"]
    assert [(q["row"], q["customer_id"]) for q in miss] == [(3, "B")]
    assert "amount" in miss[0]["detail"]


def test_ids_stay_text_and_latest_name_wins(model):
    df = visits([("007", ago(50), 100.0, "O1"), ("007", ago(5), 100.0, "O2")],
                name=["林女士", "林芳"], phone=["013800000000", None])
    res = compute_rfm(df, model, AS_OF)
    row = res.customers.iloc[0]
    assert row.customer_id == "007"
    assert row["name"] == "林芳"  # the latest visit's name
    assert row.phone == "013800000000"  # the latest non-empty phone, leading zero kept
    conflict = [q for q in res.quality if q["kind"] == "id_name_conflict"]
    assert len(conflict) == 1 and "林女士" in conflict[0]["detail"] and "林芳" in conflict[0]["detail"]


def test_kol_with_low_m_is_flagged(fixed):
    df = visits([("K", ago(5), 100.0, "O1"), ("V", ago(5), 30000.0, "O2"),
                 ("P", ago(5), 100.0, "O3")], kol=[True, True, None])
    c = compute_rfm(df, fixed, AS_OF).customers.set_index("customer_id")
    assert bool(c.loc["K", "kol_flag"]) is True  # KOL, low M: flagged, not buried
    assert bool(c.loc["V", "kol"]) and not bool(c.loc["V", "kol_flag"])  # high M: no flag
    assert not bool(c.loc["P", "kol"]) and not bool(c.loc["P", "kol_flag"])


def test_red_alert_and_strategy(fixed):
    df = visits([("A", ago(200), 30000.0, "O1")])  # R low, F low, M high → 重要挽留
    row = compute_rfm(df, fixed, AS_OF).customers.iloc[0]
    assert row.type_no == 4 and bool(row.red_alert)
    assert "30–60" in row.strategy


def test_summary_flags_far_from_usual(fixed):
    # 60 lost customers, nobody else: 流失 100% is far above 25–35%, 重要价值 0% far below
    recs = [(f"C{i}", ago(300), 100.0, f"O{i}") for i in range(60)]
    res = compute_rfm(visits(recs), fixed, AS_OF)
    s = res.summary.set_index("type_no")
    assert s.loc[8, "share_pct"] == 100.0 and s.loc[8, "share_flag"] == "above"
    assert s.loc[1, "share_flag"] == "below"
    assert s.loc[8, "revenue"] == 6000.0 and s.loc[8, "revenue_share_pct"] == 100.0
    assert bool(s.loc[2, "red_alert"]) and not bool(s.loc[1, "red_alert"])
    # too few customers to judge a distribution: no flags
    few = compute_rfm(visits(recs[:10]), fixed, AS_OF).summary
    assert few["share_flag"].isna().all()


def test_to_json_plain_types(model):
    df = visits([("A", ago(5), 300.5, "O1"), ("B", ago(9), 100.0, "O2"),
                 ("B", ago(-1), 1.0, "O3")], name=["甲", "乙", "乙"])
    res = compute_rfm(df, model, AS_OF)
    out = res.to_json()
    assert json.loads(json.dumps(out)) == out
    assert {"as_of", "edges", "customers", "summary"} <= set(out)
    assert out["as_of"] == AS_OF.isoformat()
    first = out["customers"][0]
    assert {"customer_id", "recency_days", "frequency", "monetary", "r", "f", "m", "type"} <= set(first)
    assert all(type(first[k]) is int for k in ("recency_days", "frequency", "r", "f", "m", "type"))
    assert type(first["monetary"]) is float
    assert out["edges"] == res.edges.to_dict()


# ---------------------------------------------------------------------------------------
# row order never changes a result
# ---------------------------------------------------------------------------------------
visit_records = st.lists(
    st.tuples(
        st.sampled_from(["A", "B", "C", "D", "E", "F", "G"]),
        st.integers(min_value=-3, max_value=400),  # days before as-of (negative: future)
        st.sampled_from([-120.0, 0.0, 0.1, 0.2, 99.99, 100.0, 250.5, 1800.0]),
        st.sampled_from([None, "W1", "W2", "W3", "W4"]),
    ),
    min_size=0, max_size=40,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recs=visit_records, seed=st.integers(0, 2**32 - 1),
       binning=st.sampled_from(["quantile", "thresholds"]))
def test_row_order_never_changes_a_result(model, recs, seed, binning):
    m = replace(model, binning=binning)
    df = visits([(c, ago(d), a, o) for c, d, a, o in recs])
    perm = np.random.default_rng(seed).permutation(len(df))
    shuffled = df.iloc[perm].reset_index(drop=True)  # each record keeps its Excel row
    a = compute_rfm(df, m, AS_OF)
    b = compute_rfm(shuffled, m, AS_OF)
    assert scores_of(a) == scores_of(b)
    pd.testing.assert_frame_equal(a.customers, b.customers)
    assert a.quality == b.quality
    assert a.edges == b.edges


@settings(max_examples=100, deadline=None)
@given(recs=visit_records)
def test_quantile_edges_reproduce_their_scores(model, recs):
    df = visits([(c, ago(d), a, o) for c, d, a, o in recs])
    first = compute_rfm(df, model, AS_OF)
    # through JSON, as a stored snapshot would carry them
    edges = Edges.from_dict(json.loads(json.dumps(first.edges.to_dict())))
    again = compute_rfm(df, model, AS_OF, edges=edges)
    assert again.binning == "frozen"
    assert scores_of(again) == scores_of(first)


# ---------------------------------------------------------------------------------------
# frozen edges: month-over-month comparability
# ---------------------------------------------------------------------------------------
def test_frozen_edges_keep_unchanged_customers_scores(model):
    rng = np.random.default_rng(3)
    base = [(f"C{i:03d}", ago(int(rng.integers(0, 300))), float(rng.integers(1, 200) * 50),
             f"O{i}") for i in range(200)]
    month1 = compute_rfm(visits(base), model, AS_OF)
    # next export: the same 200 customers unchanged, plus 100 new big spenders
    new = [(f"N{i:03d}", ago(int(rng.integers(0, 300))), 50000.0 + i, f"P{i}") for i in range(100)]
    df2 = visits(base + new)
    requantiled = compute_rfm(df2, model, AS_OF)
    frozen = compute_rfm(df2, model, AS_OF, edges=month1.edges)

    old = scores_of(month1)
    moved = sum(scores_of(requantiled)[k] != v for k, v in old.items())
    assert moved > 0  # re-computed quantiles shift unchanged customers ...
    assert {k: scores_of(frozen)[k] for k in old} == old  # ... frozen edges do not
    assert frozen.edges == month1.edges and frozen.binning == "frozen"


def test_edges_semantics_and_validation():
    e = Edges(recency_days=(200, 100, 30, 7), frequency=(2, 3, 4, 6),
              monetary=(1000, 2000, None, None))
    assert e.score("recency_days", np.array([7, 8, 30, 31, 200, 201])).tolist() == [5, 4, 4, 3, 2, 1]
    assert e.score("frequency", np.array([1, 2, 5, 6, 60])).tolist() == [1, 2, 4, 5, 5]
    assert e.score("monetary", np.array([999.99, 1000.0, 10**7])).tolist() == [1, 2, 3]
    lines = e.describe()
    assert lines["R"][0] == "5 分：≤ 7天" and lines["M"][0] == "5 分：无人达到"
    with pytest.raises(UsageError):
        Edges(recency_days=(7, 30, 100, 200), frequency=(2, 3, 4, 6), monetary=(1, 2, 3, 4))
    with pytest.raises(UsageError):
        Edges.from_dict({"recency_days": [1, 2], "frequency": [], "monetary": []})


def test_frozen_edges_need_the_same_m_basis(model):
    df = visits([("A", ago(5), 300.0, "O1")])
    edges = compute_rfm(df, model, AS_OF).edges
    with pytest.raises(UsageError):
        compute_rfm(df, replace(model, monetary="mean"), AS_OF, edges=edges)


# ---------------------------------------------------------------------------------------
# migration
# ---------------------------------------------------------------------------------------
def _snapshot(types: dict[str, int]) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": pd.array(list(types), dtype="str"),
                         "type_no": list(types.values())})


def test_migration_matrix_and_key_flows(model):
    prev = _snapshot({"a": 1, "b": 1, "c": 1, "d": 3, "e": 3, "f": 8, "g": 2})
    curr = _snapshot({"a": 1, "b": 2, "c": 2, "d": 1, "e": 7, "f": 8, "h": 7})
    mig = migrate(prev, curr, model)
    mx = mig.matrix
    assert list(mx.index) == [1, 2, 3, 4, 5, 6, 7, 8, "new"]
    assert list(mx.columns) == [1, 2, 3, 4, 5, 6, 7, 8, "departed"]
    assert mx.loc[1, 1] == 1 and mx.loc[1, 2] == 2 and mx.loc[3, 1] == 1 and mx.loc[3, 7] == 1
    assert mx.loc[8, 8] == 1 and mx.loc[2, "departed"] == 1 and mx.loc["new", 7] == 1
    assert int(mx.to_numpy().sum()) == 8  # 7 previous + 1 new
    assert mx.loc[[1, 2, 3, 4, 5, 6, 7, 8]].sum(axis=1).tolist() == [3, 1, 2, 0, 0, 0, 0, 1]

    flows = {f["key"]: f for f in mig.flows}
    assert flows["churn_warning"]["customer_ids"] == ["b", "c"]
    assert flows["churn_warning"]["count"] == 2 and flows["churn_warning"]["base"] == 3
    assert flows["conversion"]["customer_ids"] == ["d"]
    assert flows["conversion"]["rate_pct"] == 50.0 and flows["conversion"]["target_pct"] == 50

    s = mig.shares.set_index("type_no")
    assert s.loc[1, "prev_customers"] == 3 and s.loc[1, "curr_customers"] == 2
    assert s.loc[1, "prev_share_pct"] == round(300 / 7, 2)
    assert s.loc[7, "change_pp"] == round(200 / 7, 2)
    out = mig.to_json()
    assert json.loads(json.dumps(out)) == out


def test_migration_from_two_monthly_runs(fixed):
    # month 1: 林 is new with one big visit (重要发展); 王 is a champion
    m1 = visits([
        ("LIN", ago(10), 18000.0, "L1"),
        *[("WANG", ago(5 + 20 * k), 3000.0, f"W{k}") for k in range(5)],
    ])
    # later run (as-of + 200 days): 林 came back 4 more times; 王 stopped coming, but his
    # visits are still inside the 365-day window, so F and M stay high while R drops
    as_of2 = AS_OF + timedelta(days=200)

    def later(d: int) -> str:
        return (as_of2 - timedelta(days=d)).isoformat()

    m2 = pd.concat([m1, visits([("LIN", later(k * 30 + 3), 1500.0, f"L{k + 2}")
                                for k in range(4)])], ignore_index=True)
    r1 = compute_rfm(m1, fixed, AS_OF)
    r2 = compute_rfm(m2, fixed, as_of2, edges=r1.edges)
    t1 = dict(zip(r1.customers["customer_id"], r1.customers["type_no"], strict=True))
    t2 = dict(zip(r2.customers["customer_id"], r2.customers["type_no"], strict=True))
    assert t1 == {"LIN": 3, "WANG": 1}
    assert t2 == {"LIN": 1, "WANG": 2}
    mig = migrate(r1, r2, fixed)
    flows = {f["key"]: f["customer_ids"] for f in mig.flows}
    assert flows == {"churn_warning": ["WANG"], "conversion": ["LIN"]}
    assert mig.prev_as_of == AS_OF and mig.curr_as_of == as_of2


def test_migration_rejects_duplicate_ids(model):
    with pytest.raises(InputError, match="重复"):
        migrate(_snapshot({"a": 1}), pd.DataFrame({"customer_id": ["a", "a"], "type_no": [1, 2]}),
                model)


# ---------------------------------------------------------------------------------------
# the shared ingest, JSON text, snapshots
# ---------------------------------------------------------------------------------------
SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "visits.csv"


def test_sample_export_through_the_shared_ingest(model, fixed):
    from tierctl.io.ingest import read_export

    ex = read_export(SAMPLE, model.columns)
    assert ex.encoding == "gb18030" and ex.headers["order_id"] == "结算单号"
    assert ex.frame["customer_id"].iloc[0].startswith("0")  # ids stay text
    assert int(ex.frame["_row"].iloc[0]) == 3  # a title line above the header
    now = compute_rfm(ex.frame, fixed, date(2026, 11, 24))
    year_ago = compute_rfm(ex.frame, fixed, date(2025, 11, 24))
    lin_now = now.customers.set_index("customer_id").loc["010086"]
    lin_then = year_ago.customers.set_index("customer_id").loc["010086"]
    # seed 003, with the business thresholds: 5-1-4 重要发展 → 5-4-4 重要价值
    assert (lin_then.rfm, lin_then.type_name) == ("5-1-4", "重要发展")
    assert (lin_now.rfm, lin_now.type_name) == ("5-4-4", "重要价值")
    kinds = {q["kind"] for q in now.quality}
    assert {"after_as_of", "refund", "id_name_conflict"} <= kinds
    assert now.customers.set_index("customer_id").loc["010099", "kol_flag"]


def test_model_columns_are_the_shared_column_set(model):
    from tierctl.io.ingest import ColumnSet

    assert isinstance(model.columns, ColumnSet)
    assert "结算单号" in model.columns.specs["order_id"].aliases
    assert not model.columns.specs["vin"].required
    vin = model.with_unit("vin")
    assert vin.unit == "vin" and vin.columns.specs["vin"].required
    assert vin.with_unit("owner").columns.specs["vin"].required is False
    with pytest.raises(UsageError):
        model.with_unit("car")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recs=visit_records, ids=st.lists(st.text(min_size=0, max_size=6), min_size=7, max_size=7),
       vin=st.booleans())
def test_json_text_equals_to_json(model, recs, ids, vin):
    # any id text (quotes, backslashes, control characters, emoji, empty) survives
    names = dict(zip("ABCDEFG", ids, strict=True))
    df = visits([(names[c] or None, ago(d), a, o) for c, d, a, o in recs],
                vin=[f"V{c}" for c, *_ in recs])
    res = compute_rfm(df, model.with_unit("vin") if vin else model, AS_OF)
    assert json.loads(res.to_json_text()) == res.to_json()


def test_json_text_numbers():
    from tierctl.rfm import json_records

    frame = {"m": pd.Series([0.1 + 0.2, 100.0, -0.0, 1e20, float("nan"), 12345678901.23]),
             "n": pd.Series([1, 2, 3, 4, 5, 6], dtype="int8"),
             "b": pd.Series([True, False, True, False, True, False])}
    rows = [json.loads(t) for t in json_records(frame).to_pylist()]
    assert [r["m"] for r in rows[:4]] == [0.1 + 0.2, 100.0, -0.0, 1e20]
    assert rows[4]["m"] is None and type(rows[1]["m"]) is float
    assert [r["n"] for r in rows] == [1, 2, 3, 4, 5, 6] and rows[0]["b"] is True


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c", "RO1", "RO2"])), max_size=30),
       sort=st.booleans())
def test_factorize_runs_is_a_factorization(values, sort):
    from tierctl.rfm.engine import _factorize_runs

    if sort:
        present = sorted(v for v in values if v is not None)
        it = iter(present)
        values = [None if v is None else next(it) for v in values]
    s = pd.Series(values, dtype="str")
    codes, uniq = _factorize_runs(s)
    ref, _ = pd.factorize(s)
    assert ((codes < 0) == (ref < 0)).all()
    for i in range(len(s)):
        if codes[i] >= 0:
            assert uniq[codes[i]] == values[i]
        for j in range(len(s)):
            assert (codes[i] == codes[j]) == (ref[i] == ref[j])


def test_snapshot_round_trip_and_rescore(model):
    from tierctl.io.ingest import read_export
    from tierctl.rfm import customers_from_snapshot, rescore, snapshot_meta, snapshot_rows
    from tierctl.store import Store

    frame = read_export(SAMPLE, model.columns).frame
    prev = compute_rfm(frame, model, date(2026, 10, 24))
    curr = compute_rfm(frame, model, date(2026, 11, 24))
    with Store.open(":memory:") as store:
        ids = [store.save_snapshot("rfm", r.as_of, "rfm", "visits.csv", None, snapshot_rows(r), snapshot_meta(r))
               for r in (prev, curr)]
        infos = [store.snapshot(i) for i in ids]
        stored = [customers_from_snapshot(store.snapshot_rows(i), info.meta["unit"]) for i, info in zip(ids, infos,
                                                                                                          strict=True)]
    edges = Edges.from_dict(infos[0].meta["edges"])
    assert edges == prev.edges
    for col in ("customer_id", "recency_days", "frequency", "monetary", "r", "f", "m", "rfm", "type_no",
                "type_name", "red_alert", "kol_flag"):
        assert stored[1][col].tolist() == curr.customers[col].tolist(), col
    # re-scoring the stored values on last month's edges = computing with frozen edges
    frozen = compute_rfm(frame, model, date(2026, 11, 24), edges=prev.edges)
    again = rescore(stored[1], model, edges)
    for col in ("r", "f", "m", "rfm", "type_no", "type_name", "red_alert", "kol_flag"):
        assert again[col].tolist() == frozen.customers[col].tolist(), col
    mig = migrate(stored[0], again, model, prev_edges=edges, curr_edges=edges,
                  prev_as_of=prev.as_of, curr_as_of=curr.as_of)
    assert mig.to_json() == migrate(prev, frozen, model).to_json()
    assert mig.edges["same_scale"] and "同一套" in mig.edges["note"]
    with pytest.raises(UsageError):
        rescore(stored[1], replace(model, monetary="mean"), edges)


def test_flow_customers_lists_the_people_behind_a_flow(fixed):
    from tierctl.rfm import flow_customers

    m1 = visits([("LIN", ago(10), 18000.0, "L1"), *[("WANG", ago(5 + 20 * k), 3000.0, f"W{k}") for k in range(5)]],
                name=["林女士"] + ["王先生"] * 5)
    as_of2 = AS_OF + timedelta(days=200)
    m2 = pd.concat([m1, visits([("LIN", (as_of2 - timedelta(days=k * 30 + 3)).isoformat(), 1500.0, f"L{k + 2}")
                                for k in range(4)], name=["林女士"] * 4)], ignore_index=True)
    r1 = compute_rfm(m1, fixed, AS_OF)
    r2 = compute_rfm(m2, fixed, as_of2, edges=r1.edges)
    mig = migrate(r1, r2, fixed)
    people = flow_customers(mig, r1.customers, r2.customers, "customer_id")
    got = {(r["flow"], r["customer_id"], r["name"], r["prev_rfm"], r["rfm"]) for r in people.to_dict("records")}
    assert got == {("churn_warning", "WANG", "王先生", "5-4-4", "2-4-4"), ("conversion", "LIN", "林女士", "5-1-4", "5-4-5")}
