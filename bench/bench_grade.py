"""Benchmark: grade 1,000,000 customers (issue 7 goal: ≤ 5 s for grade_customers).

Run: ``.venv/bin/python bench/bench_grade.py [N] [--no-cli]``.

1. The pure core: the frame is generated in memory with numpy, shaped like the
   ingest's output (string ids, nullable numbers, dates, a ``_row`` column), with
   realistic ties (visits are small integers, satisfaction is a 1–10 score) and some
   blanks, so percentile ranking, derivation (客单价 from spend ÷ visits, 客户年限 from
   the first visit) and per-row re-weighting all do real work.
2. End to end: ``tierctl grade big.csv --dry-run`` in a fresh process on an N-row CSV
   written by ``sample_data/generate_grading.py`` (cached under bench/data/), wall time
   and peak memory; then the same run in process, phase by phase, and a stored run
   (snapshot of N rows written to a scratch database).

Figures are printed, never asserted (shared machines are noisy: the load average is
printed with them).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import data_dir, line, peak_of  # noqa: E402

from tierctl.grade import compare, grade_customers, load_grade_model  # noqa: E402

AS_OF = "2026-11-24"


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


def bench_core(n: int) -> None:
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
    thr = load_grade_model(normalise="thresholds")
    t7 = time.perf_counter()
    grade_customers(frame, thr, date(2026, 11, 25))
    t8 = time.perf_counter()

    print(f"grading core — {n:,} customers (frame generated in memory in {t1 - t0:.2f} s)")
    line("grade_customers (percentile, 1,000 overrides)", f"{t3 - t2:.2f} s", "≤ 5 s")
    line("grade_customers, month 2", f"{t4 - t3:.2f} s")
    line("grade_customers, --normalise thresholds", f"{t8 - t7:.2f} s")
    line(f"compare (letters data for {len(changes.letters):,} downgrades)", f"{t5 - t4:.2f} s")
    line("reasons (built on demand: JSON, why)", f"{t6 - t5:.2f} s")
    print("  distribution (percentile):")
    print("    " + res.distribution.to_string(index=False).replace("\n", "\n    "))


def bench_cli(n: int) -> None:
    import generate_grading

    from tierctl.grade import history as gs
    from tierctl.io.ingest import ColumnSet, read_export
    from tierctl.models.loader import Section
    from tierctl.store import Store

    big = data_dir() / f"grading_{n}.csv"
    if not big.exists():
        generate_grading.big_frame(n).to_csv(big, index=False)
    print(f"\ntierctl grade end to end — {n:,} customers ({big.stat().st_size / 2**20:.0f} MB CSV)")
    with tempfile.TemporaryDirectory() as tmp:
        env = {"TIERCTL_DB": str(Path(tmp) / "t.db"), "COLUMNS": "160"}
        wall, mb = peak_of([sys.executable, "-m", "tierctl", "grade", str(big), "--as-of", AS_OF, "--dry-run",
                            "--limit", "20"], env=env)
        line("tierctl grade FILE --dry-run (fresh process, table)", f"{wall:.2f} s")
        line("peak memory (RSS)", f"{mb:.0f} MB")
        wall, mb = peak_of([sys.executable, "-m", "tierctl", "grade", str(big), "--as-of", AS_OF, "--dry-run",
                            "--normalise", "thresholds", "--limit", "20"], env=env)
        line("same, --normalise thresholds", f"{wall:.2f} s")

        # in process, phase by phase
        model = load_grade_model()
        t0 = time.perf_counter()
        ex = read_export(big, ColumnSet.from_model(Section.load(model.path, kind="grade")))
        t1 = time.perf_counter()
        res = grade_customers(ex.frame, model, date.fromisoformat(AS_OF), path=ex.path)
        t2 = time.perf_counter()
        line("ingest (read + type + validate), in process", f"{t1 - t0:.2f} s")
        line("grade_customers on the ingested frame", f"{t2 - t1:.2f} s", "≤ 5 s")
        # a stored run: the snapshot of every customer
        now = pd.Timestamp("2026-11-24T09:00:00+08:00").to_pydatetime()
        with Store.open(Path(tmp) / "stored.db") as store:
            t3 = time.perf_counter()
            gs.save_grading(store, res, big, gs.snapshot_meta(res, None, None), now)
            t4 = time.perf_counter()
            _info, rows = gs.previous_grading(store, date(2026, 12, 24))
            t5 = time.perf_counter()
        line("store the snapshot (every customer, indicator scores)", f"{t4 - t3:.2f} s")
        line("read it back as the previous grading", f"{t5 - t4:.2f} s")
        del rows, ex, res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=1_000_000)
    ap.add_argument("--no-cli", action="store_true", help="only the in-memory core")
    args = ap.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    print(f"load average {load:.2f} on {os.cpu_count()} cores")
    bench_core(args.n)
    if not args.no_cli:
        bench_cli(args.n)


if __name__ == "__main__":
    main()
