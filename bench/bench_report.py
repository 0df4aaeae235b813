"""Benchmark: ``tierctl report`` over a month of stored mornings (issue 8 goal).

    .venv/bin/python bench/bench_report.py                 # 30 days × 100,000 customers
    .venv/bin/python bench/bench_report.py 5 20000         # quicker
    .venv/bin/python bench/bench_report.py 30 100000 --db /tmp/h.db   # keep (or reuse) the store

Goal: the dashboard for 30 stored days of 100,000 customers ≤ 5 s.

The store is built in a temporary folder the way a service centre fills it: every day
the same large export (``sample_data/generate.py``'s generator) is scored through the real
ingest and scoring as of that day — waits grow, tiers escalate — with about 2 % of the
customers gone (their parts arrived), and recorded by the daily loop (``record_run``:
the store's bulk snapshot save, the changes and the alerts), so the store ends with
~3 million snapshot rows.  Then ``tierctl report`` is timed as a fresh process (imports
included), without and with ``--png``, and :func:`tierctl.render.dashboard.gather` in-process
step by step.  Figures are printed, never asserted.
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "sample_data"))
sys.path.insert(0, str(ROOT / "bench"))

from common import line, peak_of  # noqa: E402
from generate import big_frame  # noqa: E402

from tierctl.daily.history import record_run  # noqa: E402
from tierctl.io.ingest import read_export  # noqa: E402
from tierctl.shortage import crisis_level, load_model, score  # noqa: E402
from tierctl.store import Store  # noqa: E402

TZ = dt.timezone(dt.timedelta(hours=8))
LAST = dt.date(2026, 11, 24)


def build(db: Path, days: int, customers: int, tmp: Path) -> tuple[float, int]:
    frame = big_frame(customers, as_of=LAST - dt.timedelta(days=days))
    src = tmp / "export.csv"
    frame.to_csv(src, index=False)
    model = load_model("rite")
    ex = read_export(src, model.columns)
    rng = np.random.default_rng(11)
    t0 = time.perf_counter()
    rows = 0
    with Store.open(db) as store:
        for i in range(days):
            day = LAST - dt.timedelta(days=days - 1 - i)
            keep = rng.random(len(ex.frame)) >= 0.02
            f = ex.frame[keep].reset_index(drop=True)
            now = dt.datetime.combine(day, dt.time(9), tzinfo=TZ)
            result = score(f, model, day, now, headers=ex.headers, path=ex.path)
            record_run(store, result, crisis_level(result, 3.0), source_name=src.name, source_hash=str(i))
            rows += len(f)
            print(f"    stored {day}: {len(f):,} customers ({time.perf_counter() - t0:.0f} s so far)", flush=True)
    return time.perf_counter() - t0, rows


def gather_steps(db: Path) -> None:
    """Where the time goes inside the dashboard's data gathering."""
    from tierctl.render import dashboard

    now = dt.datetime.combine(LAST, dt.time(9), tzinfo=TZ)
    with Store.open(db, readonly=True) as store:
        info = store.latest_snapshot("shortage")
        model = dashboard._shortage_model(info)
        lim = dashboard.Limits()
        steps = [
            ("counts per tier per day (snapshot meta)", lambda: store.list_snapshots("shortage")),
            ("counts per tier per day (label column, fallback)",
             lambda: dashboard._counts_sql(store, [s.id for s in store.list_snapshots("shortage")])),
            ("wait-days histogram (one column)", lambda: dashboard._wait(store, info, model, lim, "zh")),
            ("open alerts", lambda: dashboard._alerts(store, info, lim)),
            ("today's tasks (daily loop)", lambda: dashboard._tasks(store, info, LAST, now, False, lim)),
            ("changes since the previous run (key join)",
             lambda: dashboard._changes(store, info, [t.name for t in model.tiers], lim, model)),
            ("whole gather()", lambda: dashboard.gather(store, LAST, now)),
        ]
        for label, fn in steps:
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            line(f"  {label} (wall / CPU)", f"{time.perf_counter() - t0:.2f} / {time.process_time() - c0:.2f} s")


def timed(args: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one child process.  On a busy machine
    the CPU time is the steadier figure: it is what the command costs when it has a
    core to itself."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(args, capture_output=True, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    argv = list(sys.argv[1:])
    keep = None
    if "--db" in argv:
        i = argv.index("--db")
        keep = Path(argv[i + 1])
        del argv[i:i + 2]
    days = int(argv[0]) if len(argv) > 0 else 30
    customers = int(argv[1]) if len(argv) > 1 else 100_000
    print(f"tierctl report: {days} stored days × {customers:,} customers "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)", flush=True)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        db = keep or tmp / "history.db"
        if not db.exists():
            t_build, rows = build(db, days, customers, tmp)
            line("build the store (score + record_run per day)", f"{t_build:.1f} s")
            line("snapshot rows stored", f"{rows:,}")
        line("database size", f"{db.stat().st_size / 2**20:.0f} MB")
        exe = [sys.executable, "-m", "tierctl", "report", "--db", str(db), "--date", LAST.isoformat(),
               "--out", str(tmp / "out"), "--force"]
        subprocess.run(exe, capture_output=True, check=True)  # warm the OS file cache once
        runs = [timed(exe) for _ in range(3)]
        line("tierctl report (fresh process, best of 3): wall", f"{min(w for w, _ in runs):.2f} s", "≤ 5 s")
        line("  CPU time (user + system)", f"{min(c for _, c in runs):.2f} s")
        _, mb = peak_of(exe)
        line("  peak memory", f"{mb:.0f} MB")
        w_png, c_png = timed([*exe, "--png"])
        line("tierctl report --png: wall / CPU", f"{w_png:.2f} / {c_png:.2f} s")
        w_imp, c_imp = timed([sys.executable, "-c", "import tierctl.cli, tierctl.render.dashboard"])
        line("  of which: interpreter start + imports (wall / CPU)", f"{w_imp:.2f} / {c_imp:.2f} s")
        html = tmp / "out" / LAST.isoformat() / "dashboard.html"
        line("dashboard.html size", f"{html.stat().st_size / 1024:.0f} KB")
        gather_steps(db)
        print(f"  (load average now {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
