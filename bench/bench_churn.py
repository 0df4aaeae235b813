"""Benchmark: score 100,000 customers for churn risk (goal ≤ 3 s) and plan their upkeep;
then a year of daily churn snapshots in a store and ``tierctl churn report`` over it
(goal ≤ 5 s).

Run:  .venv/bin/python bench/bench_churn.py [customers] [store customers] [days]

Defaults: 100,000 customers scored; a store of 365 daily snapshots of 5,000 customers
(a large service centre's active base) with about 1,350 intervened customers (the
playbook's quarter) logged through ``churn_history.log_intervention``.  Prints the timings;
no assertion (speed is measured here, not in the test suite).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from tierctl.churn import load_churn_model, score_churn
from tierctl.churn.festivals import touches

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


def build_history(path: Path, n: int, days: int, end: date, seed: int = 3) -> dict:
    """A store with ``days`` daily churn snapshots of ``n`` customers ending on ``end``,
    scores drifting day to day, and interventions with follow-up contacts."""
    from tierctl.churn import history as churn_history
    from tierctl.store import Store

    rng = np.random.default_rng(seed)
    model = load_churn_model()
    tz = timezone(timedelta(hours=8))
    start = end - timedelta(days=days - 1)
    base = score_churn(make_customers(n, start), model, start, datetime.combine(start, datetime.min.time(), tz))
    frame = churn_history.snapshot_frame(base)
    score = frame["score"].to_numpy(dtype=float).copy()
    maxes = np.array([lv.max for lv in model.levels], dtype=float)
    labels = np.array([lv.label for lv in model.levels], dtype=object)
    keys = np.array([lv.key for lv in model.levels], dtype=object)
    last_visit = pd.to_datetime(frame["last_visit"]).to_numpy(dtype="datetime64[D]").copy()
    store = Store.open(path)
    t0 = time.perf_counter()
    plan = {}  # day index -> customers contacted that day
    # interventions spread over the first part of the year (win-back needs 6 months to show)
    n_iv = min(1350, n // 4)
    at_risk_days = rng.choice(np.arange(max(days - 200, days // 2)), n_iv)
    for i, d in enumerate(at_risk_days.tolist()):
        plan.setdefault(int(d), []).append(i)
    intervened = []
    for day_i in range(days):
        day = start + timedelta(days=day_i)
        score = np.clip(score + rng.normal(0, 1.5, n), 0, 100).round()
        visit = rng.random(n) < 1 / 90  # about one visit a quarter
        last_visit[visit] = np.datetime64(day, "D")
        li = np.minimum(np.searchsorted(maxes, score, side="left"), len(maxes) - 1)
        f = frame.copy()
        f["score"] = score
        f["label"] = labels[li]
        f["level_key"] = keys[li]
        f["last_visit"] = last_visit.astype("datetime64[ns]")
        now = datetime.combine(day, datetime.min.time(), tz).replace(hour=9)
        f["respond_by"] = pd.Timestamp(now + timedelta(hours=24)).tz_convert("UTC")
        meta = {"now": now.isoformat(), "deadlines": {k: (now + timedelta(hours=24)).isoformat() for k in keys},
                **churn_history.at_risk_meta(f["customer_key"], f["level_key"], f["score"], model)}  # as save_result
        store.save_snapshot("churn", day, model.name, "bench.csv", None, f, meta)
        # customers intervened today: at-risk (中/高/极高) ones not yet intervened, at random
        todo = plan.get(day_i, [])
        if todo:
            done = set(intervened)
            cand = [int(c) for c in rng.permutation(np.flatnonzero(score > 40)) if int(c) not in done][:len(todo)]
            for c in cand:
                intervened.append(c)
                cid = str(f["customer_key"].iat[c])
                at = now + timedelta(hours=2)
                churn_history.log_intervention(store, model, cid, action="店长致电", result="已接通", at=at, now=at,
                                            cost=float(rng.integers(50, 3000)))
                score[c] = max(0, score[c] - rng.integers(0, 40))  # the intervention often helps
    build = time.perf_counter() - t0
    store.close()
    return {"build_s": build, "rows": n * days, "intervened": len(intervened), "start": start}


def bench_report(n: int, days: int) -> None:
    end = date(2026, 11, 23)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "year.db"
        info = build_history(db, n, days, end)
        size = db.stat().st_size / 1e6
        print(f"store built:             {info['build_s']:.1f} s   ({days} daily snapshots × {n:,} customers = "
              f"{info['rows']:,} rows, {info['intervened']:,} intervened, {size:,.0f} MB)")
        from tierctl.churn import report as churn_report
        from tierctl.store import Store

        store = Store.open(db, readonly=True)
        model = load_churn_model()
        now = datetime.combine(end, datetime.min.time(), timezone(timedelta(hours=8))).replace(hour=18)
        t0 = time.perf_counter()
        rep = churn_report.loop_report(store, model, now=now)
        t1 = time.perf_counter()
        store.close()
        print(f"loop_report (library):   {t1 - t0:.2f} s   (goal ≤ 5 s)")
        env = {**os.environ, "TIERCTL_DB": str(db)}
        walls = []
        for _ in range(3):
            t0 = time.perf_counter()
            p = subprocess.run([sys.executable, "-m", "tierctl", "churn", "report", "--format", "json",
                                "--now", now.isoformat()], capture_output=True, text=True, env=env)
            walls.append(time.perf_counter() - t0)
            if p.returncode:
                raise SystemExit(p.stderr)
        print(f"tierctl churn report:    {min(walls):.2f} s   (goal ≤ 5 s; a fresh process, imports included; "
              f"runs {', '.join(f'{w:.2f}' for w in walls)})")
        print("report:                  " + "  ".join(
            f"{lv.label} {lv.customers:,}/{lv.intervened:,}/{lv.won_back:,}" for lv in rep.roi.levels)
            + f"  (customers/intervened/won back); ROI {rep.roi.roi and round(float(rep.roi.roi) * 100)}%")


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
    from tierctl.churn import history as churn_history
    from tierctl.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "one.db")
        t0 = time.perf_counter()
        churn_history.save_result(store, res, model, source_name="bench.csv", source_hash=None)
        t4 = time.perf_counter()
        store.close()
    print(f"snapshot stored:         {t4 - t0:.2f} s   ({n:,} rows, kind churn)")
    counts = res.customers["level"].value_counts()
    print("levels:                  " + "  ".join(f"{lv.label} {counts.get(lv.label, 0):,}" for lv in model.levels))
    print(f"score source:            {res.customers['score_source'].value_counts().to_dict()}")
    bench_report(int(sys.argv[2]) if len(sys.argv) > 2 else 5_000, int(sys.argv[3]) if len(sys.argv) > 3 else 365)


if __name__ == "__main__":
    main()
