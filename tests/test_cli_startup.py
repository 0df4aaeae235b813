"""`tierctl --help` and the command list must not pay for pandas, numpy or pyarrow (issue 2: --help <= 0.5 s);
`tierctl report` not for the libraries only other commands use (issue 15).

Measured by what gets imported, not by the clock: a fresh interpreter builds the whole CLI and prints the help;
the heavy libraries must still be absent from ``sys.modules`` afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("pandas", "numpy", "pyarrow", "sqlalchemy", "psycopg", "openpyxl", "jinja2")

PROBE = """
import json, sys
from tierctl.cli import main
sys.argv = ["tierctl", "--help"]
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & set(%r))), file=sys.stderr)
"""


def test_help_imports_no_heavy_library():
    # a real process: the test session itself has imported pandas long ago
    proc = subprocess.run([sys.executable, "-c", PROBE % (HEAVY,)], capture_output=True, text=True, timeout=120)
    assert "Usage" in proc.stdout or "用法" in proc.stdout, proc.stdout + proc.stderr
    loaded = json.loads(proc.stderr.strip().splitlines()[-1])
    assert loaded == [], f"tierctl --help imported {loaded}"


# what `tierctl report` (the dashboard, without --png) needs: pandas, pyarrow, the store and jinja2 — never
# the workbook, Word, chart-drawing or statistics libraries the other commands use (issue 15: its start-up
# stays level with the flat tree's, which imported none of them either)
NOT_FOR_REPORT = ("openpyxl", "xlsxwriter", "matplotlib", "scipy", "docx", "cairosvg", "playwright")

REPORT_PROBE = """
import json, sys
from tierctl.cli import main
try:
    main(%r)
except SystemExit as exc:
    assert not exc.code, exc.code
print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & set(%r))), file=sys.stderr)
"""


def test_report_imports_no_library_it_does_not_need(tmp_path):
    import datetime as dt
    import os
    from pathlib import Path

    from tierctl.daily.history import record_run
    from tierctl.io.ingest import read_export
    from tierctl.shortage import crisis_level, load_model, score
    from tierctl.store import Store

    day = dt.date(2026, 11, 24)
    now = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    model = load_model("rite")
    ex = read_export(Path(__file__).resolve().parent.parent / "sample_data" / "shortage.xlsx", model.columns)
    db = tmp_path / "t.db"
    with Store.open(db) as store:
        result = score(ex.frame, model, day, now, headers=ex.headers, path=ex.path)
        record_run(store, result, crisis_level(result, 3.0), source_name="shortage.xlsx", source_hash="1")
    argv = ["report", "--db", str(db), "--date", day.isoformat(), "--out", str(tmp_path / "out"),
            "--now", now.isoformat()]
    env = {k: v for k, v in os.environ.items() if k != "TIERCTL_DB"}
    proc = subprocess.run([sys.executable, "-c", REPORT_PROBE % (argv, NOT_FOR_REPORT)], capture_output=True,
                          text=True, timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / day.isoformat() / "dashboard.html").is_file()
    loaded = json.loads(proc.stderr.strip().splitlines()[-1])
    assert loaded == [], f"tierctl report imported {loaded}"
