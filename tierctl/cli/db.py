"""``tierctl db``: the history database itself — ``migrate`` (apply the numbered
migrations; the same ones on SQLite and PostgreSQL) and ``status``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tierctl.cli import app
from tierctl.cli.common import (
    DbOpt,
    JsonFormatOpt,
    centre_id,
    check_format,
    db_path,
    dump_json,
    emit,
    open_store,
    out_console,
)

db_app = typer.Typer(help="历史数据库：升级结构（migrate）、查看状态（status）", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("migrate")
def migrate(
    db: DbOpt = None,
    to: Annotated[int | None, typer.Option("--to", help="只升级到这个结构版本（默认最新）")] = None,
    fmt: JsonFormatOpt = "table",
) -> None:
    """把历史数据库升级到本程序的结构版本（SQLite 文件或 PostgreSQL）；已是最新时什么也不做。
    旧数据库里已有的数据归入 --centre / centre.id 指定的服务中心。"""
    from tierctl.store import migrations

    fmt = check_format(fmt, ("table", "json"))
    path = db_path(db)
    with open_store(path, migrate=False) as store:
        before = store.schema_version()
        applied = migrations.migrate(store._begin_write, target=to, path=store.path)
        after = store.schema_version()
    data = {"db": str(getattr(path, "display", path)), "centre": centre_id(), "before": before, "after": after,
            "applied": applied}
    if fmt == "json":
        emit(dump_json(data), None, False)
        return
    con = out_console()
    if applied:
        con.print(f"已升级 {data['db']}：结构版本 {before} → {after}（应用 {', '.join(map(str, applied))}）")
    else:
        con.print(f"{data['db']} 已是结构版本 {after}，无需升级")


@db_app.command("status")
def status(db: DbOpt = None, fmt: JsonFormatOpt = "table") -> None:
    """数据库的位置、结构版本和其中的服务中心。"""
    from tierctl.store import migrations

    fmt = check_format(fmt, ("table", "json"))
    path = db_path(db)
    with open_store(path, migrate=False) as store:
        version = store.schema_version()
        centres = store.centres() if version >= 10 else []
    data: dict[str, Any] = {"db": str(getattr(path, "display", path)), "engine": "postgresql" if hasattr(path, "display") else "sqlite",
            "version": version, "current": migrations.CURRENT_VERSION, "centres": [c["centre"] for c in centres]}
    if fmt == "json":
        emit(dump_json(data), None, False)
        return
    out_console().print(f"{data['db']}（{data['engine']}）结构版本 {version}/{data['current']}；"
                        f"服务中心：{', '.join(data['centres']) or '无'}")
