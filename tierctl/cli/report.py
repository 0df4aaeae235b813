"""``tierctl report``: the daily dashboard as one self-contained HTML page (and PNG charts).

Thin: opens the store, calls :func:`tierctl.render.dashboard.gather` and
:func:`tierctl.render.dashboard.write_report`, and prints the paths written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tierctl.cli import app
from tierctl.cli.common import (
    STATE,
    DbOpt,
    ForceOpt,
    JsonFormatOpt,
    LangOpt,
    NowOpt,
    check_format,
    clock,
    dump_json,
    err_console,
    open_store,
    out_console,
    parse_date,
    warn,
)
from tierctl.cli.common import lang as pick_lang
from tierctl.cli.options import HolidaysOpt

DateOpt = Annotated[str | None, typer.Option("--date", help="看板日期 YYYY-MM-DD（默认今天）；使用该日或之前最近一次保存的结果")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="输出文件夹（默认配置 render.out，即 out/）；写入 <文件夹>/<日期>/dashboard.html")]
PngOpt = Annotated[bool, typer.Option("--png", help="同时把每张图表存为 PNG（便于做幻灯片）")]
LongPngOpt = Annotated[bool, typer.Option("--long-png", help="同时生成整页看板的一张手机长图 dashboard_long.png（宽 1080 像素，便于发微信群；需要 Chrome、Edge 或 Chromium）")]
TemplatesOpt = Annotated[Path | None, typer.Option("--templates", help="自定义模板文件夹（同名文件 zh/dashboard.html.j2 覆盖内置模板）")]


@app.command()
def report(
    date: DateOpt = None,
    out: OutOpt = None,
    png: PngOpt = False,
    long_png: LongPngOpt = False,
    lang: LangOpt = None,
    db: DbOpt = None,
    force: ForceOpt = False,
    templates: TemplatesOpt = None,
    fmt: JsonFormatOpt = "table",
    now: NowOpt = None,
    holidays: HolidaysOpt = None,
) -> None:
    """生成每日看板：一个可离线打开、可 A4 打印的 HTML 文件（危机等级、P0–P3 人数与趋势、等待天数分布、预警、今日任务、变化；有 RFM/流失结果时加上类型分布、迁移和 ROI）。"""
    from tierctl.cli.documents import _templates_dir
    from tierctl.render import dashboard

    fmt = check_format(fmt, ("table", "json"))
    lg = pick_lang(lang)
    day = parse_date(date, "--date")
    day, now_dt = clock(day.isoformat() if day else None, now)
    from tierctl.cli.loop_common import work_calendar

    with open_store(db, readonly=True) as store:  # a missing database is said first, as before
        cfg = STATE.config
        cal = work_calendar(holidays)
        data = dashboard.gather(store, day, now_dt, lang=lg, working_days=cal.working_days, calendar=cal,
                                centre=cfg.get("centre.name") or None)
    out_root = out or Path(cfg.get("render.out") or "out")
    files = dashboard.write_report(data, out_root, png=png, force=force, templates=_templates_dir(templates),
                                   long_png=long_png)
    if fmt == "json":
        typer.echo(dump_json({**files.to_json(), "dashboard": data}))
    else:
        o = out_console()
        o.print(str(files.html), markup=False)
        for p in files.pngs:
            o.print(str(p), markup=False)
        s = data.get("shortage")
        if s and s.get("crisis"):
            err_console().print(f"已生成看板 {files.html}（危机等级 {s['crisis']['level']} {s['crisis']['label']}）",
                                markup=False)
    warn(data["warnings"] + files.warnings)


__all__ = ["report"]
