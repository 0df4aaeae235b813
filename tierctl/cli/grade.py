"""``tierctl grade``: customer grading (job D, SPEC D).

    tierctl grade FILE [--as-of D] [--overrides FILE] [--format table|json] [--out DIR] [--dry-run]
    tierctl grade override ID GRADE --reason "…" [--by …]      (or: ID --clear)
    tierctl grade overrides [--all]
    tierctl grade history ID

Thin: the whole run is :func:`tierctl.grade.run.run_grade` (history in
:mod:`tierctl.grade.history`, letters in :mod:`tierctl.grade.report`); this module parses
options, calls the library and shows what comes back.  ``tierctl grade FILE`` is the ``run`` sub-command: the group
runs ``run`` whenever its first word is not one of its sub-commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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
    HeadersOpt,
    LangOpt,
    MappingOpt,
    NowOpt,
    OutputOpt,
    SheetOpt,
    TableFormatOpt,
    check_format,
    clock,
    db_path,
    default_command_group,
    dump_json,
    emit,
    emit_table,
    err_console,
    open_store,
    out_console,
    progress,
    refuse_existing_output,
    warn,
)
from tierctl.cli.common import lang as pick_lang
from tierctl.cli.documents import AllowTabooOpt, TemplatesOpt, _templates_dir
from tierctl.errors import UsageError

RUN = "run"


_DefaultRun = default_command_group(RUN)

grade_app = typer.Typer(
    cls=_DefaultRun,
    no_args_is_help=True,
    help="客户分级：按六项指标算 0–100 综合分，分为 VIP/核心/潜力/普通/休眠，"
         "与上次分级比较升降级，为每位降级客户生成降级说明函。\n\n"
         "用法：tierctl grade 导出文件 [选项]（即 tierctl grade run，选项见 tierctl grade run --help）；"
         "人工调整用 tierctl grade override。",
)
app.add_typer(grade_app, name="grade")

ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="分级模型：grade（默认，配置 grade.model），或模型文件路径")]
NormaliseOpt = Annotated[str | None, typer.Option(
    "--normalise", help="指标评分方式：percentile（百分位，模型默认）或 thresholds（按模型文件中的阈值分档）")]
OverridesOpt = Annotated[Path | None, typer.Option(
    "--overrides", help="人工调整文件（.csv/.xlsx：客户编号、等级、原因，可选 调整人、调整时间、有效期至）；仅本次有效")]
OutDirOpt = Annotated[Path | None, typer.Option(
    "--out", help="输出文件夹（默认配置 render.out，即 out/）；降级说明函写入 <文件夹>/<评估日期>/letters/")]
LimitOpt = Annotated[int, typer.Option("--limit", help="表格最多显示多少位客户（0 = 全部）")]
GradeFormatOpt = Annotated[str, typer.Option("--format", "-f", help="输出格式：table | json")]

# one style per grade position, highest first (the names come from the model file)
GRADE_STYLES = ("bold white on magenta", "bold white on blue", "black on cyan", "black on white", "dim")


def _e(v: Any) -> str:
    """User text (names, reasons, paths) printed through rich: never read as markup."""
    from rich.markup import escape

    return "" if v is None else escape(str(v))


def _style(model: Any, grade: str) -> str:
    r = model.rank(grade)
    if r is None:
        return ""
    if r == 0:
        return GRADE_STYLES[-1]
    return GRADE_STYLES[min(len(model.grades) - 1 - r, len(GRADE_STYLES) - 2)]


def load_model(name: str | None, normalise: str | None = None):
    from tierctl.grade import load_grade_model

    if normalise is not None and normalise.lower() not in ("percentile", "thresholds"):
        raise UsageError(f"--normalise 不支持「{normalise}」", hint="可选：percentile | thresholds")
    return load_grade_model(name or STATE.config.get("grade.model") or "grade",
                            normalise=normalise.lower() if normalise else None)


def _open_store(db: Path | None, *, dry_run: bool = False, readonly: bool = False):
    """The history store; ``None`` for a dry run when the database does not exist yet
    (a preview must not create it)."""
    if dry_run and not db_path(db).exists():
        return None
    return open_store(db, readonly=dry_run or readonly,
                      missing=("历史数据库 {path} 不存在",
                               "先运行一次 tierctl grade 导出文件（不加 --dry-run）；或用 --db 指定数据库"))


def run_grade(file: Path, *, model_name: str | None = None, normalise: str | None = None,
              overrides: Path | None = None, sheet: str | None = None, encoding: str | None = None,
              mapping: Path | None = None, as_of: str | None = None, now: str | None = None,
              db: Path | None = None, dry_run: bool = False, out: Path | None = None, force: bool = False,
              lang: str | None = None, templates: Path | None = None, allow_taboo: bool = False) -> dict[str, Any]:
    """The options as the library takes them, then :func:`tierctl.grade.run.run_grade`
    (ingest, grade, compare, letters, store)."""
    from tierctl.grade.run import run_grade as run_job

    model = load_model(model_name, normalise)
    return run_job(file, model, config=STATE.config, clock=lambda: clock(as_of, now),
                   open_store=lambda: _open_store(db, dry_run=dry_run), overrides=overrides, sheet=sheet,
                   encoding=encoding, mapping=mapping, dry_run=dry_run, out=out, force=force,
                   lang=lambda: pick_lang(lang), templates=_templates_dir(templates), allow_taboo=allow_taboo,
                   progress=progress)


@grade_app.command(RUN)
def run(
    file: FileArg,
    as_of: AsOfOpt = None,
    model: ModelOpt = None,
    normalise: NormaliseOpt = None,
    overrides: OverridesOpt = None,
    fmt: TableFormatOpt = "table",
    output: OutputOpt = None,
    headers: HeadersOpt = None,
    out: OutDirOpt = None,
    db: DbOpt = None,
    dry_run: DryRunOpt = False,
    force: ForceOpt = False,
    sheet: SheetOpt = None,
    encoding: EncodingOpt = None,
    mapping: MappingOpt = None,
    lang: LangOpt = None,
    templates: TemplatesOpt = None,
    allow_taboo: AllowTabooOpt = False,
    limit: LimitOpt = 50,
    now: NowOpt = None,
) -> None:
    """给导出表中的每位客户算综合分（0–100）并分级（VIP/核心/潜力/普通/休眠），与上次分级比较升降级，
    为每位降级客户生成降级说明函；结果存入历史数据库（--dry-run 时不存、不写文件）。

    指标：近12个月消费 30%、到店频次 20%、客单价 10%、客户年限 15%、满意度 15%、潜力 10%。
    人工调整：--overrides 文件（仅本次），或 tierctl grade override（保存，之后每次都生效）。
    """
    fmt = check_format(fmt, ("table", "json", "csv", "xlsx"))
    refuse_existing_output(output, force, dry_run)
    r = run_grade(file, model_name=model, normalise=normalise, overrides=overrides, sheet=sheet, encoding=encoding,
                  mapping=mapping, as_of=as_of, now=now, db=db, dry_run=dry_run, out=out, force=force, lang=lang,
                  templates=templates, allow_taboo=allow_taboo)
    if fmt == "json":
        emit(dump_json(run_json(r)), None if dry_run else output, force)
    elif fmt in ("csv", "xlsx"):
        from tierctl.grade.report import flat_frame, table_columns

        emit_table(flat_frame(r["result"]), "grade", fmt, output, force, headers=headers, lang=lang,
                   dry_run=dry_run, unit="位客户", dynamic=table_columns(r["result"]))
    else:
        show_run(r, limit)
    _report_store(r)
    gap = r["result"].share_gap
    # the table shows the share gap first; it is not repeated at the end
    first = gap["text"] if gap and fmt == "table" else None
    warn([w for w in r["warnings"] if w != first])


def run_json(r: dict[str, Any]) -> dict[str, Any]:
    """The JSON document: the library's result, plus the comparison, letters and snapshot."""
    doc = r["result"].to_json()
    doc["normalise"] = r["model"].normalise
    doc["previous"] = ({"as_of": r["previous"].as_of.isoformat(), "snapshot_id": r["previous"].id}
                       if r["previous"] is not None else None)
    doc["changes"] = r["changes"].to_json() if r["changes"] is not None else None
    letters = r["letters"]
    doc["letters"] = {"folder": str(letters.folder), "written": not r["dry_run"], "files": letters.to_json()} \
        if letters is not None else None
    doc["snapshot"] = r["snapshot"].to_json() if r["snapshot"] is not None else None
    doc["warnings"] = list(r["warnings"])
    return doc


# -- display -------------------------------------------------------------------------------
def show_run(r: dict[str, Any], limit: int) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    result, model = r["result"], r["model"]
    c = result.customers
    con = out_console()
    how = {"percentile": "百分位", "thresholds": "阈值分档", "mixed": "百分位+阈值"}[model.normalise]
    title = f"{result.as_of} 客户分级（模型 {model.name}，{how}评分，{len(c):,} 位）"

    # who moved since the previous grading, for the 变化 column
    moved: dict[str, str] = {}
    ch = r["changes"]
    if ch is not None:
        for frame, arrow in ((ch.upgrades, "↑"), (ch.downgrades, "↓")):
            for cid, pg in zip(frame["customer_id"].astype(str), frame["prev_grade"].astype(str), strict=True):
                moved[cid] = f"{arrow} 原{pg}"

    # shares far from the usual ones: explained before anything else is read
    gap = result.share_gap
    if gap:
        for i, line in enumerate(gap["lines"]):
            con.print(Text(("⚠ " if i == 0 else "  ") + line, style="bold yellow" if i == 0 else "yellow"))
        con.print()

    t = Table(title=title, header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True,
              padding=(0, 1))
    from tierctl.grade.report import display_order

    order = display_order(c, limit)  # highest grade first (see there)
    sub = c.iloc[order[:limit] if limit else order]
    any_note = bool(sub["overridden"].any())
    t.add_column("等级", no_wrap=True, min_width=6)
    t.add_column("综合分", justify="right", no_wrap=True, min_width=6)
    t.add_column("客户编号", no_wrap=True, min_width=6)
    t.add_column("姓名", no_wrap=True, max_width=16)
    for ind in result.indicators:
        t.add_column(ind.short or ind.label, justify="right", no_wrap=True, min_width=4)
    if moved:
        t.add_column("变化", no_wrap=True)
    if any_note:
        t.add_column("人工调整", overflow="ellipsis", no_wrap=True, max_width=40)
    for row in sub.to_dict("records"):
        g = str(row["grade"])
        cell = Text(f" {g} ", style=_style(model, g))
        note = ""
        if row["overridden"]:
            cell.append(" 人工", style="bold yellow")
            note = _e(f"系统评定 {row['computed_grade']}；{row['override_reason']}")
        scores = ["—" if row[i.score_column] != row[i.score_column] else f"{row[i.score_column]:.1f}"
                  for i in result.indicators]
        extra = ([moved.get(str(row["customer_id"]), "")] if moved else []) + ([note] if any_note else [])
        t.add_row(cell, f"{row['composite']:.2f}", _e(row["customer_id"]), _e(row.get("name") or ""), *scores,
                  *extra)
    con.print(t)
    if limit and len(c) > limit:
        con.print(f"[dim]… 另有 {len(c) - limit:,} 位未显示（--limit 0 显示全部，或用 --format json）[/dim]")

    _show_distribution(result, model, con)
    _show_audit(result, con)
    _show_changes(r, con)


def _show_distribution(result: Any, model: Any, con: Any) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    # shares against the usual ones (SPEC D)
    d = result.distribution
    dt_ = Table(title="等级分布", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    dt_.add_column("等级")
    dt_.add_column("综合分", justify="right")
    dt_.add_column("人数", justify="right")
    dt_.add_column("占比", justify="right")
    dt_.add_column("通常占比", justify="right")
    overridden_any = bool((d["count"] != d["computed_count"]).any())
    if overridden_any:
        dt_.add_column("系统评定人数", justify="right")
    bounds = [g.min for g in model.grades]
    for i, row in enumerate(d.to_dict("records")):
        rng = f"<{bounds[i - 1]:g}" if bounds[i] == 0 else f"≥{bounds[i]:g}"
        usual = "" if row["usual_share_pct"] is None else f"{row['usual_share_pct']:g}%"
        share = Text(f"{row['share_pct']:.1f}%", style="bold yellow" if row["flagged"] else "")
        if row["flagged"]:
            share.append(" ⚠")
        cells: list[Any] = [Text(f" {row['grade']} ", style=_style(model, row["grade"])), rng, f"{row['count']:,}",
                            share, usual]
        if overridden_any:
            cells.append(f"{row['computed_count']:,}")
        dt_.add_row(*cells)
    con.print(dt_)


def _show_audit(result: Any, con: Any) -> None:
    if result.audit:
        con.print(f"[bold]人工调整 {len(result.audit)} 位[/bold]（以人工等级为准，系统评定仍保留）：")
        for a in result.audit[:20]:
            who = "；".join(x for x in (a.get("by"), a.get("at")) if x)
            con.print(f"  {_e(a['customer_id'])}：系统评定 {a['computed_grade']}（{a['composite']:.2f}）→ "
                      f"[bold]{a['grade']}[/bold]　原因：{_e(a['reason'])}" + (f"（{_e(who)}）" if who else ""))
        if len(result.audit) > 20:
            con.print(f"  [dim]… 另有 {len(result.audit) - 20} 位（--format json 查看全部）[/dim]")


def _show_changes(r: dict[str, Any], con: Any) -> None:
    ch, prev, letters = r["changes"], r["previous"], r["letters"]
    if ch is None:
        con.print("[dim]没有更早的客户分级记录：本次作为基准，下次运行时列出升降级并生成降级说明函。[/dim]")
        return
    con.print(f"[bold]与上次分级（{prev.as_of}）相比[/bold]：升级 {len(ch.upgrades):,} 位 · 降级 "
              f"{len(ch.downgrades):,} 位 · 不变 {ch.unchanged:,} 位 · 新客户 {len(ch.new):,} 位 · "
              f"本次未出现 {len(ch.gone):,} 位")
    for frame, arrow, style in ((ch.downgrades, "↓", "red"), (ch.upgrades, "↑", "green")):
        rows = frame.to_dict("records")
        for row in rows[:20]:
            pc = row.get("prev_composite")
            comp = f"{pc:.2f} → {row['composite']:.2f}" if pc is not None and pc == pc else f"{row['composite']:.2f}"
            mark = "（人工）" if row.get("overridden") else ""
            con.print(f"  [{style}]{arrow}[/{style}] {_e(row['customer_id'])} {_e(row.get('name') or '')}  "
                      f"{row['prev_grade']} → {row['grade']}{mark}  综合分 {comp}")
        if len(rows) > 20:
            con.print(f"  [dim]… 另有 {len(rows) - 20:,} 位（--format json 查看全部）[/dim]")
    if letters is not None and letters.texts:
        verb = "将写入（预览，未写入）" if r["dry_run"] else "已写入"
        con.print(f"降级说明函 {len(letters.texts):,} 份{verb} {_e(letters.folder)}")


def _report_store(r: dict[str, Any]) -> None:
    con = err_console()
    info = r["snapshot"]
    if r["dry_run"]:
        con.print("[dim]预览（--dry-run）：没有写入历史数据库，也没有写任何文件。[/dim]")
    elif info is not None:
        again = "（同一评估日重跑，已替换原记录）" if info.replaced else ""
        con.print(f"[dim]已保存到历史数据库 {_e(r['db'])}：客户分级快照 #{info.id}，评估日 {info.as_of}{again}[/dim]")


# -- overrides -----------------------------------------------------------------------------
@grade_app.command("override")
def override(
    customer_id: Annotated[str, typer.Argument(help="客户编号（与导出中写法一致，含前导 0）", show_default=False)],
    grade: Annotated[str | None, typer.Argument(help="调整后的等级，如 VIP、核心（--clear 时不写）",
                                                show_default=False)] = None,
    reason: Annotated[str | None, typer.Option("--reason", "-r", help="调整原因（必填），如「转介绍 10 位新客户」")] = None,
    by: Annotated[str | None, typer.Option("--by", help="调整人（默认配置 centre.manager）")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="取消这位客户的人工调整，之后按综合分定级")] = False,
    model: ModelOpt = None,
    db: DbOpt = None,
    fmt: GradeFormatOpt = "table",
    now: NowOpt = None,
) -> None:
    """人工调整一位客户的等级（原因必填），保存后之后每次分级都生效，直到 --clear。

    例：tierctl grade override 000007 VIP --reason "转介绍 10 位新客户" --by 王经理
    """
    from tierctl.grade import history as gs

    fmt = check_format(fmt, ("table", "json"))
    if clear and grade is not None:
        raise UsageError("--clear 取消人工调整时不用写等级", hint=f"tierctl grade override {customer_id} --clear")
    if not clear and grade is None:
        raise UsageError("请写明调整后的等级", hint=f'例如 tierctl grade override {customer_id} VIP --reason "原因"')
    if not clear and not (reason or "").strip():
        raise UsageError("人工调整必须写明原因", hint='加 --reason "原因"，例如 --reason "转介绍 10 位新客户"')
    who = by or STATE.config.get("centre.manager") or None
    _, now_dt = clock(None, now)
    m = load_model(model)
    with _open_store(db) as store:
        if clear:
            doc = gs.clear_override(store, customer_id, reason, who, now_dt)
        else:
            doc = gs.add_override(store, m, customer_id, grade or "", reason, who, now_dt)
    if fmt == "json":
        emit(dump_json(doc), None, False)
        return
    con = out_console()
    if clear:
        o = doc["cleared"]
        con.print(f"已取消客户 {_e(doc['customer_id'])} 的人工调整（原为 {o['grade']}，原因：{_e(o['reason'])}）；"
                  "下次分级起按综合分定级。")
        return
    name = f" {_e(doc['name'])}" if doc["name"] else ""
    con.print(f"已记录人工调整：客户 {_e(doc['customer_id'])}{name} → [bold]{doc['grade']}[/bold]　"
              f"原因：{_e(doc['reason'])}" + (f"　调整人：{_e(doc['by'])}" if doc["by"] else ""))
    last = doc["last"]
    if last:
        con.print(f"  上次分级（{last['as_of']}）：{last['grade']}，综合分 {last['composite']:.2f}"
                  f"（系统评定 {last['computed_grade']}）")
    if doc["replaced"]:
        rp = doc["replaced"]
        con.print(f"  取代了之前的人工调整：{rp['grade']}（{_e(rp['reason'])}）")
    con.print(f"  从下一次 tierctl grade 起生效，直到 tierctl grade override {_e(doc['customer_id'])} --clear")
    if not last:
        warn([f"客户 {doc['customer_id']} 还没有出现在任何一次客户分级中：请核对客户编号（下次分级时若导出中没有他，"
              "这条调整不会生效，并会提示）"])


@grade_app.command("overrides")
def overrides_list(
    all_: Annotated[bool, typer.Option("--all", help="也列出已取消、已被取代的人工调整")] = False,
    db: DbOpt = None,
    fmt: GradeFormatOpt = "table",
) -> None:
    """列出生效中的人工调整（谁、调整为什么等级、原因、调整人、时间）。"""
    from rich import box
    from rich.table import Table

    from tierctl.grade import history as gs

    fmt = check_format(fmt, ("table", "json"))
    from tierctl.cli.common import timezone

    with _open_store(db, readonly=True) as store:
        rows = gs.overrides_table(store, timezone(), all_=all_)
    if fmt == "json":
        emit(dump_json(rows), None, False)
        return
    con = out_console()
    if not rows:
        con.print("没有人工调整。" if all_ else "没有生效中的人工调整。")
        return
    t = Table(title="人工调整" if all_ else "生效中的人工调整", header_style="bold", box=box.SIMPLE_HEAD)
    for h in ("客户编号", "姓名", "等级", "原因", "调整人", "时间", *(("状态", "结束原因") if all_ else ())):
        t.add_column(h)
    status = {"active": "生效中", "cleared": "已取消", "replaced": "已被取代", "ended": "已结束"}
    for o in rows:
        cells = [_e(o["customer_id"]), _e(o.get("name")), o["grade"], _e(o["reason"]), _e(o.get("by")),
                 (o.get("created_at") or "").replace("T", " ")[:16]]
        if all_:
            cells += [status.get(o["status"], o["status"]), _e(o.get("end_reason"))]
        t.add_row(*cells)
    con.print(t)


# -- history -------------------------------------------------------------------------------
@grade_app.command("history")
def history(
    customer_id: Annotated[str, typer.Argument(help="客户编号", show_default=False)],
    model: ModelOpt = None,
    db: DbOpt = None,
    fmt: GradeFormatOpt = "table",
) -> None:
    """一位客户的分级历史：每次分级的等级、综合分和升降，以及每一次人工调整和取消（时间、原因、调整人）。"""
    from tierctl.cli.common import timezone
    from tierctl.grade import history as gs

    fmt = check_format(fmt, ("table", "json"))
    m = load_model(model)
    with _open_store(db, readonly=True) as store:
        doc = gs.grade_history(store, m, customer_id, timezone())
    if fmt == "json":
        emit(dump_json(doc), None, False)
        return
    from rich import box
    from rich.table import Table
    from rich.text import Text

    con = out_console()
    name = f" {_e(doc['name'])}" if doc["name"] else ""
    t = Table(title=f"客户 {_e(doc['customer_id'])}{name} 的分级历史", header_style="bold", box=box.SIMPLE_HEAD)
    for h in ("评估日", "等级", "综合分", "变化", "系统评定", "人工调整原因"):
        t.add_column(h)
    arrows = {"up": ("↑ 升级", "green"), "down": ("↓ 降级", "red"), "changed": ("变化", "yellow")}
    for g in doc["gradings"]:
        a = arrows.get(g["change"] or "")
        change = Text(f"{a[0]}（原{g['previous_grade']}）", style=a[1]) if a else Text("")
        t.add_row(g["as_of"], Text(f" {g['grade']} ", style=_style(m, g["grade"])),
                  "" if g["composite"] is None else f"{g['composite']:.2f}", change,
                  g["computed_grade"] or "", _e(g["override_reason"]))
    con.print(t)
    if doc["overrides"]:
        con.print("[bold]人工调整记录[/bold]")
        what = {"override": "人工调整为 {g}", "cleared": "取消人工调整（原为 {g}）",
                "replaced": "人工调整 {g} 被新的调整取代", "ended": "人工调整 {g} 结束"}
        for e in doc["overrides"]:
            by = f"（{_e(e['by'])}）" if e.get("by") else ""
            text = what.get(e["event"], e["event"] + " {g}").format(g=e["grade"])
            con.print(f"  {e['at'].replace('T', ' ')[:16]}  {text}　原因：{_e(e['reason'] or '—')}{by}")
    if doc["active_override"]:
        o = doc["active_override"]
        con.print(f"生效中：{o['grade']}（{_e(o['reason'])}），直到 tierctl grade override {_e(doc['customer_id'])} --clear")
