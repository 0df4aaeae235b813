"""The churn report workbook's intervention detail is written a block of rows at a time
(``PrintWorksheet.write_rows``): every file inside the workbook is the same, byte for
byte, as with the detail written cell by cell the way it was before (kept below as the
plain version) — also when a column mixes numbers, texts and blanks."""

from __future__ import annotations

import datetime as dt
import math
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tierctl.churn import load_churn_model
from tierctl.churn import workbook as churn_workbook
from tierctl.churn.report import loop_report
from tierctl.cli import main
from tierctl.io.writers import neutralise
from tierctl.store import Store


def _detail_sheet_per_cell(wb, iv, head, txt, num, money):
    """The detail sheet as written cell by cell before write_rows."""
    ws = wb.add_worksheet("干预明细")
    cols = [("客户编号", "customer_id", 14), ("客户", "name", 10), ("等级", "level", 6), ("干预日期", "date", 11),
            ("干预时风险分", "score_before", 10), ("30天内最低分", "score_after", 10), ("效果", "effect", 14),
            ("负责人", "owner", 12), ("首次干预", "action", 28), ("联系结果", "result", 10),
            ("联系次数", "contacts", 8), ("成本（元）", "cost", 11), ("窗口内最近到店", "last_visit_seen", 13),
            ("挽回", "won_back", 8)]
    for j, (h, _, w) in enumerate(cols):
        ws.write_string(0, j, h, head)
        ws.set_column(j, j, w)
    for i, rec in enumerate(iv.to_dict("records"), start=1):
        for j, (_, k, _) in enumerate(cols):
            v = rec.get(k)
            if k == "effect":
                v = churn_workbook.EFFECT_TEXT.get(v, v)
            elif k == "won_back":
                v = churn_workbook.WINBACK_TEXT.get(v, v)
            if v is None or (isinstance(v, float) and math.isnan(v)):
                ws.write_blank(i, j, None, txt)
            elif isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool):
                ws.write_number(i, j, float(v), money if k == "cost" else num)
            else:
                ws.write_string(i, j, str(neutralise(v.isoformat() if isinstance(v, dt.date) else str(v))), txt)
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, len(iv), len(cols) - 1)


def _cli(*args: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    assert exc.value.code in (0, None)


def _files(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist() if n != "docProps/core.xml"}  # core.xml: the clock


@pytest.fixture
def report(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TIERCTL_CONFIG", raising=False)
    monkeypatch.setenv("TIERCTL_DB", str(tmp_path / "t.db"))
    rows = [{"客户编号": f"A{i}", "客户姓名": f"客户{i}", "流失风险分": 60 + i, "上次到店日期": "2026-06-01"}
            for i in range(1, 9)]
    pd.DataFrame(rows).to_csv(tmp_path / "d0.csv", index=False)
    _cli("churn", str(tmp_path / "d0.csv"), "--as-of", "2026-09-01", "--now", "2026-09-01T09:00:00+08:00",
         "-f", "json")
    for i in range(1, 8):
        _cli("churn", "log", f"A{i}", "--action", "致电", "--result", "已接通" if i % 2 else "未接通",
             "--cost", str(100 * i), "--at", "2026-09-01 10:00", "--now", "2026-09-01T10:30:00+08:00")
    later = [{**r, "流失风险分": 30 + i, "上次到店日期": "2026-09-15" if i % 3 else "2026-06-01"}
             for i, r in enumerate(rows)]
    pd.DataFrame(later).to_csv(tmp_path / "d20.csv", index=False)
    _cli("churn", str(tmp_path / "d20.csv"), "--as-of", "2026-09-21", "--now", "2026-09-21T09:00:00+08:00",
         "-f", "json")
    now = dt.datetime(2026, 9, 21, 18, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    with Store.open(tmp_path / "t.db", readonly=True) as store:
        return loop_report(store, load_churn_model(), now=now)


@pytest.mark.parametrize("mixed", [False, True])
def test_detail_sheet_is_the_same_file_as_a_write_per_cell(tmp_path, monkeypatch, report, mixed):
    assert len(report.interventions) >= 5
    if mixed:  # a number among texts, texts among numbers, a formula-like text, blanks
        iv = report.interventions.copy().astype(object)
        iv.loc[1, "contacts"] = "两次"
        iv.loc[2, "score_after"] = np.nan
        iv.loc[2, "last_visit_seen"] = None
        iv.loc[3, "cost"] = "=1+1"
        iv.loc[4, "name"] = 12345
        report.interventions = iv
    rows = churn_workbook.write_report_xlsx(report, tmp_path / "rows.xlsx")
    monkeypatch.setattr(churn_workbook, "_detail_sheet", _detail_sheet_per_cell)
    cells = churn_workbook.write_report_xlsx(report, tmp_path / "cells.xlsx")
    expected, actual = _files(cells), _files(rows)
    assert actual.keys() == expected.keys()
    for name in expected:
        assert actual[name] == expected[name], name


def test_row_blocks_split_where_a_column_changes_kind():
    n, s, b = ("n", 1.0), ("s", "x"), (None, None)
    assert churn_workbook._row_blocks([[n, s], [b, s], [n, b]], 2) == [(0, 3, ["n", "s"])]
    assert churn_workbook._row_blocks([[n, s], [s, s], [n, s]], 2) == [(0, 1, ["n", "s"]), (1, 2, ["s", "s"]),
                                                                      (2, 3, ["n", "s"])]
    assert churn_workbook._row_blocks([[b, b]], 2) == [(0, 1, ["s", "s"])]
    assert churn_workbook._row_blocks([], 2) == []
