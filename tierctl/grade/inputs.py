"""Reading the cells of a grading export and of its overrides: numbers, dates and ids
checked cell by cell, every bad cell a :class:`Problem` with its Excel row.  Pure."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tierctl.errors import InputError, Problem
from tierctl.io.ingest import ColumnSpec

if TYPE_CHECKING:
    from tierctl.grade.model import GradeModel


def _fmt_num(v: float | None) -> str:
    """A number as a manager writes it: 3000, 2.5, 1.83 (at most 2 decimals)."""
    if v is None or v != v:
        return "空"
    t = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if t == "-0" else t


def _as_date(d: date | datetime | pd.Timestamp | str) -> date:
    if isinstance(d, pd.Timestamp):
        return d.date()
    if isinstance(d, datetime):
        return d.date()
    if isinstance(d, date):
        return d
    return pd.Timestamp(d).date()


def _excel_rows(frame: pd.DataFrame) -> np.ndarray:
    """Excel row numbers (object array; ``None`` when the frame did not come from ingest)."""
    if "_row" in frame.columns:
        return frame["_row"].astype(object).to_numpy()
    return np.full(len(frame), None, dtype=object)


def _customer_ids(frame: pd.DataFrame, rows: np.ndarray, path: str | Path | None) -> pd.Series:
    """The customer ids as a string Series (positional index); blank or duplicated → error."""
    if "customer_id" not in frame.columns:
        raise InputError("导出中没有客户编号列", path=path,
                         hint="表头写成 客户编号 / 客户ID / customer_id 之一")
    s = frame["customer_id"].astype("string").str.strip().reset_index(drop=True)
    problems: list[Problem] = []
    blank = (s.isna() | (s == "")).to_numpy(dtype=bool)
    for r in rows[blank][:20].tolist():
        problems.append(Problem(r, "客户编号", None, "客户编号为空"))
    dup = s.duplicated(keep=False).to_numpy(dtype=bool) & ~blank
    if dup.any():
        for r, v in zip(rows[dup][:20].tolist(), s[dup][:20].tolist(), strict=True):
            problems.append(Problem(r, "客户编号", v, "客户编号重复（同一客户出现多行，请合并或删除重复行）"))
    if problems:
        raise InputError("客户编号有问题", path=path, problems=problems,
                         total=int(blank.sum() + dup.sum()))
    return s


def _numeric(frame: pd.DataFrame, col: str, spec: ColumnSpec, label: str,
             rows: np.ndarray, problems: list[Problem]) -> np.ndarray:
    """A column as float64 with NaN for blanks; bad cells appended to ``problems``."""
    s = frame[col]
    if pd.api.types.is_bool_dtype(s.dtype) or not pd.api.types.is_numeric_dtype(s.dtype):
        text = s.astype("string").str.strip()
        conv = pd.to_numeric(text.replace("", pd.NA), errors="coerce")
        bad = (conv.isna() & text.notna() & (text != "")).to_numpy(dtype=bool)
        for r, v in zip(rows[bad][:20].tolist(), text[bad][:20].tolist(), strict=True):
            problems.append(Problem(r, label, v, "不是数字"))
        v = conv.to_numpy(dtype=float, na_value=np.nan)
    else:
        v = s.to_numpy(dtype=float, na_value=np.nan).copy()
    with np.errstate(invalid="ignore"):
        inf = np.isinf(v)
        low = v < float(spec.min) if spec.min is not None else np.zeros(len(v), bool)
        high = v > float(spec.max) if spec.max is not None else np.zeros(len(v), bool)
    for mask, msg in ((inf, "不是有限的数字"), (low, f"不能小于 {spec.min}"), (high, f"不能大于 {spec.max}")):
        if mask.any():
            for r, val in zip(rows[mask][:20].tolist(), v[mask][:20].tolist(), strict=True):
                problems.append(Problem(r, label, _fmt_num(val), msg))
    v[inf] = np.nan
    return v


def _years_since(frame: pd.DataFrame, col: str, label: str, as_of: date,
                 rows: np.ndarray, problems: list[Problem]) -> np.ndarray:
    """Completed calendar months from the date to ``as_of``, ÷ 12; NaN for blank dates."""
    s = frame[col]
    if not pd.api.types.is_datetime64_any_dtype(s.dtype):
        parsed = pd.to_datetime(s, errors="coerce")
        bad = (parsed.isna() & s.notna()).to_numpy(dtype=bool)
        for r, v in zip(rows[bad][:20].tolist(), s[bad][:20].tolist(), strict=True):
            problems.append(Problem(r, label, v, "不是日期"))
        s = parsed
    if getattr(s.dt, "tz", None) is not None:
        s = s.dt.tz_localize(None)
    d = s.to_numpy(dtype="datetime64[D]")
    nat = np.isnat(d)
    month = d.astype("datetime64[M]")
    day = (d - month.astype("datetime64[D]")).astype(np.int64) + 1
    a = np.datetime64(as_of, "D")
    a_month = a.astype("datetime64[M]")
    a_day = int((a - a_month.astype("datetime64[D]")).astype(np.int64)) + 1
    months = (a_month - month).astype(np.int64) - (a_day < day)
    future = (d > a) & ~nat
    for r, v in zip(rows[future][:20].tolist(), d[future][:20].tolist(), strict=True):
        problems.append(Problem(r, label, str(v), f"晚于评估日 {as_of.isoformat()}（检查日期，或用 --as-of 指定评估日）"))
    out = months.astype(float) / 12
    out[nat] = np.nan
    return out



def _validate_overrides(ov: pd.DataFrame, model: GradeModel, as_of: date, ids: pd.Series,
                        path: str | Path | None, warnings: list[str]) -> pd.DataFrame:
    """Check override rows; return those in force, one per graded customer.

    Columns added: ``_pos`` (position in the graded frame), ``_rank`` (grade, 0 =
    lowest), ``_by``, ``_at_iso``.
    """
    need = [c for c in ("customer_id", "grade", "reason") if c not in ov.columns]
    if need:
        raise InputError(f"人工调整缺少列：{', '.join(need)}", path=path,
                         hint="人工调整需要 客户编号、等级、原因 三列")
    ov = ov.copy()
    rows = _excel_rows(ov)
    problems: list[Problem] = []
    cid = ov["customer_id"].astype("string").str.strip()
    reason = ov["reason"].astype("string").str.strip()
    ov["customer_id"] = cid
    ov["reason"] = reason
    ranks = [model.rank(g) for g in ov["grade"].tolist()]
    options = "、".join(model.grade_names)
    for r, c, g, rk, why in zip(rows.tolist(), cid.tolist(), ov["grade"].tolist(), ranks,
                                reason.tolist(), strict=True):
        who = f"客户 {c} " if c is not pd.NA and c else ""
        if c is pd.NA or not c:
            problems.append(Problem(r, "客户编号", None, "人工调整的客户编号为空"))
        if rk is None:
            problems.append(Problem(r, "等级", None if g is pd.NA else g, f"{who}不是有效等级，可选：{options}"))
        if why is pd.NA or not why:
            problems.append(Problem(r, "原因", None, f"{who}人工调整必须写明原因"))
    at = _timestamps(ov, "at", rows, problems)
    until = _timestamps(ov, "until", rows, problems)
    if problems:
        raise InputError("人工调整有问题", path=path, problems=problems,
                         hint="每条人工调整都要有客户编号、有效等级和原因")

    ov["_rank"] = ranks
    by = ov["by"].astype("string").str.strip() if "by" in ov.columns else pd.Series(pd.NA, index=ov.index)
    ov["_by"] = [None if (b is pd.NA or not b) else b for b in by.tolist()]
    ov["_at"] = at
    ov["_at_iso"] = [None if pd.isna(t) else t.isoformat() for t in at.tolist()]

    # decided after the as-of date, or expired before it: not in force for this grading
    later = np.array([not pd.isna(t) and t.date() > as_of for t in at.tolist()], dtype=bool)
    expired = np.array([not pd.isna(t) and t.date() < as_of for t in until.tolist()], dtype=bool)
    for mask, text in ((later, f"晚于评估日 {as_of.isoformat()} 才作出，本次不生效"),
                       (expired, f"已于评估日 {as_of.isoformat()} 前到期，本次不生效")):
        if mask.any():
            warnings.append(f"{int(mask.sum())} 条人工调整{text}：" + _some(ov.loc[mask, "customer_id"]))
    ov = ov[~(later | expired)]

    # several in force for one customer: the latest decision wins; a tie (or no times at
    # all) cannot be resolved without letting row order decide, so it is an error
    if ov["customer_id"].duplicated().any():
        latest = ov.groupby("customer_id")["_at"].transform("max")
        top = ov[(ov["_at"] == latest) | (ov["_at"].isna() & latest.isna())]
        clash = top["customer_id"].duplicated(keep=False)
        if clash.any():
            bad = [Problem(r, "客户编号", c, "同一客户有多条人工调整且时间相同（或都没写时间），无法判断以哪条为准")
                   for r, c in zip(_excel_rows(top[clash]).tolist(), top.loc[clash, "customer_id"].tolist(),
                                   strict=True)]
            raise InputError("人工调整有冲突", path=path, problems=bad, hint="删除多余的一条，或写明调整时间")
        ov = top

    pos = pd.Index(ids).get_indexer(ov["customer_id"].to_numpy(dtype=object))
    unknown = pos < 0
    if unknown.any():
        warnings.append(f"{int(unknown.sum())} 条人工调整的客户不在本次导出中，未生效：" + _some(ov.loc[unknown, "customer_id"]))
    ov = ov[~unknown].copy()
    ov["_pos"] = pos[~unknown]
    return ov


def _timestamps(ov: pd.DataFrame, col: str, rows: np.ndarray, problems: list[Problem]) -> pd.Series:
    if col not in ov.columns:
        return pd.Series(pd.NaT, index=ov.index, dtype="datetime64[ns]")
    s = ov[col]
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return s
    blank = s.isna() | (s.astype("string").str.strip() == "")
    try:
        parsed = pd.to_datetime(s.where(~blank), errors="coerce", format="mixed")
    except ValueError:  # times with different UTC offsets: compare them on one clock
        parsed = pd.to_datetime(s.where(~blank), errors="coerce", format="mixed", utc=True)
    bad = (parsed.isna() & ~blank).to_numpy(dtype=bool)
    label = {"at": "调整时间", "until": "有效期至"}[col]
    for r, v in zip(rows[bad].tolist(), s[bad].tolist(), strict=True):
        problems.append(Problem(r, label, v, "不是日期/时间"))
    return parsed


def _some(ids: pd.Series, k: int = 10) -> str:
    vals = sorted(str(x) for x in ids.tolist())
    more = f" 等 {len(vals)} 位" if len(vals) > k else ""
    return "、".join(vals[:k]) + more

