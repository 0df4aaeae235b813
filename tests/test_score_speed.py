"""Issue 19, the score side: the fast paths keep the exact results and the checks, and
save the copies (memory) that made tierctl score heavier than the DuckDB peer."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tierctl.io.ingest import ColumnSpec
from tierctl.io.values import convert


def _buffer(s: pd.Series) -> int:
    return s.array._pa_array.chunk(0).buffers()[2].address


def test_text_with_nothing_to_trim_keeps_the_readers_buffers():
    spec = ColumnSpec("name", "text", ("姓名",))
    col = pd.Series(["张三", "李四", None, "王五"], dtype=pd.StringDtype("pyarrow", na_value=np.nan))
    typed, errs = convert(col, spec)
    assert errs == [] and typed.tolist()[:2] == ["张三", "李四"] and typed.isna().tolist() == [False, False, True, False]
    assert _buffer(typed) == _buffer(col)  # no copy of the text


def test_text_with_a_space_at_either_end_is_still_trimmed():
    spec = ColumnSpec("name", "text", ("姓名",))
    for cells in (["张三 ", "李四"], ["张三", "\u3000李四"], ["张三", "   "]):
        col = pd.Series(cells, dtype=pd.StringDtype("pyarrow", na_value=np.nan))
        typed, _ = convert(col, spec)
        assert typed.dropna().tolist() == [c.strip() for c in cells if c.strip()]


from hypothesis import example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tierctl.io.writers import neutralise, neutralise_frame  # noqa: E402

_cells = st.lists(st.one_of(st.none(), st.text(alphabet="=+-@\t\r甲A1 '", max_size=4)), min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(_cells)
@example(["=", "'="])  # two categories that become one text once neutralised
@example(["+1", None, "'+1", "+1", "甲"])
def test_neutralise_frame_equals_the_cell_by_cell_rule(cells):
    """The vectorised look (Arrow text, categories, object columns) marks exactly the
    cells the one-cell rule marks."""
    frame = pd.DataFrame({
        "arrow": pd.Series(cells, dtype=pd.StringDtype("pyarrow", na_value=np.nan)),
        "object": pd.Series(cells, dtype=object),
        "cat": pd.Categorical(cells),
    })
    out = neutralise_frame(frame)
    want = [None if c is None else neutralise(c) for c in cells]
    for col in frame.columns:
        got = [None if v is None or (isinstance(v, float) and np.isnan(v)) else v for v in out[col].tolist()]
        assert got == want, col


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet="=+-@\t\r甲A1 '", max_size=3), max_size=12),
       st.sampled_from(["string", "large_string"]), st.integers(0, 3), st.integers(1, 3))
def test_the_byte_look_marks_what_the_regex_marks(cells, typ, cut, pieces):
    """The first-byte look of the CSV's neutralising marks exactly the cells the regex
    marks, on sliced and chunked Arrow text with empty cells anywhere."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from tierctl.io.writers import _DANGER_BYTES, _DANGER_RE, _starts_with_byte

    arr = pa.array(cells, getattr(pa, typ)()).slice(min(cut, len(cells)))
    step = max(1, -(-len(arr) // pieces))
    chunked = pa.chunked_array([arr.slice(i, step) for i in range(0, len(arr), step)] or [arr], arr.type)
    got = _starts_with_byte(chunked, _DANGER_BYTES)
    assert got is not None
    assert got.tolist() == pc.match_substring_regex(chunked, _DANGER_RE).to_numpy(zero_copy_only=False).tolist()


from tierctl.kernels.packed_sort import urgency_order  # noqa: E402


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 50), st.integers(0, 9)), max_size=40),
       st.sets(st.text(alphabet="ab1张", min_size=1, max_size=3), min_size=40, max_size=40), st.integers(1, 4))
def test_urgency_order_of_rows_already_in_key_order_is_the_plain_sort(rows, keys, chunks):
    """Rows whose keys already increase (a CRM exports by id, in chunks as a CSV is read)
    take the stable sort of the packed number; the order is the four-key sort's."""
    import pyarrow as pa

    ks = sorted(keys, key=str.encode)[: len(rows)]
    step = max(1, -(-len(ks) // chunks))
    arr = pa.chunked_array([ks[i:i + step] for i in range(0, len(ks), step)] or [[]], pa.large_string())
    key = pd.Series(arr, dtype=pd.StringDtype("pyarrow", na_value=np.nan))
    rank, total, days = (np.array([r[j] for r in rows], dtype=np.int64) for j in range(3))
    got = list(urgency_order(rank, total, days, key))
    assert got == sorted(range(len(rows)), key=lambda i: (rank[i], -total[i], -days[i], ks[i].encode()))


from tierctl.io.ingest import duplicate_problems  # noqa: E402


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(alphabet="ab1", min_size=1, max_size=2)), min_size=2, max_size=12),
       st.booleans())
def test_duplicate_ids_are_found_sorted_or_not(ids, sort):
    """The sorted-ids shortcut never hides a repeated id (nor invents one)."""
    if sort:
        ids = sorted(ids, key=lambda v: (v is not None, (v or "").encode()))
    frame = pd.DataFrame({"customer_id": pd.Series(ids, dtype=pd.StringDtype("pyarrow", na_value=np.nan)),
                          "_row": range(2, 2 + len(ids))})
    _problems, n = duplicate_problems(frame, "customer_id", "客户编号")
    present = [v for v in ids if v is not None]
    assert n == len({v for v in present if present.count(v) > 1})
