"""Issue 14, item 3: a 媒体关注 (media attention) column flags the customer and the crisis
for the PR plan (SPEC A4.6) — in the score table (a mark), in the JSON (a boolean per
customer and a crisis-level flag), in the escalation e-mail (a line asking for the PR
plan) and on the dashboard.  It does not change a tier."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import cli, isolate

from tierctl import render
from tierctl.config import Config

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "tests" / "golden" / "render" / "tierctl.toml"
TZ = dt.timezone(dt.timedelta(hours=8))
AS_OF = dt.date(2026, 11, 24)
NOW = dt.datetime(2026, 11, 24, 9, 0, tzinfo=TZ)
ROWS = [
    {"客户编号": "C001", "客户姓名": "孙建国", "手机号": "13800000001", "等待天数": 10, "用车场景": "通勤",
     "缺件名称": "大灯总成", "媒体介入": "是"},
    {"客户编号": "C002", "客户姓名": "沈浩", "手机号": "13800000002", "等待天数": 5, "用车场景": "通勤",
     "缺件名称": "大灯总成", "媒体介入": "否"},
    {"客户编号": "C003", "客户姓名": "王五", "手机号": "13800000003", "等待天数": 3, "用车场景": "周末",
     "缺件名称": "大灯总成", "媒体介入": ""},
]


def write(path: Path, rows: list[dict], header: str = "媒体介入") -> Path:
    f = pd.DataFrame(rows).rename(columns={"媒体介入": header})
    f.to_csv(path, index=False, quoting=csv.QUOTE_ALL, encoding="utf-8-sig")
    return path


@pytest.fixture
def env(tmp_path, monkeypatch):
    isolate(monkeypatch, tmp_path, columns="200")
    return tmp_path


def scored(tmp_path: Path, rows: list[dict] = ROWS):
    from tierctl.io.ingest import read_export
    from tierctl.shortage import load_model, score

    model = load_model("rite")
    p = write(tmp_path / f"m{len(list(tmp_path.iterdir()))}.csv", rows)
    ex = read_export(p, model.columns)
    return score(ex.frame, model, AS_OF, NOW, headers=ex.headers, path=p)


@pytest.mark.parametrize("header", ["媒体关注", "媒体介入", "media attention"])
def test_json_flags_the_customer_and_the_crisis(env, capsys, header):
    f = write(env / "x.csv", ROWS, header)
    code, out, err = cli(capsys, "score", str(f), "--as-of", AS_OF.isoformat(), "--format", "json", "--dry-run")
    assert code == 0, err
    doc = json.loads(out)
    flags = {c["customer_id"]: c["media_attention"] for c in doc["customers"]}
    assert flags == {"C001": True, "C002": False, "C003": False}
    crisis = doc["crisis"]
    assert crisis["pr_plan"] is True and crisis["media_attention"] == 1
    assert crisis["media_customers"] == [{"customer_id": "C001", "name": "孙建国"}]


def test_without_media_attention_no_pr_plan_and_tiers_unchanged(env, capsys):
    plain = [{k: v for k, v in r.items() if k != "媒体介入"} for r in ROWS]
    f = env / "plain.csv"
    pd.DataFrame(plain).to_csv(f, index=False, encoding="utf-8-sig")
    code, out, _ = cli(capsys, "score", str(f), "--as-of", AS_OF.isoformat(), "--format", "json", "--dry-run")
    doc = json.loads(out)
    assert doc["crisis"]["pr_plan"] is False and doc["crisis"]["media_attention"] == 0
    assert not any(c["media_attention"] for c in doc["customers"])
    code, out2, _ = cli(capsys, "score", str(write(env / "m.csv", ROWS)), "--as-of", AS_OF.isoformat(),
                        "--format", "json", "--dry-run")
    tiers = {c["customer_id"]: c["tier"] for c in doc["customers"]}
    assert tiers == {c["customer_id"]: c["tier"] for c in json.loads(out2)["customers"]}  # a flag, not a raise


@pytest.mark.parametrize("lang, mark, line", [("zh", "媒", "公关预案"), ("en", "M", "PR plan")])
def test_score_table_marks_the_customer(env, capsys, lang, mark, line):
    f = write(env / "x.csv", ROWS)
    code, out, err = cli(capsys, "score", str(f), "--as-of", AS_OF.isoformat(), "--dry-run", "--lang", lang)
    assert code == 0, err
    lines = out.splitlines()
    sun = next(ln for ln in lines if "孙建国" in ln and "P" in ln)  # the table row
    shen = next(ln for ln in lines if "沈浩" in ln)
    assert f" {mark} " in f" {sun} " and f" {mark} " not in f" {shen} "
    assert "孙建国" in next(ln for ln in lines if line in ln)  # the PR-plan line names him


@pytest.mark.parametrize("lang, words", [("zh", ["媒体关注", "公关预案", "孙建国"]),
                                         ("en", ["media attention", "PR plan", "孙建国"])])
def test_email_asks_for_the_pr_plan(tmp_path, lang, words):
    res = scored(tmp_path)
    p = render.prepare(res, Config.load(CONFIG), lang=lang)
    body = render.render_texts(p, render.make_environment(lang, None)).texts["email_body"]
    line = next(ln for ln in body.splitlines() if words[1] in ln)
    assert all(w in line for w in words)
    assert "沈浩" not in line
    none = scored(tmp_path, [{**r, "媒体介入": "否"} for r in ROWS])
    p = render.prepare(none, Config.load(CONFIG), lang=lang)
    body = render.render_texts(p, render.make_environment(lang, None)).texts["email_body"]
    assert words[1] not in body


@pytest.mark.parametrize("lang, words", [("zh", ["媒体关注", "公关预案"]), ("en", ["Media attention", "PR plan"])])
def test_dashboard_shows_the_pr_plan_flag(tmp_path, lang, words):
    from tierctl.daily.history import record_run
    from tierctl.render import dashboard
    from tierctl.shortage import crisis_level
    from tierctl.store import Store

    res = scored(tmp_path)
    with Store.open(tmp_path / "d.db") as store:
        record_run(store, res, crisis_level(res), source_name="x.csv", source_hash=None)
        data = dashboard.gather(store, AS_OF, NOW, lang=lang)
    c = data["shortage"]["crisis"]
    assert c["pr_plan"] is True and c["media_attention"] == 1
    assert [m["name"] for m in c["media_customers"]] == ["孙建国"]
    html = dashboard.render_html(data, dashboard.figures(data))
    block = html[html.index('id="crisis"'):html.index('id="tiers"')]
    assert all(w in block for w in words) and "孙建国" in block

    none = scored(tmp_path, [{**r, "媒体介入": "否"} for r in ROWS])
    with Store.open(tmp_path / "e.db") as store:
        record_run(store, none, crisis_level(none), source_name="x.csv", source_hash=None)
        data = dashboard.gather(store, AS_OF, NOW, lang=lang)
    assert data["shortage"]["crisis"]["pr_plan"] is False
    html = dashboard.render_html(data, dashboard.figures(data))
    assert words[1] not in html[html.index('id="crisis"'):html.index('id="tiers"')]
