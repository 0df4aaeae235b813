"""The daily loop on the command line: ``history``, ``why``, ``override``, ``tasks``,
``contact``, ``contacts export``, ``alerts`` — and the hooks ``tierctl score`` calls to
store its result, compare it with the previous run and fire alerts.

Thin by design: parse options, call :mod:`tierctl.store.loop`, show the result (rich
tables on stdout, messages on stderr, ``--format json`` for machines).
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
    DbOpt,
    ForceOpt,
    HeadersOpt,
    JsonFormatOpt,
    LangOpt,
    LimitOpt,
    NowOpt,
    OutputOpt,
    TableFormatOpt,
    check_format,
    clock,
    db_path,
    dump_json,
    emit,
    emit_table,
    err_console,
    lang_of,
    mask_phone,
    out_console,
    parse_date,
    timezone,
    warn,
)
from tierctl.errors import NotFoundError, StoreError, UsageError

if TYPE_CHECKING:
    from tierctl.shortage import ShortageResult
    from tierctl.store import Store

CustomerArg = Annotated[str, typer.Argument(help="客户编号（也可用姓名或手机号）", show_default=False)]
DateOpt = Annotated[str | None, typer.Option("--date", help="日期 YYYY-MM-DD（默认今天）")]
ByOpt = Annotated[str | None, typer.Option("--by", help="操作人姓名（写入记录）")]
TIER_STYLE = {"P0": "bold white on red", "P1": "bold black on dark_orange", "P2": "black on yellow",
              "P3": "black on green"}
LIST_LIMIT = 10  # changes/alerts lines printed under the morning table, per kind
CHURN_KIND = "churn"  # tierctl.churn_loop.KIND, named here so that `tasks` need not import job B


# -- helpers ---------------------------------------------------------------------------------
def _open(db: Path | None) -> Store:
    from tierctl.store import Store

    path = db_path(db)
    if not path.exists():
        raise NotFoundError(f"历史数据库 {path} 不存在：还没有保存过评分",
                            hint="先运行 tierctl score 导出文件.xlsx（不加 --dry-run）；或用 --db / TIERCTL_DB 指定数据库")
    return Store.open(path)


HolidaysOpt = Annotated[list[Path] | None, typer.Option(
    "--holidays", help="节假日文件（一年一个，可多次给出；格式见 README）：按工作日计算联系周期，该年的放假和调休以此为准"
                       "（代替配置 calendar.file）", show_default=False)]


def work_calendar(holidays: list[Path] | None = None):
    """The working-day calendar the configuration asks for: ``calendar.working_days``,
    and the holiday files of ``calendar.file`` (a path or a list, relative to the
    configuration file's folder).  ``holidays`` (``--holidays``) replaces those files
    and turns working days on."""
    from tierctl.daily import WorkCalendar
    from tierctl.errors import ConfigError
    from tierctl.holidays import load_holiday_files

    cfg = STATE.config
    where = cfg.path or Path("tierctl.toml")
    v = cfg.get("calendar.working_days", False)
    if not isinstance(v, bool):
        raise ConfigError("应为 true 或 false", path=where, key="calendar.working_days")
    if holidays:
        return WorkCalendar(True, load_holiday_files(holidays))
    files = cfg.get("calendar.file", "") or []
    if isinstance(files, str):
        files = [files] if files.strip() else []
    if not isinstance(files, list) or not all(isinstance(x, str) for x in files):
        raise ConfigError("应为节假日文件的路径，或路径的列表", path=where, key="calendar.file",
                          hint='例如 file = "节假日2027.csv"')
    base = cfg.path.parent if cfg.path else Path.cwd()
    return WorkCalendar(v, load_holiday_files([base / x for x in files if x.strip()]))


def _e(v: Any) -> str:
    from rich.markup import escape

    return escape("" if v is None else str(v))


def _who(d: dict[str, Any]) -> str:
    name, cid = d.get("name"), d.get("customer_id")
    if name and cid and name != cid:
        return f"{name}（{cid}）"
    return str(name or cid or d.get("customer_key") or "?")


def _tier(t: str | None):
    from rich.text import Text

    return Text(f" {t} ", style=TIER_STYLE.get(t or "", "bold")) if t else Text("—")


def _parse_at(text: str | None, now: dt.datetime, what: str) -> dt.datetime | None:
    if text is None:
        return None
    t = text.strip()
    try:
        if len(t) <= 11 and "T" not in t and ":" not in t:
            d = parse_date(t, what)
            assert d is not None
            return dt.datetime.combine(d, dt.time(12, 0), tzinfo=now.tzinfo)
        v = dt.datetime.fromisoformat(t.replace("/", "-"))
    except ValueError as exc:
        raise UsageError(f"{what}「{text}」无法识别", hint="写成 2026-11-24 10:30") from exc
    return v.replace(tzinfo=now.tzinfo) if v.tzinfo is None else v


def _due_text(due: str) -> str:
    """A deadline as the task list shows it: ``2026-11-24`` stays a date, a time reads
    ``11-24 22:30``."""
    return due[5:16].replace("T", " ") if "T" in due else due


def _short(channel: str | None) -> str:
    import re

    return re.split(r"[（(，,]", channel or "")[0]


def _show_warnings(data: dict[str, Any]) -> None:
    warn(list(data.get("warnings") or []))


# -- the hooks tierctl score calls ------------------------------------------------------------
def open_for_score(db: Path | None, dry_run: bool) -> Store:
    """The store a morning run reads its history from and writes its snapshot to.  A
    dry run never creates or changes a file: it reads an existing database read-only,
    or works against an empty in-memory one."""
    from tierctl.store import Store

    path = db_path(db)
    if dry_run:
        if not path.exists():
            store = Store.open(":memory:")
        else:
            try:
                store = Store.open(path, readonly=True)
            except StoreError as err:
                warn([f"预览模式无法读取历史数据库，按没有历史处理：{err.message}"])
                store = Store.open(":memory:")
    else:
        store = Store.open(path)
    store.display_path = str(path)  # type: ignore[attr-defined]
    return store


def previous_for(store: Store, model: Any, as_of: dt.date):
    """(previous snapshot's notes, the week-ago snapshot's contact counts) for A4.4/A4.5."""
    from tierctl.store import loop

    return loop.previous_frames(store, model, as_of)


def after_score(store: Store, result: ShortageResult, export: Any, crisis: Any, *, dry_run: bool = False,
                detail_limit: int | None = None, source_hash: Callable[[], str | None] | None = None
                ) -> dict[str, Any]:
    """Store the run (unless ``dry_run``) and return what the morning output shows:
    ``changes``, ``alerts_fired``, ``snapshot`` (into the JSON), ``crisis`` (re-computed
    when manual overrides changed tiers), and ``changes_text``/``alerts_text`` (printed
    under the table).  ``detail_limit``: see :func:`tierctl.store.loop.record_run` (the
    text needs a screenful, the JSON everyone).  ``source_hash``: the call that gives the
    export's SHA-256 when it was started earlier (:func:`loop.sha256_in_background`)."""
    from tierctl.store import loop

    source = {"path": str(export.path), "sheet": export.sheet, "encoding": export.encoding,
              "headers": dict(export.headers)}
    try:
        rec = loop.record_run(store, result, crisis, source_name=Path(export.path).name,
                              source_hash=source_hash() if source_hash else loop.sha256_file(export.path),
                              dry_run=dry_run,
                              extra_meta={"source": source}, detail_limit=detail_limit)
        rec["snapshot"]["path"] = getattr(store, "display_path", store.path)
        if not dry_run:
            rec["snapshot"]["alerts_open"] = store.count_alerts(loop.KIND)
    finally:
        store.close(background=True)  # the checkpoint runs while the morning output is printed
    return {"changes": rec["changes"], "alerts_fired": rec["alerts_fired"], "snapshot": rec["snapshot"],
            "crisis": rec["crisis"], "changes_text": changes_text(rec["changes"], rec["snapshot"]),
            "alerts_text": alerts_text(rec["alerts_fired"], rec["snapshot"])}


def changes_text(ch: dict[str, Any], snap: dict[str, Any]) -> str:
    """The changes since the previous run as rich markup."""
    lines = []
    c = ch.get("counts", {})
    if ch.get("previous_as_of"):
        lines.append(f"[bold]与上次（{ch['previous_as_of']}）相比[/bold]：新增 {c.get('new', 0)} 位 · "
                     f"升级 {c.get('upgraded', 0)} 位 · 降级 {c.get('downgraded', 0)} 位 · "
                     f"离开名单 {c.get('resolved', 0)} 位")
    else:
        lines.append(f"[bold]历史中没有更早的评分[/bold]：{c.get('new', 0)} 位客户都记为新增")

    def total(key: str) -> int:  # the lists may hold only the first few (see record_run)
        return max(int(c.get(key, 0)), len(ch.get(key, [])))

    def block(key: str, mark: str, style: str) -> None:
        items = ch.get(key, [])
        for it in items[:LIST_LIMIT]:
            why = "；".join(it.get("why", []))
            lines.append(f"  [{style}]{mark}[/{style}] {_e(_who(it))} {it['from']}→{it['to']}：{_e(why)}")
        shown = min(len(items), LIST_LIMIT)
        if total(key) > shown:
            lines.append(f"  [dim]… 另有 {total(key) - shown} 位（--format json 查看全部）[/dim]")

    block("upgraded", "↑", "red")
    block("downgraded", "↓", "green")
    if ch.get("previous_as_of"):
        for key, label in (("new", "新增"), ("resolved", "离开名单")):
            items = ch.get(key, [])
            if items:
                names = "、".join(f"{_e(_who(i))}({i['tier']})" for i in items[:LIST_LIMIT])
                more = f" … 等 {total(key)} 位" if total(key) > min(len(items), LIST_LIMIT) else ""
                lines.append(f"  [dim]{label}：[/dim]{names}{more}")
    if not snap.get("stored"):
        lines.append("[yellow]预览模式（--dry-run）：没有保存快照、没有触发或关闭预警[/yellow]")
    elif snap.get("replaced"):
        lines.append(f"[dim]已替换 {snap['as_of']} 之前保存的评分（同一天只保留最后一次）[/dim]")
    if snap.get("stored") and not snap.get("latest"):
        lines.append(f"[yellow]{snap['as_of']} 早于已保存的最新评分：只补存快照，不触发或关闭预警[/yellow]")
    if snap.get("overrides_applied"):
        lines.append(f"[magenta]{snap['overrides_applied']} 位客户按人工调整的分级处理（tierctl history 查看原因）[/magenta]")
    return "\n".join(lines)


def alerts_text(fired: list[dict[str, Any]], snap: dict[str, Any], lang: str = "zh",
                meta: dict[str, Any] | None = None) -> str:
    """Today's alerts as rich markup, one line per customer: each alert's recipient with
    its reason — a wait alert is the highest threshold reached (empty when none fired
    and none are open).  ``lang="en"`` takes the English texts of the rules in ``meta``
    (:func:`tierctl.daily.model_meta`)."""
    from tierctl.daily import alert_in_english

    en = lang == "en"
    if not fired:
        n = snap.get("alerts_open")
        if not n:
            return ""
        return f"[dim]No new alerts today; {n} open (tierctl alerts lists them)[/dim]" if en else \
            f"[dim]今天没有新触发的预警；未处理预警 {n} 条（tierctl alerts 查看）[/dim]"
    n_fired = max(int(snap.get("alerts_fired") or 0), len(fired))
    if en:
        lines = [f"[bold red]Alerts fired today: {n_fired}[/bold red]"
                 + (f" ({snap['alerts_open']} open: tierctl alerts lists them, tierctl alerts ack ID acknowledges)"
                    if snap.get("alerts_open") is not None else "")]
    else:
        lines = [f"[bold red]今天触发的预警 {n_fired} 条[/bold red]"
                 + (f"（未处理共 {snap['alerts_open']} 条：tierctl alerts 查看，tierctl alerts ack 编号 确认）"
                    if snap.get("alerts_open") is not None else "")]
    per: dict[str, list[dict[str, Any]]] = {}
    for a in fired:  # most severe first (see loop.alert_severity)
        per.setdefault(a["customer_key"], []).append(a)
    n_customers = max(int(snap.get("alerts_fired_customers") or 0), len(per))
    shown = 0
    for _, items in per.items():
        if shown >= LIST_LIMIT * 2:
            break
        shown += 1
        ids = " ".join(f"#{a['id']}" for a in items if a.get("id"))
        texts = [alert_in_english(a, meta or {}) if en else (a["recipient"], a["reason"]) for a in items]
        first, rest = texts[0], texts[1:]
        more = "".join(f"；[bold]{_e(to)}[/bold]：{_e(why)}" for to, why in rest)
        lines.append(f"  → [bold]{_e(first[0])}[/bold]：{_e(_who(items[0]))} {_e(first[1])}{more}"
                     + (f" [dim]{ids}[/dim]" if ids else ""))
    if n_customers > shown:
        lines.append(f"  [dim]… {n_customers - shown} more customers (tierctl alerts lists them all)[/dim]" if en
                     else f"  [dim]… 另有 {n_customers - shown} 位客户（tierctl alerts 查看全部）[/dim]")
    return "\n".join(lines)


def result_from_store(db: Path | None, as_of: dt.date | None) -> ShortageResult:
    """Today's (or the latest on or before ``as_of``) stored shortage result, so that
    ``render``/``allocate`` can run without an export file."""
    from tierctl.store import loop

    path = db_path(db)
    if not path.exists():
        raise NotFoundError(f"历史数据库 {path} 不存在：还没有保存过评分",
                            hint="先运行 tierctl score 导出文件.xlsx（不加 --dry-run），或在命令中直接给出导出文件")
    store = _open(db)
    try:
        return loop.load_result(store, as_of)
    finally:
        store.close()


# -- history / why -------------------------------------------------------------------------------
EVENT_LABEL = {"listed": "进入名单", "returned": "重新进入名单", "upgraded": "升级", "downgraded": "降级",
               "left": "离开名单", "override": "人工调整", "override_cleared": "取消人工调整",
               "override_ended": "人工调整结束", "override_replaced": "人工调整被替换"}


@app.command()
def history(
    customer: CustomerArg,
    db: DbOpt = None,
    fmt: JsonFormatOpt = "table",
    output: OutputOpt = None,
    force: ForceOpt = False,
    kind: Annotated[str, typer.Option("--kind", help="哪一类历史：shortage（配件短缺分级，默认）| grade（客户分级）")]
    = "shortage",
) -> None:
    """客户的分级轨迹：每次进入/离开名单、升级、降级和人工调整的日期、时间与原因（审计记录）。"""
    from tierctl.store import loop

    fmt = check_format(fmt, ("table", "json"))
    if kind not in ("shortage", "grade"):
        raise UsageError(f"--kind 不支持「{kind}」", hint="可选：shortage | grade")
    if kind == "grade":
        # the grading job keeps its own history (gradings, overrides); show it here too
        from tierctl.cli.grade import history as grade_history

        grade_history(customer, model=None, db=db, fmt=fmt)
        return
    store = _open(db)
    try:
        data = loop.history_report(store, customer, timezone())
    finally:
        store.close()
    if fmt == "json":
        emit(dump_json(data), output, force)
        return
    from rich import box
    from rich.table import Table

    con = out_console()
    cust = data["customer"]
    head = f"[bold]{_e(_who(cust))}[/bold] {mask_phone(cust.get('phone'))}  当前分级 "
    con.print(head, _tier(data["tier"]) if data["listed"] else "（已不在最新名单中）")
    if data["active_override"]:
        o = data["active_override"]
        con.print(f"[magenta]人工调整生效中：{o['to']}（{_e(o['reason'])}；{_e(o['by'] or '未署名')}，{o['since'][:16]}）[/magenta]")
    t = Table(box=box.SIMPLE_HEAD, header_style="bold", title="分级变化记录")
    t.add_column("日期", no_wrap=True)
    t.add_column("时间", no_wrap=True)
    t.add_column("事件", no_wrap=True)
    t.add_column("分级", no_wrap=True)
    t.add_column("原因")
    for e in data["events"]:
        tiers = f"{e['from'] or '—'} → {e['to'] or '—'}" if e["from"] or e["to"] else ""
        t.add_row(e["date"], (e["at"] or "")[11:16], EVENT_LABEL.get(e["type"], e["type"]), tiers,
                  _e("；".join(e["cause"])))
    con.print(t)
    if data["trajectory"]:
        con.print("[dim]轨迹：[/dim]" + " → ".join(f"{x['date'][5:]} {x['tier']}" for x in data["trajectory"]))
    if data["contacts"]:
        last = data["contacts"][-1]
        con.print(f"[dim]联系记录 {len(data['contacts'])} 次，最近一次 {last['at'][:16]}：{_e(last['result'])}[/dim]")


@app.command()
def why(
    customer: CustomerArg,
    date: DateOpt = None,
    db: DbOpt = None,
    fmt: JsonFormatOpt = "table",
    output: OutputOpt = None,
    force: ForceOpt = False,
) -> None:
    """逐条解释保存的评分：各维度分值与原因、权重×分值=总分、分级阈值、触发的升级规则和最终分级。"""
    from tierctl.store import loop

    fmt = check_format(fmt, ("table", "json"))
    day = parse_date(date, "--date")
    store = _open(db)
    try:
        data = loop.why_report(store, customer, day, timezone())
    finally:
        store.close()
    if fmt == "json":
        emit(dump_json(data), output, force)
        return
    from rich import box
    from rich.table import Table

    con = out_console()
    con.print(f"[bold]{_e(_who(data['customer']))}[/bold]  {data['as_of']} 的评分（模型 {_e(data['model'])}）")
    facts = data.get("facts") or {}
    if facts:
        con.print("[dim]" + _e(" · ".join(f"{k}={v}" for k, v in facts.items())) + "[/dim]")
    t = Table(box=box.SIMPLE_HEAD, header_style="bold")
    t.add_column("维度", no_wrap=True)
    t.add_column("分值", justify="right")
    t.add_column("权重", justify="right")
    t.add_column("贡献", justify="right")
    t.add_column("依据")
    for d in data["dimensions"]:
        t.add_row(f"{d['key']} {d['label']}", str(d["value"]), d["weight"], d["contribution"], _e(d["reason"]))
    con.print(t)
    con.print(f"总分 = {data['formula']} = {_e(data['sum'])}")
    th = " · ".join(f"{x['tier']} ≥ {x['min']}" + (" ✓" if x["reached"] else "") for x in data["thresholds"])
    con.print(f"分级阈值：{th}  → 模型分级 [bold]{data['model_tier']}[/bold]")
    for e in data["escalations"]:
        con.print(f"  [red]↑ {_e(e)}[/red]")
    for h in data.get("holds") or []:  # issue 14: since when and why a raise holds
        ident = data["customer"].get("customer_id") or data["customer"]["customer_key"]
        con.print(f"  [dim]保持 {_e(h['rule'])}：自 {h['since']} 起（{_e(h['reason'])}），直到客户离开名单，"
                  f"或用 tierctl override {_e(ident)} 分级 --reason 原因 调低（调低即解除保持）[/dim]")
    if data["override"]:
        con.print(f"  [magenta]{_e(data['override'])}[/magenta]")
    con.print("最终分级 ", _tier(data["tier"]), f"  负责人：{_e(data['policy']['owner'])}"
              + (f" · 响应时限 {data['policy']['respond_by'][:16]}" if data["policy"]["respond_by"] else ""))
    pc = data["policy"].get("contact")
    if pc and (pc["tightened"] or pc["owner_changed"]):
        con.print(f"联系要求：{_e(pc['note'])}；由{_e(pc['owner'])}负责")
    for a in data["alerts"]:
        con.print(f"  [yellow]预警 {_e(a)}[/yellow]")
    if data["active_override"] and not data["override"]:
        o = data["active_override"]
        con.print(f"[magenta]之后设置的人工调整：{o['to']}（{_e(o['reason'])}），下一次评分起生效[/magenta]")


# -- overrides -------------------------------------------------------------------------------------
@app.command()
def override(
    customer: CustomerArg,
    tier: Annotated[str | None, typer.Argument(help="人工指定的分级，如 P0", show_default=False)] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="调整原因（必填，会显示在名单和历史中）")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="取消该客户生效中的人工调整")] = False,
    by: ByOpt = None,
    db: DbOpt = None,
    fmt: JsonFormatOpt = "table",
    now: NowOpt = None,
) -> None:
    """人工调整客户分级（必须写原因）：一直有效，直到 --clear 取消或客户离开名单；名单中标注为「人工调整」。"""
    from tierctl.store import loop

    fmt = check_format(fmt, ("table", "json"))
    _, now_dt = clock(None, now)
    if clear:
        if tier:
            raise UsageError("--clear 时不要再给出分级", hint="tierctl override 客户编号 --clear --reason 原因")
        store = _open(db)
        try:
            data = loop.clear_override(store, customer, reason=reason, by=by, now=now_dt)
        finally:
            store.close()
        msg = f"已取消 {_who(data)} 的人工调整；{data['note']}"
    else:
        if not tier:
            raise UsageError("缺少分级", hint='tierctl override 客户编号 P0 --reason "原因"')
        if not reason or not reason.strip():
            raise UsageError("人工调整必须写明原因（--reason）", hint='例如 --reason "客户已上门投诉，按 P0 处理"')
        store = _open(db)
        try:
            data = loop.set_override(store, customer, tier, reason=reason, by=by, now=now_dt)
        finally:
            store.close()
        msg = (f"已记录人工调整：{_who(data)} {data['from']} → {data['to']}（{data['reason']}）；"
               f"{data['holds']}。tasks 立即按新分级安排，下一次 tierctl score 起名单中标注为人工调整")
        if data.get("releases"):
            msg += "；调低同时解除保持中的升级：" + "、".join(f"{h['rule']}（自 {h['since']} 起）"
                                                           for h in data["releases"])
    if fmt == "json":
        emit(dump_json(data), None, False)
    else:
        err_console().print(_e(msg))


# -- tasks -------------------------------------------------------------------------------------------
VIEWS = {"due": "今日待办（首次联系到期 / 联系周期已到）", "calls": "16:00–18:00 电话回访名单（全部 P0、P1）",
         "evening": "晚间书面进展更新名单"}


@app.command()
def tasks(
    date: DateOpt = None,
    view: Annotated[str, typer.Option("--view", help="due：今日待办（默认）；calls：16:00 电话名单（全部 P0、P1）；evening：晚间书面更新名单（等待 ≥15 天）")] = "due",
    db: DbOpt = None,
    fmt: TableFormatOpt = "table",
    output: OutputOpt = None,
    force: ForceOpt = False,
    headers: HeadersOpt = None,
    lang: LangOpt = None,
    limit: LimitOpt = 100,
    now: NowOpt = None,
    owner: Annotated[str | None, typer.Option("--owner", help="只列出这位负责人的客户：姓名（服务顾问列或 tierctl assign），或角色如「服务经理」「SA」")] = None,
    holidays: HolidaysOpt = None,
) -> None:
    """今天该联系谁：从未联系的客户按分级的首次联系时限，已联系的按联系周期；按负责人分组，逾期在前，注明渠道。"""
    from tierctl.store import loop

    fmt = check_format(fmt, ("table", "json", "csv", "xlsx"))
    if view not in VIEWS:
        raise UsageError(f"--view 不支持「{view}」", hint="可选：due | calls | evening")
    asked = parse_date(date, "--date")
    day, now_dt = clock(asked.isoformat() if asked else None, now)
    store = _open(db)
    try:
        data = _with_churn_followups(store, day, view,
                                     lambda: loop.tasks_report(store, day, now_dt, work_calendar(holidays), view,
                                                               limit=limit if fmt == "table" else None,
                                                               owner=owner))
    finally:
        store.close()
    if fmt == "json":
        emit(dump_json(data), output, force)
        _show_warnings(data)
        return
    if fmt in ("csv", "xlsx"):
        emit_table(tasks_frame(data, lang_of(headers if headers in ("zh", "en") else lang)), "tasks", fmt, output, force, headers=headers, lang=lang, unit="项任务")
        _show_warnings(data)
        return
    from rich import box
    from rich.table import Table

    con = out_console()
    wide = con.width >= 130
    title = f"{data['date']} {VIEWS[view]}：{data['count']} 位"
    if view == "due":
        title += f"，其中逾期 {data['overdue']} 位"
    note = crisis_text(data.get("crisis"))
    if note:
        con.print(note)
    t = Table(title=title, box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, collapse_padding=True)
    t.add_column("负责人", no_wrap=True, min_width=6)
    t.add_column("级别", no_wrap=True, min_width=4)
    t.add_column("客户", no_wrap=True, min_width=6, max_width=16)
    people = any(x.get("owner_person") for g in data["groups"] for x in g["tasks"])
    if people:
        t.add_column("顾问", no_wrap=True, min_width=4, max_width=8)
    if wide:
        t.add_column("电话", no_wrap=True)
    t.add_column("等待", justify="right", no_wrap=True, min_width=4)
    t.add_column("任务" if view == "due" else "上次联系", ratio=1, min_width=8)
    if wide:
        t.add_column("渠道")
    t.add_column("期限", no_wrap=True, min_width=11)
    t.add_column("状态", no_wrap=True, min_width=8)
    shown = 0
    for g in data["groups"]:
        first = True
        for x in g["tasks"]:
            if limit and shown >= limit:
                break
            due = _due_text(x["due"]) if "T" in x["due"] else x["due"][5:]
            state = f"[bold red]{_e(x['status'])}[/bold red]" if x["overdue"] else _e(x["status"])
            cells = [_e(g["owner"]) if first else "", _tier(x["tier"]), _e(_who(x))]
            if people:
                cells.append(_e(x.get("owner_person") or ""))
            if wide:
                cells.append(mask_phone(x["phone"]))
            what = x["task"] if view == "due" else (x["last_contact"][5:16].replace("T", " ")
                                                    + (f" {x['last_result']}" if x["retry"] else "")
                                                    if x["last_contact"] else "从未联系")
            cells += [f"{x['wait_days']}天", _e(what if wide else f"{what} · {_short(x['channel'])}")]
            if wide:
                cells.append(_e(x["channel"]))
            cells += [due, state]
            t.add_row(*cells)
            first = False
            shown += 1
        if first is False:
            t.add_section()
    con.print(t)
    if limit and data["count"] > limit:
        con.print(f"[dim]… 另有 {data['count'] - limit} 位未显示（--limit 0 显示全部）[/dim]")
    if not data["count"]:
        con.print("[green]没有到期的联系任务[/green]")
    _show_churn_followups(con, data)
    _show_warnings(data)


def crisis_text(c: dict[str, Any] | None) -> str:
    """What the crisis level changes in the task list, as one line of markup (empty when
    it changes nothing)."""
    if not c or not (c.get("tightened") or c.get("owners")):
        return ""
    parts = []
    if c.get("tightened"):
        parts.append(f"{'、'.join(c['tightened'])} {c.get('contact_note') or ''}".strip())
    parts += [f"{tier} 由{who}负责" for tier, who in (c.get("owners") or {}).items()]
    return f"[bold]危机 {c['level']} 级（{_e(c.get('label') or '')}）[/bold]：{_e('；'.join(parts))}"


def tasks_frame(data: dict[str, Any], lang: str = "zh") -> Any:
    """The task list flat, as CSV/xlsx: one row per task in the list's order (owner
    groups, overdue first), then the churn follow-ups due."""
    import pandas as pd

    shortage, churn = ("parts shortage", "churn follow-up") if lang == "en" else ("配件短缺", "流失回访")
    rows: list[dict[str, Any]] = []
    for g in data["groups"]:
        for x in g["tasks"]:
            rows.append({"owner": g["owner"], "kind": shortage, "tier": x["tier"], "customer_id": x["customer_id"],
                         "name": x["name"], "phone": x["phone"], "score": x["score"], "wait_days": x["wait_days"],
                         "task": x["task"], "channel": x["channel"], "due": x["due"], "status": x["status"],
                         "overdue": bool(x["overdue"]), "last_contact": x["last_contact"]})
    for x in data.get("churn_followups") or []:
        rows.append({"owner": x.get("owner"), "kind": churn, "customer_id": x.get("customer_id"),
                     "name": x.get("name"), "task": x.get("detail"), "channel": x.get("channel"), "due": x.get("due"),
                     "overdue": bool(x.get("overdue_days"))})
    cols = ["owner", "kind", "tier", "customer_id", "name", "phone", "score", "wait_days", "task", "channel", "due",
            "status", "overdue", "last_contact"]
    return pd.DataFrame(rows, columns=cols)


# -- churn follow-ups (job B) in the task list: from tierctl.churn_loop, kept apart from the
# -- shortage tasks above; JSON key "churn_followups" ------------------------------------------
def _with_churn_followups(store: Store, day: dt.date, view: str, shortage: Any) -> dict[str, Any]:
    """The shortage tasks plus the churn follow-ups due (``due`` view only).  A store
    holding churn history but no shortage run lists the churn follow-ups alone."""
    # follow-ups are scheduled by `churn log` against a stored churn run: without one there
    # are none to list, and job B's modules need not load (a few hundredths of a second)
    churn_run = store.latest_snapshot(CHURN_KIND) is not None
    follow: list[dict[str, Any]] = []
    if churn_run and view == "due":
        from tierctl import churn_loop

        follow = churn_loop.followup_records(churn_loop.followups_due(store, day), day)
    try:
        data = shortage()
    except NotFoundError:
        if not follow and not churn_run:
            raise
        data = {"date": day.isoformat(), "view": view, "count": 0, "overdue": 0, "groups": [],
                "warnings": ["还没有保存过配件短缺评分：只列出流失回访"]}
    data["churn_followups"] = follow
    return data


def _show_churn_followups(con: Any, data: dict[str, Any]) -> None:
    from rich import box
    from rich.table import Table

    items = data.get("churn_followups") or []
    if not items:
        return
    late = sum(1 for x in items if x["overdue_days"])
    t = Table(title=f"流失回访：{len(items)} 位" + (f"，其中逾期 {late} 位" if late else ""), box=box.SIMPLE_HEAD,
              header_style="bold", pad_edge=False, collapse_padding=True)
    t.add_column("负责人", no_wrap=True, min_width=6)
    t.add_column("客户", no_wrap=True, min_width=6, max_width=16)
    t.add_column("回访", ratio=1, min_width=8, overflow="fold")
    t.add_column("渠道", no_wrap=True)
    t.add_column("日期", no_wrap=True)
    for x in items:
        when = x["due"][5:] + (f" [bold red]逾期{x['overdue_days']}天[/bold red]" if x["overdue_days"] else "")
        t.add_row(_e(x["owner"]), _e(_who(x)), _e(x["detail"]), _e(x["channel"]), when)
    con.print(t)


# -- contacts ------------------------------------------------------------------------------------------
@app.command()
def contact(
    customer: Annotated[str | None, typer.Argument(
        help="客户编号（也可用姓名或手机号）；批量记录时省略，用 --tier / --owner 指定范围", show_default=False)] = None,
    result: Annotated[str, typer.Option("--result", help="联系结果，如「已接通」「未接通」「已发送」（必填）",
                                        show_default=False)] = "",
    tier: Annotated[list[str] | None, typer.Option("--tier", help="批量：今天名单中这一分级的全部客户（可多次，如 --tier P2 --tier P3）")] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="批量：这位负责人（姓名，或角色如「服务经理」「SA」）的全部客户")] = None,
    channel: Annotated[str | None, typer.Option("--channel", help="联系渠道：电话/phone、短信/sms、微信/wechat、邮件/email、面谈/visit")] = None,
    note: Annotated[str | None, typer.Option("--note", help="客户反馈 / 备注")] = None,
    at: Annotated[str | None, typer.Option("--at", help="联系时间，如 2026-11-24 10:30（默认现在）")] = None,
    by: ByOpt = None,
    plan: Annotated[str | None, typer.Option("--plan", help="后续方案")] = None,
    done_at: Annotated[str | None, typer.Option("--done-at", help="完成时间（后续方案落实的时间）")] = None,
    db: DbOpt = None,
    fmt: JsonFormatOpt = "table",
    now: NowOpt = None,
    holidays: HolidaysOpt = None,
) -> None:
    """记录一次客户联系：联系上了就重置该客户的联系周期（下次联系日从此刻起算）；未接通、关机等没联系上的结果不重置，下一个工作日重拨。批量：tierctl contact --tier P3 --channel sms --result 已发送（今天名单中整个分级，或 --owner 某人的全部客户，一次记录）。"""
    from tierctl.store import loop

    fmt = check_format(fmt, ("table", "json"))
    if not result.strip():
        raise UsageError("缺少联系结果（--result）", hint="例如 --result 已接通；批量短信 --result 已发送")
    _, now_dt = clock(None, now)
    at_dt = _parse_at(at, now_dt, "--at") or now_dt
    if at_dt > now_dt + dt.timedelta(minutes=5):
        raise UsageError(f"联系时间 {at_dt:%Y-%m-%d %H:%M} 晚于现在", hint="--at 写实际联系的时间")
    done = _parse_at(done_at, now_dt, "--done-at")
    if customer is None:
        if not tier and not owner:
            raise UsageError("缺少客户编号", hint="tierctl contact 客户编号 --result 已接通；批量：--tier P3 或 --owner 张三")
        _contact_segment(db, fmt, now_dt, at_dt, result=result, tiers=tier or [], owner=owner, channel=channel,
                         note=note, by=by)
        return
    if tier or owner:
        raise UsageError("给了客户编号时不要再用 --tier / --owner", hint="批量记录时省略客户编号")
    if channel is not None:
        from tierctl.contacts_import import load_contacts_model

        ch = load_contacts_model().channel(channel)
        if ch is None:
            raise UsageError(f"不认识的联系渠道「{channel}」", hint=f"可选：{load_contacts_model().channel_hint()}")
        channel = ch.key
    store = _open(db)
    try:
        data = loop.log_contact(store, customer, result=result, at=at_dt, now=now_dt, cal=work_calendar(holidays),
                                note=note, by=by, plan=plan, done_at=done, channel=channel)
    finally:
        store.close()
    if fmt == "json":
        emit(dump_json(data), None, False)
    else:
        nxt = ""
        if data["next_due"]:
            when = _due_text(data["next_due"])
            nxt = f"；下次联系 {when} 前" if data["reached"] else f"；没联系上，不重置联系周期：{when} 前重拨"
        err_console().print(f"已记录：{_e(_who(data))} {at_dt:%m-%d %H:%M} {_e(data['result'])}{nxt}")
        if not data["listed"]:
            err_console().print("[yellow]注意：该客户不在最新名单中[/yellow]")
    _show_warnings(data)


def _contact_segment(db: Path | None, fmt: str, now_dt: dt.datetime, at_dt: dt.datetime, **kw: Any) -> None:
    from tierctl.contacts_import import mark_segment

    store = _open(db)
    try:
        data = mark_segment(store, now_dt.date(), now=now_dt, at=at_dt, **kw)
    finally:
        store.close()
    if fmt == "json":
        emit(dump_json(data), None, False)
    else:
        what = "、".join(data["tiers"]) + ("" if not data["owner"] else ("·" if data["tiers"] else "") + data["owner"])
        per = " · ".join(f"{k} {v}" for k, v in data["by_tier"].items())
        err_console().print(f"已记录 {data['marked']} 位客户：{_e(what)} {at_dt:%m-%d %H:%M} {_e(data['result'])}"
                            + (f"（{per}）" if per else ""))
        if data["already"]:
            err_console().print(f"[dim]{data['already']} 位在这一分钟已有同一渠道的记录，未重复记录[/dim]")
        if not data["segment"]:
            err_console().print("[yellow]范围内没有客户：检查 --tier / --owner[/yellow]")
    _show_warnings(data)


contacts_app = typer.Typer(help="联系记录（执行记录）", no_args_is_help=True, rich_markup_mode="rich")
app.add_typer(contacts_app, name="contacts", help="联系记录（执行记录）：导出为 Excel；导入服务顾问填好的表")


@contacts_app.command("export")
def contacts_export(
    out: Annotated[Path, typer.Option("--out", help="输出的 .xlsx 文件", show_default=False)],
    since: Annotated[str | None, typer.Option("--since", help="只导出这一天及之后的联系")] = None,
    until: Annotated[str | None, typer.Option("--until", help="只导出这一天及之前的联系")] = None,
    db: DbOpt = None,
    force: ForceOpt = False,
) -> None:
    """导出执行记录 .xlsx：客户 风险分 等级 负责人 联系时间 联系结果 客户反馈 后续方案 完成时间。"""
    from tierctl.store import loop

    if out.suffix.lower() != ".xlsx":
        raise UsageError(f"--out 应为 .xlsx 文件，而不是「{out.name}」")
    store = _open(db)
    try:
        frame = loop.contacts_record(store, timezone(), parse_date(since, "--since"), parse_date(until, "--until"))
    finally:
        store.close()
    write_record_xlsx(frame, out, force=force)
    err_console().print(f"已写入 {out}（{len(frame)} 条联系记录）")


def write_record_xlsx(frame: Any, path: Path, *, force: bool = False) -> None:
    """The execution record as a print-ready sheet.  Text is written as text: a cell
    starting with = + - @ never becomes a formula (strings_to_formulas off)."""
    import math

    import xlsxwriter

    from tierctl.io.writers import atomic_path

    with atomic_path(path, force=force) as tmp:
        wb = xlsxwriter.Workbook(str(tmp), {"strings_to_formulas": False, "strings_to_urls": False,
                                            "strings_to_numbers": False})
        ws = wb.add_worksheet("执行记录")
        head = wb.add_format({"bold": True, "bg_color": "#D9E1F2", "border": 1, "text_wrap": True})
        cell = wb.add_format({"text_wrap": True, "valign": "top", "border": 1})
        num = wb.add_format({"num_format": "0.00", "valign": "top", "border": 1})
        widths = [18, 8, 6, 12, 17, 12, 30, 30, 17, 8]
        for j, (name, w) in enumerate(zip(frame.columns, widths, strict=False)):
            ws.write_string(0, j, str(name), head)
            ws.set_column(j, j, w)
        for i, row in enumerate(frame.itertuples(index=False), start=1):
            for j, v in enumerate(row):
                if isinstance(v, float):
                    if math.isnan(v):
                        ws.write_blank(i, j, None, cell)
                    else:
                        ws.write_number(i, j, v, num)
                else:
                    ws.write_string(i, j, "" if v is None else str(v), cell)
        ws.freeze_panes(1, 0)
        ws.autofilter(0, 0, max(len(frame), 1), len(frame.columns) - 1)
        ws.set_landscape()
        ws.fit_to_pages(1, 0)
        ws.repeat_rows(0)
        wb.close()


# -- alerts -------------------------------------------------------------------------------------------
ALERT_STATUS = {"open": "未处理", "acked": "已确认", "resolved": "已解除"}
alerts_app = typer.Typer(help="预警：列出未处理的预警；ack 确认", rich_markup_mode="rich")
app.add_typer(alerts_app, name="alerts", help="等待时长与红名单预警：列出未处理的预警（接收人、客户、原因、起始时间）；alerts ack 编号 确认")


# the CSV of ``tierctl alerts -f csv``: the JSON fields, the ones a recipient reads first
ALERT_CSV_COLUMNS = ("id", "recipient", "customer_id", "name", "reason", "since", "status", "rule_id", "fired_on",
                     "closed_at", "closed_by", "note", "customer_key")


@alerts_app.callback(invoke_without_command=True)
def alerts_main(
    ctx: typer.Context,
    db: DbOpt = None,
    fmt: TableFormatOpt = "table",
    include_closed: Annotated[bool, typer.Option("--all", help="也列出已确认和已解除的预警")] = False,
    output: OutputOpt = None,
    force: ForceOpt = False,
    headers: HeadersOpt = None,
    lang: LangOpt = None,
) -> None:
    """列出未处理的预警：接收人、客户、原因、起始时间。预警只在首次越过阈值时触发一次，直到确认或客户离开名单。"""
    if ctx.invoked_subcommand:
        return
    from tierctl.store import loop

    fmt = check_format(fmt, ("table", "json", "csv", "xlsx"))
    store = _open(db)
    try:
        data = loop.alerts_report(store, timezone(), include_closed=include_closed)
    finally:
        store.close()
    if fmt == "json":
        emit(dump_json(data), output, force)
        return
    if fmt in ("csv", "xlsx"):
        import pandas as pd

        frame = pd.DataFrame(data["alerts"], columns=list(ALERT_CSV_COLUMNS))
        for_people = (headers or ("keys" if fmt == "csv" else lang_of(lang))) == "zh"
        if for_people:  # scripts keep open/acked/resolved
            frame["status"] = frame["status"].map(lambda v: ALERT_STATUS.get(v, v))
        emit_table(frame, "alerts", fmt, output, force, headers=headers, lang=lang, unit="条预警")
        return
    from rich import box
    from rich.table import Table

    con = out_console()
    if not data["alerts"]:
        con.print("[green]没有未处理的预警[/green]")
        return
    status = ALERT_STATUS
    t = Table(title=f"预警 {data['count']} 条", box=box.SIMPLE_HEAD, header_style="bold")
    t.add_column("编号", justify="right", no_wrap=True)
    t.add_column("接收人", no_wrap=True)
    t.add_column("客户", no_wrap=True)
    t.add_column("原因")
    t.add_column("起始", no_wrap=True)
    escalated = any(a.get("escalated_to") for a in data["alerts"])
    if escalated:
        t.add_column("超时升级", no_wrap=True)
    if include_closed:
        t.add_column("状态", no_wrap=True)
    for a in data["alerts"]:
        cells = [str(a["id"]), _e(a["recipient"]), _e(_who(a)), _e(a["reason"]), (a["since"] or "")[:16].replace("T", " ")]
        if escalated:
            cells.append(f"→ {_e(a['escalated_to'])}（{(a['escalated_at'] or '')[5:16].replace('T', ' ')}）"
                         if a.get("escalated_to") else "")
        if include_closed:
            cells.append(status.get(a["status"], a["status"]))
        t.add_row(*cells)
    con.print(t)
    con.print("[dim]确认：tierctl alerts ack 编号 [编号…] [--by 姓名 --note 说明][/dim]")


@alerts_app.command("ack")
def alerts_ack(
    ids: Annotated[list[int], typer.Argument(help="要确认的预警编号（可多个）", show_default=False)],
    by: ByOpt = None,
    note: Annotated[str | None, typer.Option("--note", help="处理说明")] = None,
    db: DbOpt = None,
    fmt: JsonFormatOpt = "table",
    now: NowOpt = None,
) -> None:
    """确认预警（关闭）：tierctl alerts ack 12 13 --by 王经理 --note 已致电客户。"""
    from tierctl.store import loop

    fmt = check_format(fmt, ("table", "json"))
    _, now_dt = clock(None, now)
    store = _open(db)
    try:
        data = loop.ack_alerts(store, list(dict.fromkeys(ids)), now_dt, by, note)
    finally:
        store.close()
    if fmt == "json":
        emit(dump_json(data), None, False)
        return
    con = err_console()
    if data["acked"]:
        con.print(f"已确认预警：{'、'.join('#' + str(i) for i in data['acked'])}")
    for x in data["already_closed"]:
        con.print(f"[yellow]预警 #{x['id']} 早已{'确认' if x['status'] == 'acked' else '解除'}[/yellow]")
