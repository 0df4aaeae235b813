"""Benchmark: score 100,000 customers for churn risk (goal ≤ 3 s) and plan their upkeep.

Run:  .venv/bin/python bench/bench_churn.py [customers]

Prints the timings and the level distribution; no assertion (speed is measured here,
not in the test suite).
"""

from __future__ import annotations

import sys
import time
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd

from tierctl.churn import load_churn_model, score_churn
from tierctl.festivals import touches

NOTES = np.array([None] * 20 + ["客户很满意", "没有投诉", "嫌等待时间长，有点抱怨", "说在别家比价",
                  "保养后出现故障，已投诉", "觉得太贵了", "离得远，来一趟不方便", "车有异响没修好",
                  "去了4S店保养", "态度不好"], dtype=object)
REASONS = np.array([None, None, "价格", "不便", "服务", "技术"], dtype=object)
TYPES = np.array([None, "价格敏感", "远距离", "时间敏感", "品质客户"], dtype=object)


def make_customers(n: int, as_of: date, seed: int = 7) -> pd.DataFrame:
    """A typed export as the shared ingest would produce it."""
    rng = np.random.default_rng(seed)
    interval = rng.choice([60, 90, 120, 180], n)
    # most customers come back around their usual interval; a tail drifts away
    since = np.clip(interval * rng.lognormal(-0.2, 0.5, n), 0, 900).astype(np.int64)
    last = pd.Timestamp(as_of) - pd.to_timedelta(since, unit="D")
    prev_sat = rng.choice([7, 8, 9, 9, 10, 10], n).astype(float)
    prev_ticket = rng.integers(800, 3000, n).astype(float)
    df = pd.DataFrame({
        "customer_id": pd.array([f"{i:08d}" for i in range(n)], dtype="string"),
        "last_visit": last.where(rng.random(n) > 0.02),
        "usual_interval_days": pd.array(interval.astype(float), dtype="Float64"),
        "satisfaction": pd.array(np.clip(prev_sat - rng.choice([0, 0, 0, 0, 1, 2, 3], n), 0, 10), dtype="Float64"),
        "prev_satisfaction": pd.array(prev_sat, dtype="Float64"),
        "no_shows": pd.array(rng.choice([0] * 8 + [1, 2, 3], n), dtype="Int64"),
        "avg_ticket": pd.array(np.round(prev_ticket * rng.uniform(0.3, 1.2, n)), dtype="Float64"),
        "prev_avg_ticket": pd.array(prev_ticket, dtype="Float64"),
        "calls_unanswered": pd.array(rng.choice([0] * 6 + [1, 2, 3], n), dtype="Int64"),
        "notes": pd.array(rng.choice(NOTES, n), dtype="string"),
        "open_complaint": pd.array(rng.random(n) < 0.03, dtype="boolean"),
        "annual_spend": pd.array(rng.integers(500, 20000, n).astype(float), dtype="Float64"),
        "churn_reason": pd.array(rng.choice(REASONS, n), dtype="string"),
        "customer_type": pd.array(rng.choice(TYPES, n), dtype="string"),
        "birthday": pd.Timestamp("1960-01-01") + pd.to_timedelta(rng.integers(0, 365 * 40, n), unit="D"),
        "mileage_since_service": pd.array(rng.integers(0, 9000, n).astype(float), dtype="Float64"),
    })
    df["_row"] = np.arange(n) + 2
    return df


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    as_of = date(2026, 11, 23)
    now = datetime(2026, 11, 23, 9, 0, tzinfo=timezone(timedelta(hours=8)))
    model = load_churn_model()
    df = make_customers(n, as_of)

    score_churn(df.head(1000), model, as_of, now)  # warm-up (imports, regex compilation)
    t0 = time.perf_counter()
    res = score_churn(df, model, as_of, now)
    t1 = time.perf_counter()
    doc = res.to_json()
    t2 = time.perf_counter()
    tt = touches(res.customers, as_of, 90, model)
    t3 = time.perf_counter()

    print(f"customers scored:        {n:,}")
    print(f"score_churn:             {t1 - t0:.2f} s   (goal ≤ 3 s)  {n / (t1 - t0):,.0f}/s")
    print(f"to_json:                 {t2 - t1:.2f} s   ({len(doc['customers']):,} records)")
    print(f"upkeep touches, 90 days: {t3 - t2:.2f} s   ({len(tt):,} touches for "
          f"{int((res.customers['level_key'] == 'low').sum()):,} low-risk customers)")
    counts = res.customers["level"].value_counts()
    print("levels:                  " + "  ".join(f"{lv.label} {counts.get(lv.label, 0):,}" for lv in model.levels))
    print(f"score source:            {res.customers['score_source'].value_counts().to_dict()}")


if __name__ == "__main__":
    main()
