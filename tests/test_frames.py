"""The shared key join: each key's position in another column, as a dictionary would find it."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from tierctl.kernels.keyjoin import key_positions

KEYS = st.lists(st.sampled_from(["001", "1", "A", "a", "甲", "K 7", ""]), max_size=12)


@settings(max_examples=150, deadline=None)
@given(KEYS, KEYS, st.booleans(), st.booleans())
def test_positions_are_the_first_match_as_a_dictionary_finds_it(keys, among, keys_text, among_text):
    first: dict[str, int] = {}
    for i, k in enumerate(among):
        first.setdefault(k, i)
    want = [first.get(k, -1) for k in keys]
    # pandas' text dtype or plain objects: the same answer
    left = pd.Series(keys, dtype="str" if keys_text else object)
    right = pd.Series(among, dtype="str" if among_text else object)
    got = key_positions(left, right)
    assert got.dtype == np.int64 and got.tolist() == want
