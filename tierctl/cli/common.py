"""Shared pieces of the command line: options defined once, consoles, the as-of and
clock handling, phone masking, JSON output.  Heavy libraries are imported lazily so that
``tierctl --help`` stays fast."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from tierctl.errors import UsageError


@dataclass
class State:
    debug: bool = False
    config_path: Path | None = None
    lang: str | None = None  # the root --lang (each command's own --lang comes first)
    centre: str | None = None  # the root --centre
    _config: Any = field(default=None, repr=False)

    @property
    def config(self):  # noqa: ANN201 - Config, imported lazily
        if self._config is None:
            from tierctl.config import Config

            self._config = Config.load(self.config_path)
            if self.debug or not sys.stderr.isatty():
                # a scheduled run's log says where its settings came from (never silently defaults)
                from rich.markup import escape

                err_console().print(f"[dim]{escape(self._config.describe())}[/dim]", soft_wrap=True)
        return self._config


STATE = State()


def out_console():
    from tierctl.cli.terminal import PipeConsole

    return PipeConsole(soft_wrap=False, highlight=False)


def err_console():
    from tierctl.cli.terminal import PipeConsole

    return PipeConsole(stderr=True, highlight=False)


def progress(first: str):
    """A progress line on stderr for work that takes more than about two seconds
    (only when stderr is a terminal): ``with progress("读取…") as p: …; p.step("打分…")``."""
    from tierctl.cli.terminal import progress as _progress

    return _progress(first, err_console())


def default_command_group(default: str):
    """A command group where ``tierctl GROUP FILE …`` means ``tierctl GROUP <default>
    FILE …``: anything that is not a sub-command name (or --help) goes to ``default``.
    Used by ``rfm``, ``churn`` and ``grade``, whose main action takes a file."""
    from typer.core import TyperGroup

    class DefaultGroup(TyperGroup):
        default_command = default

        def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
            if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
                args = [self.default_command, *args]
            return super().parse_args(ctx, args)

    return DefaultGroup


# -- options defined once ------------------------------------------------------------------
FileArg = Annotated[Path, typer.Argument(help="CRM 导出文件（.xlsx 或 .csv）", show_default=False)]
OptFileArg = Annotated[Path | None, typer.Argument(help="CRM 导出文件（.xlsx 或 .csv）；省略时使用今天存储的快照",
                                                   show_default=False)]
SheetOpt = Annotated[str | None, typer.Option("--sheet", help="工作表名称或序号（从 1 开始）；默认第一个")]
EncodingOpt = Annotated[str | None, typer.Option("--encoding", help="CSV 编码（默认自动识别 UTF-8/BOM/GBK/GB18030）")]
MappingOpt = Annotated[Path | None, typer.Option("--mapping", help="列映射文件（TOML，\\[columns] 字段 = \"表头\"）")]
AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="评估日期 YYYY-MM-DD（默认今天），可重算旧文件")]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="输出格式：table | json | csv")]
JsonFormatOpt = Annotated[str, typer.Option("--format", "-f", help="输出格式：table | json")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="把 json/csv/xlsx 输出写入文件（不覆盖已有文件，除非 --force）")]
TableFormatOpt = Annotated[str, typer.Option("--format", "-f", help="输出格式：table | json | csv | xlsx（xlsx 需要 -o 文件.xlsx）")]
HeadersOpt = Annotated[str | None, typer.Option(
    "--headers", help="csv/xlsx 的表头：keys（英文字段名，csv 默认，便于脚本）| zh（中文，xlsx 默认）| en")]
ForceOpt = Annotated[bool, typer.Option("--force", help="覆盖已存在的输出文件")]
DbOpt = Annotated[Path | None, typer.Option(
    "--db", help="历史数据库：文件路径或 postgresql://用户@主机/库（默认见 README；也可设 TIERCTL_DB）")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="预览：不写数据库、不写文件")]
LangOpt = Annotated[str | None, typer.Option("--lang", help="语言：zh（默认）或 en")]
NowOpt = Annotated[str | None, typer.Option("--now", help="运行时刻（ISO 8601），用于复现；默认当前时间", hidden=True)]
LimitOpt = Annotated[int, typer.Option("--limit", help="表格最多显示多少行（0 = 全部）")]


def parse_date(text: str | None, what: str = "--as-of") -> dt.date | None:
    if text is None:
        return None
    import re

    m = re.match(r"^\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s*$", text)
    try:
        if m:
            return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"{what} 的日期「{text}」无法识别", hint="请写成 2026-11-23") from exc


def timezone():
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = STATE.config.get("centre.timezone", "Asia/Shanghai") or "Asia/Shanghai"
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError as exc:
        raise UsageError(f"配置中的时区「{name}」无效", hint="例如 Asia/Shanghai") from exc


def clock(as_of_text: str | None, now_text: str | None = None) -> tuple[dt.date, dt.datetime]:
    """The as-of date and the run's time.  Re-scoring an old file (``--as-of`` before
    today) takes 09:00 of that day as the run's time, so its deadlines are those the
    morning run would have given."""
    tz = timezone()
    if now_text:
        try:
            now = dt.datetime.fromisoformat(now_text)
        except ValueError as exc:
            raise UsageError(f"--now「{now_text}」无法识别") from exc
        if now.tzinfo is None:
            now = now.replace(tzinfo=tz)
    else:
        now = dt.datetime.now(tz)
    as_of = parse_date(as_of_text) or now.date()
    if as_of != now.date() and not now_text:
        now = dt.datetime.combine(as_of, dt.time(9, 0), tzinfo=tz)
    return as_of, now


def check_format(fmt: str, allowed: tuple[str, ...] = ("table", "json", "csv")) -> str:
    f = fmt.lower()
    if f not in allowed:
        raise UsageError(f"--format 不支持「{fmt}」", hint=f"可选：{' | '.join(allowed)}")
    return f


def lang(opt: str | None) -> str:
    v = (opt or STATE.lang or STATE.config.get("centre.lang", "zh") or "zh").lower()
    if v not in ("zh", "en"):
        raise UsageError(f"--lang 不支持「{v}」", hint="可选：zh | en")
    return v


lang_of = lang  # for callers whose own parameter is called ``lang``


def mask_phone(phone: object) -> str:
    if not isinstance(phone, str) or not phone:
        return ""
    digits = phone.strip()
    if len(digits) >= 7:
        return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
    return "*" * len(digits)


def dump_json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, default=str)


def refuse_existing_output(output: Path | None, force: bool, dry_run: bool = False) -> None:
    """Before a run reads, scores or stores anything: an ``-o`` file that exists without
    ``--force`` is refused at once, so the history never holds a run whose result was
    not written (a dry run writes no file, so it is not checked)."""
    if output is not None and not dry_run:
        from tierctl.io.writers import check_writable

        check_writable(Path(output), force)


def emit(text: str, output: Path | None, force: bool) -> None:
    """Data to stdout, or atomically to ``output``."""
    if output is None:
        text = text if text.endswith("\n") else text + "\n"
        buffer = getattr(sys.stdout, "buffer", None)
        if buffer is None or sys.stdout.isatty():
            sys.stdout.write(text)
            sys.stdout.flush()
            return
        # data into a file or a program is UTF-8, whatever the console's code page (Windows: GBK)
        sys.stdout.flush()
        buffer.write(text.encode("utf-8"))
        buffer.flush()
        return
    from tierctl.io.writers import write_text

    write_text(output, text, force=force)
    err_console().print(f"已写入 {output}")


def emit_csv(frame: Any, output: Path | None, force: bool, *, dry_run: bool = False, unit: str = "行",
             order: Any = None) -> None:
    """A table as injection-safe CSV: to ``output`` (atomically, UTF-8 with BOM for
    Excel) or, without one or on a dry run, to stdout (see :func:`write_stdout_csv`).
    ``order``: the rows' positions in ``frame`` in the order to write them."""
    from tierctl.io.writers import write_csv

    if output is not None and not dry_run:
        write_csv(frame, output, force=force, order=order)
        err_console().print(f"已写入 {output}（{len(frame)} {unit}）")
    else:
        write_stdout_csv(write_csv(frame, None, order=order) or "")


def stdout_wants_bom() -> bool:
    """A CSV on stdout starts with the UTF-8 BOM (as ``-o`` files do, so that Excel
    reads the Chinese right) when stdout is redirected into a new or empty regular file
    (``tierctl … -f csv > today.csv``); never into a pipe, a terminal, or the end of a
    file that already holds something (``>>``)."""
    import stat

    try:
        fd = sys.stdout.fileno()
        st = os.fstat(fd)
    except (AttributeError, OSError, ValueError):  # replaced stdout (tests, embedding): no file
        return False
    if not stat.S_ISREG(st.st_mode):
        return False
    try:
        sys.stdout.flush()
        return st.st_size == 0 and os.lseek(fd, 0, os.SEEK_CUR) == 0
    except OSError:
        return False


def write_stdout_csv(text: str) -> None:
    """CSV text to stdout, always as UTF-8 (whatever the console's code page), with
    the BOM when :func:`stdout_wants_bom`."""
    text = text if text.endswith("\n") else text + "\n"
    bom = stdout_wants_bom()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a text-only stdout (tests capture this way)
        sys.stdout.write(("\ufeff" if bom else "") + text)
        sys.stdout.flush()
        return
    sys.stdout.flush()
    if bom:
        buffer.write("\ufeff".encode())
    buffer.write(text.encode("utf-8"))
    buffer.flush()


HEADER_CHOICES = ("keys", "zh", "en")


def emit_table(frame: Any, table: str, fmt: str, output: Path | None, force: bool, *, headers: str | None = None,
               lang: str | None = None, dry_run: bool = False, unit: str = "行", dynamic: dict[str, Any] | None = None,
               formats: dict[str, str] | None = None, order: Any = None) -> None:
    """A flat table as CSV or Excel, one way for every command that exports one
    (``score``, ``churn``, ``grade``, ``tasks``, ``alerts``).

    ``table`` names its columns in ``tierctl/data/tables.toml``; ``dynamic`` gives the
    model's own columns for a placeholder there.  CSV keeps the field names as headers
    for scripts unless ``--headers zh|en``; the workbook takes the headers of ``lang``
    (or ``--headers``) and needs ``-o FILE.xlsx``.  ``order`` (CSV only): the rows'
    positions in ``frame`` in the order to write them."""
    from tierctl.io.tables import header_map, table_spec

    if headers is not None and headers.lower() not in HEADER_CHOICES:
        raise UsageError(f"--headers 不支持「{headers}」", hint="可选：keys | zh | en")
    heads = headers.lower() if headers else None
    spec = table_spec(table)
    if fmt == "csv":
        if heads in ("zh", "en"):
            names = header_map(spec.columns(heads, dynamic=dynamic))
            frame = frame.rename(columns={k: v for k, v in names.items() if k in frame.columns})
        emit_csv(frame, output, force, dry_run=dry_run, unit=unit, order=order)
        return
    if fmt != "xlsx":  # (check_format let it through)
        raise UsageError(f"--format 不支持「{fmt}」")
    if output is None:
        raise UsageError("-f xlsx 需要用 -o 指定要写入的文件", hint="例如：-f xlsx -o 今天.xlsx")
    if output.suffix.lower() != ".xlsx":
        raise UsageError(f"-o 应为 .xlsx 文件，而不是「{output.name}」", hint="例如：-o 今天.xlsx；要 CSV 用 -f csv")
    if dry_run:
        raise UsageError("预览（--dry-run）不写文件：-f xlsx 不能和 --dry-run 一起用",
                         hint="去掉 --dry-run，或用 -f table 预览")
    from tierctl.io.writers import write_xlsx

    lg = heads if heads in ("zh", "en") else lang_of(lang)
    columns = spec.columns(lg, dynamic=dynamic, formats=formats)
    if heads == "keys":
        from dataclasses import replace

        columns = [replace(c, header=c.key) for c in columns]
    write_xlsx(frame, output, columns, sheet=spec.sheet_name(lg), fills=spec.fills, tz=timezone(), force=force,
               yes_no=("yes", "no") if lg == "en" else ("是", "否"))
    err_console().print(f"已写入 {output}（{len(frame)} {unit}）")


def centre_id(opt: str | None = None) -> str:
    """The centre this run is for: ``--centre``, then $TIERCTL_CENTRE, then the config's
    ``centre.id``, then ``default``."""
    from tierctl.store.base import DEFAULT_CENTRE
    from tierctl.store.engine import check_centre

    if opt or STATE.centre:
        return check_centre(opt or STATE.centre)
    if os.environ.get("TIERCTL_CENTRE"):
        return check_centre(os.environ["TIERCTL_CENTRE"], where="TIERCTL_CENTRE")
    return STATE.config.centre_id() or DEFAULT_CENTRE


def db_path(opt: Path | str | None) -> Any:
    """--db, then $TIERCTL_DB, then the config's store.db, then the per-user default: a
    file's Path, or a server's URL (:class:`tierctl.store.engine.ServerURL`, which
    ``exists()`` like a path does).  Also makes this run's centre the default of every
    store opened (until every command opens through :func:`open_store`)."""
    from tierctl.store.base import set_default_centre
    from tierctl.store.engine import is_server, server_url

    set_default_centre(centre_id())
    if opt:
        return server_url(opt) if is_server(opt) else Path(opt)
    if os.environ.get("TIERCTL_DB"):
        env = os.environ["TIERCTL_DB"]
        return server_url(env) if is_server(env) else Path(env)
    raw = STATE.config.get("store.db")
    if raw and is_server(raw):
        return server_url(raw)
    cfg = STATE.config.path_of("store.db")
    if cfg:
        return cfg
    from tierctl.config import on_windows

    if on_windows():
        base = os.environ.get("LOCALAPPDATA") or os.environ.get("APPDATA") or str(Path.home() / "AppData" / "Local")
    else:
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tierctl" / "tierctl.db"


MISSING_DB = ("历史数据库 {path} 不存在：还没有保存过评分",
              "先运行 tierctl score 导出文件.xlsx（不加 --dry-run）；或用 --db / TIERCTL_DB 指定数据库")


def shown_db(location: object) -> str:
    """A database's location as tierctl prints it: a server URL without its password."""
    from tierctl.store.engine import mask_password

    return mask_password(str(location))


def open_store(db: Path | str | None, *, readonly: bool = False, must_exist: bool = False,
               centre: str | None = None, migrate: bool = True,
               missing: tuple[str, str] = MISSING_DB) -> Any:
    """The one store opener: --db / TIERCTL_DB / store.db for where (or a location
    :func:`db_path` gave, or ``":memory:"``), --centre / TIERCTL_CENTRE / centre.id for
    which centre.  ``must_exist`` (or ``readonly``): a missing file is the clear error
    ``missing`` (message with ``{path}``, hint) instead of a new database.
    ``migrate=False`` (the ``db`` commands) opens without migrating, and says plainly
    when the server cannot be reached."""
    from tierctl.errors import NotFoundError
    from tierctl.store import Store

    if str(db) == ":memory:":
        return Store.open(":memory:", centre=centre_id(centre))
    path = db_path(db)
    if (must_exist or readonly) and not path.exists():
        raise NotFoundError(missing[0].format(path=shown_db(path)), hint=missing[1])
    store = Store.open(path, readonly=readonly, centre=centre_id(centre), migrate=migrate)
    if not migrate:  # opening without migrating has not connected yet: do it here, with tierctl's message
        import sqlalchemy as sa

        from tierctl.errors import StoreError

        try:
            store.schema_version()
        except sa.exc.OperationalError as exc:
            store.close()
            raise StoreError(f"无法打开历史数据库 {shown_db(path)}：{shown_db(exc.orig)}",
                             hint="检查文件权限或服务器地址，或用 --db 指定另一个数据库") from exc
    return store


def warn(messages: list[str]) -> None:
    if not messages:
        return
    from rich.markup import escape

    con = err_console()
    for m in messages:  # a warning may quote a path or a [section]: never read as markup
        con.print(f"[yellow]⚠ {escape(m)}[/yellow]")
