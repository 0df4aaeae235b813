"""``tierctl tasks``: who to contact today (shortage tasks, then the churn follow-ups due)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tierctl.cli import app
from tierctl.cli.common import (
    DbOpt,
    ForceOpt,
    HeadersOpt,
    LangOpt,
    LimitOpt,
    NowOpt,
    OutputOpt,
    TableFormatOpt,
    check_format,
    clock,
    dump_json,
    emit,
    emit_table,
    lang_of,
    mask_phone,
    out_console,
    parse_date,
)
from tierctl.cli.loop_common import (
    _due_text,
    _e,
    _open,
    _short,
    _show_warnings,
    _tier,
    _who,
    work_calendar,
)
from tierctl.cli.options import DateOpt, HolidaysOpt
from tierctl.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    from tierctl.store import Store


CHURN_KIND = "churn"  # tierctl.churn_loop.KIND, named here so that `tasks` need not import job B


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
    from tierctl.daily import reports

    fmt = check_format(fmt, ("table", "json", "csv", "xlsx"))
    if view not in VIEWS:
        raise UsageError(f"--view 不支持「{view}」", hint="可选：due | calls | evening")
    asked = parse_date(date, "--date")
    day, now_dt = clock(asked.isoformat() if asked else None, now)
    store = _open(db)
    try:
        data = _with_churn_followups(store, day, view,
                                     lambda: reports.tasks_report(store, day, now_dt, work_calendar(holidays), view,
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
    con = out_console()
    _tasks_table(con, data, view, limit)
    _show_churn_followups(con, data)
    _show_warnings(data)


def _tasks_table(con: Any, data: dict[str, Any], view: str, limit: int) -> None:
    """The task list as a table grouped by owner (the first ``limit`` rows; 0: all)."""
    from rich import box
    from rich.table import Table

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
        from tierctl.churn import history as churn_loop

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
