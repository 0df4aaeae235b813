"""The RFM listings are written a column at a time (``PrintWorksheet.write_rows``): every
file inside the workbook is the same, byte for byte, as when each cell is written on its
own the way the listing did before (text without a format, dates and numbers with
theirs, an empty value no cell at all) — in memory and streamed, with empty dates and
amounts among the rows."""

from __future__ import annotations

import zipfile
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from tierctl.io.ingest import read_export
from tierctl.io.printsetup import PrintWorksheet
from tierctl.rfm import compute_rfm, flow_customers, load_rfm_model, migrate
from tierctl.rfm.report import write_weekly
from tierctl.rfm.report_migration import write_migration

ROOT = Path(__file__).resolve().parent.parent
AS_OF = date(2026, 11, 24)


def _per_cell(ws, first_row, columns, styles=None, first_col=0):
    """The listing's rows as it wrote them cell by cell: present values only."""
    calls = {"s": ws.write_string, "n": ws.write_number, "d": ws.write_datetime}
    for i in range(len(columns[0].values)):
        for j, c in enumerate(columns):
            v = c.values[i]
            if v is not None:
                calls[c.kind](first_row + i, first_col + j, v, c.formats[0])


def _files(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist() if n != "docProps/core.xml"}  # core.xml: the clock


@pytest.fixture(scope="module")
def model():
    return load_rfm_model()


@pytest.fixture(scope="module")
def result(model):
    frame = read_export(ROOT / "sample_data" / "visits.csv", model.columns).frame
    res = compute_rfm(frame, model, AS_OF)
    c = res.customers.copy()
    rng = np.random.default_rng(5)
    for col in ("last_visit", "monetary", "recency_days"):  # some empty dates and numbers
        c.loc[rng.random(len(c)) < 0.2, col] = None
    res.customers = c
    return res


@pytest.mark.parametrize("stream", [False, True])
def test_weekly_listings_are_the_same_file_as_a_write_per_cell(tmp_path, monkeypatch, model, result, stream):
    rows = write_weekly(result, model, tmp_path / "rows.xlsx", stream=stream)
    monkeypatch.setattr(PrintWorksheet, "write_rows", _per_cell)
    cells = write_weekly(result, model, tmp_path / "cells.xlsx", stream=stream)
    expected, actual = _files(cells), _files(rows)
    assert actual.keys() == expected.keys()
    for name in expected:
        assert actual[name] == expected[name], name


def test_migration_listing_is_the_same_file_as_a_write_per_cell(tmp_path, monkeypatch, model):
    frame = read_export(ROOT / "sample_data" / "visits.csv", model.columns).frame
    prev = compute_rfm(frame, model, date(2026, 10, 24))
    curr = compute_rfm(frame, model, AS_OF, edges=prev.edges)
    mig = migrate(prev, curr, model)
    flows = flow_customers(mig, prev.customers, curr.customers, "customer_id")
    rows = write_migration(mig, model, tmp_path / "rows.xlsx", flows=flows)
    monkeypatch.setattr(PrintWorksheet, "write_rows", _per_cell)
    cells = write_migration(mig, model, tmp_path / "cells.xlsx", flows=flows)
    assert _files(rows) == _files(cells)
