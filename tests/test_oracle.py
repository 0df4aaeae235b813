"""The vectorised scorer agrees with a plain row-by-row implementation of the same rules
on generated exports (the benchmark's baseline doubles as an oracle)."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import AS_OF, NOW

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from generate import big_frame  # noqa: E402
from rowwise import score_rowwise  # noqa: E402

from tierctl.io.ingest import read_export  # noqa: E402
from tierctl.shortage import load_model, score  # noqa: E402


@pytest.mark.parametrize("model_name,seed", [("rite", 1), ("rite", 2), ("rite100", 3)])
def test_vectorised_equals_rowwise(tmp_path, model_name, seed):
    model = load_model(model_name)
    p = tmp_path / "g.csv"
    big_frame(3000, seed=seed).to_csv(p, index=False)
    ex = read_export(p, model.columns)
    fast = score(ex.frame, model, AS_OF, NOW).customers.set_index("customer_id")
    slow = score_rowwise(ex.frame, model, AS_OF)
    assert len(slow) == len(fast) == 3000 and fast.index.is_unique
    rows = fast.to_dict("index")  # one customer's row by key (fast.loc per key took 0.9 s of the test's 4)
    for r in slow:
        f = rows[r["key"]]
        assert {d: int(f[d]) for d in model.dim_keys} == r["dims"], r["key"]
        assert Decimal(int(f["total_scaled"])) / model.scale == r["total"]
        assert (f["model_tier"], f["tier"]) == (r["model_tier"], r["tier"]), r["key"]
