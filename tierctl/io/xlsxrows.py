"""Many rows at once into an xlsxwriter worksheet, column by column.

:func:`write_cells` is the plain way (one ``write_*`` call per cell, every hook of the
sheet applies).  :func:`write_xml_rows` is the fast way for a sheet in
``constant_memory`` mode: it writes the rows' XML itself, each distinct text escaped
once, and gives byte for byte what xlsxwriter's per-cell path writes — the same
format indexes in the same order of first use, the same dimensions, row heights and
cell XML (``tests/test_io_xlsxrows.py`` compares the two).  :meth:`PrintWorksheet.write_rows
<tierctl.io.printsetup.PrintWorksheet.write_rows>` chooses between them and does the
print set-up's measuring for the whole block at once.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from xlsxwriter.utility import _preserve_whitespace, xl_col_to_name

CHUNK_ROWS = 4096  # rows of XML built in memory before they are written out


@dataclass(frozen=True)
class RowsColumn:
    """One column of a block of rows: its ``values`` (None: a blank cell), how they are
    written (``kind``: "s" text, "n" number, "d" date-time) and the format of each
    style (``formats[code]``; the row's style code picks it).  ``blank_formats``: the
    format of a blank cell per style, when it is not the value's (a None format writes
    no cell at all)."""

    values: Sequence[Any]
    kind: str
    formats: Sequence[Any]
    blank_formats: Sequence[Any] | None = None

    @property
    def blanks(self) -> Sequence[Any]:
        """The format of a blank cell per style."""
        return self.formats if self.blank_formats is None else self.blank_formats


def write_cells(ws: Any, first_row: int, first_col: int, columns: Sequence[RowsColumn], codes: Sequence[int],
                start: int = 0, stop: int | None = None) -> None:
    """Rows ``start``…``stop`` of the block, one ``write_*`` call per cell."""
    stop = len(codes) if stop is None else stop
    calls = {"s": ws.write_string, "n": ws.write_number, "d": ws.write_datetime}
    plan = [(first_col + j, calls[c.kind], c.values, c.formats, c.blanks) for j, c in enumerate(columns)]
    blank = ws.write_blank
    for i in range(start, stop):
        r, code = first_row + i, codes[i]
        for j, write, vals, fmts, blanks in plan:
            v = vals[i]
            if v is None:
                blank(r, j, None, blanks[code])
            else:
                write(r, j, v, fmts[code])


def can_stream(ws: Any, first_row: int, first_col: int, columns: Sequence[RowsColumn], n: int) -> bool:
    """Whether :func:`write_xml_rows` writes exactly what :func:`write_cells` would."""
    if not ws.constant_memory or n < 2 or ws.comments or first_row <= ws.previous_row:
        return False
    if first_row + n > ws.xls_rowmax or first_col + len(columns) > ws.xls_colmax or first_row < 0 or first_col < 0:
        return False
    if any(info.row_format is not None for r, info in ws.row_info.items() if first_row <= r < first_row + n):
        return False
    limit = ws.xls_strmax // 2
    for c in columns:
        if len(c.values) != n or c.kind not in ("s", "n", "d"):
            return False
        present = [v for v in c.values if v is not None]
        if c.kind == "s" and any(type(v) is not str or len(v) > limit for v in present):
            return False
        if c.kind == "n" and (not set(map(type, present)) <= {int, float}
                              or not np.isfinite(np.asarray(present, dtype=float)).all()):
            return False
    return True


def first_uses(codes: np.ndarray, mask: np.ndarray) -> list[tuple[int, int]]:
    """(row, code) of each style's first row where ``mask`` holds, in row order."""
    rows = np.flatnonzero(mask)
    if rows.size == 0:
        return []
    uniq, idx = np.unique(codes[rows], return_index=True)
    return sorted((int(rows[i]), int(u)) for u, i in zip(uniq, idx, strict=True))


def write_xml_rows(ws: Any, first_row: int, first_col: int, columns: Sequence[RowsColumn], codes: np.ndarray,
                   text_fmts: Sequence[Sequence[Any]], n: int) -> None:
    """Rows 0…n-1 of the block as XML, straight into the sheet's file.  ``text_fmts[j]``
    are column j's formats for its text cells (the print set-up may swap in wrapped
    twins); numbers and date-times keep ``columns[j].formats``, blanks its ``blanks``."""
    if ws.previous_row < first_row:
        ws._write_single_row(first_row)  # the pending row above the block, as the next write would
    present = [np.fromiter((v is not None for v in c.values[:n]), bool, n) for c in columns]
    stored = [p | np.array([f is not None for f in c.blanks], bool)[codes[:n]] if not p.all() else p
              for p, c in zip(present, columns, strict=True)]
    xf_value, xf_blank = _xf_indexes(ws, first_col, columns, codes[:n], text_fmts, present, stored)
    any_row = np.logical_or.reduce(stored)
    any_col = [j for j, s in enumerate(stored) if s.any()]
    if any_col:
        rows = np.flatnonzero(any_row)
        ws._check_dimensions(first_row + int(rows[0]), first_col + any_col[0])
        ws._check_dimensions(first_row + int(rows[-1]), first_col + any_col[-1])
    bodies = [_bodies(ws, c, n) for c in columns]
    tags = _RowTags(ws)
    for a in range(0, n, CHUNK_ROWS):
        b = min(n, a + CHUNK_ROWS)
        nums = [str(first_row + i + 1) for i in range(a, b)]
        code_list = codes[a:b].tolist()
        cells = [_column_cells(xl_col_to_name(first_col + j), nums, code_list, bodies[j][a:b],
                               xf_value[j], xf_blank[j])
                 for j in range(len(columns))]
        out = []
        for k, parts in enumerate(zip(*cells, strict=True)):
            row = first_row + a + k
            body = "".join(parts)
            info = ws.row_info.get(row)
            if body:
                out.append(f"{tags.start(row, info)}{body}</row>")
            elif info is not None:
                out.append(tags.empty(row, info))
        ws.fh.write("".join(out))
    ws.previous_row = first_row + n


def _xf_indexes(ws: Any, first_col: int, columns: Sequence[RowsColumn], codes: np.ndarray,
                text_fmts: Sequence[Sequence[Any]], present: list[np.ndarray],
                stored: list[np.ndarray]) -> tuple[list[dict[int, str]], list[dict[int, str]]]:
    """Each column's ``s="…"`` attribute per style for its value cells and for its blank
    cells; the indexes are taken in the order the per-cell path first uses each format
    (row by row, left to right), so the workbook numbers its formats the same way."""
    events = []
    for j in range(len(columns)):
        events += [(r, j, code, False) for r, code in first_uses(codes, present[j])]
        events += [(r, j, code, True) for r, code in first_uses(codes, stored[j] & ~present[j])]
    xf_value: list[dict[int, str]] = [{} for _ in columns]
    xf_blank: list[dict[int, str]] = [{} for _ in columns]
    for _r, j, code, blank in sorted(events):
        c = columns[j]
        if blank:
            xf_blank[j][code] = f' s="{c.blanks[code]._get_xf_index()}"'
            continue
        fmt = text_fmts[j][code] if c.kind == "s" else c.formats[code]
        if fmt is None and c.kind == "d":
            fmt = ws.default_date_format
        if fmt is None:
            info = ws.col_info.get(first_col + j)
            fmt = info.column_format if info is not None else None
        xf_value[j][code] = f' s="{fmt._get_xf_index()}"' if fmt is not None else ""
    return xf_value, xf_blank


def _bodies(ws: Any, c: RowsColumn, n: int) -> list[str | None]:
    """Each cell's XML after its ``s`` attribute (None: a blank)."""
    vals = c.values[:n]
    if c.kind == "n":
        return [None if v is None else f"><v>{v:.16G}</v></c>" for v in vals]
    if c.kind == "d":
        conv = {v: f"><v>{ws._convert_date_time(v):.16G}</v></c>" for v in dict.fromkeys(vals) if v is not None}
    else:
        conv = {v: _text_body(ws, v) for v in dict.fromkeys(vals) if v is not None}
    return [None if v is None else conv[v] for v in vals]


def _text_body(ws: Any, text: str) -> str:
    s = ws._escape_control_characters(text)
    if s.startswith("<r>") and s.endswith("</r>"):
        return f' t="inlineStr"><is>{s}</is></c>'
    keep = ' xml:space="preserve"' if _preserve_whitespace(s) else ""
    return f' t="inlineStr"><is><t{keep}>{ws._escape_data(s)}</t></is></c>'


def _column_cells(name: str, nums: list[str], codes: list[int], bodies: list[str | None], xf_value: dict[int, str],
                  xf_blank: dict[int, str]) -> list[str]:
    pre = f'<c r="{name}'
    blank = {code: f'"{attr}/>' for code, attr in xf_blank.items()}
    return [pre + num + '"' + xf_value[code] + body if body is not None
            else (pre + num + blank[code] if code in blank else "")
            for num, code, body in zip(nums, codes, bodies, strict=True)]


class _RowTags:
    """The ``<row …>`` tags, as xlsxwriter's ``_write_row`` writes them (taken from it
    once per distinct row look and reused with the row number changed)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.cache: dict[tuple[Any, ...], str] = {}

    def _tail(self, row: int, info: Any, empty: bool) -> str:
        key = (empty,) if info is None else (empty, info.height, info.hidden, info.level, info.collapsed)
        tail = self.cache.get(key)
        if tail is None:
            ws, fh, buf = self.ws, self.ws.fh, io.StringIO()
            ws.fh = buf
            try:
                ws._write_row(row, None, info, empty_row=empty)
            finally:
                ws.fh = fh
            tail = self.cache[key] = buf.getvalue()[len(f'<row r="{row + 1}"'):]
        return tail

    def start(self, row: int, info: Any) -> str:
        return f'<row r="{row + 1}"{self._tail(row, info, False)}'

    def empty(self, row: int, info: Any) -> str:
        return f'<row r="{row + 1}"{self._tail(row, info, True)}'


__all__ = ["RowsColumn", "can_stream", "write_cells", "write_xml_rows"]
