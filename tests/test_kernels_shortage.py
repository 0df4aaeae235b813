"""The speed plumbing of the shortage job (tierctl/kernels/), each against the plain version."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierctl.kernels import background
from tierctl.kernels import codes as kernel_codes
from tierctl.kernels.codes import cat, combo_factorize, join_categoricals, join_codes, pair_codes
from tierctl.kernels.join_cache import JoinCache
from tierctl.kernels.keyjoin import key_positions, key_positions_both, same_keys
from tierctl.kernels.packed_sort import urgency_order
from tierctl.kernels.parallel_map import thread_map

SETTINGS = settings(max_examples=60, deadline=None)
keys_st = st.lists(st.text(alphabet="abcé客户0", min_size=0, max_size=3), max_size=25)


def plain_positions(keys: list[str], among: list[str]) -> list[int]:
    first: dict[str, int] = {}
    for i, k in enumerate(among):
        first.setdefault(k, i)
    return [first.get(k, -1) for k in keys]


@SETTINGS
@given(keys_st, keys_st)
def test_key_positions_is_the_first_position_or_minus_one(keys, among):
    got = key_positions(pd.Series(keys, dtype=object), pd.Series(among, dtype=object))
    assert got.tolist() == plain_positions(keys, among)


@SETTINGS
@given(keys_st, st.one_of(st.none(), keys_st), st.one_of(st.none(), keys_st))
def test_both_joins_side_by_side_equal_the_two_joins_one_after_another(keys, a, b):
    k = pd.Series(keys, dtype=object)
    pa, pb = key_positions_both(k, None if a is None else pd.Series(a, dtype=object),
                                None if b is None else pd.Series(b, dtype=object))
    assert (pa is None) == (a is None) and (pb is None) == (b is None)
    if a is not None:
        assert pa.tolist() == plain_positions(keys, a)
    if b is not None:
        assert pb.tolist() == plain_positions(keys, b)


@SETTINGS
@given(keys_st, keys_st)
def test_same_keys_is_list_equality(a, b):
    assert same_keys(pd.Series(a, dtype=object), pd.Series(b, dtype=object)) == (a == b)


@SETTINGS
@given(keys_st, keys_st, st.randoms())
def test_join_cache_answers_only_for_the_same_keys(keys, other, rnd):
    pos = np.array(plain_positions(keys, other), dtype=np.int64)
    order = np.arange(len(keys))
    rnd.shuffle(order)
    cache = JoinCache(pos, pd.Series(other, dtype=object))
    assert cache.positions_for(pd.Series(other, dtype=object), order).tolist() == pos[order].tolist()
    changed = [*other, "x"]
    assert cache.positions_for(pd.Series(changed, dtype=object), order) is None
    assert JoinCache(None, None).positions_for(pd.Series(other, dtype=object)) is None


def test_background_returns_the_value_and_raises_the_error_in_the_caller():
    assert background.start(sum, [1, 2, 3])() == 6

    def boom() -> None:
        raise ValueError("bad")

    job = background.start(boom)
    with pytest.raises(ValueError, match="bad"):
        job()


@SETTINGS
@given(st.lists(st.tuples(st.integers(-1, 4), st.integers(-1, 3)), max_size=30))
def test_pair_codes_give_the_distinct_pairs_in_first_appearance_order(rows):
    a = np.array([r[0] for r in rows], dtype=np.int64)
    b = np.array([r[1] for r in rows], dtype=np.int64)
    codes, pairs = pair_codes(a, b, 4)
    plain = list(dict.fromkeys(rows))
    assert pairs == plain
    assert [pairs[c] for c in codes] == rows


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["x", "y", ""]), st.floats(0, 3).map(round)),
                max_size=30))
def test_combo_factorize_equals_distinct_tuples(rows):
    cols = [np.array([r[j] for r in rows], dtype=object if j == 1 else None) for j in range(3)] if rows \
        else [np.zeros(0), np.zeros(0, dtype=object), np.zeros(0)]
    codes, uniq = combo_factorize(cols)
    plain = list(dict.fromkeys(rows))
    assert [tuple(u) for u in uniq] == plain
    assert [uniq[c] for c in codes] == rows


@SETTINGS
@given(st.data())
def test_join_codes_is_the_row_wise_join_of_the_present_texts(data):
    parts = data.draw(st.integers(1, 4))
    n = data.draw(st.integers(0, 20))
    texts = [data.draw(st.lists(st.sampled_from(["a", "b", "c d", "e"]), min_size=0, max_size=3, unique=True))
             for _ in range(parts)]
    codes = [np.array(data.draw(st.lists(st.integers(-1, len(t) - 1), min_size=n, max_size=n)), dtype=np.int64)
             for t in texts]
    got = join_codes(codes, texts, n, "；")
    plain = ["；".join(texts[j][codes[j][i]] for j in range(parts) if codes[j][i] >= 0) for i in range(n)]
    assert list(np.asarray(got, dtype=object)) == plain


@SETTINGS
@given(st.data())
def test_join_codes_by_table_equals_join_codes_by_hash_categories_in_first_appearance_order(data):
    parts = data.draw(st.integers(1, 3))
    n = data.draw(st.integers(0, 30))
    texts = [data.draw(st.lists(st.sampled_from(["a", "b", "c d", "e", ""]), min_size=0, max_size=4, unique=True))
             for _ in range(parts)]
    codes = [np.array(data.draw(st.lists(st.integers(-1, len(t) - 1), min_size=n, max_size=n)), dtype=np.int64)
             for t in texts]
    by_table = join_codes(codes, texts, n, "；")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kernel_codes, "DENSE_LIMIT", 0)
        by_hash = join_codes(codes, texts, n, "；")
    assert list(by_table.categories) == list(by_hash.categories)
    assert list(np.asarray(by_table, dtype=object)) == list(np.asarray(by_hash, dtype=object))


@SETTINGS
@given(st.lists(st.sampled_from(["", "x", "y", "x"]), max_size=20))
def test_cat_and_join_categoricals_keep_the_texts(values):
    c = pd.Categorical(values)
    assert list(np.asarray(join_categoricals([c], "；"), dtype=object)) == values
    codes = np.array([-1 if v == "" else ["x", "y"].index(v) for v in values], dtype=np.int64)
    assert list(np.asarray(cat(codes, ["x", "y"]), dtype=object)) == values


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2000), st.integers(0, 400),
                          st.text(alphabet="ab1", max_size=3)), max_size=30),
       st.booleans())
def test_urgency_order_is_the_plain_sort(rows, huge):
    rank = np.array([r[0] for r in rows], dtype=np.int64)
    total = np.array([r[1] for r in rows], dtype=np.int64) * (2**31 if huge else 1)  # huge: the four-key path
    days = np.array([r[2] for r in rows], dtype=np.int64)
    key = pd.Series([r[3] for r in rows], dtype=object)
    got = urgency_order(rank, total, days, key)
    plain = sorted(range(len(rows)), key=lambda i: (rank[i], -total[i], -days[i], key[i].encode()))
    assert [tuple(x) for x in zip(rank[got], total[got], days[got], key.to_numpy()[got], strict=True)] == \
        [(rank[i], total[i], days[i], key[i]) for i in plain]


@SETTINGS
@given(st.lists(st.integers(-5, 5), max_size=12), st.integers(1, 6))
def test_thread_map_is_map_in_order(xs, threads):
    assert thread_map(lambda x: x * x, xs, threads=threads) == [x * x for x in xs]


def test_thread_map_puts_the_warnings_filters_back():
    before = list(warnings.filters)

    def meddle(x: int) -> int:
        warnings.simplefilter("ignore")  # what pandas' catch_warnings leaves behind on a thread
        return x

    assert thread_map(meddle, [1, 2, 3], threads=3) == [1, 2, 3]
    assert warnings.filters == before
