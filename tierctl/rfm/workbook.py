"""Writing RFM listings into xlsxwriter workbooks: columns, widths, in memory or streamed."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

WORKBOOK_OPTIONS = {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
EXCEL_MAX_ROWS = 1_048_576


# =====================================================================================
# Table writing
# =====================================================================================
@dataclass(frozen=True)
class Col:
    """One column of a listing: header, how to write the values, width bounds."""

    header: str
    values: Callable[[pd.DataFrame], Sequence[Any] | np.ndarray | pd.Series]
    kind: str = "text"  # text | int | money | pct | date
    min_width: float = 6
    max_width: float = 40


def _display_width(text: str) -> float:
    # CJK characters take two columns in Excel's default font
    return sum(2.0 if ord(ch) > 0x2E80 else 1.1 for ch in text)


class _Book:
    """An xlsxwriter workbook with the formats every sheet shares."""

    def __init__(self, path: Path, *, stream: bool) -> None:
        from tierctl.io.writers import xlsx_workbook

        self.wb = xlsx_workbook(path, {**WORKBOOK_OPTIONS, "constant_memory": stream})
        add = self.wb.add_format
        self.f = {
            "title": add({"bold": True, "font_size": 14}),
            "bold": add({"bold": True}),
            "label": add({"bold": True, "font_color": "#595959"}),
            "header": add({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True,
                           "valign": "vcenter"}),
            "text": add({}),
            "wrap": add({"text_wrap": True, "valign": "top"}),
            "int": add({"num_format": "0"}),
            "money": add({"num_format": "#,##0.00"}),
            "pct": add({"num_format": "0.0%"}),
            "date": add({"num_format": "yyyy-mm-dd"}),
            "flag": add({"font_color": "#C00000", "bold": True}),
            "total": add({"bold": True, "top": 1}),
            "total_pct": add({"bold": True, "top": 1, "num_format": "0.0%"}),
            "total_money": add({"bold": True, "top": 1, "num_format": "#,##0.00"}),
            "note": add({"italic": True, "font_color": "#7F7F7F"}),
        }
        self.names: set[str] = set()

    def sheet(self, name: str):
        safe = re.sub(r"[\[\]:*?/\\]", "_", name)[:31]
        base, k = safe, 2
        while safe.lower() in self.names:
            safe = f"{base[:28]}_{k}"
            k += 1
        self.names.add(safe.lower())
        return self.wb.add_worksheet(safe)

    def close(self) -> None:
        self.wb.close()

    # ---------------------------------------------------------------------------------
    def listing(self, ws, frame: pd.DataFrame, cols: Sequence[Col], *, top: int = 0,
                empty_note: str = "（没有记录）") -> int:
        """Header at row ``top``, one row per record, frozen header, autofilter, widths
        fitted to the header and the first rows.  Returns the next free row."""
        room = EXCEL_MAX_ROWS - top - 2
        shown = frame if len(frame) <= room else frame.iloc[:room]
        columns = [list(_cell_values(c.values(shown), c.kind)) for c in cols]
        for j, c in enumerate(cols):
            sample = [str(v) for v in columns[j][:200] if v is not None]
            if c.kind == "money":
                sample = [f"{float(v):,.2f}" for v in columns[j][:200] if v is not None]
            width = max([_display_width(c.header) / 2 + 2, *(_display_width(s) + 1 for s in sample)],
                        default=c.min_width)
            ws.set_column(j, j, min(max(width, c.min_width), c.max_width))
        ws.set_row(top, 30)
        for j, c in enumerate(cols):
            ws.write_string(top, j, c.header, self.f["header"])
        ws.freeze_panes(top + 1, 0)
        n = len(shown)
        if n:
            ws.write_rows(top + 1, [self._rows_column(c.kind, columns[j]) for j, c in enumerate(cols)])
        last = top + max(n, 1)
        ws.autofilter(top, 0, last, len(cols) - 1)
        nxt = top + n + 1
        if n == 0:
            ws.write_string(top + 1, 0, empty_note, self.f["note"])
            nxt += 1
        if len(shown) < len(frame):
            ws.write_string(nxt, 0, f"……另有 {len(frame) - len(shown):,} 行超出 Excel 的行数上限，未列出",
                            self.f["note"])
            nxt += 1
        return nxt

    def _rows_column(self, kind: str, values: list[Any]) -> Any:
        """A listing column for ``PrintWorksheet.write_rows``: text without a format, dates
        and numbers with theirs; an empty value writes no cell."""
        from tierctl.io.xlsxrows import RowsColumn

        if kind == "text":
            return RowsColumn(values, "s", [None])
        if kind == "date":
            return RowsColumn(values, "d", [self.f["date"]], [None])
        return RowsColumn(values, "n", [self.f[kind] if kind in ("int", "money", "pct") else None], [None])


def _cell_values(values: Sequence[Any] | pd.Series | np.ndarray, kind: str) -> list[Any]:
    """Plain Python values for xlsxwriter, ``None`` for an empty cell."""
    if isinstance(values, pd.Series):
        s = values
    elif isinstance(values, np.ndarray | pd.api.extensions.ExtensionArray):
        s = pd.Series(values)
    else:
        s = pd.Series(list(values), dtype=object)
    if kind == "date":
        d = pd.to_datetime(s, errors="coerce")
        return [None if pd.isna(v) else v.to_pydatetime().replace(tzinfo=None) for v in d]
    if kind in ("int", "money", "pct"):
        arr = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        out = arr.tolist()
        return [None if (x != x or math.isinf(x)) else (int(x) if kind == "int" else x) for x in out]
    obj = s.astype(object).to_numpy()
    miss = pd.isna(obj)
    return [None if m else (v if isinstance(v, str) else str(v)) for v, m in zip(obj.tolist(), miss, strict=True)]
