"""Benchmark for a region on one database (issue 18).

1. The morning store step with N customers (default 1,000,000) on PostgreSQL and on
   SQLite: the same hooks ``tierctl score`` calls (open, history, changes, snapshot,
   alerts — one transaction), two mornings on a fresh database; scoring is not counted.
   Goal: PostgreSQL within 2× of SQLite.
2. ``region report``'s gathering over C centres × D days × K customers (default 30 × 30 ×
   2,000) on both engines.  Goal: ≤ 5 s.

PostgreSQL: ``--pg URL`` or $TIERCTL_TEST_PG (``.ci/pg start /tmp/pg`` starts one);
without it only SQLite is measured.  Prints figures; asserts nothing.

    .venv/bin/python bench/bench_region.py [--customers 1000000] [--centres 30] [--days 30] [--per-centre 2000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "sample_data"))

from bench_store import DAY1, TZ, scored  # noqa: E402

from tierctl.cli.score import DETAIL_LIMIT  # noqa: E402
from tierctl.region.report import gather, load_params  # noqa: E402
from tierctl.shortage import crisis_level, score  # noqa: E402
from tierctl.store import Store  # noqa: E402


def fresh_pg(base: str) -> str:
    import sqlalchemy as sa

    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {name}")
    admin.dispose()
    return f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{name}"


def morning(n: int, where: str, label: str) -> list[float]:
    from tierctl.cli import morning as hooks

    model, export, _ = scored(n, DAY1)
    took = []
    for day in (DAY1, DAY1 + dt.timedelta(days=1)):
        now = dt.datetime.combine(day, dt.time(9), tzinfo=TZ)
        t = time.perf_counter()
        store = hooks.open_for_score(where, False)
        prev, week = hooks.previous_for(store, model, day)
        t_read = time.perf_counter() - t
        result = score(export.frame, model, day, now, previous=prev, week_ago=week)
        crisis = crisis_level(result)
        t = time.perf_counter()
        out = hooks.after_score(store, result, export, crisis, dry_run=False, detail_limit=DETAIL_LIMIT)
        store.close()
        took.append(t_read + time.perf_counter() - t)
        print(f"  {label} {day}: store step {took[-1]:6.2f} s, {out['snapshot']['alerts_fired']:,} alerts fired",
              flush=True)
    return took


def fill_region(where: str, centres: int, days: int, k: int) -> None:
    rng = np.random.default_rng(3)
    parts = np.array([f"配件{i:03d}" for i in range(200)], dtype=object)
    with Store.open(where, centre="C00") as s:
        for c in range(centres):
            v = s.for_centre(f"C{c:02d}")
            keys = np.array([f"C{c:02d}-{i:05d}" for i in range(k)], dtype=object)
            for d in range(days):
                day = DAY1 - dt.timedelta(days=days - 1 - d)
                here = keys[rng.random(k) < 0.9]
                f = pd.DataFrame({"customer_key": here, "name": here, "label": rng.choice(["P0", "P1", "P2", "P3"],
                                  len(here)), "part": rng.choice(parts, len(here)),
                                  "wait_days": rng.integers(0, 60, len(here)),
                                  "notes": np.where(rng.random(len(here)) < 0.05, "已订货", "")})
                v.save_snapshot("shortage", day, "rite", "x.xlsx", "h", f,
                                {"crisis": {"level": int(rng.integers(1, 5)), "label": "x"},
                                 "counts": f["label"].value_counts().to_dict()})
            m = min(100, k)
            a = pd.DataFrame({"customer_key": keys[:m], "customer_id": keys[:m], "name": keys[:m],
                              "rule_id": "wait21", "recipient": rng.choice(["经理", "站长"], m), "reason": "x"})
            v.insert_alerts("shortage", a, DAY1 - dt.timedelta(days=3), dt.datetime.combine(DAY1, dt.time(9), TZ))


def region(where: str, label: str, centres: int, days: int, k: int) -> float:
    t = time.perf_counter()
    fill_region(where, centres, days, k)
    print(f"  {label}: filled {centres} × {days} × {k:,} in {time.perf_counter() - t:.1f} s", flush=True)
    params = load_params()
    best = float("inf")
    for _ in range(3):
        with Store.open(where, readonly=True) as s:
            t = time.perf_counter()
            r = gather(s, DAY1, params)
            best = min(best, time.perf_counter() - t)
    print(f"  {label}: region report gathering {best:6.2f} s (best of 3; goal ≤ 5 s); "
          f"{len(r['centres'])} centres, {len(r['transfers'])} transfer candidates", flush=True)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--centres", type=int, default=30)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--per-centre", type=int, default=2000)
    ap.add_argument("--pg", default=os.environ.get("TIERCTL_TEST_PG"))
    ap.add_argument("--skip-morning", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if not a.skip_morning:
            print(f"\n1. morning store step, {a.customers:,} customers")
            lite = morning(a.customers, str(Path(tmp) / "m.db"), "SQLite    ")
            if a.pg:
                pg = morning(a.customers, fresh_pg(a.pg), "PostgreSQL")
                print(f"  PostgreSQL / SQLite: day 1 {pg[0] / lite[0]:.2f}×, day 2 {pg[1] / lite[1]:.2f}× (goal ≤ 2×)")
        print(f"\n2. region report, {a.centres} centres × {a.days} days × {a.per_centre:,} customers")
        region(str(Path(tmp) / "r.db"), "SQLite    ", a.centres, a.days, a.per_centre)
        if a.pg:
            region(fresh_pg(a.pg), "PostgreSQL", a.centres, a.days, a.per_centre)


if __name__ == "__main__":
    main()
