"""``tierctl rfm``: RFM segmentation (job C) — the weekly run and the monthly migration.

    tierctl rfm 到店记录.csv [--as-of D] [--freeze-edges D|latest] [--out DIR] [--format json]
    tierctl rfm migrate [--from D1] [--to D2] [--freeze-edges] [--from-file A --to-file B]

Thin: options are parsed here, the work is :mod:`tierctl.rfm` (scoring, migration),
:mod:`tierctl.io.ingest` (reading the export), :mod:`tierctl.store` (snapshots) and
:mod:`tierctl.rfm_report` (workbooks).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
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
from tierctl.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    import pandas as pd

    from tierctl.rfm import Edges, RfmModel, RfmResult
    from tierctl.store import SnapshotInfo, Store

KIND = "rfm"


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


def _no_huge_pages() -> None:
    """Ask numpy not to back big arrays with transparent huge pages.

    A run over millions of visits allocates and frees many arrays of tens of MB; on a
    busy Linux machine the kernel may compact memory to find each 2 MB page, which
    measured as 2 of 9 seconds of system time on 5 million rows.  Speed only: results
    do not change.  The same switch as ``NUMPY_MADVISE_HUGEPAGE=0``."""
    try:
        from numpy._core.multiarray import _set_madvise_hugepage

        _set_madvise_hugepage(False)
    except (ImportError, AttributeError):  # another numpy: keep its default
        pass


def _open_read(db: Path | None) -> Store:
    """The history store for reading: an existing database read-only, else an empty one
    (never creates a file)."""
    from tierctl.cli.daily import open_for_score

    return open_for_score(db, True)


def _dates(store: Store) -> str:
    dates = [s.as_of.isoformat() for s in store.list_snapshots(KIND)]
    return "、".join(dates[-12:]) if dates else "（无）"


def _where(store: Store) -> str:
    return str(getattr(store, "display_path", store.path))


def _snapshot_for(store: Store, text: str, before: dt.date | None, what: str) -> SnapshotInfo:
    """The stored RFM snapshot a user names: a date, or ``latest``."""
    if text.strip().lower() in ("latest", "last", "上次", "最近"):
        info = store.latest_snapshot(KIND, before=before)
        if info is None:
            raise NotFoundError(f"历史数据库 {_where(store)} 中没有{'评估日 ' + before.isoformat() + ' 之前的' if before else ''}"
                                "RFM 快照", hint="先运行 tierctl rfm 导出文件（不加 --dry-run）保存一次")
        return info
    day = parse_date(text, what)
    assert day is not None
    info = store.snapshot_on(KIND, day)
    if info is None:
        raise NotFoundError(f"历史数据库 {_where(store)} 中没有 {day.isoformat()} 的 RFM 快照",
                            hint=f"已保存的评估日期：{_dates(store)}")
    return info


def _edges_of(info: SnapshotInfo) -> Edges:
    from tierctl.rfm import Edges

    data = info.meta.get("edges")
    if not data:
        raise UsageError(f"{info.as_of.isoformat()} 的 RFM 快照没有保存分箱边界，不能冻结")
    return Edges.from_dict(data)


def _check_unit(model: RfmModel, info: SnapshotInfo) -> None:
    unit = info.meta.get("unit", "owner")
    if unit != model.unit:
        raise UsageError(f"{info.as_of.isoformat()} 的快照按{_unit_zh(unit)}统计，本次按{_unit_zh(model.unit)}",
                         hint=f"加 --unit {unit}，两次才可比较")


def _unit_zh(unit: str) -> str:
    return "车辆（VIN）" if unit == "vin" else "车主"


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
    """Ingest, score, store the snapshot (unless ``dry_run``), write the workbook (with
    ``out``); returns what the display needs."""
    from tierctl.io.ingest import load_mapping, read_export
    from tierctl.io.writers import check_writable
    from tierctl.rfm import compute_rfm, snapshot_meta, snapshot_rows
    from tierctl.rfm_report import weekly_path, write_weekly

    _no_huge_pages()
    model = load_model(model_name, unit, binning)
    as_of_d, _now = clock(as_of, now)
    workbook = weekly_path(out, as_of_d) if out is not None else None
    if workbook is not None and not dry_run:
        check_writable(workbook, force)  # before any work: nothing half-done

    edges = frozen_from = None
    if freeze:
        store = _open_read(db)
        try:
            info = _snapshot_for(store, freeze, as_of_d, "--freeze-edges")
        finally:
            store.close()
        _check_unit(model, info)
        edges, frozen_from = _edges_of(info), info.as_of

    digest = None
    if not dry_run:  # a visit history runs to hundreds of MB: hashed beside ingest, on the second core
        from tierctl.store.loop import sha256_in_background

        digest = sha256_in_background(file)
    export = read_export(file, model.columns, sheet=sheet, encoding=encoding, mapping=load_mapping(mapping),
                         mapping_path=mapping)
    result = compute_rfm(export.frame, model, as_of_d, edges=edges)

    run: dict[str, Any] = {"model": model, "export": export, "result": result, "frozen_from": frozen_from,
                           "snapshot": None, "workbook": None}
    if not dry_run:
        from tierctl.cli.daily import open_for_score

        source = {"path": str(export.path), "sheet": export.sheet, "encoding": export.encoding,
                  "headers": dict(export.headers)}
        meta = snapshot_meta(result, source=source,
                             frozen_from=frozen_from.isoformat() if frozen_from else None)
        store = open_for_score(db, False)
        try:
            replaced = store.snapshot_on(KIND, as_of_d) is not None
            sid = store.save_snapshot(KIND, as_of_d, model.name, Path(export.path).name,
                                      digest() if digest else None, snapshot_rows(result), meta)
            run["snapshot"] = {"id": sid, "as_of": as_of_d.isoformat(), "customers": len(result.customers),
                               "replaced": replaced, "path": _where(store)}
        finally:
            store.close()
        if workbook is not None:
            run["workbook"] = write_weekly(result, model, workbook, force=force, source=Path(export.path).name,
                                           frozen_from=frozen_from)
    return run


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


def show_run(run: dict[str, Any], limit: int) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    result: RfmResult = run["result"]
    model: RfmModel = run["model"]
    con = out_console()
    n = len(result.customers)
    con.print(Text.assemble(
        ("RFM 客户分层 ", "bold"), f"评估日 {result.as_of.isoformat()} · 窗口 {result.window_start.isoformat()} 至 "
        f"{result.as_of.isoformat()}（{result.window_days} 天）· 按{_unit_zh(result.unit)} · {n:,} 位客户"))
    # too few customers for quantiles: said first, with the option that fixes it
    from tierctl.rfm_report import edges_lines, small_population_lines

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

    # red alerts
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
        from tierctl.rfm_report import QUALITY_LABELS

        parts = [f"{QUALITY_LABELS.get(k, k)} {v:,}" for k, v in counts.items()]
        con.print("[bold]数据质量[/bold]：" + " · ".join(parts) +
                  "[dim]（明细含 Excel 行号：--format json 的 quality，或周报工作簿「数据质量」页）[/dim]")


# =====================================================================================
# tierctl rfm migrate
# =====================================================================================
@dataclass
class Side:
    """One side of a migration: a stored snapshot or an export scored now."""

    as_of: dt.date
    customers: pd.DataFrame
    edges: Edges | None
    unit: str
    monetary_basis: str
    source: str  # how to say where it came from


def _side_from_store(store: Store, info: SnapshotInfo, label: str) -> Side:
    from tierctl.rfm import Edges, customers_from_snapshot

    meta = info.meta or {}
    unit = meta.get("unit", "owner")
    rows = store.snapshot_rows(info.id)
    edges = Edges.from_dict(meta["edges"]) if meta.get("edges") else None
    return Side(info.as_of, customers_from_snapshot(rows, unit), edges, unit, meta.get("monetary_basis", "sum"),
                f"{label}：已保存的快照 {info.as_of.isoformat()}（{info.source_name or '来源未知'}）")


def _side_from_file(path: Path, model: RfmModel, as_of: dt.date, edges: Edges | None, label: str,
                    sheet: str | None, encoding: str | None, mapping: Path | None) -> tuple[Side, list[str]]:
    from tierctl.io.ingest import load_mapping, read_export
    from tierctl.rfm import compute_rfm

    export = read_export(path, model.columns, sheet=sheet, encoding=encoding, mapping=load_mapping(mapping),
                         mapping_path=mapping)
    result = compute_rfm(export.frame, model, as_of, edges=edges)
    how = "（按上期边界评分）" if edges is not None else ""
    return (Side(as_of, result.customers, result.edges, result.unit, result.monetary_basis,
                 f"{label}：文件 {Path(path).name}，评估日 {as_of.isoformat()}{how}"),
            [f"{Path(path).name}：{w}" for w in export.warnings])


def run_migrate(*, from_date: str | None, to_date: str | None, from_file: Path | None, to_file: Path | None,
                freeze: bool, model_name: str | None, unit: str | None, sheet: str | None,
                encoding: str | None, mapping: Path | None, db: Path | None, now: str | None) -> dict[str, Any]:
    """Resolve both sides (stored snapshots or exports), re-score the later one on the
    earlier one's edges with ``freeze``, and compare them."""
    from tierctl.rfm import flow_customers, migrate, rescore

    _no_huge_pages()
    model = load_model(model_name, unit)
    warnings: list[str] = []
    store: Store | None = None
    if from_file is None or to_file is None:
        store = _open_read(db)
    try:
        # the later side's date first: "latest before it" is the default earlier side
        to_info = None
        if to_file is not None:
            to_d, _ = clock(to_date, now)
        else:
            assert store is not None
            if to_date:
                to_info = _snapshot_for(store, to_date, None, "--to")
            else:
                to_info = store.latest_snapshot(KIND)
                if to_info is None:
                    raise NotFoundError(f"历史数据库 {_where(store)} 中还没有 RFM 快照",
                                        hint="先运行 tierctl rfm 导出文件（不加 --dry-run）保存快照；"
                                             "或用 --from-file / --to-file 直接比较两个导出文件")
            to_d = to_info.as_of

        if from_file is not None:
            if not from_date:
                raise UsageError("用 --from-file 时需要用 --from 给出它的评估日期", hint="例如 --from 2026-10-24")
            from_d = parse_date(from_date, "--from")
            assert from_d is not None
            if from_d >= to_d:
                raise UsageError(f"--from {from_d.isoformat()} 应早于本期 {to_d.isoformat()}")
            prev, w = _side_from_file(from_file, model, from_d, None, "上期", sheet, encoding, mapping)
            warnings += w
        else:
            assert store is not None
            from_info: SnapshotInfo | None
            if from_date:
                from_info = _snapshot_for(store, from_date, None, "--from")
            else:
                from_info = store.latest_snapshot(KIND, before=to_d)
                if from_info is None:
                    raise NotFoundError(f"历史数据库 {_where(store)} 中没有 {to_d.isoformat()} 之前的 RFM 快照，"
                                        "无法比较", hint=f"已保存的评估日期：{_dates(store)}")
            if from_info.as_of >= to_d:
                raise UsageError(f"上期 {from_info.as_of.isoformat()} 应早于本期 {to_d.isoformat()}",
                                 hint="--from 写较早的日期，--to 写较晚的日期")
            prev = _side_from_store(store, from_info, "上期")

        if freeze and prev.edges is None:
            raise UsageError(f"上期（{prev.as_of.isoformat()}）没有保存分箱边界，不能冻结")
        frozen = prev.edges if freeze else None
        if to_file is not None:
            if prev.unit != model.unit:
                raise UsageError(f"上期按{_unit_zh(prev.unit)}统计，本期按{_unit_zh(model.unit)}",
                                 hint=f"加 --unit {prev.unit}")
            curr, w = _side_from_file(to_file, model, to_d, frozen, "本期", sheet, encoding, mapping)
            warnings += w
        else:
            assert store is not None and to_info is not None
            curr = _side_from_store(store, to_info, "本期")
            if frozen is not None:
                curr.customers = rescore(curr.customers, model, frozen, monetary_basis=curr.monetary_basis)
                curr.edges = frozen
                curr.source += "，按上期边界重新评分"
    finally:
        if store is not None:
            store.close()

    if prev.unit != curr.unit:
        raise UsageError(f"上期按{_unit_zh(prev.unit)}统计，本期按{_unit_zh(curr.unit)}，不能比较迁移")
    if unit and unit.lower() != curr.unit:
        raise UsageError(f"快照按{_unit_zh(curr.unit)}统计，与 --unit {unit} 不符")
    key = "vin" if curr.unit == "vin" else "customer_id"
    mig = migrate(prev.customers, curr.customers, model, key=key, prev_edges=prev.edges, curr_edges=curr.edges,
                  prev_as_of=prev.as_of, curr_as_of=curr.as_of)
    flows = flow_customers(mig, prev.customers, curr.customers, key)
    return {"model": model, "migration": mig, "flows": flows, "prev": prev, "curr": curr, "unit": curr.unit,
            "warnings": warnings}


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
        from tierctl.rfm_report import migration_path, write_migration

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
