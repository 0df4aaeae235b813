"""`tierctl allocate` (issue 9): exit codes and messages, JSON equal to the library result,
the P0 shortfall statement, the stored plan, ride-hailing from the scoring model's own
rule, and the documents (evaluation sheet, SPEC e-mail) picking the plan up."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from conftest import AS_OF, NOW, cli, score_rows

from tierctl.allocate import allocate, frame_from_scores, load_model
from tierctl.errors import UsageError

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "shortage.xlsx"
CONFIG = ROOT / "tests" / "golden" / "render" / "tierctl.toml"
CLOCK = ("--as-of", AS_OF.isoformat(), "--now", NOW.isoformat())


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Every test in its own folder (no stray ./tierctl.toml) with its own database."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TIERCTL_DB", str(tmp_path / "t.db"))
    monkeypatch.delenv("TIERCTL_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", "200")


def sample_result():
    from tierctl.io.ingest import read_export
    from tierctl.shortage import load_model as load_shortage
    from tierctl.shortage import score

    model = load_shortage("rite")
    ex = read_export(SAMPLE, model.columns)
    return score(ex.frame, model, AS_OF, NOW, headers=ex.headers, path=SAMPLE)


# -- exit codes and messages ------------------------------------------------------------------
def test_negative_loaners_is_a_usage_error(capsys):
    code, out, err = cli(capsys, "allocate", str(SAMPLE), "--loaners", "-1", "--budget", "30000", "--no-store")
    assert code == 2 and out == ""
    assert "--loaners" in err and "不小于 0" in err and "用法错误" in err


def test_more_premium_than_loaners_is_a_usage_error(capsys):
    code, _out, err = cli(capsys, "allocate", str(SAMPLE), "--loaners", "2", "--premium-loaners", "3",
                          "--budget", "30000", "--no-store")
    assert code == 2
    assert "--premium-loaners" in err and "不能多于" in err


@pytest.mark.parametrize("budget", ["-5000", "many", "1e5", ""])
def test_a_budget_that_is_not_an_amount_is_a_usage_error(capsys, budget):
    code, _out, err = cli(capsys, "allocate", str(SAMPLE), "--loaners", "2", "--budget", budget, "--no-store")
    assert code == 2 and "--budget" in err


def test_missing_file_exits_1_naming_it(capsys):
    code, out, err = cli(capsys, "allocate", "no_such_export.xlsx", "--loaners", "2", "--budget", "30000")
    assert code == 1 and out == ""
    assert "no_such_export.xlsx" in err and "不存在" in err


def test_usage_errors_come_before_reading_the_file(capsys):
    code, _out, err = cli(capsys, "allocate", "no_such_export.xlsx", "--loaners", "-3", "--budget", "30000")
    assert code == 2 and "--loaners" in err


def test_required_options_and_formats(capsys):
    code, _out, err = cli(capsys, "allocate", str(SAMPLE), "--budget", "30000")
    assert code == 2 and "--loaners" in err
    code, _out, err = cli(capsys, "allocate", str(SAMPLE), "--loaners", "1", "--budget", "1", "-f", "csv",
                          "--no-store")
    assert code == 2 and "--format" in err


def test_no_file_and_no_stored_scores_says_what_to_do(capsys):
    code, _out, err = cli(capsys, "allocate", "--loaners", "2", "--budget", "30000", *CLOCK)
    assert code == 1 and "tierctl score" in err


def test_rite100_scores_cannot_be_allocated(capsys, tmp_path):
    # the sample's 舆情风险 column holds rite (1–10) scores, which rite100 refuses (issue 14): left out here
    p = tmp_path / "no_given_r.csv"
    pd.read_excel(SAMPLE, dtype=str, header=2, engine="openpyxl").drop(columns=["舆情风险"]).to_csv(p, index=False)
    code, _out, err = cli(capsys, "allocate", str(p), "--loaners", "2", "--budget", "30000", "--no-store",
                          "--score-model", "rite100", *CLOCK)
    assert code == 2 and "rite100" in err and "影响力" in err


def test_help_text(capsys):
    code, out, _err = cli(capsys, "allocate", "--help")
    assert code == 0 and "--loaners" in out and "--premium-loaners" in out and "--days-to-eta" in out


# -- JSON equals the library ------------------------------------------------------------------
def test_json_equals_library_result(capsys):
    code, out, err = cli(capsys, "allocate", str(SAMPLE), "--loaners", "6", "--premium-loaners", "2",
                         "--budget", "3万", "--days-to-eta", "21", "-f", "json", "--no-store", *CLOCK)
    assert code == 0, err
    doc = json.loads(out)
    lib = allocate(frame_from_scores(sample_result()), load_model(), loaners=6, premium_loaners=2, budget=30000,
                   days_to_eta=21).to_json()
    assert doc == lib
    assert {"plan", "used", "covered", "uncovered", "marginal", "p0_shortfall"} <= set(doc)
    assert doc["used"]["budget"]["available"] == 30000  # 3万
    assert len(doc["plan"]) == 40
    zhang = next(r for r in doc["plan"] if r["name"] == "张先生")
    assert zhang["option"] == "p0_subsidy" and zhang["cost"] == 200 * 21 + 1000
    assert any("网约车" in w for w in zhang["why"])


def test_table_shows_plan_totals_and_marginal_values(capsys):
    code, out, err = cli(capsys, "allocate", str(SAMPLE), "--loaners", "6", "--premium-loaners", "2",
                         "--budget", "30000", "--days-to-eta", "21", "--no-store", "--limit", "0", *CLOCK)
    assert code == 0, err
    assert "张先生" in out and "网约车收入补贴" in out and "5,200" in out and "未分配" in out
    assert "网约车/出租车司机：用车场景含「网约车」" in out and "需要用车：I=8 ≥ 6" in out
    assert "代步车" in out and "/6 辆" in out and "/30,000 元" in out
    assert "覆盖" in out and "未覆盖" in out
    assert "多 1 辆代步车" in out and "多 5,000 元预算" in out
    assert "按到货还需 21 天计" in out


def test_p0_shortfall_is_stated_plainly(capsys):
    code, out, err = cli(capsys, "allocate", str(SAMPLE), "--loaners", "1", "--budget", "2000",
                         "--days-to-eta", "21", "--no-store", *CLOCK)
    assert code == 0, err
    assert "缺口" in out and "不能覆盖全部 P0" in out and "还需要" in out
    assert "辆代步车" in out and "元预算" in out
    code, out, _err = cli(capsys, "allocate", str(SAMPLE), "--loaners", "1", "--budget", "2000",
                          "--days-to-eta", "21", "--no-store", "-f", "json", *CLOCK)
    sf = json.loads(out)["p0_shortfall"]
    assert sf["extra_loaners"] > 0 and sf["extra_budget"] > 0 and sf["covered"] < sf["total"]


def test_enough_resources_say_no_shortfall(capsys):
    code, out, _err = cli(capsys, "allocate", str(SAMPLE), "--loaners", "40", "--premium-loaners", "10",
                          "--budget", "100万", "--no-store", *CLOCK)
    assert code == 0
    assert "无：全部 P0 客户都已覆盖" in out


# -- days to the ETA ---------------------------------------------------------------------------
def test_days_to_eta_come_from_the_configuration(capsys, tmp_path):
    (tmp_path / "tierctl.toml").write_text("[parts]\neta_date = 2026-12-08\n", encoding="utf-8")
    code, out, err = cli(capsys, "allocate", str(SAMPLE), "--loaners", "6", "--budget", "30000", "-f", "json",
                         "--no-store", *CLOCK)
    assert code == 0, err
    assert json.loads(out)["used"]["days_to_eta"] == 14
    code, out, _err = cli(capsys, "allocate", str(SAMPLE), "--loaners", "6", "--budget", "30000", "-f", "json",
                          "--no-store", "--days-to-eta", "5", *CLOCK)
    assert json.loads(out)["used"]["days_to_eta"] == 5


def test_days_to_eta_default_to_the_model(capsys):
    code, out, _err = cli(capsys, "allocate", str(SAMPLE), "--loaners", "6", "--budget", "30000", "--no-store",
                          *CLOCK)
    assert code == 0 and "分配模型 allocate 的默认值" in out and "按到货还需 21 天计" in out


def test_costs_come_from_the_model_named_in_the_configuration(capsys, tmp_path):
    text = (ROOT / "tierctl" / "models" / "allocate.toml").read_text(encoding="utf-8")
    text = text.replace("per_day = 200", "per_day = 150")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "our_prices.toml").write_text(text, encoding="utf-8")
    (tmp_path / "tierctl.toml").write_text('[allocate]\nmodel = "models/our_prices.toml"\n', encoding="utf-8")
    code, out, err = cli(capsys, "allocate", str(SAMPLE), "--loaners", "6", "--premium-loaners", "2",
                         "--budget", "30000", "--days-to-eta", "21", "-f", "json", "--no-store", *CLOCK)
    assert code == 0, err
    zhang = next(r for r in json.loads(out)["plan"] if r["name"] == "张先生")
    assert zhang["option"] == "p0_subsidy" and zhang["cost"] == 150 * 21 + 1000
    assert any("150 元/天 × 21 天" in w for w in zhang["why"])
    code, _out, err = cli(capsys, "allocate", str(SAMPLE), "--loaners", "6", "--budget", "30000", "--no-store",
                          "--model", "no_such_model", *CLOCK)
    assert code == 1 and "no_such_model" in err


# -- ride-hailing: the scoring model's own keywords ------------------------------------------
def test_ride_hailing_uses_the_rite_keywords_with_negation(tmp_path, rite):
    rows = [
        {"客户编号": "A", "客户姓名": "甲", "等待天数": 20, "用车场景": "网约车司机，全职跑滴滴"},
        {"客户编号": "B", "客户姓名": "乙", "等待天数": 20, "用车场景": "不是网约车，每天通勤"},
        {"客户编号": "C", "客户姓名": "丙", "等待天数": 20, "用车场景": "货运"},
        {"客户编号": "D", "客户姓名": "丁", "等待天数": 20, "用车场景": "周末休闲"},
        {"客户编号": "E", "客户姓名": "戊", "等待天数": 20, "影响程度": 10},
        {"客户编号": "F", "客户姓名": "己", "等待天数": 20, "影响程度": 8},
    ]
    f = frame_from_scores(score_rows(rows, rite, tmp_path)).set_index("customer_id")
    assert f["ride_hailing"].to_dict() == {"A": True, "B": False, "C": True, "D": False, "E": True, "F": False}
    assert "网约车" in f.loc["A", "ride_hailing_reason"]
    assert "I=10" in f.loc["E", "ride_hailing_reason"] and "导出表" in f.loc["E", "ride_hailing_reason"]
    assert f.loc["B", "ride_hailing_reason"] == ""
    # the scores stay exact: the RITE total is an integer of hundredths
    assert all((Decimal(str(s)) * 100) % 1 == 0 for s in f["score"])


def test_editing_the_model_keyword_list_changes_the_subsidy(tmp_path):
    from tierctl.shortage import load_model as load_shortage

    text = (ROOT / "tierctl" / "models" / "rite.toml").read_text(encoding="utf-8")
    text = text.replace('keywords = ["网约车", "出租车", "营运", "滴滴", "跑车拉客", "货运"]',
                        'keywords = ["网约车", "出租车", "营运", "滴滴", "跑车拉客", "货运", "代驾"]')
    path = tmp_path / "mine.toml"
    path.write_text(text, encoding="utf-8")
    rows = [{"客户编号": "A", "客户姓名": "甲", "等待天数": 20, "用车场景": "晚上跑代驾"}]
    assert not frame_from_scores(score_rows(rows, load_shortage("rite"), tmp_path))["ride_hailing"].iloc[0]
    assert frame_from_scores(score_rows(rows, load_shortage(path), tmp_path))["ride_hailing"].iloc[0]


def test_frame_from_scores_refuses_a_model_whose_i_is_not_impact(tmp_path, rite100):
    rows = [{"客户编号": "A", "客户姓名": "甲", "等待天数": 20, "用车场景": "网约车"}]
    with pytest.raises(UsageError, match="影响力"):
        frame_from_scores(score_rows(rows, rite100, tmp_path))


def test_customers_without_ids_are_allocated_by_their_key(tmp_path, rite):
    rows = [{"客户姓名": "甲", "手机号": "13800000001", "等待天数": 30, "用车场景": "网约车",
             "沟通记录": "要找媒体曝光"},
            {"客户姓名": "甲", "手机号": "13800000002", "等待天数": 3, "用车场景": "周末"}]
    res = score_rows(rows, rite, tmp_path)
    alloc = allocate(frame_from_scores(res), load_model(), loaners=1, budget=10000)
    assert {r.customer_id for r in alloc.plan} == set(res.customers["key"])


# -- the stored plan ---------------------------------------------------------------------------
def test_plan_is_stored_for_the_day_and_reads_back_equal(capsys, tmp_path):
    from tierctl.cli.allocate import stored_plan

    db = tmp_path / "plans.db"
    code, out, err = cli(capsys, "allocate", str(SAMPLE), "--loaners", "6", "--budget", "30000", "--db", str(db),
                         "-f", "json", *CLOCK)
    assert code == 0, err
    assert "已保存" in err
    doc = json.loads(out)
    back = stored_plan(db, AS_OF)
    assert back is not None
    assert {k: back[k] for k in doc} == doc
    assert back["resources"] == {"loaners": 6, "premium_loaners": 0, "budget": 30000, "days_to_eta": 21}
    # the same day again replaces the plan, never duplicates it
    code, _out, _err = cli(capsys, "allocate", str(SAMPLE), "--loaners", "2", "--budget", "5000", "--db", str(db),
                           "-f", "json", *CLOCK)
    again = stored_plan(db, AS_OF)
    assert again["resources"]["loaners"] == 2 and len(again["plan"]) == 40
    from tierctl.store import Store

    with Store.open(db, readonly=True) as store:
        assert len(store.list_snapshots("allocation")) == 1
    assert stored_plan(db, AS_OF - dt.timedelta(days=1)) is None


def test_dry_run_and_no_store_store_nothing(capsys, tmp_path):
    db = tmp_path / "none.db"
    for flag in ("--dry-run", "--no-store"):
        code, _out, err = cli(capsys, "allocate", str(SAMPLE), "--loaners", "6", "--budget", "30000",
                              "--db", str(db), flag, *CLOCK)
        assert code == 0, err
        assert not db.exists()


def test_without_a_file_the_days_stored_scores_are_used(capsys, tmp_path):
    db = tmp_path / "day.db"
    code, _out, err = cli(capsys, "score", str(SAMPLE), "--db", str(db), "-f", "json", *CLOCK)
    assert code == 0, err
    code, out, err = cli(capsys, "allocate", "--loaners", "6", "--budget", "30000", "--days-to-eta", "21",
                         "--db", str(db), "-f", "json", *CLOCK)
    assert code == 0, err
    from tierctl.cli.morning import result_from_store

    lib = allocate(frame_from_scores(result_from_store(db, AS_OF)), load_model(), loaners=6, budget=30000,
                   days_to_eta=21).to_json()
    assert json.loads(out) == lib
    # and it agrees with allocating straight from the file
    from_file = allocate(frame_from_scores(sample_result()), load_model(), loaners=6, budget=30000,
                         days_to_eta=21).to_json()
    assert lib["plan"] == from_file["plan"]


# -- the documents pick the plan up -------------------------------------------------------------
def _plan(result, **kw):
    kw = {"loaners": 6, "premium_loaners": 2, "budget": 30000, "days_to_eta": 21, **kw}
    return allocate(frame_from_scores(result), load_model(), **kw).to_json()


def test_render_with_a_plan_adds_package_and_cost_to_the_sheet_and_the_email(tmp_path):
    from tierctl import render
    from tierctl.config import Config

    result = sample_result()
    plan = _plan(result)
    report = render.render_documents(result, Config.load(CONFIG), tmp_path / "out", plan=plan)
    wb = openpyxl.load_workbook(report.out_dir / "evaluation_sheet.xlsx")
    assert "资源分配" in wb.sheetnames
    ws = wb.worksheets[0]
    head = [c.value for c in ws[1]]
    opt, cost = head.index("补偿方案"), head.index("方案费用（元）")
    assert opt == head.index("行动计划") + 1 and cost == opt + 1
    rows = {r[0]: r for r in ws.iter_rows(min_row=2, values_only=True)}
    by_name = {r["name"]: r for r in plan["plan"]}
    for name in ("张先生", "刘辉", "赵先生"):
        p = by_name[name]
        if p["covered"]:
            assert rows[name][opt] == p["option_name"] and rows[name][cost] == p["cost"]
        else:
            assert rows[name][opt].startswith("未分配") and rows[name][cost] is None
    assert rows["张先生"][opt] == "网约车收入补贴 + 超充积分 + VIP 权益" and rows["张先生"][cost] == 5200
    assert "级别政策" in rows["赵先生"][opt]  # P3: no package in the policy
    summary = [v for r in wb["资源分配"].iter_rows(values_only=True) for v in r if v is not None]
    assert "还需要 1,200 元预算" in " ".join(str(v) for v in summary)

    email = (report.out_dir / "spec_email.md").read_text(encoding="utf-8")
    effect = email[email.index("【三、影响分析"):email.index("【四、具体请求")]
    call = email[email.index("【四、具体请求"):email.index("【五、")]
    assert "本店现有资源今天这样安排" in effect and "代步车 6 辆，已派出 4 辆（其中高端车 0/2 辆）" in effect
    assert "补偿预算 30,000 元，已安排 30,000 元" in effect and "P0 7/8" in effect
    assert "缺口：P0 客户 8 位中已安排 7 位，1 位因代步车或预算不够没有安排" in effect  # plain words (issue 14)
    assert "代步车和补偿（按今天的资源安排，小计 30,000 元）" in effect  # the costs are the plan's
    assert "还需要 1,200 元补偿预算" in call
    assert "再多 1 辆代步车：可多安排 2 位客户" in call and "再多 5,000 元预算：可多安排 3 位客户" in call
    assert "加权" not in email  # no optimiser figures for the director (issue 14)
    eml = (report.out_dir / "spec_email.eml").read_bytes()
    assert b"X-Unsent: 1" in eml


def test_render_without_a_plan_has_no_plan_text(tmp_path):
    from tierctl import render
    from tierctl.config import Config

    report = render.render_documents(sample_result(), Config.load(CONFIG), tmp_path / "out")
    email = (report.out_dir / "spec_email.md").read_text(encoding="utf-8")
    assert "资源分配方案" not in email and "边际价值" not in email
    wb = openpyxl.load_workbook(report.out_dir / "evaluation_sheet.xlsx")
    assert "资源分配" not in wb.sheetnames and "补偿方案" not in [c.value for c in wb.worksheets[0][1]]


def test_english_documents_with_a_plan(tmp_path):
    from tierctl import render
    from tierctl.config import Config

    result = sample_result()
    report = render.render_documents(result, Config.load(CONFIG), tmp_path / "out", plan=_plan(result), lang="en")
    email = (report.out_dir / "spec_email.md").read_text(encoding="utf-8")
    assert "How our own resources are used today" in email and "Loan cars: 4 of 6 handed out (0 of 2 premium)" in email
    assert "1,200 CNY more compensation budget" in email and "1 more loan car: 2 more customers looked after" in email
    head = [c.value for c in openpyxl.load_workbook(report.out_dir / "evaluation_sheet.xlsx").worksheets[0][1]]
    assert "Package" in head and "Package cost (CNY)" in head


def test_a_plan_made_for_another_list_is_flagged(tmp_path):
    from tierctl import render
    from tierctl.config import Config

    result = sample_result()
    plan = _plan(result)
    plan["plan"] = [r for r in plan["plan"] if r["name"] != "张先生"]
    report = render.render_documents(result, Config.load(CONFIG), tmp_path / "out", plan=plan)
    assert any("资源分配方案" in w and "1 位客户" in w for w in report.warnings)
    ws = openpyxl.load_workbook(report.out_dir / "evaluation_sheet.xlsx").worksheets[0]
    head = [c.value for c in ws[1]]
    row = next(r for r in ws.iter_rows(min_row=2, values_only=True) if r[0] == "张先生")
    assert row[head.index("补偿方案")] == "（分配方案中没有这位客户）"


def test_tierctl_render_picks_up_the_stored_plan(capsys, tmp_path):
    (tmp_path / "tierctl.toml").write_text(CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    db = tmp_path / "day.db"
    assert cli(capsys, "score", str(SAMPLE), "--db", str(db), "-f", "json", *CLOCK)[0] == 0
    code, _out, err = cli(capsys, "allocate", "--loaners", "6", "--premium-loaners", "2", "--budget", "30000",
                          "--db", str(db), *CLOCK)
    assert code == 0, err
    code, _out, err = cli(capsys, "render", "--db", str(db), "--out", str(tmp_path / "docs"), *CLOCK)
    assert code == 0, err
    assert "资源分配方案" in err
    day = tmp_path / "docs" / AS_OF.isoformat()
    email = (day / "spec_email.md").read_text(encoding="utf-8")
    assert "按今天的资源安排" in email and "还需要 1,200 元补偿预算" in email
    head = [c.value for c in openpyxl.load_workbook(day / "evaluation_sheet.xlsx").worksheets[0][1]]
    assert "补偿方案" in head


def test_a_json_plan_renders_as_stored(tmp_path):
    """The plan the documents get from the store has the library's JSON shape: a
    render from the stored plan equals a render from the fresh one."""
    from tierctl import render
    from tierctl.cli.allocate import save_plan, stored_plan
    from tierctl.config import Config

    result = sample_result()
    alloc = allocate(frame_from_scores(result), load_model(), loaners=6, premium_loaners=2, budget=30000,
                     days_to_eta=21)
    db = tmp_path / "p.db"
    save_plan(db, result, alloc, resources={}, days_source="--days-to-eta")
    back = stored_plan(db, AS_OF)
    cfg = Config.load(CONFIG)
    a = render.render_documents(result, cfg, tmp_path / "a", plan=alloc.to_json())
    b = render.render_documents(result, cfg, tmp_path / "b", plan=back)
    assert (a.out_dir / "spec_email.md").read_text() == (b.out_dir / "spec_email.md").read_text()
    sa = pd.read_excel(a.out_dir / "evaluation_sheet.xlsx", sheet_name=0, engine="openpyxl")
    sb = pd.read_excel(b.out_dir / "evaluation_sheet.xlsx", sheet_name=0, engine="openpyxl")
    pd.testing.assert_frame_equal(sa, sb)
