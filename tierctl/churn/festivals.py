"""Low-risk upkeep touches (低风险常规维护): the calendar of automatic greetings.

A low-risk customer (churn score 0–40) is not "won back", they are kept warm: a birthday
greeting with a birthday-month coupon, greetings on 春节 / 端午 / 中秋 / 国庆, a service
reminder once they have driven about 5,000 km since the last service, a quarterly gift
and a monthly event invitation.  :func:`touches` lists every such touch that falls in a
date window, one row per (date, customer, kind).

Lunar festivals are converted with the ``lunardate`` package, not a hand-typed table, so
any year 1900–2099 is right (春节 2026 is 2026-02-17, 2027 is 2027-02-06).  All wording,
days and thresholds come from the ``[upkeep]`` section of the churn model file.

Decisions the playbook leaves open (also in the model file's comments):

* A 29 February birthday is greeted on 28 February in non-leap years by default
  (``feb29_birthday = "feb28"``), so the greeting and the "birthday-month coupon" stay
  in the customer's own month; ``"mar1"`` is the alternative.
* The window is ``start`` … ``start + days - 1`` inclusive (``days=1`` is just ``start``).
* A greeting goes out ``lead_days`` before its day (per festival, and for birthdays):
  a 春节 greeting on 春节 itself reaches people already on the road, so the packaged
  model sends festival greetings a few days early and birthdays on the day.  The touch
  is dated the day it is sent; its detail names the festival's own date.
* The mileage reminder is a state, not a date: a customer at or above the threshold gets
  one reminder on the first day of the window.
* A monthly invitation day beyond a month's length (e.g. 31) falls on its last day.
"""

from __future__ import annotations

import calendar
import string
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from lunardate import LunarDate

from tierctl.errors import InputError, Problem, UsageError
from tierctl.models.loader import Section

FEB29_POLICIES = ("feb28", "mar1")
CALENDARS = ("lunar", "solar")
# Order used when several touches fall on the same day for the same customer.
TOUCH_KINDS = ("birthday", "festival", "mileage", "quarterly_gift", "monthly_invitation")
TOUCH_COLUMNS = ["date", "customer_id", "kind", "detail"]


@dataclass(frozen=True)
class Festival:
    """One festival greeting: a fixed lunar or solar month/day, sent ``lead_days`` early."""

    key: str
    label: str
    calendar: str  # "lunar" | "solar"
    month: int
    day: int
    lead_days: int
    detail: str

    def date_in(self, year: int) -> date:
        """The festival's solar date in ``year`` (the lunar year starting in that year)."""
        if self.calendar == "solar":
            return date(year, self.month, self.day)
        try:
            return LunarDate(year, self.month, self.day).to_solar_date()
        except ValueError as exc:
            if year < 1900 or year >= 2100:
                raise UsageError(f"农历换算只支持 1900–2099 年，{year} 年超出范围",
                                 hint="请换一个日期范围") from exc
            # A short lunar month has no day 30: the festival falls on its last day.
            return LunarDate(year, self.month, 29).to_solar_date()


@dataclass(frozen=True)
class UpkeepRules:
    """The ``[upkeep]`` section of the churn model, validated."""

    feb29_birthday: str
    birthday_detail: str
    birthday_lead_days: int
    festivals: tuple[Festival, ...]
    mileage_km: float
    mileage_detail: str
    quarterly_detail: str
    monthly_day: int
    monthly_detail: str

    @classmethod
    def from_section(cls, sec: Section) -> UpkeepRules:
        """Read and check ``[upkeep]``; every problem names the file and key."""
        fests = []
        seen: set[str] = set()
        for f in sec.sections("festivals"):
            key = f.str("key")
            if key in seen:
                raise f.error("key", f"节日「{key}」重复")
            seen.add(key)
            cal = f.choice("calendar", CALENDARS)
            month = f.int("month", min=1, max=12)
            day = f.int("day", min=1, max=30 if cal == "lunar" else 31)
            if cal == "solar":
                try:
                    date(2024, month, day)  # a leap year accepts every real month/day
                except ValueError as exc:
                    raise f.error("day", f"{month} 月没有 {day} 日") from exc
            fests.append(Festival(key, f.str("label"), cal, month, day,
                                  f.int("lead_days", 0, min=0, max=60), f.str("detail")))
        mileage = sec.section("mileage")
        detail = mileage.str("detail")
        check_fields(mileage, "detail", detail, {"km"})
        return cls(
            feb29_birthday=sec.choice("feb29_birthday", FEB29_POLICIES, "feb28"),
            birthday_detail=sec.section("birthday").str("detail"),
            birthday_lead_days=sec.section("birthday").int("lead_days", 0, min=0, max=60),
            festivals=tuple(fests),
            mileage_km=mileage.number("threshold_km", min=0),
            mileage_detail=detail,
            quarterly_detail=sec.section("quarterly_gift").str("detail"),
            monthly_day=sec.section("monthly_invitation").int("day_of_month", min=1, max=31),
            monthly_detail=sec.section("monthly_invitation").str("detail"),
        )


def check_fields(sec: Section, name: str, template: str, allowed: set[str]) -> None:
    """A ``{field}`` template in a model file uses only ``allowed`` fields (else ModelError at ``name``)."""
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise sec.error(name, f"模板格式错误：{exc}") from exc
    bad = fields - allowed
    if bad:
        raise sec.error(name, f"模板里有未知字段 {sorted(bad)}",
                        hint=f"可用字段：{', '.join(sorted(allowed)) or '（无）'}")


def _rules(model: Any) -> UpkeepRules:
    # Accept the whole ChurnModel or just its upkeep rules.
    rules = getattr(model, "upkeep", model)
    if not isinstance(rules, UpkeepRules):
        raise TypeError("model must be a ChurnModel or UpkeepRules")
    return rules


def festival_dates(year: int, model: Any) -> dict[str, date]:
    """Each festival's date in ``year``, e.g. ``{"spring": date(2026, 2, 17), …}``."""
    return {f.key: f.date_in(year) for f in _rules(model).festivals}


def birthday_in_year(month: int, day: int, year: int, feb29: str = "feb28") -> date:
    """The day a birthday is celebrated in ``year`` (29 Feb handled per ``feb29``)."""
    if month == 2 and day == 29 and not calendar.isleap(year):
        return date(year, 3, 1) if feb29 == "mar1" else date(year, 2, 28)
    return date(year, month, day)


def _birthday_dates(months: np.ndarray, days: np.ndarray, year: int, feb29: str) -> np.ndarray:
    """Vectorised :func:`birthday_in_year` → ``datetime64[D]`` for one year."""
    m = months.copy()
    d = days.copy()
    if not calendar.isleap(year):
        leapday = (m == 2) & (d == 29)
        if feb29 == "mar1":
            m[leapday], d[leapday] = 3, 1
        else:
            d[leapday] = 28
    first = np.array([np.datetime64(f"{year:04d}-{mm:02d}", "M") for mm in range(1, 13)])
    return first[m - 1].astype("datetime64[D]") + (d - 1).astype("timedelta64[D]")


def _customer_ids(frame: pd.DataFrame) -> pd.Series:
    if "customer_id" not in frame.columns:
        raise InputError("缺少「客户编号」列，无法安排维护触达", hint="导出表里需要客户编号")
    return frame["customer_id"].astype("string")


def _row_numbers(frame: pd.DataFrame) -> np.ndarray:
    if "_row" in frame.columns:
        return frame["_row"].to_numpy()
    return np.arange(len(frame)) + 2  # a plain export: header on row 1


def _as_dates(frame: pd.DataFrame, col: str, header: str) -> pd.Series:
    s = frame[col]
    if pd.api.types.is_datetime64_any_dtype(s):
        return s
    parsed = pd.to_datetime(s, errors="coerce")
    bad = parsed.isna() & s.notna() & (s.astype("string").str.strip() != "")
    if bad.any():
        rows = _row_numbers(frame)[bad.to_numpy()]
        vals = s[bad].tolist()
        raise InputError(f"「{header}」有无法识别的日期", problems=[
            Problem(int(r), header, v, "不是日期，请写成 2026-11-23 这样") for r, v in zip(rows, vals, strict=True)])
    return parsed


def _as_numbers(frame: pd.DataFrame, col: str, header: str) -> np.ndarray:
    s = frame[col]
    num = pd.to_numeric(s, errors="coerce")
    bad = num.isna() & s.notna() & (s.astype("string").str.strip() != "")
    if bad.any():
        rows = _row_numbers(frame)[bad.to_numpy()]
        raise InputError(f"「{header}」有不是数字的值", problems=[
            Problem(int(r), header, v, "应为数字（公里）") for r, v in zip(rows, s[bad].tolist(), strict=True)])
    return num.to_numpy(dtype=float, na_value=np.nan)


def _cross(dates: list[date], ids: np.ndarray, kind: str, details: list[str]) -> pd.DataFrame:
    """Every customer on each of ``dates`` (one detail text per date)."""
    if not dates or len(ids) == 0:
        return pd.DataFrame(columns=TOUCH_COLUMNS)
    n = len(ids)
    return pd.DataFrame({
        "date": np.repeat(np.array(dates, dtype="datetime64[D]"), n),
        "customer_id": np.tile(ids, len(dates)),
        "kind": kind,
        "detail": np.repeat(np.array(details, dtype=object), n),
    })


def _birthday_touches(frame: pd.DataFrame, ids: np.ndarray, rules: UpkeepRules, start: date,
                      end: date) -> list[pd.DataFrame]:
    """Birthdays: each customer's month/day in every year the window touches (sent
    lead_days early, so a January birthday may be greeted in the December before)."""
    parts: list[pd.DataFrame] = []
    bd = _as_dates(frame, "birthday", "生日")
    has = bd.notna().to_numpy()
    if has.any():
        months = bd.dt.month.to_numpy()[has].astype(np.int64)
        mdays = bd.dt.day.to_numpy()[has].astype(np.int64)
        bids = ids[has]
        lo, hi = np.datetime64(start, "D"), np.datetime64(end, "D")
        lead = np.timedelta64(rules.birthday_lead_days, "D")
        for y in range(start.year, end.year + (2 if rules.birthday_lead_days else 1)):
            when = _birthday_dates(months, mdays, y, rules.feb29_birthday) - lead
            inside = (when >= lo) & (when <= hi)
            if inside.any():
                parts.append(pd.DataFrame({"date": when[inside], "customer_id": bids[inside],
                                           "kind": "birthday", "detail": rules.birthday_detail}))
    return parts


def touches(customers_frame: pd.DataFrame, start: date, days: int, model: Any, *,
            only_low: bool = True) -> pd.DataFrame:
    """All upkeep touches from ``start`` for ``days`` days (inclusive window).

    ``customers_frame`` needs ``customer_id``; ``birthday`` and ``mileage_since_service``
    are used when present.  When it carries the churn result's ``level_key`` column and
    ``only_low`` is true, only low-risk (``"low"``) customers are kept: the others are in
    an active win-back and get their own plan instead of routine greetings.

    Returns a frame with columns ``date`` (datetime64), ``customer_id``, ``kind`` (one of
    :data:`TOUCH_KINDS`) and ``detail``, sorted by date, customer and kind.
    """
    if days < 0:
        raise UsageError(f"天数不能为负数（{days}）")
    rules = _rules(model)
    frame = customers_frame
    if only_low and "level_key" in frame.columns:
        frame = frame[frame["level_key"] == "low"]
    end = start + timedelta(days=days - 1)  # inclusive
    if days == 0 or len(frame) == 0:
        return pd.DataFrame(columns=TOUCH_COLUMNS).astype({"date": "datetime64[ns]"})
    ids_s = _customer_ids(frame)
    ids = ids_s.to_numpy(dtype=object)
    years = range(start.year, end.year + 1)
    parts: list[pd.DataFrame] = []

    if "birthday" in frame.columns:
        parts += _birthday_touches(frame, ids, rules, start, end)

    # Festivals: lunar ones via lunardate; the touch goes out lead_days before the day.
    fdates, fdetails = [], []
    for y in range(start.year - 1, end.year + 2):  # lead days can cross a year end
        for f in rules.festivals:
            day = f.date_in(y)
            send = day - timedelta(days=f.lead_days)
            if start <= send <= end:
                fdates.append(send)
                on = "" if f.lead_days == 0 else f"（{day.isoformat()}）"
                fdetails.append(f"{f.label}{on}：{f.detail}")
    parts.append(_cross(fdates, ids, "festival", fdetails))

    # Mileage: a state, so one reminder on the first day of the window.
    if "mileage_since_service" in frame.columns:
        km = _as_numbers(frame, "mileage_since_service", "距上次保养里程")
        due = ~np.isnan(km) & (km >= rules.mileage_km)
        if due.any():
            kms = np.floor(km[due]).astype(np.int64).astype(str)
            parts.append(pd.DataFrame({
                "date": np.datetime64(start, "D"), "customer_id": ids[due], "kind": "mileage",
                "detail": [rules.mileage_detail.format(km=k) for k in kms]}))

    # Quarterly gift on the first day of each quarter; monthly invitation on a set day.
    qdates = [date(y, m, 1) for y in years for m in (1, 4, 7, 10) if start <= date(y, m, 1) <= end]
    parts.append(_cross(qdates, ids, "quarterly_gift", [rules.quarterly_detail] * len(qdates)))
    mdates = []
    for y in years:
        for m in range(1, 13):
            d = date(y, m, min(rules.monthly_day, calendar.monthrange(y, m)[1]))
            if start <= d <= end:
                mdates.append(d)
    parts.append(_cross(mdates, ids, "monthly_invitation", [rules.monthly_detail] * len(mdates)))

    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=TOUCH_COLUMNS).astype({"date": "datetime64[ns]"})
    out = pd.concat(parts, ignore_index=True)
    out["date"] = out["date"].astype("datetime64[ns]")
    out["customer_id"] = out["customer_id"].astype("string")
    order = out["kind"].map({k: i for i, k in enumerate(TOUCH_KINDS)})
    out = (out.assign(_k=order).sort_values(["date", "customer_id", "_k"], kind="stable")
           .drop(columns="_k").reset_index(drop=True))
    return out[TOUCH_COLUMNS]
