"""``tierctl notify``: post the morning summary to the group robots of ``tierctl.toml``.

Thin: opens the store, calls :func:`tierctl.notify.core.deliver` and shows what came
back (``--dry-run``: every payload, addresses masked; ``--format json``: the report).
``tierctl score --notify`` calls :func:`run_notify` after storing the run.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer

from tierctl.cli import app
from tierctl.cli.common import (
    MISSING_DB,
    STATE,
    DbOpt,
    DryRunOpt,
    JsonFormatOpt,
    LangOpt,
    NowOpt,
    check_format,
    clock,
    dump_json,
    emit,
    err_console,
    open_store,
    parse_date,
    warn,
)
from tierctl.errors import NotifyError

RobotOpt = Annotated[list[str] | None, typer.Option("--robot", help="只发给这个机器人（按 name；可写多次）")]
ImageOpt = Annotated[Path | None, typer.Option("--image", help="企业微信机器人附发的图片（默认 <render.out>/<日期>/trend.png，由 tierctl report --png 生成）")]
ResendOpt = Annotated[bool, typer.Option("--resend-unconfirmed", help="重发上次运行中断时正在发送、不确定是否送达的消息")]
SHOW_ESCALATIONS = 10  # escalation lines printed; the JSON and tierctl alerts have all
DateOpt = Annotated[str | None, typer.Option("--date", help="日期 YYYY-MM-DD（默认今天）；使用该日或之前最近一次保存的评分")]


def run_notify(day: dt.date, now: dt.datetime, *, db: Path | None = None, dry_run: bool = False,
               robots: list[str] | None = None, image: Path | None = None, resend_unconfirmed: bool = False,
               lang: str = "zh") -> dict[str, Any]:
    """Open the store and :func:`~tierctl.notify.core.deliver` (a dry run reads the
    store read-only and writes nothing)."""
    from tierctl.notify import from_config
    from tierctl.notify.core import deliver
    cfg = STATE.config
    ncfg = from_config(cfg)
    with open_store(db, readonly=dry_run, must_exist=True,
                    missing=("历史数据库 {path} 不存在：还没有保存过评分，没有可以通知的内容", MISSING_DB[1])) as store:
        return deliver(store, ncfg, day, now, lang=lang, working_days=bool(cfg.get("calendar.working_days", False)),
                       centre=cfg.get("centre.name") or None, image_dir=Path(cfg.get("render.out") or "out"),
                       image=image, dry_run=dry_run, robots=robots, resend_unconfirmed=resend_unconfirmed)


def show(report: dict[str, Any], *, payloads: bool = True) -> None:
    """The report for a person: per robot what was sent (stderr); a dry run's payloads
    on stdout."""
    from rich.markup import escape

    con = err_console()
    escalated = report.get("escalated", [])
    verb = "将升级" if report["dry_run"] else "已升级"
    for e in escalated[:SHOW_ESCALATIONS]:
        con.print(f"[magenta]{verb}预警 #{e['alert_id']}：{escape(e['from_recipient'])} → "
                  f"{escape(e['to_recipient'])}（{e['after_days']} 个{'工作日' if e['working_days'] else '自然日'}内未确认）"
                  "[/magenta]")
    if len(escalated) > SHOW_ESCALATIONS:
        con.print(f"[magenta]… 另有 {len(escalated) - SHOW_ESCALATIONS} 条预警{verb}（--format json 列出全部）[/magenta]")
    for r in report["robots"]:
        name = f"{escape(r['name'])}（{escape(r['label'])}）"
        for item in r["unconfirmed"]:
            con.print(f"[yellow]⚠ {name}：上次运行在发送时中断，「{escape(item)}」可能已送达，本次不再重发"
                      "（确认没收到时加 --resend-unconfirmed）[/yellow]")
        if report["dry_run"]:
            msgs = r["messages"]
            con.print(f"[bold]{name}[/bold]：预览 {len(msgs)} 条消息（--dry-run：不发送、不记录）"
                      + (f"；已发送过 {r['already_sent']} 项，不再重复" if r["already_sent"] else ""))
            if payloads:  # raw JSON on stdout (never wrapped), one header line per request
                for m in msgs:
                    for k, p in enumerate(m["payloads"]):
                        _raw(f"# {r['name']} · 第 {m['no']}/{len(msgs)} 条" + (f"（附带 @提醒 {k}）" if k else "")
                             + f" · {m['bytes']} 字节 · POST {p['url']}")
                        _raw(dump_json(p["body"]))
                img = r.get("image") or {}
                if img.get("status") == "preview":
                    _raw(f"# {r['name']} · 图片 {img['path']}（{img['bytes']} 字节） · POST {img['payload']['url']}")
                    _raw(dump_json(img["payload"]["body"]))
            continue
        sent = [m for m in r["messages"] if m.get("status") == "sent"]
        if r["error"]:
            con.print(f"[red]{name}：{escape(r['error'])}[/red]"
                      + (f"（此前已发送 {len(sent)} 条；下次运行只补发未送达的内容）" if sent else "（下次运行会重新发送）"))
        elif sent:
            con.print(f"[green]{name}：已发送 {len(sent)} 条消息（{r['items_sent']} 项）[/green]")
        else:
            con.print(f"[dim]{name}：没有新内容"
                      + (f"（今天的 {r['already_sent']} 项都已发送过）" if r["already_sent"] else "") + "[/dim]")
        img = r.get("image") or {}
        if img.get("status") == "sent":
            con.print(f"[green]{name}：已发送图片 {escape(img['path'])}[/green]")
        elif img.get("status") == "too_large":
            con.print(f"[yellow]⚠ {name}：图片 {escape(img['path'])} 有 {img['bytes']} 字节，超过平台上限 "
                      f"{img['limit']} 字节，未发送[/yellow]")
        waited = sum(w["seconds"] for w in r.get("waits", []))
        if waited >= 1:
            con.print(f"[dim]{name}：按平台频率限制和重试共等待 {waited:.0f} 秒[/dim]")
    warn(report.get("warnings", []))


def _raw(text: str) -> None:
    import sys

    sys.stdout.write(text + "\n")


def fail_if_needed(report: dict[str, Any]) -> None:
    if report["failures"]:
        names = "、".join(dict.fromkeys(f["robot"] for f in report["failures"]))
        raise NotifyError(f"有机器人没有发送成功：{names}",
                          hint="检查 webhook 地址、密钥和网络后重新运行 tierctl notify：已发送的内容不会重复")


@app.command()
def notify(
    date: DateOpt = None,
    dry_run: DryRunOpt = False,
    robot: RobotOpt = None,
    image: ImageOpt = None,
    resend_unconfirmed: ResendOpt = False,
    db: DbOpt = None,
    fmt: JsonFormatOpt = "table",
    lang: LangOpt = None,
    now: NowOpt = None,
) -> None:
    """把今天的晨报发到群机器人（企业微信、钉钉、飞书）：危机等级、P0/P1 人数和变化、按接收人分组并 @ 负责人的新预警、超时未确认而升级的预警、每位负责人的逾期任务。同一天的内容只发一次；--dry-run 只打印消息。"""
    from tierctl.cli.common import lang as pick_lang

    fmt = check_format(fmt, ("table", "json"))
    d = parse_date(date, "--date")
    day, now_dt = clock(d.isoformat() if d else None, now)
    report = run_notify(day, now_dt, db=db, dry_run=dry_run, robots=robot, image=image,
                        resend_unconfirmed=resend_unconfirmed, lang=pick_lang(lang))
    if fmt == "json":
        emit(dump_json(report), None, False)
    else:
        show(report)
    fail_if_needed(report)


__all__ = ["fail_if_needed", "notify", "run_notify", "show"]
