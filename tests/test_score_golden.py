"""Golden file for `tierctl score --format csv` on the sample export: every column, every
row, every byte (the BOM and line ends included) is what a script or Excel reads.
Regenerate after an intended change: UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_score_golden.py"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import AS_OF, NOW, run_cli

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "shortage.xlsx"
GOLDEN = ROOT / "tests" / "golden" / "score"
UPDATE = bool(os.environ.get("UPDATE_GOLDEN"))


@pytest.mark.parametrize(("name", "extra"), [("score.csv", []), ("score_zh_headers.csv", ["--headers", "zh"])])
def test_score_csv_matches_golden(tmp_path, name, extra):
    out = tmp_path / name
    r = run_cli("score", SAMPLE, "--as-of", AS_OF.isoformat(), "--now", NOW.isoformat(), "--no-store",
                "-f", "csv", "-o", out, *extra, env={"TIERCTL_CONFIG": None, "TIERCTL_DB": None}, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    actual = out.read_bytes()
    golden = GOLDEN / name
    if UPDATE:
        golden.write_bytes(actual)
    assert golden.exists(), f"missing golden file {golden}: run with UPDATE_GOLDEN=1"
    expected = golden.read_bytes()
    if actual != expected:  # show the first differing line, not two walls of bytes
        a, e = actual.decode("utf-8-sig").splitlines(), expected.decode("utf-8-sig").splitlines()
        first = next((i for i, (x, y) in enumerate(zip(a, e, strict=False)) if x != y), min(len(a), len(e)))
        pytest.fail(f"{name} differs from the golden file at line {first + 1}:\n"
                    f"  got      {a[first] if first < len(a) else '<end>'}\n"
                    f"  expected {e[first] if first < len(e) else '<end>'}")
