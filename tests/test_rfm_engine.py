"""The RFM grouping engine (tierctl.rfm.engine) against the plain pandas computation of the
same rules, on hypothesis-generated small visit tables (ties, refunds, missing order
numbers, shared order numbers included); bad input on the fast path; the JSON kernel
against json.dumps."""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierctl.errors import InputError
from tierctl.kernels.json_records import json_records
from tierctl.rfm import compute_rfm, load_rfm_model

AS_OF = date(2026, 11, 24)
TYPE_OF = {"HHH": 1, "LHH": 2, "HLH": 3, "LLH": 4, "HHL": 5, "LHL": 6, "HLL": 7, "LLL": 8}


@pytest.fixture(scope="module")
def model():
    return load_rfm_model()


def plain_rfm(visits: pd.DataFrame, as_of: date, window_days: int = 365) -> pd.DataFrame:
    """The rules written the obvious way, a visit at a time in plain Python (slow on a big
    table, no notes; written with a pandas groupby per customer it took twice the engine's
    time on these small tables)."""
    start = pd.Timestamp(as_of - timedelta(days=window_days - 1))
    end = pd.Timestamp(as_of)
    recs = [(c, d, round(a * 100), o) for c, d, a, o in zip(
        visits["customer_id"].tolist(), visits["visit_date"].tolist(), visits["amount"].tolist(),
        visits["order_id"].tolist(), strict=True)
        if not pd.isna(c) and not pd.isna(d) and not pd.isna(a) and start <= d <= end]
    vis = [(c, d, o) for c, d, cents, o in recs if cents >= 0]
    numbered = {(c, d) for c, d, o in vis if not pd.isna(o)}
    has_id = any(not pd.isna(o) for _c, _d, o in vis)
    rows = []
    for cid in sorted({c for c, _d, _o in vis}):
        mine = [(d, o) for c, d, o in vis if c == cid]
        if has_id:
            freq = (len({o for _d, o in mine if not pd.isna(o)})
                    + len({d for d, o in mine if pd.isna(o) and (cid, d) not in numbered}))
        else:
            freq = len({d for d, _o in mine})
        net = sum(cents for c, _d, cents, _o in recs if c == cid)
        rows.append({"customer_id": cid, "recency_days": (end - max(d for d, _o in mine)).days,
                     "frequency": freq, "monetary": net / 100})
    n = len(rows)
    for dim, col, sign in (("r", "recency_days", -1), ("f", "frequency", 1), ("m", "monetary", 1)):
        # good direction, worst = rank 1, ties share the lowest rank
        for row in rows:
            rank = 1 + sum(1 for other in rows if sign * other[col] < sign * row[col])
            row[dim] = (rank - 1) * 5 // max(n, 1) + 1
    for row in rows:
        row["type_no"] = TYPE_OF["".join("H" if row[k] >= 4 else "L" for k in ("r", "f", "m"))]
    return pd.DataFrame(rows, columns=["customer_id", "recency_days", "frequency", "monetary", "r", "f", "m",
                                       "type_no"])


visit_rows = st.lists(st.tuples(
    st.sampled_from(["A", "B", "C", "D", "E", "F", "007", None]),
    st.integers(-30, 400),  # days before the as-of date (negative: after it)
    st.sampled_from([0.0, 100.0, 100.0, 250.5, 999.99, -50.0, -100.0, 12000.0]),  # ties and refunds
    st.sampled_from(["RO1", "RO2", "RO3", "RO4", None, None]),
), min_size=0, max_size=40)


def frame_of(recs: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": pd.array([r[0] for r in recs], dtype="str"),
        "visit_date": pd.to_datetime([pd.Timestamp(AS_OF - timedelta(days=r[1])) for r in recs]),
        "amount": pd.array([r[2] for r in recs], dtype="float64"),
        "order_id": pd.array([r[3] for r in recs], dtype="str"),
        "_row": np.arange(3, 3 + len(recs)),
    })


@settings(max_examples=150, deadline=None)
@given(recs=visit_rows)
def test_engine_matches_plain_pandas(model, recs):
    visits = frame_of(recs)
    got = compute_rfm(visits, model, AS_OF).customers
    got = got.sort_values("customer_id").reset_index(drop=True)
    want = plain_rfm(visits, AS_OF)
    assert got["customer_id"].astype(str).tolist() == want["customer_id"].astype(str).tolist()
    for col in ("recency_days", "frequency", "r", "f", "m", "type_no"):
        assert got[col].astype(np.int64).tolist() == want[col].astype(np.int64).tolist(), col
    assert np.allclose(got["monetary"].to_numpy(float), want["monetary"].to_numpy(float))


@settings(max_examples=60, deadline=None)
@given(recs=visit_rows, seed=st.integers(0, 1000))
def test_row_order_never_changes_a_score(model, recs, seed):
    visits = frame_of(recs)
    shuffled = visits.sample(frac=1, random_state=seed).reset_index(drop=True)
    a = compute_rfm(visits, model, AS_OF).customers
    b = compute_rfm(shuffled, model, AS_OF).customers
    cols = ["customer_id", "recency_days", "frequency", "monetary", "rfm", "type_no"]
    pd.testing.assert_frame_equal(a[cols], b[cols])


def test_bad_amount_named_on_the_fast_path(model):
    visits = frame_of([("A", 1, 100.0, "RO1"), ("B", 2, 200.0, "RO2")])
    visits["amount"] = pd.array(["100", "一百"], dtype="str")
    with pytest.raises(InputError) as err:
        compute_rfm(visits, model, AS_OF)
    text = str(err.value) + repr(getattr(err.value, "problems", ""))
    assert "金额" in text and "一百" in text


def test_bad_export_cell_names_file_row_column_value(model, tmp_path):
    from tierctl.io.ingest import read_export

    path = tmp_path / "visits.csv"
    path.write_text("结算单号,客户编号,结算日期,结算金额\nRO1,C1,2026-11-01,100\nRO2,C2,2026-11-02,abc\n",
                    encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_export(path, model.columns)
    text = err.value.render() if hasattr(err.value, "render") else str(err.value)
    problems = getattr(err.value, "problems", [])
    shown = text + " ".join(f"{p.row} {p.column} {p.value}" for p in problems)
    assert "visits.csv" in shown and "abc" in shown and "3" in shown and "结算金额" in shown


def test_rows_after_as_of_reported_with_excel_row(model):
    visits = frame_of([("A", 1, 100.0, "RO1"), ("A", -3, 80.0, "RO2")])
    res = compute_rfm(visits, model, AS_OF)
    after = [q for q in res.quality if q["kind"] == "after_as_of"]
    assert [(q["row"], q["customer_id"]) for q in after] == [(4, "A")]
    assert int(res.customers["frequency"].iloc[0]) == 1


@settings(max_examples=100, deadline=None)
@given(vals=st.lists(st.tuples(st.one_of(st.none(), st.text(max_size=6)),
                               st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
                               st.integers(-10**12, 10**12), st.booleans()), max_size=12))
def test_json_records_matches_json_dumps(vals):
    cols = {"t": pd.Series([v[0] for v in vals], dtype="str"),
            "x": pd.Series([np.nan if v[1] is None else v[1] for v in vals], dtype="float64"),
            "i": pd.Series([v[2] for v in vals], dtype="int64"),
            "b": pd.Series([v[3] for v in vals], dtype="bool")}
    got = [json.loads(t) for t in json_records(cols).to_pylist()]
    want = [json.loads(json.dumps({"t": v[0], "x": v[1], "i": v[2], "b": v[3]}, ensure_ascii=False)) for v in vals]
    assert got == want
