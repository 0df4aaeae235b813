"""Writing many rows at once (PrintWorksheet.write_rows, io/xlsxrows.py, io/printrows.py):
the same workbook, byte for byte, as one write_* call per cell, with the print set-up's
wrapped twins, row heights, overflow, cut and continuation sheets."""

from __future__ import annotations

import dataclasses
import datetime as dt
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tierctl.io import printrows, xlsxrows
from tierctl.io.printsetup import PrintWorkbook, SheetRule, load_rules, text_lines
from tierctl.io.xlsxrows import RowsColumn

SHEET = "块"
HEADERS = ["名称", "说明", "数", "时间", "备注", "补偿方案", "尾"]
TEXT = st.lists(st.sampled_from(list("ab 中文\n\t&<>_x0041_\x01\x1f=+-") + ["<r>", "</r>", "\ufffe", "很长的说明文字" * 3]),
               max_size=12).map("".join)


def _rules(continue_rows: int, cut: bool, cap: float = 120):
    sheet = SheetRule(continue_as="块（续）" if cut else None, key_columns=1, header_row=0,
                      wrap=("补偿方案",), max_col_px=cap)
    return dataclasses.replace(load_rules(), continue_rows=continue_rows, sheets={SHEET: sheet})


def _write(path: Path, rows: dict, *, bulk: bool, rules, constant_memory: bool = True,
           own_blanks: bool = False) -> dict[str, bytes]:
    wb = PrintWorkbook(str(path), {"constant_memory": constant_memory, "strings_to_formulas": False,
                                   "strings_to_urls": False, "strings_to_numbers": False}, rules=rules)
    wb.set_properties({"created": dt.datetime(2026, 11, 24, 9)})  # noqa: DTZ001 (no clock in the file)
    plain = wb.add_format({"valign": "top"})
    fmts = [[plain, wb.add_format({"bg_color": "#F4B6B6", "bold": True}), None],
            [wb.add_format({"text_wrap": True}), plain, wb.add_format({"font_size": 14})]]
    ws = wb.add_worksheet(SHEET)
    for j, w in enumerate(rows["widths"]):
        ws.set_column_pixels(j, j, w)
    ws.set_row(0, 30)
    for j, h in enumerate(HEADERS):
        ws.write_string(0, j, h)
    ws.freeze_panes(1, 1)
    kinds = ["s", "s", "n", "d", "s", "s", "s"]
    # own_blanks: a blank cell takes another format than the column's values (or none: no cell)
    columns = [RowsColumn(rows["cols"][j], k, fmts[j % 2], fmts[(j + 1) % 2] if own_blanks else None)
               for j, k in enumerate(kinds)]
    if bulk:
        ws.write_rows(1, columns, rows["codes"])
    else:
        xlsxrows.write_cells(ws, 1, 0, columns, rows["codes"])
    ws.write_string(len(rows["codes"]) + 2, 0, "合计")
    wb.close()
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in z.namelist()}


@st.composite
def blocks(draw):
    n = draw(st.integers(1, 30))
    col = lambda values: draw(st.lists(st.none() | values, min_size=n, max_size=n))  # noqa: E731
    numbers = st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False, width=64)
    times = st.datetimes(min_value=dt.datetime(1900, 3, 1), max_value=dt.datetime(2100, 1, 1))  # noqa: DTZ001
    cols = [col(TEXT), col(TEXT), col(numbers), col(times), col(TEXT), col(TEXT), col(TEXT)]
    return {"cols": cols, "codes": draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)),
            "widths": draw(st.lists(st.integers(30, 400), min_size=len(HEADERS), max_size=len(HEADERS)))}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=blocks(), continue_rows=st.sampled_from([3, 1000]), cut=st.booleans(), cap=st.sampled_from([120, 600]),
       own_blanks=st.booleans())
def test_write_rows_gives_the_same_file_as_a_write_per_cell(tmp_path, rows, continue_rows, cut, cap, own_blanks):
    rules = _rules(continue_rows, cut, cap)
    expected = _write(tmp_path / "cells.xlsx", rows, bulk=False, rules=rules, own_blanks=own_blanks)
    actual = _write(tmp_path / "rows.xlsx", rows, bulk=True, rules=rules, own_blanks=own_blanks)
    assert actual.keys() == expected.keys()
    for name in expected:
        assert actual[name] == expected[name], name


def test_a_long_block_is_written_as_xml_and_only_its_last_row_cell_by_cell(tmp_path, monkeypatch):
    """The fast path is taken (not the per-cell fallback) for a sheet past continue_rows."""
    calls: list[tuple[int, int | None]] = []
    real = xlsxrows.write_cells

    def spy(ws, first_row, first_col, columns, codes, start=0, stop=None):
        calls.append((start, stop))
        real(ws, first_row, first_col, columns, codes, start, stop)

    monkeypatch.setattr(xlsxrows, "write_cells", spy)
    rng = np.random.default_rng(1)
    n = 200
    texts = ["原因一\n" * int(k) + "很长的说明文字" * int(k) for k in rng.integers(0, 6, n)]
    rows = {"cols": [texts, texts, list(range(n)), [dt.datetime(2026, 11, 24, 9)] * n, texts, texts, texts],  # noqa: DTZ001
            "codes": rng.integers(0, 3, n).tolist(), "widths": [60, 200, 40, 90, 300, 100, 50]}
    rules = _rules(10, True)
    actual = _write(tmp_path / "rows.xlsx", rows, bulk=True, rules=rules)
    assert calls == [(n - 1, None)]
    monkeypatch.setattr(xlsxrows, "write_cells", real)
    assert actual == _write(tmp_path / "cells.xlsx", rows, bulk=False, rules=rules)
    assert b'customHeight="1"' in actual["xl/worksheets/sheet1.xml"]  # wrapped rows got their heights


def test_a_block_kept_for_a_continuation_sheet_goes_cell_by_cell(tmp_path, monkeypatch):
    calls: list[int] = []
    real = xlsxrows.write_cells
    monkeypatch.setattr(xlsxrows, "write_cells", lambda *a, **k: (calls.append(1), real(*a, **k)))
    n = 5
    rows = {"cols": [["x" * 30] * n] * 2 + [list(range(n)), [None] * n] + [["y" * 30] * n] * 3,
            "codes": [0] * n, "widths": [300] * len(HEADERS)}
    files = _write(tmp_path / "rows.xlsx", rows, bulk=True, rules=_rules(1000, True, cap=600))
    assert calls == [1] and "xl/worksheets/sheet2.xml" in files  # the continuation sheet is there


@pytest.mark.parametrize("constant_memory", [False])
def test_write_rows_outside_constant_memory_mode(tmp_path, constant_memory):
    rows = {"cols": [["a", None, "b\nc"], ["d", "e", "f"], [1, 2.5, None], [None] * 3, ["g"] * 3, ["h"] * 3,
                     ["i"] * 3], "codes": [0, 1, 2], "widths": [80] * len(HEADERS)}
    rules = _rules(1000, False)
    assert _write(tmp_path / "a.xlsx", rows, bulk=True, rules=rules, constant_memory=constant_memory) == \
        _write(tmp_path / "b.xlsx", rows, bulk=False, rules=rules, constant_memory=constant_memory)


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.text(alphabet=st.sampled_from(list("aZ 中≥→\n\t😀")), max_size=80), max_size=20),
       width=st.floats(10, 600), char_px=st.floats(3, 20))
def test_text_lines_many_counts_as_text_lines(texts, width, char_px):
    got = printrows.text_lines_many(texts, width, char_px).tolist()
    assert got == [text_lines(t, width, char_px) for t in texts]
