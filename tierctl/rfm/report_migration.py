"""The monthly RFM migration workbook: ``迁移矩阵``, ``关键流向``, ``占比对比`` (with a chart)
and ``分箱边界``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from tierctl.errors import RenderError
from tierctl.io.writers import atomic_path
from tierctl.rfm.history import Migration
from tierctl.rfm.model import Edges, RfmModel
from tierctl.rfm.report import _edges_sheet, _num
from tierctl.rfm.workbook import Col, _Book

__all__ = ["write_migration"]


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
