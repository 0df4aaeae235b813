"""``tierctl config``: which configuration file a run uses, where tierctl looked for
one, and where the history and the output go — the first thing to check when a
scheduled run behaves differently from one started by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tierctl.cli import app
from tierctl.cli.common import (
    STATE,
    JsonFormatOpt,
    check_format,
    db_path,
    dump_json,
    emit,
    out_console,
    shown_db,
)


@app.command("config")
def config_cmd(fmt: JsonFormatOpt = "table") -> None:
    """显示本次运行用的配置文件、查找顺序（--config > TIERCTL_CONFIG > 当前文件夹 > 用户配置文件夹 > 内置默认值）、
    历史数据库和输出文件夹的位置。"""
    from rich.markup import escape

    from tierctl.config import search_order

    fmt = check_format(fmt, ("table", "json"))
    cfg = STATE.config
    order: list[dict[str, Any]] = [{"source": what, "path": str(p) if p else None, "exists": bool(p and p.is_file()),
              "used": bool(p and cfg.path and Path(p) == cfg.path)} for what, p in search_order(STATE.config_path)]
    data: dict[str, Any] = {"config": str(cfg.path) if cfg.path else None, "search_order": order, "db": shown_db(db_path(None)),
            "out": str(Path(cfg.get("render.out") or "out"))}
    if fmt == "json":
        emit(dump_json(data), None, False)
        return
    con = out_console()
    con.soft_wrap = True  # paths whole, for copying
    con.print(f"[bold]{escape(cfg.describe())}[/bold]")
    con.print("查找顺序（先找到的生效）：")
    for i, o in enumerate(order, 1):
        mark = "[green]← 使用中[/green]" if o["used"] else ("存在" if o["exists"] else "[dim]没有[/dim]")
        where = escape(o["path"]) if o["path"] else "[dim]（未指定）[/dim]"
        con.print(f"  {i}. {o['source']}：{where}  {mark}")
    con.print(f"  {len(order) + 1}. 内置默认值" + ("  [green]← 使用中[/green]" if cfg.path is None else ""))
    con.print(f"历史数据库：{escape(data['db'])}")
    con.print(f"输出文件夹：{escape(data['out'])}")
