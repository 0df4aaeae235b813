"""The daily loop on the command line: exit codes, JSON equal to what the library returns,
help text, the morning hooks of ``tierctl score`` (changes, alerts, dry run), the
execution-record export, and real processes (kill -9, two runs at once)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import openpyxl
import pytest
from conftest import cli, isolate, write_table
from typer.testing import CliRunner

from tierctl.cli import app, common
from tierctl.cli import morning as cli_daily
from tierctl.daily import WorkCalendar
from tierctl.daily import reports as loop
from tierctl.errors import NotFoundError
from tierctl.store import Store

TZ = dt.timezone(dt.timedelta(hours=8))
D1, D2 = dt.date(2026, 11, 23), dt.date(2026, 11, 24)
ROOT = Path(__file__).resolve().parents[1]
TIERCTL = str(Path(sys.executable).parent / "tierctl")
HEAD = ["客户编号", "客户姓名", "手机号", "登记日期", "用车场景", "近7天联系次数", "沟通记录", "身份/职业"]
ROWS = [
    ["C001", "张先生", "13812340001", "2026-10-31", "网约车", 3, "觉得我们在忽悠他", "自媒体"],
    ["C002", "=HYPERLINK(\"x\")", "13912340002", "2026-11-08", "通勤", 3, "-不急", ""],
    ["C003", "李先生", "13712340003", "2026-10-26", "周末", 8, "每天来电", ""],
    ["007", "赵先生", "13612340004", "2026-11-14", "周末", 0, "", ""],
]


def write(path: Path, rows: list[list[object]]) -> Path:
    return write_table(path, HEAD, rows)


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A clean working folder: no config file, the database given by TIERCTL_DB."""
    isolate(monkeypatch, tmp_path, columns="160")
    return tmp_path


def score(capsys, path: Path, day: dt.date, *extra: str) -> dict:
    code, out, err = cli(capsys, "score", str(path), "--as-of", day.isoformat(), "--format", "json", *extra)
    assert code == 0, err
    return json.loads(out)


# -- help text --------------------------------------------------------------------------------
DAILY_COMMANDS = [["history"], ["why"], ["override"], ["tasks"], ["contact"], ["contacts"], ["contacts", "export"],
                  ["alerts"], ["alerts", "ack"]]


@pytest.mark.parametrize("cmd", DAILY_COMMANDS, ids=" ".join)
def test_every_daily_command_has_chinese_help(cmd):
    res = CliRunner().invoke(app, [*cmd, "--help"])
    assert res.exit_code == 0, res.output
    text = res.output
    assert any("\u4e00" <= ch <= "\u9fff" for ch in text), text  # Chinese help text
    assert "--db" in text or cmd == ["contacts"]


# -- the morning run: changes, alerts, snapshot in the JSON; text under the table ----------------
def test_score_stores_compares_and_alerts(env, capsys):
    f = write(env / "d.csv", ROWS)
    doc1 = score(capsys, f, D1)
    assert doc1["snapshot"]["stored"] and doc1["snapshot"]["path"] == str(env / "store.db")
    assert doc1["changes"]["counts"]["new"] == 4 and doc1["changes"]["previous_as_of"] is None
    assert doc1["crisis"]["level"] >= 1
    fired1 = {(a["customer_id"], a["rule_id"]) for a in doc1["alerts_fired"]}
    assert ("C003", "wait28") in fired1 and ("C001", "wait21") in fired1
    # the next day: a customer leaves, one is added; alerts already open do not fire again
    f2 = write(env / "d2.csv", [*ROWS[:3], ["C010", "孙女士", "13500000000", "2026-11-20", "通勤", 0, "要投诉", ""]])
    code, out, err = cli(capsys, "score", str(f2), "--as-of", D2.isoformat(), "--limit", "0")
    assert code == 0, err
    assert "与上次（2026-11-23）相比" in out and "离开名单 1 位" in out and "新增 1 位" in out
    assert "赵先生" in out  # named among those who left
    doc2 = score(capsys, f2, D2)  # a re-run of the same day replaces it
    assert doc2["snapshot"]["replaced"] is True
    assert [x["customer_id"] for x in doc2["changes"]["resolved"]] == ["007"]
    assert all(a["fired_on"] == D2.isoformat() for a in doc2["alerts_fired"])
    assert ("C003", "wait28") not in {(a["customer_id"], a["rule_id"]) for a in doc2["alerts_fired"]}
    with Store.open(env / "store.db") as s:
        assert [x.as_of for x in s.list_snapshots("shortage")] == [D1, D2]
        assert s.latest_snapshot("shortage").source_name == "d2.csv"


def test_dry_run_creates_and_changes_nothing(env, capsys):
    f = write(env / "d.csv", ROWS)
    db = env / "store.db"
    doc = score(capsys, f, D1, "--dry-run")
    assert not db.exists() and doc["snapshot"]["stored"] is False
    assert doc["changes"]["counts"]["new"] == 4 and doc["alerts_fired"]
    score(capsys, f, D1)
    before = db.read_bytes()
    code, out, _ = cli(capsys, "score", str(f), "--as-of", D2.isoformat(), "--dry-run")
    assert code == 0 and "预览模式" in out
    assert db.read_bytes() == before
    assert not Path(f"{db}-wal").exists() and not Path(f"{db}-shm").exists()


def test_db_option_env_and_default_location(env, capsys, monkeypatch):
    f = write(env / "d.csv", ROWS)
    other = env / "other" / "x.db"
    score(capsys, f, D1, "--db", str(other))
    assert other.exists() and not (env / "store.db").exists()
    monkeypatch.delenv("TIERCTL_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(env / "xdg"))
    common.STATE._config = None
    assert common.db_path(None) == env / "xdg" / "tierctl" / "tierctl.db"
    assert common.db_path(other) == other


def test_an_exception_midway_leaves_the_database_as_before(env, capsys, monkeypatch):
    f = write(env / "d.csv", ROWS)
    score(capsys, f, D1)
    db = env / "store.db"
    before = db.read_bytes()

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Store, "insert_alerts", boom)  # after the snapshot was written
    code, _, err = cli(capsys, "score", str(f), "--as-of", D2.isoformat())
    assert code == 1 and "内部错误" in err
    con = sqlite3.connect(db)
    assert [r[0] for r in con.execute("SELECT as_of FROM snapshots")] == ["2026-11-23"]
    con.close()
    monkeypatch.undo()
    with Store.open(db) as s:
        assert len(s.list_snapshots("shortage")) == 1
    assert db.read_bytes() == before or sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# -- tasks, contact, alerts, history, why -------------------------------------------------------------
def test_daily_commands_end_to_end_and_json_equals_the_library(env, capsys):
    f = write(env / "d.csv", ROWS)
    score(capsys, f, D1)
    now = "2026-11-23T10:00:00+08:00"
    code, out, err = cli(capsys, "tasks", "--date", "2026-11-23", "--now", now, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc.pop("churn_followups", []) == []  # job B's follow-ups share the task list
    with Store.open(env / "store.db") as s:
        lib = loop.tasks_report(s, D1, dt.datetime.fromisoformat(now), WorkCalendar(False), "due")
    assert doc == json.loads(json.dumps(lib, ensure_ascii=False, default=str))
    assert doc["count"] == 4 and {g["owner"] for g in doc["groups"]} >= {"服务经理"}

    # the table: grouped by owner, overdue first, with the channel
    code, out, _ = cli(capsys, "tasks", "--date", "2026-11-23", "--now", "2026-11-23T12:00:00+08:00")
    assert code == 0 and "服务经理" in out and "逾期" in out and "首次联系" in out and "电话" in out

    # a contact clears the task
    code, _, err = cli(capsys, "contact", "C001", "--result", "已接通", "--note", "=cmd|' /C calc'!A0",
                       "--at", "2026-11-23 10:30", "--by", "王经理", "--plan", "+每日回访",
                       "--now", "2026-11-23T11:00:00+08:00")
    # (a wait of 28 days and a P0 put the crisis at level 3: contact twice a day, so 12 hours on)
    assert code == 0 and "已记录" in err and "下次联系 11-23 22:30 前" in err
    code, out, _ = cli(capsys, "tasks", "--date", "2026-11-23", "--now", "2026-11-23T12:00:00+08:00",
                       "--format", "json")
    c001 = next(t for g in json.loads(out)["groups"] for t in g["tasks"] if t["customer_id"] == "C001")
    assert c001["due_kind"] == "cadence" and c001["due"] == "2026-11-23T22:30:00+08:00" and not c001["overdue"]
    code, out, _ = cli(capsys, "tasks", "--date", "2026-11-23", "--view", "calls", "--format", "json")
    assert code == 0 and json.loads(out)["view"] == "calls"
    code, out, _ = cli(capsys, "tasks", "--date", "2026-11-23", "--view", "evening")
    assert code == 0 and "晚间书面" in out

    # alerts: list, acknowledge, JSON equal to the library
    code, out, _ = cli(capsys, "alerts", "--format", "json")
    alerts = json.loads(out)
    with Store.open(env / "store.db") as s:
        assert alerts == json.loads(json.dumps(loop.alerts_report(s, TZ), ensure_ascii=False, default=str))
    first = alerts["alerts"][0]
    assert first["rule_id"] in ("wait28", "redlist") and first["recipient"] == "区域总监"
    code, out, _ = cli(capsys, "alerts")
    assert code == 0 and "区域总监" in out and "李先生" in out
    code, _, err = cli(capsys, "alerts", "ack", str(first["id"]), "--by", "王经理", "--now", now)
    assert code == 0 and f"#{first['id']}" in err
    code, out, _ = cli(capsys, "alerts", "--format", "json")
    assert first["id"] not in {a["id"] for a in json.loads(out)["alerts"]}
    code, out, _ = cli(capsys, "alerts", "--all", "--format", "json")
    assert {a["status"] for a in json.loads(out)["alerts"]} == {"open", "acked"}

    # override (with a reason) → history shows it; why explains the stored score
    code, _, err = cli(capsys, "override", "007", "P1", "--reason", "客户是车友会会长", "--by", "王经理",
                       "--now", "2026-11-23T13:00:00+08:00")
    assert code == 0 and "人工调整" in err
    code, out, _ = cli(capsys, "history", "007", "--format", "json")
    hist = json.loads(out)
    with Store.open(env / "store.db") as s:
        assert hist == json.loads(json.dumps(loop.history_report(s, "007", TZ), ensure_ascii=False, default=str))
    assert [e["type"] for e in hist["events"]] == ["listed", "override"]
    assert hist["customer"]["customer_id"] == "007"  # leading zeros kept
    code, out, _ = cli(capsys, "history", "赵先生")
    assert code == 0 and "人工调整" in out and "车友会会长" in out
    # the next morning as CSV: the override shows as the tier and in the escalations column
    code, _, err = cli(capsys, "score", str(f), "--as-of", D1.isoformat(), "--format", "csv", "-o",
                       str(env / "scored.csv"))
    assert code == 0, err
    with open(env / "scored.csv", encoding="utf-8-sig", newline="") as fh:
        by_id = {r["customer_id"]: r for r in csv.DictReader(fh)}
    assert by_id["007"]["tier"] == "P1" and "人工调整" in by_id["007"]["escalations"]
    assert "\n" not in by_id["007"]["escalations"]
    code, out, _ = cli(capsys, "why", "C001", "--format", "json")
    why = json.loads(out)
    with Store.open(env / "store.db") as s:
        assert why == json.loads(json.dumps(loop.why_report(s, "C001", None, TZ), ensure_ascii=False, default=str))
    assert why["model_tier"] == why["thresholds"][0]["tier"] and why["thresholds"][0]["reached"]
    code, out, _ = cli(capsys, "why", "C001", "--date", "2026-11-23")
    assert code == 0 and "R×0.35" in out and "总分" in out and "分级阈值" in out

    # the execution record: injection-safe text, exact columns, never overwritten without --force
    out_x = env / "record.xlsx"
    code, _, err = cli(capsys, "contacts", "export", "--out", str(out_x))
    assert code == 0 and "1 条" in err
    ws = openpyxl.load_workbook(out_x).active
    rows = list(ws.iter_rows(values_only=True))
    assert list(rows[0]) == ["客户", "风险分", "等级", "负责人", "联系时间", "联系结果", "客户反馈", "后续方案", "完成时间",
                             "渠道"]
    assert rows[1][0] == "张先生（C001）" and rows[1][2] == "P0" and rows[1][3] == "王经理"
    assert rows[1][4] == "2026-11-23 10:30" and rows[1][5] == "已接通"
    assert rows[1][6] == "=cmd|' /C calc'!A0" and rows[1][7] == "+每日回访"
    cells = {c.coordinate: c for c in ws[2]}
    assert cells["G2"].data_type == "s" and cells["H2"].data_type == "s"  # text, not formulas
    code, _, err = cli(capsys, "contacts", "export", "--out", str(out_x))
    assert code == 1 and "已存在" in err
    code, _, _ = cli(capsys, "contacts", "export", "--out", str(out_x), "--force")
    assert code == 0


def test_exit_codes_and_messages(env, capsys):
    code, _, err = cli(capsys, "tasks")
    assert code == 1 and "不存在" in err  # no database yet
    code, _, err = cli(capsys, "history", "C001")
    assert code == 1 and "tierctl score" in err
    f = write(env / "d.csv", ROWS)
    score(capsys, f, D1)
    for args, want, words in [
        (["tasks", "--view", "lunch"], 2, "--view"),
        (["tasks", "--format", "xml"], 2, "--format"),
        (["tasks", "--date", "明天"], 2, "--date"),
        (["override", "C001", "P0"], 2, "原因"),
        (["override", "C001", "P9", "--reason", "x"], 2, "未知的分级"),
        (["override", "C001", "--clear"], 1, "没有生效中的人工调整"),
        (["alerts", "ack", "999"], 1, "没有编号为 999"),
        (["why", "C404"], 1, "找不到"),
        (["why", "C001", "--date", "2026-01-01"], 1, "没有"),
        (["contact", "C001", "--result", " "], 2, "--result"),
        (["contact", "C001", "--result", "x", "--at", "2099-01-01 10:00"], 2, "晚于现在"),
        (["contacts", "export", "--out", "x.csv"], 2, ".xlsx"),
    ]:
        code, _, err = cli(capsys, *args)
        assert code == want, (args, err)
        assert words in err, (args, err)
    code, _, err = cli(capsys, "contact", "C001")  # --result is required (typer usage error)
    assert code == 2


def test_working_days_from_the_config_file(env, capsys):
    (env / "tierctl.toml").write_text("[calendar]\nworking_days = true\n", encoding="utf-8")
    f = write(env / "d.csv", ROWS[3:])  # 007 alone: crisis level 1, whose cap (weekly) tightens nothing
    assert score(capsys, f, D1)["crisis"]["level"] == 1
    code, _, err = cli(capsys, "contact", "007", "--result", "已发短信", "--at", "2026-11-27 10:00",
                       "--now", "2026-11-27T11:00:00+08:00")
    # 007 is P3 (weekly): 5 working days from Friday 11-27 → Friday 12-04
    assert code == 0 and "下次联系 2026-12-04" in err
    # beyond the calendar data (2027): Monday–Friday, and a warning
    code, _, err = cli(capsys, "contact", "007", "--result", "已发短信", "--at", "2026-12-30 10:00",
                       "--now", "2026-12-30T11:00:00+08:00")
    assert code == 0 and "下次联系 2027-01-06" in err and "2027" in err and "周一至周五" in err
    code, out, err = cli(capsys, "tasks", "--date", "2027-01-06", "--format", "json")
    assert code == 0 and "周一至周五" in err
    assert any("周一至周五" in w for w in json.loads(out)["warnings"])


def test_result_from_store_for_render_and_allocate(env, capsys):
    with pytest.raises(NotFoundError, match="还没有保存过评分"):
        cli_daily.result_from_store(None, D1)
    f = write(env / "d.csv", ROWS)
    doc = score(capsys, f, D1)
    common.STATE._config = None
    res = cli_daily.result_from_store(None, D1)
    assert res.to_json()["customers"] == doc["customers"]
    assert cli_daily.result_from_store(env / "store.db", None).as_of == D1
    with pytest.raises(NotFoundError, match="没有"):
        cli_daily.result_from_store(None, dt.date(2026, 1, 1))


def test_morning_text_works_out_a_screenful_and_json_everyone(env, capsys, monkeypatch):
    from tierctl.cli import score as cli_score

    monkeypatch.setattr(cli_score, "DETAIL_LIMIT", 3)
    rows = [[f"C{i:03d}", f"客户{i}", f"1380000{i:04d}", "2026-11-01", "通勤", 1, "", ""] for i in range(30)]
    f = write(env / "many.csv", rows)
    code, out, err = cli(capsys, "score", str(f), "--as-of", D1.isoformat(), "--limit", "5")
    assert code == 0, err
    text = out + err
    assert "今天触发的预警 30 条" in text  # 30 customers × the highest threshold reached (21 days), in full
    assert text.count("等待已满 21 天") == 3 and "另有 27 位客户" in text  # 3 worked out, the rest counted
    assert "30 位客户都记为新增" in text
    doc = score(capsys, f, D1)  # the same day again, as JSON: every alert fired today, every customer
    assert len(doc["alerts_fired"]) == 30 and len({a["customer_key"] for a in doc["alerts_fired"]}) == 30
    assert doc["snapshot"]["alerts_fired"] == 30 and doc["snapshot"]["alerts_fired_customers"] == 30
    shown = re.findall(r"（(C\d{3})）", text[text.index("今天触发的预警"):])
    assert shown == list(dict.fromkeys(a["customer_key"] for a in doc["alerts_fired"]))[:3]  # the same first three


# -- real processes --------------------------------------------------------------------------------
KILL_CLI = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from tierctl.store import core
    original = core.Store._write_snapshot_data
    def hang(self, *a, **k):
        original(self, *a, **k)               # the day's rows are written, not committed …
        Path(sys.argv[1]).write_text("in")
        time.sleep(120)                       # … and the process is killed here
    core.Store._write_snapshot_data = hang
    from tierctl.cli import main
    main(sys.argv[2:])
""")


def test_kill_9_of_a_running_score_leaves_the_state_before(env, capsys):
    f = write(env / "d.csv", ROWS)
    score(capsys, f, D1)
    db = env / "store.db"
    con = sqlite3.connect(db)
    before = [con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("snapshots", "snapshot_data", "alerts")]
    con.close()
    marker = env / "marker"
    script = env / "kill_cli.py"
    script.write_text(KILL_CLI)
    f2 = write(env / "d2.csv", ROWS[:2])
    proc = subprocess.Popen([sys.executable, str(script), str(marker), "score", str(f2), "--as-of", D2.isoformat(),
                             "--db", str(db)], cwd=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    after = [con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("snapshots", "snapshot_data", "alerts")]
    con.close()
    assert after == before
    doc = score(capsys, f2, D2)  # the next run works and sees D1 as the previous one
    assert doc["changes"]["previous_as_of"] == D1.isoformat()


def test_two_score_runs_at_once(env):
    f = write(env / "d.csv", ROWS * 1)
    big = write(env / "big.csv", [[f"K{i:05d}", f"客户{i}", f"139{i:08d}", "2026-11-01", "通勤", i % 9,
                                   "要投诉" if i % 7 else "", ""] for i in range(1500)])
    db = env / "store.db"
    # the same day twice at once: one replaces the other, never a duplicate or a mix
    runs = [[TIERCTL, "score", str(big), "--as-of", D1.isoformat(), "--db", str(db), "--format", "json"],
            [TIERCTL, "score", str(f), "--as-of", D1.isoformat(), "--db", str(db), "--format", "json"]]
    procs = [subprocess.Popen(r, cwd=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for r in runs]
    errs = [p.communicate(timeout=180)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    days = con.execute("SELECT as_of, row_count, replaced FROM snapshots ORDER BY as_of").fetchall()
    assert [(d[0], d[2]) for d in days] == [("2026-11-23", 1)]
    assert days[0][1] in (4, 1500)
    con.close()
    with Store.open(db, readonly=True) as s:
        assert len(s.snapshot_rows(s.snapshot_on("shortage", D1).id)) == days[0][1]
    con = sqlite3.connect(db)
    dup = con.execute("SELECT count(*) FROM (SELECT customer_key, rule_id FROM alerts WHERE status != 'resolved' "
                      "GROUP BY customer_key, rule_id HAVING count(*) > 1)").fetchone()[0]
    assert dup == 0  # an alert fires once, even with two runs racing
    con.close()


def test_tasks_names_the_churn_kind_as_the_churn_loop_does():
    """`tasks` checks for a stored churn run under its own copy of the kind's name (so it
    need not import job B); the two must agree or churn follow-ups would never be listed."""
    from tierctl.churn import history as churn_loop
    from tierctl.cli import tasks as daily_cli

    assert daily_cli.CHURN_KIND == churn_loop.KIND
