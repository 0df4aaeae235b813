"""The print set-up of :mod:`tierctl.io.printsetup` for a whole block of rows at once.

A writer with many rows hands them to :meth:`PrintWorksheet.write_rows` column by
column; this module does for the block what the sheet's per-cell hooks do for each
cell — wrapped twins of the formats, row heights for wrapped text, the right edge of
text that overflows — with one vectorised pass per column, then lets
:mod:`tierctl.io.xlsxrows` write the XML.  The result is the same file, byte for byte,
as the per-cell path; when a block needs what only that path does (cells kept for a
continuation sheet, a sheet not in ``constant_memory`` mode), it takes that path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tierctl.io import xlsxrows
from tierctl.io.xlsxrows import RowsColumn, first_uses

DPI = 96.0


def display_width(text: str) -> float:
    """Width in Latin characters: a CJK (or full-width) character takes two.  Counted
    from the UTF-8 length (C speed: a CJK character is 3 bytes, ASCII 1), so symbols
    such as ≥ or → count two too — for a row height that errs tall, never short."""
    n = len(text)
    return (len(text.encode("utf-8", "replace")) - n) / 2 + n


def text_lines(text: str, width_px: float, char_px: float) -> int:
    """Lines a wrapped text takes in a column ``width_px`` wide."""
    usable = max(width_px - 8.0, char_px * 2)
    if "\n" not in text and len(text) * 2 * char_px <= usable:
        return 1
    return sum(max(1, math.ceil(display_width(part) * char_px / usable)) for part in str(text).split("\n"))



def text_lines_many(texts: Sequence[str], width_px: float, char_px: float) -> np.ndarray:
    """:func:`tierctl.io.printsetup.text_lines` of every text, computed on Arrow arrays
    (the same float operations, so the same counts)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    usable = max(width_px - 8.0, char_px * 2)
    try:
        arr = pa.array(texts, type=pa.large_string())
    except (pa.ArrowException, UnicodeEncodeError):  # e.g. a lone surrogate: count in Python
        return np.array([text_lines(t, width_px, char_px) for t in texts], dtype=np.int64)
    out = np.ones(len(arr), dtype=np.int64)
    chars = pc.utf8_length(arr).to_numpy()
    newline = pc.match_substring(arr, "\n").to_numpy(zero_copy_only=False)
    slow = np.flatnonzero(newline | (chars * 2 * char_px > usable))
    if slow.size:
        parts = pc.split_pattern(arr.take(pa.array(slow)), "\n")
        flat = pc.list_flatten(parts)
        parent = pc.list_parent_indices(parts).to_numpy()
        n = pc.utf8_length(flat).to_numpy().astype(np.int64)
        width = (pc.binary_length(flat).to_numpy().astype(np.int64) - n) / 2 + n
        lines = np.maximum(1, np.ceil(width * char_px / usable)).astype(np.int64)
        out[slow] = np.bincount(parent, weights=lines, minlength=slow.size).astype(np.int64)
    return out


def write_rows(ws: Any, first_row: int, columns: Sequence[RowsColumn], styles: Any = None, first_col: int = 0) -> None:
    """Rows from ``first_row`` down, column by column (see :class:`RowsColumn`);
    ``styles``: each row's style code (default 0)."""
    n = len(columns[0].values) if columns else 0
    codes = np.zeros(n, dtype=np.int64) if styles is None else np.asarray(styles, dtype=np.int64)
    if ws._book is None or not xlsxrows.can_stream(ws, first_row, first_col, columns, n) \
            or not _nothing_to_keep(ws, first_row, n):
        xlsxrows.write_cells(ws, first_row, first_col, columns, codes.tolist())
        return
    m = n - 1  # the last row goes the per-cell way: xlsxwriter writes it out at the end
    text_fmts = _text_formats(ws, first_col, columns, codes[:m])
    _measure(ws, first_row, first_col, columns, codes[:m], text_fmts, m)
    xlsxrows.write_xml_rows(ws, first_row, first_col, columns, codes, text_fmts, m)
    xlsxrows.write_cells(ws, first_row, first_col, columns, codes.tolist(), start=m)


def _nothing_to_keep(ws: Any, first_row: int, n: int) -> bool:
    """Whether no cell of the block is kept for a continuation sheet (the per-cell path
    keeps them); decides the cut as the block's first cell would."""
    rule = ws._rule
    header = rule.header_row
    if header is None:
        return True
    if first_row <= header:
        return False
    if not ws._cut_done:
        ws._decide_cut()
    if rule.continue_as and not ws._too_long and ws._cut is not None:
        if first_row + n - 1 <= header + ws._rules.continue_rows:
            return False
        ws._too_long, ws._captured = True, []  # what the per-cell path ends with
    return True


def _wrapped(fmt: Any) -> bool:
    return fmt is not None and bool(fmt.text_wrap)


def _text_formats(ws: Any, first_col: int, columns: Sequence[RowsColumn], codes: np.ndarray) -> list[list[Any]]:
    """Each column's format per style for its text cells: a wrapped twin where the
    rule's ``wrap`` headers or a narrowed column ask for one.  The twins are made in the
    order the per-cell path makes them."""
    rule, book = ws._rule, ws._book
    wrap_cols = {j for j in range(len(columns))
                 if rule.header_row is not None and rule.wrap and ws._headers.get(first_col + j) in rule.wrap}
    everywhere = np.ones(len(codes), dtype=bool)
    events = []
    for j, c in enumerate(columns):
        if j in wrap_cols:
            events += [(r, j, 0, code) for r, code in first_uses(codes, everywhere)]
        if first_col + j in ws._capped and c.kind == "s":
            present = np.fromiter((v is not None for v in c.values[:len(codes)]), bool, len(codes))
            events += [(r, j, 1, code) for r, code in first_uses(codes, present)]
    resolved: dict[tuple[int, int], Any] = {}
    for _r, j, phase, code in sorted(events):
        fmt = columns[j].formats[code]
        if j in wrap_cols and not _wrapped(fmt):
            fmt = book.wrap_twin(fmt)
        if phase == 1 and not _wrapped(fmt):
            fmt = book.wrap_twin(fmt)
        resolved[(j, code)] = fmt
    out = []
    for j, c in enumerate(columns):
        capped = first_col + j in ws._capped and c.kind == "s"
        out.append([resolved.get((j, code), fmt) if capped or j in wrap_cols else fmt
                    for code, fmt in enumerate(c.formats)])
    return out


def _measure(ws: Any, first_row: int, first_col: int, columns: Sequence[RowsColumn], codes: np.ndarray,
             text_fmts: list[list[Any]], m: int) -> None:
    """Row heights for the wrapped text cells and the right edge of overflowing text,
    as ``PrintWorksheet._measure`` finds them cell by cell (left to right in each row)."""
    rules = ws._rules
    heights = np.full(m, float(ws.default_row_height))
    for r, info in ws.row_info.items():
        if first_row <= r < first_row + m and info.height is not None:
            heights[r - first_row] = float(info.height)
    grown = np.zeros(m, dtype=bool)
    for j, c in enumerate(columns):
        if c.kind != "s":
            continue
        col = first_col + j
        vals = list(c.values[:m])
        present = np.fromiter((v is not None for v in vals), bool, m)
        wrapped = np.array([_wrapped(f) for f in text_fmts[j]], dtype=bool)[codes] & present
        width = float(ws._size_col(col))
        if wrapped.any() and not (ws._cut is not None and col >= ws._cut):
            sizes = [max(rules.size, float(f.font_size)) if _wrapped(f) and f.font_size > 11 else rules.size
                     for f in text_fmts[j]]
            size_of = np.array(sizes, dtype=float)[codes]
            for size in sorted(set(size_of[wrapped].tolist())):
                rows = np.flatnonzero(wrapped & (size_of == size))
                lines = text_lines_many([vals[i] for i in rows], width, rules.char_px * size / 11)
                px = (lines * size * rules.line_height + rules.row_padding) * DPI / 72
                grow = px > heights[rows] + 0.5
                heights[rows[grow]] = np.ceil(px[grow])
                grown[rows[grow]] = True
        plain = [vals[i] for i in np.flatnonzero(present & ~wrapped).tolist()]
        long = [t for t in plain if len(t) * 2 * rules.char_px > width]
        if long:
            right = ws._col_left(col) + max(display_width(t) for t in long) * rules.char_px + 4
            ws._right_px = max(ws._right_px, right)
    for i in np.flatnonzero(grown).tolist():
        info = ws.row_info.get(first_row + i)
        ws.set_row_pixels(first_row + i, math.ceil(heights[i]), info.row_format if info is not None else None)


__all__ = ["text_lines_many", "write_rows"]
