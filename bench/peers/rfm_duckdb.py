"""Peer for `tierctl rfm` (issue 19): what a data engineer would write in DuckDB.

    python bench/peers/rfm_duckdb.py visits.csv 2026-11-24 [out.json]

Reads the same visits export, drops rows after the as-of date (and before the 365-day
window), computes per customer R (days since the last non-refund visit), F (distinct
order numbers of non-refund rows, the date when the number is missing), M (net spend,
refunds included, in fen), tie-safe quantile scores 1–5 ((rank_min − 1)·5 // n + 1) and
the 8 types (score ≥ 4 = high), and writes JSON (stdout by default).  Part of the bench,
not a test; no checks, no Excel rows, no quality notes.
"""

import sys

import duckdb

QUERY = """
WITH v AS (
  SELECT "客户编号" AS cid, "结算单号" AS oid, CAST("结算日期" AS DATE) AS d,
         CAST(round("结算金额" * 100) AS BIGINT) AS cents
  FROM read_csv($path, header = true, skip = 0,
                types = {'客户编号': 'VARCHAR', '结算单号': 'VARCHAR', '结算日期': 'DATE', '结算金额': 'DOUBLE'})
  WHERE "结算日期" <= CAST($as_of AS DATE) AND "结算日期" > CAST($as_of AS DATE) - INTERVAL 365 DAY
),
c AS (
  SELECT cid,
         date_diff('day', max(d) FILTER (WHERE cents >= 0), CAST($as_of AS DATE)) AS recency_days,
         count(DISTINCT coalesce(oid, CAST(d AS VARCHAR))) FILTER (WHERE cents >= 0) AS frequency,
         sum(cents) / 100.0 AS monetary
  FROM v GROUP BY cid
  HAVING count(*) FILTER (WHERE cents >= 0) > 0
),
s AS (
  SELECT *, count(*) OVER () AS n,
         rank() OVER (ORDER BY recency_days DESC) AS rr,
         rank() OVER (ORDER BY frequency) AS fr,
         rank() OVER (ORDER BY monetary) AS mr
  FROM c
),
t AS (
  SELECT cid AS customer_id, recency_days, frequency, monetary,
         (rr - 1) * 5 // n + 1 AS r, (fr - 1) * 5 // n + 1 AS f, (mr - 1) * 5 // n + 1 AS m
  FROM s
)
SELECT *, [8, 4, 6, 2, 7, 3, 5, 1][1 + 4 * (r >= 4)::INT + 2 * (f >= 4)::INT + (m >= 4)::INT] AS type
FROM t ORDER BY type, monetary DESC, customer_id
"""


def main() -> None:
    path, as_of = sys.argv[1], sys.argv[2]
    out = sys.argv[3] if len(sys.argv) > 3 else "/dev/stdout"
    con = duckdb.connect()
    con.execute("CREATE TABLE result AS " + QUERY, {"path": path, "as_of": as_of})
    con.execute(f"COPY result TO '{out}' (FORMAT json, ARRAY true)")


if __name__ == "__main__":
    main()
