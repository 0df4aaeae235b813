"""The ``tierctl`` command line: a thin layer over the library.

Each command group lives in its own module; this one builds the app, registers them and
holds the single error handler: a :class:`~tierctl.errors.TierctlError` becomes a red
message on stderr and exit code 1 (usage errors 2); ``--debug`` shows the traceback.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from tierctl.cli.common import STATE

app = typer.Typer(
    name="tierctl",
    help="汽车服务中心每日客户分层工具：配件短缺分级（P0–P3）、流失风险、RFM、客户分级。",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    context_settings={"help_option_names": ["-h", "--help"]},  # inherited by every command
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        from tierctl import __version__

        typer.echo(f"tierctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="出错时显示完整的 Python 调用栈，并说明用的是哪个配置文件")] = False,
    config: Annotated[Path | None, typer.Option(
        "--config", help="配置文件（默认依次找 $TIERCTL_CONFIG、./tierctl.toml、用户配置文件夹；tierctl config 查看）")] = None,
    lang: Annotated[str | None, typer.Option("--lang", help="语言：zh（默认）或 en；各命令自己的 --lang 优先")] = None,
    centre: Annotated[str | None, typer.Option(
        "--centre", help="服务中心编号（多个中心共用一个数据库时区分各自的数据；默认取配置 centre.id）")] = None,
    version: Annotated[bool, typer.Option("--version", "-V", callback=_version, is_eager=True,
                                          help="显示版本并退出")] = False,
) -> None:
    """汽车服务中心每日客户分层工具。"""
    STATE.debug = debug or bool(os.environ.get("TIERCTL_DEBUG"))
    STATE.config_path = config
    STATE.lang = lang
    STATE.centre = centre
    STATE._config = None


def _register() -> None:
    # one module per command group; each adds its commands to ``app`` when imported
    import importlib

    for mod in ("score", "history", "tasks", "contact", "alerts", "documents", "rfm", "churn", "grade", "allocate",
                "report", "collect", "notify", "setup", "region", "db"):
        importlib.import_module(f"tierctl.cli.{mod}")


_register()

# the click command typer builds from ``app``: typer builds it again on every call (reading
# every command's signature and type hints, about 0.1 s); a process runs one command, but
# the in-process test runner and a long-lived caller run many.  Keyed by the one variable
# typer reads while building (the completion options' shell detection).
_COMMANDS: dict[str | None, Any] = {}


def _command() -> Any:
    key = os.environ.get("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION")
    cmd = _COMMANDS.get(key)
    if cmd is None:
        cmd = _COMMANDS[key] = typer.main.get_command(app)
    return cmd


def _run_app(args: list[str]) -> Any:
    """What ``app(args=...)`` does, on the command built once: typer's exception hook
    installed (with pretty exceptions off it hands over to Python's own), then the run."""
    if sys.excepthook is not typer.main.except_hook:
        sys.excepthook = typer.main.except_hook
    return _command()(args=args, prog_name="tierctl", standalone_mode=False)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app and translate errors into messages and exit codes.

    Usage errors (exit 2) are shown in the run's language like every other error;
    everything a user can get wrong in the library arrives here as a
    :class:`TierctlError`.  A reader that stops reading (``tierctl … | head``) ends the
    run quietly with 0; a full disk is said so, with 1."""
    from tierctl.cli import helptext
    from tierctl.errors import TierctlError

    args = sys.argv[1:] if argv is None else argv
    helptext.install()
    helptext.set_language(helptext.language_from_args(args))
    try:
        try:
            code = _run_app(args)
        finally:
            _wait_for_stores()
        _flush_stdout()
    except TierctlError as err:
        _report(err, err.exit_code)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("已中断\n")
        sys.exit(130)
    except BrokenPipeError:
        _quiet_exit()
    except SystemExit as exc:
        # click turns a closed pipe into exit 1, after wrapping stdout to pacify the final
        # flush: for tierctl the reader having read enough is no failure
        if exc.code == 1 and type(sys.stdout).__name__ == "PacifyFlushWrapper":
            _quiet_exit()
        raise
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            _quiet_exit()
        if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            _disk_full(exc)
        if isinstance(exc, PermissionError):
            where = exc.filename2 or exc.filename or ""
            _report(Exception(f"无法写入 {where}：文件被占用或没有权限\n"
                              "→ 这个文件在 Excel 等程序里打开着时先关掉它；或用 -o 写到别的位置"), 1)
            sys.exit(1)
        if STATE.debug:
            raise
        _internal(exc)
    except Exception as exc:  # a bug: say so plainly, never dump locals (rows hold names and phones)
        from tierctl.cli.helptext import click_errors

        if isinstance(exc, click_errors()):
            _usage(exc)
        if STATE.debug:
            raise
        _internal(exc)
    sys.exit(code if isinstance(code, int) else 0)


def _flush_stdout() -> None:
    """Flush now, so that a full disk or a closed pipe is reported here, not lost at exit."""
    sys.stdout.flush()


def _quiet_exit() -> None:
    """The reader has all it wanted (``| head``): nothing more to say, success."""
    from tierctl.cli.terminal import silence_stdout

    silence_stdout()
    sys.exit(0)


def _disk_full(exc: OSError) -> None:
    from tierctl.cli.terminal import silence_stdout

    where = f"（{exc.filename}）" if exc.filename else ""
    silence_stdout()  # what is still buffered would only fail again at exit
    _report(Exception(f"磁盘已满，输出无法写入{where}（{exc.strerror or exc}）\n"
                      "→ 清理磁盘（或换一个有空间的位置用 -o 写入）后重新运行；已写出的内容不完整"), 1)
    sys.exit(1)


def _internal(exc: BaseException) -> None:
    from tierctl.cli.common import shown_db  # a driver's message may quote the URL it was given

    sys.stderr.write(f"tierctl 内部错误：{type(exc).__name__}: {shown_db(exc)}\n"
                     "请加 --debug 重新运行并把输出发给维护者。\n")
    sys.exit(1)


def _usage(exc: Exception) -> None:
    """A click usage error (a missing argument, an unknown option …) as tierctl shows
    every error: one panel on stderr naming what to fix, the usage line and where the
    help is; exit 2.  ``tierctl`` with nothing after it shows the help (exit 2)."""
    from tierctl.cli import helptext

    click_exception, abort = helptext.click_errors()
    if isinstance(exc, abort):
        sys.stderr.write("已中断\n")
        sys.exit(1)
    assert isinstance(exc, click_exception)
    code: int = getattr(exc, "exit_code", 2)
    if type(exc).__name__ == "NoArgsIsHelpError":  # the help page was shown already
        sys.exit(code)
    ctx = getattr(exc, "ctx", None)
    lines = [helptext.usage_message(getattr(exc, "format_message")())]  # noqa: B009 - click's, typed loosely here
    if ctx is not None:
        helptext.prepare(ctx.command, ctx)
        usage = ctx.get_usage().strip()
        help_opt = ctx.help_option_names[0] if ctx.help_option_names else "--help"
        lines.append(f"→ {usage}")
        where = f"{ctx.command_path} {help_opt}"
        lines.append(f"→ 查看帮助：{where}" if helptext.language() == "zh" else f"→ Try '{where}' for help.")
    _report(Exception("\n".join(lines)), code)
    sys.exit(code)


def entry() -> None:
    """The ``tierctl`` program (and ``python -m tierctl``): :func:`main`, then leave at
    once.  Tearing the interpreter down — freeing every module, frame and cached object —
    takes a tenth of a second after a small command and more after a million-row run:
    time a manager waits for nothing.  Output is flushed and the background store close
    joined (:func:`main` does) first; every file tierctl writes is closed by then.
    Library callers and tests call :func:`main`, which exits the ordinary way."""
    try:
        main()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    if isinstance(code, str):  # what sys.exit("text") would print
        sys.stderr.write(code + "\n")
        code = 1
    status = code if isinstance(code, int) else (0 if code is None else 1)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:  # tierctl … | head: the reader has all it wanted
            pass
        except (OSError, ValueError):  # output lost (a full disk): never report success
            status = status or 120  # the code Python itself gives when the final flush fails
    os._exit(status)


def _wait_for_stores() -> None:
    """A store closed in the background (its checkpoint overlapping the output) is
    closed before the command returns, so the file is whole when the command is done."""
    core = sys.modules.get("tierctl.store.core")  # loaded only by commands that use the store
    if core is not None:
        core.wait_closed()


def _report(err: Exception, code: int) -> None:
    if STATE.debug:
        import traceback

        traceback.print_exception(err)
    from rich.markup import escape
    from rich.panel import Panel

    from tierctl.cli.common import shown_db
    from tierctl.cli.terminal import PipeConsole

    en = _lang_of_run() == "en"
    title = ("Usage error" if en else "用法错误") if code == 2 else ("Error" if en else "错误")
    PipeConsole(stderr=True, highlight=False).print(
        Panel(escape(shown_db(err)), title=title, border_style="red", title_align="left", expand=False)
    )


def _lang_of_run() -> str:
    from tierctl.cli import helptext

    return helptext.language()
