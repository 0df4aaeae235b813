"""``tierctl rfm``: RFM segmentation (job C) — the weekly run and the monthly migration.

    tierctl rfm 到店记录.csv [--as-of D] [--freeze-edges D|latest] [--out DIR] [--format json]
    tierctl rfm migrate [--from D1] [--to D2] [--freeze-edges] [--from-file A --to-file B]

Thin: options are parsed here, the whole run is :mod:`tierctl.rfm.run` (ingest → score →
store → result); this module only displays what it returns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tierctl.cli import app
from tierctl.cli.common import (
    STATE,
    AsOfOpt,
    DbOpt,
    DryRunOpt,
    EncodingOpt,
    FileArg,
    ForceOpt,
    LimitOpt,
    MappingOpt,
    NowOpt,
    SheetOpt,
    check_format,
    clock,
    default_command_group,
    err_console,
    mask_phone,
    out_console,
    parse_date,
    warn,
)

if TYPE_CHECKING:
    from tierctl.rfm import RfmModel, RfmResult
    from tierctl.rfm.run import Side
    from tierctl.store import Store


_DefaultGroup = default_command_group("run")

rfm_app = typer.Typer(
    cls=_DefaultGroup,
    name="rfm",
    help="RFM 客户分层：按最近到店（R）、到店次数（F）、消费金额（M）把客户分成 8 类。\n\n"
         "tierctl rfm 到店记录.csv 即 tierctl rfm run 到店记录.csv；月度迁移用 tierctl rfm migrate。",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(rfm_app, name="rfm")

ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="RFM 模型：rfm（默认），或模型文件路径")]
UnitOpt = Annotated[str | None, typer.Option("--unit", help="统计单位：owner（按车主，默认）| vin（按车辆）")]
FreezeOpt = Annotated[str | None, typer.Option(
    "--freeze-edges", metavar="FROM_DATE",
    help="沿用某次已保存的 RFM 快照的分箱边界（YYYY-MM-DD；latest = 评估日之前最近一次），与那次同一尺度")]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="输出格式：table | json")]
BinningOpt = Annotated[str | None, typer.Option(
    "--binning", help="打分方式：quantile（按本次数据的分位数，模型默认）| thresholds（模型文件中的固定阈值；"
                      "客户少时更可靠）")]
OutDirOpt = Annotated[Path | None, typer.Option(
    "--out", help="输出文件夹：周报写入 DIR/<评估日期>/rfm_weekly.xlsx（已存在时需 --force）")]

FLAG_TEXT = {"above": "⚠ 明显偏高", "below": "⚠ 明显偏低"}
BASIS_LINE = {
    "order_id": "F 按不同的工单/结算单号计次（同一单号的多行算一次，同一天的两张单算两次）",
    "visit_date": "F 按不同的到店日期计次（文件中没有工单号）",
}
M_LINE = {"sum": "M = 窗口内净消费合计（退款冲减）", "mean": "M = 每次到店平均净消费（退款冲减）"}
BINNING_LINE = {"quantile": "分位数（本次数据，并列同分）", "thresholds": "固定业务阈值（模型文件）",
                "frozen": "冻结（沿用之前的边界）"}


# =====================================================================================
# helpers
# =====================================================================================
def load_model(name: str | None, unit: str | None, binning: str | None = None) -> RfmModel:
    from tierctl.rfm import load_rfm_model

    model = load_rfm_model(name or STATE.config.get("rfm.model", "rfm") or "rfm")
    if binning:
        model = model.with_binning(binning.strip().lower())
    return model.with_unit(unit.lower()) if unit else model


def _open_store(db: Path | None) -> Callable[[bool], Store]:
    """The store opener the library run takes: read-only opens an existing database (or
    an empty one, never creating a file); else the history database, created if needed."""
    from tierctl.cli.morning import open_for_score

    return lambda read_only: open_for_score(db, read_only)


def _ref(text: str | None, what: str) -> dt.date | str | None:
    """A snapshot named on the command line: a date, or latest."""
    from tierctl.rfm.run import LATEST

    if text is None:
        return None
    if text.strip().lower() in ("latest", "last", "上次", "最近"):
        return LATEST
    return parse_date(text, what)



def _e(v: Any) -> str:
    from rich.markup import escape

    return escape("" if v is None else str(v))


def _pct(v: Any) -> str:
    return "—" if v is None or v != v else f"{float(v):.1f}%"


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def _money(v: Any) -> str:
    return f"{float(v):,.0f}" if abs(float(v)) >= 100 else f"{float(v):,.2f}"


# =====================================================================================
# tierctl rfm run
# =====================================================================================
def run_rfm(file: Path, *, model_name: str | None = None, unit: str | None = None, as_of: str | None = None,
            now: str | None = None, freeze: str | None = None, sheet: str | None = None,
            encoding: str | None = None, mapping: Path | None = None, db: Path | None = None,
            dry_run: bool = False, out: Path | None = None, force: bool = False,
            binning: str | None = None) -> dict[str, Any]:
    """Options → :func:`tierctl.rfm.run.run_weekly`."""
    from tierctl.rfm.run import run_weekly

    model = load_model(model_name, unit, binning)
    as_of_d, _now = clock(as_of, now)
    return run_weekly(file, model, as_of_d, open_store=_open_store(db), freeze=_ref(freeze, "--freeze-edges"),
                      sheet=sheet, encoding=encoding, mapping=mapping, dry_run=dry_run, out=out, force=force)



@rfm_app.command("run")
def run_cmd(
    file: FileArg,
    as_of: AsOfOpt = None,
    model: ModelOpt = None,
    unit: UnitOpt = None,
    freeze_edges: FreezeOpt = None,
    binning: BinningOpt = None,
    sheet: SheetOpt = None,
    encoding: EncodingOpt = None,
    mapping: MappingOpt = None,
    fmt: FormatOpt = "table",
    out: OutDirOpt = None,
    force: ForceOpt = False,
    db: DbOpt = None,
    dry_run: DryRunOpt = False,
    limit: LimitOpt = 20,
    now: NowOpt = None,
) -> None:
    """给到店记录里的每位客户打 R、F、M 分（1–5），分成 8 类，列出红色预警客户；保存快照，可写周报工作簿。"""
    fmt = check_format(fmt, ("table", "json"))
    run = run_rfm(file, model_name=model, unit=unit, as_of=as_of, now=now, freeze=freeze_edges, sheet=sheet,
                  encoding=encoding, mapping=mapping, db=db, dry_run=dry_run, out=out, force=force,
                  binning=binning)
    result = run["result"]
    if fmt == "json":
        _write_stdout(result.to_json_bytes())
    else:
        show_run(run, limit)
    _after_run(run, dry_run, out)
    warn(list(run["export"].warnings))


def _write_stdout(data: bytes) -> None:
    """JSON to stdout as UTF-8 bytes (no detour through a 100 MB Python string)."""
    import sys

    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _after_run(run: dict[str, Any], dry_run: bool, out: Path | None) -> None:
    con = err_console()
    snap = run.get("snapshot")
    if dry_run:
        con.print("[dim]预览模式（--dry-run）：未保存快照" + ("，未写周报工作簿" if out is not None else "") + "[/dim]")
    elif snap:
        again = "（替换了同一评估日的旧快照）" if snap["replaced"] else ""
        con.print(f"[dim]已保存 RFM 快照 {snap['as_of']}：{snap['customers']:,} 位客户{again} → {_e(snap['path'])}[/dim]")
    if run.get("workbook"):
        con.print(f"已写入 {_e(run['workbook'])}")


def _show_red(con: Any, result: RfmResult, model: RfmModel, limit: int) -> None:
    """The red-alert line and the table of their customers (biggest spenders first)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    by_no = {tp.no: tp for tp in model.types}
    c = result.customers
    red = c[c["red_alert"].to_numpy(dtype=bool)]
    red_names = "、".join(by_no[k].name_zh for k in sorted(model.red_alert_types))
    con.print(Text.assemble(("红色预警", "bold white on red"), f" {red_names}：{len(red):,} 位"))
    if len(red):
        rt = Table(header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, padding=(0, 1))
        key_header = "车架号" if result.unit == "vin" else "客户编号"
        # every column but the action keeps its width; the action is cut first
        for name, just, width in (("类型", "left", 8), (key_header, "left", 17 if result.unit == "vin" else 8),
                                  ("姓名", "left", 6), ("电话", "left", 11), ("最近到店", "left", 10),
                                  ("R天", "right", 3), ("F次", "right", 3), ("M元", "right", 7),
                                  ("RFM", "left", 5), ("建议动作", "left", 0)):
            rt.add_column(name, justify=just, no_wrap=True, overflow="ellipsis",  # type: ignore[arg-type]
                          min_width=width or None, max_width=40 if not width else None)
        shown = red.sort_values(["monetary", result.unit_column], ascending=[False, True], kind="stable")
        if limit:
            shown = shown.head(limit)
        for r in shown.to_dict(orient="records"):
            rt.add_row(str(r["type_name"]), _e(r[result.unit_column]), _e(r.get("name") or ""),
                       mask_phone(r.get("phone")), r["last_visit"].strftime("%Y-%m-%d"), str(r["recency_days"]),
                       str(r["frequency"]), _money(r["monetary"]), str(r["rfm"]), _e(r["strategy"]))
        con.print(rt)
        if limit and len(red) > limit:
            con.print(f"[dim]… 另有 {len(red) - limit:,} 位（--limit 0 显示全部；完整名单见 --out 周报工作簿）[/dim]")


def show_run(run: dict[str, Any], limit: int) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from tierctl.rfm.run import _unit_zh

    result: RfmResult = run["result"]
    model: RfmModel = run["model"]
    con = out_console()
    n = len(result.customers)
    con.print(Text.assemble(
        ("RFM 客户分层 ", "bold"), f"评估日 {result.as_of.isoformat()} · 窗口 {result.window_start.isoformat()} 至 "
        f"{result.as_of.isoformat()}（{result.window_days} 天）· 按{_unit_zh(result.unit)} · {n:,} 位客户"))
    # too few customers for quantiles: said first, with the option that fixes it
    from tierctl.rfm.report import edges_lines, small_population_lines

    for i, line in enumerate(small_population_lines(result, str(run["export"].path))):
        con.print(Text(line, style="bold yellow" if i == 0 else "yellow"))

    t = Table(header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, padding=(0, 1))
    for name, just in (("类型", "left"), ("R·F·M", "left"), ("客户数", "right"), ("占比", "right"),
                       ("常见占比", "right"), ("收入占比", "right"), ("常见利润", "right"), ("", "left")):
        t.add_column(name, justify=just, no_wrap=True)  # type: ignore[arg-type]
    by_no = {tp.no: tp for tp in model.types}
    for rec in result.summary.to_dict(orient="records"):
        tp = by_no[int(rec["type_no"])]
        pattern = "".join("高" if h else "低" for h in (tp.r_high, tp.f_high, tp.m_high))
        label = Text(f"{tp.no} {tp.name_zh}", style="bold red" if rec["red_alert"] else "")
        flag = FLAG_TEXT.get(rec["share_flag"] or "", "")
        lo, hi = rec["usual_share_lo"], rec["usual_share_hi"]
        if not flag and n and not (lo <= rec["share_pct"] <= hi):
            flag = "（区间外）"
        t.add_row(label, pattern, f"{rec['customers']:,}", _pct(rec["share_pct"]), f"{_num(lo)}–{_num(hi)}%",
                  _pct(rec["revenue_share_pct"]),
                  f"{_num(rec['usual_profit_lo'])}–{_num(rec['usual_profit_hi'])}%",
                  Text(flag, style="yellow" if flag.startswith("⚠") else "dim"))
    con.print(t)
    if n and n < model.share_flag_min_customers:
        con.print(f"[dim]客户少于 {model.share_flag_min_customers} 位，不判断占比是否偏离常见区间[/dim]")

    _show_red(con, result, model, limit)
    c = result.customers
    kol = c[c["kol_flag"].to_numpy(dtype=bool)]
    if len(kol):
        names = "、".join(f"{_e(r.get('name') or r[result.unit_column])}（{r['type_name']} {r['rfm']}）"
                         for r in kol.head(10).to_dict(orient="records"))
        more = f" 等 {len(kol)} 位" if len(kol) > 10 else ""
        con.print(f"[bold]KOL 提示[/bold]：{names}{more} 消费不高但影响力大，勿按低价值客户处理")

    # how the numbers were made
    edges = result.edges
    binning = BINNING_LINE.get(result.binning, result.binning)
    if result.binning == "frozen" and run.get("frozen_from"):
        binning = f"冻结（沿用 {run['frozen_from'].isoformat()} 快照的边界）"
    con.print(f"[bold]分箱边界[/bold]：{binning}；≥ {model.high_min} 分为高")
    for line in edges_lines(edges):
        con.print("  " + line)
    con.print(f"[dim]{BASIS_LINE.get(result.frequency_basis, result.frequency_basis)}；"
              f"{M_LINE.get(result.monetary_basis, result.monetary_basis)}[/dim]")

    counts: dict[str, int] = {}
    for q in result.quality:
        counts[q["kind"]] = counts.get(q["kind"], 0) + 1
    if counts:
        from tierctl.rfm.report import QUALITY_LABELS

        parts = [f"{QUALITY_LABELS.get(k, k)} {v:,}" for k, v in counts.items()]
        con.print("[bold]数据质量[/bold]：" + " · ".join(parts) +
                  "[dim]（明细含 Excel 行号：--format json 的 quality，或周报工作簿「数据质量」页）[/dim]")


# =====================================================================================
# tierctl rfm migrate
# =====================================================================================
def run_migrate(*, from_date: str | None, to_date: str | None, from_file: Path | None, to_file: Path | None,
                freeze: bool, model_name: str | None, unit: str | None, sheet: str | None,
                encoding: str | None, mapping: Path | None, db: Path | None, now: str | None) -> dict[str, Any]:
    """Options → :func:`tierctl.rfm.run.run_migrate`."""
    from tierctl.rfm.run import MigrateRequest
    from tierctl.rfm.run import run_migrate as run

    model = load_model(model_name, unit)
    to_ref = clock(to_date, now)[0] if to_file is not None else _ref(to_date, "--to")
    from_ref = parse_date(from_date, "--from") if from_file is not None else _ref(from_date, "--from")
    req = MigrateRequest(from_ref=from_ref, to_ref=to_ref, from_file=from_file, to_file=to_file, freeze=freeze,
                         unit=unit, sheet=sheet, encoding=encoding, mapping=mapping)
    return run(req, model, open_store=_open_store(db))



@rfm_app.command("migrate")
def migrate_cmd(
    from_date: Annotated[str | None, typer.Option(
        "--from", help="上期：已保存快照的评估日期（默认本期之前最近一次）；配合 --from-file 时为该文件的评估日期")] = None,
    to_date: Annotated[str | None, typer.Option(
        "--to", help="本期：已保存快照的评估日期（默认最近一次）；配合 --to-file 时为该文件的评估日期（默认今天）")] = None,
    from_file: Annotated[Path | None, typer.Option("--from-file", help="上期改用一个导出文件（需 --from 给出评估日期）")] = None,
    to_file: Annotated[Path | None, typer.Option("--to-file", help="本期改用一个导出文件")] = None,
    freeze_edges: Annotated[bool, typer.Option(
        "--freeze-edges", help="本期按上期的分箱边界重新评分：两期同一尺度，迁移只反映客户自身的变化")] = False,
    model: ModelOpt = None,
    unit: UnitOpt = None,
    sheet: SheetOpt = None,
    encoding: EncodingOpt = None,
    mapping: MappingOpt = None,
    fmt: FormatOpt = "table",
    out: Annotated[Path | None, typer.Option(
        "--out", help="输出文件夹：迁移报告写入 DIR/<本期日期>/rfm_migration.xlsx（已存在时需 --force）")] = None,
    force: ForceOpt = False,
    db: DbOpt = None,
    limit: LimitOpt = 20,
    now: NowOpt = None,
) -> None:
    """月度迁移：两期 RFM 的 8×8 迁移矩阵、新增/离开、关键流向（流失预警、转化成功）及名单、各类占比变化。"""
    fmt = check_format(fmt, ("table", "json"))
    res = run_migrate(from_date=from_date, to_date=to_date, from_file=from_file, to_file=to_file,
                      freeze=freeze_edges, model_name=model, unit=unit, sheet=sheet, encoding=encoding,
                      mapping=mapping, db=db, now=now)
    mig = res["migration"]
    workbook = None
    if out is not None:
        from tierctl.rfm.report import migration_path
        from tierctl.rfm.report_migration import write_migration

        workbook = write_migration(mig, res["model"], migration_path(out, mig.curr_as_of), flows=res["flows"],
                                   unit=res["unit"], force=force)
    if fmt == "json":
        from tierctl.rfm import json_document_bytes

        _write_stdout(json_document_bytes(mig.to_json()))
    else:
        show_migration(res, limit)
    if workbook is not None:
        err_console().print(f"已写入 {_e(workbook)}")
    warn(res["warnings"])


def show_migration(res: dict[str, Any], limit: int) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from tierctl.rfm.run import _unit_zh

    mig = res["migration"]
    model: RfmModel = res["model"]
    prev: Side = res["prev"]
    curr: Side = res["curr"]
    con = out_console()
    short = {t.no: t.name_zh for t in model.types}
    con.print(Text.assemble(("RFM 月度迁移 ", "bold"), f"{prev.as_of.isoformat()} → {curr.as_of.isoformat()} · "
                            f"按{_unit_zh(res['unit'])} · 上期 {len(prev.customers):,} 位 / 本期 {len(curr.customers):,} 位"))
    con.print(f"[dim]{_e(prev.source)}；{_e(curr.source)}[/dim]")
    same = mig.edges.get("same_scale")
    con.print(f"[{'green' if same else 'yellow'}]分箱边界：{_e(mig.edges.get('note'))}[/]")

    t = Table(title="迁移矩阵（行 = 上期，列 = 本期）", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False,
              collapse_padding=True, padding=(0, 1))
    t.add_column("上期＼本期", no_wrap=True)
    cols = list(mig.matrix.columns)
    for c in cols:
        t.add_column("离开" if c == "departed" else short.get(c, str(c)), justify="right", no_wrap=True)
    t.add_column("合计", justify="right", no_wrap=True)
    key_cells = {(fl["from_type"], fl["to_type"]) for fl in mig.flows}
    counts = mig.matrix.to_numpy()
    for i, idx in enumerate(mig.matrix.index):
        cells = []
        for j, c in enumerate(cols):
            v = int(counts[i, j])
            style = "bold red" if (idx, c) in key_cells and v else ("bold" if idx == c else ("dim" if v == 0 else ""))
            cells.append(Text(str(v), style=style))
        t.add_row("新增" if idx == "new" else short.get(idx, str(idx)), *cells, str(int(counts[i].sum())))
    t.add_row(Text("合计", style="bold"), *[Text(str(int(counts[:, j].sum())), style="bold") for j in range(len(cols))],
              "")
    con.print(t)

    st = Table(title="各类占比", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True,
               padding=(0, 1))
    for name in ("类型", "上期", "占比", "本期", "占比", "变化"):
        st.add_column(name, justify="left" if name == "类型" else "right", no_wrap=True)
    for rec in mig.shares.to_dict(orient="records"):
        ch = float(rec["change_pp"])
        st.add_row(f"{rec['type_no']} {rec['type_name']}", f"{rec['prev_customers']:,}", _pct(rec["prev_share_pct"]),
                   f"{rec['curr_customers']:,}", _pct(rec["curr_share_pct"]),
                   Text(f"{ch:+.1f} 点", style="red" if ch > 0 and rec["type_no"] in model.red_alert_types else ""))
    con.print(st)

    flows = res["flows"]
    key = "vin" if res["unit"] == "vin" else "customer_id"
    for fl in mig.flows:
        rate = "—" if fl["rate_pct"] is None else f"{fl['rate_pct']:.1f}%"
        style = "bold red" if fl["key"] == "churn_warning" else "bold green"
        kpi = f" · KPI：{fl['target_zh']} > {_num(fl['target_pct'])}%" if fl.get("target_zh") else ""
        con.print(Text.assemble((fl["name"], style), f"：{fl['count']:,} 位（上期{short.get(fl['from_type'], '')} "
                                f"{fl['base']:,} 位中的 {rate}）{kpi}"))
        part = flows[flows["flow"] == fl["key"]] if len(flows) else flows
        if not len(part):
            continue
        ft = Table(header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, padding=(0, 1))
        for name in ("车架号" if key == "vin" else "客户编号", "姓名", "电话", "上期", "本期", "R天", "F次", "M元"):
            ft.add_column(name, justify="right" if name in ("R天", "F次", "M元") else "left", no_wrap=True)
        shown = part if not limit else part.head(limit)
        for r in shown.to_dict(orient="records"):
            ft.add_row(_e(r[key]), _e(r.get("name") or ""), mask_phone(r.get("phone")), _e(r.get("prev_rfm") or ""),
                       _e(r.get("rfm") or ""), _val(r.get("recency_days")), _val(r.get("frequency")),
                       _money(r["monetary"]) if r.get("monetary") is not None else "")
        con.print(ft)
        if limit and len(part) > limit:
            con.print(f"[dim]… 另有 {len(part) - limit:,} 位（--limit 0 显示全部，或用 --out 写出工作簿）[/dim]")


def _val(v: Any) -> str:
    return "" if v is None or v != v else str(int(v))
