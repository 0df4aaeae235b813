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
