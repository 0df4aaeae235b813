"""Benchmark: grade 1,000,000 customers (issue 7 goal: ≤ 5 s for grade_customers).

Run: ``.venv/bin/python bench/bench_grade.py [N]``.  The frame is generated in memory
with numpy, shaped like the ingest's output (string ids, nullable numbers, dates, a
``_row`` column), with realistic ties (visits are small integers, satisfaction is a
1–10 score) and some blanks, so percentile ranking, derivation (客单价 from spend ÷
visits, 客户年限 from the first visit) and per-row re-weighting all do real work.
Figures are printed, never asserted.
"""

from __future__ import annotations

import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tierctl.grade import compare, grade_customers, load_grade_model  # noqa: E402


def make_frame(n: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    visits = rng.poisson(2.5, n)
    spend = np.round(visits * rng.lognormal(7.0, 0.8, n), 2)
    first = np.datetime64("2026-11-01") - rng.integers(0, 12 * 365, n).astype("timedelta64[D]")
    sat = rng.integers(1, 11, n).astype(float)
    sat[rng.random(n) < 0.2] = np.nan  # not every customer answered the survey
    pot = rng.integers(0, 101, n).astype(float)
    return pd.DataFrame({
        "customer_id": pd.array([f"C{i:07d}" for i in range(n)], dtype="string"),
        "name": pd.array([f"客户{i}" for i in range(n)], dtype="string"),
        "spend_12m": pd.array(spend, dtype="Float64"),
        "visits_12m": pd.array(visits, dtype="Int64"),
        "first_visit": first.astype("datetime64[ns]"),
        "satisfaction": pd.array(sat, dtype="Float64"),
        "potential": pd.array(pot, dtype="Float64"),
        "_row": np.arange(2, n + 2),
    })


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    model = load_grade_model()
    t0 = time.perf_counter()
    frame = make_frame(n)
    t1 = time.perf_counter()
    overrides = pd.DataFrame({
        "customer_id": [f"C{i:07d}" for i in range(0, n, max(n // 1000, 1))],
        "grade": "VIP",
        "reason": "转介绍 10 位客户",
        "by": "王经理",
        "at": pd.Timestamp("2026-10-01"),
    })
    t2 = time.perf_counter()
    res = grade_customers(frame, model, date(2026, 11, 25), overrides=overrides)
    t3 = time.perf_counter()

    # a second month: everyone's spend moves a little, so some grades change
    rng = np.random.default_rng(8)
    frame2 = frame.copy()
    frame2["spend_12m"] = pd.array(np.round(frame["spend_12m"].to_numpy(dtype=float)
                                            * rng.lognormal(0, 0.3, n), 2), dtype="Float64")
    res2 = grade_customers(frame2, model, date(2026, 12, 25))
    t4 = time.perf_counter()
    changes = compare(res.customers, res2)
    t5 = time.perf_counter()
    _ = res.reasons
    t6 = time.perf_counter()

    print(f"customers                  {n:>12,}")
    print(f"generate frame             {t1 - t0:8.2f} s")
    print(f"grade_customers            {t3 - t2:8.2f} s   (goal ≤ 5 s)")
    print(f"grade_customers, month 2   {t4 - t3:8.2f} s")
    print(f"compare (letters for {len(changes.letters):,} downgrades) {t5 - t4:8.2f} s")
    print(f"reasons (built on demand)  {t6 - t5:8.2f} s")
    print("distribution:")
    print(res.distribution.to_string(index=False))


if __name__ == "__main__":
    main()
