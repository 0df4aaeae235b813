"""Golden files for `tierctl churn report` (issue 15): the printed report and its JSON,
from the seed's table and from a small history in the store (score → log → re-score →
report), run in-process.  The golden files were made with the code before the churn
package redesign; the redesign must reproduce them byte for byte.

Regenerate after an intended change:

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_churn_golden.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from tierctl.cli import main

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "churn"
UPDATE = bool(os.environ.get("UPDATE_GOLDEN"))


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TIERCTL_CONFIG", raising=False)
    monkeypatch.setenv("TIERCTL_DB", str(tmp_path / "t.db"))
    monkeypatch.setenv("COLUMNS", "200")


def cli(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out = capsys.readouterr()
    code = exc.value.code
    return (code if isinstance(code, int) else (0 if code is None else 1)), out.out, out.err


def compare(name: str, actual: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}: run with UPDATE_GOLDEN=1"
    assert actual == path.read_text(encoding="utf-8"), f"{name} differs from the golden file"


def export(tmp_path: Path, rows: list[dict], name: str) -> str:
    p = tmp_path / name
    pd.DataFrame(rows).to_csv(p, index=False)
    return str(p)


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_golden_seed_report(capsys, fmt):
    code, out, err = cli(capsys, "churn", "report", "--seed-table", "-f", fmt)
    assert code == 0, err
    assert "1350" in out  # the seed's 1,350 interventions: a golden file of an error cannot pass
    compare(f"report_seed.{'txt' if fmt == 'table' else 'json'}", out)


def test_golden_report_from_the_store(capsys, tmp_path):
    d0 = [{"客户编号": "A1", "客户姓名": "甲", "流失风险分": 70, "上次到店日期": "2026-06-01"},
          {"客户编号": "A2", "客户姓名": "乙", "流失风险分": 85, "上次到店日期": "2026-06-01"},
          {"客户编号": "A3", "客户姓名": "丙", "流失风险分": 50, "上次到店日期": "2026-06-01"},
          {"客户编号": "A4", "客户姓名": "丁", "流失风险分": 65, "上次到店日期": "2026-05-01"}]
    code, _, err = cli(capsys, "churn", export(tmp_path, d0, "d0.csv"), "--as-of", "2026-09-01",
                       "--now", "2026-09-01T09:00:00+08:00", "-f", "json")
    assert code == 0, err
    for cid, result, cost in (("A1", "已接通", "500"), ("A2", "已接通", "2000"), ("A4", "未接通", "0")):
        code, _, err = cli(capsys, "churn", "log", cid, "--action", "致电", "--result", result, "--cost", cost,
                           "--at", "2026-09-01 10:00", "--now", "2026-09-01T10:30:00+08:00")
        assert code == 0, err
    d20 = [{**d0[0], "流失风险分": 45, "上次到店日期": "2026-09-15"}, {**d0[1], "流失风险分": 80}, d0[2], d0[3]]
    code, _, err = cli(capsys, "churn", export(tmp_path, d20, "d20.csv"), "--as-of", "2026-09-21",
                       "--now", "2026-09-21T09:00:00+08:00", "-f", "json")
    assert code == 0, err
    now = "2026-09-21T18:00:00+08:00"
    code, table, err = cli(capsys, "churn", "report", "--now", now)
    assert code == 0, err
    assert "2026-09-01 至 2026-09-21" in table
    compare("report_store.txt", table)
    code, doc, err = cli(capsys, "churn", "report", "--now", now, "-f", "json")
    assert code == 0, err
    compare("report_store.json", doc)
