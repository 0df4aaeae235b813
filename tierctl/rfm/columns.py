"""The visit columns as arrays, checked: ids as text, dates as whole days, amounts as
floats, KOL as booleans (bad values raise :class:`InputError` naming column and value)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from tierctl.errors import InputError, Problem
from tierctl.rfm.model import _ALWAYS_REQUIRED

_NAT_DAY = np.iinfo(np.int64).min
_EPOCH = date(1970, 1, 1)
_TICKS_PER_DAY = {"D": 1, "h": 24, "m": 1440, "s": 86_400, "ms": 86_400_000,
                  "us": 86_400_000_000, "ns": 86_400_000_000_000}


def _date_to_day(d: date) -> int:
    return (d - _EPOCH).days


def _days_to_iso(days: np.ndarray) -> list[str]:
    return [str(d) for d in days.astype("datetime64[D]")]


def _require_columns(visits: pd.DataFrame, unit_col: str) -> None:
    needed = list(dict.fromkeys([unit_col, *_ALWAYS_REQUIRED]))
    missing = [c for c in needed if c not in visits.columns]
    if missing:
        hint = ("按车辆统计需要「车架号/VIN」列；或在模型里改用 unit = \"owner\""
                if "vin" in missing else "检查导出文件的表头，或用列映射文件指明对应列")
        raise InputError("缺少 RFM 需要的列：" + "、".join(missing), hint=hint)


def _as_text(s: pd.Series) -> pd.Series:
    # Ids must stay text (leading zeros); ingest already gives strings, library callers may not.
    if isinstance(s.dtype, pd.StringDtype):
        return s
    return s.astype("str")


def _to_days(s: pd.Series) -> np.ndarray:
    """Whole days since 1970-01-01 as int64 (``_NAT_DAY`` where the date is missing)."""
    if not pd.api.types.is_datetime64_any_dtype(s.dtype):
        try:
            s = pd.to_datetime(s, errors="raise")
        except (ValueError, TypeError) as exc:
            raise InputError("到店日期列含有无法识别的日期",
                             hint="日期请写成 2026-11-23 这样的格式；用 tierctl 读取导出文件时"
                                  "会自动识别 Excel 日期和 2026/11/23、2026年11月23日 等写法") from exc
    if getattr(s.dt, "tz", None) is not None:
        s = s.dt.tz_localize(None)  # wall-clock date where the visit happened
    arr = s.to_numpy()
    unit, step = np.datetime_data(arr.dtype)
    per_day = _TICKS_PER_DAY[unit] // step
    ints = arr.view(np.int64)
    # floor division keeps times of day on their date, also before 1970
    return np.where(np.isnat(arr), _NAT_DAY, ints // per_day)


def _to_float(s: pd.Series) -> np.ndarray:
    if not pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        converted = pd.to_numeric(s, errors="coerce")
        bad = converted.isna() & s.notna()
        if bad.any():
            pos = np.flatnonzero(bad.to_numpy())[:20]
            raise InputError("金额列含有不是数字的值", problems=[
                Problem(None, "amount", s.iloc[i], "应为数字") for i in pos], total=int(bad.sum()),
                hint="金额只能是数字，退款写负数")
        s = converted
    return s.to_numpy(dtype=np.float64, na_value=np.nan)


def _to_bool(s: pd.Series) -> np.ndarray:
    # empty = not a KOL: the flag is opt-in, a blank cell says nothing about influence
    if not pd.api.types.is_bool_dtype(s.dtype):
        try:
            s = s.astype("boolean")
        except (TypeError, ValueError) as exc:
            raise InputError("KOL 列应为是/否", hint=str(exc)) from exc
    return s.to_numpy(dtype=bool, na_value=False)
