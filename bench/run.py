"""`make bench`: run every benchmark script in turn and print its figures.

    python bench/run.py            # full sizes from the issues (takes several minutes)
    python bench/run.py --quick    # small sizes, to check the scripts run

Each script generates its own inputs (cached under bench/data/) and prints one line per
figure with the goal beside it.  No figure is asserted: these machines are shared and
noisy, so read the numbers, and re-run when the load average is high.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

FULL = [
    ("score (issue 2)", ["bench_score.py"]),
    ("store and daily loop (issue 3)", ["bench_store.py"]),
    ("documents (issue 4)", ["bench_render.py"]),
    ("RFM (issue 5)", ["bench_rfm.py"]),
    ("churn (issue 6)", ["bench_churn.py"]),
    ("grading (issue 7)", ["bench_grade.py"]),
    ("dashboard (issue 8)", ["bench_report.py"]),
    ("allocation (issue 9)", ["bench_allocate.py"]),
]
QUICK_ARGS = {
    "bench_score.py": ["--rows", "50000", "--xlsx-rows", "5000", "--rowwise-sample", "2000", "--repeat", "1"],
    "bench_rfm.py": ["--rows", "200000", "--customers", "20000"],
    "bench_churn.py": ["10000"],
    "bench_grade.py": ["50000"],
    "bench_allocate.py": ["300"],
    "bench_render.py": ["200", "2000"],
    "bench_report.py": ["5", "20000"],
    "bench_store.py": ["--customers", "50000", "--task-customers", "5000", "--days", "5"],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("only", nargs="*", help="run only scripts whose name contains one of these words")
    args = ap.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    print(f"tierctl benchmarks — {os.cpu_count()} cores, load average {load:.2f}"
          + ("  (high: figures will be slower than on a quiet machine)" if load > 1.0 else ""))
    failed = []
    for title, (script, *extra) in FULL:
        if args.only and not any(w in script for w in args.only):
            continue
        path = HERE / script
        if not path.exists():
            print(f"\n== {title}: {script} not present, skipped")
            continue
        cmd = [sys.executable, str(path), *extra, *(QUICK_ARGS.get(script, []) if args.quick else [])]
        print(f"\n== {title}: {' '.join(Path(c).name if i < 2 else c for i, c in enumerate(cmd))}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call(cmd, cwd=HERE.parent)
        print(f"   ({time.perf_counter() - t0:.0f} s)")
        if rc:
            failed.append(script)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
