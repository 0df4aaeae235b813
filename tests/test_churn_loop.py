"""The churn closed loop against a real (in-memory) store: snapshots, interventions,
follow-ups for `tierctl tasks`, effect and win-back on a constructed history, the ROI
report and its workbook, drafted upkeep messages."""

from __future__ import annotations

import datetime as dt
import zipfile
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from tierctl.churn import history as churn_history
from tierctl.churn import load_churn_model, roi_report, score_churn
from tierctl.churn import report as churn_report
from tierctl.churn import touches as churn_touches
from tierctl.churn import workbook as churn_workbook
from tierctl.churn.festivals import touches
from tierctl.config import Config
from tierctl.errors import InputError, NotFoundError, RenderError, UsageError
from tierctl.store import Store

TZ = dt.timezone(dt.timedelta(hours=8))
D0 = dt.date(2026, 3, 2)


@pytest.fixture(scope="module")
def model():
    return load_churn_model()


@pytest.fixture
def store():
    s = Store.open(":memory:")
    yield s
    s.close()


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=TZ)


def customers(scores: dict[str, float], *, last_visit: dict[str, dt.date] | None = None,
              names: dict[str, str] | None = None, **cols: dict[str, object]) -> pd.DataFrame:
    ids = list(scores)
    df = pd.DataFrame({"customer_id": pd.array(ids, dtype="string"),
                       "name": pd.array([(names or {}).get(i, f"客户{i}") for i in ids], dtype="string"),
                       "risk_score": pd.array([scores[i] for i in ids], dtype="Float64")})
    if last_visit is not None:
        df["last_visit"] = pd.to_datetime(pd.Series([last_visit.get(i) for i in ids], dtype=object))
    for col, values in cols.items():
        df[col] = [values.get(i) for i in ids]
    df["_row"] = np.arange(len(df)) + 2
    return df


def snap(store: Store, model, day: dt.date, scores: dict[str, float], **kw) -> None:
    res = score_churn(customers(scores, **kw), model, day, at(day, 9))
    churn_history.save_result(store, res, model, source_name="export.csv", source_hash=None)


def log(store: Store, model, cid: str, day: dt.date, result: str = "已接通", hour: int = 10, **kw):
    when = at(day, hour)
    return churn_history.log_intervention(store, model, cid, action=kw.pop("action", "致电"), result=result, at=when,
                                       now=when, **kw)


# ------------------------------------------------------------------------------------
# Snapshots
# ------------------------------------------------------------------------------------
def test_snapshot_round_trip_keeps_ids_levels_and_inputs(store, model):
    snap(store, model, D0, {"007": 85, "010": 30}, last_visit={"007": D0, "010": None})
    info, rows = churn_history.latest_customers(store, D0)
    assert info.as_of == D0 and info.kind == "churn"
    r = rows.set_index("customer_key")
    assert list(r.index) == ["007", "010"]
    assert r.loc["007", "label"] == "极高" and r.loc["007", "score"] == 85
    assert r.loc["007", "level_key"] == "extreme" and r.loc["010", "level_key"] == "low"
    assert r.loc["007", "owner"] == "区域经理+店长"
    assert pd.Timestamp(r.loc["007", "last_visit"]).date() == D0
    assert r.loc["007", "reasons"] == ["流失风险分 85：取自导出表"]


def test_same_day_rerun_replaces_the_snapshot(store, model):
    snap(store, model, D0, {"A": 50})
    snap(store, model, D0, {"A": 70, "B": 10})
    snaps = store.list_snapshots("churn")
    assert len(snaps) == 1 and snaps[0].row_count == 2


def test_latest_customers_without_history_is_not_found(store):
    with pytest.raises(NotFoundError, match="没有"):
        churn_history.latest_customers(store, D0)


# ------------------------------------------------------------------------------------
# Interventions and follow-ups
# ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("score", "days"), [(50, [30]), (70, [7, 30]), (85, [7, 14, 30, 60, 90])])
def test_followups_scheduled_per_level(store, model, score, days):
    snap(store, model, D0, {"A": score})
    rec = log(store, model, "A", D0, cost=200)
    assert rec["episode"] == "new"
    assert [f["due"] for f in rec["followups_scheduled"]] == [(D0 + dt.timedelta(days=d)).isoformat() for d in days]
    # every one appears in tasks on its day, not before
    first = D0 + dt.timedelta(days=days[0])
    assert followups_on(store, first - dt.timedelta(days=1)) == []
    due = churn_history.followups_due(store, first)
    assert list(due.columns) == ["customer_key", "customer_id", "name", "owner", "due", "kind", "channel", "detail"]
    assert due["customer_id"].tolist() == ["A"] and due["due"].tolist() == [first]
    assert due["kind"].tolist() == ["churn_followup"]
    end = D0 + dt.timedelta(days=days[-1])
    assert len(churn_history.followups_due(store, end)) == len(days)


def followups_on(store: Store, day: dt.date) -> list[str]:
    return churn_history.followups_due(store, day)["customer_id"].tolist()


def test_followup_owner_channel_and_detail_come_from_the_model(store, model):
    snap(store, model, D0, {"A": 88}, annual_spend={"A": 20000.0})
    log(store, model, "A", D0, action="区域经理致电道歉")
    due = churn_history.followups_due(store, D0 + dt.timedelta(days=90))
    assert due["owner"].tolist() == ["区域经理", "店长", "区域经理+店长", "区域经理+店长", "区域经理"]
    assert due["channel"].tolist() == ["电话", "登门拜访", "礼品", "活动邀请", "面谈"]
    assert due["detail"].iloc[0].startswith("极高风险回访 1/5：第1周")
    assert "区域经理致电道歉" in due["detail"].iloc[0]


def test_execution_record_fields_are_stored(store, model):
    snap(store, model, D0, {"A": 70})
    rec = log(store, model, "A", D0, result="已解决", feedback="嫌贵", next_plan="会员价9折", cost=350.5, by="王店长")
    c = store.contacts_list("churn").iloc[0]
    assert (c["customer_id"], c["score"], c["label"], c["owner"]) == ("A", 70.0, "高", "店长")
    assert (c["result"], c["note"], c["plan"], c["by"], c["action"], c["cost"]) == (
        "已解决", "嫌贵", "会员价9折", "王店长", "致电", 350.5)
    assert c["done_at"] == c["at"]  # solved: completed when logged
    assert rec["solved"] and rec["reached"]


def test_an_unanswered_call_schedules_nothing_then_a_reached_one_does(store, model):
    snap(store, model, D0, {"A": 70})
    first = log(store, model, "A", D0, result="未接通")
    assert first["episode"] == "attempt" and first["followups_scheduled"] == []
    second = log(store, model, "A", D0 + dt.timedelta(days=1), result="接通")
    assert second["episode"] == "new" and len(second["followups_scheduled"]) == 2


def test_a_followup_contact_closes_what_is_due_and_starts_nothing_new(store, model):
    snap(store, model, D0, {"A": 70})
    log(store, model, "A", D0)
    # day 6 is within close_early_days of the day-7 follow-up
    rec = log(store, model, "A", D0 + dt.timedelta(days=6), action="店长回访")
    assert [f["due"] for f in rec["followups_closed"]] == [(D0 + dt.timedelta(days=7)).isoformat()]
    assert rec["episode"] == "continued" and rec["followups_scheduled"] == []
    assert followups_on(store, D0 + dt.timedelta(days=10)) == []
    rec = log(store, model, "A", D0 + dt.timedelta(days=31), action="SA回访")
    assert rec["episode"] == "completed" and rec["next_followup"] is None
    assert followups_on(store, D0 + dt.timedelta(days=400)) == []


def test_an_unanswered_followup_call_keeps_the_task(store, model):
    snap(store, model, D0, {"A": 55})
    log(store, model, "A", D0)
    log(store, model, "A", D0 + dt.timedelta(days=30), result="未接通")
    assert followups_on(store, D0 + dt.timedelta(days=31)) == ["A"]


def test_a_higher_level_supersedes_the_remaining_schedule(store, model):
    snap(store, model, D0, {"A": 55})
    log(store, model, "A", D0)
    later = D0 + dt.timedelta(days=10)
    snap(store, model, later, {"A": 90})
    rec = log(store, model, "A", later)
    assert rec["episode"] == "escalated"
    assert [f["due"] for f in rec["followups_scheduled"]][0] == (later + dt.timedelta(days=7)).isoformat()
    due = churn_history.followups_due(store, D0 + dt.timedelta(days=30))
    assert due["due"].tolist() == [later + dt.timedelta(days=7), later + dt.timedelta(days=14)]


def test_logging_the_same_record_twice_stores_it_once(store, model):
    snap(store, model, D0, {"A": 70})
    a = log(store, model, "A", D0)
    b = log(store, model, "A", D0)
    assert b["duplicate"] and b["id"] == a["id"]
    assert len(store.contacts_list("churn")) == 1
    assert len(churn_history.followups_due(store, D0 + dt.timedelta(days=30))) == 2


def test_customer_by_name_or_phone_and_errors(store, model):
    snap(store, model, D0, {"A": 70, "B": 60, "C": 65}, names={"A": "张先生", "B": "王女士", "C": "王女士"})
    assert log(store, model, "张先生", D0)["customer_id"] == "A"
    with pytest.raises(UsageError, match="多位客户"):
        log(store, model, "王女士", D0)
    with pytest.raises(NotFoundError, match="不在"):
        log(store, model, "Z9", D0)
    with pytest.raises(UsageError, match="联系结果"):
        log(store, model, "A", D0, result="还行吧")
    with pytest.raises(UsageError, match="--cost"):
        log(store, model, "A", D0, cost=-5)
    with pytest.raises(NotFoundError):  # nothing scored on or before that day
        log(store, model, "A", D0 - dt.timedelta(days=1))


# ------------------------------------------------------------------------------------
# Effect and win-back on a constructed history
# ------------------------------------------------------------------------------------
def history(store: Store, model) -> None:
    """Six customers intervened on D0; later snapshots tell what happened."""
    lv = {k: D0 - dt.timedelta(days=100) for k in "ABCDEF"}
    snap(store, model, D0, {"A": 70, "B": 70, "C": 88, "D": 55, "E": 65, "F": 80, "G": 45}, last_visit=lv)
    for cid in "ABCDEF":
        log(store, model, cid, D0, cost=1000)
    # day 20: A fell 25 points (worked), B fell 10; C came back for service
    d20 = D0 + dt.timedelta(days=20)
    snap(store, model, d20, {"A": 45, "B": 60, "C": 80, "D": 55, "E": 65, "F": 80, "G": 45},
         last_visit={**lv, "C": d20})
    # day 45: B finally fell 30 points — too late for the 30-day window; E visited after 5 months
    d45 = D0 + dt.timedelta(days=45)
    snap(store, model, d45, {"A": 40, "B": 40, "C": 50, "D": 50, "E": 60, "F": 80, "G": 45},
         last_visit={**lv, "C": d20})
    d150 = D0 + dt.timedelta(days=150)
    snap(store, model, d150, {"A": 40, "B": 40, "C": 50, "D": 50, "E": 30, "F": 80, "G": 45},
         last_visit={**lv, "C": d20, "E": d150})
    # 7 months on: D visited only now (outside 6 months)
    d210 = D0 + dt.timedelta(days=210)
    snap(store, model, d210, {"A": 40, "B": 40, "C": 50, "D": 30, "E": 30, "F": 80, "G": 45},
         last_visit={**lv, "C": d20, "E": d150, "D": d210})


def test_effect_and_win_back_from_later_snapshots(store, model):
    history(store, model)
    rep = churn_report.loop_report(store, model, start=D0, end=D0, now=at(D0 + dt.timedelta(days=210), 18))
    iv = rep.interventions.set_index("customer_id")
    assert iv.loc["A", "effect"] == "worked" and iv.loc["A", "score_after"] == 45
    assert iv.loc["B", "effect"] == "not_worked"  # its fall came after 30 days
    assert iv.loc["C", "effect"] == "not_worked"
    assert iv.loc["C", "won_back"] == "won" and iv.loc["E", "won_back"] == "won"
    assert iv.loc["D", "won_back"] == "lost"  # visited after 7 months only
    assert iv.loc["A", "won_back"] == "lost" and iv.loc["F", "won_back"] == "lost"


def test_open_windows_are_pending(store, model):
    history(store, model)
    # data only up to day 20: effect windows still open for all but A, win-back open for all but C
    rep = churn_report.loop_report(store, model, start=D0, end=D0 + dt.timedelta(days=20),
                                 now=at(D0 + dt.timedelta(days=20), 18))
    assert rep.data_as_of == D0 + dt.timedelta(days=210)  # later data still decides
    store2 = Store.open(":memory:")
    snap(store2, model, D0, {"A": 70, "B": 70}, last_visit={"A": D0, "B": D0})
    log(store2, model, "A", D0)
    log(store2, model, "B", D0)
    snap(store2, model, D0 + dt.timedelta(days=20), {"A": 45, "B": 68},
         last_visit={"A": D0 + dt.timedelta(days=20), "B": D0})
    rep2 = churn_report.loop_report(store2, model, now=at(D0 + dt.timedelta(days=20), 18))
    iv = rep2.interventions.set_index("customer_id")
    assert iv.loc["A", "effect"] == "worked" and iv.loc["B", "effect"] == "pending"
    assert iv.loc["A", "won_back"] == "won" and iv.loc["B", "won_back"] == "pending"
    assert rep2.pending["high"] == {"effect": 1, "win_back": 1}
    store2.close()


def test_visits_export_adds_spending(store, model):
    history(store, model)
    visits = pd.DataFrame({"customer_id": ["F", "A"], "date": [D0 + dt.timedelta(days=60), D0 + dt.timedelta(days=9)],
                           "amount": [880.0, -300.0]})  # A's is a refund: not spending
    rep = churn_report.loop_report(store, model, start=D0, end=D0, now=at(D0 + dt.timedelta(days=210)), visits=visits)
    iv = rep.interventions.set_index("customer_id")
    assert iv.loc["F", "won_back"] == "won" and iv.loc["A", "won_back"] == "lost"


def test_report_per_level_matches_the_roi_library(store, model):
    history(store, model)
    rep = churn_report.loop_report(store, model, start=D0, end=D0 + dt.timedelta(days=210),
                                 now=at(D0 + dt.timedelta(days=210), 18))
    by = {lv.level_key: lv for lv in rep.roi.levels}
    # at their intervention: D 中; A, B, E 高; C, F 极高; G (中, never intervened) is a customer too
    assert (by["mid"].customers, by["mid"].intervened, by["mid"].won_back) == (2, 1, 0)
    assert (by["high"].customers, by["high"].intervened, by["high"].won_back) == (3, 3, 1)
    assert (by["extreme"].customers, by["extreme"].intervened, by["extreme"].won_back) == (2, 2, 1)
    assert by["high"].cost == Decimal(3000)
    expected = roi_report([{"level": "mid", "customers": 2, "intervened": 1, "won_back": 0, "cost": 1000},
                           {"level": "high", "customers": 3, "intervened": 3, "won_back": 1, "cost": 3000},
                           {"level": "extreme", "customers": 2, "intervened": 2, "won_back": 1, "cost": 2000}], model)
    assert rep.roi == expected
    k = {x.key: x for x in rep.kpis}
    assert rep.kpi_counts["risk_reduced"] == (1, 6)  # only A fell ≥ 20 within 30 days
    assert rep.kpi_counts["win_back"] == (2, 6)
    assert rep.kpi_counts["contact"] == (6, 6) and k["contact"].met
    assert rep.kpi_counts["solved"] == (0, 6) and k["solved"].met is False
    # every alert of D0 was answered at 10:00, within 3 days / 24 h / 4 h of 09:00
    assert rep.kpi_counts["alert_response"][0] == 6
    doc = rep.to_json()
    assert doc["total"]["intervened"] == 6 and len(doc["interventions"]) == 6


def test_alert_response_counts_late_and_missing_contacts(store, model):
    snap(store, model, D0, {"A": 85, "B": 85, "C": 85})
    log(store, model, "A", D0, hour=11)  # 2 h after the 09:00 alert: within 4 h
    log(store, model, "B", D0, hour=15)  # 6 h: late
    rep = churn_report.loop_report(store, model, now=at(D0, 18))
    assert rep.kpi_counts["alert_response"] == (1, 3)  # C never contacted, deadline passed


def test_costs_of_every_contact_in_the_period_add_up(store, model):
    snap(store, model, D0, {"A": 70})
    log(store, model, "A", D0, cost=500)
    log(store, model, "A", D0 + dt.timedelta(days=7), cost=120.5, action="店长回访")
    log(store, model, "A", D0 + dt.timedelta(days=7), result="未接通", cost=None, action="短信", hour=11)
    rep = churn_report.loop_report(store, model, now=at(D0 + dt.timedelta(days=8)))
    assert rep.roi.levels[0].cost == Decimal("620.5") and rep.roi.intervened == 1
    assert rep.interventions.iloc[0]["contacts"] == 3


def test_report_needs_some_history(store, model):
    with pytest.raises(NotFoundError):
        churn_report.loop_report(store, model, now=at(D0))
    snap(store, model, D0, {"A": 50})
    with pytest.raises(UsageError):
        churn_report.loop_report(store, model, start=D0, end=D0 - dt.timedelta(days=1), now=at(D0))


# ------------------------------------------------------------------------------------
# The seed's table and the workbook
# ------------------------------------------------------------------------------------
def test_seed_report(model):
    rep = churn_report.seed_report(model)
    r = rep.roi
    assert (r.intervened, r.won_back, r.cost) == (1350, 766, Decimal(1464000))
    lines = "\n".join(rep.summary_lines())
    for text in ("57%", "146.4万", "162%", "226", "113万", "810", "584"):
        assert text in lines


def test_figures_file_reproduces_the_seed(tmp_path, model):
    p = tmp_path / "figures.csv"
    pd.DataFrame({"等级": ["中", "高", "极高"], "客户数": [850, 320, 180], "干预数": [850, 320, 180],
                  "挽回数": [562, 150, 54], "成本": ["12.8万", "25.6万", "108万"]}).to_csv(p, index=False, encoding="gbk")
    rep = churn_report.table_report(churn_report.read_table(p), model)
    assert rep.roi == churn_report.seed_report(model).roi


def test_impossible_figures_are_an_input_error(tmp_path, model):
    p = tmp_path / "figures.csv"
    pd.DataFrame({"等级": ["中", "高"], "干预数": [10, 5], "挽回数": [20, 1], "成本": [100, 200]}).to_csv(p, index=False)
    with pytest.raises(InputError, match="挽回"):
        churn_report.table_report(churn_report.read_table(p), model)


def test_workbook_has_native_charts_and_is_written_atomically(tmp_path, store, model):
    history(store, model)
    rep = churn_report.loop_report(store, model, now=at(D0 + dt.timedelta(days=210)))
    out = tmp_path / "r.xlsx"
    churn_workbook.write_report_xlsx(rep, out)
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        assert "xl/charts/chart1.xml" in names and "xl/charts/chart2.xml" in names
        sheet = z.read("xl/workbook.xml").decode()
        assert "挽回效果" in sheet and "干预明细" in sheet
        assert "<f>" not in z.read("xl/worksheets/sheet1.xml").decode()  # values, never formulas
    assert [p.name for p in tmp_path.iterdir()] == ["r.xlsx"]  # no temporary file left
    from tierctl.errors import RenderError as Exists

    with pytest.raises(Exists, match="已存在"):
        churn_workbook.write_report_xlsx(rep, out)
    churn_workbook.write_report_xlsx(churn_report.seed_report(model), out, force=True)
    import openpyxl

    ws = openpyxl.load_workbook(out)["挽回效果"]
    assert [ws.cell(r, 1).value for r in (4, 5, 6, 7)] == ["中风险", "高风险", "极高风险", "合计"]
    assert ws.cell(7, 3).value == 1350 and ws.cell(7, 4).value == 766


# ------------------------------------------------------------------------------------
# Upkeep messages
# ------------------------------------------------------------------------------------
@pytest.fixture
def config(tmp_path):
    p = tmp_path / "tierctl.toml"
    p.write_text('[centre]\nname = "浦东服务中心"\n', encoding="utf-8")
    return Config.load(p)


def upkeep_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": pd.array(["001", "002", "003"], dtype="string"),
        "name": ["张先生", None, "李女士"],
        "phone": ["13800000001", None, None],
        "birthday": pd.to_datetime(["1980-02-08", "1975-06-01", None]),
        "mileage_since_service": [100.0, 5200.0, None],
        "level_key": ["low", "low", "high"],
    })


def test_touches_are_drafted_from_templates_and_checked(model, config):
    f = upkeep_frame()
    tt = touches(f, dt.date(2027, 2, 3), 6, model)  # 春节 2027 is 6 February, greeted 3 days early
    d = churn_touches.draft_touches(tt, f, model, config)
    t = d.touches
    assert set(t["customer_id"]) == {"001", "002"}  # 李女士 is high risk: her own plan
    fest = t[(t["kind"] == "festival") & (t["customer_id"] == "001")].iloc[0]
    assert fest["date"] == dt.date(2027, 2, 3) and fest["message"].startswith("张先生您好")
    assert "新春" in fest["message"] and "浦东服务中心" in fest["message"]
    bday = t[t["kind"] == "birthday"].iloc[0]
    assert bday["date"] == dt.date(2027, 2, 8) and "生日" in bday["message"]
    km = t[t["kind"] == "mileage"].iloc[0]
    assert km["customer_id"] == "002" and "5,200公里" in km["message"] and km["message"].startswith("尊敬的车主")
    assert all(x == [] for x in t["taboo"]) and d.taboo == []
    assert "\x00" not in "".join(t["message"])


def test_english_touches(model, config):
    f = upkeep_frame()
    tt = touches(f, dt.date(2027, 2, 3), 1, model)
    t = churn_touches.draft_touches(tt, f, model, config, lang="en").touches
    assert t.iloc[0]["message"].startswith("Dear 张先生") and "Spring Festival" in t.iloc[0]["message"]


def test_a_taboo_phrase_in_a_template_stops_the_run(tmp_path, model, config):
    user = tmp_path / "tpl" / "zh"
    user.mkdir(parents=True)
    (user / "touch_mileage.txt.j2").write_text("{{ c.name or '您' }}好，保养名额紧张，我们会尽快安排。\n", encoding="utf-8")
    f = upkeep_frame()
    tt = touches(f, dt.date(2026, 11, 24), 1, model)
    with pytest.raises(RenderError, match="禁忌") as ei:
        churn_touches.draft_touches(tt, f, model, config, templates=tmp_path / "tpl")
    assert "会尽快" in str(ei.value) and "touch_mileage" in str(ei.value)
    d = churn_touches.draft_touches(tt, f, model, config, templates=tmp_path / "tpl", allow_taboo=True)
    assert d.taboo and d.touches[d.touches["kind"] == "mileage"]["taboo"].iloc[0] == ["会尽快"]


def test_drafting_needs_the_centre_name(model, tmp_path):
    from tierctl.errors import ConfigError

    p = tmp_path / "empty.toml"
    p.write_text("", encoding="utf-8")
    f = upkeep_frame()
    tt = touches(f, dt.date(2026, 11, 24), 1, model)
    with pytest.raises(ConfigError, match="centre.name"):
        churn_touches.draft_touches(tt, f, model, Config.load(p))


def test_many_customers_render_once_per_message_shape(model, config, monkeypatch):
    n = 3000
    f = pd.DataFrame({"customer_id": pd.array([f"{i:05d}" for i in range(n)], dtype="string"),
                      "name": [f"客户{i}" for i in range(n)], "level_key": "low"})
    tt = touches(f, dt.date(2026, 12, 31), 2, model)  # quarterly gift on 1 January for everyone
    import tierctl.render as render

    calls = []
    real = render.render_template
    monkeypatch.setattr(render, "render_template", lambda *a, **k: calls.append(1) or real(*a, **k))
    t = churn_touches.draft_touches(tt, f, model, config).touches
    assert len(t) == n and len(calls) == 1
    assert t["message"].iloc[5].startswith("客户5您好")


# ------------------------------------------------------------------------------------
# The fast paths of the report agree with reading every row
# ------------------------------------------------------------------------------------
def test_effect_when_the_customer_drops_to_low(store, model):
    snap(store, model, D0, {"M1": 55, "M2": 55, "H1": 70, "X1": 88})
    for cid in ("M1", "M2", "H1", "X1"):
        log(store, model, cid, D0)
    # low customers are not on the snapshot's compact at-risk lists: their exact score is looked up
    snap(store, model, D0 + dt.timedelta(days=10), {"M1": 30, "M2": 40, "H1": 35, "X1": 80})
    snap(store, model, D0 + dt.timedelta(days=20), {"M1": 38, "M2": 36, "H1": 20, "X1": 20})
    snap(store, model, D0 + dt.timedelta(days=35), {"M1": 10, "M2": 10, "H1": 10, "X1": 10})  # too late to count
    rep = churn_report.loop_report(store, model, now=at(D0 + dt.timedelta(days=40)))
    iv = rep.interventions.set_index("customer_id")
    assert iv.loc["M1", "effect"] == "worked" and iv.loc["M1", "score_after"] == 30
    assert iv.loc["M2", "effect"] == "not_worked" and iv.loc["M2", "score_after"] == 36  # a fall of 19
    assert iv.loc["H1", "effect"] == "worked"
    assert iv.loc["X1", "effect"] == "worked" and iv.loc["X1", "score_after"] == 20


def test_report_reads_snapshots_saved_without_the_compact_lists(store, model):
    history(store, model)
    now = at(D0 + dt.timedelta(days=210), 18)
    fast = churn_report.loop_report(store, model, now=now).to_json()
    # the same history with the meta lists removed: the report reads the rows instead
    for info in store.list_snapshots("churn"):
        rows = store.snapshot_rows(info.id)
        meta = {k: v for k, v in info.meta.items() if k not in ("at_risk", "at_risk_scores")}
        store.save_snapshot("churn", info.as_of, info.model_name, info.source_name, None, rows, meta)
    assert "at_risk" not in store.list_snapshots("churn")[0].meta
    slow = churn_report.loop_report(store, model, now=now).to_json()
    assert slow == fast


def test_win_back_in_a_large_snapshot(store, model):
    # 10,000+ rows are stored compactly (short payload keys): the look-up must still find last_visit
    n = 10_050
    ids = [f"{i:06d}" for i in range(n)]
    scores = dict.fromkeys(ids, 20.0) | {"000007": 70.0}
    lv = dict.fromkeys(ids, D0 - dt.timedelta(days=100))
    snap(store, model, D0, scores, last_visit=lv)
    log(store, model, "000007", D0)
    later = D0 + dt.timedelta(days=40)
    snap(store, model, later, scores, last_visit=lv | {"000007": later})
    rep = churn_report.loop_report(store, model, now=at(later, 18))
    assert rep.interventions.iloc[0]["won_back"] == "won"
