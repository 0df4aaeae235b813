"""Benchmark: rendering the daily documents (issue 4 goals).

    .venv/bin/python bench/bench_render.py            # 1,000 customers + a 100,000-row sheet
    .venv/bin/python bench/bench_render.py 2000 50000

Goals: every document for 1,000 waiting customers ≤ 3 s; the evaluation sheet for
100,000 customers ≤ 15 s (xlsxwriter ``constant_memory``).  The customers come from
``sample_data/generate.py``'s large-export generator (plus a part column), go through the
real ingest and scoring, and are rendered with the test configuration in
``tests/golden/render/tierctl.toml``.  Figures are printed, never asserted; the CPU time shows the cost when the machine is
busy with other work (wall time then grows, CPU time does not).
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "sample_data"))

from generate import PARTS, big_frame  # noqa: E402

from tierctl.config import Config  # noqa: E402
from tierctl.io.ingest import read_export  # noqa: E402
from tierctl.render import render_documents, write_evaluation_sheet  # noqa: E402
from tierctl.shortage import load_model, score  # noqa: E402

AS_OF = dt.date(2026, 11, 24)
NOW = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def scored(n: int, tmp: Path):
    frame = big_frame(n)
    frame["缺件名称"] = np.random.default_rng(3).choice(np.array(PARTS), n)
    path = tmp / f"export_{n}.csv"
    frame.to_csv(path, index=False)
    model = load_model("rite")
    t0 = time.perf_counter()
    ex = read_export(path, model.columns)
    result = score(ex.frame, model, AS_OF, NOW, headers=ex.headers, path=path)
    return result, time.perf_counter() - t0


def main() -> None:
    n_docs = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000
    n_sheet = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    cfg = Config.load(ROOT / "tests" / "golden" / "render" / "tierctl.toml")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        result, t_score = scored(n_docs, tmp)
        t0, c0 = time.perf_counter(), time.process_time()
        report = render_documents(result, cfg, tmp / "out")
        t_render, c_render = time.perf_counter() - t0, time.process_time() - c0
        sizes = sum(p.stat().st_size for p in report.files)
        print(f"all documents, {n_docs:,} customers: {t_render:.2f} s wall, {c_render:.2f} s CPU (goal ≤ 3 s; "
              f"{len(report.files)} files, {sizes / 1e6:.1f} MB, {report.sms_segments:,} SMS segments; "
              f"ingest+score beforehand {t_score:.2f} s)")

        big, t_score = scored(n_sheet, tmp)
        t0, c0 = time.perf_counter(), time.process_time()
        out = write_evaluation_sheet(big, tmp / "big.xlsx", constant_memory=True)
        t_sheet, c_sheet = time.perf_counter() - t0, time.process_time() - c0
        print(f"evaluation sheet, {n_sheet:,} customers: {t_sheet:.2f} s wall, {c_sheet:.2f} s CPU (goal ≤ 15 s; "
              f"{out.stat().st_size / 1e6:.1f} MB; ingest+score beforehand {t_score:.2f} s)")


if __name__ == "__main__":
    main()
