"""Issue 19: the Arrow fast ways through typing a column (io/values.py) give what the
careful path gives — the same values, the same blanks, the same bad cells."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from tierctl.io.ingest import ColumnSpec
from tierctl.io.values import _arrow_typed, _edge_candidates, _needs_trim, convert, is_empty_text

SETTINGS = settings(max_examples=150, deadline=None)
SPACES = " \t\n\r\x0b\x0c\x1c\x1f\u0085\u00a0\u1680\u2000\u2005\u200a\u2028\u2029\u202f\u205f\u3000"
cells_st = st.lists(st.one_of(st.none(), st.text(alphabet=SPACES + "甲。」—“A1\u200b", max_size=5)), max_size=20)


def plain_needs_trim(cells: list[str | None]) -> bool:
    """The plain version: Arrow's look at every cell's first and last character."""
    arr = pa.array(cells, pa.large_string())
    return any(pc.any(pc.utf8_is_space(pc.utf8_slice_codeunits(arr, a, b))).as_py()
               for a, b in ((0, 1), (-1, 2**31 - 1)))


@SETTINGS
@given(cells_st, st.sampled_from([pa.string(), pa.large_string()]), st.integers(0, 3))
def test_the_byte_look_finds_every_cell_with_a_space_at_an_edge(cells, typ, cut):
    arr = pa.array(cells, typ).slice(min(cut, len(cells)))  # (a slice: offsets not from 0)
    kept = cells[min(cut, len(cells)):]
    assert _needs_trim(pa.chunked_array([arr], typ), pc) == plain_needs_trim(kept)
    cand = set(_edge_candidates(arr).tolist())
    for i, c in enumerate(kept):
        if c and (c[0] in SPACES or c[-1] in SPACES or c != c.strip()):
            assert i in cand


def both(cells: list[str | None]) -> tuple[pd.Series, pd.Series]:
    return (pd.Series(cells, dtype=pd.StringDtype("pyarrow", na_value=np.nan)),
            pd.Series(cells, dtype=pd.StringDtype("python", na_value=np.nan)))


def same(fast: pd.Series, slow: pd.Series) -> None:
    assert str(fast.dtype) == str(slow.dtype)
    assert fast.isna().tolist() == slow.isna().tolist()
    assert fast.dropna().tolist() == slow.dropna().tolist()


number_st = st.lists(st.one_of(st.none(), st.sampled_from(["", " ", "12", "3.5", " 7", "8 ", "1万", "x", "-2", "0",
                                                       "1e5", "nan", "inf", "-Infinity", ".5", "+3"])),
                     max_size=15)


@SETTINGS
@given(number_st, st.sampled_from(["number", "int"]), st.sampled_from([None, 0.0]))
def test_numbers_read_by_arrow_equal_the_careful_path(cells, kind, low):
    spec = ColumnSpec("followers", kind, ("粉丝数",), min=low)
    arrow, plain = both(cells)
    fast, fast_errs = convert(arrow, spec)
    slow, slow_errs = convert(plain, spec)
    same(fast, slow)
    assert fast_errs == slow_errs


@SETTINGS
@given(st.lists(st.one_of(st.none(), st.sampled_from(["", "2026-11-23", "2026/11/23", " 2026-11-01", "2026年1月2日",
                                                       "45000", "昨天", "2026-02-30"])), max_size=15))
def test_dates_read_by_arrow_equal_the_careful_path(cells):
    spec = ColumnSpec("wait_start", "date", ("登记日期",))
    arrow, plain = both(cells)
    (fast, fast_errs), (slow, slow_errs) = convert(arrow, spec), convert(plain, spec)
    same(fast, slow)
    assert fast_errs == slow_errs


@SETTINGS
@given(st.lists(st.one_of(st.none(), st.sampled_from(["", "是", "否", " 是", "Yes", "no", "1", "0", "也许", "√"])),
                max_size=15))
def test_yes_no_read_by_arrow_equal_the_careful_path(cells):
    spec = ColumnSpec("negative_post", "bool", ("社媒负面",))
    arrow, plain = both(cells)
    (fast, fast_errs), (slow, slow_errs) = convert(arrow, spec), convert(plain, spec)
    same(fast, slow)
    assert fast_errs == slow_errs


def test_a_plainly_spelt_column_takes_the_arrow_way_and_an_odd_one_does_not():
    arrow, plain = both(["是", "", None, "否"])
    spec = ColumnSpec("negative_post", "bool", ("社媒负面",))
    assert _arrow_typed(arrow, spec).tolist() == [True, pd.NA, pd.NA, False]
    assert _arrow_typed(plain, spec) is None  # not read by Arrow
    assert _arrow_typed(both([" 是"])[0], spec) is None  # a space: the careful path trims it
    assert _arrow_typed(both(["2026-11-23", "2026/11/23"])[0], ColumnSpec("d", "date", ("d",))) is None


@SETTINGS
@given(cells_st)
def test_empty_text_is_what_comparing_with_an_empty_string_gives(cells):
    arrow, plain = both(cells)
    want = (plain == "").to_numpy(dtype=bool, na_value=True).tolist()  # (a missing cell is not "")
    assert is_empty_text(arrow).tolist() == want
    assert is_empty_text(plain).tolist() == want


def test_an_endless_number_is_a_bad_cell_not_a_crash():
    """Arrow and pandas both read "inf"; a count or an amount cannot be endless: the cell is
    reported like any other unreadable number (it crashed the whole-number check before).
    ("nan", what a pandas-made export writes for an empty cell, stays an empty cell.)"""
    for kind in ("int", "number"):
        spec = ColumnSpec("followers", kind, ("粉丝数",))
        for col in both(["3", "inf", "-Infinity", "nan"]):
            vals, errs = convert(col, spec)
            assert [(i, v, m) for i, v, m in errs] == [(1, "inf", "应为数字"), (2, "-Infinity", "应为数字")]
            assert vals.isna().tolist() == [False, True, True, True]
