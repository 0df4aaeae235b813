"""Print setup for every workbook tierctl writes (issue 17): the rules are data
(``tierctl/data/print.toml``, or the file ``TIERCTL_PRINT`` names), this is the code.

Every writer opens its workbook through :func:`tierctl.io.writers.xlsx_workbook`, which
returns a :class:`PrintWorkbook`: an ordinary xlsxwriter workbook whose sheets watch what
is written to them and, when the workbook closes, get their page set up:

* A4, fit to the page width (as many pages tall as needed), portrait when the sheet fits
  portrait at ``portrait_min_scale`` or larger, else landscape;
* the header row repeated on every page (the rule's ``header_row``, else the row above
  the frozen panes);
* an explicit height for every row with wrapped text, from the text and the column width
  (LibreOffice does not grow such rows itself and the lines overlap the next row);
* the charts inside the print area (``charts = "below"`` moves charts that stand right of
  a table below it, so the table keeps its page width);
* one font (``[font]`` by language) at one body size;
* never smaller than ``min_pt`` on paper: a sheet with a ``continue_as`` rule prints the
  leading columns that fit and carries the rest, with its key columns, on an extra sheet
  (the screen keeps every column).

The computed fit of each sheet is kept as ``worksheet.print_fit`` (:class:`Fit`).  Works
in xlsxwriter's constant-memory mode: a row's height is set while the row is written.
"""

from __future__ import annotations

import copy
import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from tierctl.io.printrows import DPI, display_width, text_lines
from tierctl.models.loader import Section, load_toml

PRINT_RULES = Path(__file__).resolve().parent.parent / "data" / "print.toml"
PAPER_IN = {9: (8.27, 11.69), 1: (8.5, 11.0), 8: (11.69, 16.54)}  # A4, Letter, A3: (short, long) edge
DEFAULT_ROW_PX = 20.0


@dataclass(frozen=True)
class SheetRule:
    continue_as: str | None = None
    key_columns: int = 1
    header_row: int | None = None
    charts: str = "keep"
    wrap: tuple[str, ...] = ()
    max_col_px: float | None = None  # None: [page].max_col_px


@dataclass(frozen=True)
class PrintRules:
    paper: int
    margins: tuple[float, float, float, float]  # left, right, top, bottom (inches)
    min_pt: float
    portrait_min_scale: float
    px_factor: float
    fonts: dict[str, str]
    size: float
    line_height: float
    row_padding: float
    char_px: float
    max_col_px: float
    continue_rows: int
    sheets: dict[str, SheetRule]

    def rule(self, sheet: str) -> SheetRule:
        return self.sheets.get(sheet, SheetRule())

    def col_cap(self, rule: SheetRule) -> float:
        return rule.max_col_px if rule.max_col_px is not None else self.max_col_px

    def printable_px(self, landscape: bool) -> float:
        short, long = PAPER_IN[self.paper]
        return ((long if landscape else short) - self.margins[0] - self.margins[1]) * DPI

    def font(self, lang: str) -> str:
        return self.fonts.get(lang) or self.fonts["zh"]


@dataclass(frozen=True)
class Fit:
    """How a sheet prints, as computed: orientation, the fit-to-width scale, the body
    text size on paper, and the print area's last row and column (0-based)."""

    landscape: bool
    scale: float
    printed_pt: float
    last_row: int
    last_col: int


def rules_path() -> Path:
    return Path(os.environ.get("TIERCTL_PRINT") or PRINT_RULES)


@functools.cache
def _load(path: Path) -> PrintRules:
    root = Section(load_toml(path), path)
    page = root.section("page")
    font = root.section("font")
    paper = page.int("paper", 9)
    if paper not in PAPER_IN:
        raise page.error("paper", f"纸张代码 {paper} 不支持", hint="9 = A4，1 = Letter，8 = A3")
    margins = tuple(page.number(k, d, min=0, max=2) for k, d in
                    (("margin_left", 0.4), ("margin_right", 0.4), ("margin_top", 0.6), ("margin_bottom", 0.6)))
    sheets: dict[str, SheetRule] = {}
    sheet_sec = root.section("sheet", {})
    for name in sheet_sec.keys():
        s = sheet_sec.section(name)
        header = s.int("header_row", -1, min=-1)
        sheets[name] = SheetRule(
            continue_as=s.str("continue_as", "") or None, key_columns=s.int("key_columns", 1, min=0, max=10),
            header_row=None if header < 0 else header, charts=s.choice("charts", ("keep", "below"), "keep"),
            wrap=tuple(str(x) for x in s.list("wrap", [], of=str)),
            max_col_px=s.number("max_col_px", 0, min=0, max=2000) or None)
    return PrintRules(
        paper=paper, margins=(margins[0], margins[1], margins[2], margins[3]),
        min_pt=page.number("min_pt", 8.0, min=4, max=20),
        portrait_min_scale=page.number("portrait_min_scale", 0.9, min=0.1, max=1),
        px_factor=page.number("px_factor", 1.0, min=0.5, max=3),
        fonts={"zh": font.str("zh"), "en": font.str("en")}, size=font.number("size", 11, min=6, max=20),
        line_height=font.number("line_height", 1.4, min=1, max=3),
        row_padding=font.number("row_padding", 4, min=0, max=30), char_px=font.number("char_px", 7.5, min=3, max=20),
        max_col_px=page.number("max_col_px", 160, min=40, max=2000),
        continue_rows=page.int("continue_rows", 20000, min=1), sheets=sheets)


def load_rules(path: Path | None = None) -> PrintRules:
    """The print rules (checked; the file and key are named in any error)."""
    return _load(Path(path or rules_path()))


def page_fit(widths_px: list[float], rules: PrintRules) -> tuple[bool, float]:
    """(landscape, scale) of columns ``widths_px`` fitted to the page width."""
    content = max(sum(widths_px) * rules.px_factor, 1.0)
    portrait = min(1.0, rules.printable_px(False) / content)
    if portrait >= rules.portrait_min_scale:
        return False, portrait
    return True, min(1.0, rules.printable_px(True) / content)


def continuation_name(template: str, k: int) -> str:
    """The ``k``-th continuation sheet's name: ``{n}`` in the template becomes "" for
    the first and k for the next ones (without ``{n}``, k is appended)."""
    if "{n}" in template:
        return template.replace("{n}", "" if k == 1 else str(k))[:31]
    return template[:31] if k == 1 else f"{template[:29]}{k}"


class PrintWorksheet(Worksheet):
    """A worksheet that measures wrapped rows and overflowing text as they are written,
    and carries the columns that do not fit to its continuation sheet (see module doc)."""

    def __init__(self) -> None:
        super().__init__()
        self.print_fit: Fit | None = None
        self._book: PrintWorkbook | None = None
        self._rule = SheetRule()
        self._headers: dict[int, str] = {}
        self._cut: int | None = None  # first column not printed (continue_as)
        self._cut_done = False
        self._captured: list[tuple[int, int, str, Any, Any]] = []
        self._right_px = 0.0  # right edge of the widest overflowing text
        self._capped: set[int] = set()
        self._wide: dict[int, float] = {}
        self._too_long = False  # more rows than continue_rows: the columns past the cut stay unprinted
        self._chain = 0  # 0: a sheet of the writer; k: its k-th continuation
        self._lefts: dict[int, float] = {}  # column → its left edge (pixels), while the widths stand  # columns narrowed to max_col_px: their text wraps

    # -- set up by the workbook ------------------------------------------------------------
    def _attach(self, book: PrintWorkbook) -> None:
        self._book = book
        self._rule = book.rules.rule(self.name)

    @property
    def _rules(self) -> PrintRules:
        assert self._book is not None
        return self._book.rules

    def set_column_pixels(self, first_col: int, last_col: int, width: Any = None, cell_format: Any = None,  # type: ignore[override]
                          options: Any = None) -> Any:
        """Columns wider than the rule's ``max_col_px`` are narrowed to it; their text wraps."""
        self._lefts = {}
        if self._book is not None and width is not None:
            cap = self._rules.col_cap(self._rule)
            for c in range(min(first_col, last_col), max(first_col, last_col) + 1):
                if width > cap:
                    self._capped.add(c)
                else:
                    self._capped.discard(c)
            for c in range(min(first_col, last_col), max(first_col, last_col) + 1):
                self._wide[c] = width  # as asked: the continuation sheet has its own cap
            width = min(width, cap)
        return super().set_column_pixels(first_col, last_col, width, cell_format, options)

    # -- the writes ---------------------------------------------------------------------------
    def write_rows(self, first_row: int, columns: Any, styles: Any = None, first_col: int = 0) -> None:
        """Many rows at once, column by column (:class:`tierctl.io.xlsxrows.RowsColumn`;
        ``styles``: each row's style code): the same file as a ``write_*`` call per cell,
        measured and written a column at a time (:mod:`tierctl.io.printrows`)."""
        from tierctl.io import printrows

        printrows.write_rows(self, first_row, columns, styles, first_col)

    def _write_string(self, row: int, col: int, string: str, cell_format: Any = None) -> Any:  # type: ignore[override]
        cell_format = self._before(row, col, "s", string, cell_format)
        if col in self._capped and not (cell_format is not None and cell_format.text_wrap) and self._book is not None:
            cell_format = self._book.wrap_twin(cell_format)
        rc = super()._write_string(row, col, string, cell_format)
        if rc in (0, -2) and self._book is not None:
            self._measure(row, col, string, cell_format)
        return rc

    def _write_number(self, row: int, col: int, number: Any, cell_format: Any = None) -> Any:  # type: ignore[override]
        self._before(row, col, "n", number, cell_format)
        return super()._write_number(row, col, number, cell_format)

    def _write_blank(self, row: int, col: int, blank: Any, cell_format: Any = None) -> Any:  # type: ignore[override]
        self._before(row, col, "b", blank, cell_format)
        return super()._write_blank(row, col, blank, cell_format)

    def _write_datetime(self, row: int, col: int, date: Any, cell_format: Any = None) -> Any:  # type: ignore[override]
        self._before(row, col, "d", date, cell_format)
        return super()._write_datetime(row, col, date, cell_format)

    def _before(self, row: int, col: int, kind: str, value: Any, fmt: Any) -> Any:
        rule = self._rule
        header = rule.header_row
        if self._book is None or header is None:
            return fmt
        if row == header and kind == "s":
            self._headers[col] = str(value)
        elif row > header and not self._cut_done:
            self._decide_cut()
        if rule.wrap and row > header and self._headers.get(col) in rule.wrap and not (fmt is not None and fmt.text_wrap):
            fmt = self._book.wrap_twin(fmt)
        if rule.continue_as and not self._too_long and (not self._cut_done or self._cut is not None):
            if row > header + self._rules.continue_rows:  # too long to print: no continuation sheet
                self._too_long, self._captured = True, []
                return fmt
            if row <= header or col < rule.key_columns or (self._cut is not None and col >= self._cut):
                self._captured.append((row, col, kind, value, fmt))
        return fmt

    def _decide_cut(self) -> None:
        """The first column that would print below ``min_pt`` (None: all fit)."""
        self._cut_done = True
        if not self._rule.continue_as or not self._headers:
            return
        rules = self._rules
        last = max(self._headers)
        widths = [float(self._size_col(c)) for c in range(last + 1)]
        for k in range(len(widths), self._rule.key_columns, -1):
            _landscape, scale = page_fit(widths[:k], rules)
            if rules.size * scale >= rules.min_pt:
                self._cut = k if k < len(widths) else None
                break
        if self._cut is None:
            self._captured = []

    def _measure(self, row: int, col: int, text: str, fmt: Any) -> None:
        rules = self._rules
        width = float(self._size_col(col))
        if fmt is not None and fmt.text_wrap:
            if self._cut is not None and col >= self._cut and row != self._rule.header_row:
                return  # not printed here: its height belongs to the continuation sheet
            size = max(rules.size, float(fmt.font_size)) if fmt.font_size > 11 else rules.size
            lines = text_lines(text, width, rules.char_px * size / 11)
            px = (lines * size * rules.line_height + rules.row_padding) * DPI / 72
            info = self.row_info.get(row)
            now = float(info.height) if info is not None and info.height is not None else self.default_row_height
            if px > now + 0.5:
                self.set_row_pixels(row, math.ceil(px), info.row_format if info is not None else None)
        elif len(text) * 2 * rules.char_px > width:  # may overflow into the next columns
            self._right_px = max(self._right_px, self._col_left(col) + display_width(text) * rules.char_px + 4)

    def _col_left(self, col: int) -> float:
        left = self._lefts.get(col)
        if left is None:
            left = self._lefts[col] = float(sum(self._size_col(c) for c in range(col)))
        return left

    # -- at close -------------------------------------------------------------------------------
    def _finish(self) -> None:
        rules, rule = self._rules, self._rule
        if rule.charts == "below":
            self._charts_below()
        last_row = self.dim_rowmax or 0
        last_col = self.dim_colmax or 0
        if self._cut is not None:
            last_col = self._cut - 1
        else:
            while self._right_px > self._col_left(last_col + 1) and last_col < 60:
                last_col += 1  # the text overflowing right of the last column prints too
        for r, c, right, bottom in self._chart_boxes():
            last_col = max(last_col, right)
            last_row = max(last_row, bottom)
            del r, c
        landscape, scale = page_fit([float(self._size_col(c)) for c in range(last_col + 1)], rules)
        self.set_paper(rules.paper)
        if landscape:
            self.set_landscape()
        else:
            self.set_portrait()
        self.fit_to_pages(1, 0)
        m_left, m_right, m_top, m_bottom = rules.margins
        self.set_margins(left=m_left, right=m_right, top=m_top, bottom=m_bottom)
        header = rule.header_row
        if header is None and self.panes and self.panes[0] > 0:
            header = int(self.panes[0]) - 1
        if header is not None and header <= last_row:
            self.repeat_rows(header)
        self.print_area(0, 0, last_row, last_col)
        self.print_fit = Fit(landscape, round(scale, 4), round(rules.size * scale, 2), last_row, last_col)

    def _chart_boxes(self) -> list[tuple[int, int, int, int]]:
        """(row, col, last col, last row) each chart covers."""
        boxes = []
        for entry in self.charts:
            row, col, chart, x_off, y_off, x_scale, y_scale = entry[:7]
            w, h = chart.width * x_scale + x_off, chart.height * y_scale + y_off
            c, acc = col, float(self._size_col(col))
            while acc < w:
                c += 1
                acc += self._size_col(c)
            r, acc = row, float(self._size_row(row))
            while acc < h:
                r += 1
                acc += self._size_row(r)
            boxes.append((row, col, c, r))
        return boxes

    def _charts_below(self) -> None:
        """Charts standing right of the cells move below them, one under the other."""
        cells_right = self._col_left((self.dim_colmax or 0) + 1)
        row = (self.dim_rowmax or 0) + 2
        for entry in self.charts:
            if self._col_left(entry[1]) < cells_right:
                continue
            entry[0], entry[1], entry[3], entry[4] = row, 0, 0, 0
            row += math.ceil(entry[2].height * entry[6] / DEFAULT_ROW_PX) + 2

    def _continuation(self, book: PrintWorkbook) -> None:
        """Write the columns that do not print here on the ``continue_as`` sheet."""
        rule = self._rule
        if self._cut is None or not rule.continue_as or self._too_long:
            return
        keep, cut = rule.key_columns, self._cut
        name = continuation_name(rule.continue_as, self._chain + 1)
        ws = book.add_worksheet(name)
        assert isinstance(ws, PrintWorksheet)
        own = book.rules.sheets.get(name) or book.rules.sheets.get(rule.continue_as)
        ws._chain = self._chain + 1  # a continuation too wide itself continues on the next one
        ws._rule = SheetRule(continue_as=rule.continue_as, header_row=rule.header_row, key_columns=keep,
                             max_col_px=own.max_col_px if own else None)
        last = max(self._headers)
        target = {c: c for c in range(keep)} | {c: keep + c - cut for c in range(cut, last + 1)}
        for c, t in target.items():
            ws.set_column_pixels(t, t, self._wide.get(c, self._size_col(c)))
        header = rule.header_row or 0
        info = self.row_info.get(header)
        if info is not None:
            ws.set_row_pixels(header, info.height, info.row_format)
        for r, c, kind, value, fmt in self._captured:
            dest = target.get(c)
            if dest is None:
                continue
            if kind == "s":
                ws.write_string(r, dest, value, fmt)
            elif kind == "n":
                ws.write_number(r, dest, value, fmt)
            elif kind == "d":
                ws.write_datetime(r, dest, value, fmt)
            else:
                ws.write_blank(r, dest, value, fmt)
        ws.freeze_panes(header + 1, keep)
        if self.autofilter_area:
            ws.autofilter(header, 0, max(self.dim_rowmax or 0, header + 1), len(target) - 1)
        self._captured = []


class PrintWorkbook(Workbook):
    """An xlsxwriter workbook whose sheets are set up for print when it closes."""

    worksheet_class = PrintWorksheet

    def __init__(self, filename: Any, options: dict[str, Any] | None = None, *, lang: str = "zh",
                 rules: PrintRules | None = None) -> None:
        self.rules = rules or load_rules()
        self.lang = lang
        self._twins: dict[int, Any] = {}
        super().__init__(filename, options or {})

    def add_format(self, properties: dict[str, Any] | None = None) -> Any:
        """Every format in the one font; body sizes at the one body size (titles keep theirs)."""
        props = dict(properties or {})
        props["font_name"] = self.rules.font(self.lang)
        if float(props.get("font_size", 11)) <= self.rules.size:
            props["font_size"] = self.rules.size
        return super().add_format(props)

    def _add_sheet(self, name: Any, worksheet_class: Any = None) -> Any:
        ws = super()._add_sheet(name, worksheet_class=worksheet_class)
        if isinstance(ws, PrintWorksheet):
            ws._attach(self)
        return ws

    def wrap_twin(self, fmt: Any) -> Any:
        """``fmt`` with wrapped text, top-aligned (one twin per format)."""
        key = id(fmt)
        if key not in self._twins:
            if fmt is None:
                twin = self.add_format({"text_wrap": True, "valign": "top"})
            else:
                twin = copy.copy(fmt)
                twin.xf_index = None
                twin.dxf_index = None
                twin._format_key = None
                twin.set_text_wrap()
                twin.set_align("top")
                self.formats.append(twin)
            self._twins[key] = twin
        return self._twins[key]

    def close(self) -> None:
        if not self.fileclosed:
            i = 0
            while i < len(self.worksheets()):  # continuations added here are continued in turn
                ws = self.worksheets()[i]
                if isinstance(ws, PrintWorksheet):
                    ws._continuation(self)
                i += 1
            for ws in self.worksheets():
                if isinstance(ws, PrintWorksheet):
                    ws._finish()
        super().close()


__all__ = ["DPI", "Fit", "display_width", "PrintRules", "PrintWorkbook", "PrintWorksheet", "SheetRule", "load_rules", "page_fit",
           "text_lines"]
