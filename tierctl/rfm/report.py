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

Migration report (:func:`write_migration`): ``迁移矩阵``, ``关键流向``, ``占比对比`` (with a
chart) and ``分箱边界``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tierctl.errors import RenderError
from tierctl.io.writers import atomic_path
from tierctl.rfm.history import Migration
from tierctl.rfm.model import DIMENSIONS, Edges, RfmModel
from tierctl.rfm.result import RfmResult

__all__ = ["BASIS_TEXT", "QUALITY_LABELS", "edges_lines", "migration_path", "small_population_lines",
           "weekly_path", "write_migration", "write_weekly"]

WORKBOOK_OPTIONS = {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
EXCEL_MAX_ROWS = 1_048_576
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
# Table writing
# =====================================================================================
@dataclass(frozen=True)
class Col:
    """One column of a listing: header, how to write the values, width bounds."""

    header: str
    values: Callable[[pd.DataFrame], Sequence[Any] | np.ndarray | pd.Series]
    kind: str = "text"  # text | int | money | pct | date
    min_width: float = 6
    max_width: float = 40


def _display_width(text: str) -> float:
    # CJK characters take two columns in Excel's default font
    return sum(2.0 if ord(ch) > 0x2E80 else 1.1 for ch in text)


class _Book:
    """An xlsxwriter workbook with the formats every sheet shares."""

    def __init__(self, path: Path, *, stream: bool) -> None:
        import xlsxwriter

        self.wb = xlsxwriter.Workbook(str(path), {**WORKBOOK_OPTIONS, "constant_memory": stream})
        add = self.wb.add_format
        self.f = {
            "title": add({"bold": True, "font_size": 14}),
            "bold": add({"bold": True}),
            "label": add({"bold": True, "font_color": "#595959"}),
            "header": add({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True,
                           "valign": "vcenter"}),
            "text": add({}),
            "wrap": add({"text_wrap": True, "valign": "top"}),
            "int": add({"num_format": "0"}),
            "money": add({"num_format": "#,##0.00"}),
            "pct": add({"num_format": "0.0%"}),
            "date": add({"num_format": "yyyy-mm-dd"}),
            "flag": add({"font_color": "#C00000", "bold": True}),
            "total": add({"bold": True, "top": 1}),
            "total_pct": add({"bold": True, "top": 1, "num_format": "0.0%"}),
            "total_money": add({"bold": True, "top": 1, "num_format": "#,##0.00"}),
            "note": add({"italic": True, "font_color": "#7F7F7F"}),
        }
        self.names: set[str] = set()

    def sheet(self, name: str):
        safe = re.sub(r"[\[\]:*?/\\]", "_", name)[:31]
        base, k = safe, 2
        while safe.lower() in self.names:
            safe = f"{base[:28]}_{k}"
            k += 1
        self.names.add(safe.lower())
        return self.wb.add_worksheet(safe)

    def close(self) -> None:
        self.wb.close()

    # ---------------------------------------------------------------------------------
    def listing(self, ws, frame: pd.DataFrame, cols: Sequence[Col], *, top: int = 0,
                empty_note: str = "（没有记录）") -> int:
        """Header at row ``top``, one row per record, frozen header, autofilter, widths
        fitted to the header and the first rows.  Returns the next free row."""
        room = EXCEL_MAX_ROWS - top - 2
        shown = frame if len(frame) <= room else frame.iloc[:room]
        columns = [list(_cell_values(c.values(shown), c.kind)) for c in cols]
        for j, c in enumerate(cols):
            sample = [str(v) for v in columns[j][:200] if v is not None]
            if c.kind == "money":
                sample = [f"{float(v):,.2f}" for v in columns[j][:200] if v is not None]
            width = max([_display_width(c.header) / 2 + 2, *(_display_width(s) + 1 for s in sample)],
                        default=c.min_width)
            ws.set_column(j, j, min(max(width, c.min_width), c.max_width))
        ws.set_row(top, 30)
        for j, c in enumerate(cols):
            ws.write_string(top, j, c.header, self.f["header"])
        ws.freeze_panes(top + 1, 0)
        n = len(shown)
        writers = [self._writer(c.kind) for c in cols]
        for i in range(n):
            r = top + 1 + i
            for j in range(len(cols)):
                v = columns[j][i]
                if v is None:
                    continue
                writers[j](ws, r, j, v)
        last = top + max(n, 1)
        ws.autofilter(top, 0, last, len(cols) - 1)
        nxt = top + n + 1
        if n == 0:
            ws.write_string(top + 1, 0, empty_note, self.f["note"])
            nxt += 1
        if len(shown) < len(frame):
            ws.write_string(nxt, 0, f"……另有 {len(frame) - len(shown):,} 行超出 Excel 的行数上限，未列出",
                            self.f["note"])
            nxt += 1
        return nxt

    def _writer(self, kind: str) -> Callable[[Any, int, int, Any], None]:
        f = self.f
        if kind == "text":
            return lambda ws, r, c, v: ws.write_string(r, c, str(v))
        if kind == "date":
            return lambda ws, r, c, v: ws.write_datetime(r, c, v, f["date"])
        fmt = f[kind] if kind in ("int", "money", "pct") else None
        return lambda ws, r, c, v: ws.write_number(r, c, v, fmt)


def _cell_values(values: Sequence[Any] | pd.Series | np.ndarray, kind: str) -> list[Any]:
    """Plain Python values for xlsxwriter, ``None`` for an empty cell."""
    if isinstance(values, pd.Series):
        s = values
    elif isinstance(values, np.ndarray | pd.api.extensions.ExtensionArray):
        s = pd.Series(values)
    else:
        s = pd.Series(list(values), dtype=object)
    if kind == "date":
        d = pd.to_datetime(s, errors="coerce")
        return [None if pd.isna(v) else v.to_pydatetime().replace(tzinfo=None) for v in d]
    if kind in ("int", "money", "pct"):
        arr = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        out = arr.tolist()
        return [None if (x != x or math.isinf(x)) else (int(x) if kind == "int" else x) for x in out]
    obj = s.astype(object).to_numpy()
    miss = pd.isna(obj)
    return [None if m else (v if isinstance(v, str) else str(v)) for v, m in zip(obj.tolist(), miss, strict=True)]


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


# =====================================================================================
# Migration report
# =====================================================================================
def write_migration(mig: Migration, model: RfmModel, path: Path, *, flows: pd.DataFrame,
                    unit: str = "owner", force: bool = False) -> Path:
    """Write the monthly migration workbook atomically.

    ``flows``: :func:`tierctl.rfm.flow_customers` (the customers behind each key flow)."""
    try:
        with atomic_path(Path(path), force=force) as tmp:
            book = _Book(tmp, stream=False)
            _matrix_sheet(book, mig, model)
            _flows_sheet(book, mig, flows, unit)
            _shares_sheet(book, mig)
            edge_sets = [(f"上期（{_d(mig.prev_as_of)}）", _edges_or_none(mig.edges.get("prev"))),
                         (f"本期（{_d(mig.curr_as_of)}）", _edges_or_none(mig.edges.get("curr")))]
            _edges_sheet(book, "分箱边界", edge_sets, None, model, None, note=mig.edges.get("note"))
            book.close()
    except RenderError:
        raise
    except OSError as exc:
        raise RenderError(f"无法写入 {path}：{exc.strerror or exc}", hint="检查输出文件夹是否可写") from exc
    return Path(path)


def _d(d: dt.date | None) -> str:
    return d.isoformat() if d else "?"


def _edges_or_none(data: dict | None) -> Edges | None:
    return Edges.from_dict(data) if data else None


def _matrix_sheet(book: _Book, mig: Migration, model: RfmModel) -> None:
    ws = book.sheet("迁移矩阵")
    f = book.f
    names = {t.no: f"{t.no} {t.name_zh}" for t in model.types}
    ws.write_string(0, 0, f"RFM 月度迁移 · {_d(mig.prev_as_of)} → {_d(mig.curr_as_of)}", f["title"])
    ws.write_string(1, 0, mig.edges.get("note", ""), f["note"])
    top = 3
    cols = list(mig.matrix.columns)
    ws.set_column(0, 0, 14)
    ws.set_column(1, len(cols) + 1, 11)
    ws.write_string(top, 0, "上期 ＼ 本期", f["header"])
    for j, c in enumerate(cols, start=1):
        ws.write_string(top, j, "离开" if c == "departed" else names.get(c, str(c)), f["header"])
    ws.write_string(top, len(cols) + 1, "合计", f["header"])
    key_cells = {(fl["from_type"], fl["to_type"]) for fl in mig.flows}
    counts = mig.matrix.to_numpy()
    for i, idx in enumerate(mig.matrix.index):
        r = top + 1 + i
        ws.write_string(r, 0, "新增" if idx == "new" else names.get(idx, str(idx)), f["bold"])
        for j, c in enumerate(cols, start=1):
            fmt = f["flag"] if (idx, c) in key_cells else (f["bold"] if idx == c else f["int"])
            ws.write_number(r, j, int(counts[i, j - 1]), fmt)
        ws.write_number(r, len(cols) + 1, int(counts[i].sum()), f["total"])
    r = top + 1 + len(mig.matrix.index)
    ws.write_string(r, 0, "合计", f["total"])
    for j in range(len(cols)):
        ws.write_number(r, j + 1, int(counts[:, j].sum()), f["total"])
    ws.freeze_panes(top + 1, 1)
    r += 2
    ws.write_string(r, 0, "行 = 上期类型，列 = 本期类型；对角线 = 类型未变；红字 = 关键流向（见「关键流向」）。", f["note"])


def _flows_sheet(book: _Book, mig: Migration, flows: pd.DataFrame, unit: str) -> None:
    ws = book.sheet("关键流向")
    f = book.f
    ws.write_string(0, 0, "关键流向", f["title"])
    row = 2
    for fl in mig.flows:
        rate = "—" if fl["rate_pct"] is None else f"{fl['rate_pct']:.1f}%"
        ws.write_string(row, 0, f"{fl['name']}：{fl['count']} 位（上期该类 {fl['base']} 位，占 {rate}）", f["bold"])
        if fl.get("target_zh"):
            ws.write_string(row + 1, 0, f"KPI：{fl['target_zh']} 目标 > {_num(fl['target_pct'])}%", f["note"])
        row += 2
    row += 1
    key = "vin" if unit == "vin" else "customer_id"
    cols = [Col("流向", lambda d: d["flow_name"], min_width=16, max_width=36),
            Col("车架号" if unit == "vin" else "客户编号", lambda d: d[key], min_width=10)]
    if unit == "vin":
        cols.append(Col("车主编号", lambda d: d.get("customer_id", pd.Series([None] * len(d))), min_width=10))
    cols += [
        Col("姓名", lambda d: _get(d, "name"), min_width=8),
        Col("电话", lambda d: _get(d, "phone"), min_width=12),
        Col("上期 RFM", lambda d: _get(d, "prev_rfm"), min_width=8),
        Col("上期类型", lambda d: _get(d, "prev_type_name"), min_width=8),
        Col("本期 RFM", lambda d: _get(d, "rfm"), min_width=8),
        Col("本期类型", lambda d: _get(d, "type_name"), min_width=8),
        Col("距今天数 R", lambda d: _get(d, "recency_days"), "int", min_width=7),
        Col("到店次数 F", lambda d: _get(d, "frequency"), "int", min_width=7),
        Col("消费金额 M（元）", lambda d: _get(d, "monetary"), "money", min_width=11),
        Col("跟进人", lambda d: [None] * len(d), min_width=8),
        Col("跟进结果", lambda d: [None] * len(d), min_width=20),
    ]
    book.listing(ws, flows, cols, top=row, empty_note="（本期没有客户走这些流向）")


def _get(d: pd.DataFrame, col: str) -> Sequence[Any]:
    return d[col] if col in d.columns else [None] * len(d)


def _shares_sheet(book: _Book, mig: Migration) -> None:
    ws = book.sheet("占比对比")
    f = book.f
    ws.write_string(0, 0, f"各类客户占比：{_d(mig.prev_as_of)} 对比 {_d(mig.curr_as_of)}", f["title"])
    top = 2
    headers = ["编号", "类型", "上期客户数", "上期占比", "本期客户数", "本期占比", "变化（百分点）"]
    for j, h in enumerate(headers):
        ws.set_column(j, j, 12)
        ws.write_string(top, j, h, f["header"])
    recs = mig.shares.to_dict(orient="records")
    change_fmt = book.wb.add_format({"num_format": "+0.0;-0.0;0"})
    for i, rec in enumerate(recs):
        r = top + 1 + i
        ws.write_number(r, 0, int(rec["type_no"]))
        ws.write_string(r, 1, str(rec["type_name"]))
        ws.write_number(r, 2, int(rec["prev_customers"]), f["int"])
        ws.write_number(r, 3, float(rec["prev_share_pct"]) / 100, f["pct"])
        ws.write_number(r, 4, int(rec["curr_customers"]), f["int"])
        ws.write_number(r, 5, float(rec["curr_share_pct"]) / 100, f["pct"])
        ws.write_number(r, 6, float(rec["change_pp"]), change_fmt)
    ws.freeze_panes(top + 1, 0)
    n = len(recs)
    chart = book.wb.add_chart({"type": "column"})
    cats = ["占比对比", top + 1, 1, top + n, 1]
    chart.add_series({"name": f"上期 {_d(mig.prev_as_of)}", "categories": cats,
                      "values": ["占比对比", top + 1, 3, top + n, 3], "fill": {"color": "#A5A5A5"}})
    chart.add_series({"name": f"本期 {_d(mig.curr_as_of)}", "categories": cats,
                      "values": ["占比对比", top + 1, 5, top + n, 5], "fill": {"color": "#5B9BD5"}})
    chart.set_title({"name": "各类客户占比：上期 vs 本期"})
    chart.set_y_axis({"num_format": "0%"})
    chart.set_legend({"position": "bottom"})
    chart.set_size({"width": 760, "height": 340})
    ws.insert_chart(top + n + 3, 0, chart)
