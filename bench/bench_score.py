"""Benchmark for `tierctl score` (issues 2 and 19).

    python bench/bench_score.py [--rows 1000000] [--xlsx-rows 100000] [--rowwise-sample 20000] [--full-rowwise]

Measures, each in a fresh process where it matters:
- `tierctl score big.csv --format csv -o out.csv --no-store`, end to end: wall and peak RSS
  (medians of --repeat runs), beside the DuckDB query that computes the same tiers
  (bench/peers/score_duckdb.py, issue 19), run one after the other, and the ratio;
- the vectorised scoring pass alone vs the row-by-row implementation of the same rules
  (bench/rowwise.py) — the row-by-row time is measured on a sample and scaled linearly
  unless --full-rowwise is given;
- ingesting a 100,000-row .xlsx (python-calamine), and openpyxl on the same file with --openpyxl;
- `tierctl --help`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

from common import ROOT, data_dir, line, peak_of

from tierctl.io.ingest import read_export
from tierctl.shortage import load_model, score

PY = sys.executable


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--xlsx-rows", type=int, default=100_000)
    ap.add_argument("--rowwise-sample", type=int, default=20_000)
    ap.add_argument("--full-rowwise", action="store_true")
    ap.add_argument("--openpyxl", action="store_true")
    ap.add_argument("--repeat", type=int, default=3, help="runs of tierctl and of the DuckDB peer (medians)")
    args = ap.parse_args()
    global AS_OF, NOW
    from conftest_free import AS_OF, NOW
    from generate import big_frame
    from rowwise import score_rowwise

    d = data_dir()
    big = d / f"shortage_{args.rows}.csv"
    if not big.exists():
        big_frame(args.rows).to_csv(big, index=False)
    print(f"tierctl score — {args.rows:,} customers ({big.stat().st_size / 2**20:.0f} MB CSV)")
    with tempfile.TemporaryDirectory() as tmp:
        out, peer_out = Path(tmp) / "out.csv", Path(tmp) / "peer.csv"
        ours = [PY, "-m", "tierctl", "score", str(big), "--as-of", "2026-11-24", "-f", "csv", "-o", str(out),
                "--no-store"]
        peer = [PY, str(ROOT / "bench" / "peers" / "score_duckdb.py"), str(big), str(peer_out), "--as-of", "2026-11-24"]
        runs: dict[str, list[tuple[float, float]]] = {"peer": [], "ours": []}
        for _ in range(args.repeat):  # one after the other, in the same process tree
            peer_out.unlink(missing_ok=True)
            runs["peer"].append(peak_of(peer))
            out.unlink(missing_ok=True)
            runs["ours"].append(peak_of(ours))
        (p_wall, p_mb), (wall, mb) = (tuple(median(x) for x in zip(*runs[k], strict=True)) for k in ("peer", "ours"))
        line("end to end, --format csv to a file", f"{wall:.2f} s", "≤ 5 s")
        line("peak memory (RSS)", f"{mb:.0f} MB", "≤ 1.5 GB")
        line(f"peer: DuckDB query (bench/peers/score_duckdb.py), median of {args.repeat}", f"{p_wall:.2f} s")
        line("peer: peak memory (RSS)", f"{p_mb:.0f} MB")
        line("tierctl ÷ DuckDB query, time", f"{wall / p_wall:.2f}×", "≤ 2×")
        line("tierctl peak memory", f"{mb / 1024:.2f} GB", "≤ 0.6 GB")
        print("    runs (s): peer " + " ".join(f"{w:.2f}" for w, _ in runs["peer"])
              + " · tierctl " + " ".join(f"{w:.2f}" for w, _ in runs["ours"]), flush=True)

    model = load_model("rite")
    t0 = time.perf_counter()
    ex = read_export(big, model.columns)
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    score(ex.frame, model, AS_OF, NOW)
    t_vec = time.perf_counter() - t0
    line("ingest (read + type + validate), in process", f"{t_read:.2f} s")
    line("vectorised scoring pass", f"{t_vec:.2f} s")
    n = len(ex.frame) if args.full_rowwise else min(args.rowwise_sample, len(ex.frame))
    sample = ex.frame.head(n)
    t0 = time.perf_counter()
    score_rowwise(sample, model, AS_OF)
    t_row = (time.perf_counter() - t0) * (len(ex.frame) / n)
    how = "measured" if n == len(ex.frame) else f"{n:,} rows measured, scaled ×{len(ex.frame) / n:.0f}"
    line(f"row-by-row (iterrows) same rules ({how})", f"{t_row:.1f} s")
    line("speed-up of the vectorised pass", f"{t_row / t_vec:.0f}×", "≥ 20×")
    del ex, sample

    xl = d / f"shortage_{args.xlsx_rows}.xlsx"
    if not xl.exists():
        import xlsxwriter

        frame = big_frame(args.xlsx_rows)
        wb = xlsxwriter.Workbook(str(xl), {"constant_memory": True})
        ws = wb.add_worksheet("缺件客户")
        ws.write_row(0, 0, list(frame.columns))
        for i, row in enumerate(frame.itertuples(index=False), start=1):
            ws.write_row(i, 0, [str(v) for v in row])
        wb.close()
    t0 = time.perf_counter()
    read_export(xl, model.columns)
    line(f"ingest {args.xlsx_rows:,}-row .xlsx (python-calamine)", f"{time.perf_counter() - t0:.2f} s", "≤ 3 s")
    if args.openpyxl:
        import openpyxl

        t0 = time.perf_counter()
        wb = openpyxl.load_workbook(xl, read_only=True)
        rows = list(wb.active.iter_rows(values_only=True))
        line("  for comparison: openpyxl read-only, cells only", f"{time.perf_counter() - t0:.2f} s")
        del rows
    wall, _ = peak_of([str(Path(PY).parent / "tierctl"), "--help"])
    best = min([wall] + [peak_of([str(Path(PY).parent / "tierctl"), "--help"])[0] for _ in range(2)])
    line("tierctl --help (best of 3)", f"{best:.2f} s", "≤ 0.5 s")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "tests"))
    main()
