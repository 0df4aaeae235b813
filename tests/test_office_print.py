"""Every workbook tierctl writes prints (issue 17): A4, fit to width, header repeated,
row heights for wrapped text, charts inside the print area, one font, ≥ 8 pt on paper.

Two kinds of checks:

* the computed print setup (always): what each sheet asks the spreadsheet for, read
  back with openpyxl, and the fit ``tierctl.io.printsetup`` computed;
* the real print (LibreOffice headless, ``soffice --convert-to pdf``): the page count
  and, on every page, the smallest text size on paper, read from the PDF itself (the
  font size times the text and page transforms, with pypdf).  Without ``soffice`` these
  skip — except under CI (``CI`` set), where they fail, like the browser tests.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import functools
import os
import shutil
import subprocess
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from conftest import run_cli

from tierctl.io import printsetup
from tierctl.io.printsetup import PrintWorkbook, load_rules

# one worker runs this file: its module fixtures are built once, not once per worker
pytestmark = pytest.mark.xdist_group("office_print")

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "shortage.xlsx"
VISITS = ROOT / "sample_data" / "visits.csv"
AS_OF = dt.date(2026, 11, 24)
NOW = dt.datetime(2026, 11, 24, 9, tzinfo=dt.timezone(dt.timedelta(hours=8)))
A4 = (595.3, 841.9)  # points


# -- the workbooks --------------------------------------------------------------------------
def _shortage():
    from tierctl.io.ingest import read_export
    from tierctl.shortage import load_model, score

    m = load_model("rite")
    ex = read_export(SAMPLE, m.columns)
    return score(ex.frame, m, AS_OF, NOW, headers=ex.headers, path=SAMPLE)


def _churn_with_detail():
    from tierctl.churn import load_churn_model
    from tierctl.churn.report import seed_report

    rep = seed_report(load_churn_model("churn"))
    iv = pd.DataFrame([{"customer_id": f"C{i:04d}", "name": f"客户{i}", "level": "高", "date": dt.date(2026, 11, 2),
                        "score_before": 72, "score_after": 40, "effect": "worked", "owner": "服务顾问 王某某（二组）",
                        "action": "电话回访：解释配件到货时间，预约免费检测并赠送一次保养券，客户同意下周到店",
                        "result": "已接通", "contacts": 2, "cost": 120.0, "last_visit_seen": dt.date(2026, 11, 20),
                        "won_back": "won"} for i in range(60)])
    return dataclasses.replace(rep, interventions=iv)


@pytest.fixture(scope="module")
def books(tmp_path_factory) -> dict[str, Path]:
    from tierctl import allocate as al
    from tierctl import render
    from tierctl.churn.workbook import write_report_xlsx
    from tierctl.io.ingest import read_export
    from tierctl.rfm import compute_rfm, flow_customers, load_rfm_model, migrate
    from tierctl.rfm.report import write_weekly
    from tierctl.rfm.report_migration import write_migration

    d = tmp_path_factory.mktemp("print")
    res = _shortage()
    plan = al.allocate(al.frame_from_scores(res), "allocate", loaners=3, premium_loaners=1, budget=8000,
                       days_to_eta=21).to_json()
    out = {
        "eval_zh": render.write_evaluation_sheet(res, d / "eval_zh.xlsx"),
        "eval_en": render.write_evaluation_sheet(res, d / "eval_en.xlsx", lang="en"),
        "eval_plan": render.write_evaluation_sheet(res, d / "eval_plan.xlsx", plan=plan),
        "churn": write_report_xlsx(_churn_with_detail(), d / "churn.xlsx"),
    }
    rm = load_rfm_model("rfm")
    frame = read_export(VISITS, rm.columns).frame
    out["rfm_weekly"] = write_weekly(compute_rfm(frame, rm, AS_OF), rm, d / "rfm_weekly.xlsx")
    prev = compute_rfm(frame, rm, dt.date(2026, 10, 24))
    curr = compute_rfm(frame, rm, AS_OF, edges=prev.edges)
    mig = migrate(prev, curr, rm)
    out["rfm_migration"] = write_migration(mig, rm, d / "rfm_migration.xlsx",
                                           flows=flow_customers(mig, prev.customers, curr.customers, "customer_id"))
    table = d / "score_table.xlsx"
    r = run_cli("score", SAMPLE, "--as-of", AS_OF.isoformat(), "--no-store", "-f", "xlsx", "-o", table, cwd=d)
    assert r.returncode == 0, r
    out["score_table"] = table
    return out


# -- the computed setup (no LibreOffice needed) ---------------------------------------------
def test_every_sheet_is_a4_fit_to_width_with_its_header_repeated(books):
    for name, path in books.items():
        wb = openpyxl.load_workbook(path)
        for ws in wb.worksheets:
            where = f"{name}/{ws.title}"
            assert ws.page_setup.paperSize == 9, where
            assert (ws.page_setup.fitToWidth or 1) == 1 and ws.page_setup.fitToHeight == 0, where  # 1 is the default
            assert ws.sheet_properties.pageSetUpPr.fitToPage, where
            assert ws.print_area, where
            if ws.freeze_panes and ws.freeze_panes[1:] != "1":
                assert ws.print_title_rows, f"{where}: a frozen header that does not repeat on paper"


def test_computed_fit_never_prints_below_the_minimum(books, monkeypatch, tmp_path):
    """Every sheet's computed fit: its body text on paper is at least ``min_pt``."""
    fits: list[tuple[str, printsetup.Fit]] = []
    orig = PrintWorkbook.close

    def close(self):
        orig(self)
        fits.extend((ws.name, ws.print_fit) for ws in self.worksheets())

    monkeypatch.setattr(PrintWorkbook, "close", close)
    from tierctl import render

    render.write_evaluation_sheet(_shortage(), tmp_path / "e.xlsx")
    from tierctl.churn.workbook import write_report_xlsx

    write_report_xlsx(_churn_with_detail(), tmp_path / "c.xlsx")
    rules = load_rules()
    assert {n for n, _ in fits} >= {"客户分层评估表", "汇总", "评分依据", "挽回效果", "干预明细"}
    for name, fit in fits:
        assert fit is not None and fit.printed_pt >= rules.min_pt, (name, fit)


def test_wrapped_rows_get_a_height_from_their_text(books):
    wb = openpyxl.load_workbook(books["eval_zh"])
    ws = wb["客户分层评估表"]
    heads = [c.value for c in ws[1]]
    action = heads.index("行动计划") + 1
    for r in range(2, ws.max_row + 1):
        text = ws.cell(r, action).value or ""
        h = ws.row_dimensions[r].height
        assert h is not None and h > 15, f"row {r} has no height for its wrapped text"
        width_px = ws.column_dimensions[openpyxl.utils.get_column_letter(action)].width * 7 + 5
        lines = printsetup.text_lines(text, width_px, load_rules().char_px)
        assert h >= lines * 11 * 1.2, f"row {r}: {lines} lines in {h} pt"
    detail = openpyxl.load_workbook(books["churn"])["干预明细"]
    col = [c.value for c in detail[1]].index("首次干预") + 1
    assert detail.cell(2, col).alignment.wrap_text
    assert detail.row_dimensions[2].height and detail.row_dimensions[2].height > 15


def test_one_font_in_a_workbook(books):
    for name, path in books.items():
        wb = openpyxl.load_workbook(path)
        fonts = {ws.cell(r, c).font.name for ws in wb.worksheets for r in range(1, min(ws.max_row, 40) + 1)
                 for c in range(1, min(ws.max_column, 20) + 1) if ws.cell(r, c).value is not None}
        want = load_rules().font("en" if name == "eval_en" else "zh")
        assert fonts == {want}, (name, fonts)


def test_evaluation_sheet_prints_a_column_set_and_the_rest_on_a_second_sheet(books):
    wb = openpyxl.load_workbook(books["eval_zh"])
    assert wb.sheetnames == ["客户分层评估表", "汇总", "评分依据"]
    ws = wb["客户分层评估表"]
    heads = [c.value for c in ws[1]]
    last = last_printed_col(ws)
    printed = heads[:last]
    assert {"客户姓名", "总分", "优先级", "行动计划", "负责人"} <= set(printed)
    assert "评分依据" in heads and "评分依据" not in printed  # the screen keeps it; paper has it on sheet 2
    rest = wb["评分依据"]
    rest_heads = [c.value for c in rest[1]]
    assert rest_heads[0] == "客户姓名" and "评分依据" in rest_heads and set(heads) == set(printed) | set(rest_heads)
    reasons = heads.index("评分依据") + 1
    for r in range(2, ws.max_row + 1):  # row by row the same customer and the same reasons
        assert rest.cell(r, 1).value == ws.cell(r, 1).value
        assert rest.cell(r, rest_heads.index("评分依据") + 1).value == ws.cell(r, reasons).value


def last_printed_col(ws) -> int:
    """1-based last column of the sheet's print area."""
    import re

    m = re.search(r":\$?([A-Z]+)\$?\d+$", str(ws.print_area))
    assert m, ws.print_area
    return openpyxl.utils.column_index_from_string(m.group(1))


def test_charts_stand_inside_the_print_area(books):
    ws = openpyxl.load_workbook(books["churn"])["挽回效果"]
    last_col = last_printed_col(ws)
    for ch in ws._charts:
        assert ch.anchor._from.col < last_col, "chart right of the print area"


def test_print_rules_are_checked_with_file_and_key(tmp_path):
    from tierctl.errors import ModelError

    bad = tmp_path / "print.toml"
    bad.write_text((ROOT / "tierctl" / "data" / "print.toml").read_text(encoding="utf-8")
                   .replace("paper = 9", "paper = 77"), encoding="utf-8")
    with pytest.raises(ModelError) as e:
        load_rules(bad)
    assert "print.toml" in str(e.value.path if hasattr(e.value, "path") else e.value) or "print.toml" in str(e.value)
    assert "paper" in str(e.value) or "paper" in str(getattr(e.value, "key", ""))


# -- the real print: LibreOffice to PDF ----------------------------------------------------
def soffice() -> str:
    exe = shutil.which("soffice") or shutil.which("libreoffice")
    if exe:
        return exe
    reason = "LibreOffice (soffice) not installed: apt-get install libreoffice-calc-nogui"
    if os.environ.get("CI"):
        pytest.fail(reason + " — .ci/run should have installed it")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def pdfs(books, tmp_path_factory) -> dict[str, Path]:
    exe = soffice()
    out = tmp_path_factory.mktemp("pdf")
    profile = tmp_path_factory.mktemp("lo-profile")
    subprocess.run([exe, f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to", "pdf",
                    "--outdir", str(out), *map(str, books.values())], check=True, capture_output=True, timeout=600)
    return {name: out / (path.stem + ".pdf") for name, path in books.items()}


@functools.cache
def page_text_sizes(pdf: Path) -> list[tuple[tuple[float, float], float, str]]:
    """Per page: its size (points), the smallest text size on paper and all its text.
    Read once per PDF (pypdf takes about 2 s for the RFM workbook's 45 pages); the tests
    only read the list."""
    from pypdf import PdfReader

    pages = []
    for page in PdfReader(pdf).pages:
        sizes: collections.Counter[float] = collections.Counter()
        texts: list[str] = []

        def visit(text, cm, tm, _font, size, sizes=sizes, texts=texts):
            if text.strip():
                c = tm[2] * cm[0] + tm[3] * cm[2]
                d = tm[2] * cm[1] + tm[3] * cm[3]
                sizes[round(size * (c * c + d * d) ** 0.5, 2)] += 1
                texts.append(text)

        page.extract_text(visitor_text=visit)
        pages.append(((float(page.mediabox.width), float(page.mediabox.height)), min(sizes, default=99.0),
                      "".join(texts)))
    return pages


# the sample's workbooks: how many A4 pages each prints on — a band around what LibreOffice 7.4
# (Debian 12) prints, every sheet one page wide (before: the evaluation sheet 2 pages at ~4 pt,
# the RFM workbook 51 portrait pages with columns and the chart cut across pages)
PAGES = {"eval_zh": (10, 16), "eval_en": (10, 17), "eval_plan": (18, 28), "churn": (10, 16), "rfm_weekly": (40, 50),
         "rfm_migration": (4, 7), "score_table": (12, 20)}


@pytest.mark.parametrize("name", list(PAGES))
def test_pdf_pages_are_a4_and_never_below_8pt(pdfs, name):
    pages = page_text_sizes(pdfs[name])
    lo, hi = PAGES[name]
    assert lo <= len(pages) <= hi, f"{name}: {len(pages)} pages"
    min_pt = load_rules().min_pt
    for i, (size, smallest, _text) in enumerate(pages, start=1):
        assert sorted(round(v, 1) for v in size) == list(A4), f"{name} page {i}: {size} is not A4"
        assert smallest >= min_pt - 0.05, f"{name} page {i}: text at {smallest} pt"


def test_pdf_rfm_weekly_keeps_its_chart_on_one_page(pdfs):
    pages = page_text_sizes(pdfs["rfm_weekly"])
    assert len(pages) < 51  # issue 17: 51 portrait pages, the chart cut across 3
    chart_pages = [i for i, (_s, _m, text) in enumerate(pages) if "各类客户的客户占比与收入占比" in text]
    assert len(chart_pages) <= 1


def test_pdf_evaluation_sheet_prints_the_printable_columns_on_every_page(pdfs):
    pages = page_text_sizes(pdfs["eval_zh"])
    sheet_pages = [p for p in pages if "行动计划" in p[2]]
    assert len(sheet_pages) >= 2  # more than one page tall, the header on each of them
    for _size, _m, text in sheet_pages:
        for head in ("客户姓名", "总分", "优先级", "行动计划", "负责人"):
            assert head in text
    assert any("评分依据" in p[2] and "客户姓名" in p[2] for p in pages if "行动计划" not in p[2])


def test_pdf_churn_charts_print(pdfs):
    pages = page_text_sizes(pdfs["churn"])
    text = "".join(p[2] for p in pages)
    assert "各风险等级挽回率与行业标准" in text and "各风险等级 ROI" in text


def test_a_sheet_too_long_to_print_gets_no_continuation_but_keeps_its_print_area(tmp_path, monkeypatch):
    """Above ``continue_rows`` data rows a sheet is not a print: no continuation sheet
    (it would double the writing of a 100,000-customer evaluation sheet)."""
    from tierctl import render

    rules = dataclasses.replace(load_rules(), continue_rows=10)
    monkeypatch.setattr(printsetup, "load_rules", lambda path=None: rules)
    path = render.write_evaluation_sheet(_shortage(), tmp_path / "long.xlsx")
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["客户分层评估表", "汇总"]
    ws = wb["客户分层评估表"]
    assert last_printed_col(ws) < ws.max_column  # the printable columns only
