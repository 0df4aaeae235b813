"""Issue 14, what the export says: A-not-A questions are not negations (and a cancelled
keyword is told in the reasons), seed 002's own headers under rite100, a dimension column
on the wrong scale, footer and notes rows, one alias table for every job, and help texts."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import AS_OF, NOW, cli, score_rows
from hypothesis import given, settings
from hypothesis import strategies as st

from tierctl.textmatch import fires

NEG = ["没有", "不是", "并非", "并没", "不会", "从未", "不", "没", "未", "无", "别"]


def one(rows, model, tmp_path, **kw):
    return score_rows(rows, model, tmp_path, **kw).records()[0]


# -- 1. negation must not cancel questions --------------------------------------------------
def test_seed_phrase_is_not_a_negation(rite, tmp_path):
    rec = one([{"客户姓名": "甲", "等待天数": 3, "沟通记录": "你们是不是骗我"}], rite, tmp_path)
    assert rec["dims"]["E"] == 8
    assert "「骗」" in rec["reasons"][3] and "否定" not in rec["reasons"][3]


@pytest.mark.parametrize("note,keyword", [("有没有投诉渠道", "投诉"), ("会不会曝光出去", "曝光"),
                                          ("你们是不是在骗人", "骗"), ("你理不理解我的难处", "理解")])
def test_a_not_a_questions_still_match(note, keyword):
    assert fires(note, ["骗", "投诉", "曝光", "理解"], NEG) == keyword


def test_question_about_complaints_still_scores_r(rite, tmp_path):
    rec = one([{"客户姓名": "甲", "等待天数": 3, "沟通记录": "有没有投诉渠道"}], rite, tmp_path)
    assert rec["dims"]["R"] == 3  # notes mentioning 投诉 → 3


def test_negated_keyword_is_cancelled_and_the_reason_says_so(rite, tmp_path):
    rec = one([{"客户姓名": "甲", "等待天数": 3, "沟通记录": "我知道你们不是骗子"}], rite, tmp_path)
    assert rec["dims"]["E"] == 2  # the default: 骗 does not count
    e = rec["reasons"][3]
    assert e.startswith("E=2: ") and "「骗」前有否定词「不是」，未计入" in e


def test_cancelled_notes_from_two_rules_and_a_rule_that_fires(rite100, tmp_path):
    rec = one([{"客户姓名": "甲", "等待天数": 3, "沟通记录": "没有投诉的意思，也不是骗子，只是有点急"}], rite100, tmp_path)
    e = rec["reasons"][3]
    assert "「投诉」前有否定词「没有」" in e and "「骗」前有否定词「不是」" in e
    # R: 投诉 was the only R keyword and it was cancelled
    assert rec["dims"]["R"] == 0 and "「投诉」前有否定词「没有」" in rec["reasons"][0]
    # once a keyword fires, no cancellation is told for that rule
    rec = one([{"客户姓名": "乙", "等待天数": 3, "沟通记录": "不是骗子，但你们在骗我"}], rite100, tmp_path)
    assert rec["dims"]["E"] == 5 and "否定" not in rec["reasons"][3]


def test_given_score_carries_no_cancel_note(rite, tmp_path):
    rec = one([{"客户姓名": "甲", "等待天数": 3, "沟通记录": "不是骗子", "E": 5}], rite, tmp_path)
    assert rec["dims"]["E"] == 5 and "否定" not in rec["reasons"][3]


def test_why_shows_the_cancelling_negation(tmp_path):
    from typer.testing import CliRunner

    from tierctl.cli import app

    p = tmp_path / "s.csv"
    pd.DataFrame([{"客户编号": "C1", "客户姓名": "甲", "等待天数": 3, "沟通记录": "没有曝光的意思，不是骗子"},
                  {"客户编号": "C2", "客户姓名": "乙", "等待天数": 3, "沟通记录": "你们是不是骗我"}]).to_csv(p, index=False)
    db = tmp_path / "h.db"
    r = CliRunner().invoke(app, ["score", str(p), "--db", str(db), "--as-of", AS_OF.isoformat(),
                                 "--now", NOW.isoformat(), "-f", "json"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["why", "C1", "--db", str(db), "-f", "json"])
    assert r.exit_code == 0, r.output
    import json

    dims = {d["key"]: d for d in json.loads(r.stdout)["dimensions"]}
    assert "「曝光」前有否定词「没有」" in dims["E"]["reason"] and "「骗」前有否定词「不是」" in dims["E"]["reason"]
    r = CliRunner().invoke(app, ["why", "C1", "--db", str(db)], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "「骗」前有否定词「不是」，未计入" in r.stdout
    r = CliRunner().invoke(app, ["why", "C2", "--db", str(db), "-f", "json"])
    dims = {d["key"]: d for d in json.loads(r.stdout)["dimensions"]}
    assert dims["E"]["value"] == 8 and "否定" not in dims["E"]["reason"]


# property: the vectorised path (many distinct texts) and the scalar scan agree exactly
FRAGMENTS = ["骗", "投诉", "曝光", "理解", *NEG, "是", "有", "会", "理", "解", "你们", "，", "我", "渠道", "X"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=8).map("".join), min_size=1, max_size=40))
def test_vectorised_agrees_with_scalar(texts):
    from tierctl.textmatch import _scan, _vectorised

    kws = ("骗", "投诉", "曝光", "理解")
    s = pd.Series(texts, dtype="str")
    vec = _vectorised(s, kws, tuple(NEG))
    for t, row in zip(texts, vec.tolist(), strict=True):
        assert tuple(row) == _scan(t, kws, tuple(NEG)), t


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["是", "有", "会", "能", "好"]), st.sampled_from(["骗", "投诉", "曝光"]),
       st.text(alphabet="我你们的了吗，", max_size=4), st.text(alphabet="我你们的了吗，", max_size=4))
def test_a_not_a_always_fires_plain_negation_never(a, kw, pre, post):
    negs = ["不", "没", *[n + a for n in ("不", "没")]]
    for neg in ("不", "没"):
        # A 不 A kw: with a two-character negation word (不是, 没有 …) or a one-character one
        assert fires(f"{pre}{a}{neg}{a}{kw}{post}", [kw], negs) == kw
        # negation right before the keyword, not a question: cancelled
        assert fires(f"{pre}{neg}{kw}{post}", [kw], negs) is None


def test_cancelled_keyword_and_word_reported_per_row():
    from tierctl.textmatch import keyword_match

    m = keyword_match(pd.Series(["不是骗子", "是不是骗", None, "别投诉"], dtype="str"), ["骗", "投诉"], NEG)
    assert m.code.tolist() == [-1, 0, -1, -1]
    assert m.cancelled.tolist() == [0, -1, -1, 1]
    assert [NEG[i] if i >= 0 else None for i in m.negation.tolist()] == ["不是", None, None, "别"]


# -- 2. seed 002's own headers; a dimension column on the other model's scale -----------------
SEED_002_HEADERS = ["客户姓名", "车型", "等待天数", "R风险", "I影响", "T时间", "E情绪", "总分", "优先级", "行动计划"]
SEED_002_ROWS = [["张三", "Model 3", 26, 30, 25, 20, 20, 95, "P0", "72小时内解决"],
                 ["李四", "Model Y", 18, 20, 15, 15, 15, 65, "P1", "1周内解决"],
                 ["王五", "Model S", 12, 10, 10, 10, 10, 40, "P2", "2周内解决"]]


def write_sheet(path, headers, rows, *, title=None, footer=()):
    """An .xlsx (openpyxl) or a .csv with the given header row and rows, as a CRM writes it;
    ``title`` adds a line above the header; ``footer`` rows go after the data."""
    if path.suffix == ".xlsx":
        import openpyxl

        wb = openpyxl.Workbook()
        ws = wb.active
        if title:
            ws.append([title])
        ws.append(headers)
        for r in [*rows, *footer]:
            ws.append(list(r))
        wb.save(path)
    else:
        import csv

        with open(path, "w", encoding="utf-8-sig", newline="") as fh:
            w = csv.writer(fh)
            if title:
                w.writerow([title])
            w.writerow(headers)
            for r in [*rows, *footer]:
                w.writerow(list(r))
    return path


def score_file(path, model, **kw):
    from tierctl.io.ingest import read_export
    from tierctl.shortage import score

    ex = read_export(path, model.columns)
    return score(ex.frame, model, kw.pop("as_of", AS_OF), NOW, headers=ex.headers, path=path, **kw), ex


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
@pytest.mark.parametrize("dims", [["R风险", "I影响", "T时间", "E情绪"], ["风险", "影响力", "时间", "情绪"],
                                  ["舆情风险", "影响程度", "等待时长", "情绪状态"]])
def test_seed_002_sheet_scores_under_rite100(rite100, tmp_path, suffix, dims):
    headers = [*SEED_002_HEADERS[:3], *dims, *SEED_002_HEADERS[7:]]
    p = write_sheet(tmp_path / f"seed002{suffix}", headers, SEED_002_ROWS)
    res, ex = score_file(p, rite100)
    got = {r["name"]: r for r in res.records()}
    assert {n: (got[n]["score"], got[n]["model_tier"]) for n in got} == \
        {"张三": (95, "P0"), "李四": (65, "P1"), "王五": (40, "P2")}
    assert got["张三"]["dims"] == {"R": 30, "I": 25, "T": 20, "E": 20}
    assert f"取自导出表「{dims[0]}」列" in got["张三"]["reasons"][0]
    assert set(dims) <= set(ex.headers.values())


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_seed_002_sheet_under_rite_is_an_error_suggesting_rite100(rite, tmp_path, suffix):
    from tierctl.errors import InputError

    p = write_sheet(tmp_path / f"seed002{suffix}", SEED_002_HEADERS, SEED_002_ROWS)
    with pytest.raises(InputError) as ei:
        score_file(p, rite)
    msg = str(ei.value)
    assert "「R风险」" in msg and "「I影响」" in msg and "「E情绪」" in msg
    assert "--model rite100" in msg
    assert "第 2 行" in msg  # the first bad cell, as Excel numbers it


def test_rite_scores_under_rite100_are_an_error_suggesting_rite(rite100, tmp_path):
    from tierctl.errors import InputError

    rows = [{"客户姓名": "张先生", "R": 8, "I": 10, "等待天数": 24, "E": 8},
            {"客户姓名": "王女士", "R": 1, "I": 8, "等待天数": 16, "E": 4}]
    with pytest.raises(InputError) as ei:
        score_rows(rows, rite100, tmp_path)
    msg = str(ei.value)
    assert "--model rite" in msg and "--model rite100" not in msg
    assert "「R」" in msg and "「I」" in msg and "「E」" in msg
    assert "1–10" in msg


def test_values_on_both_scales_are_read_under_the_chosen_model(rite100, tmp_path):
    # 10/10/10/10 is a rite100 band score on every dimension (and also a 1–10 score): taken as given
    rec = one([{"客户姓名": "王五", "R风险": 10, "I影响": 10, "等待天数": 12, "T时间": 10, "E情绪": 10}],
              rite100, tmp_path)
    assert rec["score"] == 40 and rec["model_tier"] == "P2"
    # between two bands of rite100 and not a 1–10 score: a manager's judgement, taken as given
    rec = one([{"客户姓名": "甲", "R": 25, "等待天数": 3}], rite100, tmp_path)
    assert rec["dims"]["R"] == 25


def test_column_on_another_scale_is_named_even_when_no_model_fits_all(rite100, tmp_path):
    from tierctl.errors import InputError

    with pytest.raises(InputError) as ei:
        score_rows([{"客户姓名": "甲", "R": 30, "I": 8, "等待天数": 3},
                    {"客户姓名": "乙", "R": 20, "I": 3, "等待天数": 3}], rite100, tmp_path)
    msg = str(ei.value)
    assert "「I」列" in msg and "「R」列" not in msg
    assert "--model" not in msg  # rite would reject R = 30: no model to suggest


def test_out_of_range_without_another_model_keeps_the_plain_message(rite, tmp_path):
    from tierctl.errors import InputError

    with pytest.raises(InputError) as ei:
        score_rows([{"客户姓名": "甲", "R": 0, "等待天数": 3}, {"客户姓名": "乙", "R": 5, "等待天数": 3}], rite, tmp_path)
    msg = str(ei.value)
    assert "「R」" in msg and "1–10" in msg and "--model" not in msg  # 5 is no rite100 R band


def test_emotion_header_means_mood_for_words_and_e_for_numbers(rite, tmp_path):
    rec = one([{"客户姓名": "甲", "等待天数": 3, "情绪": "愤怒"}], rite, tmp_path)
    assert rec["dims"]["E"] == 10 and "情绪标注为「愤怒」" in rec["reasons"][3]
    rec = one([{"客户姓名": "甲", "等待天数": 3, "情绪": 7}], rite, tmp_path)
    assert rec["dims"]["E"] == 7 and "取自导出表「情绪」列" in rec["reasons"][3]


def test_wait_column_with_unit_is_days_and_without_is_t(rite, tmp_path):
    rec = one([{"客户姓名": "甲", "等待时长（天）": 29}], rite, tmp_path)
    assert rec["wait_days"] == 29 and rec["dims"]["T"] == 10
    rec = one([{"客户姓名": "甲", "等待天数": 29, "等待时长": 3}], rite, tmp_path)
    assert rec["wait_days"] == 29 and rec["dims"]["T"] == 3
    # 等待时长 is rite's own name for T: it is not the wait in days because of 等待时长（天）
    rec = one([{"客户姓名": "甲", "登记日期": "2026-10-20", "等待时长": 3}], rite, tmp_path)
    assert rec["wait_days"] == 35 and rec["dims"]["T"] == 3


def test_cli_seed_002_with_and_without_model(tmp_path, capsys):
    import json

    from typer.testing import CliRunner

    from tierctl.cli import app

    p = write_sheet(tmp_path / "seed002.xlsx", SEED_002_HEADERS, SEED_002_ROWS)
    r = CliRunner().invoke(app, ["score", str(p), "--model", "rite100", "--no-store", "-f", "json",
                                 "--as-of", AS_OF.isoformat(), "--now", NOW.isoformat()])
    assert r.exit_code == 0, r.output
    assert [(c["name"], c["score"], c["model_tier"]) for c in json.loads(r.stdout)["customers"]] == \
        [("张三", 95, "P0"), ("李四", 65, "P1"), ("王五", 40, "P2")]
    code, _out, err = cli(capsys, "score", str(p), "--no-store", "--as-of", AS_OF.isoformat())
    assert code == 1 and "--model rite100" in err and "Traceback" not in err


def test_seed_000_headers_under_rite(rite, tmp_path):
    # seed 000 writes its worked example as R风险 / I影响 / T时长 / E情绪
    rec = one([{"客户姓名": "张先生", "等待天数": 24, "R风险": 8, "I影响": 10, "T时长": 8, "E情绪": 8}], rite, tmp_path)
    assert rec["score"] == 8.6 and rec["model_tier"] == "P0"
