"""`tierctl churn`, `churn log`, `churn report` and `tierctl touches` on the command line:
exit codes and messages, JSON equal to the library result, a log turning into follow-ups
in `tierctl tasks`, the seed's ROI reproduced, upkeep messages drafted and checked."""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from conftest import CliResult, run_cli

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "churn.csv"
AS_OF = dt.date(2026, 11, 24)
NOW = "2026-11-24T09:00:00+08:00"


def run(*args: str, cwd: Path | None = None, env: dict | None = None) -> CliResult:
    return run_cli(*args, cwd=cwd, env=env)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("TIERCTL_DB", str(tmp_path / "t.db"))
    monkeypatch.delenv("TIERCTL_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def config(tmp_path) -> Path:
    p = tmp_path / "tierctl.toml"
    p.write_text('[centre]\nname = "浦东服务中心"\nmanager = "王明"\n', encoding="utf-8")
    return p


def export(tmp_path: Path, rows: list[dict], name: str = "churn.csv", encoding: str = "utf-8") -> Path:
    p = tmp_path / name
    pd.DataFrame(rows).to_csv(p, index=False, encoding=encoding)
    return p


# ------------------------------------------------------------------------------------
# tierctl churn FILE
# ------------------------------------------------------------------------------------
def test_json_equals_library_result():
    from tierctl.churn import load_churn_model, score_churn
    from tierctl.io.ingest import read_export

    p = run("churn", str(SAMPLE), "--as-of", AS_OF.isoformat(), "--now", NOW, "-f", "json", "--dry-run")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    model = load_churn_model()
    ex = read_export(SAMPLE, model.ingest_columns)
    lib = score_churn(ex.frame, model, AS_OF, dt.datetime.fromisoformat(NOW), headers=ex.headers).to_json()
    assert doc["customers"] == lib["customers"]
    assert doc["as_of"] == "2026-11-24" and doc["snapshot"] == {"stored": False}
    first = doc["customers"][0]
    for key in ("customer_id", "risk_score", "level", "owner", "respond_by", "plan", "reasons"):
        assert key in first
    seeds = {c["customer_id"]: (c["risk_score"], c["level"]) for c in doc["customers"]
             if c["customer_id"] in ("00000101", "00000102", "00000103", "00000104")}
    assert seeds == {"00000101": (45, "中"), "00000102": (45, "中"), "00000103": (68, "高"), "00000104": (85, "极高")}
    # 孙先生 spends 9,600 a year: high value, so 高 is owned by the regional manager
    assert next(c for c in doc["customers"] if c["customer_id"] == "00000103")["owner"] == "区域经理"


def test_table_lists_levels_owners_and_plans():
    p = run("churn", "score", str(SAMPLE), "--as-of", AS_OF.isoformat(), "--now", NOW, "--dry-run")
    assert p.returncode == 0, p.stderr
    for text in ("极高", "李先生", "区域经理+店长", "11-24 13:00", "价格→长期会员价", "138****0104", "合计："):
        assert text in p.stdout
    assert "13800000104" not in p.stdout
    assert "预览模式" in p.stdout


def test_run_is_stored_once_per_day(tmp_path):
    from tierctl.store import Store

    for _ in range(2):
        p = run("churn", str(SAMPLE), "--as-of", AS_OF.isoformat(), "--now", NOW)
        assert p.returncode == 0, p.stderr
        assert "已保存 2026-11-24 的流失风险快照" in p.stdout
    with Store.open(tmp_path / "t.db") as s:
        snaps = s.list_snapshots("churn")
        assert len(snaps) == 1 and snaps[0].row_count == 44 and snaps[0].replaced == 1
        rows = s.snapshot_rows(snaps[0].id, fields=[])
        assert rows["customer_key"].iloc[0] == "00000101"  # text, leading zeros kept


def test_headers_aliases_mapping_and_gbk_behave_like_score(tmp_path):
    rows = [{"会员卡号": "0012", "姓名": "周先生", "风险分": 72}, {"会员卡号": "0013", "姓名": "吴女士", "风险分": 30}]
    p = export(tmp_path, rows, "gbk.csv", encoding="gbk")
    mapping = tmp_path / "map.toml"
    mapping.write_text('[columns]\ncustomer_id = "会员卡号"\n', encoding="utf-8")
    r = run("churn", str(p), "--mapping", str(mapping), "--as-of", "2026-11-24", "--now", NOW, "-f", "json",
            "--dry-run")
    assert r.returncode == 0, r.stderr
    got = {c["customer_id"]: (c["risk_score"], c["level"]) for c in json.loads(r.stdout)["customers"]}
    assert got == {"0012": (72, "高"), "0013": (30, "低")}


@pytest.mark.parametrize(("rows", "words"), [
    ([{"客户编号": "1", "满意度": 11}], ["第 2 行", "满意度", "11", "范围"]),
    ([{"客户编号": "1", "上次到店日期": "上个月"}], ["第 2 行", "上次到店日期", "上个月"]),
    ([{"客户编号": "1"}, {"客户编号": "1"}], ["第 3 行", "重复"]),
    ([{"姓名": "张三", "风险分": 50}], ["缺少", "客户编号"]),
])
def test_bad_input_exits_1_naming_row_column_value(tmp_path, rows, words):
    p = run("churn", str(export(tmp_path, rows)), "--as-of", "2026-11-24", "--dry-run")
    assert p.returncode == 1, p.stdout
    for w in words:
        assert w in p.stderr, (w, p.stderr)
    assert "Traceback" not in p.stderr


@pytest.mark.parametrize(("args", "code", "word"), [
    (["churn", "no-such-file.csv", "--dry-run"], 1, "no-such-file.csv"),
    (["churn", str(SAMPLE), "--as-of", "昨天"], 2, "--as-of"),
    (["churn", str(SAMPLE), "-f", "pdf"], 2, "--format"),
    (["churn", str(SAMPLE), "--model", "nope", "--dry-run"], 1, "nope"),
    (["churn", "report", "--seed-table", "--from", "2026-01-01"], 2, "--seed-table"),
    (["touches", "--days", "0"], 2, "--days"),
])
def test_usage_and_input_errors(args, code, word):
    p = run(*args)
    assert p.returncode == code, (p.stdout, p.stderr)
    assert word in p.stderr


def test_every_churn_command_has_help():
    for args in (["churn", "--help"], ["churn", "score", "--help"], ["churn", "log", "--help"],
                 ["churn", "report", "--help"], ["touches", "--help"]):
        p = run(*args)
        assert p.returncode == 0 and len(p.stdout) > 200, args
    assert "log" in run("churn", "--help").stdout and "report" in run("churn", "--help").stdout


# ------------------------------------------------------------------------------------
# churn log -> follow-ups in tierctl tasks
# ------------------------------------------------------------------------------------
def test_log_schedules_followups_that_appear_in_tasks():
    assert run("churn", str(SAMPLE), "--as-of", "2026-11-24", "--now", NOW).returncode == 0
    p = run("churn", "log", "00000104", "--action", "区域经理致电道歉，约周六面谈", "--result", "已接通",
            "--feedback", "愿意再给一次机会", "--next", "周六面谈，退还维修费", "--cost", "3500",
            "--at", "2026-11-24 11:00", "--by", "李强", "--now", "2026-11-24T12:00:00+08:00", "-f", "json")
    assert p.returncode == 0, p.stderr
    rec = json.loads(p.stdout)
    assert (rec["level"], rec["score"], rec["owner"], rec["cost"]) == ("极高", 85.0, "区域经理+店长", 3500.0)
    assert [f["due"] for f in rec["followups_scheduled"]] == [
        "2026-12-01", "2026-12-08", "2026-12-24", "2027-01-23", "2027-02-22"]

    def due_on(day: str) -> list[dict]:
        t = run("tasks", "--date", day, "--now", f"{day}T09:00:00+08:00", "-f", "json")
        assert t.returncode == 0, t.stderr
        return json.loads(t.stdout)["churn_followups"]

    assert due_on("2026-11-30") == []
    items = due_on("2026-12-01")
    assert [(x["customer_id"], x["owner"], x["channel"], x["kind"]) for x in items] == [
        ("00000104", "区域经理", "电话", "churn_followup")]
    assert due_on("2026-12-03")[0]["overdue_days"] == 2
    table = run("tasks", "--date", "2026-12-01", "--now", "2026-12-01T09:00:00+08:00")
    assert table.returncode == 0 and "流失回访" in table.stdout and "李先生" in table.stdout
    # the week-1 call is logged: it leaves the list, week 2 comes next
    p = run("churn", "log", "00000104", "--action", "区域经理回访", "--result", "已接通", "--at", "2026-12-01 15:00",
            "--now", "2026-12-01T16:00:00+08:00")
    assert p.returncode == 0 and "完成回访" in p.stderr
    assert due_on("2026-12-02") == []
    assert [x["due"] for x in due_on("2026-12-08")] == ["2026-12-08"]


def test_log_errors():
    assert run("churn", str(SAMPLE), "--as-of", "2026-11-24", "--now", NOW).returncode == 0
    p = run("churn", "log", "00000104", "--action", "致电", "--result", "还行", "--now", NOW)
    assert p.returncode == 2 and "联系结果" in p.stderr and "已接通" in p.stderr
    p = run("churn", "log", "99999999", "--action", "致电", "--result", "已接通", "--now", NOW)
    assert p.returncode == 1 and "99999999" in p.stderr
    p = run("churn", "log", "00000104", "--action", "致电", "--result", "已接通", "--at", "2026-11-25 10:00",
            "--now", NOW)
    assert p.returncode == 2 and "晚于现在" in p.stderr
    p = run("churn", "log", "00000104", "--result", "已接通", "--now", NOW)
    assert p.returncode == 2 and "--action" in p.stderr


def test_log_without_a_database_says_what_to_do(tmp_path):
    p = run("churn", "log", "1", "--action", "x", "--result", "已接通", "--db", str(tmp_path / "none.db"))
    assert p.returncode == 1 and "tierctl churn" in p.stderr


# ------------------------------------------------------------------------------------
# churn report
# ------------------------------------------------------------------------------------
SEED_FIGURES = ("1350", "766", "57%", "146.4万", "162%", "810", "584", "226", "113万")


def test_seed_table_reproduces_the_playbook(tmp_path):
    p = run("churn", "report", "--seed-table", "--out", str(tmp_path / "out"))
    assert p.returncode == 0, p.stderr
    for figure in SEED_FIGURES:
        assert figure in p.stdout, figure
    book = tmp_path / "out" / "churn_report_seed.xlsx"
    with zipfile.ZipFile(book) as z:
        assert "xl/charts/chart1.xml" in z.namelist()
    again = run("churn", "report", "--seed-table", "--out", str(tmp_path / "out"))
    assert again.returncode == 1 and "已存在" in again.stderr
    assert run("churn", "report", "--seed-table", "--out", str(tmp_path / "out"), "--force").returncode == 0


def test_seed_table_json():
    p = run("churn", "report", "--seed-table", "-f", "json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    t, cf = doc["total"], doc["counterfactual"]
    assert (t["intervened"], t["won_back"], t["cost"]) == (1350, 766, 1464000)
    assert round(t["rate"] * 100) == 57 and round(t["roi"] * 100) == 162
    assert (cf["expected_churn"], cf["actual_churn"], cf["churn_avoided"], cf["saved"]) == (810, 584, 226, 1130000)
    assert [lv["benchmark_status"] for lv in doc["levels"]] == ["within", "within", "within"]


def test_figures_file_reproduces_the_seed(tmp_path):
    p = export(tmp_path, [{"等级": "中风险", "客户数": 850, "干预数": 850, "挽回数": 562, "成本": "12.8万"},
                          {"等级": "高风险", "客户数": 320, "干预数": 320, "挽回数": 150, "成本": "25.6万"},
                          {"等级": "极高风险", "客户数": 180, "干预数": 180, "挽回数": 54, "成本": "108万"}],
               "figures.csv")
    r = run("churn", "report", "--input", str(p))
    assert r.returncode == 0, r.stderr
    for figure in SEED_FIGURES:
        assert figure in r.stdout, figure


def test_report_from_the_store_equals_the_library(tmp_path):
    from tierctl.churn import load_churn_model
    from tierctl.churn import report as churn_loop
    from tierctl.store import Store

    d0 = [{"客户编号": "A1", "客户姓名": "甲", "流失风险分": 70, "上次到店日期": "2026-06-01"},
          {"客户编号": "A2", "客户姓名": "乙", "流失风险分": 85, "上次到店日期": "2026-06-01"},
          {"客户编号": "A3", "客户姓名": "丙", "流失风险分": 50, "上次到店日期": "2026-06-01"}]
    assert run("churn", str(export(tmp_path, d0, "d0.csv")), "--as-of", "2026-09-01",
               "--now", "2026-09-01T09:00:00+08:00").returncode == 0
    for cid, cost in (("A1", "500"), ("A2", "2000")):
        r = run("churn", "log", cid, "--action", "致电", "--result", "已接通", "--cost", cost,
                "--at", "2026-09-01 10:00", "--now", "2026-09-01T10:30:00+08:00")
        assert r.returncode == 0, r.stderr
    d20 = [{**d0[0], "流失风险分": 45, "上次到店日期": "2026-09-15"}, {**d0[1], "流失风险分": 80}, d0[2]]
    assert run("churn", str(export(tmp_path, d20, "d20.csv")), "--as-of", "2026-09-21",
               "--now", "2026-09-21T09:00:00+08:00").returncode == 0
    now = "2026-09-21T18:00:00+08:00"
    p = run("churn", "report", "--now", now, "-f", "json", "--out", str(tmp_path / "rep"))
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    with Store.open(tmp_path / "t.db", readonly=True) as s:
        lib = churn_loop.loop_report(s, load_churn_model(), now=dt.datetime.fromisoformat(now)).to_json()
    doc.pop("workbook")
    assert doc == lib
    by = {lv["level"]: lv for lv in doc["levels"]}
    assert (by["high"]["intervened"], by["high"]["won_back"], by["high"]["cost"]) == (1, 1, 500)
    assert (by["extreme"]["won_back"], by["extreme"]["pending"]["win_back"]) == (0, 1)
    assert by["mid"]["customers"] == 1 and by["mid"]["intervened"] == 0
    iv = {x["customer_id"]: x for x in doc["interventions"]}
    assert iv["A1"]["effect"] == "worked" and iv["A2"]["effect"] == "pending"
    assert (tmp_path / "rep" / "churn_report_2026-09-01_2026-09-21.xlsx").exists()


def test_report_without_history_says_what_to_do(tmp_path):
    p = run("churn", "report")
    assert p.returncode == 1 and "tierctl churn" in p.stderr


# ------------------------------------------------------------------------------------
# touches
# ------------------------------------------------------------------------------------
def test_touches_from_a_file_are_drafted(config):
    p = run("touches", str(SAMPLE), "--date", "2026-11-24", "--days", "7", "--now", NOW, "-f", "json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    kinds = {t["kind"] for t in doc["touches"]}
    assert {"mileage", "birthday"} <= kinds
    for t in doc["touches"]:
        assert t["message"] and "浦东服务中心" in t["message"] and t["taboo"] == []
        assert "\x00" not in t["message"]
    km = next(t for t in doc["touches"] if t["kind"] == "mileage")
    assert km["message"].startswith(km["name"] + "您好")


def test_touches_from_the_latest_snapshot_with_a_lunar_festival(config):
    assert run("churn", str(SAMPLE), "--as-of", "2026-11-24", "--now", NOW).returncode == 0
    p = run("touches", "--date", "2027-02-03", "--days", "3", "--now", "2027-02-03T09:00:00+08:00", "-f", "json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["source"] == {"snapshot": "2026-11-24"} and "已过时" in p.stderr
    spring = [t for t in doc["touches"] if t["kind"] == "festival"]
    # 春节 2027 is 6 February: the greeting goes out 3 days before (lead_days in churn.toml)
    assert spring and all(t["date"] == "2027-02-03" and "新春将至" in t["message"] for t in spring)
    table = run("touches", "--date", "2027-02-03", "--days", "3", "--now", "2027-02-03T09:00:00+08:00")
    assert table.returncode == 0 and "节日问候" in table.stdout


def test_touches_with_a_taboo_template_fail_unless_allowed(tmp_path, config):
    tpl = tmp_path / "mytpl" / "zh"
    tpl.mkdir(parents=True)
    (tpl / "touch_mileage.txt.j2").write_text("{{ c.name or '您' }}好，该保养了，我们会尽快安排。\n", encoding="utf-8")
    args = ["touches", str(SAMPLE), "--date", "2026-11-24", "--now", NOW, "--templates", str(tmp_path / "mytpl")]
    p = run(*args)
    assert p.returncode == 1 and "禁忌" in p.stderr and "会尽快" in p.stderr
    ok = run(*args, "--allow-taboo", "-f", "csv")
    assert ok.returncode == 0 and "会尽快" in ok.stdout and "禁忌用语" in ok.stderr


def test_touches_need_the_centre_name(tmp_path):
    p = run("touches", str(SAMPLE), "--date", "2026-11-24", "--now", NOW)
    assert p.returncode == 1 and "centre.name" in p.stderr
