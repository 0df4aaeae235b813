"""The RFM workbooks a service manager opens on Monday: the weekly report and the monthly
migration report (xlsxwriter; no CLI, no store).

Every workbook is written to a temporary file beside its target and moved into place in
one step, never over an existing file unless ``force``; text cells are always written as
text (``strings_to_formulas`` off), so a name such as ``=HYPERLINK(…)`` stays a name.

Weekly report (:func:`write_weekly`), sheets in order:

* ``汇总`` – the run (as-of date, window, unit, binning, bases), one row per type with
  customers, share, revenue and revenue share next to the usual ranges (a share far
  outside them is flagged), the data-quality counts and a native column chart of
  customer share and revenue share by type;
* one sheet per type (``1 重要价值`` …) listing its customers with R, F, M, the scores and
  the recommended action;
* ``红色预警`` – the red-alert types (重要保持, 重要挽留 by default) with empty follow-up
  columns to fill in;
* ``分箱边界`` – the edges used, per score, and their raw values (to freeze them later);
* ``数据质量`` – every note of the run: rows after the as-of date, refunds, rows that could
  not be used, … with their Excel row numbers.

Migration report (:func:`tierctl.rfm.report_migration.write_migration`): ``迁移矩阵``, ``关键流向``, ``占比对比`` (with a
chart) and ``分箱边界``.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tierctl.errors import RenderError
from tierctl.io.writers import atomic_path
from tierctl.rfm.model import DIMENSIONS, Edges, RfmModel
from tierctl.rfm.result import RfmResult
from tierctl.rfm.workbook import Col, _Book

__all__ = ["BASIS_TEXT", "QUALITY_LABELS", "edges_lines", "migration_path", "small_population_lines",
           "weekly_path", "write_weekly"]

# above this many customers the workbook is streamed row by row (constant memory)
STREAM_ABOVE = 20_000

QUALITY_LABELS = {
    "missing_value": "缺少数据（该行未计入）",
    "after_as_of": "晚于评估日（未计入）",
    "outside_window": "早于统计窗口（未计入）",
    "refund": "退款（冲减 M，不算到店）",
    "refund_only": "只有退款（未评分）",
    "negative_net": "净消费为负",
    "shared_order_id": "单号出现在多个客户名下",
    "missing_order_id": "缺少工单号（按日期计次）",
    "id_name_conflict": "同一编号多个姓名",
    "small_sample": "客户太少",
    "ties": "并列同分",
}

BASIS_TEXT = {
    "order_id": "F = 不同的工单/结算单号个数（同一单号的多行算一次到店；同一天的两张单算两次）",
    "visit_date": "F = 不同的到店日期个数（导出文件没有工单号）",
    "sum": "M = 窗口内净消费合计（元，退款冲减）",
    "mean": "M = 每次到店平均净消费（元，退款冲减）",
}

BINNING_TEXT = {
    "quantile": "分位数：按本次数据排名打分，并列的客户同分",
    "thresholds": "固定业务阈值（模型文件 [thresholds]）",
    "frozen": "冻结：沿用之前一次运行的边界，与那次同一尺度",
}


def edges_lines(edges: Edges) -> list[str]:
    """One short line per dimension: what each score takes (the bounds never overlap, so
    "≥ the bound of k" is the whole rule; a skipped score is said to be empty)."""
    raw = edges.to_dict()
    out = []
    for dim, label, unit, op in (("recency_days", "R 距今天数", "天", "≤"), ("frequency", "F 到店次数", "次", "≥"),
                                 ("monetary", "M 消费金额", "元", "≥")):
        bounds = raw[dim]
        parts = []
        for k in range(5, 1, -1):
            b = bounds[k - 2]
            if b is None:
                parts.append(f"{k} 分无人")
            elif k < 5 and bounds[k - 1] == b:
                parts.append(f"{k} 分空缺")
            else:
                parts.append(f"{k} 分 {op}{b:,}{unit}")
        parts.append("其余 1 分")
        out.append(f"{label}：" + " · ".join(parts))
    return out


def small_population_lines(result: RfmResult, source: str | None = None) -> list[str]:
    """What a run on too few customers must say first (terminal and workbook): the
    quantiles are unreliable, the option that uses the model's fixed thresholds, those
    thresholds, and what they would give on this data.  Empty when nothing to say."""
    sp = result.small_population
    if not sp:
        return []
    import shlex

    target = shlex.quote(source) if source else "到店记录.csv"
    thresholds = Edges.from_dict(sp["thresholds"])
    types = " · ".join(f"{t['type_name']} {t['customers']}" for t in sp["with_thresholds"] if t["customers"])
    return [
        f"⚠ 只有 {sp['customers']:,} 位客户（少于 {sp['min_customers']:,} 位）：按本次数据的分位数打分不可靠，"
        "一位客户的变化就会挪动别人的分数，各类人数和占比仅供参考。",
        f"建议改用固定阈值：tierctl rfm run {target} --binning thresholds"
        "（阈值在模型文件 [thresholds]，可复制 rfm.toml 修改后用 --model 传入）。模型的固定阈值：",
        *("  " + line for line in edges_lines(thresholds)),
        f"  按这些阈值，本次客户将分为：{types or '（无）'}",
    ]


def weekly_path(out_dir: Path, as_of: dt.date) -> Path:
    """``DIR/<as-of>/rfm_weekly.xlsx``."""
    return Path(out_dir) / as_of.isoformat() / "rfm_weekly.xlsx"


def migration_path(out_dir: Path, as_of: dt.date) -> Path:
    """``DIR/<as-of of the later snapshot>/rfm_migration.xlsx``."""
    return Path(out_dir) / as_of.isoformat() / "rfm_migration.xlsx"





# =====================================================================================
# Weekly report
# =====================================================================================
def _customer_cols(result: RfmResult, *, with_type: bool, follow_up: bool) -> list[Col]:
    cols: list[Col] = []
    if with_type:
        cols.append(Col("类型", lambda c: c["type_name"], min_width=8))
    if result.unit == "vin":
        cols.append(Col("车架号", lambda c: c["vin"], min_width=18))
        cols.append(Col("车主编号", lambda c: c["customer_id"], min_width=10))
    else:
        cols.append(Col("客户编号", lambda c: c["customer_id"], min_width=10))
    m_header = "每次平均消费 M（元）" if result.monetary_basis == "mean" else "消费金额 M（元）"
    cols += [
        Col("姓名", lambda c: c["name"], min_width=8),
        Col("电话", lambda c: c["phone"], min_width=12),
        Col("最近到店", lambda c: c["last_visit"], "date", min_width=11),
        Col("距今天数 R", lambda c: c["recency_days"], "int", min_width=7),
        Col("到店次数 F", lambda c: c["frequency"], "int", min_width=7),
        Col(m_header, lambda c: c["monetary"], "money", min_width=11),
    ]
    if result.monetary_basis == "mean":
        cols.append(Col("净消费（元）", lambda c: c["revenue"], "money", min_width=11))
    cols += [
        Col("R 分", lambda c: c["r"], "int", min_width=5),
        Col("F 分", lambda c: c["f"], "int", min_width=5),
        Col("M 分", lambda c: c["m"], "int", min_width=5),
        Col("RFM", lambda c: c["rfm"], min_width=7),
        Col("KOL", lambda c: np.where(c["kol"].to_numpy(dtype=bool, na_value=False), "是", ""), min_width=5),
        Col("提示", lambda c: np.where(c["kol_flag"].to_numpy(dtype=bool, na_value=False),
                                     "KOL：影响力大，勿按低消费客户处理", ""), min_width=6, max_width=34),
        Col("建议动作", lambda c: c["strategy"], min_width=20, max_width=60),
    ]
    if follow_up:
        blank = lambda c: [None] * len(c)  # noqa: E731 - columns the manager fills in
        cols += [Col("负责人", blank, min_width=8), Col("跟进日期", blank, min_width=10),
                 Col("跟进结果", blank, min_width=20)]
    return cols


def _info_rows(result: RfmResult, model: RfmModel, source: str | None,
               frozen_from: dt.date | None) -> list[tuple[str, str]]:
    unit = "车辆（车架号 VIN）" if result.unit == "vin" else "车主（客户编号）"
    binning = BINNING_TEXT.get(result.binning, result.binning)
    if result.binning == "frozen" and frozen_from is not None:
        binning = f"冻结：沿用 {frozen_from.isoformat()} 那次的边界，与那次同一尺度"
    rows = [
        ("评估日期", result.as_of.isoformat()),
        ("统计窗口", f"{result.window_start.isoformat()} 至 {result.as_of.isoformat()}（{result.window_days} 天）"),
        ("统计单位", unit),
        ("参与评分的客户", f"{len(result.customers):,} 位"),
        ("分箱方式", binning),
        ("高低划分", f"R、F、M 各自 ≥ {model.high_min} 分为高，否则为低"),
        ("到店次数 F", BASIS_TEXT.get(result.frequency_basis, result.frequency_basis)),
        ("消费金额 M", BASIS_TEXT.get(result.monetary_basis, result.monetary_basis)),
        ("模型", f"{model.name}（{model.path.name}）"),
    ]
    if source:
        rows.append(("来源文件", source))
    return rows


def _share_flag_text(flag: Any, lo: float, hi: float) -> str:
    if flag == "above":
        return f"明显偏高（常见 {_num(lo)}–{_num(hi)}%）"
    if flag == "below":
        return f"明显偏低（常见 {_num(lo)}–{_num(hi)}%）"
    return ""


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def _pattern(t: Any) -> str:
    return "".join("高" if h else "低" for h in (t.r_high, t.f_high, t.m_high))


def _summary_sheet(book: _Book, result: RfmResult, model: RfmModel, source: str | None,
                   frozen_from: dt.date | None) -> None:
    ws = book.sheet("汇总")
    f = book.f
    ws.write_string(0, 0, f"RFM 客户分层周报 · 评估日 {result.as_of.isoformat()}", f["title"])
    # too few customers for quantiles: the first thing the reader sees
    warn = small_population_lines(result, source)
    for i, line in enumerate(warn):
        ws.write_string(1 + i, 0, line, f["flag"] if i == 0 else f["text"])
    row = 2 + len(warn)
    for label, value in _info_rows(result, model, source, frozen_from):
        ws.write_string(row, 0, label, f["label"])
        ws.write_string(row, 1, value)
        row += 1
    row += 1
    top = row
    headers = ["编号", "类型", "R·F·M", "客户数", "客户占比", "常见占比", "收入（元）", "收入占比", "常见利润占比",
               "提示", "建议动作"]
    widths = [6, 12, 8, 9, 10, 10, 14, 10, 12, 24, 60]
    for j, (h, w) in enumerate(zip(headers, widths, strict=True)):
        ws.set_column(j, j, w)
        ws.write_string(top, j, h, f["header"])
    s = result.summary
    by_no = {t.no: t for t in model.types}
    for i, rec in enumerate(s.to_dict(orient="records")):
        r = top + 1 + i
        t = by_no[int(rec["type_no"])]
        ws.write_number(r, 0, int(rec["type_no"]))
        ws.write_string(r, 1, str(rec["type_name"]), f["bold"] if rec["red_alert"] else f["text"])
        ws.write_string(r, 2, _pattern(t))
        ws.write_number(r, 3, int(rec["customers"]), f["int"])
        ws.write_number(r, 4, float(rec["share_pct"]) / 100, f["pct"])
        ws.write_string(r, 5, f"{_num(rec['usual_share_lo'])}–{_num(rec['usual_share_hi'])}%")
        ws.write_number(r, 6, float(rec["revenue"]), f["money"])
        rs = rec["revenue_share_pct"]
        if rs is not None and not (isinstance(rs, float) and math.isnan(rs)):
            ws.write_number(r, 7, float(rs) / 100, f["pct"])
        ws.write_string(r, 8, f"{_num(rec['usual_profit_lo'])}–{_num(rec['usual_profit_hi'])}%")
        flag = _share_flag_text(rec["share_flag"], rec["usual_share_lo"], rec["usual_share_hi"])
        if rec["red_alert"]:
            flag = ("红色预警；" + flag) if flag else "红色预警"
        if flag:
            ws.write_string(r, 9, flag, f["flag"])
        ws.write_string(r, 10, t.strategy_zh)
    n_types = len(s)
    tot = top + 1 + n_types
    ws.write_string(tot, 1, "合计", f["total"])
    ws.write_number(tot, 3, int(s["customers"].sum()), f["total"])
    ws.write_number(tot, 4, 1.0 if len(result.customers) else 0.0, f["total_pct"])
    ws.write_number(tot, 6, float(s["revenue"].sum()), f["total_money"])
    ws.freeze_panes(top + 1, 0)

    # data-quality counts
    row = tot + 2
    ws.write_string(row, 0, "数据质量", f["bold"])
    counts: dict[str, int] = {}
    for q in result.quality:
        counts[q["kind"]] = counts.get(q["kind"], 0) + 1
    row += 1
    if not counts:
        ws.write_string(row, 0, "没有发现问题", f["note"])
        row += 1
    for kind, k in counts.items():
        ws.write_string(row, 1, QUALITY_LABELS.get(kind, kind))
        ws.write_number(row, 3, k, f["int"])
        row += 1
    ws.write_string(row, 1, "明细见「数据质量」工作表（含 Excel 行号）", f["note"])

    chart = book.wb.add_chart({"type": "column"})
    cats = ["汇总", top + 1, 1, top + n_types, 1]
    chart.add_series({"name": "客户占比", "categories": cats, "values": ["汇总", top + 1, 4, top + n_types, 4],
                      "fill": {"color": "#5B9BD5"}, "data_labels": {"value": True, "num_format": "0%"}})
    chart.add_series({"name": "收入占比", "categories": cats, "values": ["汇总", top + 1, 7, top + n_types, 7],
                      "fill": {"color": "#ED7D31"}, "data_labels": {"value": True, "num_format": "0%"}})
    chart.set_title({"name": f"各类客户的客户占比与收入占比（{result.as_of.isoformat()}）"})
    chart.set_y_axis({"num_format": "0%", "major_gridlines": {"visible": True, "line": {"color": "#D9D9D9"}}})
    chart.set_legend({"position": "bottom"})
    chart.set_size({"width": 860, "height": 360})
    ws.insert_chart(row + 2, 0, chart)


def write_weekly(result: RfmResult, model: RfmModel, path: Path, *, force: bool = False,
                 source: str | None = None, frozen_from: dt.date | None = None,
                 stream: bool | None = None) -> Path:
    """Write the weekly RFM workbook to ``path`` atomically (see the module docstring).

    ``source``: the export's file name, shown on the summary sheet.  ``frozen_from``: the
    date of the snapshot whose edges were reused.  ``stream``: write row by row with
    constant memory (default: when there are more than ``STREAM_ABOVE`` customers)."""
    stream = len(result.customers) > STREAM_ABOVE if stream is None else stream
    try:
        with atomic_path(Path(path), force=force) as tmp:
            book = _Book(tmp, stream=stream)
            _summary_sheet(book, result, model, source, frozen_from)
            c = result.customers
            cols = _customer_cols(result, with_type=False, follow_up=False)
            for t in model.types:
                ws = book.sheet(f"{t.no} {t.name_zh}")
                part = c[c["type_no"].to_numpy() == t.no]
                book.listing(ws, part, cols, empty_note="（本期没有这类客户）")
            ws = book.sheet("红色预警")
            red = c[c["red_alert"].to_numpy(dtype=bool)]
            book.listing(ws, red, _customer_cols(result, with_type=True, follow_up=True),
                         empty_note="（本期没有红色预警客户）")
            _edges_sheet(book, "分箱边界", [("本次使用", result.edges)], result, model, frozen_from)
            _quality_sheet(book, result)
            book.close()
    except RenderError:
        raise
    except OSError as exc:
        raise RenderError(f"无法写入 {path}：{exc.strerror or exc}", hint="检查输出文件夹是否可写") from exc
    return Path(path)


def _edges_sheet(book: _Book, name: str, edge_sets: list[tuple[str, Edges | None]],
                 result: RfmResult | None, model: RfmModel, frozen_from: dt.date | None,
                 note: str | None = None) -> None:
    ws = book.sheet(name)
    f = book.f
    ws.set_column(0, 0, 16)
    ws.set_column(1, 6, 22)
    ws.write_string(0, 0, "分箱边界：R、F、M 的数值如何换成 1–5 分", f["title"])
    row = 2
    if result is not None:
        binning = BINNING_TEXT.get(result.binning, result.binning)
        if result.binning == "frozen" and frozen_from is not None:
            binning = f"冻结：沿用 {frozen_from.isoformat()} 那次的边界"
        for label, value in (("分箱方式", binning), ("到店次数 F", BASIS_TEXT.get(result.frequency_basis, "")),
                             ("消费金额 M", BASIS_TEXT.get(result.monetary_basis, ""))):
            ws.write_string(row, 0, label, f["label"])
            ws.write_string(row, 1, value)
            row += 1
    ws.write_string(row, 0, "高低划分", f["label"])
    ws.write_string(row, 1, f"≥ {model.high_min} 分为高")
    row += 1
    if note:
        ws.write_string(row, 0, "说明", f["label"])
        ws.write_string(row, 1, note)
        row += 1
    for label, edges in edge_sets:
        row += 1
        ws.write_string(row, 0, label, f["bold"])
        row += 1
        if edges is None:
            ws.write_string(row, 0, "（不知道这一期的边界）", f["note"])
            row += 1
            continue
        for j, h in enumerate(["维度", "5 分", "4 分", "3 分", "2 分", "1 分"]):
            ws.write_string(row, j, h, f["header"])
        row += 1
        names = {"R": "R 距今天数", "F": "F 到店次数", "M": "M 消费金额"}
        for dim, lines in edges.describe().items():
            ws.write_string(row, 0, names.get(dim, dim))
            for j, text in enumerate(lines, start=1):
                ws.write_string(row, j, text.split("：", 1)[-1])
            row += 1
        row += 1
        ws.write_string(row, 0, "边界原值", f["label"])
        for j, h in enumerate(["达到 2 分", "达到 3 分", "达到 4 分", "达到 5 分"], start=1):
            ws.write_string(row, j, h, f["header"])
        row += 1
        raw = edges.to_dict()
        for dim in DIMENSIONS:
            label_ = {"recency_days": "R（天数 ≤ 边界）", "frequency": "F（次数 ≥ 边界）",
                      "monetary": "M（元 ≥ 边界）"}[dim]
            ws.write_string(row, 0, label_)
            for j, b in enumerate(raw[dim], start=1):
                if b is None:
                    ws.write_string(row, j, "无人达到", f["note"])
                else:
                    ws.write_number(row, j, b)
            row += 1
    row += 1
    ws.write_string(row, 0, "冻结边界：下个月运行 tierctl rfm 导出文件 --freeze-edges <本次评估日>，"
                            "按这套边界评分，月度迁移才可比较。", f["note"])


def _quality_sheet(book: _Book, result: RfmResult) -> None:
    ws = book.sheet("数据质量")
    q = pd.DataFrame(result.quality, columns=["kind", "row", "customer_id", "detail"])
    cols = [
        Col("类别", lambda d: [QUALITY_LABELS.get(k, k) for k in d["kind"]], min_width=14, max_width=28),
        Col("Excel 行号", lambda d: d["row"], "int", min_width=8),
        Col("客户", lambda d: d["customer_id"], min_width=10),
        Col("说明", lambda d: d["detail"], min_width=30, max_width=90),
    ]
    book.listing(ws, q, cols, empty_note="（没有发现数据问题）")
