"""The churn report as a print-ready workbook with native Excel charts."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tierctl.churn.report import LoopReport
from tierctl.churn.roi import percent, wan

STATUS_TEXT = {"below": "低于行业标准", "within": "达到行业标准", "above": "高于行业标准", "n/a": "—"}
EFFECT_TEXT = {"worked": "有效（降≥20分）", "not_worked": "未达标", "pending": "观察中", "no_data": "无后续评分"}
WINBACK_TEXT = {"won": "已挽回", "lost": "未挽回", "pending": "待定"}


def write_report_xlsx(report: LoopReport, path: Path, *, force: bool = False) -> Path:
    """The report as a print-ready workbook: the per-level table with totals, the
    counterfactual and KPIs, two native Excel charts (win-back rate against the
    benchmark, ROI by level) and the intervention detail.  Written atomically; text is
    never turned into a formula."""
    from tierctl.io.writers import atomic_path, xlsx_workbook

    with atomic_path(path, force=force) as tmp:
        wb = xlsx_workbook(tmp, {"strings_to_formulas": False, "strings_to_urls": False,
                                 "strings_to_numbers": False})
        f = _formats(wb)
        ws = wb.add_worksheet("挽回效果")
        r0 = 3
        r = _level_table(ws, report, f, r0)
        _notes(ws, report, f, r)
        if report.roi.levels:
            _charts(wb, ws, r0, len(report.roi.levels))
        ws.set_landscape()
        ws.fit_to_pages(1, 0)
        if len(report.interventions):
            _detail_sheet(wb, report.interventions, f["head"], f["txt"], f["num"], f["money"])
        wb.close()
    return path


def _formats(wb: Any) -> dict[str, Any]:
    return {
        "title": wb.add_format({"bold": True, "font_size": 14}),
        "head": wb.add_format({"bold": True, "bg_color": "#D9E1F2", "border": 1, "text_wrap": True,
                               "align": "center", "valign": "vcenter"}),
        "txt": wb.add_format({"border": 1}),
        "num": wb.add_format({"border": 1, "num_format": "#,##0"}),
        "money": wb.add_format({"border": 1, "num_format": "#,##0.00"}),
        "pct": wb.add_format({"border": 1, "num_format": "0%"}),
        "bold": wb.add_format({"bold": True, "border": 1}),
        "note": wb.add_format({"text_wrap": True, "valign": "top"}),
    }


def _level_table(ws: Any, report: LoopReport, f: Mapping[str, Any], r0: int) -> int:
    """The title, the per-level table from row ``r0`` and its totals; the next free row."""
    from tierctl.io.writers import neutralise

    roi = report.roi
    txt, num, money, pct = f["txt"], f["num"], f["money"], f["pct"]
    ws.write_string(0, 0, neutralise(report.title or "流失挽回效果"), f["title"])
    heads = ["等级", "客户数", "干预数", "挽回数", "挽回率", "行业标准下限", "行业标准上限", "对比行业标准",
             "成本（元）", "挽回收入（元）", "ROI"]
    widths = [10, 9, 9, 9, 9, 12, 12, 14, 14, 16, 9]
    for j, (h, w) in enumerate(zip(heads, widths, strict=True)):
        ws.write_string(2, j, h, f["head"])
        ws.set_column(j, j, w)
    for i, lv in enumerate(roi.levels):
        r = r0 + i
        ws.write_string(r, 0, f"{lv.label}风险", txt)
        ws.write_number(r, 1, lv.customers, num)
        ws.write_number(r, 2, lv.intervened, num)
        ws.write_number(r, 3, lv.won_back, num)
        _num_or_blank(ws, r, 4, lv.rate, pct)
        ws.write_number(r, 5, float(lv.benchmark[0]), pct)
        ws.write_number(r, 6, float(lv.benchmark[1]), pct)
        ws.write_string(r, 7, STATUS_TEXT[lv.benchmark_status], txt)
        ws.write_number(r, 8, float(lv.cost), money)
        ws.write_number(r, 9, float(lv.revenue), money)
        _num_or_blank(ws, r, 10, lv.roi, pct)
    rt = r0 + len(roi.levels)
    ws.write_string(rt, 0, "合计", f["bold"])
    ws.write_number(rt, 1, roi.customers, num)
    ws.write_number(rt, 2, roi.intervened, num)
    ws.write_number(rt, 3, roi.won_back, num)
    _num_or_blank(ws, rt, 4, roi.rate, pct)
    for j in (5, 6, 7):
        ws.write_blank(rt, j, None, txt)
    ws.write_number(rt, 8, float(roi.cost), money)
    ws.write_number(rt, 9, float(roi.revenue), money)
    _num_or_blank(ws, rt, 10, roi.roi, pct)
    return rt + 2


def _notes(ws: Any, report: LoopReport, f: Mapping[str, Any], r: int) -> None:
    """The counterfactual lines, the KPI table and the warnings from row ``r``."""
    from tierctl.io.writers import neutralise

    roi = report.roi
    lines = [f"平均年消费 {roi.average_annual_spend.normalize():f} 元；ROI = (挽回数 × 平均年消费 − 成本) ÷ 成本",
             f"如果不干预：按 {percent(roi.base_churn_rate)} 流失率预计流失 {roi.expected_churn.normalize():f} 人，"
             f"损失收入 {wan(roi.expected_loss)}元",
             f"干预后：实际流失 {roi.actual_churn} 人，减少流失 {roi.churn_avoided.normalize():f} 人，"
             f"避免损失 {wan(roi.saved)}元；增量ROI {percent(roi.incremental_roi)}"]
    for line in lines:
        ws.write_string(r, 0, line)
        r += 1
    if report.kpis:
        r += 1
        for j, h in enumerate(["考核指标", "实际", "目标（高于）", "分子/分母", "是否达标"]):
            ws.write_string(r, j, h, f["head"])
        r += 1
        for k in report.kpis:
            ws.write_string(r, 0, k.label, f["txt"])
            _num_or_blank(ws, r, 1, k.value, f["pct"])
            ws.write_number(r, 2, float(k.target), f["pct"])
            cnt = report.kpi_counts.get(k.key)
            ws.write_string(r, 3, f"{cnt[0]}/{cnt[1]}" if cnt else "—", f["txt"])
            ws.write_string(r, 4, "—" if k.met is None else ("达标" if k.met else "未达标"), f["txt"])
            r += 1
    for text in report.warnings:
        r += 1
        ws.write_string(r, 0, str(neutralise("注意：" + text)), f["note"])


def _charts(wb: Any, ws: Any, r0: int, n: int) -> None:
    """Win-back rate against both benchmark lines, and ROI by level (native charts)."""
    cats = ["挽回效果", r0, 0, r0 + n - 1, 0]
    ch = wb.add_chart({"type": "column"})
    ch.add_series({"name": "挽回率", "categories": cats, "values": ["挽回效果", r0, 4, r0 + n - 1, 4],
                   "data_labels": {"value": True, "num_format": "0%"}, "fill": {"color": "#4472C4"}})
    line = wb.add_chart({"type": "line"})  # one combined chart holds both benchmark lines
    for col, name, color in ((5, "行业标准下限", "#A5A5A5"), (6, "行业标准上限", "#ED7D31")):
        line.add_series({"name": name, "categories": cats, "values": ["挽回效果", r0, col, r0 + n - 1, col],
                         "line": {"color": color, "dash_type": "dash"}, "marker": {"type": "diamond"}})
    ch.combine(line)
    ch.set_title({"name": "各风险等级挽回率与行业标准"})
    ch.set_y_axis({"num_format": "0%", "min": 0})
    ch.set_legend({"position": "bottom"})
    ws.insert_chart(2, 12, ch, {"x_scale": 1.1, "y_scale": 1.0})
    ch2 = wb.add_chart({"type": "column"})
    ch2.add_series({"name": "ROI", "categories": cats, "values": ["挽回效果", r0, 10, r0 + n - 1, 10],
                    "data_labels": {"value": True, "num_format": "0%"}, "fill": {"color": "#70AD47"},
                    "invert_if_negative": False})
    ch2.set_title({"name": "各风险等级 ROI"})
    ch2.set_y_axis({"num_format": "0%"})
    ch2.set_legend({"none": True})
    ws.insert_chart(18, 12, ch2, {"x_scale": 1.1, "y_scale": 1.0})


def _num_or_blank(ws: Any, r: int, c: int, v: Decimal | None, fmt: Any) -> None:
    if v is None:
        ws.write_blank(r, c, None, fmt)
    else:
        ws.write_number(r, c, float(v), fmt)


def _detail_sheet(wb: Any, iv: pd.DataFrame, head: Any, txt: Any, num: Any, money: Any) -> None:
    """The interventions one row each, written a block of rows at a time (``write_rows``)."""
    from tierctl.io.xlsxrows import RowsColumn

    ws = wb.add_worksheet("干预明细")
    cols = [("客户编号", "customer_id", 14), ("客户", "name", 10), ("等级", "level", 6), ("干预日期", "date", 11),
            ("干预时风险分", "score_before", 10), ("30天内最低分", "score_after", 10), ("效果", "effect", 14),
            ("负责人", "owner", 12), ("首次干预", "action", 28), ("联系结果", "result", 10),
            ("联系次数", "contacts", 8), ("成本（元）", "cost", 11), ("窗口内最近到店", "last_visit_seen", 13),
            ("挽回", "won_back", 8)]
    for j, (h, _, w) in enumerate(cols):
        ws.write_string(0, j, h, head)
        ws.set_column(j, j, w)
    cells = [[_detail_cell(rec.get(k), k) for _, k, _ in cols] for rec in iv.to_dict("records")]
    fmts = {"n": [num], "s": [txt]}
    for start, stop, kinds in _row_blocks(cells, len(cols)):
        columns = [RowsColumn([row[j][1] for row in cells[start:stop]], kind,
                              [money] if kind == "n" and k == "cost" else fmts[kind], [txt])
                   for j, ((_, k, _), kind) in enumerate(zip(cols, kinds, strict=True))]
        ws.write_rows(1 + start, columns)
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, len(iv), len(cols) - 1)


def _detail_cell(v: Any, key: str) -> tuple[str | None, Any]:
    """How a detail cell is written: ("n", number), ("s", text) or (None, None) for a blank."""
    from tierctl.io.writers import neutralise

    if key == "effect":
        v = EFFECT_TEXT.get(v, v)
    elif key == "won_back":
        v = WINBACK_TEXT.get(v, v)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None, None
    if isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool):
        return "n", float(v)
    return "s", str(neutralise(v.isoformat() if isinstance(v, dt.date) else str(v)))


def _row_blocks(cells: list[list[tuple[str | None, Any]]], width: int) -> list[tuple[int, int, list[str]]]:
    """Runs of rows whose every column holds one kind (blanks fit any), as (start, stop,
    kinds): each run is one ``write_rows`` block.  A column of numbers and texts mixed
    starts a new run where its kind changes."""
    blocks: list[tuple[int, int, list[str]]] = []
    start, kinds = 0, _no_kinds(width)
    for i, row in enumerate(cells):
        if any(k is not None and kinds[j] not in (None, k) for j, (k, _v) in enumerate(row)):
            blocks.append((start, i, [k or "s" for k in kinds]))
            start, kinds = i, _no_kinds(width)
        kinds = [kinds[j] or k for j, (k, _v) in enumerate(row)]
    if start < len(cells):
        blocks.append((start, len(cells), [k or "s" for k in kinds]))
    return blocks


def _no_kinds(width: int) -> list[str | None]:
    return [None] * width


# =====================================================================================
# Upkeep touches: drafted messages
