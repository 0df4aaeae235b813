"""The daily loop's speed plumbing (tierctl/kernels) against the plain versions."""

from __future__ import annotations

import datetime as dt
import hashlib
import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from tierctl.kernels.distinct import map_distinct
from tierctl.kernels.file_hash import sha256_file, sha256_in_background
from tierctl.kernels.radix_dates import EPOCH, dates_by_distinct
from tierctl.kernels.records import column_records


def _weekday_add(start: dt.date, n: int, m: int) -> dt.date:
    """A stand-in for the calendar: ``n`` days on, skipping weekends in mode 0, capped in 1."""
    if m == 2:
        return start + dt.timedelta(days=n)
    d, left = start, n
    while left > 0:
        d += dt.timedelta(days=1)
        left -= d.weekday() < 5
    return min(d, start + dt.timedelta(days=n)) if m == 1 else d


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-800, 30000), st.integers(0, 40), st.integers(0, 2)), max_size=60))
def test_dates_by_distinct_equal_the_call_per_row(rows):
    start = np.array([r[0] for r in rows], dtype=np.int64)
    n = np.array([r[1] for r in rows], dtype=np.int64)
    mode = np.array([r[2] for r in rows], dtype=np.int64)
    fast = dates_by_distinct(start, n, mode, _weekday_add)
    plain = [np.datetime64(_weekday_add(EPOCH + dt.timedelta(days=int(s)), int(k), int(m)), "D")
             for s, k, m in rows]
    assert fast.dtype == np.dtype("datetime64[D]") and fast.tolist() == np.array(plain, dtype="datetime64[D]").tolist()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(["P0", "P1", "P2", "P3", "X"])), max_size=50))
def test_map_distinct_equals_the_call_per_value(labels):
    rank = {"P0": 0, "P1": 1, "P2": 2, "P3": 3}
    s = pd.Series(labels, dtype=object)
    fast = map_distinct(s, lambda u: float(rank.get(u, np.nan)), np.nan, float)
    plain = [np.nan if v is None else float(rank.get(v, np.nan)) for v in labels]
    assert len(fast) == len(plain)
    assert all((math.isnan(a) and math.isnan(b)) or a == b for a, b in zip(fast.tolist(), plain, strict=True))
    times = pd.Series(pd.to_datetime([None if v is None else f"2026-11-2{len(v)}T09:00:00+08:00" for v in labels]))
    iso = map_distinct(times, lambda u: u.isoformat())
    assert iso.tolist() == [None if pd.isna(t) else t.isoformat() for t in times]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-5, 10**6), st.one_of(st.none(), st.floats(-1e6, 1e6)),
                          st.one_of(st.none(), st.text(max_size=5))), max_size=40))
def test_column_records_equal_the_rows_one_by_one(rows):
    f = pd.DataFrame({"a": pd.Series([r[0] for r in rows], dtype="int64"),
                      "b": pd.Series([np.nan if r[1] is None else r[1] for r in rows], dtype=float),
                      "c": pd.Series([r[2] for r in rows], dtype=object)})
    fast = column_records(f, ["a", "b", "c", "missing"], {"a": "A"})
    plain = [{"A": row["a"], "b": None if pd.isna(row["b"]) else row["b"], "c": row["c"], "missing": None}
             for row in f.astype(object).to_dict("records")]
    assert fast == plain
    assert all(type(r["A"]) is int for r in fast)


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=3 * 1024))
def test_the_file_hash_on_a_thread_equals_hashlib(tmp_path_factory, data):
    p = tmp_path_factory.mktemp("h") / "x.bin"
    p.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert sha256_file(p) == expected == sha256_in_background(p)()
    assert sha256_file(p.parent / "absent") is None
