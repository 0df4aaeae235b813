"""The speed plumbing of grading against the plain versions (issue 15)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tierctl.kernels.numtext import numbers_as_text, numbers_as_text_plain
from tierctl.kernels.topk import top_order, top_order_plain

_floats = st.one_of(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, width=64), st.just(float("nan")),
                    st.integers(-10**6, 10**6).map(float), st.integers(-10**5, 10**5).map(lambda i: i / 100))


@settings(max_examples=200, deadline=None)
@given(st.lists(_floats, max_size=40))
def test_numbers_as_text_is_the_plain_text(values):
    arr = np.array(values, dtype=float)
    assert numbers_as_text(arr).to_pylist() == numbers_as_text_plain(arr)


def test_numbers_as_text_examples():
    arr = np.array([3000.0, 2.5, 0.1 + 0.2, float("nan"), 1.005, 85.2])
    assert numbers_as_text(arr).to_pylist()[:4] == ["3000", "2.5", "0.3", None]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 30)), max_size=60), st.integers(0, 70))
def test_top_order_is_the_full_sort_cut(rows, limit):
    key = np.array([k for k, _ in rows], dtype=np.int64)
    ids = np.array([f"C{i:03d}" for _, i in rows], dtype=object)
    assert top_order(key, ids, limit).tolist() == top_order_plain(key, ids, limit).tolist()


def test_top_order_keeps_every_tie_at_the_cut():
    key = np.array([5, 9, 5, 1, 5], dtype=np.int64)
    ids = np.array(["e", "a", "c", "b", "d"], dtype=object)
    assert top_order(key, ids, 2).tolist() == [1, 2, 4, 0]  # 9, then the three 5s by id
