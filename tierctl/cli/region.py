"""``tierctl centres`` (the centres one database holds) and ``tierctl region report``
(the regional roll-up of every centre, HTML and/or xlsx)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from tierctl.cli import app
from tierctl.cli.common import (
    DbOpt,
    ForceOpt,
    JsonFormatOpt,
    LangOpt,
    NowOpt,
    check_format,
    clock,
    dump_json,
    emit,
    err_console,
    lang,
    open_store,
    parse_date,
)

region_app = typer.Typer(help="区域：多个服务中心共用一个数据库时的汇总报告", no_args_is_help=True)
app.add_typer(region_app, name="region")


@app.command("centres")
def centres(db: DbOpt = None, fmt: JsonFormatOpt = "table") -> None:
    """列出数据库中的服务中心（各自的快照数、类别、最早与最近日期）。"""
    fmt = check_format(fmt, ("table", "json"))
    with open_store(db, readonly=True) as store:
        rows = store.centres()
    if fmt == "json":
        emit(dump_json([{**r, "first": r["first"].isoformat(), "last": r["last"].isoformat()} for r in rows]),
             None, False)
        return
    from rich.table import Table

    from tierctl.cli.common import out_console

    t = Table("服务中心", "快照数", "类别", "最早", "最近")
    for r in rows:
        t.add_row(r["centre"], str(r["snapshots"]), ", ".join(r["kinds"]), r["first"].isoformat(),
                  r["last"].isoformat())
    out_console().print(t)


def _churn_roi(now: Any) -> Any:
    """The churn ROI of one centre, as ``tierctl churn report`` works it out."""
    def roi(view: Any) -> Any:
        from tierctl.churn import load_churn_model
        from tierctl.churn.report import loop_report
        from tierctl.cli.common import STATE

        model = load_churn_model(STATE.config.get("churn.model", "churn") or "churn")
        value = loop_report(view, model, now=now).roi.roi
        return None if value is None else float(value)

    return roi


@region_app.command("report")
def report(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="HTML 报告文件（.html）")] = None,
    xlsx: Annotated[Path | None, typer.Option("--xlsx", help="同一份报告的工作簿（.xlsx）")] = None,
    date: Annotated[str | None, typer.Option("--date", help="日期 YYYY-MM-DD（默认今天）")] = None,
    params: Annotated[Path | None, typer.Option("--params", help="报告参数文件（默认 tierctl/data/region.toml）")] = None,
    db: DbOpt = None,
    fmt: JsonFormatOpt = "table",
    lang_opt: LangOpt = None,
    force: ForceOpt = False,
    now: NowOpt = None,
) -> None:
    """区域汇总：各中心危机等级、分级人数与趋势、按接收人的未处理与逾期预警、全区等待最久的客户、
    可调拨配件、RFM 类型占比与流失挽回 ROI。"""
    from tierctl.region import output as out
    from tierctl.region.report import gather, load_params

    fmt = check_format(fmt, ("table", "json"))
    lg = lang(lang_opt)
    day = parse_date(date, "--date")
    day, now_dt = clock(day.isoformat() if day else None, now)
    p = load_params(params)
    with open_store(db, readonly=True) as store:
        data = gather(store, day, p, churn_roi=_churn_roi(now_dt))
    if output is not None:
        out.write_html(data, output, lg, force=force)
        err_console().print(f"已写入 {output}")
    if xlsx is not None:
        out.write_workbook(data, xlsx, lg, force=force)
        err_console().print(f"已写入 {xlsx}")
    if fmt == "json":
        emit(dump_json(data), None, False)
    elif output is None and xlsx is None:
        from tierctl.cli.common import out_console

        con = out_console()
        for c in data["centres"]:
            con.print(f"{c['centre']}: {c['crisis_label'] or '—'} {c['counts']}")
