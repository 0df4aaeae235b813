"""Issue 19: the score run's text columns as one contiguous array each (io/values.one_chunk_each) — same values, same dtypes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from tierctl.io.values import one_chunk_each

TEXT = pd.StringDtype("pyarrow", na_value=np.nan)
cells = st.lists(st.one_of(st.none(), st.text(alphabet="ab 客户\u3000", max_size=4)), max_size=6)


@settings(max_examples=40, deadline=None)
@given(st.lists(cells, min_size=1, max_size=5), st.lists(st.integers(-3, 3), max_size=30))
def test_one_chunk_each_keeps_every_value_and_dtype(pieces, ints):
    n = sum(len(p) for p in pieces)
    frame = pd.DataFrame({
        "text": pd.Series(pa.chunked_array(pieces, pa.large_string()), dtype=TEXT),
        "number": np.resize(np.array(ints or [0], dtype=np.int64), n),
    })
    want = (frame["text"].tolist(), frame["number"].tolist(), list(frame.dtypes))
    one_chunk_each(frame)
    assert (frame["text"].tolist(), frame["number"].tolist(), list(frame.dtypes)) == want
    assert frame["text"].array._pa_array.num_chunks <= 1
