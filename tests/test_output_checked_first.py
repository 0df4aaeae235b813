"""An existing output file without --force is refused before anything is read, scored
or stored: the manager learns it at once, and the history is not changed by a run
whose result was not written."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_data"
AS_OF = ("--as-of", "2026-11-24", "--now", "2026-11-24T08:30:00+08:00")


def _runs(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as con:
        names = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
        return con.execute("select count(*) from snapshots").fetchone()[0] if "snapshots" in names else 0


@pytest.mark.parametrize("cmd, sample, fmt", [
    ("score", "shortage.xlsx", "csv"),
    ("score", "shortage.xlsx", "json"),
    ("churn", "churn.csv", "csv"),
    ("grade", "grading.csv", "csv"),
])
def test_an_existing_output_is_refused_before_the_run_is_stored(tmp_path, cmd, sample, fmt):
    db = tmp_path / "store.db"
    out = tmp_path / f"today.{fmt}"
    out.write_text("yesterday's file\n", encoding="utf-8")
    r = run_cli(cmd, SAMPLES / sample, *AS_OF, "--db", db, "-f", fmt, "-o", out)
    assert r.returncode == 1, r.stderr
    assert "已存在" in r.stderr and "--force" in r.stderr and str(out) in r.stderr
    assert "Traceback" not in r.stderr
    assert out.read_text(encoding="utf-8") == "yesterday's file\n"
    assert _runs(db) == 0  # nothing stored for a run whose result was not written
    again = run_cli(cmd, SAMPLES / sample, *AS_OF, "--db", db, "-f", fmt, "-o", out, "--force")
    assert again.returncode == 0, again.stderr
    assert out.read_text(encoding="utf-8") != "yesterday's file\n" and _runs(db) == 1
