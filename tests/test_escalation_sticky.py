"""Issue 14, item 1: a raise by A4.4 (new complaint words), A4.5 (contact spike) or A4.6
(negative post) holds on the following mornings although the export no longer shows
what caused it — until the customer leaves the list or a manager lowers the tier with
``tierctl override``.  The hold lives in the stored snapshots, survives re-running a day,
and shows in the JSON and in ``tierctl why``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import cli, isolate, write_table

from tierctl.daily import reports as daily_reports
from tierctl.daily import values as daily_values
from tierctl.shortage import escalate, load_model
from tierctl.store import Store

TZ = dt.timezone(dt.timedelta(hours=8))
D1, D2, D3, D4 = (dt.date(2026, 11, 23) + dt.timedelta(days=i) for i in range(4))
HEAD = ["客户编号", "客户姓名", "手机号", "等待天数", "用车场景", "沟通记录", "近7天联系次数", "上周联系次数", "社媒负面"]
# 孙建国: R3 I8 T3 E2 = 4.35, P2; the complaint word is new on the first day → A4.4 raises him to P1
SUN = ["C001", "孙建国", "13800000001", 10, "通勤", "客户说要投诉", "", "", ""]
# 沈浩 (red list): R10 I8 T1 E2 = 6.40, P1 → A4.4 P0
SHEN = ["C002", "沈浩", "13800000002", 5, "通勤", "很生气说要去投诉", "", "", ""]
QUIET = ["C003", "王五", "13800000003", 3, "周末", "", "", "", ""]


def write(path: Path, rows: list[list[object]]) -> Path:
    return write_table(path, HEAD, rows)


@pytest.fixture
def env(tmp_path, monkeypatch):
    isolate(monkeypatch, tmp_path, columns="200")
    (tmp_path / "red.txt").write_text("C002\n", encoding="utf-8")
    return tmp_path


def score(capsys, path: Path, day: dt.date, *extra: str) -> dict:
    code, out, err = cli(capsys, "score", str(path), "--as-of", day.isoformat(), "--format", "json",
                         "--red-list", "red.txt", *extra)
    assert code == 0, err
    return json.loads(out)


def by_id(doc: dict) -> dict[str, dict]:
    return {c["customer_id"]: c for c in doc["customers"]}


def test_a_new_complaint_word_raise_holds_the_next_morning(env, capsys):
    f = write(env / "x.csv", [SUN, SHEN, QUIET])
    d1 = by_id(score(capsys, f, D1))
    assert (d1["C001"]["model_tier"], d1["C001"]["tier"]) == ("P2", "P1")
    assert (d1["C002"]["model_tier"], d1["C002"]["tier"]) == ("P1", "P0")
    assert d1["C001"]["holds"] == [{"rule": "A4.4", "since": D1.isoformat(),
                                   "reason": "最新沟通记录新出现「投诉」，升一级"}]
    assert d1["C003"]["holds"] == []

    doc = score(capsys, f, D2)  # the same notes the next morning: nothing is new, the raise holds
    d2 = by_id(doc)
    assert d2["C001"]["tier"] == "P1" and d2["C002"]["tier"] == "P0"
    # owner and cadence stay those of the held tier
    assert d2["C001"]["owner"] == d1["C001"]["owner"] and d2["C001"]["cadence_days"] == 5
    assert d2["C002"]["owner"] == d1["C002"]["owner"] and d2["C002"]["cadence_days"] == 3
    assert d2["C001"]["holds"][0]["since"] == D1.isoformat() and d2["C001"]["holds"][0]["rule"] == "A4.4"
    line = d2["C001"]["escalations"][-1]
    assert line.startswith("A4.4: ") and D1.isoformat() in line and "投诉" in line
    assert doc["changes"]["counts"]["downgraded"] == 0 and doc["changes"]["downgraded"] == []

    # the table says the same: no "↓ … A4.4 不再适用"
    code, out, _ = cli(capsys, "score", str(f), "--as-of", D3.isoformat(), "--red-list", "red.txt")
    assert code == 0 and "不再适用" not in out and "降级 0 位" in out


def test_the_hold_is_stored_and_survives_re_running_a_day(env, capsys):
    f = write(env / "x.csv", [SUN, QUIET])
    score(capsys, f, D1)
    score(capsys, f, D2)
    again = by_id(score(capsys, f, D2))  # the same day once more (a corrected export)
    assert again["C001"]["tier"] == "P1" and again["C001"]["holds"][0]["since"] == D1.isoformat()
    first = by_id(score(capsys, f, D1))  # and the first day re-scored: still raised since that day
    assert first["C001"]["tier"] == "P1" and first["C001"]["holds"][0]["since"] == D1.isoformat()
    with Store.open(env / "store.db") as s:
        info = s.snapshot_on(daily_values.KIND, D2)
        rows = s.snapshot_rows(info.id, fields=["holds"])
    held = dict(zip(rows["customer_key"], rows["holds"], strict=True))
    assert "A4.4" in held["C001"] and D1.isoformat() in held["C001"]
    assert not held["C003"]


def test_why_says_since_when_and_why_it_holds(env, capsys):
    f = write(env / "x.csv", [SUN, QUIET])
    score(capsys, f, D1)
    score(capsys, f, D2)
    code, out, err = cli(capsys, "why", "C001", "--format", "json")
    assert code == 0, err
    why = json.loads(out)
    with Store.open(env / "store.db") as s:
        lib = daily_reports.why_report(s, "C001", None, TZ)
    assert why == json.loads(json.dumps(lib, ensure_ascii=False, default=str))
    assert why["holds"] == [{"rule": "A4.4", "since": D1.isoformat(), "reason": "最新沟通记录新出现「投诉」，升一级"}]
    assert why["tier"] == "P1" and why["model_tier"] == "P2"
    code, out, _ = cli(capsys, "why", "C001")
    assert code == 0
    text = " ".join(out.split())
    assert "A4.4" in text and D1.isoformat() in text and "保持" in text and "override" in text


def test_leaving_the_list_and_coming_back_starts_fresh(env, capsys):
    score(capsys, write(env / "a.csv", [SUN, QUIET]), D1)
    score(capsys, write(env / "b.csv", [QUIET]), D2)  # 孙建国 got his part
    calm = [*SUN[:5], "客户表示理解", "", "", ""]
    back = by_id(score(capsys, write(env / "c.csv", [calm, QUIET]), D3))
    assert back["C001"]["tier"] == back["C001"]["model_tier"] and back["C001"]["holds"] == []
    # back with the complaint in the notes: a new raise, held from the day he came back
    score(capsys, write(env / "d.csv", [QUIET]), D4)
    again = by_id(score(capsys, write(env / "e.csv", [SUN, QUIET]), D4 + dt.timedelta(days=1)))
    assert again["C001"]["holds"][0]["since"] == (D4 + dt.timedelta(days=1)).isoformat()


def test_contact_spike_and_negative_post_raises_hold(env, capsys):
    spike = ["C010", "钱七", "13800000010", 3, "备用", "", 9, 1, ""]  # P3, 9 ≥ 3 × 1 → A4.5 P2
    post = ["C011", "周八", "13800000011", 3, "备用", "", "", "", "是"]  # P3, negative post → A4.6 P0
    d1 = by_id(score(capsys, write(env / "a.csv", [spike, post]), D1))
    assert d1["C010"]["tier"] == "P2" and d1["C011"]["tier"] == "P0"
    calm_spike = [*spike[:6], 9, 9, ""]  # this week as many contacts as last week: no spike today
    calm_post = [*post[:8], "否"]  # the post is no longer flagged in the export
    d2 = by_id(score(capsys, write(env / "b.csv", [calm_spike, calm_post]), D2))
    assert d2["C010"]["tier"] == "P2" and [h["rule"] for h in d2["C010"]["holds"]] == ["A4.5"]
    assert d2["C011"]["tier"] == "P0" and [h["rule"] for h in d2["C011"]["holds"]] == ["A4.6"]
    assert d2["C011"]["holds"][0]["since"] == D1.isoformat()


def test_an_override_lowering_the_tier_releases_the_hold(env, capsys):
    f = write(env / "x.csv", [SUN, QUIET])
    score(capsys, f, D1)
    code, _, err = cli(capsys, "override", "C001", "P2", "--reason", "已上门致歉，客户撤回投诉", "--by", "王经理",
                       "--now", "2026-11-23T15:00:00+08:00")
    assert code == 0, err
    assert "A4.4" in err  # the override says which hold it releases
    d2 = by_id(score(capsys, f, D2))
    assert d2["C001"]["tier"] == "P2" and d2["C001"]["holds"] == []
    code, _, err = cli(capsys, "override", "C001", "--clear", "--reason", "恢复按模型", "--now",
                       "2026-11-24T15:00:00+08:00")
    assert code == 0, err
    d3 = by_id(score(capsys, f, D3))  # released for good: the model tier, not the old raise
    assert d3["C001"]["tier"] == "P2" and d3["C001"]["holds"] == []


def test_an_override_raising_the_tier_keeps_the_hold(env, capsys):
    f = write(env / "x.csv", [SUN, QUIET])
    score(capsys, f, D1)
    code, _, err = cli(capsys, "override", "C001", "P0", "--reason", "区域总监要求", "--now",
                       "2026-11-23T15:00:00+08:00")
    assert code == 0, err
    d2 = by_id(score(capsys, f, D2))
    assert d2["C001"]["tier"] == "P0" and [h["rule"] for h in d2["C001"]["holds"]] == ["A4.4"]
    cli(capsys, "override", "C001", "--clear", "--now", "2026-11-24T15:00:00+08:00")
    d3 = by_id(score(capsys, f, D3))
    assert d3["C001"]["tier"] == "P1"  # back to the held raise


def test_a_hold_never_lowers_a_tier():
    model = load_model("rite")
    f = pd.DataFrame({"wait_days": [3, 3], "key": ["a", "b"], "notes": ["", ""]})
    previous = pd.DataFrame({"key": ["a", "b"], "notes": ["", ""],
                             "holds": [f"A4.4\t{D1.isoformat()}\t最新沟通记录新出现「投诉」，升一级", ""]})
    final, text = escalate(f, np.array([0, 3]), model, previous=previous, as_of=D2)
    assert final.tolist() == [0, 3]  # already P0: nothing to raise; b has no hold
    final, text = escalate(f, np.array([2, 2]), model, previous=previous, as_of=D2)
    assert final.tolist() == [1, 2] and "A4.4" in text[0] and not text[1]


@pytest.mark.parametrize("edit, key", [
    (lambda t: t.replace('text = "自 {since} 起保持：{reason}"', 'text = "自 {day} 起"'), "holds.text"),
    (lambda t: t.replace('[pr_plan]\nfield = "media_attention"', '[pr_plan]\nfield = "press"'), "pr_plan.field"),
    (lambda t: t.replace('reason = "社交媒体出现负面发帖，立即升为 P0"\nholds = true',
                         'reason = "社交媒体出现负面发帖，立即升为 P0"\nholds = "yes"'), "escalation[5].holds"),
])
def test_the_model_file_is_checked_at_load(tmp_path, edit, key):
    from tierctl.errors import ModelError

    text = (Path(__file__).resolve().parents[1] / "tierctl" / "models" / "rite.toml").read_text(encoding="utf-8")
    bad = edit(text)
    assert bad != text
    p = tmp_path / "bad.toml"
    p.write_text(bad, encoding="utf-8")
    with pytest.raises(ModelError) as exc:
        load_model(p)
    assert key in str(exc.value) and "bad.toml" in str(exc.value)
