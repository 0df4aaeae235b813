"""The ``tierctl`` command line: a thin layer over the library.

Each command group lives in its own module; this one builds the app, registers them and
holds the single error handler: a :class:`~tierctl.errors.TierctlError` becomes a red
message on stderr and exit code 1 (usage errors 2); ``--debug`` shows the traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from tierctl.cli.common import STATE

app = typer.Typer(
    name="tierctl",
    help="汽车服务中心每日客户分层工具：配件短缺分级（P0–P3）、流失风险、RFM、客户分级。",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="出错时显示完整的 Python 调用栈")] = False,
    config: Annotated[Path | None, typer.Option("--config", help="配置文件（默认 $TIERCTL_CONFIG 或 ./tierctl.toml）")] = None,
) -> None:
    """汽车服务中心每日客户分层工具。"""
    STATE.debug = debug or bool(os.environ.get("TIERCTL_DEBUG"))
    STATE.config_path = config
    STATE._config = None


def _register() -> None:
    # one module per command group; each adds its commands to ``app`` when imported
    import importlib

    for mod in ("score", "daily", "documents", "rfm", "churn", "grade", "allocate", "report", "collect",
                "notify"):
        importlib.import_module(f"tierctl.cli.{mod}")


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app and translate errors into messages and exit codes.

    Typer handles its own usage errors (exit 2); everything a user can get wrong in
    the library arrives here as a :class:`TierctlError`."""
    from tierctl.errors import TierctlError

    args = sys.argv[1:] if argv is None else argv
    try:
        try:
            app(args=args, prog_name="tierctl")
        finally:
            _wait_for_stores()
    except TierctlError as err:
        _report(err, err.exit_code)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("已中断\n")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:  # a bug: say so plainly, never dump locals (rows hold names and phones)
        if STATE.debug:
            raise
        sys.stderr.write(f"tierctl 内部错误：{type(exc).__name__}: {exc}\n"
                         "请加 --debug 重新运行并把输出发给维护者。\n")
        sys.exit(1)


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
    from rich.console import Console
    from rich.markup import escape
    from rich.panel import Panel

    title = "用法错误" if code == 2 else "错误"
    Console(stderr=True, highlight=False).print(
        Panel(escape(str(err)), title=title, border_style="red", title_align="left", expand=False)
    )
