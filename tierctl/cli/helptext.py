"""typer's and click's own words in the run's language: the help page's "Usage:",
"Options", "Show this message and exit.", "[default: …]" and the usage-error messages.

typer 0.26–0.28 vendor click with these texts fixed in English (no gettext catalogue to
load), so the help pages are translated as they are drawn: :func:`install` wraps the
``format_help`` of typer's command and group classes — every tierctl command is one of
them — and sets typer's panel titles, each parameter's help and the usage line in the
language of the run just before typer draws the page.  Nothing is imported for it until a
help page is shown, so ``tierctl tasks`` pays nothing.

The language: ``--lang`` on the command line (:func:`language_from_args`), else
``centre.lang`` of the configuration in use, else Chinese."""

from __future__ import annotations

import re
from typing import Any

from tierctl.i18n import FRAMEWORK_ZH, USAGE_ERRORS_ZH

_lang: str | None = None  # set by the program from its arguments; None: ask the configuration
_installed = False
_ORIGINAL = "_tierctl_original"


def language_from_args(args: list[str]) -> str | None:
    """``--lang X`` / ``--lang=X`` anywhere before ``--``: the language the run asked for."""
    for i, a in enumerate(args):
        if a == "--":
            break
        if a == "--lang" and i + 1 < len(args):
            return args[i + 1].lower()
        if a.startswith("--lang="):
            return a.split("=", 1)[1].lower()
    return None


def set_language(lang: str | None) -> None:
    global _lang
    _lang = lang if lang in ("zh", "en") else None


def language() -> str:
    if _lang is not None:
        return _lang
    try:  # the configuration in use (any error in it is reported by the command itself)
        from tierctl.cli.common import STATE

        cfg = STATE._config  # noqa: SLF001 - already loaded by the command: reuse it
        if cfg is None:  # a help page or a usage error: read it quietly (no log line for a help page)
            from tierctl.config import Config

            cfg = Config.load(STATE.config_path)
        v = str(cfg.get("centre.lang", "zh") or "zh").lower()
    except Exception:  # noqa: BLE001 - a help page never fails on a broken config file
        v = "zh"
    return "en" if v == "en" else "zh"


def say(text: str, lang: str | None = None) -> str:
    """One framework text in the language (English: as typer has it)."""
    return FRAMEWORK_ZH.get(text, text) if (lang or language()) == "zh" else text


def usage_message(message: str, lang: str | None = None) -> str:
    """A click usage-error message in the language (the names and values it quotes kept)."""
    if (lang or language()) != "zh":
        return message
    for pattern, zh in USAGE_ERRORS_ZH:
        m = re.match(pattern, message, re.S)
        if m:
            return zh.format(**m.groupdict())
    return message


def click_errors() -> tuple[type[Exception], Any]:
    """(click's ClickException, typer's Abort) of the typer in use."""
    from typer import core

    click_exc = core._click.exceptions  # noqa: SLF001 - typer vendors click there
    abort = getattr(core, "Abort", None) or getattr(click_exc, "Abort", RuntimeError)
    return click_exc.ClickException, abort


def _set(obj: Any, attr: str, lang: str) -> None:
    """``obj.attr`` in ``lang``, remembering typer's English text the first time."""
    store = obj.__dict__.setdefault(_ORIGINAL, {})
    if attr not in store:
        store[attr] = getattr(obj, attr)
    original = store[attr]
    if isinstance(original, str):
        setattr(obj, attr, say(original, lang))


def prepare(cmd: Any, ctx: Any, lang: str | None = None) -> None:
    """Set everything the help page of ``cmd`` draws from to ``lang``."""
    import typer.rich_utils as ru

    from tierctl.cli.terminal import PipeConsole

    lang = lang or language()
    ru.Console = PipeConsole  # type: ignore[misc]  # help piped into head: exit 0, like every other output
    for name in ("ARGUMENTS_PANEL_TITLE", "OPTIONS_PANEL_TITLE", "COMMANDS_PANEL_TITLE", "ERRORS_PANEL_TITLE",
                 "ABORTED_TEXT", "RICH_HELP", "DEFAULT_STRING", "ENVVAR_STRING", "REQUIRED_LONG_STRING",
                 "DEPRECATED_STRING"):
        _set(ru, name, lang)
    usage = r"(?P<usage>用法：)"
    if usage not in ru.OptionHighlighter.highlights:
        ru.OptionHighlighter.highlights = [*ru.OptionHighlighter.highlights, usage]
    for param in cmd.get_params(ctx):
        _set(param, "help", lang)
    _set(cmd, "options_metavar", lang)
    if hasattr(cmd, "subcommand_metavar"):
        _set(cmd, "subcommand_metavar", lang)


def install() -> None:
    """Translate every help page as it is drawn (once per process)."""
    global _installed
    if _installed:
        return
    _installed = True
    from typer import core
    from typer._click import formatting

    for cls in (core.TyperCommand, core.TyperGroup):
        original = cls.format_help

        def format_help(self: Any, ctx: Any, formatter: Any, _original: Any = original) -> None:
            prepare(self, ctx)
            return _original(self, ctx, formatter)

        cls.format_help = format_help  # type: ignore[method-assign]

    write_usage = formatting.HelpFormatter.write_usage

    def translated_usage(self: Any, prog: str, args: str = "", prefix: str | None = None) -> None:
        return write_usage(self, prog, args, say("Usage: ") if prefix is None else prefix)

    formatting.HelpFormatter.write_usage = translated_usage  # type: ignore[method-assign]
