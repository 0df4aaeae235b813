"""Working days: the user's holiday files (one year each) and the calendar that counts
day targets in working days.

A year of public holidays and make-up workdays (调休) that the user supplies.

China's official calendar is published each winter for the next year, and the
``chinese_calendar`` package only knows the years it was released for.  So that day
targets can keep counting working days in a year the package does not know yet (or to
correct a year it does know), the manager types the State Council's notice into a small
text file, one line per date or date range::

    # 2027 年节假日安排（国务院办公厅通知）
    年份,2027
    2027-01-01,休,元旦
    2027-02-06~2027-02-12,休,春节
    2027-02-14,班,春节调休（周日上班）

``休`` (also 假 / 放假 / holiday / off) marks days off, ``班`` (also 上班 / 调休上班 /
workday / work) a Saturday or Sunday that is worked.  Every other day of that year is a
workday from Monday to Friday and a rest day on the weekend.  A third column is a note,
ignored.  ``#`` starts a comment.  The file is checked whole when it is read: every date
in the declared year, no date both a day off and a workday, a make-up workday only on a
Saturday or Sunday; each problem is reported with its line and value.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tierctl.errors import InputError, Problem

HOLIDAY_WORDS = ("休", "假", "放假", "休息", "holiday", "off")
WORKDAY_WORDS = ("班", "上班", "调休上班", "补班", "workday", "work")
YEAR_WORDS = ("年份", "year")
EXAMPLE = "年份,2027 / 2027-01-01,休,元旦 / 2027-02-06~2027-02-12,休,春节 / 2027-02-14,班,春节调休"

_DATE = re.compile(r"^\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s*$")
_SPLIT = re.compile(r"[,，\t]")
_RANGE = re.compile(r"\s*(?:~|～|\.\.|至)\s*")


@dataclass(frozen=True)
class HolidayYear:
    """One year's days off and make-up workdays, from ``path``."""

    year: int
    holidays: frozenset[dt.date]
    workdays: frozenset[dt.date]
    path: Path

    def is_workday(self, day: dt.date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays


def _date(text: str) -> dt.date | None:
    m = _DATE.match(text)
    if not m:
        return None
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise InputError("节假日文件不存在", path=path,
                         hint="检查 tierctl.toml 中 [calendar] file 或 --holidays 给出的路径") from exc
    except OSError as exc:
        raise InputError(f"节假日文件无法读取：{exc.strerror or exc}", path=path) from exc
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    raise InputError("节假日文件不是 UTF-8 或 GBK 编码的文本", path=path, hint="请另存为 UTF-8 文本或 CSV")


def load_holiday_file(path: Path | str) -> HolidayYear:
    """Read and check a holiday file (format: see the module docstring and README).
    Raises :class:`InputError` listing every bad line."""
    path = Path(path)
    text = _read_text(path)
    problems: list[Problem] = []
    year: int | None = None
    entries: list[tuple[int, str, str, list[dt.date]]] = []  # (line, kind, text, days)
    for no, line in enumerate(text.splitlines(), start=1):
        body = line.split("#", 1)[0].strip()
        if not body:
            continue
        cells = [c.strip() for c in _SPLIT.split(body)]
        first = cells[0]
        if first.lower() in YEAR_WORDS:
            value = cells[1] if len(cells) > 1 else ""
            if year is not None:
                problems.append(Problem(no, None, value, "「年份」只能写一次：一个文件只写一年"))
            elif not re.fullmatch(r"\d{4}", value):
                problems.append(Problem(no, None, value, "年份应写成四位数字，如「年份,2027」"))
            else:
                year = int(value)
            continue
        if len(cells) < 2 or not cells[1]:
            problems.append(Problem(no, None, body, "每行应是「日期,休」或「日期,班」（日期段写成 起~止）"))
            continue
        word = cells[1].lower()
        kind = "holiday" if word in HOLIDAY_WORDS else "workday" if word in WORKDAY_WORDS else None
        if kind is None:
            problems.append(Problem(no, None, cells[1], "类型应为「休」（放假）或「班」（调休上班）"))
            continue
        parts = _RANGE.split(first)
        if len(parts) > 2:
            problems.append(Problem(no, None, first, "日期段应写成 起~止，如 2027-02-06~2027-02-12"))
            continue
        ends = [_date(p) for p in parts]
        bad = [p for p, d in zip(parts, ends, strict=True) if d is None]
        if bad:
            problems.append(Problem(no, None, bad[0], "日期无法识别，请写成 2027-01-01"))
            continue
        lo, hi = ends[0], ends[-1]
        assert lo is not None and hi is not None
        if hi < lo:
            problems.append(Problem(no, None, first, "日期段的结束日早于开始日"))
            continue
        days = [lo + dt.timedelta(days=i) for i in range((hi - lo).days + 1)]
        entries.append((no, kind, first, days))
    if year is None and not problems:
        problems.append(Problem(None, None, None, "缺少「年份」行（如「年份,2027」）：一个文件写一年的安排"))
    holidays: dict[dt.date, int] = {}
    workdays: dict[dt.date, int] = {}
    for no, kind, first, days in entries:
        if year is not None:
            outside = [d for d in days if d.year != year]
            if outside:
                problems.append(Problem(no, None, first, f"日期不在文件声明的 {year} 年内"))
                continue
        mine, other = (holidays, workdays) if kind == "holiday" else (workdays, holidays)
        clash = [d for d in days if d in other]
        if clash:
            problems.append(Problem(no, None, first, f"{clash[0].isoformat()} 已在第 {other[clash[0]]} 行写成"
                                    f"{'调休上班' if kind == 'holiday' else '放假'}：同一天不能既放假又上班"))
            continue
        if kind == "workday":
            weekday = [d for d in days if d.weekday() < 5]
            if weekday:
                problems.append(Problem(no, None, first, f"{weekday[0].isoformat()} 是周一至周五，本来就是工作日："
                                        "「班」只用于调休上班的周六、周日"))
                continue
        for d in days:
            mine.setdefault(d, no)
    if problems:
        raise InputError("节假日文件有误", path=path, problems=problems, hint=f"格式示例（每项一行）：{EXAMPLE}")
    assert year is not None
    return HolidayYear(year, frozenset(holidays), frozenset(workdays), path)


def load_holiday_files(paths: Iterable[Path | str]) -> dict[int, HolidayYear]:
    """Several holiday files, one per year, by year."""
    out: dict[int, HolidayYear] = {}
    for p in paths:
        y = load_holiday_file(p)
        if y.year in out:
            raise InputError(f"{y.year} 年的节假日写在了两个文件中：{out[y.year].path} 和 {y.path}", path=y.path,
                             hint="每年只保留一个文件")
        out[y.year] = y
    return out


# -- working days --------------------------------------------------------------------------
class WorkCalendar:
    """Day targets counted in calendar days, or (``working_days``) in working days on
    China's official calendar: public holidays are skipped and the make-up Saturdays and
    Sundays (调休) count.  A target of whole weeks counts 5 working days per week, so
    "weekly" stays a working week.

    Where the days off come from, for each year: the user's holiday file for that year
    (``years``, see :mod:`tierctl.holidays`), else the ``chinese_calendar`` package,
    which only knows the years it was released for; a year neither knows falls back to
    Monday–Friday with one warning that says what to do."""

    def __init__(self, working_days: bool = False, years: dict[int, Any] | None = None) -> None:
        self.working_days = working_days
        self.years = dict(years or {})
        self.warnings: list[str] = []
        self._fallback_years: set[int] = set()

    def is_workday(self, day: dt.date) -> bool:
        own = self.years.get(day.year)
        if own is not None:
            return bool(own.is_workday(day))
        import chinese_calendar

        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            if day.year not in self._fallback_years:
                self._fallback_years.add(day.year)
                self.warnings.append(
                    f"{day.year} 年没有法定节假日数据（chinese_calendar 不含该年，也没有给出该年的节假日文件）："
                    "该年按周一至周五计算工作日，节假日和调休未计入。请按 README「节假日文件」的格式写一份"
                    f" {day.year} 年的节假日文件，在 tierctl.toml 的 [calendar] 中写 file = \"文件路径\"，"
                    "或在命令后加 --holidays 文件路径")
            return day.weekday() < 5

    @staticmethod
    def working_days_for(days: int) -> int:
        """A day target in working days: whole weeks count 5 each (1 周 = 5 个工作日)."""
        return days // 7 * 5 + days % 7

    def add_days(self, start: dt.date, days: int, *, calendar_cap: bool = False) -> dt.date:
        """The date a target of ``days`` days set on ``start`` falls due.  With
        ``calendar_cap`` a target counted in working days never falls later than
        ``days`` calendar days (a customer who must never wait longer, holidays or not)."""
        if not self.working_days:
            return start + dt.timedelta(days=days)
        left = self.working_days_for(days)
        d = start
        while left > 0:
            d += dt.timedelta(days=1)
            if self.is_workday(d):
                left -= 1
        if calendar_cap:
            return min(d, start + dt.timedelta(days=days))
        return d
