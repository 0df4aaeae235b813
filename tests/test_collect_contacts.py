"""Contacts back in bulk (issue 16): `tierctl contacts import` and `tierctl churn log
--import` read the execution record advisors fill — checked row by row (one error naming
file, Excel row, column and value; nothing imported), idempotent, one transaction — and
`tierctl contact --tier/--owner` marks a whole segment of today's run."""

from __future__ import annotations

import csv
import datetime as dt
import json
import sqlite3
from pathlib import Path

import openpyxl
import pytest
from conftest import cli

from tierctl.daily.contacts_model import load_contacts_model, minute_key, parse_when
from tierctl.errors import InputError
from tierctl.store import Store

TZ = dt.timezone(dt.timedelta(hours=8))
NOW = "2026-11-24T12:00:00+08:00"
HEAD = ["客户编号", "客户姓名", "手机号", "登记日期", "用车场景", "沟通记录", "服务顾问"]
ROWS = [
    ["C001", "张先生", "13812340001", "2026-10-31", "网约车", "觉得我们在忽悠他", "王五"],
    ["C002", "李女士", "13912340002", "2026-11-08", "通勤", "不急", "张三"],
    ["C003", "李先生", "13712340003", "2026-10-26", "周末", "每天来电", "张三"],
    ["007", "赵先生", "13612340004", "2026-11-20", "周末", "", ""],
]


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TIERCTL_CONFIG", raising=False)
    monkeypatch.setenv("TIERCTL_DB", str(tmp_path / "store.db"))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


@pytest.fixture
def scored(env, capsys) -> Path:
    p = env / "shortage.csv"
    with open(p, "w", newline="", encoding="utf-8-sig") as fh:
        w = csv.writer(fh)
        w.writerow(HEAD)
        w.writerows(ROWS)
    code, _, err = cli(capsys, "score", str(p), "--as-of", "2026-11-24", "--now", "2026-11-24T09:00:00+08:00",
                       "--format", "json")
    assert code == 0, err
    return env


def contacts(env: Path, kind: str = "shortage") -> list[tuple]:
    con = sqlite3.connect(env / "store.db")
    try:
        return con.execute("SELECT customer_key, at, result, channel, note, owner FROM contacts WHERE kind = ? "
                           "ORDER BY at, customer_key", (kind,)).fetchall()
    finally:
        con.close()


def sheet(path: Path, rows: list[list], head: list[str] | None = None) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(head or ["客户", "风险分", "等级", "负责人", "联系时间", "联系结果", "客户反馈", "后续方案", "完成时间", "渠道"])
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path


# -- pieces ------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, want", [
    ("2026-11-24 10:30", dt.datetime(2026, 11, 24, 10, 30, tzinfo=TZ)),
    ("2026/11/24 10:30:15", dt.datetime(2026, 11, 24, 10, 30, 15, tzinfo=TZ)),
    ("2026年11月24日 10:30", dt.datetime(2026, 11, 24, 10, 30, tzinfo=TZ)),
    ("2026-11-24", dt.datetime(2026, 11, 24, 12, 0, tzinfo=TZ)),
    ("46350.4375", dt.datetime(2026, 11, 24, 10, 30, tzinfo=TZ)),  # an Excel serial
    ("2026-13-24 10:30", None), ("昨天下午", None), ("12", None),
])
def test_contact_times_as_sheets_hold_them(text, want):
    assert parse_when(text, TZ) == want


def test_channels_and_results_come_from_the_model_file():
    m = load_contacts_model()
    assert m.channel("短信").key == m.channel("SMS").key == m.channel(" sms ").key == "sms"
    assert m.channel("飞鸽") is None
    assert m.result("shortage", "已发送") == "已发送" and m.result("shortage", "接通了") is None
    assert minute_key(dt.datetime(2026, 11, 24, 10, 30, 59, tzinfo=TZ)) == "2026-11-24T02:30"


# -- tierctl contacts import -----------------------------------------------------------------------------
def test_an_exported_record_imports_back_as_nothing_and_new_rows_once(scored, capsys):
    env = scored
    code, _, err = cli(capsys, "contact", "C001", "--result", "已接通", "--at", "2026-11-24 10:30", "--by", "王五",
                       "--now", NOW)
    assert code == 0, err
    code, _, err = cli(capsys, "contacts", "export", "--out", str(env / "rec.xlsx"))
    assert code == 0, err
    before = contacts(env)
    code, out, err = cli(capsys, "contacts", "import", str(env / "rec.xlsx"), "--now", NOW, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["rows"], doc["imported"], doc["duplicates"]) == (1, 0, 1)
    assert contacts(env) == before  # the exported sheet holds nothing new

    # the advisor adds two rows in the same sheet (their own spellings) and imports it
    wb = openpyxl.load_workbook(env / "rec.xlsx")
    ws = wb.active
    ws.append(["李先生（C003）", None, None, "张三", "2026/11/24 11:40", "未接通", "没人接", "", "", "电话"])
    ws.append(["李女士", None, None, "张三", "2026年11月24日 11:45", "已发短信", "", "明天再打", "", "SMS"])
    wb.save(env / "filled.xlsx")
    code, _, err = cli(capsys, "contacts", "import", str(env / "filled.xlsx"), "--now", NOW)
    assert code == 0, err
    assert "已导入 2 条" in err and "1 条已有记录" in err
    rows = contacts(env)
    assert len(rows) == 3
    c003 = next(r for r in rows if r[0] == "C003")
    c002 = next(r for r in rows if r[0] == "C002")
    assert c003[2:] == ("未接通", "phone", "没人接", "张三")
    assert c002[2] == "已发短信" and c002[3] == "sms"
    assert dt.datetime.fromisoformat(c003[1]) == dt.datetime(2026, 11, 24, 11, 40, tzinfo=TZ)
    # the same sheet again: nothing added
    code, _, err = cli(capsys, "contacts", "import", str(env / "filled.xlsx"), "--now", NOW)
    assert code == 0 and "已导入 0 条" in err and "3 条已有记录" in err
    assert contacts(env) == rows
    # an imported contact that reached the customer resets the clock (C002: the crisis's 12 hours
    # from 11:45); one that did not (未接通) leaves C003 due, as a retry
    code, out, _ = cli(capsys, "tasks", "--now", NOW, "--format", "json")
    due = {t["customer_id"]: t for g in json.loads(out)["groups"] for t in g["tasks"]}
    assert due["C002"]["due_kind"] == "cadence" and due["C002"]["due"] == "2026-11-24T23:45:00+08:00"
    assert not due["C002"]["retry"]
    assert due["C003"]["retry"] and due["C003"]["last_result"] == "未接通"


def test_bad_rows_are_listed_together_and_nothing_is_imported(scored, capsys):
    env = scored
    bad = sheet(env / "bad.xlsx", [
        ["张先生（C001）", None, None, "王五", "2026-11-24 10:30", "已接通", "", "", "", "电话"],  # fine (row 2)
        ["C009", None, None, "张三", "2026-11-24 11:41", "已接通", "", "", "", "电话"],  # unknown customer
        ["赵先生（007）", None, None, "张三", "2026-13-24 11:41", "已接通", "", "", "", "电话"],  # bad date
        ["007", None, None, "张三", "2026-11-24 11:41", "接通了", "", "", "", "飞鸽"],  # result and channel
        ["C002", None, None, "张三", "2026-11-30 11:41", "已接通", "", "", "", ""],  # in the future
    ])
    code, _, err = cli(capsys, "contacts", "import", str(bad), "--now", NOW)
    assert code == 1
    flat = " ".join(err.split())
    for words in (("bad.xlsx", "没有导入任何记录"), ("第 3 行", "客户", "C009"), ("第 4 行", "联系时间", "2026-13-24"),
                  ("第 5 行", "渠道", "飞鸽"), ("第 5 行", "联系结果", "接通了"), ("第 6 行", "晚于现在")):
        for w in words:
            assert w in flat, (w, flat)
    assert contacts(env) == []  # the good row was not imported either
    # the library raises the same, with the problems located
    with Store.open(env / "store.db") as s:
        from tierctl.daily.contacts import import_contacts

        with pytest.raises(InputError) as e:
            import_contacts(s, bad, now=dt.datetime(2026, 11, 24, 12, 0, tzinfo=TZ))
    assert {(p.row, p.column) for p in e.value.problems} == {(3, "客户"), (4, "联系时间"), (5, "渠道"), (5, "联系结果"),
                                                             (6, "联系时间")}


def test_import_reads_csv_with_separate_id_and_ignores_blank_rows(scored, capsys):
    env = scored
    p = env / "rec.csv"
    p.write_text("客户编号,联系时间,联系结果,渠道,客户反馈\n007,2026-11-24 09:30,已接通,微信,同意等待\n,,,,\n",
                 encoding="gbk")
    code, out, err = cli(capsys, "contacts", "import", str(p), "--now", NOW, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["imported"] == 1
    assert contacts(env)[0][0] == "007" and contacts(env)[0][3] == "wechat"  # leading zeros kept


def test_import_dry_run_writes_nothing_and_missing_columns_say_so(scored, capsys):
    env = scored
    ok = sheet(env / "ok.xlsx", [["C002", None, None, "", "2026-11-24 10:00", "已接通", "", "", "", ""]])
    code, _, err = cli(capsys, "contacts", "import", str(ok), "--now", NOW, "--dry-run")
    assert code == 0 and "1 条会导入" in err and contacts(env) == []
    nohead = sheet(env / "nohead.xlsx", [["C002", "已接通"]], head=["客户编号", "联系结果"])
    code, _, err = cli(capsys, "contacts", "import", str(nohead), "--now", NOW)
    assert code == 1 and "联系时间" in err


def test_same_minute_other_channel_is_a_second_contact(scored, capsys):
    env = scored
    two = sheet(env / "two.xlsx", [
        ["C002", None, None, "", "2026-11-24 10:00", "已接通", "", "", "", "电话"],
        ["C002", None, None, "", "2026-11-24 10:00", "已发短信", "", "", "", "短信"],
        ["C002", None, None, "", "2026-11-24 10:00", "已接通", "", "", "", "电话"],  # the first row again
    ])
    code, out, err = cli(capsys, "contacts", "import", str(two), "--now", NOW, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["imported"] == 2 and doc["duplicate_rows"] == [4]


# -- bulk marks ------------------------------------------------------------------------------------------
def test_bulk_mark_a_tier_once_per_minute_and_channel(scored, capsys):
    env = scored
    code, _, err = cli(capsys, "contact", "--tier", "P3", "--tier", "P2", "--channel", "sms", "--result", "已发送",
                       "--now", "2026-11-24T11:00:00+08:00")
    assert code == 0, err
    assert "已记录 2 位客户" in err
    rows = contacts(env)
    assert sorted(r[0] for r in rows) == ["007", "C002"] and {r[3] for r in rows} == {"sms"}
    assert {r[2] for r in rows} == {"已发送"}
    # the same batch again within the minute: nothing doubled
    code, out, _ = cli(capsys, "contact", "--tier", "P3", "--tier", "P2", "--channel", "短信", "--result", "已发送",
                       "--now", "2026-11-24T11:00:30+08:00", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["marked"] == 0 and doc["already"] == 2
    assert len(contacts(env)) == 2


def test_bulk_mark_by_person_or_role(scored, capsys):
    env = scored
    code, out, err = cli(capsys, "contact", "--owner", "张三", "--channel", "wechat", "--result", "已发微信",
                         "--now", NOW, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["marked"] == 2
    assert sorted(r[0] for r in contacts(env)) == ["C002", "C003"]
    assert {r[5] for r in contacts(env)} == {"张三"}  # the person is the owner of the contact
    # the role: every customer of its tier (P1, the SA supervisor's: C001 and C003, who waited 29 days)
    code, out, _ = cli(capsys, "contact", "--owner", "SA主管", "--result", "已接通", "--now", "2026-11-24T12:05:00+08:00",
                       "--format", "json")
    assert code == 0 and json.loads(out)["marked"] == 2
    assert sorted(r[0] for r in contacts(env)) == ["C001", "C002", "C003", "C003"]


@pytest.mark.parametrize("args, code, word", [
    (["--tier", "P3", "--result", "发了"], 2, "联系结果"),
    (["--tier", "P9", "--result", "已发送"], 2, "P9"),
    (["--tier", "P3", "--channel", "飞鸽", "--result", "已发送"], 2, "渠道"),
    (["--result", "已发送"], 2, "客户编号"),
    (["C001", "--tier", "P3", "--result", "已发送"], 2, "--tier"),
])
def test_bulk_mark_errors(scored, capsys, args, code, word):
    got, _, err = cli(capsys, "contact", *args, "--now", NOW)
    assert got == code and word in err
    assert contacts(scored) == []


# -- churn interventions ----------------------------------------------------------------------------------
CHURN = Path(__file__).resolve().parent.parent / "sample_data" / "churn.csv"


def test_churn_interventions_import_schedules_followups_once(env, capsys):
    code, _, err = cli(capsys, "churn", str(CHURN), "--as-of", "2026-11-24", "--now", "2026-11-24T09:00:00+08:00")
    assert code == 0, err
    head = ["客户编号", "联系时间", "干预措施", "联系结果", "客户反馈", "后续方案", "投入（元）", "渠道"]
    rec = sheet(env / "iv.xlsx", [
        ["00000102", "2026-11-24 10:00", "店长致电致歉", "已接通", "愿意再来", "周三到店", 200, "电话"],
        ["00000101", "2026-11-24 10:30", "短信关怀", "已留言", "", "", None, "短信"],
    ], head=head)
    code, out, err = cli(capsys, "churn", "log", "--import", str(rec), "--now", NOW, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["imported"] == 2 and doc["followups_scheduled"] >= 1
    rows = contacts(env, "churn")
    assert [(r[0], r[2], r[3]) for r in rows] == [("00000102", "已接通", "phone"), ("00000101", "已留言", "sms")]
    con = sqlite3.connect(env / "store.db")
    n_follow = con.execute("SELECT count(*) FROM followups WHERE kind='churn'").fetchone()[0]
    cost = con.execute("SELECT cost FROM contacts WHERE kind='churn' AND customer_key='00000102'").fetchone()[0]
    con.close()
    assert n_follow == doc["followups_scheduled"] and cost == 200
    # again: nothing added, no second schedule
    code, out, _ = cli(capsys, "churn", "log", "--import", str(rec), "--now", NOW, "--format", "json")
    assert code == 0 and json.loads(out)["imported"] == 0 and len(contacts(env, "churn")) == 2
    con = sqlite3.connect(env / "store.db")
    assert con.execute("SELECT count(*) FROM followups WHERE kind='churn'").fetchone()[0] == n_follow
    con.close()


def test_churn_import_errors_name_rows_and_import_nothing(env, capsys):
    code, _, err = cli(capsys, "churn", str(CHURN), "--as-of", "2026-11-24", "--now", "2026-11-24T09:00:00+08:00")
    assert code == 0, err
    head = ["客户编号", "联系时间", "干预措施", "联系结果"]
    rec = sheet(env / "iv.xlsx", [
        ["00000102", "2026-11-24 10:00", "店长致电", "已接通"],
        ["00000102", "2026-11-24 11:00", "", "已接通"],  # no action
        ["00000103", "2026-11-24 11:00", "回访", "搞定了"],  # unknown outcome
        ["99999999", "2026-11-24 11:00", "回访", "已接通"],  # unknown customer
    ], head=head)
    code, _, err = cli(capsys, "churn", "log", "--import", str(rec), "--now", NOW)
    flat = " ".join(err.split())
    assert code == 1
    for w in ("第 3 行", "干预措施", "第 4 行", "搞定了", "第 5 行", "99999999"):
        assert w in flat, w
    assert contacts(env, "churn") == []
    code, _, err = cli(capsys, "churn", "log", "00000102", "--import", str(rec), "--now", NOW)
    assert code == 2
