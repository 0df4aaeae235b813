"""Typing the input columns of a churn run: every declared column present becomes the
numbers, dates, texts or yes/no flags the signals read, with all bad cells (and every
empty or duplicated customer id) reported at once, naming row, column and value."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tierctl.churn.signals import _Ctx, _fmt_num
from tierctl.errors import InputError, Problem

if TYPE_CHECKING:
    from tierctl.churn.model import ChurnModel


def check_ids(ids: pd.Series, rows: np.ndarray, header: str, path: Path | str | None) -> None:
    """Empty or duplicated customer ids stop the run (merging would mix two people)."""
    problems = [Problem(int(r), header, None, "客户编号为空")
                for r in rows[ids.isna().to_numpy() | (ids.str.strip() == "").fillna(True).to_numpy()]]
    dup = ids.duplicated(keep=False).fillna(False).to_numpy(dtype=bool) & ids.notna().to_numpy()
    if dup.any():
        first_row = pd.Series(rows[dup]).groupby(ids[dup].to_numpy()).transform("min").to_numpy()
        for r, v, f in zip(rows[dup], ids[dup].tolist(), first_row, strict=True):
            if r != f:
                problems.append(Problem(int(r), header, v, f"与第 {f} 行客户编号重复"))
    if problems:
        raise InputError("客户编号有问题", problems=problems, path=path,
                         hint="每位客户一行；重复的行不会被自动合并，请在导出表里核对")


def _prepare(frame: pd.DataFrame, model: ChurnModel, as_of: date, rows: np.ndarray,
             headers: Mapping[str, str], path: Path | str | None = None) -> _Ctx:
    """Type every declared column present and check ranges; all bad cells in one error."""
    problems: list[Problem] = []
    numbers: dict[str, np.ndarray] = {}
    dates: dict[str, np.ndarray] = {}
    texts: dict[str, pd.Series] = {}
    flags: dict[str, np.ndarray] = {}

    def bad(mask: np.ndarray, col: str, values: pd.Series, msg: str) -> None:
        for r, v in zip(rows[mask], values[mask].tolist(), strict=True):
            problems.append(Problem(int(r), headers[col], v, msg))

    for col, spec in model.columns.items():
        if col not in frame.columns:
            continue
        s = frame[col].reset_index(drop=True)
        present = s.notna().to_numpy().copy()
        if pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s):
            # only text cells can be "present but blank"; typed columns skip the cost
            present &= (s.astype("string").str.strip() != "").fillna(False).to_numpy(dtype=bool)
        if spec.kind in ("number", "int"):
            num = pd.to_numeric(s, errors="coerce") if not pd.api.types.is_numeric_dtype(s) else s
            x = num.to_numpy(dtype=float, na_value=np.nan)
            notnum = present & np.isnan(x)
            if notnum.any():
                bad(notnum, col, s, "应为数字")
            inf = np.isinf(x)
            if inf.any():
                bad(inf, col, s, "应为有限的数字")
                x = np.where(inf, np.nan, x)
            lo, hi = model.ranges.get(col, (None, None))
            ok = ~np.isnan(x)
            if lo is not None or hi is not None:
                out = ok & (((x < lo) if lo is not None else False) | ((x > hi) if hi is not None else False))
                if out.any():
                    span = f"{'' if lo is None else _fmt_num(np.array([lo]))[0]}–{'' if hi is None else _fmt_num(np.array([hi]))[0]}"
                    bad(out, col, s, f"超出允许范围 {span}，请改正这一格" if hi is not None
                        else f"不能小于 {_fmt_num(np.array([lo]))[0]}，请改正这一格")
            numbers[col] = x
        elif spec.kind == "date":
            d = s if pd.api.types.is_datetime64_any_dtype(s) else pd.to_datetime(s, errors="coerce")
            arr = d.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
            notdate = present & np.isnat(arr)
            if notdate.any():
                bad(notdate, col, s, "不是日期，请写成 2026-11-23 这样")
            dates[col] = arr
        elif spec.kind == "bool":
            flags[col], notbool = _to_flags(s)
            if notbool.any():
                bad(notbool, col, s, "应为 是/否")
        else:
            texts[col] = s.astype("string")
    if problems:
        raise InputError("导出表里有无法使用的值", problems=problems, path=path,
                         hint="改正这些格子后重新运行；空着的格子会被当作“未知”")
    return _Ctx(len(frame), as_of, numbers, dates, texts, flags)


_TRUE = {"是", "有", "y", "yes", "true", "t", "1", "✓", "√", "未解决"}
_FALSE = {"否", "无", "没有", "n", "no", "false", "f", "0", "已解决"}


def _to_flags(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(true mask, unreadable mask) for a yes/no column in any of the usual spellings."""
    if pd.api.types.is_bool_dtype(s):
        return s.fillna(False).to_numpy(dtype=bool), np.zeros(len(s), dtype=bool)
    t = s.astype("string").str.strip().str.lower()
    yes = t.isin(_TRUE).fillna(False).to_numpy(dtype=bool)
    no = t.isin(_FALSE).fillna(False).to_numpy(dtype=bool)
    empty = t.isna().to_numpy() | (t == "").fillna(True).to_numpy(dtype=bool)
    return yes, ~(yes | no | empty)

