"""Reading real exports: encodings, workbooks, headers, dates, mapping files, and errors
that name the file, the Excel row, the column and the value."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierctl.errors import InputError, ModelError, UsageError
from tierctl.io.ingest import (
    ColumnSpec,
    _arrow_text,
    convert,
    fold_header,
    load_mapping,
    normalise_header,
    read_export,
)
from tierctl.io.readers import detect_encoding
from tierctl.shortage import score

ROWS = [
    {"客户编号": "00123", "客户姓名": "张先生", "手机号": "13812340001", "等待天数": 24, "粉丝数": "52000",
     "用车场景": "网约车", "沟通记录": "觉得我们在忽悠他"},
    {"客户编号": "00124", "客户姓名": "王女士", "手机号": "013912340002", "等待天数": 16, "粉丝数": "",
     "用车场景": "唯一用车，接送孩子", "沟通记录": "每隔两三天问一次"},
]


def _records(path, rite, **kw):
    from conftest import AS_OF, NOW

    ex = read_export(path, rite.columns, **kw)
    return score(ex.frame, rite, AS_OF, NOW, headers=ex.headers, path=path).records()


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_encodings_give_the_same_result(write_csv, rite, encoding):
    base = _records(write_csv(ROWS, "base.csv"), rite)
    other = _records(write_csv(ROWS, f"x_{encoding}.csv", encoding=encoding), rite)
    assert other == base
    assert base[0]["customer_id"] == "00123" and base[1]["phone"] == "013912340002"  # text kept


def test_detect_encoding(write_csv):
    assert detect_encoding(write_csv(ROWS, "a.csv", encoding="gbk")) == "gb18030"
    assert detect_encoding(write_csv(ROWS, "b.csv", encoding="utf-8-sig")) == "utf-8-sig"
    assert detect_encoding(write_csv(ROWS, "c.csv")) == "utf-8"


def test_gbk_file_whose_first_megabyte_is_ascii(tmp_path, rite):
    # Only a late row has Chinese text: the sniffed UTF-8 must be retried as GB18030.
    rows = [{"客户编号": f"{i:05d}", "客户姓名": "x" * 20, "等待天数": 1} for i in range(40000)]
    rows.append({"客户编号": "99999", "客户姓名": "王女士", "等待天数": 1})
    p = tmp_path / "late.csv"
    pd.DataFrame(rows).rename(columns={"客户编号": "ID", "客户姓名": "name", "等待天数": "wait days"}).to_csv(
        p, index=False, encoding="gbk")
    ex = read_export(p, rite.columns)
    assert ex.frame["name"].iloc[-1] == "王女士" and ex.encoding == "gb18030"


def _xlsx(path: Path, rows: list[dict], *, title: bool = True, sheets=("缺件客户",), date_cells=True) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "说明"
    ws["A1"] = "导出说明"
    for name in sheets:
        ws = wb.create_sheet(name)
        r0 = 1
        if title:
            ws.cell(1, 1, "配件短缺客户清单")
            r0 = 3
        headers = list(rows[0])
        for j, h in enumerate(headers, 1):
            ws.cell(r0, j, h)
        for i, row in enumerate(rows, r0 + 1):
            for j, h in enumerate(headers, 1):
                v = row[h]
                if h == "登记日期" and date_cells:
                    v = dt.datetime.fromisoformat(v)
                ws.cell(i, j, v)
    wb.save(path)
    return path


def test_xlsx_with_title_rows_and_several_sheets(tmp_path, rite, write_csv):
    rows = [{**r, "等待天数": r["等待天数"]} for r in ROWS]
    p = _xlsx(tmp_path / "e.xlsx", rows)
    by_name = _records(p, rite, sheet="缺件客户")
    assert by_name == _records(write_csv(ROWS), rite) or [r["dims"] for r in by_name] == [
        r["dims"] for r in _records(write_csv(ROWS), rite)]
    assert [r["row"] for r in by_name] == [4, 5]  # title row + blank row + header row
    by_index = _records(p, rite, sheet="2")
    assert [r["dims"] for r in by_index] == [r["dims"] for r in by_name]


def test_xlsx_numbers_dates_and_leading_zeros(tmp_path, rite):
    rows = [{"客户编号": "00123", "客户姓名": "张", "手机号": 13812340001, "登记日期": "2026-11-01", "粉丝数": 52000.0}]
    p = _xlsx(tmp_path / "d.xlsx", rows, title=False, sheets=("S",))
    ex = read_export(p, rite.columns, sheet="S")
    assert ex.frame["customer_id"].iat[0] == "00123"
    assert ex.frame["phone"].iat[0] == "13812340001"  # not 13812340001.0
    assert ex.frame["wait_start"].iat[0] == pd.Timestamp("2026-11-01")


def test_first_sheet_without_header_is_skipped(tmp_path, rite):
    p = _xlsx(tmp_path / "auto.xlsx", [{**ROWS[0], "登记日期": "2026-11-01"}])
    ex = read_export(p, rite.columns)
    assert ex.sheet == "缺件客户" and any("缺件客户" in w for w in ex.warnings)


def test_unknown_sheet_is_a_usage_error(tmp_path, rite):
    p = _xlsx(tmp_path / "s.xlsx", [{**ROWS[0], "登记日期": "2026-11-01"}])
    with pytest.raises(UsageError) as ei:
        read_export(p, rite.columns, sheet="不存在")
    assert "缺件客户" in str(ei.value)


@pytest.mark.parametrize("text,expected", [
    ("2026-11-23", "2026-11-23"), ("2026/11/23", "2026-11-23"), ("2026年11月23日", "2026-11-23"),
    ("2026.11.3", "2026-11-03"), ("46349", "2026-11-23"), ("2026-11-23 14:05:00", "2026-11-23"),
    ("20261123", "2026-11-23"), ("２０２６年１１月２３日", "2026-11-23"),
])
def test_date_formats(write_csv, rite, text, expected):
    ex = read_export(write_csv([{"客户姓名": "x", "登记日期": text}]), rite.columns)
    assert ex.frame["wait_start"].iat[0] == pd.Timestamp(expected)


def test_header_variants():
    assert normalise_header("等待天数（天）") == normalise_header("等待天数")
    assert normalise_header(" Customer  ID ") == normalise_header("customerid")
    assert normalise_header("\ufeff客户编号") == "客户编号"


def test_mapping_file(tmp_path, rite, write_csv):
    p = write_csv([{"会员卡号": "A1", "车主": "x", "排队天数": 5}])
    m = tmp_path / "map.toml"
    m.write_text('[columns]\ncustomer_id = "会员卡号"\nwait_days = ["排队天数", "排队时间"]\n', encoding="utf-8")
    ex = read_export(p, rite.columns, mapping=load_mapping(m), mapping_path=m)
    assert ex.frame["customer_id"].iat[0] == "A1" and int(ex.frame["wait_days"].iat[0]) == 5
    m.write_text('[columns]\nwait_days = "不存在的列"\n', encoding="utf-8")
    with pytest.raises(InputError) as ei:
        read_export(p, rite.columns, mapping=load_mapping(m), mapping_path=m)
    assert "不存在的列" in str(ei.value) and "排队天数" in str(ei.value)
    m.write_text('[columns]\nnot_a_field = "x"\n', encoding="utf-8")
    with pytest.raises(ModelError) as ei:
        read_export(p, rite.columns, mapping=load_mapping(m), mapping_path=m)
    assert "not_a_field" in str(ei.value)


# -- errors ---------------------------------------------------------------------------------
def test_bad_number_names_file_row_column_value(write_csv, rite):
    p = write_csv([{"客户姓名": "a", "等待天数": 3}, {"客户姓名": "b", "等待天数": "三天"}])
    with pytest.raises(InputError) as ei:
        read_export(p, rite.columns)
    msg = str(ei.value)
    assert str(p) in msg and "第 3 行" in msg and "等待天数" in msg and "三天" in msg and "数字" in msg


def test_units_and_wan_are_understood(write_csv, rite):
    ex = read_export(write_csv([{"客户姓名": "a", "等待天数": "12天", "粉丝数": "1.5万"}]), rite.columns)
    assert int(ex.frame["wait_days"].iat[0]) == 12 and float(ex.frame["followers"].iat[0]) == 15000


def test_bad_date(write_csv, rite):
    with pytest.raises(InputError) as ei:
        read_export(write_csv([{"客户姓名": "a", "登记日期": "2026-02-30"}]), rite.columns)
    assert "第 2 行" in str(ei.value) and "2026-02-30" in str(ei.value)


def test_missing_required_columns(write_csv, rite):
    with pytest.raises(InputError) as ei:
        read_export(write_csv([{"车型": "Model 3", "等待天数": 3}]), rite.columns)
    msg = str(ei.value)
    assert "客户编号" in msg and "客户姓名" in msg and "--mapping" in msg


def test_duplicate_ids_are_reported_not_merged(write_csv, rite):
    p = write_csv([{"客户编号": "A", "等待天数": 1}, {"客户编号": "B", "等待天数": 1}, {"客户编号": "A", "等待天数": 2}])
    with pytest.raises(InputError) as ei:
        read_export(p, rite.columns)
    assert "重复" in str(ei.value) and "第 2 行" in str(ei.value) and "第 4 行" in str(ei.value)


@pytest.mark.parametrize("ids, dup", [
    (["A", "", "B", ""], False),  # two customers without an id (named instead) are not duplicates
    (["A", "", "A", "B"], True),
    (["", "", "", "C"], False),
    (["A", "B", "C", "B"], True),
])
def test_duplicate_ids_with_blanks(write_csv, rite, ids, dup):
    rows = [{"客户编号": i, "客户姓名": f"客户{n}", "等待天数": 1} for n, i in enumerate(ids)]
    if dup:
        with pytest.raises(InputError, match="重复"):
            read_export(write_csv(rows), rite.columns)
    else:
        assert len(read_export(write_csv(rows), rite.columns).frame) == len(ids)


def test_blank_rows_keep_excel_numbering(tmp_path, rite):
    p = tmp_path / "blank.csv"
    p.write_text("客户姓名,等待天数\na,1\n,\nb,x\n", encoding="utf-8")
    with pytest.raises(InputError) as ei:
        read_export(p, rite.columns)
    assert "第 4 行" in str(ei.value)


def test_empty_and_missing_and_fake_files(tmp_path, rite):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="空"):
        read_export(empty, rite.columns)
    with pytest.raises(InputError, match="不存在"):
        read_export(tmp_path / "nope.xlsx", rite.columns)
    fake = tmp_path / "fake.xlsx"
    fake.write_text("客户姓名,等待天数\na,1\n", encoding="utf-8")
    with pytest.raises(InputError, match="不是 Excel"):
        read_export(fake, rite.columns)
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(InputError, match="损坏"):
        read_export(broken, rite.columns)


def test_csv_saved_as_xls_is_read_as_text(tmp_path, rite):
    p = tmp_path / "export.xls"
    p.write_text("客户姓名\t等待天数\na\t5\n", encoding="gbk")
    ex = read_export(p, rite.columns)
    assert int(ex.frame["wait_days"].iat[0]) == 5


def test_xlsx_with_entity_declaration_is_refused(tmp_path, rite):
    good = _xlsx(tmp_path / "g.xlsx", [{**ROWS[0], "登记日期": "2026-11-01"}])
    evil = tmp_path / "evil.xlsx"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(evil, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == "xl/workbook.xml":
                data = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>' + \
                    data.split(b"?>", 1)[-1]
            zout.writestr(item, data)
    with pytest.raises(InputError, match="实体"):
        read_export(evil, rite.columns)


def test_zip_bomb_is_refused(tmp_path, rite, monkeypatch):
    from tierctl.io import readers

    p = _xlsx(tmp_path / "b.xlsx", [{**ROWS[0], "登记日期": "2026-11-01"}])
    monkeypatch.setattr(readers, "MAX_XLSX_UNCOMPRESSED", 1000)
    with pytest.raises(InputError, match="压缩炸弹"):
        read_export(p, rite.columns)


def test_input_file_is_never_modified(write_csv, rite):
    p = write_csv(ROWS)
    before = p.read_bytes()
    _records(p, rite)
    assert p.read_bytes() == before


def test_sample_exports_agree(rite):
    from tierctl.io.ingest import read_export as rx

    root = Path(__file__).resolve().parent.parent / "sample_data"
    results = []
    for name in ("shortage.xlsx", "shortage_gbk.csv", "shortage_utf8.csv"):
        ex = rx(root / name, rite.columns)
        from conftest import AS_OF, NOW

        results.append([{k: v for k, v in r.items() if k != "row"}
                        for r in score(ex.frame, rite, AS_OF, NOW).records()])
    assert results[0] == results[1] == results[2]
    assert len(results[0]) == 40


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(alphabet=" \t\u3000\u00a0\u2003\u200b甲A1\n\r", max_size=6)),
                max_size=20))
def test_text_read_by_arrow_is_trimmed_exactly_as_the_pandas_path_trims_it(cells):
    """A CSV read by Arrow takes a faster way through the text conversion; it must give
    what the general path gives (the same whitespace trimmed, blanks missing)."""
    spec = ColumnSpec("name", "text", ("姓名",))
    arrow = pd.Series(cells, dtype=pd.StringDtype("pyarrow", na_value=np.nan))
    plain = pd.Series(cells, dtype=pd.StringDtype("python", na_value=np.nan))
    assert _arrow_text(plain) is None  # not Arrow-backed: the general path
    fast, errs = convert(arrow, spec)
    slow, _ = convert(plain, spec)
    assert errs == [] and fast.dtype == pd.StringDtype("pyarrow", na_value=np.nan)
    assert fast.isna().tolist() == slow.isna().tolist()
    assert fast.dropna().tolist() == slow.dropna().tolist()
    assert not any(v == "" or v != v.strip() for v in fast.dropna())


def test_a_large_export_is_typed_column_by_column_side_by_side_with_the_same_result(tmp_path, rite, monkeypatch):
    """From 50,000 rows the columns are typed on threads: the typed frame, and the bad
    cells reported (file row, column, value, in column order), equal typing them one
    after another."""
    import csv

    from tierctl.io import ingest

    head = ["客户编号", "客户姓名", "手机号", "登记日期", "用车场景", "近7天联系次数", "沟通记录"]
    rows = [[f"C{i:06d}", f"客户{i}", f"139{i:08d}", "2026-11-01", "通勤", i % 5, " 催问 " if i % 7 else ""]
            for i in range(60_000)]
    path = tmp_path / "big.csv"

    def write(rs):
        with open(path, "w", newline="", encoding="utf-8-sig") as fh:
            w = csv.writer(fh)
            w.writerow(head)
            w.writerows(rs)

    def both():
        out = []
        for threshold in (10**12, ingest.PARALLEL_ROWS):
            monkeypatch.setattr(ingest, "PARALLEL_ROWS", threshold)
            try:
                out.append(read_export(path, rite.columns).frame)
            except InputError as err:
                out.append([(p.row, p.column, p.value, p.message) for p in err.problems] + [err.total])
        return out

    write(rows)
    seq, par = both()
    pd.testing.assert_frame_equal(seq, par)
    assert par["notes"].isna().sum() == len([r for r in rows if not r[6]])
    rows[100][3] = "2026-13-45"
    rows[59_000][5] = "很多次"
    rows[30_000][3] = "昨天"
    write(rows)
    seq, par = both()
    assert seq == par
    assert [p[:3] for p in par[:-1]] == [(102, "登记日期", "2026-13-45"), (30_002, "登记日期", "昨天"),
                                        (59_002, "近7天联系次数", "很多次")]


def test_typing_on_threads_leaves_the_warnings_machinery_as_it_found_it(tmp_path, rite, monkeypatch):
    """pandas swaps the process-wide warnings state inside the steps the threads run; after
    an ingest the filters and the function that shows a warning must be as before (else a
    later warning may vanish).  Thread switches are made very frequent to provoke the race.

    Many reads of a small export provoke the race more often for the time than a few reads
    of a large one (measured with the restore in thread_map taken out: 6 of 1,000 reads of
    50 rows left the state changed, none of 150 reads of 2,000 rows): 120 reads of 50 rows
    catch the broken code about half the time, where 40 reads of 2,000 rows took twice the
    time and rarely did."""
    import csv
    import sys
    import warnings

    from tierctl.io import ingest

    head = ["客户编号", "客户姓名", "手机号", "登记日期", "用车场景", "近7天联系次数", "沟通记录"]
    path = tmp_path / "w.csv"
    with open(path, "w", newline="", encoding="utf-8-sig") as fh:
        w = csv.writer(fh)
        w.writerow(head)
        w.writerows([[f"C{i:05d}", f"客户{i}", f"139{i:08d}", "2026-11-01" if i % 3 else "2026/11/01", "通勤",
                      f"{i % 5}次", " 催问 " if i % 7 else ""] for i in range(50)])
    monkeypatch.setattr(ingest, "PARALLEL_ROWS", 0)
    before_filters, before_show = list(warnings.filters), warnings._showwarnmsg_impl
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(120):
            read_export(path, rite.columns)
            assert warnings.filters == before_filters and warnings._showwarnmsg_impl is before_show
    finally:
        sys.setswitchinterval(interval)


def test_header_folding_memoised_by_str_value():
    # 1, 1.0 and True hash alike: the memo must still keep their spellings apart
    assert [normalise_header(v) for v in (1, 1.0, True, "1")] == ["1", "1.0", "true", "1"]
    assert [fold_header(v) for v in (True, 1, 1.0)] == ["true", "1", "1.0"]
    assert normalise_header(" Ａ Ｂ（天）") == normalise_header("ab") == "ab"


def test_alias_index_follows_replaced_and_changed_specs():
    from dataclasses import replace

    from tierctl.io.ingest import ColumnSet, ColumnSpec
    cs = ColumnSet({"wait": ColumnSpec(name="wait", kind="text", aliases=("等待天数",))})
    assert cs.header_score(["等待天数", "金额"]) == 1
    cs.specs = {"amount": ColumnSpec(name="amount", kind="text", aliases=("金额",))}
    assert cs.header_score(["等待天数", "金额"]) == 1 and cs._alias_index() == {"金额": "amount"}
    cs.specs["amount"] = replace(cs.specs["amount"], aliases=("金额", "等待天数"))
    assert cs.header_score(["等待天数", "金额"]) == 2
