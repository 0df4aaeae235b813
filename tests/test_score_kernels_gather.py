"""Issue 19: reason codes and keyword matches by one gather per column give what the
plain per-row versions give (tierctl/kernels/codes.cat, tierctl/textmatch.keyword_match)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from tierctl.kernels.codes import cat
from tierctl.textmatch import _scan, keyword_match

SETTINGS = settings(max_examples=80, deadline=None)


@SETTINGS
@given(st.lists(st.sampled_from(["a", "b", "a", "", "c"]), min_size=0, max_size=6).filter(lambda t: len(t) > 0),
       st.data())
def test_cat_gives_each_code_its_text_and_any_negative_code_the_empty_one(categories, data):
    codes = data.draw(st.lists(st.integers(-3, len(categories) - 1), max_size=30))
    got = cat(np.array(codes, dtype=np.int64), categories)
    assert list(np.asarray(got, dtype=object)) == [categories[c] if c >= 0 else "" for c in codes]
    assert len(set(got.categories)) == len(got.categories) and got.codes.dtype.itemsize <= 2


@SETTINGS
@given(st.lists(st.one_of(st.none(), st.sampled_from(["律师", "不是骗子", "骗了我", "没事", "", "媒体曝光"])), max_size=25))
def test_keyword_match_per_row_equals_scanning_each_row(texts):
    kws, negs = ("骗", "律师", "曝光"), ("不是", "没")
    s = pd.Series(texts, dtype=pd.StringDtype("pyarrow", na_value=np.nan))
    m = keyword_match(s, kws, negs)
    for i, t in enumerate(texts):
        want = _scan(t, kws, negs) if t else (-1, -1, -1)
        assert (m.code[i], m.cancelled[i], m.negation[i]) == tuple(want), t
