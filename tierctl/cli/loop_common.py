"""What the daily loop's command modules share: the store opener, the working-day calendar the
configuration asks for, and the small display helpers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tierctl.cli.common import (
    STATE,
    open_store,
    parse_date,
    warn,
)
from tierctl.errors import UsageError

if TYPE_CHECKING:
    from tierctl.store import Store


TIER_STYLE = {"P0": "bold white on red", "P1": "bold black on dark_orange", "P2": "black on yellow",
              "P3": "black on green"}
LIST_LIMIT = 10  # changes/alerts lines printed under the morning table, per kind


# -- helpers ---------------------------------------------------------------------------------
def _open(db: Path | None) -> Store:
    return open_store(db, must_exist=True)



def work_calendar(holidays: list[Path] | None = None):
    """The working-day calendar the configuration asks for: ``calendar.working_days``,
    and the holiday files of ``calendar.file`` (a path or a list, relative to the
    configuration file's folder).  ``holidays`` (``--holidays``) replaces those files
    and turns working days on."""
    from tierctl.daily import WorkCalendar
    from tierctl.daily.calendar import load_holiday_files
    from tierctl.errors import ConfigError

    cfg = STATE.config
    where = cfg.path or Path("tierctl.toml")
    v = cfg.get("calendar.working_days", False)
    if not isinstance(v, bool):
        raise ConfigError("应为 true 或 false", path=where, key="calendar.working_days")
    if holidays:
        return WorkCalendar(True, load_holiday_files(holidays))
    files = cfg.get("calendar.file", "") or []
    if isinstance(files, str):
        files = [files] if files.strip() else []
    if not isinstance(files, list) or not all(isinstance(x, str) for x in files):
        raise ConfigError("应为节假日文件的路径，或路径的列表", path=where, key="calendar.file",
                          hint='例如 file = "节假日2027.csv"')
    base = cfg.path.parent if cfg.path else Path.cwd()
    return WorkCalendar(v, load_holiday_files([base / x for x in files if x.strip()]))


def _e(v: Any) -> str:
    from rich.markup import escape

    return escape("" if v is None else str(v))


def _who(d: dict[str, Any]) -> str:
    name, cid = d.get("name"), d.get("customer_id")
    if name and cid and name != cid:
        return f"{name}（{cid}）"
    return str(name or cid or d.get("customer_key") or "?")


def _tier(t: str | None):
    from rich.text import Text

    return Text(f" {t} ", style=TIER_STYLE.get(t or "", "bold")) if t else Text("—")


def _parse_at(text: str | None, now: dt.datetime, what: str) -> dt.datetime | None:
    if text is None:
        return None
    t = text.strip()
    try:
        if len(t) <= 11 and "T" not in t and ":" not in t:
            d = parse_date(t, what)
            assert d is not None
            return dt.datetime.combine(d, dt.time(12, 0), tzinfo=now.tzinfo)
        v = dt.datetime.fromisoformat(t.replace("/", "-"))
    except ValueError as exc:
        raise UsageError(f"{what}「{text}」无法识别", hint="写成 2026-11-24 10:30") from exc
    return v.replace(tzinfo=now.tzinfo) if v.tzinfo is None else v


def _due_text(due: str) -> str:
    """A deadline as the task list shows it: ``2026-11-24`` stays a date, a time reads
    ``11-24 22:30``."""
    return due[5:16].replace("T", " ") if "T" in due else due


def _short(channel: str | None) -> str:
    import re

    return re.split(r"[（(，,]", channel or "")[0]


def _show_warnings(data: dict[str, Any]) -> None:
    warn(list(data.get("warnings") or []))
