"""``tierctl history``, ``why`` and ``override``: a customer's tier changes, a stored score
explained, a manual tier."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from tierctl.cli import app
from tierctl.cli.common import (
    STATE,
    DbOpt,
    ForceOpt,
    JsonFormatOpt,
    NowOpt,
    OutputOpt,
    check_format,
    clock,
    db_path,
    dump_json,
    emit,
    err_console,
    mask_phone,
    open_store,
    out_console,
    parse_date,
    timezone,
)
from tierctl.cli.loop_common import (
    _e,
    _open,
    _tier,
    _who,
)
from tierctl.cli.options import ByOpt, CustomerArg, DateOpt
from tierctl.errors import UsageError

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
    from tierctl.daily import reports

    fmt = check_format(fmt, ("table", "json"))
    if kind not in ("shortage", "grade"):
        raise UsageError(f"--kind 不支持「{kind}」", hint="可选：shortage | grade")
    if kind == "grade":  # the grading job keeps its own history (gradings, overrides); show it here too
        _grade_history(customer, db, fmt, output, force)
        return
    store = _open(db)
    try:
        data = reports.history_report(store, customer, timezone())
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


def _registered(group: str, name: str) -> Callable[..., Any]:
    """The function of the command ``tierctl GROUP NAME``, looked up among the registered
    commands (so that this module need not import the group's module)."""
    for g in app.registered_groups:
        if g.name == group and g.typer_instance is not None:
            for c in g.typer_instance.registered_commands:
                if c.name == name and c.callback is not None:
                    return c.callback
    raise LookupError(f"tierctl {group} {name}")


def _grade_history(customer: str, db: Path | None, fmt: str, output: Path | None, force: bool) -> None:
    """``history --kind grade``: the JSON from the library, written where ``--output``
    says (``--force`` to replace a file); the table, and the message when there is no
    database yet, as ``tierctl grade history`` gives them."""
    if fmt != "json" or not db_path(db).exists():
        _registered("grade", "history")(customer, model=None, db=db, fmt=fmt)
        return
    from tierctl.grade import history as grade_store
    from tierctl.grade import load_grade_model

    model = load_grade_model(STATE.config.get("grade.model") or "grade")
    with open_store(db, readonly=True) as store:
        doc = grade_store.grade_history(store, model, customer, timezone())
    emit(dump_json(doc), output, force)


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
    from tierctl.daily import reports

    fmt = check_format(fmt, ("table", "json"))
    day = parse_date(date, "--date")
    store = _open(db)
    try:
        data = reports.why_report(store, customer, day, timezone())
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
    from tierctl.daily import actions

    fmt = check_format(fmt, ("table", "json"))
    _, now_dt = clock(None, now)
    if clear:
        if tier:
            raise UsageError("--clear 时不要再给出分级", hint="tierctl override 客户编号 --clear --reason 原因")
        store = _open(db)
        try:
            data = actions.clear_override(store, customer, reason=reason, by=by, now=now_dt)
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
            data = actions.set_override(store, customer, tier, reason=reason, by=by, now=now_dt)
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
