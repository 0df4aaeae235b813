"""``tierctl contact`` (one customer, or a whole segment) and ``tierctl contacts export``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tierctl.cli import app
from tierctl.cli.common import (
    DbOpt,
    ForceOpt,
    JsonFormatOpt,
    NowOpt,
    check_format,
    clock,
    dump_json,
    emit,
    err_console,
    parse_date,
    timezone,
)
from tierctl.cli.loop_common import (
    _due_text,
    _e,
    _open,
    _parse_at,
    _show_warnings,
    _who,
    work_calendar,
)
from tierctl.cli.options import ByOpt, HolidaysOpt
from tierctl.errors import UsageError

if TYPE_CHECKING:
    pass


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
    from tierctl.daily import actions

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
        from tierctl.daily.contacts_model import load_contacts_model

        ch = load_contacts_model().channel(channel)
        if ch is None:
            raise UsageError(f"不认识的联系渠道「{channel}」", hint=f"可选：{load_contacts_model().channel_hint()}")
        channel = ch.key
    store = _open(db)
    try:
        data = actions.log_contact(store, customer, result=result, at=at_dt, now=now_dt, cal=work_calendar(holidays),
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
    from tierctl.daily.contacts import mark_segment

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
    from tierctl.daily import actions

    if out.suffix.lower() != ".xlsx":
        raise UsageError(f"--out 应为 .xlsx 文件，而不是「{out.name}」")
    store = _open(db)
    try:
        frame = actions.contacts_record(store, timezone(), parse_date(since, "--since"), parse_date(until, "--until"))
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
