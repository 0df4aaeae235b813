"""``tierctl churn`` (流失风险分级响应) and ``tierctl touches`` (低风险常规维护).

    tierctl churn 导出文件.xlsx [--as-of D]      score, plan, store the snapshot
    tierctl churn log 客户编号 --action … --result …   record an intervention, schedule follow-ups
    tierctl churn report [--from D1 --to D2] [--out DIR]   win-back, ROI, KPIs (store or --seed-table)
    tierctl touches [导出文件] [--date D] [--days N]   the upkeep list with drafted messages

Thin: parse options, call :mod:`tierctl.churn.run` (the job's runs), display.
"""

from __future__ import annotations

import datetime as dt
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
    ForceOpt,
    FormatOpt,
    HeadersOpt,
    JsonFormatOpt,
    LangOpt,
    LimitOpt,
    MappingOpt,
    NowOpt,
    OutputOpt,
    SheetOpt,
    TableFormatOpt,
    check_format,
    clock,
    default_command_group,
    dump_json,
    emit,
    emit_csv,
    emit_table,
    err_console,
    mask_phone,
    open_store,
    out_console,
    parse_date,
    progress,
    refuse_existing_output,
    warn,
)
from tierctl.errors import UsageError

if TYPE_CHECKING:
    from tierctl.churn import ChurnModel
    from tierctl.churn.report import LoopReport
    from tierctl.churn.run import ScoreRun, TouchesRun
    from tierctl.store import Store


_ScoreByDefault = default_command_group("score")

churn_app = typer.Typer(cls=_ScoreByDefault, no_args_is_help=True, rich_markup_mode="rich",
                        help="流失风险分级响应：tierctl churn 导出文件（= churn score）评分定级；"
                             "churn log 记录干预；churn report 挽回效果与 ROI。")
app.add_typer(churn_app, name="churn",
              help="流失风险分级响应。tierctl churn 导出文件（即 churn score）：评分定级（低/中/高/极高）、"
                   "负责人与时限、按原因定方案；churn log 记录干预并排回访；churn report 挽回率与 ROI")

ChurnModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="流失模型：churn（默认）或模型文件路径")]
LEVEL_STYLE = {"low": "black on green", "mid": "black on yellow", "high": "bold black on dark_orange",
               "extreme": "bold white on red"}


def _model(name: str | None) -> ChurnModel:
    from tierctl.churn.run import model_for

    return model_for(STATE.config, name)


def _open(db: Path | None, *, write: bool) -> Store:
    return open_store(db, readonly=not write, must_exist=True,
                      missing=("历史数据库 {path} 不存在：还没有保存过流失风险评分",
                               "先运行 tierctl churn 导出文件.xlsx（不加 --dry-run）；或用 --db / TIERCTL_DB 指定数据库"))


def _e(v: Any) -> str:
    from rich.markup import escape

    return escape("" if v is None else str(v))


def _who(name: Any, cid: Any) -> str:
    if isinstance(name, str) and name and cid and name != cid:
        return f"{name}（{cid}）"
    return str(name or cid or "?")


def _parse_at(text: str | None, now: dt.datetime, what: str) -> dt.datetime | None:
    """A date (noon of that day) or a date and time, in the centre's timezone."""
    if text is None:
        return None
    t = text.strip()
    try:
        if "T" not in t and ":" not in t:
            d = parse_date(t, what)
            assert d is not None
            return dt.datetime.combine(d, dt.time(12, 0), tzinfo=now.tzinfo)
        v = dt.datetime.fromisoformat(t.replace("/", "-"))
    except ValueError as exc:
        raise UsageError(f"{what}「{text}」无法识别", hint="写成 2026-11-24 10:30") from exc
    return v.replace(tzinfo=now.tzinfo) if v.tzinfo is None else v


# =====================================================================================
# tierctl churn [score] FILE
# =====================================================================================

def run_churn(file: Path, *, model_name: str | None = None, sheet: str | None = None, encoding: str | None = None,
              mapping: Path | None = None, as_of: str | None = None, now: str | None = None,
              db: Path | None = None, dry_run: bool = False) -> ScoreRun:
    """Options → :func:`tierctl.churn.run.score` (the store is created on first save)."""
    from tierctl.churn import run as job

    model = _model(model_name)
    with progress(f"读取 {file.name} …") as p:
        return job.score(file, model, lambda: clock(as_of, now), None if dry_run else (lambda: open_store(db)),
                         sheet=sheet, encoding=encoding, mapping=mapping, step=p.step)


@churn_app.command("score")
def churn_score(
    file: Annotated[Path, typer.Argument(help="CRM 导出文件（.xlsx 或 .csv），含流失风险分或各项信号", show_default=False)],
    model: ChurnModelOpt = None,
    sheet: SheetOpt = None,
    encoding: EncodingOpt = None,
    mapping: MappingOpt = None,
    as_of: AsOfOpt = None,
    fmt: TableFormatOpt = "table",
    output: OutputOpt = None,
    force: ForceOpt = False,
    headers: HeadersOpt = None,
    lang: LangOpt = None,
    db: DbOpt = None,
    dry_run: DryRunOpt = False,
    limit: LimitOpt = 100,
    now: NowOpt = None,
) -> None:
    """流失风险评分：每位客户 0–100 分及原因，等级（低/中/高/极高）、负责人（按客户价值和流失原因上调）、响应时限、预算和按原因定的方案。"""
    fmt = check_format(fmt, ("table", "json", "csv", "xlsx"))
    refuse_existing_output(output, force, dry_run)
    run = run_churn(file, model_name=model, sheet=sheet, encoding=encoding, mapping=mapping, as_of=as_of,
                    now=now, db=db, dry_run=dry_run)
    result = run.result
    if fmt == "json":
        doc = result.to_json()
        doc["snapshot"] = run.snapshot
        emit(dump_json(doc), None if dry_run else output, force)
    elif fmt in ("csv", "xlsx"):
        from tierctl.churn.score import flat_frame

        emit_table(flat_frame(result), "churn", fmt, output, force, headers=headers, lang=lang, dry_run=dry_run,
                   unit="位客户")
    else:
        show_table(run, limit)
    warn(run.warnings)


def show_table(run: ScoreRun, limit: int) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from tierctl.churn.score import main_reason

    result = run.result
    model = run.model
    con = out_console()
    c = result.customers.sort_values("priority", kind="stable")
    wide = con.width >= 140
    t = Table(title=f"{result.as_of} 流失风险分级（模型 {model.name}，{len(c)} 位）", header_style="bold",
              box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, padding=(0, 1), expand=True)
    t.add_column("等级", no_wrap=True, min_width=5)
    t.add_column("风险分", justify="right", no_wrap=True, min_width=4)
    t.add_column("客户", no_wrap=True, min_width=6, max_width=18)
    if wide:
        t.add_column("电话", no_wrap=True, min_width=11)
    t.add_column("负责人", no_wrap=True, min_width=6)
    t.add_column("时限", no_wrap=True, min_width=11)
    if wide:
        t.add_column("预算(元)", no_wrap=True, justify="right")
    # the two long texts wrap; every other column keeps its full width
    if wide:
        t.add_column("主要原因", overflow="fold", ratio=2, min_width=10)
    t.add_column("方案", overflow="fold", ratio=3, min_width=12)
    shown = c if not limit else c.head(limit)
    for r in shown.to_dict("records"):
        score = r["risk_score"]
        score_txt = str(int(score)) if float(score).is_integer() else f"{float(score):g}"
        level = Text(f" {r['level']} ", style=LEVEL_STYLE.get(r["level_key"], "bold"))
        if r.get("must_intervene"):
            level.append("★", style="bold red")
        rb = r["respond_by"]
        who = _who(r.get("name"), r["customer_id"]) if wide else (r.get("name") or r["customer_id"])
        cells: list[Any] = [level, score_txt, _e(who)]
        if wide:
            cells.append(mask_phone(r.get("phone")))
        cells += [_e(r["owner"]), rb.strftime("%m-%d %H:%M") if rb is not None else _e(r["respond_label"])]
        if wide:
            cells.append(f"{r['budget_min']}–{r['budget_max']}")
        # on a narrow screen the level's standard action is implied: show the tailored part
        plan = r["plan"] if wide or "；" not in r["plan"] else r["plan"].split("；", 1)[1]
        if wide:
            cells.append(_e(main_reason(r["reasons"]) or "—"))
        cells.append(_e(plan))
        t.add_row(*cells)
    con.print(t)
    if limit and len(c) > limit:
        con.print(f"[dim]… 另有 {len(c) - limit} 位未显示（--limit 0 显示全部，或用 --format csv 导出）[/dim]")
    counts = c["level_key"].value_counts()
    parts = [f"{lv.label} {int(counts.get(lv.key, 0))} 位" for lv in model.levels]
    must = int(c["must_intervene"].sum())
    con.print("合计：" + " · ".join(parts) + (f"；★ 高价值+高风险必须干预 {must} 位" if must else ""))
    snap = run.snapshot
    if snap.get("stored"):
        again = "（替换了同一天之前保存的评分）" if snap.get("replaced") else ""
        con.print(f"[dim]已保存 {snap['as_of']} 的流失风险快照{again}；干预后用 tierctl churn log 客户编号 记录[/dim]")
    else:
        con.print("[yellow]预览模式（--dry-run）：没有保存快照[/yellow]")


# =====================================================================================
# tierctl churn log
# =====================================================================================

@churn_app.command("log")
def churn_log(
    customer: Annotated[str | None, typer.Argument(help="客户编号（也可用姓名或手机号）；用 --import 时省略",
                                                   show_default=False)] = None,
    action: Annotated[str | None, typer.Option("--action", help="做了什么，如「店长致电，约周三面谈」（必填）",
                                               show_default=False)] = None,
    result: Annotated[str | None, typer.Option("--result", help="联系结果：已解决 / 已预约 / 已接通 / 客户拒绝 / 未接通 / 已留言（必填）",
                                               show_default=False)] = None,
    import_file: Annotated[Path | None, typer.Option("--import", help="导入填好的执行记录表（.xlsx/.csv：客户 联系时间 干预措施 联系结果 客户反馈 后续方案 投入 …），一次全部记录",
                                                     show_default=False)] = None,
    dry_run: DryRunOpt = False,
    feedback: Annotated[str | None, typer.Option("--feedback", help="客户反馈")] = None,
    next_plan: Annotated[str | None, typer.Option("--next", help="后续方案")] = None,
    cost: Annotated[float | None, typer.Option("--cost", help="本次投入（元）：补偿、折扣、礼品等")] = None,
    at: Annotated[str | None, typer.Option("--at", help="联系时间，如 2026-11-24 10:30（默认现在）")] = None,
    by: Annotated[str | None, typer.Option("--by", help="执行人姓名")] = None,
    done_at: Annotated[str | None, typer.Option("--done-at", help="完成时间（后续方案落实的时间；结果为「已解决」时默认为联系时间）")] = None,
    model: ChurnModelOpt = None,
    db: DbOpt = None,
    fmt: JsonFormatOpt = "table",
    now: NowOpt = None,
) -> None:
    """记录一次干预（执行记录：客户 风险分 等级 负责人 联系时间 联系结果 客户反馈 后续方案 完成时间），并按等级安排回访（中：30天；高：7、30天；极高：7、14、30、60、90天），回访出现在 tierctl tasks 里。"""
    from tierctl.churn.history import log_intervention

    fmt = check_format(fmt, ("table", "json"))
    m = _model(model)
    _, now_dt = clock(None, now)
    if import_file is not None:
        if customer or action or result:
            raise UsageError("用 --import 时不要再给出客户编号、--action 或 --result", hint="这些都写在表里")
        from tierctl.cli.collect import show_import
        from tierctl.daily.contacts import import_interventions

        store = _open(db, write=True)
        try:
            data = import_interventions(store, m, import_file, now=now_dt, dry_run=dry_run)
        finally:
            store.close()
        if fmt == "json":
            emit(dump_json(data), None, False)
            warn(data.get("warnings") or [])
        else:
            show_import(data, "干预记录")
        return
    if not customer or not action or not result:
        missing = [x for x, v in (("客户编号", customer), ("--action", action), ("--result", result)) if not v]
        raise UsageError(f"缺少{'、'.join(missing)}", hint="tierctl churn log 客户编号 --action 做了什么 --result 已接通；"
                         "或 tierctl churn log --import 执行记录.xlsx")
    at_dt = _parse_at(at, now_dt, "--at") or now_dt
    if at_dt > now_dt + dt.timedelta(minutes=5):
        raise UsageError(f"联系时间 {at_dt:%Y-%m-%d %H:%M} 晚于现在", hint="--at 写实际联系的时间")
    done = _parse_at(done_at, now_dt, "--done-at")
    store = _open(db, write=True)
    try:
        data = log_intervention(store, m, customer, action=action, result=result, at=at_dt, now=now_dt,
                                           feedback=feedback, next_plan=next_plan, cost=cost, by=by, done_at=done)
    finally:
        store.close()
    if fmt == "json":
        emit(dump_json(data), None, False)
        return
    _show_logged(data, at_dt)


def _show_logged(data: dict[str, Any], at_dt: dt.datetime) -> None:
    con = err_console()
    who = _who(data["name"], data["customer_id"])
    if data["duplicate"]:
        con.print(f"[yellow]这条记录已存在（#{data['id']}），没有重复保存[/yellow]")
        return
    score = data["score"]
    score_txt = "" if score is None else f" {score:g}分"
    con.print(f"已记录 #{data['id']}：{_e(who)} {data['level']}风险{score_txt}，负责人 {_e(data['owner'])}；"
              f"{at_dt:%m-%d %H:%M} {_e(data['action'])} → {_e(data['result'])}")
    for f in data["followups_closed"]:
        con.print(f"  [green]✓ 完成回访[/green] {f['due']}：{_e(f['detail'])}")
    if data["episode"] == "escalated":
        con.print("  [magenta]等级已升高：剩余回访按新等级重新安排[/magenta]")
    for f in data["followups_scheduled"]:
        con.print(f"  [cyan]→ 回访[/cyan] {f['due']} {_e(f['owner'])}（{_e(f['channel'])}）")
    if data["episode"] == "attempt":
        con.print("  [yellow]未接触到客户：暂不安排回访，请换时段再联系（短信/微信留言，极高风险可考虑上门）[/yellow]")
    elif data["next_followup"] and not data["followups_scheduled"]:
        con.print(f"  [dim]下一次回访 {data['next_followup']}（tierctl tasks 中显示）[/dim]")
    elif data["episode"] == "completed":
        con.print("  [green]该客户的回访计划已全部完成[/green]")


# =====================================================================================
# tierctl churn report
# =====================================================================================

@churn_app.command("report")
def churn_report(
    date_from: Annotated[str | None, typer.Option("--from", help="统计开始日期（默认最早的记录）")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="统计结束日期（默认最新的评分）")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="把报告写成 Excel（含原生图表）放进这个文件夹")] = None,
    seed_table: Annotated[bool, typer.Option("--seed-table", help="用手册中的示例数据（1350 人干预、766 人挽回）演示报告")] = False,
    table: Annotated[Path | None, typer.Option("--input", help="按等级汇总的数字表（.csv/.xlsx，列：等级 客户数 干预数 挽回数 成本）")] = None,
    visits: Annotated[Path | None, typer.Option("--visits", help="到店/消费记录导出（客户编号、日期、金额），用于判断是否挽回")] = None,
    sheet: SheetOpt = None,
    encoding: EncodingOpt = None,
    model: ChurnModelOpt = None,
    db: DbOpt = None,
    fmt: JsonFormatOpt = "table",
    output: OutputOpt = None,
    force: ForceOpt = False,
    now: NowOpt = None,
) -> None:
    """挽回效果：按等级统计客户数、干预数、挽回数、挽回率、成本和 ROI，对照行业标准和考核指标，并估算「不干预」的损失。"""
    from tierctl.churn import run as job

    fmt = check_format(fmt, ("table", "json"))
    m = _model(model)
    if seed_table and table is not None:
        raise UsageError("--seed-table 与 --input 只能选一个")
    if (seed_table or table is not None) and (date_from or date_to or visits):
        raise UsageError("--from/--to/--visits 只用于根据历史数据库统计，不能和 --seed-table / --input 一起用")
    run = job.report(m, lambda: clock(None, now), lambda: _open(db, write=False), seed_table=seed_table,
                     table=table, visits=visits, start=parse_date(date_from, "--from"),
                     end=parse_date(date_to, "--to"), sheet=sheet, encoding=encoding, out=out, force=force)
    if fmt == "json":
        doc = run.report.to_json()
        doc["workbook"] = str(run.workbook) if run.workbook else None
        emit(dump_json(doc), output, force)
    else:
        show_report(run.report)
    if run.workbook:
        err_console().print(f"已写入 {run.workbook}")
    warn(run.report.warnings)


def show_report(rep: LoopReport) -> None:
    from rich import box
    from rich.table import Table

    from tierctl.churn import percent, wan

    con = out_console()
    roi = rep.roi
    status = {"below": "[red]低于[/red]", "within": "[green]达到[/green]", "above": "[green]高于[/green]", "n/a": "—"}
    t = Table(title=rep.title or "流失挽回效果", box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False,
              collapse_padding=True)
    for h, j in (("等级", "left"), ("客户数", "right"), ("干预数", "right"), ("挽回数", "right"), ("挽回率", "right"),
                 ("行业标准", "left"), ("成本", "right"), ("ROI", "right")):
        t.add_column(h, justify=j, no_wrap=True)  # type: ignore[arg-type]
    for lv in roi.levels:
        pend = rep.pending.get(lv.level_key, {}).get("win_back", 0)
        won = f"{lv.won_back}" + (f" (+{pend}待定)" if pend else "")
        verdict = "待定" if pend and lv.won_back < lv.intervened * lv.benchmark[0] else status[lv.benchmark_status]
        bench = f"{percent(lv.benchmark[0])[:-1]}–{percent(lv.benchmark[1])} {verdict}"
        t.add_row(f"{lv.label}风险", str(lv.customers), str(lv.intervened), won, percent(lv.rate), bench,
                  wan(lv.cost), percent(lv.roi))
    t.add_section()
    t.add_row("合计", str(roi.customers), str(roi.intervened), str(roi.won_back), percent(roi.rate), "",
              wan(roi.cost), percent(roi.roi))
    con.print(t)
    for line in rep.summary_lines()[len(roi.levels) + 1:]:
        con.print(_e(line))


# =====================================================================================
# tierctl touches
# =====================================================================================

@app.command()
def touches(
    file: Annotated[Path | None, typer.Argument(help="流失风险导出文件；省略时用最近一次保存的流失风险评分",
                                                 show_default=False)] = None,
    date: Annotated[str | None, typer.Option("--date", help="从哪天开始（默认今天）")] = None,
    days: Annotated[int, typer.Option("--days", help="未来几天（含开始当天）", min=1, max=366)] = 7,
    all_levels: Annotated[bool, typer.Option("--all-levels", help="所有等级的客户（默认只给低风险客户；其他等级有各自的挽回方案）")] = False,
    model: ChurnModelOpt = None,
    sheet: SheetOpt = None,
    encoding: EncodingOpt = None,
    mapping: MappingOpt = None,
    templates: Annotated[Path | None, typer.Option("--templates", help="自定义模板文件夹（同名文件覆盖内置模板）")] = None,
    allow_taboo: Annotated[bool, typer.Option("--allow-taboo", help="起草的短信含禁忌用语时仍然输出")] = False,
    lang: LangOpt = None,
    db: DbOpt = None,
    fmt: FormatOpt = "table",
    output: OutputOpt = None,
    force: ForceOpt = False,
    limit: LimitOpt = 50,
    now: NowOpt = None,
    sms_out: Annotated[Path | None, typer.Option("--sms-out", help="同时把短信写成短信平台的批量发送文件（阿里云/腾讯云 .xlsx，含签名计字、退订说明）和核对表，放进这个文件夹")] = None,
) -> None:
    """低风险客户的自动维护清单：生日、节日（春节/端午/中秋按农历）、里程、季度礼遇、月度活动，每条附起草好的短信（已检查禁忌用语）。"""
    from tierctl.churn import run as job
    from tierctl.cli.common import lang as pick_lang

    fmt = check_format(fmt)
    lg = pick_lang(lang)
    m = _model(model)
    run = job.touches(m, STATE.config, lambda: clock(date, now), lambda: _open(db, write=False), file=file,
                      days=days, all_levels=all_levels, sheet=sheet, encoding=encoding, mapping=mapping,
                      templates=templates, allow_taboo=allow_taboo, lang=lg, sms_out=sms_out, force=force)
    if sms_out is not None:
        err_console().print(f"已写入短信平台文件（{run.sms_rows} 条，计费 {run.sms_segments} 条，已加退订说明）："
                            + "、".join(str(f) for f in run.sms_files))
    if fmt == "json":
        emit(dump_json(run.to_json()), output, force)
    elif fmt == "csv":
        from tierctl.churn.touches import touches_flat

        emit_csv(touches_flat(run.drafted), output, force, unit="条")
    else:
        _show_touches(run, limit)
    warn(run.warnings)


def _show_touches(run: TouchesRun, limit: int) -> None:
    from rich import box
    from rich.table import Table

    con = out_console()
    start, days = run.start, run.days
    t = run.drafted.touches
    end = start + dt.timedelta(days=days - 1)
    tab = Table(title=f"{start} 至 {end} 自动维护触达：{len(t)} 条", box=box.SIMPLE_HEAD, header_style="bold",
                show_lines=False)
    wide = con.width >= 140
    tab.add_column("日期", no_wrap=True)
    tab.add_column("类型", no_wrap=True)
    tab.add_column("客户", no_wrap=True, max_width=18)
    if wide:
        tab.add_column("电话", no_wrap=True)
    tab.add_column("短信草稿", overflow="fold", ratio=1)
    shown = t if not limit else t.head(limit)
    for r in shown.to_dict("records"):
        who = _who(r["name"], r["customer_id"]) if wide else (r["name"] or r["customer_id"])
        cells = [r["date"].strftime("%m-%d"), _e(r["kind_label"]), _e(who)]
        if wide:
            cells.append(mask_phone(r["phone"]))
        tab.add_row(*cells, _e(r["message"]))
    con.print(tab)
    if limit and len(t) > limit:
        con.print(f"[dim]… 另有 {len(t) - limit} 条未显示（--limit 0 显示全部，或 --format csv 导出给短信平台）[/dim]")
    if len(t):
        counts = t["kind_label"].value_counts()
        con.print("合计：" + " · ".join(f"{k} {v} 条" for k, v in counts.items()))
    else:
        con.print("[green]这段时间没有需要发送的维护触达[/green]")
