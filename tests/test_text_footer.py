"""Issue 14: what is normal in a real export works in every job — a 合计/小计 row, a notes
block under the data, and an identity header one job knew (会员编号) — with the skipped
rows told in the data-quality messages and Excel's row numbers kept."""

from __future__ import annotations

import json

import pytest
from conftest import AS_OF, NOW
from test_text_issue14 import cli, write_sheet

NOTES = [[], ["备注：数据截至 2026-11-24 08:00"], ["说明 本表由 DMS 导出，仅供内部使用"], ["制表人：王经理"]]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TIERCTL_DB", str(tmp_path / "t.db"))
    monkeypatch.delenv("TIERCTL_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", "200")


def pad(rows, width):
    return [list(r) + [""] * (width - len(r)) for r in rows]


JOBS = {
    # job: (command, headers, rows, footer row)
    "score": (["score"], ["会员编号", "客户姓名", "等待天数", "沟通记录"],
              [["C001", "张三", 26, "催了好几次"], ["C002", "李四", 18, ""], ["C003", "王五", 12, "理解"]],
              ["合计", "", 56, ""]),
    "churn": (["churn"], ["会员编号", "客户姓名", "上次到店日期", "平均回厂间隔", "最近满意度"],
              [["M001", "张三", "2026-05-01", 90, 9], ["M002", "李四", "2026-10-01", 90, 6],
               ["M003", "王五", "2026-08-01", 120, 8]],
              ["总计", "", "", "", ""]),
    "rfm": (["rfm"], ["会员编号", "客户姓名", "到店日期", "金额", "工单号"],
            [["M001", "张三", "2026-11-01", 1200, "RO1"], ["M002", "李四", "2026-06-01", 300, "RO2"],
             ["M003", "王五", "2026-10-15", 5000, "RO3"], ["M001", "张三", "2026-09-01", 800, "RO4"]],
            ["合计", "", "", 7300, ""]),
    "grade": (["grade"], ["会员编号", "客户姓名", "近12个月消费", "到店次数", "满意度", "潜力评分"],
              [["M001", "张三", 12000, 6, 9, 80], ["M002", "李四", 3000, 2, 7, 40], ["M003", "王五", 500, 1, 8, 20]],
              ["合计", "", 15500, 9, "", ""]),
}


def ids_in(job, doc):
    return sorted(c["customer_id"] for c in doc["customers"])


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
@pytest.mark.parametrize("job", list(JOBS))
def test_footer_notes_and_member_id_work_in_every_job(job, suffix, tmp_path, capsys):
    cmd, headers, rows, total = JOBS[job]
    p = write_sheet(tmp_path / f"{job}{suffix}", headers, rows, title="客户清单（导出时间 2026-11-24 08:05）",
                    footer=pad([total, *NOTES], len(headers)) if suffix == ".xlsx" else [total, *NOTES])
    code, out, err = cli(capsys, *cmd, str(p), "--dry-run", "-f", "json", "--as-of", AS_OF.isoformat(),
                         *(["--now", NOW.isoformat()] if job == "score" else []))
    assert code == 0, err
    doc = json.loads(out)
    assert ids_in(job, doc) == sorted({r[0] for r in rows})
    # title = row 1, header = row 2, data rows 3.., then the total, a blank row and three notes
    total_row = 3 + len(rows)
    assert f"第 {total_row} 行" in err and total[0] in err
    assert f"第 {total_row + 2}–{total_row + 4} 行" in err and "备注：数据截至" in err
    assert "错误" not in err


def test_score_rows_after_a_subtotal_keep_excel_numbers(rite, tmp_path):
    from tierctl.errors import InputError
    from tierctl.io.ingest import read_export
    from tierctl.shortage import score

    p = write_sheet(tmp_path / "s.xlsx", ["客户编号", "客户姓名", "等待天数"],
                    [["C1", "甲", 3], ["小计", "", 3], ["C2", "乙", "abc"]], title="缺件客户")
    with pytest.raises(InputError) as ei:
        read_export(p, rite.columns)
    assert "第 5 行" in str(ei.value) and "abc" in str(ei.value)
    p = write_sheet(tmp_path / "s.csv", ["客户编号", "客户姓名", "等待天数"],
                    [["C1", "甲", 3], ["小计", "", 3], ["C2", "乙", 40]])
    ex = read_export(p, rite.columns)
    assert ex.frame["_row"].tolist() == [2, 4]
    assert any("第 3 行" in w and "小计" in w for w in ex.warnings)
    res = score(ex.frame, rite, AS_OF, NOW, headers=ex.headers, path=p)
    assert {r["row"] for r in res.records()} == {2, 4}


def test_a_lone_cell_row_above_the_blank_line_is_data_not_a_note(rite, tmp_path):
    """Only what sits under the blank line (or starts like a note) is a note: an
    incomplete last customer is still reported, not skipped."""
    from tierctl.errors import InputError
    from tierctl.io.ingest import read_export
    from tierctl.shortage import score

    p = write_sheet(tmp_path / "s.csv", ["客户编号", "客户姓名", "等待天数"],
                    [["C1", "甲", 3], ["C2"]], footer=[[], ["制表：王经理"]])
    ex = read_export(p, rite.columns)
    assert ex.frame["_row"].tolist() == [2, 3]
    with pytest.raises(InputError) as ei:
        score(ex.frame, rite, AS_OF, NOW, headers=ex.headers, path=p)
    assert "第 3 行" in str(ei.value)


def test_summary_words_are_whole_cells(rite, tmp_path):
    from tierctl.io.ingest import read_export

    p = write_sheet(tmp_path / "s.csv", ["客户编号", "客户姓名", "等待天数"],
                    [["C1", "合计先生", 3], ["C2", "说明华", 4], ["合计：2 人", "", 7], ["共 2 人"]])
    ex = read_export(p, rite.columns)
    assert ex.frame["name"].tolist() == ["合计先生", "说明华"]


def test_one_alias_table_for_identity_columns():
    """Every job's export reads the same identity headers (from tierctl/data/columns.toml)."""
    from tierctl.churn import load_churn_model as churn_model
    from tierctl.grade import load_grade_model as grade_model
    from tierctl.io.ingest import ColumnSet, normalise_header, shared_columns
    from tierctl.models.loader import Section
    from tierctl.rfm import load_rfm_model
    from tierctl.shortage import load_model

    sets = {"rite": load_model("rite").columns, "rite100": load_model("rite100").columns,
            "churn": churn_model().ingest_columns, "rfm": load_rfm_model().columns,
            "grade": ColumnSet.from_model(Section.load(grade_model().path, kind="grade"))}
    table = shared_columns().identity
    for name, cs in sets.items():
        for canon, aliases in table.items():
            if canon not in cs.specs:
                continue
            have = {normalise_header(a) for a in cs.specs[canon].aliases}
            # every shared alias, unless the model itself gives that header to another column
            others = {normalise_header(a) for c, s in cs.specs.items() if c != canon for a in s.aliases}
            missing = [a for a in aliases if normalise_header(a) not in have and normalise_header(a) not in others]
            assert not missing, (name, canon, missing)
    assert {"会员编号", "会员号", "客户代码"} <= set(table["customer_id"])
    assert "车牌号" in table["plate"] and "车架号" in table["vin"]
