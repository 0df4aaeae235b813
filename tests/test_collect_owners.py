"""Named owners (issue 16): the tier policy decides the role, the export's advisor column
(服务顾问 / SA / 顾问 / advisor) or `tierctl assign` decides the person — stored with the
run, shown in score's table/JSON/CSV and in tasks, and `tasks --owner` lists one person's
customers (or one role's)."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest
from conftest import cli

from tierctl.store import CURRENT_VERSION, Store

HEAD = ["客户编号", "客户姓名", "手机号", "登记日期", "用车场景", "沟通记录"]
ROWS = [
    ["C001", "张先生", "13812340001", "2026-10-31", "网约车", "觉得我们在忽悠他"],
    ["C002", "李女士", "13912340002", "2026-11-08", "通勤", "不急"],
    ["C003", "李先生", "13712340003", "2026-10-26", "周末", "每天来电"],
    ["007", "赵先生", "13612340004", "2026-11-20", "周末", ""],
]
ADVISORS = ["王五", "张三", "张三", ""]
NOW = "2026-11-24T10:00:00+08:00"
OLD_FIELDS = {"customer_id", "name", "phone", "car", "wait_days", "dims", "score", "model_tier", "tier", "reasons",
              "escalations", "owner", "respond_by", "cadence_days", "channel", "compensation", "alerts", "row"}


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TIERCTL_CONFIG", raising=False)
    monkeypatch.setenv("TIERCTL_DB", str(tmp_path / "store.db"))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def export(path: Path, header: str | None = "服务顾问", advisors: list[str] = ADVISORS) -> Path:
    with open(path, "w", newline="", encoding="utf-8-sig") as fh:
        w = csv.writer(fh)
        w.writerow(HEAD + ([header] if header else []))
        for r, a in zip(ROWS, advisors, strict=True):
            w.writerow(r + ([a] if header else []))
    return path


def score(capsys, path: Path, *extra: str) -> dict:
    code, out, err = cli(capsys, "score", str(path), "--as-of", "2026-11-24", "--now", "2026-11-24T09:00:00+08:00",
                         "--format", "json", *extra)
    assert code == 0, err
    return json.loads(out)


def people(doc: dict) -> dict[str, tuple]:
    return {c["customer_id"]: (c["owner_role"], c["owner_person"]) for c in doc["customers"]}


@pytest.mark.parametrize("header", ["服务顾问", "SA", "顾问", "advisor"])
def test_the_export_names_the_person_beside_the_role(env, capsys, header):
    doc = score(capsys, export(env / "s.csv", header), "--dry-run")
    got = people(doc)
    assert got["C002"] == ("sa", "张三") and got["C001"][1] == "王五" and got["007"] == ("system", None)
    for c in doc["customers"]:
        assert OLD_FIELDS | {"owner_role", "owner_person", "holds", "media_attention"} == set(c)  # fields only added
        assert c["owner"]  # the role's text as before


def test_without_an_advisor_column_the_person_is_empty(env, capsys):
    doc = score(capsys, export(env / "s.csv", None), "--no-store")
    assert {c["owner_person"] for c in doc["customers"]} == {None}
    assert {c["owner_role"] for c in doc["customers"]} <= {"service_manager", "sa_supervisor", "sa", "system"}


def test_csv_and_table_show_role_and_person(env, capsys):
    f = export(env / "s.csv")
    code, _, err = cli(capsys, "score", str(f), "--as-of", "2026-11-24", "-f", "csv", "-o", str(env / "o.csv"),
                       "--no-store")
    assert code == 0, err
    with open(env / "o.csv", encoding="utf-8-sig", newline="") as fh:
        rows = {r["customer_id"]: r for r in csv.DictReader(fh)}
    assert rows["C002"]["owner_role"] == "sa" and rows["C002"]["owner_person"] == "张三"
    assert rows["007"]["owner_person"] == ""
    code, out, _ = cli(capsys, "score", str(f), "--as-of", "2026-11-24", "--no-store")
    assert code == 0 and "SA·张三" in out


def test_assign_overrides_the_export_until_changed_and_is_stored_with_the_run(env, capsys):
    f = export(env / "s.csv")
    score(capsys, f)
    code, out, err = cli(capsys, "assign", "C002", "李四", "--by", "陈经理", "--now", NOW, "--format", "json")
    assert code == 0, err
    a = json.loads(out)
    assert a["owner_person"] == "李四" and a["previous"] == "张三" and a["export_advisor"] == "张三"
    # at once in tasks: one person's list, matching the person
    code, out, _ = cli(capsys, "tasks", "--owner", "李四", "--now", NOW, "--format", "json")
    t = json.loads(out)
    listed = [(x["customer_id"], x["owner_person"], x["owner_role"]) for g in t["groups"] for x in g["tasks"]]
    assert listed == [("C002", "李四", "sa")]
    code, out, _ = cli(capsys, "tasks", "--owner", "张三", "--now", NOW, "--format", "json")
    assert [x["customer_id"] for g in json.loads(out)["groups"] for x in g["tasks"]] == ["C003"]
    # the next morning's run keeps the assignment over the export's 张三, and stores it
    doc = score(capsys, f)
    assert people(doc)["C002"] == ("sa", "李四") and people(doc)["C003"][1] == "张三"
    with Store.open(env / "store.db") as s:
        info = s.latest_snapshot("shortage")
        rows = s.snapshot_rows(info.id, fields=["owner_person", "advisor"])
    by = dict(zip(rows["customer_key"], rows["owner_person"], strict=True))
    assert by["C002"] == "李四" and by["C003"] == "张三"
    # changed again, then cleared: the export's advisor is back
    code, _, err = cli(capsys, "assign", "C002", "王五", "--now", NOW)
    assert code == 0 and "原为 李四" in err
    code, _, err = cli(capsys, "assign", "李女士", "--clear", "--now", NOW)
    assert code == 0 and "张三" in err
    assert people(score(capsys, f))["C002"] == ("sa", "张三")
    con = sqlite3.connect(env / "store.db")
    hist = con.execute("SELECT person, status FROM assignments WHERE customer_key='C002' ORDER BY id").fetchall()
    con.close()
    assert hist == [("李四", "replaced"), ("王五", "cleared")]


def test_tasks_owner_matches_a_role_too_and_the_table_names_the_person(env, capsys):
    score(capsys, export(env / "s.csv"))
    code, out, _ = cli(capsys, "tasks", "--owner", "SA", "--now", NOW, "--format", "json")
    t = json.loads(out)
    assert {x["customer_id"] for g in t["groups"] for x in g["tasks"]} == {"C002"}
    assert t["count"] == 1
    code, out, _ = cli(capsys, "tasks", "--owner", "张三", "--now", NOW)
    assert code == 0 and "张三" in out and "李先生" in out and "张先生" not in out
    code, out, _ = cli(capsys, "tasks", "--owner", "无此人", "--now", NOW, "--format", "json")
    assert code == 0 and json.loads(out)["count"] == 0


def test_assign_errors(env, capsys):
    score(capsys, export(env / "s.csv"))
    code, _, err = cli(capsys, "assign", "C999", "李四", "--now", NOW)
    assert code == 1 and "C999" in err
    code, _, err = cli(capsys, "assign", "C002", "--now", NOW)
    assert code == 2 and "姓名" in err
    code, _, err = cli(capsys, "assign", "C002", "--clear", "--now", NOW)
    assert code == 1 and "没有" in err
    code, _, err = cli(capsys, "assign", "C002", "李四", "--clear", "--now", NOW)
    assert code == 2


def test_migration_8_adds_channel_and_assignments(tmp_path):
    with Store.open(tmp_path / "m.db", target_version=5):
        pass
    with Store.open(tmp_path / "m.db") as s:
        assert s.schema_version() == CURRENT_VERSION >= 8
    con = sqlite3.connect(tmp_path / "m.db")
    cols = [r[1] for r in con.execute("PRAGMA table_info(contacts)")]
    tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    con.close()
    assert "channel" in cols and "assignments" in tables
