"""Issue 19: the score run gives freed memory back to the system between its steps
(tierctl/kernels/memory.py) — and that changes no value."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from tierctl.kernels import memory


@settings(max_examples=20, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=8)), max_size=50), st.lists(st.integers(-5, 5), max_size=50))
def test_giving_memory_back_leaves_every_value_as_it_was(texts, ints):
    arr = pa.array(texts, pa.large_string())
    trimmed = pc.utf8_trim_whitespace(arr)
    big = np.repeat(np.array(ints or [0], dtype=np.int64), 1 << 15)  # (a megabyte and more)
    want = (trimmed.to_pylist(), big.sum())
    del arr
    memory.give_back()
    assert (trimmed.to_pylist(), big.sum()) == want


def test_a_score_run_gives_memory_back_after_ingest_scoring_and_the_crisis_level(monkeypatch):
    from pathlib import Path

    from conftest import AS_OF, NOW

    from tierctl.shortage import run as shortage_run

    calls = []
    monkeypatch.setattr(memory, "give_back", lambda: calls.append(1))
    sample = Path(__file__).resolve().parent.parent / "sample_data" / "shortage.xlsx"

    class Config:
        def get(self, dotted, default=None):
            return default

        def path_of(self, dotted):
            return None

    done = shortage_run.run(sample, config=Config(), clock=lambda: (AS_OF, NOW))
    assert len(calls) == 3 and len(done.result.frame) == 40


def test_the_pool_that_returns_at_once_leaves_every_value_as_it_was():
    before = pa.default_memory_pool()
    try:
        memory.return_at_once()
        pool = pa.default_memory_pool()
        assert pool.backend_name in ("jemalloc", before.backend_name)
        arr = pa.array(["客户", None, " x "], pa.large_string())
        assert pc.utf8_trim_whitespace(arr).to_pylist() == ["客户", None, "x"]
    finally:
        pa.set_memory_pool(before)
