"""Rows of an export that are not records, and repeated ids (the row checks of :mod:`tierctl.io.ingest`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tierctl.errors import Problem
from tierctl.io.values import is_empty_text

if TYPE_CHECKING:
    from tierctl.io.ingest import SharedColumns

MAX_PROBLEMS = 20


# -- footer and notes rows ---------------------------------------------------------------
NOTES_TAIL_ROWS = 200  # a notes block longer than this is not a notes block


def footer_rows(frame: pd.DataFrame, rows: np.ndarray, shared: SharedColumns) -> tuple[np.ndarray, list[Problem], list[str]]:
    """Rows that are not records: a 合计/小计 row anywhere (its first non-empty cell is a
    summary word, "合计：3 人", "共 3 人"), and the notes block at the end — under the
    data, the rows after a blank row that have a single cell, and those whose first cell
    starts like a note (备注：…, 说明…, 制表人：…).  ``rows`` are the Excel row numbers
    (blank rows already left out, so a gap in them is a blank row).  Returns the mask,
    one :class:`Problem` per row, and the data-quality messages."""
    n = len(frame)
    skip = np.zeros(n, dtype=bool)
    if n == 0 or not len(frame.columns):
        return skip, [], []
    first = _first_cells(frame)
    summary = np.zeros(n, dtype=bool)
    # the regex only where the cell starts with a summary word's first character (a
    # million customer ids are passed over by one set lookup)
    starts = {w[:1].lower() for w in shared.summary} | {w[:1].upper() for w in shared.summary} | {"共"}
    cand = np.flatnonzero(first.str.slice(0, 1).isin(starts).to_numpy(dtype=bool, na_value=False))
    if len(cand):
        summary[cand] = first.iloc[cand].str.match(shared.summary_re).to_numpy(dtype=bool, na_value=False)
    is_summary = summary.copy()
    # the notes block: walk up from the last row over rows that could be notes
    is_note = np.zeros(n, dtype=bool)
    start = n
    lo = max(0, n - NOTES_TAIL_ROWS)
    cells = frame.iloc[lo:].to_numpy(dtype=object)
    firsts = first.iloc[lo:].tolist()
    filled = [sum(1 for c in row if (c.strip() if isinstance(c, str) else not pd.isna(c))) for row in cells]
    noted = [bool(shared.notes_re.match(t)) if isinstance(t, str) else False for t in firsts]
    for i in range(n - 1, lo - 1, -1):
        j = i - lo
        if summary[i] or noted[j] or filled[j] == 1:
            start = i
        else:
            break
    after_blank = False
    for i in range(start, n):
        j = i - lo
        after_blank = after_blank or (i > 0 and rows[i] - rows[i - 1] > 1)
        if not summary[i] and (noted[j] or (after_blank and filled[j] == 1)):
            is_note[i] = True
    skip = is_summary | is_note
    if not skip.any():
        return skip, [], []
    problems: list[Problem] = []
    messages: list[str] = []
    col = str(frame.columns[0])
    for mask, what, kind in ((is_summary, "合计/小计行", "合计行，不是客户记录"),
                             (is_note, "表尾说明行", "表尾说明，不是客户记录")):
        idx = np.flatnonzero(mask)
        if not len(idx):
            continue
        texts = first.iloc[idx].tolist()
        problems += [Problem(int(rows[i]), col, t, kind) for i, t in zip(idx, texts, strict=True)]
        sample = "、".join(f"「{_short(t)}」" for t in dict.fromkeys(texts[:3]))
        messages.append(f"已跳过 {len(idx)} 个{what}（{_row_ranges(rows[idx])}：{sample}{' …' if len(idx) > 3 else ''}），"
                        "不计入结果")
    return skip, problems, messages


def _first_cells(frame: pd.DataFrame) -> pd.Series:
    """Each row's first non-empty cell (in the file's column order), trimmed; "" if none."""
    out = frame.iloc[:, 0].fillna("").astype("str").str.strip()
    for c in range(1, len(frame.columns)):
        pending = is_empty_text(out)
        if not pending.any():
            break
        nxt = frame.iloc[:, c].fillna("").astype("str").str.strip()
        out = out.where(~pending, nxt)
    return out


def _short(text: object, width: int = 24) -> str:
    t = str(text)
    return t if len(t) <= width else t[: width - 1] + "…"


def _row_ranges(rows: np.ndarray) -> str:
    """Excel rows as "第 6 行" / "第 8–10 行" / "第 6、8–10 行"."""
    parts: list[str] = []
    r = [int(x) for x in rows]
    i = 0
    while i < len(r):
        j = i
        while j + 1 < len(r) and r[j + 1] == r[j] + 1:
            j += 1
        parts.append(str(r[i]) if i == j else f"{r[i]}–{r[j]}")
        i = j + 1
    shown = "、".join(parts[:8]) + (" …" if len(parts) > 8 else "")
    return f"第 {shown} 行"


def duplicate_problems(frame: pd.DataFrame, col: str, header: str) -> tuple[list[Problem], int]:
    s = frame[col]
    arr = getattr(s.array, "_pa_array", None)
    if arr is not None:  # arrow text: "all distinct?" (the usual case) without a hash table when sorted
        import pyarrow.compute as pc

        flat = arr.combine_chunks() if arr.num_chunks > 1 else (arr.chunk(0) if arr.num_chunks else None)
        if flat is not None and len(flat) > 1 and not flat.null_count \
                and pc.all(pc.greater(flat.slice(1), flat.slice(0, len(flat) - 1))).as_py():
            return [], 0  # every id greater than the one before: none repeats
        if len(pc.unique(arr)) == len(arr) - arr.null_count + (1 if arr.null_count else 0):
            return [], 0
    dup = s.notna() & s.duplicated(keep=False)
    if not dup.any():
        return [], 0
    d = frame.loc[dup, [col, "_row"]]
    problems = []
    groups = d.groupby(col, sort=True)["_row"].apply(list)
    for value, rws in groups.items():
        problems.append(Problem(int(rws[0]), header, value,
                                f"与第 {'、'.join(str(r) for r in rws[1:])} 行重复"))
    return problems[:MAX_PROBLEMS], len(problems)
