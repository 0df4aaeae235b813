"""Typing one text column of an export: numbers (with 万/千 and units), dates (many
spellings), yes/no words and text — every value that is not understood is reported with
its row."""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from tierctl.io.ingest import ColumnSpec

TRUE_WORDS = {"是", "有", "y", "yes", "true", "1", "√", "✓", "✔", "是的", "t", "对"}
FALSE_WORDS = {"否", "无", "没有", "n", "no", "false", "0", "×", "✗", "f", "不是"}


# -- conversion ------------------------------------------------------------------------
_NUM_CLEAN = re.compile(r"^\s*([-+]?\d[\d,，]*(?:\.\d+)?)\s*(万|w|W|千|k|K)?\s*(天|日|人|次|个|元|公里|km|KM|分)?\s*$")
_MULT = {"万": 10000, "w": 10000, "W": 10000, "千": 1000, "k": 1000, "K": 1000}


def convert(col: pd.Series, spec: ColumnSpec) -> tuple[pd.Series, list[tuple[int, str, str]]]:
    """Convert one text column to ``spec.kind``; return it and (position, value, message)
    for every cell that could not be read."""
    if spec.kind == "text":
        fast = _arrow_text(col)
        if fast is not None:
            return fast, []
    elif spec.kind in ("date", "bool"):
        typed = _arrow_typed(col, spec)
        if typed is not None:
            return typed, []
    plain = _arrow_typed(col, spec) if spec.kind in ("int", "number") else None
    if plain is None:
        stripped = _strip(col)
        empty = (stripped == "") | stripped.isna()
    if spec.kind == "text":
        return stripped.where(~empty, None).astype("str"), []
    if spec.kind in ("int", "number"):
        vals, errs = (plain, []) if plain is not None else parse_numbers(stripped, empty, spec)
        endless = np.isinf(vals.to_numpy(dtype=float, na_value=np.nan))
        if endless.any():  # "inf", "-Infinity", 1e999: no amount or count is endless
            for i in np.flatnonzero(endless):
                errs.append((int(i), col.iloc[i], "应为数字"))
            vals = vals.where(~endless, np.nan)
        if spec.kind == "int":
            whole = vals.isna() | (vals == np.floor(vals))
            for i in np.flatnonzero(~whole.to_numpy()):
                errs.append((int(i), col.iloc[i], "应为整数"))
            vals = vals.where(whole, np.nan).round()
            res = vals.astype("Int64")
        else:
            res = vals.astype("Float64")
        if spec.min is not None or spec.max is not None:
            v = vals.to_numpy(dtype=float, na_value=np.nan)
            lo = spec.min if spec.min is not None else -np.inf
            hi = spec.max if spec.max is not None else np.inf
            out_of = ~np.isnan(v) & ((v < lo) | (v > hi))
            for i in np.flatnonzero(out_of):
                errs.append((int(i), col.iloc[i], f"超出允许范围 {_fmt(spec.min)}–{_fmt(spec.max)}"))
        errs.sort()
        return res, errs
    if spec.kind == "date":
        res, bad = parse_dates(stripped, empty)
        errs = [(int(i), col.iloc[i], "不是可识别的日期（可用 2026-11-23、2026/11/23、2026年11月23日 或 Excel 日期）")
                for i in np.flatnonzero(bad)]
        return res, errs
    if spec.kind == "bool":
        low = stripped.str.lower()
        t = low.isin(TRUE_WORDS)
        f = low.isin(FALSE_WORDS) | empty
        bad = ~(t | f)
        res = pd.Series(pd.array(np.where(t, True, False), dtype="boolean"), index=col.index)
        res[empty.to_numpy()] = pd.NA
        errs = [(int(i), col.iloc[i], "应为 是/否") for i in np.flatnonzero(bad.to_numpy())]
        return res, errs
    raise AssertionError(spec.kind)


def _arrow_text(col: pd.Series) -> pd.Series | None:
    """A text column read by Arrow, trimmed and with blanks as missing, without leaving
    Arrow (what the pandas path below does, about three times faster); None for any
    other column."""
    arr = getattr(col.array, "_pa_array", None)
    if arr is None:
        return None
    import pyarrow as pa
    import pyarrow.compute as pc

    if _needs_trim(arr, pc):
        trimmed = pc.utf8_trim_whitespace(arr)  # what pandas' str.strip() runs on Arrow text
    else:  # nothing to trim (the usual export): the column keeps the reader's buffers, no copy
        trimmed = arr
    blank = _arrow_blank(trimmed, pc)
    if pc.any(blank).as_py():  # (an id column seldom has blanks: then no second copy of its text)
        trimmed = pc.if_else(blank, pa.scalar(None, trimmed.type), trimmed)
    return pd.Series(trimmed, index=col.index, dtype=pd.StringDtype("pyarrow", na_value=np.nan))


def one_chunk_each(frame: pd.DataFrame) -> None:
    """Each Arrow text column of ``frame`` as one contiguous array, in place, a column at
    a time (the reader leaves one piece per block it parsed).  Taking rows from a column
    in pieces joins them again on every call: the score CSV, written a slice at a time
    in urgency order, took five times longer per column.  Values do not change."""
    for name in frame.columns:
        arr = getattr(frame[name].array, "_pa_array", None)
        if arr is not None and arr.num_chunks > 1:
            frame[name] = pd.Series(arr.combine_chunks(), index=frame.index, dtype=frame[name].dtype)


def _strip(col: pd.Series) -> pd.Series:
    """``col.str.strip()``, but an Arrow column with nothing to trim is returned as it is
    (a date or amount column of millions of cells is then not copied)."""
    arr = getattr(col.array, "_pa_array", None)
    if arr is not None:
        import pyarrow.compute as pc

        if not _needs_trim(arr, pc):
            return col
    return col.str.strip()


def _arrow_blank(arr, pc):
    """Per cell of Arrow text: empty (a length of 0; twenty times faster than comparing
    with "").  Missing cells stay missing."""
    return pc.equal(pc.binary_length(arr), 0)


def is_empty_text(s: pd.Series) -> np.ndarray:
    """Per cell: the text is "" (no trim) — what ``(s == "")`` gives (a missing cell of
    Arrow text is not ""), without Arrow's slow comparison with a string."""
    arr = getattr(s.array, "_pa_array", None)
    if arr is None or s.dtype != pd.StringDtype("pyarrow", na_value=np.nan):
        return (s == "").to_numpy(dtype=bool, na_value=True)
    import pyarrow.compute as pc

    return pc.fill_null(_arrow_blank(arr, pc), False).to_numpy(zero_copy_only=False)


def _arrow_typed(col: pd.Series, spec: ColumnSpec) -> pd.Series | None:
    """A number, date or yes/no column read by Arrow where every cell is plainly spelt
    (no spaces around it, ``2026-11-23``, a plain number, one of the yes/no words as
    written): typed in Arrow without trimming a copy first (numbers as float, for the
    whole-number and range checks of :func:`convert`).  None when any cell is not — the
    careful path then trims, types and reports every bad cell."""
    arr = getattr(col.array, "_pa_array", None)
    if arr is None:
        return None
    import pyarrow as pa
    import pyarrow.compute as pc

    empty = pc.fill_null(_arrow_blank(arr, pc), True)
    # (a column without an empty or missing cell, the usual export, is not copied)
    blanked = pc.if_else(empty, pa.scalar(None, arr.type), arr) if pc.any(empty).as_py() else arr
    try:
        if spec.kind in ("int", "number"):
            # only what the careful path reads as the same number: Arrow's cast would also take
            # 1e5, nan, inf and .5, which an export means as text (and the careful path reports)
            plain = pc.match_substring_regex(blanked, r"^[-+]?[0-9]+(?:\.[0-9]+)?$")
            if not pc.all(pc.fill_null(plain, True)).as_py():
                return None
            return pd.Series(pc.cast(blanked, pa.float64()).to_numpy(zero_copy_only=False), index=col.index)
        if spec.kind == "date":
            ns = pc.cast(pc.cast(blanked, pa.date32()), pa.timestamp("ns"))
            return pd.Series(ns.to_numpy(zero_copy_only=False), index=col.index).astype("datetime64[ns]")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    true = pc.is_in(blanked, value_set=pa.array(sorted(TRUE_WORDS), arr.type))
    false = pc.is_in(blanked, value_set=pa.array(sorted(FALSE_WORDS), arr.type))
    if not pc.all(pc.or_(pc.or_(true, false), empty)).as_py():
        return None
    res = pd.Series(pd.array(true.to_numpy(zero_copy_only=False), dtype="boolean"), index=col.index)
    res[empty.to_numpy(zero_copy_only=False)] = pd.NA
    return res


def _needs_trim(arr, pc) -> bool:
    """Whether some cell starts or ends with whitespace (as Arrow's trim defines it).
    A look at the bytes first finds the cells that might (first or last byte a space or
    a control, or the lead byte of a multi-byte space: U+0085, U+00A0, U+1680, U+2000–,
    U+3000); Arrow then looks at just those cells' first and last character."""
    import pyarrow as pa

    for chunk in arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]:
        cand = _edge_candidates(chunk)
        if cand is None:
            cand = np.arange(len(chunk))
        if not len(cand):
            continue
        few = chunk.take(pa.array(cand))
        for edge in (pc.utf8_slice_codeunits(few, 0, 1), pc.utf8_slice_codeunits(few, -1, 2**31 - 1)):
            if pc.any(pc.utf8_is_space(edge)).as_py():
                return True
    return False


_SPACE_LEADS = np.array([0xC2, 0xE1, 0xE2, 0xE3], dtype=np.uint8)  # the UTF-8 lead bytes of non-ASCII spaces


def _edge_candidates(chunk) -> np.ndarray | None:
    """Positions of the cells of one Arrow text array that might start or end with a
    space (a superset, from the bytes); None for an array type this does not read."""
    from tierctl.kernels.arrow_text import text_bytes

    layout = text_bytes(chunk)
    if layout is None:
        return None
    start, end, data = layout
    if not data.size:  # (no text in any cell)
        return np.zeros(0, dtype=np.int64)
    length = end - start
    full = length > 0
    first = np.where(full, data[np.where(full, start, 0)], 0x61)
    last = np.where(full, data[np.where(full, end - 1, 0)], 0x61)
    two = length >= 2
    before = np.where(two, data[np.where(two, end - 2, 0)], 0)
    three = length >= 3
    before2 = np.where(three, data[np.where(three, end - 3, 0)], 0)
    maybe = (first <= 0x20) | np.isin(first, _SPACE_LEADS) | (last <= 0x20) | (before == 0xC2) \
        | np.isin(before2, _SPACE_LEADS[1:])
    return np.flatnonzero(maybe)


def _fmt(v: float | None) -> str:
    if v is None:
        return "∞"
    return str(int(v)) if float(v).is_integer() else str(v)


def _fast_float(s: pd.Series, empty: pd.Series) -> pd.Series | None:
    """Arrow's cast when every non-empty cell is a plain number (the usual case)."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        arr = pa.array(s.to_numpy(dtype=object, na_value=None), pa.string()) if not hasattr(s.array, "_pa_array") \
            else s.array._pa_array
        blank = pc.equal(arr, "")
        if pc.any(blank).as_py():  # (no copy of the text when no cell is blank)
            arr = pc.if_else(blank, pa.scalar(None, arr.type), arr)
        return pd.Series(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), index=s.index)
    except Exception:  # any non-numeric cell: take the careful path
        return None


def parse_numbers(s: pd.Series, empty: pd.Series, spec: ColumnSpec) -> tuple[pd.Series, list]:
    fast = _fast_float(s, empty)
    if fast is not None:
        return fast, []
    vals = pd.to_numeric(s.where(~empty, None), errors="coerce").astype(float)
    failed = vals.isna() & ~empty
    errs: list[tuple[int, str, str]] = []
    if failed.any():
        # the slow path only for the few cells with units, separators or 万
        for i in np.flatnonzero(failed.to_numpy()):
            text = s.iloc[i]
            m = _NUM_CLEAN.match(unicodedata.normalize("NFKC", text))
            if m:
                v = float(m.group(1).replace(",", "").replace("，", ""))
                if m.group(2):
                    v *= _MULT[m.group(2)]
                vals.iloc[i] = v
            else:
                errs.append((int(i), text, "应为数字"))
    return vals, errs


_DATE_RE = re.compile(r"^\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?\s*$")
_COMPACT_RE = re.compile(r"^\s*(\d{4})(\d{2})(\d{2})\s*$")
# Excel serial day numbers: 1 = 1900-01-01 (with Excel's leap-year bug, hence 1899-12-30)
_SERIAL_MIN, _SERIAL_MAX = 20000, 80000


def _fast_iso_dates(s: pd.Series, empty: pd.Series) -> pd.Series | None:
    """Arrow's strict ISO cast when every non-empty cell is ``YYYY-MM-DD`` (the usual
    export); None otherwise (then the careful path below reports each bad cell)."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        arr = s.array._pa_array if hasattr(s.array, "_pa_array") else \
            pa.array(s.to_numpy(dtype=object, na_value=None), pa.large_string())
        mask = empty.to_numpy(dtype=bool, na_value=True)
        if mask.any():  # (no copy of the text when no cell is empty)
            arr = pc.if_else(pa.array(mask), pa.scalar(None, arr.type), arr)
        ns = pc.cast(pc.cast(arr, pa.date32()), pa.timestamp("ns"))  # raises on anything else
        return pd.Series(ns.to_numpy(zero_copy_only=False), index=s.index).astype("datetime64[ns]")
    except Exception:  # a slash, a Chinese date, a serial, a typo: the careful path
        return None


def parse_dates(s: pd.Series, empty: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Vectorised: ISO first (fast path), then the Chinese and slash forms, Excel serials."""
    fast = _fast_iso_dates(s, empty)
    if fast is not None:
        return fast, np.zeros(len(s), dtype=bool)
    res = _to_ns(pd.to_datetime(s.where(~empty, None), format="%Y-%m-%d", errors="coerce"))
    todo = (res.isna() & ~empty).to_numpy()
    if todo.any():
        sub = s[todo]
        parsed = sub.map(_parse_one_date)
        res.loc[sub.index] = _to_ns(pd.to_datetime(parsed, errors="coerce"))
    bad = (res.isna() & ~empty).to_numpy()
    return res, bad


def _to_ns(res: pd.Series) -> pd.Series:
    """datetime64[ns]; a date outside its range (0001-01-01, a CRM's "no date") becomes
    missing, so it is reported as a bad cell instead of crashing the conversion."""
    res = pd.Series(res)
    if res.dtype != "datetime64[ns]":
        if pd.api.types.is_datetime64_any_dtype(res.dtype):
            res = res.where(res.isna() | ((res >= pd.Timestamp.min) & (res <= pd.Timestamp.max)))
        else:
            res = pd.to_datetime(res, errors="coerce")
            return _to_ns(res) if res.dtype != "datetime64[ns]" else res
    return res.astype("datetime64[ns]")


def _parse_one_date(text: str):
    import datetime as dt

    t = unicodedata.normalize("NFKC", text)
    m = _DATE_RE.match(t) or _COMPACT_RE.match(t)
    if m:
        try:
            return dt.datetime(int(m.group(1)), int(m.group(2)), int(m.group(3)))  # noqa: DTZ001 (a calendar date)
        except ValueError:
            return None
    try:
        f = float(t)
    except ValueError:
        return None
    if _SERIAL_MIN <= f <= _SERIAL_MAX:
        return dt.datetime(1899, 12, 30) + dt.timedelta(days=int(f))  # noqa: DTZ001 (a calendar date)
    return None
