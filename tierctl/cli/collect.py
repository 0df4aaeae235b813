"""Contacts back in bulk and named owners on the command line (issue 16):

    tierctl contacts import 执行记录.xlsx     the sheet advisors filled, one transaction
    tierctl assign C0001 张三                  the person who owns a customer (--clear: the export's advisor)

The bulk marks (``tierctl contact --tier P3 --channel sms --result 已发送``) are options of
``contact`` (:mod:`tierctl.cli.contact`); ``tierctl churn log --import`` is in
:mod:`tierctl.cli.churn`.  Thin: parse options, call :mod:`tierctl.daily.contacts` /
:func:`tierctl.daily.actions.assign_owner`, show the result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from tierctl.cli import app
from tierctl.cli.common import (
    DbOpt,
    DryRunOpt,
    EncodingOpt,
    JsonFormatOpt,
    MappingOpt,
    NowOpt,
    SheetOpt,
    check_format,
    clock,
    dump_json,
    emit,
    err_console,
    warn,
)
from tierctl.cli.contact import contacts_app
from tierctl.cli.loop_common import _e, _open, _who
from tierctl.cli.options import ByOpt, CustomerArg

ImportFileArg = Annotated[Path, typer.Argument(help="填好的执行记录（.xlsx 或 .csv），列同 tierctl contacts export",
                                               show_default=False)]


def show_import(data: dict[str, Any], what: str = "联系记录") -> None:
    """The one-line summary of an import (stderr), then its warnings."""
    con = err_console()
    if data["dry_run"]:
        con.print(f"[yellow]预览（--dry-run）：{data['rows']} 行中 {data['would_import']} 条会导入，"
                  f"{data['duplicates']} 条已有记录；没有写入[/yellow]")
    else:
        con.print(f"已导入 {data['imported']} 条{what}（共 {data['rows']} 行；{data['duplicates']} 条已有记录，未重复导入）")
    if data.get("followups_scheduled") or data.get("followups_closed"):
        con.print(f"[dim]安排回访 {data['followups_scheduled']} 次，完成回访 {data['followups_closed']} 次"
                  "（tierctl tasks 查看）[/dim]")
    if data.get("ignored_columns"):
        con.print(f"[dim]未使用的列：{_e('、'.join(data['ignored_columns']))}[/dim]")
    warn(data.get("warnings") or [])


@contacts_app.command("import")
def contacts_import(
    file: ImportFileArg,
    sheet: SheetOpt = None,
    encoding: EncodingOpt = None,
    mapping: MappingOpt = None,
    db: DbOpt = None,
    dry_run: DryRunOpt = False,
    fmt: JsonFormatOpt = "table",
    now: NowOpt = None,
) -> None:
    """导入服务顾问填好的执行记录（客户 风险分 等级 负责人 联系时间 联系结果 客户反馈 后续方案 完成时间 渠道）：逐行检查，有错则列出行号、列和值，一条也不导入；同一张表导入两次不会重复。"""
    from tierctl.daily.contacts import import_contacts

    fmt = check_format(fmt, ("table", "json"))
    _, now_dt = clock(None, now)
    store = _open(db)
    try:
        data = import_contacts(store, file, now=now_dt, sheet=sheet, encoding=encoding, mapping=mapping,
                               dry_run=dry_run)
    finally:
        store.close()
    if fmt == "json":
        emit(dump_json(data), None, False)
        warn(data.get("warnings") or [])
    else:
        show_import(data)


@app.command()
def assign(
    customer: CustomerArg,
    person: Annotated[str | None, typer.Argument(help="负责这位客户的人（姓名）", show_default=False)] = None,
    clear: Annotated[bool, typer.Option("--clear", help="取消指定，恢复按导出表的服务顾问列")] = False,
    by: ByOpt = None,
    db: DbOpt = None,
    fmt: JsonFormatOpt = "table",
    now: NowOpt = None,
) -> None:
    """指定客户的负责人（具体的人）：分级决定由哪个角色处理，导出表的「服务顾问」列或本命令决定是谁；指定一直有效，直到再次指定或 --clear。"""
    from tierctl.daily.actions import assign_owner

    fmt = check_format(fmt, ("table", "json"))
    if clear and person:
        from tierctl.errors import UsageError

        raise UsageError("--clear 时不要再给出姓名", hint="tierctl assign 客户编号 --clear")
    _, now_dt = clock(None, now)
    store = _open(db)
    try:
        data = assign_owner(store, customer, person, by=by, now=now_dt, clear_it=clear)
    finally:
        store.close()
    if fmt == "json":
        emit(dump_json(data), None, False)
        return
    if clear:
        back = f"恢复为导出表中的服务顾问 {data['owner_person']}" if data["owner_person"] else "导出表中没有服务顾问"
        err_console().print(f"已取消 {_e(_who(data))} 的指定负责人（原为 {_e(data['previous'] or '—')}）；{_e(back)}")
    else:
        was = f"（原为 {data['previous']}）" if data["previous"] and data["previous"] != data["owner_person"] else ""
        err_console().print(f"已指定 {_e(_who(data))} 的负责人：{_e(data['owner_person'])}{_e(was)}；"
                            "tasks 立即生效，下一次 tierctl score 起写入名单")
