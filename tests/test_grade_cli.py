"""The `tierctl grade` command (issue 7): exit codes and messages, JSON equal to the
library result, the snapshot kept unless --dry-run, overrides (file and stored) with
their precedence and audit, downgrade letters for downgrades only, missing indicator
columns, grade history.

Most runs go through ``tierctl.cli.main`` in-process (fast, same error handler as the
installed command); the JSON/library comparison and the default-command routing also
run the real ``python -m tierctl`` once.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pandas as pd
import pytest
from conftest import CliResult, cli, run_cli

# one worker runs this file: its module fixtures are built once, not once per worker
pytestmark = pytest.mark.xdist_group("grade_cli")

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "grading.csv"
AS_OF = "2026-11-24"
PREV = "2026-10-24"

CONFIG = """
[centre]
name = "上海浦东服务中心"
manager = "王经理"
manager_phone = "021-5888 0000"
"""


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("TIERCTL_DB", str(tmp_path / "t.db"))
    cfg = tmp_path / "tierctl.toml"
    cfg.write_text(CONFIG, encoding="utf-8")
    monkeypatch.setenv("TIERCTL_CONFIG", str(cfg))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)


def run(*args: str) -> CliResult:
    return run_cli(*args, env={"COLUMNS": os.environ.get("COLUMNS")})


@pytest.fixture(scope="module")
def months(tmp_path_factory):
    """Two monthly exports of the same 300 customers: a share lapse in the second."""
    import generate_grading as g

    d = tmp_path_factory.mktemp("months")
    first = g.demo_frame(300)
    second = g.next_period(first)
    p1, p2 = d / "oct.csv", d / "nov.csv"
    first.to_csv(p1, index=False, encoding="utf-8-sig")
    second.to_csv(p2, index=False, encoding="utf-8-sig")
    return p1, p2


def graded_json(capsys, *args: str) -> dict:
    code, out, err = cli(capsys, *args, "-f", "json")
    assert code == 0, err
    return json.loads(out)


def library_json(path: Path, as_of: str = AS_OF, **kw) -> dict:
    from tierctl.grade import grade_customers, load_grade_model
    from tierctl.io.ingest import ColumnSet, read_export
    from tierctl.models.loader import Section

    model = load_grade_model(**kw)
    ex = read_export(path, ColumnSet.from_model(Section.load(model.path, kind="grade")))
    return grade_customers(ex.frame, model, dt.date.fromisoformat(as_of), path=path, headers=ex.headers).to_json()


def by_id(doc: dict) -> dict[str, dict]:
    return {c["customer_id"]: c for c in doc["customers"]}


# --------------------------------------------------------------------------------------
# the run, JSON and table


def test_json_equals_library_result_through_the_real_command(tmp_path):
    p = run("grade", str(SAMPLE), "--as-of", AS_OF, "-f", "json", "--dry-run")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    lib = library_json(SAMPLE)
    assert doc["customers"] == lib["customers"]
    for key in ("distribution", "weights", "audit", "missing_indicators", "model", "as_of", "count"):
        assert doc[key] == lib[key], key
    first = doc["customers"][0]
    assert {"customer_id", "composite", "grade", "indicators", "overridden"} <= set(first)
    assert set(first["indicators"]) == {"spend", "frequency", "ticket", "tenure", "satisfaction", "potential"}
    assert first["customer_id"] == "000001"  # ids are text: leading zeros kept
    assert [d["grade"] for d in doc["distribution"]] == ["VIP", "核心", "潜力", "普通", "休眠"]
    assert [d["usual_share_pct"] for d in doc["distribution"]] == [5, 15, 30, 35, 15]
    assert doc["snapshot"] is None and doc["changes"] is None
    assert not (tmp_path / "t.db").exists()  # a preview never creates the database


def test_table_shows_grades_and_shares_against_the_usual_ones(capsys):
    code, out, err = cli(capsys, "grade", SAMPLE, "--as-of", AS_OF, "--dry-run", "--limit", "5")
    assert code == 0, err
    for word in ("客户分级", "VIP", "休眠", "等级分布", "通常占比", "15%", "另有 1,995 位"):
        assert word in out, word
    assert "15141793029" not in out  # phone numbers stay out of the table
    # the percentile default bunches composites: the note says why and what to do, first
    assert "相对名次" in out and "--normalise thresholds" in out
    assert out.index("相对名次") < out.index("客户分级") and "相对名次" not in err


def test_thresholds_give_near_usual_shares_on_the_sample(capsys):
    doc = graded_json(capsys, "grade", SAMPLE, "--as-of", AS_OF, "--dry-run", "--normalise", "thresholds")
    assert doc["normalise"] == "thresholds"
    shares = {d["grade"]: d["share_pct"] for d in doc["distribution"]}
    usual = {d["grade"]: d["usual_share_pct"] for d in doc["distribution"]}
    assert all(abs(shares[g] - usual[g]) <= 5 for g in shares), shares
    assert not any(d["flagged"] for d in doc["distribution"])
    assert doc["customers"] == library_json(SAMPLE, normalise="thresholds")["customers"]


def test_gbk_export_with_a_mapping_file_grades_like_the_utf8_one(tmp_path, capsys):
    df = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False, encoding="utf-8-sig").head(150)
    df = df.rename(columns={"近12个月消费": "年度产值"})
    gbk = tmp_path / "gbk.csv"
    df.to_csv(gbk, index=False, encoding="gbk")
    mapping = tmp_path / "map.toml"
    mapping.write_text('[columns]\nspend_12m = "年度产值"\n', encoding="utf-8")
    utf = tmp_path / "utf.csv"
    df.rename(columns={"年度产值": "近12个月消费"}).to_csv(utf, index=False, encoding="utf-8")
    a = graded_json(capsys, "grade", gbk, "--as-of", AS_OF, "--dry-run", "--mapping", mapping)
    b = graded_json(capsys, "grade", utf, "--as-of", AS_OF, "--dry-run")
    strip = [{k: v for k, v in c.items() if k != "reasons"} for c in a["customers"]]
    assert strip == [{k: v for k, v in c.items() if k != "reasons"} for c in b["customers"]]
    # reasons name a derived value's source column as the file spells it
    assert any("由年度产值÷到店次数推算" in r for c in a["customers"] for r in c["reasons"])


@pytest.mark.parametrize("args, code, words", [
    (["grade", "nope.csv"], 1, ["nope.csv", "不存在"]),
    (["grade", "{sample}", "-f", "xml"], 2, ["--format", "xml"]),
    (["grade", "{sample}", "--as-of", "2026-13-45"], 2, ["--as-of", "2026-13-45"]),
    (["grade", "{sample}", "--normalise", "zscore"], 2, ["--normalise", "zscore"]),
    (["grade", "{sample}", "--model", "nosuch"], 1, ["nosuch", "grade"]),
    (["grade", "{sample}", "--as-of", "2020-01-01", "--dry-run"], 1, ["首次到店日期", "晚于评估日", "第 2 行"]),
])
def test_exit_codes_and_messages(capsys, args, code, words):
    got, _out, err = cli(capsys, *[a.replace("{sample}", str(SAMPLE)) for a in args])
    assert got == code, err
    for w in words:
        assert w in err, w
    assert "Traceback" not in err


def test_bad_cells_and_duplicates_are_reported_with_excel_rows(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("客户编号,近12个月消费,到店次数\n001,100,1\n002,很多,2\n001,50,1\n", encoding="utf-8")
    code, _, err = cli(capsys, "grade", bad, "--dry-run")
    assert code == 1 and "第 3 行" in err and "很多" in err and "近12个月消费" in err
    bad.write_text("客户编号,近12个月消费,到店次数\n001,100,1\n002,10,2\n001,50,1\n", encoding="utf-8")
    code, _, err = cli(capsys, "grade", bad, "--dry-run")
    assert code == 1 and "重复" in err and "001" in err and "第 2 行" in err


# --------------------------------------------------------------------------------------
# missing indicator columns


def test_missing_optional_indicator_column_is_reweighted_with_a_warning(tmp_path, capsys):
    df = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False, encoding="utf-8-sig").drop(columns=["满意度"])
    p = tmp_path / "no_sat.csv"
    df.to_csv(p, index=False)
    code, out, err = cli(capsys, "grade", p, "--as-of", AS_OF, "--dry-run", "-f", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["missing_indicators"] == ["satisfaction"]
    assert doc["weights"]["spend"] == pytest.approx(0.3529)
    assert "satisfaction" not in doc["customers"][0]["indicators"]
    assert "满意度" in err and "按比例" in err


def test_missing_required_indicator_column_stops_with_the_headers_to_use(tmp_path, capsys):
    df = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False, encoding="utf-8-sig").drop(columns=["近12个月消费"])
    p = tmp_path / "no_spend.csv"
    df.to_csv(p, index=False)
    code, out, err = cli(capsys, "grade", p, "--as-of", AS_OF)
    assert code == 1 and out == ""
    assert "缺少必需的指标" in err and "近12个月消费" in err and "年消费" in err
    assert not (tmp_path / "t.db").exists() or _snapshots(tmp_path) == []


# --------------------------------------------------------------------------------------
# the store


def _snapshots(tmp_path: Path):
    from tierctl.store import Store

    with Store.open(tmp_path / "t.db") as s:
        return s.list_snapshots("grade")


def test_snapshot_stored_unless_dry_run_and_a_rerun_replaces_it(tmp_path, months, capsys):
    oct_, _ = months
    assert cli(capsys, "grade", oct_, "--as-of", PREV, "--dry-run")[0] == 0
    assert not (tmp_path / "t.db").exists()
    code, _, err = cli(capsys, "grade", oct_, "--as-of", PREV)
    assert code == 0 and "已保存到历史数据库" in err
    assert cli(capsys, "grade", oct_, "--as-of", PREV)[0] == 0
    snaps = _snapshots(tmp_path)
    assert len(snaps) == 1 and snaps[0].row_count == 300 and snaps[0].replaced == 1
    from tierctl.store import Store

    with Store.open(tmp_path / "t.db") as s:
        rows = s.snapshot_rows(snaps[0].id)
    assert rows["customer_id"].iat[0] == "000001"
    assert {"label", "score", "computed_grade", "overridden", "spend_score", "spend_value"} <= set(rows.columns)


# --------------------------------------------------------------------------------------
# downgrades and letters


def test_upgrades_and_downgrades_are_listed_and_only_downgrades_get_letters(tmp_path, months, capsys):
    oct_, nov = months
    first = graded_json(capsys, "grade", oct_, "--as-of", PREV)
    assert first["changes"] is None and first["letters"] is None
    doc = graded_json(capsys, "grade", nov, "--as-of", AS_OF)
    ch = doc["changes"]
    down = {d["customer_id"] for d in ch["downgrades"]}
    up = {u["customer_id"] for u in ch["upgrades"]}
    assert down and up and not down & up
    before, after = by_id(first), by_id(doc)
    rank = {g: i for i, g in enumerate(["休眠", "普通", "潜力", "核心", "VIP"])}
    assert down == {k for k in after if rank[after[k]["grade"]] < rank[before[k]["grade"]]}
    assert up == {k for k in after if rank[after[k]["grade"]] > rank[before[k]["grade"]]}
    folder = tmp_path / "out" / AS_OF / "letters"
    files = sorted(folder.glob("*.md"))
    assert {f.name.split("_")[0] for f in files} == down  # one letter per downgrade, none for upgrades
    assert doc["letters"]["written"] and len(doc["letters"]["files"]) == len(down)
    one = next(d for d in ch["downgrades"] if d["moved"])
    text = next(f for f in files if f.name.startswith(one["customer_id"])).read_text(encoding="utf-8")
    for word in ("客户等级调整说明", f"由「{one['prev_grade']}」调整为「{one['grade']}」", "调整依据",
                 one["moved"][0]["label"], "怎样恢复", f"{one['restore']['composite_needed']:.2f}",
                 "上海浦东服务中心", "王经理", "021-5888 0000"):
        assert word in text, word
    assert not list(folder.glob(".*")) and not list(folder.parent.glob(".tierctl-*"))  # no temporary left


def test_letters_are_not_replaced_without_force_and_a_refused_run_stores_nothing(tmp_path, months, capsys):
    oct_, nov = months
    assert cli(capsys, "grade", oct_, "--as-of", PREV)[0] == 0
    assert cli(capsys, "grade", nov, "--as-of", AS_OF)[0] == 0
    # the same run again: the letters on disk are identical, nothing to refuse
    assert cli(capsys, "grade", nov, "--as-of", AS_OF)[0] == 0
    hash_before = _snapshots(tmp_path)[-1].source_hash
    # a corrected export for the same day changes some letters
    df = pd.read_csv(nov, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    df["近12个月消费"] = (pd.to_numeric(df["近12个月消费"]) * 0.9).round(2).astype(str)
    fixed = tmp_path / "nov_fixed.csv"
    df.to_csv(fixed, index=False)
    code, _, err = cli(capsys, "grade", fixed, "--as-of", AS_OF)
    assert code == 1 and "--force" in err and "letters" in err
    assert _snapshots(tmp_path)[-1].source_hash == hash_before  # refused before anything was stored
    code, out, err = cli(capsys, "grade", fixed, "--as-of", AS_OF, "--force", "-f", "json")
    assert code == 0, err
    down = {d["customer_id"] for d in json.loads(out)["changes"]["downgrades"]}
    folder = tmp_path / "out" / AS_OF / "letters"
    assert {f.name.split("_")[0] for f in folder.glob("*.md")} == down  # stale letters removed too


def test_dry_run_previews_changes_but_writes_nothing(tmp_path, months, capsys):
    oct_, nov = months
    assert cli(capsys, "grade", oct_, "--as-of", PREV)[0] == 0
    doc = graded_json(capsys, "grade", nov, "--as-of", AS_OF, "--dry-run")
    assert doc["changes"]["downgrades"] and doc["letters"]["written"] is False
    assert not (tmp_path / "out").exists()
    assert len(_snapshots(tmp_path)) == 1


def test_letters_need_the_centre_signature(tmp_path, months, capsys, monkeypatch):
    oct_, nov = months
    assert cli(capsys, "grade", oct_, "--as-of", PREV)[0] == 0
    empty = tmp_path / "empty.toml"
    empty.write_text("", encoding="utf-8")
    monkeypatch.setenv("TIERCTL_CONFIG", str(empty))
    code, _, err = cli(capsys, "grade", nov, "--as-of", AS_OF)
    assert code == 1 and "centre.name" in err
    assert len(_snapshots(tmp_path)) == 1 and not (tmp_path / "out").exists()


def test_english_letters(tmp_path, months, capsys):
    oct_, nov = months
    assert cli(capsys, "grade", oct_, "--as-of", PREV)[0] == 0
    assert cli(capsys, "grade", nov, "--as-of", AS_OF, "--lang", "en", "--out", tmp_path / "en")[0] == 0
    texts = [f.read_text(encoding="utf-8") for f in (tmp_path / "en" / AS_OF / "letters").glob("*.md")]
    assert texts and all("About your customer grade" in t and "How to get it back" in t for t in texts)
    assert any("yuan" in t for t in texts) and not any("「" in t for t in texts)


# --------------------------------------------------------------------------------------
# overrides


def test_override_needs_a_valid_grade_and_a_reason(capsys):
    code, _, err = cli(capsys, "grade", "override", "000007", "VIP")
    assert code == 2 and "原因" in err
    code, _, err = cli(capsys, "grade", "override", "000007", "VIP", "--reason", "  ")
    assert code == 2 and "原因" in err
    code, _, err = cli(capsys, "grade", "override", "000007", "钻石", "--reason", "x")
    assert code == 2 and "钻石" in err and "VIP、核心" in err
    code, _, err = cli(capsys, "grade", "override", "000007", "--reason", "x")
    assert code == 2 and "等级" in err
    code, _, err = cli(capsys, "grade", "override", "000007", "--clear")
    assert code == 1 and "没有生效中的人工调整" in err


def test_stored_override_applies_to_later_runs_until_cleared_and_history_keeps_it(tmp_path, months, capsys):
    oct_, nov = months
    first = graded_json(capsys, "grade", oct_, "--as-of", PREV)
    assert by_id(first)["000007"]["grade"] != "VIP"
    code, out, err = cli(capsys, "grade", "override", "000007", "VIP", "--reason", "转介绍 10 位新客户",
                         "--by", "王经理", "--now", "2026-11-20T10:00:00+08:00")
    assert code == 0, err
    assert "VIP" in out and "转介绍 10 位新客户" in out and "--clear" in out
    doc = graded_json(capsys, "grade", nov, "--as-of", AS_OF)
    c = by_id(doc)["000007"]
    assert c["grade"] == "VIP" and c["overridden"] and c["computed_grade"] != "VIP"
    assert c["override"] == {"reason": "转介绍 10 位新客户", "by": "王经理", "at": "2026-11-20T10:00:00"}
    assert any("人工调整为 VIP" in r for r in c["reasons"])
    assert doc["audit"] == [{"customer_id": "000007", "computed_grade": c["computed_grade"], "grade": "VIP",
                             "composite": c["composite"], "reason": "转介绍 10 位新客户", "by": "王经理",
                             "at": "2026-11-20T10:00:00"}]
    # the table marks it as a manual grade, with the computed one and the reason
    code, out, _ = cli(capsys, "grade", nov, "--as-of", AS_OF, "--dry-run", "--limit", "0")
    line = next(x for x in out.splitlines() if "000007" in x and "系统评定" in x)
    assert "人工" in line and "转介绍" in line
    # cleared: the next run grades him by his composite again
    assert cli(capsys, "grade", "override", "000007", "--clear", "--reason", "转介绍活动结束",
               "--now", "2026-12-01T09:00:00+08:00")[0] == 0
    later = graded_json(capsys, "grade", nov, "--as-of", "2026-12-24")
    assert by_id(later)["000007"]["overridden"] is False
    assert by_id(later)["000007"]["grade"] == c["computed_grade"]
    # every grading and every override event is in the history
    code, out, err = cli(capsys, "grade", "history", "000007", "-f", "json")
    assert code == 0, err
    h = json.loads(out)
    assert [g["as_of"] for g in h["gradings"]] == [PREV, AS_OF, "2026-12-24"]
    assert h["gradings"][1]["grade"] == "VIP" and h["gradings"][1]["override_reason"] == "转介绍 10 位新客户"
    assert h["gradings"][1]["change"] == "up" and h["gradings"][2]["change"] == "down"
    assert [(e["event"], e["reason"]) for e in h["overrides"]] == [
        ("override", "转介绍 10 位新客户"), ("cleared", "转介绍活动结束")]
    assert h["active_override"] is None
    code, out, _ = cli(capsys, "grade", "history", "000007")
    assert code == 0 and "降级" in out and "升级" in out and "转介绍活动结束" in out
    # the general history command shows the same grade history
    code, out2, err = cli(capsys, "history", "000007", "--kind", "grade", "-f", "json")
    assert code == 0, err
    assert json.loads(out2) == h
    assert cli(capsys, "history", "000007", "--kind", "rfm")[0] == 2


def test_a_new_override_replaces_the_old_one_which_stays_in_history(capsys):
    assert cli(capsys, "grade", "override", "000011", "核心客户", "--reason", "新能源车主",
               "--now", "2026-11-20T10:00:00+08:00")[0] == 0
    code, _, err = cli(capsys, "grade", "override", "000011", "VIP", "--reason", "转介绍",
                       "--now", "2026-11-21T10:00:00+08:00")
    assert code == 0 and "还没有出现在任何一次客户分级中" in err
    code, out, _ = cli(capsys, "grade", "overrides", "--all", "-f", "json")
    rows = json.loads(out)
    assert [(r["grade"], r["status"]) for r in rows] == [("核心", "replaced"), ("VIP", "active")]
    assert rows[0]["created_at"] == "2026-11-20T10:00:00" and rows[0]["ended_at"] == "2026-11-21T10:00:00"
    code, out, _ = cli(capsys, "grade", "overrides", "-f", "json")
    assert [r["grade"] for r in json.loads(out)] == ["VIP"]


def test_override_file_beats_stored_override_unless_it_is_older(tmp_path, months, capsys):
    oct_, _ = months
    assert cli(capsys, "grade", "override", "000007", "VIP", "--reason", "转介绍",
               "--now", "2026-10-20T10:00:00+08:00")[0] == 0
    f = tmp_path / "ov.csv"
    f.write_text("客户编号,等级,原因,调整人\n000007,核心,集团客户统一定级,李主管\n000012,潜力客户,试驾新车型,\n",
                 encoding="utf-8")
    code, out, err = cli(capsys, "grade", oct_, "--as-of", PREV, "--overrides", f, "-f", "json", "--dry-run")
    assert code == 0, err
    c = by_id(json.loads(out))
    assert c["000007"]["grade"] == "核心" and c["000007"]["override"]["reason"] == "集团客户统一定级"
    assert c["000012"]["grade"] == "潜力" and c["000012"]["overridden"]
    assert "替代了已保存的人工调整" in err and "000007" in err
    # a file row dated before the stored decision loses to it: the latest decision wins
    f.write_text("客户编号,等级,原因,调整时间\n000007,核心,集团客户统一定级,2026年10月1日\n", encoding="utf-8")
    doc = graded_json(capsys, "grade", oct_, "--as-of", PREV, "--overrides", f, "--dry-run")
    assert by_id(doc)["000007"]["grade"] == "VIP"


def test_bad_override_file_rows_are_reported_with_excel_rows(tmp_path, months, capsys):
    oct_, _ = months
    f = tmp_path / "ov.csv"
    f.write_text("客户编号,等级,原因\n000007,VIP,转介绍\n000008,钻石,大客户\n000009,核心,\n", encoding="utf-8")
    code, out, err = cli(capsys, "grade", oct_, "--as-of", PREV, "--overrides", f)
    assert code == 1 and out == ""
    assert "第 3 行" in err and "钻石" in err and "第 4 行" in err and "原因" in err
    f.write_text("客户编号,等级\n000007,VIP\n", encoding="utf-8")
    code, _, err = cli(capsys, "grade", oct_, "--as-of", PREV, "--overrides", f)
    assert code == 1 and "原因" in err
    assert not (tmp_path / "t.db").exists() or _snapshots(tmp_path) == []


def test_a_manual_downgrade_gets_a_letter_and_taboo_reasons_are_refused(tmp_path, months, capsys):
    oct_, _ = months
    first = graded_json(capsys, "grade", oct_, "--as-of", PREV)
    vip = next(c["customer_id"] for c in first["customers"] if c["grade"] == "VIP")
    assert cli(capsys, "grade", "override", vip, "普通", "--reason", "我们都是按规定来的",
               "--now", "2026-11-01T10:00:00+08:00")[0] == 0
    code, _, err = cli(capsys, "grade", oct_, "--as-of", AS_OF)
    assert code == 1 and "禁忌用语" in err and "按规定" in err
    assert len(_snapshots(tmp_path)) == 1
    assert cli(capsys, "grade", "override", vip, "普通", "--reason", "本年度转为集团统一结算",
               "--now", "2026-11-02T10:00:00+08:00")[0] == 0
    doc = graded_json(capsys, "grade", oct_, "--as-of", AS_OF)
    assert [d["customer_id"] for d in doc["changes"]["downgrades"]] == [vip]  # same data: only the manual one
    text = next((tmp_path / "out" / AS_OF / "letters").glob(f"{vip}_*.md")).read_text(encoding="utf-8")
    assert "服务经理复核后调整：本年度转为集团统一结算" in text


# --------------------------------------------------------------------------------------
# routing and help


def test_grade_file_is_the_run_subcommand(capsys):
    a = graded_json(capsys, "grade", SAMPLE, "--as-of", AS_OF, "--dry-run")
    b = graded_json(capsys, "grade", "run", SAMPLE, "--as-of", AS_OF, "--dry-run")
    assert a["customers"] == b["customers"]
    code, out, _ = cli(capsys, "grade", "--help")
    assert code == 0 and "override" in out and "history" in out
    code, out, _ = cli(capsys, "grade", "run", "--help")
    assert code == 0 and "--overrides" in out and "--normalise" in out


def test_names_and_reasons_are_printed_as_written_never_as_markup(tmp_path, capsys):
    src = tmp_path / "m.csv"
    src.write_text("客户编号,客户姓名,近12个月消费,到店次数\n001,[b]王[/b],100,1\n002,李[/x],300,2\n",
                   encoding="utf-8")
    assert cli(capsys, "grade", "override", "001", "VIP", "--reason", "转介绍 [10 位][/]")[0] == 0
    code, out, err = cli(capsys, "grade", src, "--limit", "0")
    assert code == 0, err
    assert "[b]王[/b]" in out and "李[/x]" in out and "转介绍 [10 位][/]" in out
    code, out, err = cli(capsys, "grade", "history", "001")
    assert code == 0 and "[b]王[/b]" in out and "转介绍 [10 位][/]" in out


def test_history_and_overrides_without_a_database_say_what_to_do(capsys):
    code, _, err = cli(capsys, "grade", "history", "000007")
    assert code == 1 and "不存在" in err and "tierctl grade" in err
    code, _, err = cli(capsys, "grade", "overrides")
    assert code == 1 and "不存在" in err


def test_history_of_an_unknown_customer(months, capsys):
    oct_, _ = months
    assert cli(capsys, "grade", oct_, "--as-of", PREV)[0] == 0
    code, _, err = cli(capsys, "grade", "history", "999999")
    assert code == 1 and "999999" in err and "没有客户分级记录" in err
