"""Issue 14, what the export says: A-not-A questions are not negations (and a cancelled
keyword is told in the reasons), seed 002's own headers under rite100, a dimension column
on the wrong scale, footer and notes rows, one alias table for every job, and help texts."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import AS_OF, NOW, score_rows
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
