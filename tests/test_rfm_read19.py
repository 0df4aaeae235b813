"""Issue 19, RFM: the visits export read with the CSV reader typing plain dates and
amounts itself and the VIN kept as codes (``read_visits``) gives the very frame, result
and messages that reading everything as text gives — on the sample export, on a
generated one, and on the files where the reader must fall back to text."""

from __future__ import annotations

import csv
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import write_table
from tierctl.errors import InputError
from tierctl.io.ingest import read_export
from tierctl.io.readers import read_sheet
from tierctl.rfm import compute_rfm, load_rfm_model
from tierctl.rfm.run import read_visits

ROOT = Path(__file__).resolve().parent.parent
AS_OF = date(2026, 11, 24)
HEAD = ["结算单号", "客户编号", "客户姓名", "手机号", "车架号", "结算日期", "结算金额", "KOL"]


def _plain(path: Path, model):
    return read_export(path, model.columns)


def _same(path: Path, model=None) -> None:
    """read_visits and the all-text read give equal frames (less the VIN), equal notes
    and byte-equal JSON."""
    model = model or load_rfm_model()
    fast, slow = read_visits(path, model), _plain(path, model)
    assert fast.headers == slow.headers
    assert fast.warnings == slow.warnings and fast.skipped == slow.skipped
    cols = [c for c in slow.frame.columns if c in fast.frame.columns]
    pd.testing.assert_frame_equal(fast.frame[cols], slow.frame[cols])
    assert compute_rfm(fast.frame, model, AS_OF).to_json_bytes() == \
        compute_rfm(slow.frame, model, AS_OF).to_json_bytes()


@pytest.fixture(scope="module")
def sample_utf8(tmp_path_factory) -> Path:
    """The sample export (GBK, slash dates) as UTF-8 with ISO dates: the fast path."""
    src = ROOT / "sample_data" / "visits.csv"
    rows = list(csv.reader(src.open(encoding="gb18030", newline="")))
    out = tmp_path_factory.mktemp("v") / "visits_utf8.csv"
    di = rows[1].index("结算日期")
    for r in rows[2:]:
        if len(r) > di and r[di].count("/") == 2:
            y, m, d = r[di].split("/")
            r[di] = f"{y}-{int(m):02d}-{int(d):02d}"
    with open(out, "w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return out


def test_reader_types_plain_dates_and_numbers(tmp_path):
    path = write_table(tmp_path / "v.csv", HEAD, [["RO1", "C1", "王", "138", "VIN1", "2026-11-01", "10.5", ""],
                                                  ["RO2", "C2", "李", "139", "VIN2", "", "-3", ""]])
    raw = read_sheet(path, header_score=lambda cells: len(cells),
                     native=lambda names: {"结算日期": "date", "结算金额": "number", "车架号": "category"})
    f = raw.frame
    assert f["结算日期"].dtype == "datetime64[ns]" and f["结算日期"].isna().tolist() == [False, True]
    assert isinstance(f["结算金额"].dtype, pd.Float64Dtype) and f["结算金额"].tolist() == [10.5, -3.0]
    assert isinstance(f["车架号"].dtype, pd.CategoricalDtype)
    assert f["客户编号"].tolist() == ["C1", "C2"]


def test_read_visits_leaves_the_vin_out_per_owner_and_keeps_it_per_vehicle(tmp_path):
    path = write_table(tmp_path / "v.csv", HEAD, [["RO1", "C1", "王", "138", "VIN1", "2026-11-01", "10.5", ""]])
    model = load_rfm_model()
    owner = read_visits(path, model)
    assert "vin" not in owner.frame.columns and owner.headers["vin"] == "车架号"
    assert "车架号" not in owner.ignored_columns
    per_vin = read_visits(path, model.with_unit("vin"))
    assert per_vin.frame["vin"].tolist() == ["VIN1"]


def test_sample_export_same_result(sample_utf8):
    _same(sample_utf8)
    _same(sample_utf8, load_rfm_model().with_unit("vin"))


def test_generated_export_same_result(tmp_path):
    sys.path.insert(0, str(ROOT / "sample_data"))
    from generate_visits import write_big

    _same(write_big(tmp_path / "big.csv", 3000, 400))


def test_odd_values_after_the_first_rows_fall_back_to_text(tmp_path):
    rows = [[f"RO{i}", f"C{i % 7}", "王", "138", "VIN", "2026-10-01", "100", ""] for i in range(400)]
    rows[350][5] = "2026/10/05"  # a slash date deep in the file: read as text, parsed as usual
    rows[360][6] = "1,200元"
    rows[370][5] = " 2026-10-07 "
    _same(write_table(tmp_path / "v.csv", HEAD, rows))


def test_bad_cells_keep_their_messages(tmp_path):
    rows = [[f"RO{i}", f"C{i % 7}", "王", "138", "VIN", "2026-10-01", "100", ""] for i in range(400)]
    rows[300][6] = "abc"
    rows[310][5] = "0001-01-01"
    path = write_table(tmp_path / "v.csv", HEAD, rows)
    model = load_rfm_model()
    with pytest.raises(InputError) as fast:
        read_visits(path, model)
    with pytest.raises(InputError) as slow:
        _plain(path, model)
    assert str(fast.value) == str(slow.value)
    assert sorted((p.row, p.column, p.value) for p in fast.value.problems) == [(302, "结算金额", "abc"),
                                                                                 (312, "结算日期", "0001-01-01")]


def test_blank_rows_notes_and_a_row_with_only_a_vin(tmp_path):
    rows = [[f"RO{i}", f"C{i % 7}", "王", "138", "VIN", "2026-10-01", "100", ""] for i in range(50)]
    rows[10] = ["", "", "", "", "VINONLY", "", "", ""]  # not blank: a row the notes must name
    rows[20] = ["", "C1", "王", "138", "", "2026-10-02", "50", ""]  # no order number: typed cells after it
    rows += [["", "", "", "", "", "", "", ""], ["合计", "", "", "", "", "", "5000", ""],
             ["", "", "", "", "", "", "", ""], ["", "", "", "", "", "", "12345.00", ""]]
    _same(write_table(tmp_path / "v.csv", HEAD, rows))


def test_json_document_joins_sliced_lists():
    import json

    import pyarrow as pa

    from tierctl.kernels.json_records import Verbatim, json_document_bytes

    items = pa.array(['{"a": 1}', '{"b": "中"}', '{"c": null}'], pa.large_string())
    doc = {"n": 1, "all": Verbatim(items), "tail": Verbatim(items.slice(1)), "none": Verbatim(items.slice(3)),
           "plain": [1, {"k": "v"}]}
    text = json_document_bytes(doc)
    assert json.loads(text) == {"n": 1, "all": [{"a": 1}, {"b": "中"}, {"c": None}],
                                "tail": [{"b": "中"}, {"c": None}], "none": [], "plain": [1, {"k": "v"}]}
    assert text.startswith(b'{\n  "n": 1,\n  "all": [\n    {"a": 1},\n    {"b"') and text.endswith(b"\n  ]\n}\n")


@pytest.mark.parametrize("odd", ["inf", "-Infinity", "nan", "NaN", "1e5", " 12.5 "])
def test_odd_numbers_late_in_the_file_read_as_the_text_path_reads_them(tmp_path, odd):
    """Arrow's float reader takes inf, nan and 1e5 as numbers; the text path reports an
    endless amount as a bad cell and reads nan as empty. A late cell (after the rows the
    reader looks at first) must give the same frame or the same message on both paths."""
    rows = [[f"RO{i}", f"C{i % 7}", "王", "138", "VIN", "2026-10-01", "100", ""] for i in range(400)]
    rows[350][6] = odd
    path = write_table(tmp_path / "v.csv", HEAD, rows)
    model = load_rfm_model()
    try:
        slow = _plain(path, model)
    except InputError as exc:
        with pytest.raises(InputError) as fast:
            read_visits(path, model)
        assert str(fast.value) == str(exc)
        return
    _same(path, model)
    assert slow.frame is not None
