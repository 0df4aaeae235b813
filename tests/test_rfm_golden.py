"""Golden file for the RFM weekly workbook (issue 15): the cell values of every sheet, for
the sample visits export, written in memory and streamed.

Regenerate after an intended change:

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_rfm_golden.py
"""

from __future__ import annotations

import datetime as dt
import json
import os
from datetime import date
from pathlib import Path

import openpyxl
import pytest

from tierctl.io.ingest import read_export
from tierctl.rfm import compute_rfm, load_rfm_model
from tierctl.rfm.report import write_weekly

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "visits.csv"
GOLDEN = ROOT / "tests" / "golden" / "rfm" / "weekly.json"
UPDATE = bool(os.environ.get("UPDATE_GOLDEN"))
AS_OF = date(2026, 11, 24)


def _cell(v: object) -> object:
    if isinstance(v, dt.datetime | dt.date):
        return v.isoformat()
    if isinstance(v, float):
        return round(v, 6)
    return v


def workbook_cells(path: Path) -> dict[str, list[list[object]]]:
    """Every sheet as its rows of cell values (trailing empty cells and rows dropped)."""
    wb = openpyxl.load_workbook(path)
    out: dict[str, list[list[object]]] = {}
    for ws in wb.worksheets:
        rows = []
        for row in ws.iter_rows(values_only=True):
            cells = [_cell(v) for v in row]
            while cells and cells[-1] is None:
                cells.pop()
            rows.append(cells)
        while rows and not rows[-1]:
            rows.pop()
        out[ws.title] = rows
    return out


@pytest.fixture(scope="module")
def result():
    model = load_rfm_model()
    export = read_export(SAMPLE, model.columns)
    return model, compute_rfm(export.frame, model, AS_OF)


@pytest.mark.parametrize("stream", [False, True])
def test_golden_weekly_workbook(tmp_path, result, stream):
    model, res = result
    path = write_weekly(res, model, tmp_path / "w.xlsx", source="visits.csv", stream=stream)
    actual = workbook_cells(path)
    if UPDATE and not stream:
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(actual, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    assert GOLDEN.exists(), f"missing golden file {GOLDEN}: run with UPDATE_GOLDEN=1"
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert list(actual) == list(expected)
    for sheet, rows in expected.items():
        assert json.loads(json.dumps(actual[sheet], ensure_ascii=False)) == rows, f"sheet {sheet} differs"
