"""The peer of `tierctl score big.csv -f csv -o out.csv --no-store` (issue 19): one DuckDB query.

    python bench/peers/score_duckdb.py EXPORT.csv OUT.csv [--as-of 2026-11-24]

What a data engineer would write over the generated shortage export (bench/bench_score.py):
R/I/T/E derived from the raw facts as the packaged ``rite`` model does (SPEC A1/A3: keyword
lists, follower and wait bands, contact bands, the highest rule that fires, the defaults),
negation words cancelling a keyword right after them, the exact total in integer hundredths,
the tiers, the escalations that apply without a history (A4.1–A4.3 by wait, A4.4 a complaint
keyword with no previous run, A4.6 a negative post), sorted most urgent first, to CSV.
It does not check cells, report Excel rows, explain reasons or attach the tier policy; it is
part of the bench, not a test (tests/test_peer_score.py checks its tiers equal tierctl's).
"""

from __future__ import annotations

import argparse
import re

import duckdb

NEG = ["没有", "不是", "并非", "并没", "不会", "从未", "不", "没", "未", "无", "别"]


def fires(col: str, words: list[str]) -> str:
    """SQL: some occurrence of a keyword in ``col`` not right after a negation word."""
    neg = "|".join(re.escape(w) for w in sorted(NEG, key=len, reverse=True))
    kw = "|".join(re.escape(w) for w in words)
    return (f"regexp_matches(regexp_replace(coalesce({col}, ''), '(?:{neg})(?:{kw})', '', 'g'), '{kw}')")


def query(path: str, out: str, as_of: str) -> str:
    return f"""
COPY (
WITH src AS (
  SELECT * FROM read_csv('{path}', header = true, all_varchar = true)
), facts AS (
  SELECT "客户编号" AS customer_id, "客户姓名" AS name,
         greatest(date '{as_of}' - CAST("登记日期" AS DATE), 0) AS wait_days,
         coalesce(CAST("粉丝数" AS DOUBLE), 0) AS followers, "身份/职业" AS identity,
         "用车场景" AS usage, coalesce(CAST("近7天联系次数" AS INTEGER), 0) AS contacts,
         "沟通记录" AS notes, "社媒负面" = '是' AS negative_post
  FROM src
), id_kw AS (  -- the keyword rules run once per distinct text, then join back
  SELECT identity,
    greatest(CASE WHEN {fires('identity', ['自媒体', '媒体', '记者', '编辑', '大V', '律师'])} THEN 10 ELSE 1 END,
             CASE WHEN {fires('identity', ['KOL', '意见领袖', '专家', '高管', '总监', '总经理'])} THEN 8 ELSE 1 END
    ) AS r_identity
  FROM (SELECT DISTINCT identity FROM facts)
), usage_kw AS (
  SELECT usage,
    CASE WHEN {fires('usage', ['网约车', '出租车', '营运', '滴滴', '跑车拉客', '货运'])} THEN 10
         WHEN {fires('usage', ['唯一', '通勤', '接送', '上下班', '上班'])} THEN 8
         WHEN {fires('usage', ['主要用车', '有替代', '第二辆', '另有一辆', '家用'])} THEN 6
         WHEN {fires('usage', ['周末', '休闲', '自驾游', '偶尔'])} THEN 3
         WHEN {fires('usage', ['备用', '很少', '闲置'])} THEN 1 ELSE 6 END AS i_usage
  FROM (SELECT DISTINCT usage FROM facts)
), notes_kw AS (
  SELECT notes,
    CASE WHEN {fires('notes', ['曝光', '投诉'])} THEN 3 ELSE 1 END AS r_notes,
    CASE WHEN {fires('notes', ['律师', '起诉', '诉讼', '法院', '媒体', '曝光', '12315', '消协'])} THEN 10
         WHEN {fires('notes', ['骗', '敷衍', '不负责任', '忽悠', '糊弄'])} THEN 8 END AS e_high,
    {fires('notes', ['理解', '不急', '没关系', '放心', '信任'])} AS e_calm,
    {fires('notes', ['投诉', '曝光', '律师'])} AS complaint_note
  FROM (SELECT DISTINCT notes FROM facts)
), dims AS (
  SELECT f.*,
    greatest(coalesce(r_identity, 1), CASE WHEN followers >= 100000 THEN 10 WHEN followers >= 10000 THEN 8
             WHEN followers >= 1000 THEN 5 ELSE 1 END, coalesce(r_notes, 1)) AS R,
    coalesce(i_usage, 6) AS I,
    CASE WHEN wait_days >= 28 THEN 10 WHEN wait_days >= 21 THEN 8 WHEN wait_days >= 14 THEN 6
         WHEN wait_days >= 7 THEN 3 ELSE 1 END AS T,
    CASE WHEN e_high IS NOT NULL THEN e_high WHEN contacts >= 7 THEN 6 WHEN contacts >= 2 THEN 4
         WHEN e_calm THEN 1 ELSE 2 END AS E,
    coalesce(complaint_note, false) AS complaint_note
  FROM facts f
  LEFT JOIN id_kw USING (identity) LEFT JOIN usage_kw USING (usage) LEFT JOIN notes_kw USING (notes)
), scored AS (
  SELECT *, R * 35 + I * 30 + T * 20 + E * 15 AS total,
         CASE WHEN R * 35 + I * 30 + T * 20 + E * 15 >= 800 THEN 0
              WHEN R * 35 + I * 30 + T * 20 + E * 15 >= 600 THEN 1
              WHEN R * 35 + I * 30 + T * 20 + E * 15 >= 400 THEN 2 ELSE 3 END AS model_rank
  FROM dims
), esc1 AS (  -- A4.1: waited > 14 days and P3 -> P2
  SELECT *, model_rank = 3 AND wait_days > 14 AS a41,
         CASE WHEN model_rank = 3 AND wait_days > 14 THEN 2 ELSE model_rank END AS r1 FROM scored
), esc2 AS (  -- A4.2: waited > 21 days and P2 -> P1; A4.3: waited > 28 days -> at least P1
  SELECT *, r1 = 2 AND wait_days > 21 AS a42, wait_days > 28 AND model_rank > 1 AS a43,
         CASE WHEN wait_days > 28 OR (r1 = 2 AND wait_days > 21) THEN least(r1, 1) ELSE r1 END AS r3 FROM esc1
), esc3 AS (  -- A4.4: a complaint keyword, no previous run -> one up; A4.6: negative post -> P0
  SELECT *, complaint_note AND r3 > 0 AS a44, negative_post AND greatest(r3 - complaint_note::INT, 0) > 0 AS a46,
         CASE WHEN negative_post THEN 0 ELSE greatest(r3 - complaint_note::INT, 0) END AS rank FROM esc2
)
SELECT customer_id, name, wait_days, R, I, T, E, total / 100 AS score,
       'P' || model_rank AS model_tier, 'P' || rank AS tier,
       concat_ws(';', CASE WHEN a41 THEN 'A4.1' END, CASE WHEN a42 THEN 'A4.2' END,
                 CASE WHEN a43 THEN 'A4.3' END, CASE WHEN a44 THEN 'A4.4' END,
                 CASE WHEN a46 THEN 'A4.6' END) AS escalations
FROM esc3
ORDER BY rank, total DESC, wait_days DESC, customer_id
) TO '{out}' (HEADER, DELIMITER ',')
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("export")
    ap.add_argument("out")
    ap.add_argument("--as-of", default="2026-11-24")
    args = ap.parse_args()
    duckdb.sql(query(args.export, args.out, args.as_of))


if __name__ == "__main__":
    main()
