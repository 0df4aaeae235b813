"""`tierctl rfm` and `tierctl rfm migrate`: exit codes and messages, JSON equal to the
library result, the same ingest as `score`, snapshots in the store (and none with
--dry-run), frozen edges, the weekly and migration workbooks."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from conftest import CliResult, run_cli

from tierctl.io.ingest import load_mapping, read_export
from tierctl.rfm import compute_rfm, load_rfm_model, migrate
from tierctl.store import Store

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "visits.csv"
AS_OF = "2026-11-24"
MONTH_AGO = "2026-10-24"


def run(*args: str, db: Path | None = None, cwd: Path | None = None) -> CliResult:
    return run_cli(*args, cwd=cwd, env={"TIERCTL_DB": None if db is None else str(db)})


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "history.db"


@pytest.fixture(scope="module")
def model():
    return load_rfm_model()


@pytest.fixture(scope="module")
def frame(model):
    return read_export(SAMPLE, model.columns).frame


def library(frame, model, as_of: str, **kw):
    return compute_rfm(frame, model, date.fromisoformat(as_of), **kw)


def snapshots(db: Path) -> list:
    with Store.open(db, readonly=True) as store:
        return store.list_snapshots("rfm")


# ---------------------------------------------------------------------------------------
# tierctl rfm
# ---------------------------------------------------------------------------------------
def test_json_equals_library_result(db, frame, model):
    p = run("rfm", str(SAMPLE), "--as-of", AS_OF, "--format", "json", "--dry-run", db=db)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc == library(frame, model, AS_OF).to_json()
    lin = next(c for c in doc["customers"] if c["customer_id"] == "010086")
    assert (lin["frequency"], lin["monetary"], lin["type_name"]) == (6 - 1, 13800.0, "重要价值")
    assert doc["frequency_basis"] == "order_id" and doc["unit"] == "owner"
    assert not db.exists()  # --dry-run: nothing stored, no file created


def test_run_is_the_default_subcommand(db):
    a = run("rfm", str(SAMPLE), "--as-of", AS_OF, "-f", "json", "--dry-run", db=db)
    b = run("rfm", "run", str(SAMPLE), "--as-of", AS_OF, "-f", "json", "--dry-run", db=db)
    c = run("rfm", "--as-of", AS_OF, str(SAMPLE), "-f", "json", "--dry-run", db=db)
    assert a.returncode == b.returncode == c.returncode == 0, (a.stderr, b.stderr, c.stderr)
    assert a.stdout == b.stdout == c.stdout


def test_table_output(db):
    p = run("rfm", str(SAMPLE), "--as-of", AS_OF, "--dry-run", "--limit", "5", db=db)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    for words in ("RFM 客户分层", "2026-11-24", "302 位客户", "重要价值", "流失", "常见占比", "5–8%", "⚠ 明显偏高",
                  "红色预警", "重要保持、重要挽留", "分箱边界", "分位数", "F 按不同的工单/结算单号计次",
                  "退款", "KOL 提示", "周子涵"):
        assert words in out, words
    assert "另有" in out  # the red-alert list is cut at --limit
    # phone numbers are masked on screen
    assert "13900001234" not in out and "13700009999" not in out
    assert "预览模式" in p.stderr


@pytest.mark.parametrize("args,code,words", [
    (["rfm", "nope.csv"], 1, ["nope.csv", "不存在"]),
    (["rfm", "{sample}", "-f", "csv"], 2, ["--format", "csv"]),
    (["rfm", "{sample}", "--as-of", "2026-13-45"], 2, ["--as-of", "2026-13-45"]),
    (["rfm", "{sample}", "--unit", "car"], 2, ["car", "owner", "vin"]),
    (["rfm", "{sample}", "--model", "nosuch"], 1, ["nosuch"]),
    (["rfm", "{sample}", "--sheet", "2"], 2, ["--sheet"]),
    (["rfm", "{sample}", "--freeze-edges", "2026-10-24", "--dry-run"], 1, ["2026-10-24", "RFM 快照"]),
    (["rfm", "{sample}", "--freeze-edges", "yesterday"], 2, ["--freeze-edges", "yesterday"]),
])
def test_exit_codes_and_messages(db, args, code, words):
    p = run(*[a.replace("{sample}", str(SAMPLE)) for a in args], db=db)
    assert p.returncode == code, (p.stdout, p.stderr)
    for w in words:
        assert w in p.stderr, (w, p.stderr)
    assert "Traceback" not in p.stderr


def test_missing_column_names_what_the_file_has(tmp_path, db):
    src = tmp_path / "no_amount.csv"
    src.write_text("客户编号,客户姓名,到店日期\nC1,张三,2026-11-01\n", encoding="utf-8")
    p = run("rfm", str(src), "--as-of", AS_OF, db=db)
    assert p.returncode == 1
    for w in ("no_amount.csv", "缺少必需的列", "金额", "到店日期", "--mapping"):
        assert w in p.stderr, w
    assert "Traceback" not in p.stderr and not db.exists()


def test_bad_date_and_amount_name_row_column_value(tmp_path, db):
    src = tmp_path / "bad.csv"
    src.write_text("门店到店记录导出\n客户编号,到店日期,金额\nC1,2026-11-01,100\nC2,2026-13-01,200\nC3,2026-11-03,三百\n",
                   encoding="gbk")
    p = run("rfm", str(src), "--as-of", AS_OF, db=db)
    assert p.returncode == 1
    for w in ("bad.csv", "第 4 行", "到店日期", "2026-13-01", "第 5 行", "金额", "三百"):
        assert w in p.stderr, w
    assert "Traceback" not in p.stderr and not db.exists()


def test_same_ingest_as_score_aliases_mapping_xlsx(tmp_path, db, frame, model):
    # English headers, a mapping file for an unknown header, an .xlsx: all one result
    src = pd.read_csv(SAMPLE, encoding="gbk", skiprows=1, dtype=str, keep_default_na=False)
    english = src.rename(columns={"结算单号": "invoice_no", "客户编号": "member card", "客户姓名": "name",
                                  "手机号": "mobile", "车架号": "VIN", "结算日期": "date", "结算金额": "amount"})
    csv_path = tmp_path / "english.csv"
    english.to_csv(csv_path, index=False, encoding="utf-8-sig")
    mapping = tmp_path / "map.toml"
    mapping.write_text('[columns]\ncustomer_id = "member card"\n', encoding="utf-8")
    p = run("rfm", str(csv_path), "--mapping", str(mapping), "--as-of", AS_OF, "-f", "json", "--dry-run", db=db)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    ref = library(frame, model, AS_OF).to_json()
    assert doc["customers"] == ref["customers"] and doc["summary"] == ref["summary"]
    ex = read_export(csv_path, model.columns, mapping=load_mapping(mapping))
    assert ex.headers["customer_id"] == "member card"

    xlsx = tmp_path / "visits.xlsx"
    with pd.ExcelWriter(xlsx, engine="xlsxwriter") as w:
        src.to_excel(w, index=False, sheet_name="结算明细")
    p = run("rfm", str(xlsx), "--as-of", AS_OF, "-f", "json", "--dry-run", db=db)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["customers"] == ref["customers"]
    # the xlsx has no title line: every Excel row is one less than in the CSV
    rows_csv = [q["row"] for q in ref["quality"] if q["kind"] == "after_as_of"]
    assert [q["row"] for q in doc["quality"] if q["kind"] == "after_as_of"] == [r - 1 for r in rows_csv]


def test_unit_vin(db, frame, model):
    p = run("rfm", str(SAMPLE), "--as-of", AS_OF, "--unit", "vin", "-f", "json", "--dry-run", db=db)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["unit"] == "vin" and "vin" in doc["customers"][0]
    assert doc == library(frame, model.with_unit("vin"), AS_OF).to_json()
    assert len(doc["customers"]) > 302  # owners with two cars count twice


# ---------------------------------------------------------------------------------------
# snapshots
# ---------------------------------------------------------------------------------------
def test_each_run_is_stored_once_per_as_of(db, frame, model):
    p = run("rfm", str(SAMPLE), "--as-of", AS_OF, "-f", "json", db=db)
    assert p.returncode == 0, p.stderr
    assert "已保存 RFM 快照" in p.stderr
    snaps = snapshots(db)
    assert [(s.as_of.isoformat(), s.row_count, s.source_name) for s in snaps] == [(AS_OF, 302, "visits.csv")]
    lib = library(frame, model, AS_OF)
    assert snaps[0].meta["edges"] == lib.edges.to_dict()
    assert snaps[0].meta["unit"] == "owner" and snaps[0].meta["frequency_basis"] == "order_id"
    assert len(snaps[0].source_hash or "") == 64
    with Store.open(db, readonly=True) as store:
        rows = store.snapshot_rows(snaps[0].id)
    assert rows["customer_key"].tolist() == lib.customers["customer_id"].tolist()
    assert rows["label"].tolist() == lib.customers["type_name"].tolist()

    again = run("rfm", str(SAMPLE), "--as-of", AS_OF, db=db)
    assert again.returncode == 0 and "替换" in again.stderr
    assert len(snapshots(db)) == 1  # re-running the same as-of date replaces, never duplicates

    dry = run("rfm", str(SAMPLE), "--as-of", MONTH_AGO, "--dry-run", db=db)
    assert dry.returncode == 0 and "未保存快照" in dry.stderr
    assert [s.as_of.isoformat() for s in snapshots(db)] == [AS_OF]


def test_freeze_edges_from_a_stored_snapshot(db, frame, model):
    assert run("rfm", str(SAMPLE), "--as-of", MONTH_AGO, db=db).returncode == 0
    p = run("rfm", str(SAMPLE), "--as-of", AS_OF, "--freeze-edges", MONTH_AGO, "-f", "json", db=db)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    prev = library(frame, model, MONTH_AGO)
    assert doc["binning"] == "frozen" and doc["edges"] == prev.edges.to_dict()
    assert doc == library(frame, model, AS_OF, edges=prev.edges).to_json()
    snaps = {s.as_of.isoformat(): s for s in snapshots(db)}
    assert snaps[AS_OF].meta["frozen_from"] == MONTH_AGO and snaps[AS_OF].meta["binning"] == "frozen"
    # "latest": the newest snapshot before the as-of date
    latest = run("rfm", str(SAMPLE), "--as-of", AS_OF, "--freeze-edges", "latest", "-f", "json", "--dry-run", db=db)
    assert json.loads(latest.stdout) == doc
    table = run("rfm", str(SAMPLE), "--as-of", AS_OF, "--freeze-edges", MONTH_AGO, "--dry-run", db=db)
    assert f"冻结（沿用 {MONTH_AGO} 快照的边界）" in table.stdout
    # another unit cannot reuse these edges
    vin = run("rfm", str(SAMPLE), "--as-of", AS_OF, "--freeze-edges", MONTH_AGO, "--unit", "vin", db=db)
    assert vin.returncode == 2 and "--unit owner" in vin.stderr


# ---------------------------------------------------------------------------------------
# the weekly workbook
# ---------------------------------------------------------------------------------------
def test_out_writes_the_weekly_workbook(tmp_path, db):
    out = tmp_path / "reports"
    p = run("rfm", str(SAMPLE), "--as-of", AS_OF, "--out", str(out), db=db)
    assert p.returncode == 0, p.stderr
    book = out / AS_OF / "rfm_weekly.xlsx"
    assert book.is_file() and str(book) in p.stderr
    wb = openpyxl.load_workbook(book)
    assert wb.sheetnames[0] == "汇总" and "红色预警" in wb.sheetnames and "数据质量" in wb.sheetnames
    assert len(wb["汇总"]._charts) == 1

    again = run("rfm", str(SAMPLE), "--as-of", AS_OF, "--out", str(out), db=db)
    assert again.returncode == 1 and "--force" in again.stderr
    assert snapshots(db)[0].replaced == 0  # refused before anything was stored again
    assert run("rfm", str(SAMPLE), "--as-of", AS_OF, "--out", str(out), "--force", db=db).returncode == 0

    dry_out = tmp_path / "dry"
    dry = run("rfm", str(SAMPLE), "--as-of", AS_OF, "--out", str(dry_out), "--dry-run", db=db)
    assert dry.returncode == 0 and not dry_out.exists() and "未写周报" in dry.stderr


# ---------------------------------------------------------------------------------------
# tierctl rfm migrate
# ---------------------------------------------------------------------------------------
@pytest.fixture
def two_months(db):
    for as_of in (MONTH_AGO, AS_OF):
        p = run("rfm", str(SAMPLE), "--as-of", as_of, db=db)
        assert p.returncode == 0, p.stderr
    return db


def test_migrate_two_stored_snapshots(two_months, frame, model):
    p = run("rfm", "migrate", "--from", MONTH_AGO, "--to", AS_OF, "-f", "json", db=two_months)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    prev, curr = library(frame, model, MONTH_AGO), library(frame, model, AS_OF)
    assert doc == migrate(prev, curr, model).to_json()
    assert doc["edges"]["same_scale"] is False and "--freeze-edges" in doc["edges"]["note"]
    assert [f["key"] for f in doc["flows"]] == ["churn_warning", "conversion"]
    assert len(doc["matrix"]["counts"]) == 9 and len(doc["matrix"]["counts"][0]) == 9
    # defaults: the latest snapshot against the one before it
    assert json.loads(run("rfm", "migrate", "-f", "json", db=two_months).stdout) == doc


def test_migrate_with_frozen_edges(two_months, frame, model):
    p = run("rfm", "migrate", "--freeze-edges", "-f", "json", db=two_months)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    prev = library(frame, model, MONTH_AGO)
    curr = library(frame, model, AS_OF, edges=prev.edges)
    expected = migrate(prev, curr, model).to_json()
    assert doc == expected
    assert doc["edges"]["same_scale"] is True and doc["edges"]["curr"] == prev.edges.to_dict()


def test_migrate_table_and_workbook(two_months, tmp_path):
    out = tmp_path / "m"
    p = run("rfm", "migrate", "--limit", "3", "--out", str(out), db=two_months)
    assert p.returncode == 0, p.stderr
    for words in ("RFM 月度迁移", f"{MONTH_AGO} → {AS_OF}", "迁移矩阵", "新增", "离开", "各类占比",
                  "流失预警：重要价值 → 重要保持", "转化成功：重要发展 → 重要价值", "KPI", "分箱边界"):
        assert words in p.stdout, words
    book = out / AS_OF / "rfm_migration.xlsx"
    assert book.is_file()
    assert openpyxl.load_workbook(book).sheetnames == ["迁移矩阵", "关键流向", "占比对比", "分箱边界"]
    assert run("rfm", "migrate", "--out", str(out), db=two_months).returncode == 1


def test_migrate_two_exports_year_over_year(db, frame, model):
    # 林女士 (seed 003): 重要发展 a year ago, 重要价值 now — the conversion flow names her
    p = run("rfm", "migrate", "--from-file", str(SAMPLE), "--from", "2025-11-24", "--to-file", str(SAMPLE),
            "--to", AS_OF, "--freeze-edges", "-f", "json", db=db)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    flows = {f["key"]: f for f in doc["flows"]}
    assert "010086" in flows["conversion"]["customer_ids"]
    prev = library(frame, model, "2025-11-24")
    assert doc == migrate(prev, library(frame, model, AS_OF, edges=prev.edges), model).to_json()
    assert not db.exists()  # comparing two files reads and writes no history


@pytest.mark.parametrize("args,code,words", [
    (["rfm", "migrate"], 1, ["还没有 RFM 快照"]),
    (["rfm", "migrate", "--from-file", "{sample}", "--to-file", "{sample}"], 2, ["--from"]),
    (["rfm", "migrate", "--from-file", "{sample}", "--from", "2026-12-01", "--to-file", "{sample}", "--to", AS_OF],
     2, ["2026-12-01", "早于"]),
    (["rfm", "migrate", "-f", "xml"], 2, ["--format"]),
])
def test_migrate_errors(db, args, code, words):
    p = run(*[a.replace("{sample}", str(SAMPLE)) for a in args], db=db)
    assert p.returncode == code, (p.stdout, p.stderr)
    for w in words:
        assert w in p.stderr, (w, p.stderr)
    assert "Traceback" not in p.stderr


def test_migrate_needs_two_snapshots(db):
    assert run("rfm", str(SAMPLE), "--as-of", AS_OF, db=db).returncode == 0
    p = run("rfm", "migrate", db=db)
    assert p.returncode == 1 and "之前的 RFM 快照" in p.stderr and AS_OF in p.stderr
    p = run("rfm", "migrate", "--from", "2026-01-01", db=db)
    assert p.returncode == 1 and "2026-01-01" in p.stderr and AS_OF in p.stderr


def test_help_texts():
    for args in (["rfm", "--help"], ["rfm", "run", "--help"], ["rfm", "migrate", "--help"]):
        p = run(*args)
        assert p.returncode == 0, (args, p.stderr)
        assert "用法" in p.stdout  # the help page speaks Chinese (issue 17)
    assert "--freeze-edges" in run("rfm", "run", "--help").stdout
    assert "migrate" in run("rfm", "--help").stdout
