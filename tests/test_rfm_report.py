"""The RFM workbooks, read back with openpyxl: sheets, the native chart, listings with
Excel row numbers, text that looks like a formula kept as text, atomic writes."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from tierctl.errors import RenderError
from tierctl.io.ingest import read_export
from tierctl.rfm import compute_rfm, flow_customers, load_rfm_model, migrate
from tierctl.rfm.report import migration_path, weekly_path, write_weekly
from tierctl.rfm.report_migration import write_migration

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "visits.csv"
AS_OF = date(2026, 11, 24)
TYPE_SHEETS = ["1 重要价值", "2 重要保持", "3 重要发展", "4 重要挽留", "5 一般价值", "6 一般保持", "7 一般发展", "8 流失"]


@pytest.fixture(scope="module")
def model():
    return load_rfm_model()


@pytest.fixture(scope="module")
def sample(model):
    return read_export(SAMPLE, model.columns)


@pytest.fixture(scope="module")
def result(model, sample):
    return compute_rfm(sample.frame, model, AS_OF)


def rows_of(ws, header_row: int = 1) -> list[dict]:
    values = list(ws.iter_rows(min_row=header_row, values_only=True))
    header = values[0]
    return [dict(zip(header, r, strict=False)) for r in values[1:] if any(v is not None for v in r)]


def test_weekly_path():
    assert weekly_path(Path("out"), AS_OF) == Path("out/2026-11-24/rfm_weekly.xlsx")
    assert migration_path(Path("out"), AS_OF) == Path("out/2026-11-24/rfm_migration.xlsx")


@pytest.mark.parametrize("stream", [False, True])
def test_weekly_workbook_contents(tmp_path, model, result, stream):
    path = write_weekly(result, model, tmp_path / "w.xlsx", source="visits.csv", stream=stream)
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["汇总", *TYPE_SHEETS, "红色预警", "分箱边界", "数据质量", "红色预警（续）"]  # issue 17: print

    summary = wb["汇总"]
    assert len(summary._charts) == 1  # a native Excel chart, not a picture
    cells = [c for row in summary.iter_rows(values_only=True) for c in row if c is not None]
    assert "2026-11-24" in cells and "visits.csv" in cells
    header_row = next(i for i, r in enumerate(summary.iter_rows(values_only=True), 1) if r[0] == "编号")
    table = rows_of(summary, header_row)[:8]
    expected = result.summary
    assert [r["类型"] for r in table] == expected["type_name"].tolist()
    assert [r["客户数"] for r in table] == expected["customers"].tolist()
    assert [round(r["客户占比"] * 100, 2) for r in table] == expected["share_pct"].tolist()
    flagged = {r["类型"]: r["提示"] for r in table}
    for rec in expected.to_dict(orient="records"):
        if rec["share_flag"] == "above":
            assert "明显偏高" in flagged[rec["type_name"]]
        if rec["red_alert"]:
            assert "红色预警" in flagged[rec["type_name"]]

    c = result.customers
    for no, name in enumerate(TYPE_SHEETS, start=1):
        ws = wb[name]
        listed = rows_of(ws)
        part = c[c["type_no"] == no]
        if not len(part):
            assert listed[0]["客户编号"] == "（本期没有这类客户）"
            continue
        assert [r["客户编号"] for r in listed] == part["customer_id"].tolist()
        assert [r["RFM"] for r in listed] == part["rfm"].tolist()
        assert [r["消费金额 M（元）"] for r in listed] == pytest.approx(part["monetary"].tolist())
        assert [r["到店次数 F"] for r in listed] == part["frequency"].tolist()
        assert all(r["建议动作"] == model.type_by_no(no).strategy_zh for r in listed)
        assert ws.freeze_panes == "A2" and ws.auto_filter.ref.startswith("A1:")
        assert ws.column_dimensions["A"].width >= 10
    lin = next(r for r in rows_of(wb["1 重要价值"]) if r["客户编号"] == "010086")
    assert lin["姓名"] == "林女士" and lin["最近到店"].date() == date(2026, 11, 19)

    red = rows_of(wb["红色预警"])
    assert len(red) == int(c["red_alert"].sum()) > 0
    assert {r["类型"] for r in red} <= {"重要保持", "重要挽留"}
    assert {"负责人", "跟进日期", "跟进结果"} <= set(red[0])

    edges_cells = [v for row in wb["分箱边界"].iter_rows(values_only=True) for v in row if v is not None]
    for dim in ("recency_days", "frequency", "monetary"):
        for b in result.edges.to_dict()[dim]:
            assert b is None or b in edges_cells
    assert any("分位数" in str(v) for v in edges_cells)

    quality = rows_of(wb["数据质量"])
    assert len(quality) == len(result.quality)
    future = [r for r in quality if r["类别"].startswith("晚于评估日")]
    assert [r["Excel 行号"] for r in future] == [q["row"] for q in result.quality if q["kind"] == "after_as_of"]
    assert all(isinstance(r["Excel 行号"], int) for r in future) and len(future) == 6
    assert sum(r["类别"].startswith("退款") for r in quality) == 10


def test_rows_after_as_of_keep_the_excel_row_number(tmp_path, model, result):
    # the sample has a title line above the header: record i sits on Excel row i + 3
    text = SAMPLE.read_bytes().decode("gbk").splitlines()
    for q in (q for q in result.quality if q["kind"] == "after_as_of"):
        line = text[q["row"] - 1]
        assert line.split(",")[1] == q["customer_id"]
        assert line.split(",")[6] > "2026-11-24"


def test_formula_like_text_stays_text(tmp_path, model):
    evil = ["=HYPERLINK(\"http://x\",\"y\")", "+8613800000000", "-1+2", "@SUM(A1)", "\tTAB", "normal"]
    frame = pd.DataFrame({
        "customer_id": pd.array([f"=C{i}" if i == 0 else f"C{i}" for i in range(6)], dtype="str"),
        "name": pd.array(evil, dtype="str"),
        "phone": pd.array(["=1+1", "+1", "-1", "@x", None, "13800000000"], dtype="str"),
        "visit_date": pd.to_datetime([AS_OF - timedelta(days=d) for d in range(6)]),
        "amount": pd.array([100.0 * (i + 1) for i in range(6)], dtype="Float64"),
        "_row": np.arange(2, 8),
    })
    res = compute_rfm(frame, model, AS_OF)
    path = write_weekly(res, model, tmp_path / "evil.xlsx")
    wb = openpyxl.load_workbook(path)
    seen = {}
    for name in TYPE_SHEETS:
        for r in wb[name].iter_rows(min_row=2):
            if r[0].value and not str(r[0].value).startswith("（"):
                seen[r[0].value] = (r[1], r[2])
    assert set(seen) == {"=C0", "C1", "C2", "C3", "C4", "C5"}
    for cid, (name_cell, phone_cell) in seen.items():
        i = int(cid[-1])
        assert name_cell.data_type == "s" and name_cell.value == evil[i]
        if i < 4:
            assert phone_cell.data_type == "s"
    # no cell anywhere is a formula
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)


def test_never_overwrites_without_force_and_is_atomic(tmp_path, model, result, monkeypatch):
    path = tmp_path / "out" / "2026-11-24" / "rfm_weekly.xlsx"
    write_weekly(result, model, path)
    first = path.read_bytes()
    with pytest.raises(RenderError, match="--force"):
        write_weekly(result, model, path)
    assert path.read_bytes() == first
    write_weekly(result, model, path, force=True)

    import tierctl.rfm.report as report

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(report, "_quality_sheet", boom)
    with pytest.raises(RuntimeError):
        write_weekly(result, model, path, force=True)
    assert openpyxl.load_workbook(path).sheetnames[0] == "汇总"  # the old file is intact
    fresh = tmp_path / "fresh.xlsx"
    with pytest.raises(RuntimeError):
        write_weekly(result, model, fresh)
    assert not fresh.exists()
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".part")]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_empty_result_still_makes_a_workbook(tmp_path, model, sample):
    res = compute_rfm(sample.frame.iloc[:0], model, AS_OF)
    wb = openpyxl.load_workbook(write_weekly(res, model, tmp_path / "e.xlsx"))
    assert rows_of(wb["红色预警"])[0]["类型"] == "（本期没有红色预警客户）"
    assert len(wb["汇总"]._charts) == 1


def test_vin_unit_lists_vehicles(tmp_path, model, sample):
    vin_model = model.with_unit("vin")
    res = compute_rfm(sample.frame, vin_model, AS_OF)
    wb = openpyxl.load_workbook(write_weekly(res, vin_model, tmp_path / "v.xlsx"))
    listed = rows_of(wb["1 重要价值"])
    assert list(listed[0])[:2] == ["车架号", "车主编号"]
    assert len(listed[0]["车架号"]) == 17


def test_migration_workbook(tmp_path, model, sample):
    prev = compute_rfm(sample.frame, model, date(2026, 10, 24))
    curr = compute_rfm(sample.frame, model, AS_OF, edges=prev.edges)
    mig = migrate(prev, curr, model)
    flows = flow_customers(mig, prev.customers, curr.customers, "customer_id")
    path = write_migration(mig, model, tmp_path / "m.xlsx", flows=flows)
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["迁移矩阵", "关键流向", "占比对比", "分箱边界"]
    m = list(wb["迁移矩阵"].iter_rows(min_row=5, max_row=13, min_col=2, max_col=10, values_only=True))
    assert [list(r) for r in m] == mig.matrix.to_numpy().tolist()
    notes = [v for r in wb["迁移矩阵"].iter_rows(values_only=True) for v in r if isinstance(v, str)]
    assert mig.edges["note"] in notes and mig.edges["same_scale"]
    assert len(wb["占比对比"]._charts) == 1
    flow_rows = list(wb["关键流向"].iter_rows(values_only=True))
    header_at = next(i for i, r in enumerate(flow_rows) if r[0] == "流向")
    listed = [r for r in flow_rows[header_at + 1:] if r[0]]
    assert sorted(r[1] for r in listed) == sorted(i for f in mig.flows for i in f["customer_ids"])
    with pytest.raises(RenderError):
        write_migration(mig, model, path, flows=flows)
