"""Benchmark for the history store and the daily loop.

1. The morning run with 1,000,000 customers: how much the store adds.  A generated export
   goes through the same hooks ``tierctl score`` calls, two mornings in a row on a fresh
   database file (ingest and scoring are not counted, although scoring now holds the
   A4.4/A4.5 joins with the history — part 3 counts everything):
     - ``encode_snapshot`` (checks, Arrow, zstd; on a thread beside the alerts) and
       ``save_snapshot`` (the blob insert);
     - the whole store part: open, ``previous_for`` (A4.4/A4.5 history), ``after_score``
       (overrides, changes since the previous run, snapshot, alerts — one transaction).
   Day 1 fires every wait alert at once (1.6 million); day 2 only the newly crossed ones.
2. ``tierctl tasks`` on a store holding 30 daily snapshots of 100,000 customers and a
   contact log: the library call and the whole command (a fresh process, best and median
   of five).
3. The whole ``tierctl score FILE -f csv -o out.csv`` command on consecutive mornings,
   with the store and with ``--no-store`` (interleaved), and the last day scored again.

Wall and CPU seconds are printed: on a shared machine the CPU figure is the steadier one.
Prints figures; asserts nothing.

    .venv/bin/python bench/bench_store.py [--customers 1000000] [--task-customers 100000] [--days 30]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "sample_data"))

from generate import big_frame  # noqa: E402

from tierctl import daily  # noqa: E402
from tierctl.cli.score import DETAIL_LIMIT  # noqa: E402
from tierctl.daily import history as loop_history  # noqa: E402  (where the morning run lives)
from tierctl.daily import reports as loop  # noqa: E402
from tierctl.io.ingest import type_export  # noqa: E402
from tierctl.io.readers import RawSheet  # noqa: E402
from tierctl.shortage import crisis_level, load_model, score  # noqa: E402
from tierctl.store import Store  # noqa: E402

TZ = dt.timezone(dt.timedelta(hours=8))
DAY1 = dt.date(2026, 11, 23)


def scored(n: int, as_of: dt.date, seed: int = 7):
    model = load_model("rite")
    raw = big_frame(n, seed=seed, as_of=DAY1).astype(str)
    export = type_export(RawSheet(Path("bench.csv"), raw, 1, 2, None, "utf-8", []), model.columns, mapping={})
    now = dt.datetime.combine(as_of, dt.time(9), tzinfo=TZ)
    return model, export, now


def _db_mb(path: Path) -> float:
    """The database's size with its write-ahead log (folded in only when the store closes)."""
    wal = Path(f"{path}-wal")
    return (path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)) / 1e6


def timed(label: str, fn, *args, **kw):
    t, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kw)
    took, cpu = time.perf_counter() - t, time.process_time() - c
    print(f"  {label:<60s} {took:7.2f} s  (cpu {cpu:5.2f} s)", flush=True)
    return out, took


def bench_morning(n: int, tmp: Path) -> None:
    """Two mornings through the same hooks ``tierctl score`` calls; the store's part of each
    is everything except ingest and scoring."""
    print(f"\n1. morning run, {n:,} customers")
    from tierctl.cli import morning as hooks

    model, export, _ = scored(n, DAY1)
    path = tmp / "morning.db"
    saves: list[tuple[float, float]] = []
    encodes: list[float] = []
    original, original_encode = Store.save_snapshot, loop_history.encode_snapshot

    def save(self, *a, **kw):
        t, c = time.perf_counter(), time.process_time()
        try:
            return original(self, *a, **kw)
        finally:
            saves.append((time.perf_counter() - t, time.process_time() - c))

    def encode(*a, **kw):  # runs on a thread beside the alerts (CPU time is not per thread: wall only)
        t = time.perf_counter()
        try:
            return original_encode(*a, **kw)
        finally:
            encodes.append(time.perf_counter() - t)

    Store.save_snapshot = save  # type: ignore[method-assign]
    loop_history.encode_snapshot = encode
    try:
        for label, day in (("day 1, empty store", DAY1), ("day 2", DAY1 + dt.timedelta(days=1))):
            now = dt.datetime.combine(day, dt.time(9), tzinfo=TZ)
            t, c = time.perf_counter(), time.process_time()
            store = hooks.open_for_score(path, False)
            prev, week = hooks.previous_for(store, model, day)
            t_read, c_read = time.perf_counter() - t, time.process_time() - c
            t0 = time.perf_counter()
            result = score(export.frame, model, day, now, previous=prev, week_ago=week)
            crisis = crisis_level(result)
            t_score = time.perf_counter() - t0
            t, c = time.perf_counter(), time.process_time()
            # as `tierctl score` runs for the table or a CSV (--format json lists every change and alert)
            out = hooks.after_score(store, result, export, crisis, dry_run=False, detail_limit=DETAIL_LIMIT)
            t_after, c_after = time.perf_counter() - t, time.process_time() - c
            save_wall, save_cpu = saves[-1]
            print(f"  {label}: scoring {t_score:.1f} s (not counted, though it holds the A4.4/A4.5 joins with "
                  f"the history); "
                  f"{out['changes']['counts']}, {out['snapshot']['alerts_fired']:,} alerts fired")
            print(f"    {'encode_snapshot (checks, Arrow, zstd; on a thread)':<58s} {encodes[-1]:7.2f} s")
            print(f"    {'save_snapshot (blob insert; the commit comes with the alerts)':<58s} {save_wall:7.2f} s  "
                  f"(cpu {save_cpu:5.2f} s)")
            print(f"    {'whole store part (open, history, changes, snapshot, alerts)':<58s} "
                  f"{t_read + t_after:7.2f} s  (cpu {c_read + c_after:5.2f} s)", flush=True)
            del result, prev, week
        print(f"  file after two days: {path.stat().st_size / 1e6:,.0f} MB")
    finally:
        Store.save_snapshot = original  # type: ignore[method-assign]
        loop_history.encode_snapshot = original_encode


def bench_cli(n: int, days: int, tmp: Path) -> None:
    """What the store adds to the whole command a manager runs: ``tierctl score FILE -f csv
    -o out.csv`` on consecutive mornings, each timed with the store and with ``--no-store``
    (interleaved, so that both see the same machine), then the last day scored again."""
    from generate import big_frame

    print(f"\n3. tierctl score, whole command, {n:,} customers: with the store vs --no-store")
    big = ROOT / "bench" / "data" / f"shortage_{n}.csv"
    if not big.exists():
        big.parent.mkdir(parents=True, exist_ok=True)
        big_frame(n).to_csv(big, index=False)
    db, out = tmp / "cli.db", tmp / "out.csv"
    base = [sys.executable, "-m", "tierctl", "score", str(big), "-f", "csv", "-o", str(out), "--force"]

    def run(day: dt.date, *extra: str) -> float:
        t = time.perf_counter()
        subprocess.run([*base, "--as-of", day.isoformat(), *extra], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env={**os.environ, "COLUMNS": "120"})
        return time.perf_counter() - t

    added: list[float] = []
    for i in range(days):
        day = DAY1 + dt.timedelta(days=i)
        with_store = run(day, "--db", str(db))
        without = run(day, "--no-store")
        note = "first day: every alert opens at once (not a goal line)" if i == 0 else ""
        if i:
            added.append(with_store - without)
        print(f"  {day}: {with_store:6.2f} s with the store, {without:6.2f} s without → "
              f"+{with_store - without:.2f} s  {note}", flush=True)
    again, without = run(day, "--db", str(db)), run(day, "--no-store")
    print(f"  {day} scored again (replaces the day): {again:6.2f} s vs {without:6.2f} s → +{again - without:.2f} s")
    if added:
        print(f"  {'store adds, days after the first (max)':<60s} {max(added):7.2f} s   (goal ≤ 5 s)")


def bench_tasks(n: int, days: int, tmp: Path) -> None:
    print(f"\n2. tierctl tasks, {days} daily snapshots × {n:,} customers")
    model, export, now1 = scored(n, DAY1, seed=11)
    r = score(export.frame, model, DAY1, now1)
    base = daily.snapshot_frame(r)
    path = tmp / "tasks.db"
    store = Store.open(path)
    meta = daily.model_meta(model)
    rng = np.random.default_rng(3)
    t = time.perf_counter()
    first = DAY1 - dt.timedelta(days=days - 1)
    prev = None
    for i in range(days):
        day = first + dt.timedelta(days=i)
        rows = base.copy()
        rows["wait_days"] = np.maximum(rows["wait_days"].to_numpy() - (days - 1 - i), 0)
        rows["respond_by"] = pd.Timestamp(dt.datetime.combine(day, dt.time(11), tzinfo=TZ))
        rows = daily.carry_forward(rows, prev, dt.datetime.combine(day, dt.time(0), tzinfo=TZ))
        store.save_snapshot("shortage", day, "rite", "bench.csv", "x", rows, meta,
                            now=dt.datetime.combine(day, dt.time(9), tzinfo=TZ))
        prev = rows[["customer_key", "first_seen", "first_due"]]
    # a contact log kept up as the policy asks: 90% of the customers contacted on one of the
    # last 7 days (earlier contacts too: 3 per customer over three weeks); 10% never (new)
    keys = base["customer_key"].to_numpy()
    known = keys[rng.random(len(keys)) < 0.9]
    who = np.concatenate([known, known, known])
    back = np.concatenate([rng.integers(0, 7, len(known)), rng.integers(7, 14, len(known)),
                           rng.integers(14, 21, len(known))])
    when = [dt.datetime.combine(DAY1 - dt.timedelta(days=int(d)), dt.time(10), tzinfo=TZ) for d in back]
    store.add_contacts("shortage", {
        "customer_key": list(who), "customer_id": list(who), "name": [None] * len(who), "at": when,
        "result": ["已接通"] * len(who), "logged_at": when})
    print(f"  (building the store: {time.perf_counter() - t:.1f} s, {_db_mb(path):,.0f} MB, "
          f"{len(who):,} contacts)")
    cal = daily.WorkCalendar(False)
    now = dt.datetime.combine(DAY1, dt.time(10), tzinfo=TZ)
    res, took = timed("loop.tasks_report, view due (library call)", loop.tasks_report, store, DAY1, now, cal,
                      "due")
    print(f"  → {res['count']:,} tasks due, {res['overdue']:,} overdue")
    timed("loop.tasks_report --view calls", loop.tasks_report, store, DAY1, now, cal, "calls")
    store.close()
    cmd = [str(ROOT / ".venv" / "bin" / "tierctl"), "tasks", "--db", str(path), "--date", DAY1.isoformat(),
           "--now", now.isoformat(), "--format", "json"]
    env = {**os.environ, "TIERCTL_DB": str(path)}

    def runs(args: list[str], extra_env: dict[str, str], k: int = 5) -> str:
        took = []
        for _ in range(k):
            t = time.perf_counter()
            subprocess.run(args, check=True, stdout=subprocess.DEVNULL, env={**env, **extra_env})
            took.append(time.perf_counter() - t)
        return f"{min(took):7.2f} s  (median {sorted(took)[k // 2]:.2f} s of {k})"

    print(f"  {'tierctl tasks (table, first 100 rows; whole process)':<60s} "
          f"{runs(cmd[:-2], {'COLUMNS': '120'})}   (goal ≤ 1 s)")
    print(f"  {'tierctl tasks --format json (everyone; whole process)':<60s} {runs(cmd, {})}")
    t = time.perf_counter()
    subprocess.run([str(ROOT / ".venv" / "bin" / "tierctl"), "--help"], check=True, stdout=subprocess.DEVNULL)
    print(f"  {'(for reference: tierctl --help, process startup only)':<60s} {time.perf_counter() - t:7.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--task-customers", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--skip-morning", action="store_true")
    ap.add_argument("--skip-tasks", action="store_true")
    ap.add_argument("--skip-cli", action="store_true")
    ap.add_argument("--cli-days", type=int, default=4, help="mornings of the whole-command comparison")
    ap.add_argument("--dir", type=Path, help="build the stores here and keep them (default: a temporary folder)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tierctl-bench-") as d:
        where = args.dir or Path(d)
        where.mkdir(parents=True, exist_ok=True)
        for f in where.glob("*.db*"):
            f.unlink()
        if not args.skip_morning:
            bench_morning(args.customers, where)
        if not args.skip_tasks:
            bench_tasks(args.task_customers, args.days, where)
        if not args.skip_cli:
            bench_cli(args.customers, args.cli_days, where)


if __name__ == "__main__":
    main()
