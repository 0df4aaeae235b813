"""``tierctl alerts`` (list) and ``tierctl alerts ack``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from tierctl.cli import app
from tierctl.cli.common import (
    DbOpt,
    ForceOpt,
    HeadersOpt,
    JsonFormatOpt,
    LangOpt,
    NowOpt,
    OutputOpt,
    TableFormatOpt,
    check_format,
    clock,
    dump_json,
    emit,
    emit_table,
    err_console,
    lang_of,
    out_console,
    timezone,
)
from tierctl.cli.loop_common import (
    _e,
    _open,
    _who,
)
from tierctl.cli.options import ByOpt

if TYPE_CHECKING:
    pass


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
    from tierctl.daily import reports

    fmt = check_format(fmt, ("table", "json", "csv", "xlsx"))
    store = _open(db)
    try:
        data = reports.alerts_report(store, timezone(), include_closed=include_closed)
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
    from tierctl.daily import reports

    fmt = check_format(fmt, ("table", "json"))
    _, now_dt = clock(None, now)
    store = _open(db)
    try:
        data = reports.ack_alerts(store, list(dict.fromkeys(ids)), now_dt, by, note)
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
