"""Issue 14 in job A's daily loop: the crisis level tightens the contact cadence and hands
tiers to other owners; an alert line names the highest threshold reached; a contact that
did not reach the customer does not reset the cadence; working days from a holiday file
the user writes (and P0 never waits longer than its cadence in calendar days)."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from conftest import cli, isolate, write_table

from tierctl import daily
from tierctl.daily import reading as loop
from tierctl.daily.calendar import load_holiday_file
from tierctl.errors import InputError, ModelError
from tierctl.shortage import load_model
from tierctl.store import Store

TZ = dt.timezone(dt.timedelta(hours=8))
ROOT = Path(__file__).resolve().parents[1]
HEAD = ["客户编号", "客户姓名", "手机号", "登记日期", "用车场景", "近7天联系次数", "沟通记录", "身份/职业"]
D = dt.date(2026, 12, 3)
HOLIDAYS_2027 = """# 2027 年放假安排（测试用）
年份,2027
2027-01-01,休,元旦
2027-02-06~2027-02-12,休,春节
2027-02-14,班,春节调休（周日上班）
"""


def at(day: dt.date, hour: int = 9, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=TZ)


def write(path: Path, rows: list[list[object]]) -> Path:
    return write_table(path, HEAD, rows)


def started(days: int, day: dt.date = D) -> str:
    return (day - dt.timedelta(days=days)).isoformat()


# P2: ride-hailing, waiting 10 days (4.25) · P3: weekend car, 5 days · P1: a self-media driver, 10 days
P2 = ["C002", "王女士", "13900000002", started(10), "网约车", 0, "", ""]
P3 = ["C003", "李先生", "13900000003", started(5), "周末", 0, "", ""]
P1 = ["C001", "张先生", "13900000001", started(10), "网约车", 0, "", "自媒体"]
COMPLAINT = ["C009", "赵先生", "13900000009", started(3), "周末", 0, "说要去投诉", ""]


@pytest.fixture
def env(tmp_path, monkeypatch):
    isolate(monkeypatch, tmp_path, columns="160")
    return tmp_path


def score(capsys, path: Path, day: dt.date = D, *extra: str) -> dict:
    code, out, err = cli(capsys, "score", str(path), "--as-of", day.isoformat(), "--now", at(day).isoformat(),
                         "--format", "json", *extra)
    assert code == 0, err
    return json.loads(out)


def tasks(capsys, now: dt.datetime, *extra: str) -> dict:
    code, out, err = cli(capsys, "tasks", "--date", now.date().isoformat(), "--now", now.isoformat(),
                         "--format", "json", *extra)
    assert code == 0, err
    doc = json.loads(out)
    doc["by_id"] = {t["customer_id"]: {**t, "owner": g["owner"]} for g in doc["groups"] for t in g["tasks"]}
    return doc


def contact(capsys, who: str, result: str, when: dt.datetime, *extra: str) -> tuple[dict, str]:
    code, out, err = cli(capsys, "contact", who, "--result", result, "--at", when.strftime("%Y-%m-%d %H:%M"),
                         "--now", when.isoformat(), "--format", "json", *extra)
    assert code == 0, err
    return json.loads(out), err


# -- 1. the crisis level changes what is asked of people -------------------------------------
def test_red_crisis_asks_for_a_p2_contact_twelve_hours_after_the_last(env, capsys):
    doc = score(capsys, write(env / "d.csv", [P2, P3, COMPLAINT]))
    assert doc["crisis"]["level"] == 4  # a customer already complained
    contact(capsys, "C002", "已接通", at(D, 10))
    t = tasks(capsys, at(D, 11))
    c2 = t["by_id"]["C002"]
    assert c2["tier"] == "P2" and c2["due_kind"] == "cadence" and c2["due"] == at(D, 22).isoformat()
    assert c2["task"] == "每日两次联系（24 小时热线）（危机 4 级）" and not c2["overdue"] and c2["status"] == "剩 11 小时"
    assert t["crisis"]["level"] == 4 and t["crisis"]["contact_max_days"] == 0.5
    assert t["crisis"]["tightened"] == ["P0", "P1", "P2", "P3"]
    nxt = tasks(capsys, at(D + dt.timedelta(days=1), 9))["by_id"]["C002"]
    assert nxt["overdue"] and nxt["status"] == "逾期 11 小时"
    code, out, _ = cli(capsys, "why", "C002", "--format", "json")
    assert json.loads(out)["policy"]["contact"]["cadence_days"] == 0.5
    # the table says so too, above the tasks
    code, out, _ = cli(capsys, "tasks", "--date", D.isoformat(), "--now", at(D, 11).isoformat())
    assert code == 0 and "危机 4 级（极度）：P0、P1、P2、P3 每日两次联系（24 小时热线）" in out and "22:00" in out


def test_green_crisis_keeps_the_tiers_own_cadence(env, capsys):
    doc = score(capsys, write(env / "d.csv", [P2, P3]))
    assert doc["crisis"]["level"] == 1
    contact(capsys, "C002", "已接通", at(D, 10))
    assert "C002" not in tasks(capsys, at(D + dt.timedelta(days=6), 9))["by_id"]
    c2 = tasks(capsys, at(D + dt.timedelta(days=7), 9))["by_id"]["C002"]
    assert c2["due"] == "2026-12-10" and c2["task"] == "每周更新" and c2["status"] == "今天到期"
    assert c2["owner"] == "SA"


def test_yellow_crisis_asks_for_daily_contact_and_the_service_manager_owns_p1(env, capsys):
    doc = score(capsys, write(env / "d.csv", [P1, P2]))
    assert doc["crisis"]["level"] == 2
    assert tasks(capsys, at(D, 10))["by_id"]["C001"]["owner"] == "服务经理"  # P1 is the SA lead's otherwise
    data, err = contact(capsys, "C002", "已接通", at(D, 10))
    assert data["next_due"] == "2026-12-04" and data["owner"] == "SA"
    c2 = tasks(capsys, at(D + dt.timedelta(days=1), 9))["by_id"]["C002"]
    assert c2["due"] == "2026-12-04" and c2["task"] == "每日联系（危机 2 级）"


def test_the_crisis_policy_is_checked_when_the_model_loads(tmp_path):
    text = (ROOT / "tierctl" / "models" / "rite.toml").read_text(encoding="utf-8")
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("contact_max_days = 1\n", "contact_max_days = 1.5\n", 1), encoding="utf-8")
    with pytest.raises(ModelError) as exc:
        load_model(bad)
    assert "crisis.levels[1].contact_max_days" in str(exc.value) and "bad.toml" in str(exc.value)
    bad.write_text(text.replace('owners = { P1 = "服务经理" }', 'owners = { P9 = "服务经理" }', 1), encoding="utf-8")
    with pytest.raises(ModelError) as exc:
        load_model(bad)
    assert "P9" in str(exc.value) and "crisis.levels[1].owners" in str(exc.value)


def test_a_crisis_cap_never_loosens_a_tier_cadence():
    model = load_model("rite")
    tiers = daily.model_meta(model)["tiers"]
    green = model.policy.response(1)
    assert green is not None and not any(green.caps(t["cadence_days"]) for t in tiers)
    rows = task_frame(["P0", "P1", "P2", "P3"])
    last = contacts_frame({f"K{i}": at(D, 10) for i in range(4)})
    out = daily.order_tasks(rows, tiers, last, D, at(D, 11), daily.WorkCalendar(False), view="all",
                            policy=model.policy, crisis=green).set_index("customer_key")
    assert [str(x)[:10] for x in out.loc[["K0", "K1", "K2", "K3"], "due_day"]] == \
        ["2026-12-06", "2026-12-08", "2026-12-10", "2026-12-10"]


def test_the_action_plan_of_the_documents_states_the_cadence_the_crisis_asks_for():
    from tierctl.render import values as documents

    model = load_model("rite")
    p2 = model.tier("P2")
    assert documents.action_text(p2, "zh", model.policy.response(1)) == "SA 24 小时内联系；按需安排经济型代步车；每周更新"
    red = model.policy.response(4)
    assert documents.action_text(p2, "zh", red) == "SA 24 小时内联系；按需安排经济型代步车；每日两次联系（24 小时热线）（危机 4 级）"
    assert "every 7 days" not in documents.action_text(p2, "en", red)
    assert "contact twice a day" in documents.action_text(p2, "en", red)
    p0 = model.tier("P0")
    assert documents.owner_text(p0, "zh", red) == "总部危机小组（危机 4 级接管）"
    assert documents.owner_text(p0, "zh", model.policy.response(1)) == p0.owner
    assert documents.action_text(p0, "zh", red).endswith("；危机 4 级由总部危机小组负责")


# -- 2. an alert line says the highest threshold reached and its recipient --------------------------
def test_a_33_day_wait_reads_28_days_to_the_regional_director(env, capsys):
    f = write(env / "d.csv", [["C033", "钱先生", "13900000033", started(33), "周末", 0, "", ""], P3])
    doc = score(capsys, f)
    mine = [a for a in doc["alerts_fired"] if a["customer_id"] == "C033"]
    assert [(a["rule_id"], a["recipient"], a["reason"]) for a in mine] == \
        [("wait28", "区域总监", "等待已满 28 天（已等待 33 天）")]
    code, out, _ = cli(capsys, "alerts")
    assert code == 0 and "区域总监" in out and "已满 28 天" in out
    assert "已满 14 天" not in out and "已满 21 天" not in out and "SA 主管" not in out
    code, out, _ = cli(capsys, "score", str(f), "--as-of", D.isoformat(), "--now", at(D, 10).isoformat())
    assert code == 0
    # scored again: nothing new fires, and no line names a lower threshold
    assert "已满 14 天" not in out and "SA 主管" not in out


def test_a_higher_threshold_closes_the_lower_open_alert(env, capsys):
    customer = ["C015", "孙女士", "13900000015", started(15), "周末", 0, "", ""]
    score(capsys, write(env / "d1.csv", [customer]))
    later = D + dt.timedelta(days=7)
    doc = score(capsys, write(env / "d2.csv", [customer]), later)  # 22 days now
    assert [(a["rule_id"], a["recipient"]) for a in doc["alerts_fired"]] == [("wait21", "服务经理")]
    code, out, _ = cli(capsys, "alerts", "--format", "json")
    assert [(a["rule_id"], a["recipient"]) for a in json.loads(out)["alerts"]] == [("wait21", "服务经理")]
    code, out, _ = cli(capsys, "alerts", "--all", "--format", "json")
    closed = {a["rule_id"]: a for a in json.loads(out)["alerts"]}
    assert closed["wait14"]["status"] == "resolved" and "wait21" in closed["wait14"]["note"]
    code, out, _ = cli(capsys, "alerts")
    assert "已满 14 天" not in out and "服务经理" in out


def test_the_morning_text_names_each_alert_with_its_own_recipient(env, capsys):
    f = write(env / "d.csv", [["C033", "钱先生", "13900000033", started(33), "周末", 0, "", ""], P3])
    code, out, err = cli(capsys, "score", str(f), "--as-of", D.isoformat(), "--now", at(D).isoformat())
    assert code == 0, err
    line = next(x for x in out.splitlines() if "C033" in x and "→" in x)
    assert "→ 区域总监：钱先生（C033） 等待已满 28 天（已等待 33 天）" in line and "SA 主管" not in line


def test_the_english_morning_text_names_the_alert_in_english(env, capsys):
    f = write(env / "d.csv", [["C033", "钱先生", "13900000033", started(33), "周末", 0, "", ""]])
    code, out, err = cli(capsys, "score", str(f), "--as-of", D.isoformat(), "--now", at(D).isoformat(),
                         "--lang", "en")
    assert code == 0, err
    assert "→ Regional director：钱先生（C033） Waited 28 days or more (33 days)" in out
    assert "等待已满" not in out and "今天触发" not in out


def test_the_english_dashboard_names_the_alert_in_english(env, capsys):
    f = write(env / "d.csv", [["C033", "钱先生", "13900000033", started(33), "周末", 0, "", ""]])
    score(capsys, f)
    code, out, err = cli(capsys, "report", "--date", D.isoformat(), "--now", at(D, 10).isoformat(), "--lang", "en",
                         "--format", "json")
    assert code == 0, err
    items = json.loads(out)["dashboard"]["shortage"]["alerts"]["items"]
    assert [(a["recipient"], a["reason"]) for a in items] == [("Regional director", "Waited 28 days or more (33 days)")]


# -- 3. a contact that did not reach the customer does not reset the cadence -----------------------
def test_no_answer_keeps_the_cadence_and_the_customer_is_due_again_the_next_day(env, capsys):
    score(capsys, write(env / "d.csv", [P2, P3]))  # green: P2 weekly
    contact(capsys, "C002", "已接通", at(D, 10))
    # an extra call three days later that nobody answers: the cadence still runs from 12-03
    data, err = contact(capsys, "C002", "未接通", at(D + dt.timedelta(days=3), 10))
    assert data["reached"] is False and data["next_due"] == "2026-12-10"
    # on the day the cadence runs out, the call fails again: due again the next day, as a retry
    due = D + dt.timedelta(days=7)
    data, _ = contact(capsys, "C002", "电话无人接听", at(due, 10))
    assert data["next_due"] == "2026-12-11"
    assert "C002" not in tasks(capsys, at(due, 11))["by_id"]
    c2 = tasks(capsys, at(due + dt.timedelta(days=1), 9))["by_id"]["C002"]
    assert c2["retry"] is True and c2["last_result"] == "电话无人接听" and c2["due"] == "2026-12-11"
    assert c2["task"] == "重拨：上次电话无人接听（12-10）；每周更新"
    # reached at last: the clock starts again from this contact
    data, _ = contact(capsys, "C002", "已接通，客户同意等待", at(due + dt.timedelta(days=1), 9, 30))
    assert data["reached"] is True and data["next_due"] == "2026-12-18"


def test_a_first_contact_that_is_not_answered_stays_a_first_contact(env, capsys):
    score(capsys, write(env / "d.csv", [P2, P3]))
    code, _, err = cli(capsys, "contact", "C003", "--result", "关机", "--at", "2026-12-03 09:30",
                       "--now", at(D, 9, 30).isoformat())
    assert code == 0 and "没联系上，不重置联系周期" in err
    c3 = tasks(capsys, at(D, 10))["by_id"]["C003"]
    assert c3["due_kind"] == "first" and c3["retry"] and c3["task"] == "重拨：上次关机（12-03）；首次联系"
    assert c3["due"] == at(D + dt.timedelta(days=2)).isoformat()  # P3: 48 h from the run, on the clock


def test_which_results_are_not_reached_is_data(tmp_path):
    text = (ROOT / "tierctl" / "models" / "rite.toml").read_text(encoding="utf-8")
    start = text.index("not_reached = [")
    end = text.index("]", start) + 1
    mine = tmp_path / "mine.toml"
    mine.write_text(text[:start] + 'not_reached = ["没回", "未接通"]' + text[end:], encoding="utf-8")
    policy = load_model(mine).policy
    assert not policy.is_reached("发了微信客户没回") and not policy.is_reached("未接通")
    assert policy.is_reached("关机")  # not in this list
    default = load_model("rite").policy
    assert not any(default.is_reached(r) for r in ("未接通", "无人接听", "关机", "占线", "拒接", "No answer"))
    assert default.is_reached("已接通") and default.is_reached("已发短信")


# -- 4. working days: a holiday file the user writes -----------------------------------------------
def test_a_2027_holiday_file_changes_the_due_dates(tmp_path):
    path = tmp_path / "h2027.csv"
    path.write_text(HOLIDAYS_2027, encoding="utf-8")
    year = load_holiday_file(path)
    own = daily.WorkCalendar(True, {2027: year})
    plain = daily.WorkCalendar(True)
    # weekly (5 working days) from Thursday 2026-12-31: 01-01 is a holiday
    assert own.add_days(dt.date(2026, 12, 31), 7) == dt.date(2027, 1, 8)
    assert plain.add_days(dt.date(2026, 12, 31), 7) == dt.date(2027, 1, 7)
    # five days from Friday 02-05 over the Spring Festival week; Sunday 02-14 is worked
    assert own.add_days(dt.date(2027, 2, 5), 5) == dt.date(2027, 2, 18)
    assert own.is_workday(dt.date(2027, 2, 14)) and not own.is_workday(dt.date(2027, 2, 8))
    assert plain.add_days(dt.date(2027, 2, 5), 5) == dt.date(2027, 2, 12)
    assert own.warnings == [] and len(plain.warnings) == 1


def test_the_holiday_file_from_the_config_and_from_the_command_line(env, capsys):
    (env / "cal").mkdir()
    (env / "cal" / "h2027.csv").write_text(HOLIDAYS_2027, encoding="utf-8")
    (env / "cal" / "tierctl.toml").write_text('[calendar]\nworking_days = true\nfile = "h2027.csv"\n', encoding="utf-8")
    score(capsys, write(env / "d.csv", [P2, P3]))
    when = at(dt.date(2026, 12, 31), 10)
    data, err = contact(capsys, "C003", "已发短信", when, "--holidays", str(env / "cal" / "h2027.csv"))
    assert data["next_due"] == "2027-01-08" and "周一至周五" not in err
    code, out, err = cli(capsys, "--config", str(env / "cal" / "tierctl.toml"), "contact", "C003", "--result",
                         "已发短信", "--at", "2026-12-31 10:00", "--now", when.isoformat(), "--format", "json")
    assert code == 0 and json.loads(out)["next_due"] == "2027-01-08" and "周一至周五" not in err
    # without a file: Monday–Friday, and a warning that says what to do
    (env / "tierctl.toml").write_text("[calendar]\nworking_days = true\n", encoding="utf-8")
    data, err = contact(capsys, "C003", "已发短信", when)
    assert data["next_due"] == "2027-01-07"
    assert err.count("2027 年没有法定节假日数据") == 1 and "--holidays" in err and "[calendar]" in err


def test_beyond_the_package_without_a_file_warns_once():
    cal = daily.WorkCalendar(True)
    for d in range(1, 20):
        cal.add_days(dt.date(2027, 1, d), 3)
    assert len(cal.warnings) == 1 and "2027" in cal.warnings[0] and "README" in cal.warnings[0]


@pytest.mark.parametrize(("text", "line", "words"), [
    ("年份,2027\n2027-01-01,休\n2027-13-01,休\n", 3, ["2027-13-01", "日期无法识别"]),
    ("年份,2027\n2027-01-01,休\n2026-12-31,休\n", 3, ["2026-12-31", "不在文件声明的 2027 年内"]),
    ("年份,2027\n2027-02-06~2027-02-12,休\n2027-02-07,班\n", 3, ["2027-02-07", "既放假又上班"]),
    ("年份,2027\n2027-02-08,班\n", 2, ["2027-02-08", "周一至周五"]),
    ("年份,2027\n2027-02-08,放半天\n", 2, ["放半天", "「休」"]),
    ("2027-01-01,休\n", None, ["缺少「年份」行"]),
])
def test_a_malformed_holiday_file_is_refused_with_file_line_and_value(tmp_path, text, line, words):
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as exc:
        load_holiday_file(path)
    msg = str(exc.value)
    assert "bad.csv" in msg and all(w in msg for w in words), msg
    if line is not None:
        assert f"第 {line} 行" in msg


def test_a_malformed_holiday_file_stops_the_command(env, capsys):
    score(capsys, write(env / "d.csv", [P2, P3]))
    (env / "h.csv").write_text("年份,2027\n2027-02-30,休\n", encoding="utf-8")
    code, _, err = cli(capsys, "tasks", "--holidays", str(env / "h.csv"))
    assert code == 1 and "h.csv" in err and "第 2 行" in err and "2027-02-30" in err and "Traceback" not in err


def test_p0_over_a_seven_day_holiday_is_due_within_its_cadence_in_calendar_days(tmp_path):
    path = tmp_path / "h2027.csv"
    path.write_text(HOLIDAYS_2027, encoding="utf-8")
    cal = daily.WorkCalendar(True, {2027: load_holiday_file(path)})
    model = load_model("rite")
    tiers = daily.model_meta(model)["tiers"]
    friday = dt.date(2027, 2, 5)
    rows = task_frame(["P0", "P1"], day=friday)
    last = contacts_frame({"K0": at(friday, 10), "K1": at(friday, 10)})
    out = daily.order_tasks(rows, tiers, last, friday, at(friday, 11), cal, view="all", policy=model.policy,
                            crisis=None).set_index("customer_key")
    assert str(out.loc["K0", "due_day"])[:10] == "2027-02-08"  # 3 calendar days, though 3 working days is 02-16
    assert cal.add_days(friday, 3) == dt.date(2027, 2, 16)
    assert str(out.loc["K1", "due_day"])[:10] == "2027-02-18"  # P1 counts working days: the holiday week is skipped


def test_p0_first_contact_deadline_on_a_holiday_runs_on_the_clock(env, capsys):
    holiday = dt.date(2027, 2, 8)  # Monday of the Spring Festival week
    (env / "h2027.csv").write_text(HOLIDAYS_2027, encoding="utf-8")
    p0 = ["C100", "周先生", "13900000100", started(10, holiday), "网约车", 0, "觉得我们在忽悠他", "自媒体"]
    doc = score(capsys, write(env / "d.csv", [p0]), holiday)
    assert doc["customers"][0]["tier"] == "P0"
    assert doc["customers"][0]["respond_by"] == at(holiday, 11).isoformat()
    c = tasks(capsys, at(holiday, 10), "--holidays", str(env / "h2027.csv"))["by_id"]["C100"]
    assert c["due_kind"] == "first" and c["due"] == at(holiday, 11).isoformat() and c["status"] == "剩 1 小时"


# -- helpers for the pure task list ------------------------------------------------------------
def task_frame(labels: list[str], day: dt.date = D) -> pd.DataFrame:
    n = len(labels)
    keys = [f"K{i}" for i in range(n)]
    seen = pd.Timestamp(at(day - dt.timedelta(days=10)))
    return pd.DataFrame({"customer_key": keys, "customer_id": keys, "name": keys, "phone": [None] * n,
                         "label": labels, "score": [5.0] * n, "wait_days": [10] * n,
                         "first_seen": [seen] * n, "first_due": [seen + pd.Timedelta(hours=2)] * n})


def contacts_frame(last: dict[str, dt.datetime], results: dict[str, str] | None = None) -> pd.DataFrame:
    keys = list(last)
    return pd.DataFrame({"customer_key": keys, "last_at": pd.to_datetime([last[k] for k in keys], utc=True),
                         "last_result": [(results or {}).get(k, "已接通") for k in keys]})


def test_migration_9_fills_the_latest_contact_result_of_an_existing_store(tmp_path):
    db = tmp_path / "old.db"
    Store.open(db, target_version=5).close()
    con = sqlite3.connect(db)
    for at_, result in (("2026-12-01T02:00:00+00:00", "已接通"), ("2026-12-02T02:00:00+00:00", "未接通")):
        con.execute("INSERT INTO contacts (kind, customer_key, at, result, logged_at) VALUES ('shortage', 'C1', ?, ?, ?)",
                    (at_, result, at_))
    con.execute("INSERT INTO contact_latest (kind, customer_key, last_at) VALUES "
                "('shortage', 'C1', '2026-12-02T02:00:00+00:00')")
    con.commit()
    con.close()
    with Store.open(db) as s:
        last = s.last_contacts("shortage")
        assert last["last_result"].tolist() == ["未接通"]
        both = loop.last_contacts(s, load_model("rite").policy)
        assert both["reached_at"].iloc[0] == pd.Timestamp("2026-12-01T02:00:00+00:00")
