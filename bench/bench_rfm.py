"""Benchmark for `tierctl rfm` (issues 5, 19): 5,000,000 visit rows for 500,000 customers.

    .venv/bin/python bench/bench_rfm.py [--rows 5000000] [--customers 500000] [--runs 3]
                                        [--skip-core] [--unsorted]

End to end, each run a whole fresh process, one after the other in the same process tree:

* the peer, ``bench/peers/rfm_duckdb.py`` (a ~40-line DuckDB query computing the same R,
  F, M, tie-safe scores and 8 types from the same export, JSON to /dev/null), and
* ``python -m tierctl rfm big.csv --as-of 2026-11-24 --format json --dry-run > /dev/null``:

medians of wall time, CPU time and peak RSS (``/usr/bin/time -f %M`` when present), and
the ratio tierctl / peer against the goals of issue 19 (≤ 1.5× the peer's wall time,
≤ 1 GB).  The peer needs ``duckdb`` (a dev dependency).

The export is generated once by ``sample_data/generate_visits.py`` into ``bench/data/``
(UTF-8 with BOM, Chinese headers, two settlement lines per order, 1% refunds, rows after
the as-of date).  Its order numbers are sorted, as a DMS settlement export sorted by order
number is; ``--unsorted`` shuffles the rows so that the order numbers must be hashed.

Then (unless ``--skip-core``) the pure core in process on the frame the ingest produced:
:func:`tierctl.rfm.compute_rfm` (quantile and frozen edges) and the JSON text.  Wall time
on a shared machine also measures the neighbours: CPU time is printed beside it.  Prints
figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from common import ROOT, data_dir, line

PY = sys.executable
AS_OF = date(2026, 11, 24)
GNU_TIME = Path("/usr/bin/time")


def measure(args: list[str]) -> dict[str, float]:
    """Run ``args`` with stdout to /dev/null: wall s, CPU s (user + sys), peak RSS MB."""
    env = {**os.environ, "COLUMNS": "120"}
    env.pop("TIERCTL_DB", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    if GNU_TIME.exists():
        p = subprocess.run([str(GNU_TIME), "-f", "%M %U %S", *args], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, env=env)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            raise SystemExit(f"failed ({p.returncode}): {' '.join(args)}\n{p.stderr[-3000:]}")
        kb, user, sys_ = p.stderr.strip().splitlines()[-1].split()
        return {"wall": wall, "cpu": float(user) + float(sys_), "peak_mb": int(kb) / 1024, "stderr": p.stderr}
    p = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"failed ({p.returncode}): {' '.join(args)}\n{p.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "peak_mb": after.ru_maxrss / 1024, "stderr": p.stderr}


PEER = ROOT / "bench" / "peers" / "rfm_duckdb.py"


def big_file(rows: int, customers: int, unsorted: bool) -> Path:
    sys.path.insert(0, str(ROOT / "sample_data"))
    from generate_visits import write_big

    path = data_dir() / f"visits_{rows}{'_unsorted' if unsorted else ''}.csv"
    if not path.exists():
        t0 = time.perf_counter()
        write_big(path, rows, customers)
        if unsorted:
            _shuffle_lines(path)
        print(f"  generated {path.name} ({path.stat().st_size / 2**20:,.0f} MB) in {time.perf_counter() - t0:.0f} s")
    return path


def _shuffle_lines(path: Path) -> None:
    import numpy as np

    with open(path, "rb") as fh:
        head, *body = fh.read().split(b"\n")
    if body and body[-1] == b"":
        body.pop()
    order = np.random.default_rng(11).permutation(len(body))
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as fh:
        fh.write(head + b"\n" + b"\n".join(body[i] for i in order) + b"\n")
    tmp.replace(path)


def median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def end_to_end(path: Path, n_runs: int) -> None:
    size = path.stat().st_size / 2**20
    print(f"tierctl rfm against the DuckDB peer — {path.name} ({size:,.0f} MB), {n_runs} runs each, medians")
    tierctl = [PY, "-m", "tierctl", "rfm", str(path), "--as-of", AS_OF.isoformat(), "--format", "json",
               "--dry-run"]
    peer = [PY, str(PEER), str(path), AS_OF.isoformat()]
    peer_runs, runs = [], []
    for _ in range(n_runs):  # alternate, so both sides see the same neighbours
        peer_runs.append(measure(peer))
        runs.append(measure(tierctl))
    for label, rs in (("peer: DuckDB query (bench/peers/rfm_duckdb.py)", peer_runs),
                      ("tierctl rfm … --format json --dry-run", runs)):
        line(f"{label}: wall", f"{median(rs, 'wall'):.2f} s")
        line("  runs", ", ".join(f"{r['wall']:.2f}" for r in rs))
        line("  CPU time (user + sys)", f"{median(rs, 'cpu'):.2f} s")
        line("  peak memory (RSS)", f"{median(rs, 'peak_mb'):,.0f} MB", "≤ 1 GB" if rs is runs else "")
    ratio = median(runs, "wall") / median(peer_runs, "wall")
    line("tierctl / peer (wall, medians)", f"{ratio:.2f}×", "≤ 1.5×")
    line("tierctl / peer (CPU, medians)", f"{median(runs, 'cpu') / median(peer_runs, 'cpu'):.2f}×")
    line("tierctl / peer (peak RSS, medians)", f"{median(runs, 'peak_mb') / median(peer_runs, 'peak_mb'):.2f}×")


def core(path: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from tierctl.rfm import compute_rfm, load_rfm_model
    from tierctl.rfm.run import read_visits

    model = load_rfm_model()
    t0, c0 = time.perf_counter(), time.process_time()
    export = read_visits(path, model)
    line("in process: read_visits (read + map + type)",
         f"{time.perf_counter() - t0:.2f} s, CPU {time.process_time() - c0:.2f} s")
    frame = export.frame
    del export
    walls, cpus = [], []
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        result = compute_rfm(frame, model, AS_OF)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    line(f"compute_rfm ({result.binning}, F by {result.frequency_basis}), best of 3",
         f"{min(walls):.2f} s, CPU {min(cpus):.2f} s")
    t0 = time.perf_counter()
    frozen = compute_rfm(frame, model, AS_OF + timedelta(days=30), edges=result.edges)
    line("compute_rfm with frozen edges (a month later)", f"{time.perf_counter() - t0:.2f} s")
    t0 = time.perf_counter()
    text = result.to_json_text()
    line(f"to_json_text ({len(result.customers):,} customers, {len(text) / 2**20:,.0f} MB)",
         f"{time.perf_counter() - t0:.2f} s")
    t0 = time.perf_counter()
    result.to_json()
    line("  for comparison: to_json() (a dict per customer)", f"{time.perf_counter() - t0:.2f} s")
    line("customers scored / quality notes", f"{len(result.customers):,} / {len(result.quality):,}")
    del frozen
    print(result.summary[["type_no", "type_name", "customers", "share_pct", "revenue_share_pct",
                          "share_flag"]].to_string(index=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--customers", type=int, default=500_000)
    ap.add_argument("--runs", type=int, default=3, help="end-to-end runs of each side (medians compared)")
    ap.add_argument("--skip-core", action="store_true", help="only the end-to-end figures")
    ap.add_argument("--unsorted", action="store_true", help="rows shuffled: order numbers must be hashed")
    args = ap.parse_args()
    path = big_file(args.rows, args.customers, args.unsorted)
    end_to_end(path, args.runs)
    if not args.skip_core:
        core(path)


if __name__ == "__main__":
    main()
