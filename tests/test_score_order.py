"""Issue 19: the score CSV is written in urgency order through the permutation, a slice
of rows at a time, without a sorted copy of the table — and gives the same bytes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import AS_OF, NOW
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_writers import _frame  # the same mixed frame the writer tests use
from tierctl.io import writers
from tierctl.shortage import flat_frame, load_model, score


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 40), st.integers(1, 7), st.booleans(), st.randoms(use_true_random=False))
def test_writing_through_an_order_equals_writing_the_sorted_copy(n, chunk, parallel, rnd):
    import tempfile
    from pathlib import Path

    frame = _frame(n)
    order = np.array(rnd.sample(range(n), n), dtype=np.int64)
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        mp.setattr(writers, "ORDER_CHUNK", chunk)
        if parallel:
            mp.setattr(writers.os, "cpu_count", lambda: 3)
            orig = writers._write_table_csv
            mp.setattr(writers, "_write_table_csv", lambda t, p, **kw: orig(t, p, parallel_from=1, **kw))
        sorted_copy, through = Path(tmp) / "a.csv", Path(tmp) / "b.csv"
        writers.write_csv(frame.take(order).reset_index(drop=True), sorted_copy)
        writers.write_csv(frame, through, order=order)
        assert through.read_bytes() == sorted_copy.read_bytes()
    assert writers.write_csv(frame, None, order=order) == writers.write_csv(frame.take(order), None)


def test_the_unordered_flat_table_through_its_order_is_the_ordered_one(rite, sample_frame):
    result = score(sample_frame, rite, AS_OF, NOW)
    ordered = flat_frame(result)
    unordered = flat_frame(result, ordered=False)
    assert not unordered.equals(ordered)  # (the sample is not in urgency order)
    back = unordered.take(result.unordered_order).reset_index(drop=True)
    pd.testing.assert_frame_equal(back, ordered, check_categorical=False)  # (categories in another order)
    _ = result.customers  # once the sorted frame exists, the order is the identity
    assert (result.unordered_order == np.arange(len(ordered))).all()
    pd.testing.assert_frame_equal(flat_frame(result, ordered=False).take(result.unordered_order)
                                  .reset_index(drop=True), ordered, check_categorical=False)


@pytest.fixture
def rite():
    return load_model("rite")


@pytest.fixture
def sample_frame(rite):
    from pathlib import Path

    from tierctl.io.ingest import read_export

    root = Path(__file__).resolve().parent.parent / "sample_data"
    return read_export(root / "shortage.xlsx", rite.columns).frame
