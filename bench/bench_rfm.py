"""Benchmark for the RFM core: 5,000,000 visit rows for 500,000 customers.

Builds a realistic visit frame in memory (arrow-backed text columns, as the shared ingest
produces), then times :func:`tierctl.rfm.compute_rfm` and ``to_json``.  With ``--csv`` it
also writes the frame to a CSV and times reading it back with pandas' pyarrow engine, a
stand-in for the ingest step of an end-to-end run.  Prints figures; asserts nothing.

    .venv/bin/python bench/bench_rfm.py [--rows 5000000] [--customers 500000] [--csv]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tierctl.rfm import compute_rfm, load_rfm_model  # noqa: E402

AS_OF = date(2026, 11, 23)


def _text(values: pa.Array) -> pd.Series:
    return pd.Series(values, dtype="str")


def make_visits(rows: int, customers: int, seed: int = 7) -> pd.DataFrame:
    """Visits with the shape of a real export: skewed visit counts, line items, refunds."""
    rng = np.random.default_rng(seed)
    # Skewed activity: many customers come once or twice, a few very often.
    weight = rng.gamma(2.0, 1.0, customers)
    cust = rng.choice(customers, size=rows, p=weight / weight.sum())
    # ~15 months of history ending a few days after the as-of date (those rows get dropped)
    days_back = rng.integers(-3, 450, rows)
    visit_date = (np.datetime64(AS_OF.isoformat()) - days_back.astype("timedelta64[D]"))
    amount = np.round(rng.lognormal(6.5, 1.1, rows), 2)
    refund = rng.random(rows) < 0.01
    amount[refund] = -np.round(amount[refund] * rng.uniform(0.1, 1.0, refund.sum()), 2)
    # Two invoice lines per order on average: order number = row // 2 (same customer and date)
    line_of = np.arange(rows) // 2
    cust = cust[line_of * 2]
    visit_date = visit_date[line_of * 2]

    ids = pa.array([f"C{i:07d}" for i in range(customers)])
    names = pa.array([f"客户{i}" for i in range(customers)])
    phones = pa.array([f"13{i:09d}" for i in range(customers)])
    take = pa.array(cust)
    orders = pa.array([f"RO{i:08d}" for i in range(rows // 2 + 1)]).take(pa.array(line_of))
    kol = rng.random(customers) < 0.002
    return pd.DataFrame({
        "customer_id": _text(ids.take(take)),
        "name": _text(names.take(take)),
        "phone": _text(phones.take(take)),
        "visit_date": visit_date.astype("datetime64[ns]"),
        "amount": pd.array(amount, dtype="Float64"),
        "order_id": _text(orders),
        "kol": pd.array(kol[cust], dtype="boolean"),
        "_row": np.arange(2, rows + 2, dtype=np.int64),
    })


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--customers", type=int, default=500_000)
    ap.add_argument("--csv", action="store_true", help="also time a CSV round trip (pyarrow engine)")
    ap.add_argument("--binning", choices=("quantile", "thresholds"), default=None)
    args = ap.parse_args()

    model = load_rfm_model()
    if args.binning:
        from dataclasses import replace
        model = replace(model, binning=args.binning)

    t0 = time.perf_counter()
    visits = make_visits(args.rows, args.customers)
    t_gen = time.perf_counter() - t0
    print(f"generated {len(visits):,} rows for {args.customers:,} customers in {t_gen:.2f} s "
          f"(peak RSS so far {peak_mb():,.0f} MB)")

    if args.csv:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "visits.csv"
            t0 = time.perf_counter()
            visits.to_csv(path, index=False)
            print(f"wrote CSV {path.stat().st_size / 1e6:,.0f} MB in {time.perf_counter() - t0:.2f} s")
            del visits
            t0 = time.perf_counter()
            visits = pd.read_csv(path, engine="pyarrow", dtype={
                "customer_id": "str", "name": "str", "phone": "str", "order_id": "str"},
                parse_dates=["visit_date"])
            t_read = time.perf_counter() - t0
            print(f"read CSV (pyarrow engine) in {t_read:.2f} s")

    # CPU time next to wall time: on a shared machine wall time also measures the neighbours
    runs, cpu = [], []
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        result = compute_rfm(visits, model, AS_OF)
        runs.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    print(f"compute_rfm ({result.binning}, F by {result.frequency_basis}): "
          f"best {min(runs):.2f} s wall, {min(cpu):.2f} s CPU; "
          f"runs {', '.join(f'{r:.2f}' for r in runs)}")
    print(f"  customers scored {len(result.customers):,}; quality notes {len(result.quality):,}")

    t0 = time.perf_counter()
    frozen = compute_rfm(visits, model, AS_OF + timedelta(days=30), edges=result.edges)
    print(f"compute_rfm with frozen edges: {time.perf_counter() - t0:.2f} s "
          f"({len(frozen.customers):,} customers)")

    t0 = time.perf_counter()
    payload = result.to_json()
    print(f"to_json: {time.perf_counter() - t0:.2f} s ({len(payload['customers']):,} customers)")

    print(f"peak RSS {peak_mb():,.0f} MB")
    print(result.summary[["type_no", "type_name", "customers", "share_pct", "revenue_share_pct",
                          "share_flag"]].to_string(index=False))


if __name__ == "__main__":
    main()
