"""Feasibility probe (issue 19, not a test, not the library): DuckDB reads the visits
export itself and does the typing, the happy-path checks and the per-customer grouping
in one pass; tierctl's own scoring (:func:`tierctl.rfm.score.score_units`) and JSON
finish.  On bench/data/visits_5000000.csv it prints byte for byte the JSON of
``tierctl rfm FILE --as-of D --format json --dry-run``; on other files it exits 3 naming
the condition that would send a real run to the careful path (an odd cell, a missing
value, a row without an order number, a name conflict, spaces around a value).

A probe, not a fast path: the header is assumed on the first line, the file a UTF-8
CSV without quotes, blank lines and 合计 / notes rows; the unit the owner; and shared
order numbers are NOT detected (a GROUPING SETS ((cid), ()) global distinct count
would, at about 2.4 CPU-s more on 5 M rows).  Per step CPU and peak RSS go to stderr.

    python bench/feas_rfm_duckdb.py visits.csv 2026-11-24 > out.json

Figures (session rfmduck, issue 19): 9.0–12.0 CPU-s and 0.86 GB against the peer's
4.2–5.7 CPU-s and 0.46 GB and tierctl's 11.1–12.7 CPU-s and 1.34 GB (load 4–8);
the serial Python tail alone (imports, units, scoring, JSON) is 2.9–3.5 CPU-s.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import sys
import time

T0 = time.perf_counter()

import duckdb  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402

from tierctl.io.ingest import choose_columns  # noqa: E402
from tierctl.rfm.engine import Units  # noqa: E402
from tierctl.rfm.model import load_rfm_model  # noqa: E402
from tierctl.rfm.score import _Quality, score_units  # noqa: E402

WS = r"[\x00-\x20\x{85}\p{Z}]"  # a superset of what Arrow's trim takes off
STR = pd.StringDtype("pyarrow", na_value=np.nan)
EPOCH = dt.date(1970, 1, 1)

QUERY = """
WITH raw AS (
  SELECT row_number() OVER () + $first_row - 1 AS rn, {sel}
  FROM read_csv($path, header = false, skip = $skip, delim = ',', quote = '', escape = '',
                columns = {{{names}}}, auto_detect = false)
), t AS (
  SELECT *,
    CASE WHEN strlen(d) = 10 AND d[5] = '-' AND d[8] = '-' THEN try_cast(d AS DATE) END AS day,
    CASE WHEN regexp_full_match(amt, '[-+]?[0-9]+(\\.[0-9]+)?')
         THEN CAST(round_even(CAST(amt AS DOUBLE) * 100, 0) AS BIGINT) END AS cents
  FROM raw
), c AS (
  SELECT *, CASE WHEN cid IS NULL OR day IS NULL OR cents IS NULL THEN 3
                 WHEN day > CAST($as_of AS DATE) THEN 1
                 WHEN day < CAST($start AS DATE) THEN 2 ELSE 0 END AS cls,
            (epoch(day) // 86400) * 1099511627776 + rn AS okey
  FROM t
)
SELECT cid,
  max(day) FILTER (WHERE cls = 0 AND cents >= 0) AS last_day,
  CAST(sum(cents) FILTER (WHERE cls = 0) AS BIGINT) AS net,
  count(DISTINCT oid) FILTER (WHERE cls = 0 AND cents >= 0) AS f,
  count(*) FILTER (WHERE cls = 0 AND cents < 0) AS n_refund,
  arg_max(name, okey) FILTER (WHERE cls = 0 AND name IS NOT NULL) AS lname,
  arg_max(phone, okey) FILTER (WHERE cls = 0 AND phone IS NOT NULL) AS lphone,
  min(name) FILTER (WHERE cls = 0) <> max(name) FILTER (WHERE cls = 0) AS conflict,
  coalesce(bool_or(kol = '是') FILTER (WHERE cls = 0), false) AS kol,
  count(*) FILTER (WHERE (d IS NOT NULL AND day IS NULL) OR (amt IS NOT NULL AND cents IS NULL)
                    OR (kol IS NOT NULL AND kol NOT IN ('是', '否'))
                    OR regexp_matches(oid, '^{ws}|{ws}$')) AS n_bad,
  count(*) FILTER (WHERE cls = 3) AS n_missing, count(*) FILTER (WHERE cls = 2) AS n_old,
  count(*) FILTER (WHERE cls = 0 AND cents >= 0 AND oid IS NULL) AS n_no_oid,
  min(day) AS lo, max(day) AS hi,
  list(rn) FILTER (WHERE cls = 0 AND cents < 0) AS refund_rows,
  list(cents) FILTER (WHERE cls = 0 AND cents < 0) AS refund_cents,
  list(rn) FILTER (WHERE cls = 1) AS future_rows, list(day) FILTER (WHERE cls = 1) AS future_days
FROM c GROUP BY cid
"""


CPU: dict[str, float] = {}
_LAST = [0.0]


def mark(name: str) -> None:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    now = ru.ru_utime + ru.ru_stime
    CPU[name] = now - _LAST[0]
    CPU[name + "_rssMB"] = ru.ru_maxrss / 1024
    _LAST[0] = now


def refuse(why: str) -> None:
    print(f"careful path: {why}", file=sys.stderr)
    raise SystemExit(3)


def main() -> None:
    path, as_of = sys.argv[1], dt.date.fromisoformat(sys.argv[2])
    model = load_rfm_model()
    with open(path, encoding="utf-8-sig", newline="") as fh:
        header = next(csv.reader(io.StringIO(fh.readline())))
    chosen = choose_columns([h.strip() for h in header], model.columns, {}, None, path)
    pos = {c: [h.strip() for h in header].index(h) for c, h in chosen.items()}
    want = {"cid": "customer_id", "oid": "order_id", "name": "name", "phone": "phone", "d": "visit_date",
            "amt": "amount", "kol": "kol"}
    sel = ", ".join(f"c{pos[c]} AS {k}" for k, c in want.items())
    names = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(header)))
    start = as_of - dt.timedelta(days=model.window_days - 1)
    t1 = time.perf_counter()
    mark("imports+header")
    con = duckdb.connect()
    g = con.sql(QUERY.format(sel=sel, names=names, ws=WS),
                params={"path": path, "skip": 1, "first_row": 2, "as_of": as_of.isoformat(),
                        "start": start.isoformat()}).to_arrow_table()
    con.close()  # DuckDB's buffers back before the scoring
    from tierctl.kernels.memory import give_back

    give_back()
    t2 = time.perf_counter()
    mark("query")
    tot = {k: int(pc.sum(g[k]).as_py() or 0) for k in ("n_bad", "n_missing", "n_old", "n_no_oid")}
    if tot["n_bad"] or tot["n_missing"]:
        refuse(f"{tot['n_bad']} odd cells, {tot['n_missing']} rows missing a value")
    if tot["n_no_oid"] or pc.any(g["conflict"]).as_py():
        refuse("rows without an order number, or a name conflict")
    lo, hi = pc.min(g["lo"]).as_py(), pc.max(g["hi"]).as_py()
    if lo < dt.date(1678, 1, 1) or hi > dt.date(2261, 12, 31):
        refuse("a date outside pandas' range")

    q = _Quality()
    fut = g.filter(pc.greater(pc.list_value_length(g["future_rows"]), 0))
    if fut.num_rows:
        rows = pc.list_flatten(fut["future_rows"]).to_numpy()
        days = pc.list_flatten(fut["future_days"]).cast(pa.int32()).to_numpy().astype("datetime64[D]")
        ids = pc.take(fut["cid"], pc.list_parent_indices(fut["future_rows"]))
        q.rows("after_as_of", rows, ids.to_numpy(zero_copy_only=False),
               [f"日期 {d} 晚于评估日 {as_of.isoformat()}，该行未计入" for d in days.astype(str)])
    if tot["n_old"]:
        q.one("outside_window", f"{tot['n_old']} 行早于统计窗口起点 {start.isoformat()}"
                                f"（窗口 {model.window_days} 天），未计入")
    ref = g.filter(pc.greater(pc.list_value_length(g["refund_rows"]), 0))
    if ref.num_rows:
        rows = pc.list_flatten(ref["refund_rows"]).to_numpy()
        cents = pc.list_flatten(ref["refund_cents"]).to_numpy()
        ids = pc.take(ref["cid"], pc.list_parent_indices(ref["refund_rows"]))
        q.rows("refund", rows, ids.to_numpy(zero_copy_only=False),
               [f"退款 {c / 100:.2f} 元：冲减 M，不算到店" for c in cents])
    scored = g.filter(pc.is_valid(g["last_day"]))
    lonely = g.filter(pc.and_(pc.is_null(g["last_day"]), pc.greater(g["n_refund"], 0)))
    edge = f"^{WS}|{WS}$"
    for col in ("cid", "lname", "lphone"):
        if pc.any(pc.match_substring_regex(scored[col], edge)).as_py():
            refuse(f"a value with spaces around it in {col}")
    ids = pd.Index(pd.array(scored["cid"].combine_chunks().cast(pa.large_string()), dtype=STR))
    units = Units(
        ids=ids,
        last_day=scored["last_day"].cast(pa.int32()).to_numpy().astype(np.int64),
        net_cents=scored["net"].to_numpy().astype(np.int64),
        frequency=scored["f"].to_numpy().astype(np.int64),
        kol=scored["kol"].to_numpy(zero_copy_only=False).astype(bool),
        latest={"name": pd.array(scored["lname"].combine_chunks().cast(pa.large_string()), dtype=STR),
                "phone": pd.array(scored["lphone"].combine_chunks().cast(pa.large_string()), dtype=STR)},
        basis="order_id",
        refund_only=sorted(lonely["cid"].to_pylist()),
    )
    t3 = time.perf_counter()
    mark("units")
    result = score_units(units, q, model, as_of)
    mark("score")
    data = result.to_json_bytes()
    t4 = time.perf_counter()
    mark("json")
    sys.stdout.buffer.write(data)
    print(f"imports {t1 - T0:.2f} query {t2 - t1:.2f} units {t3 - t2:.2f} score+json {t4 - t3:.2f}",
          file=sys.stderr)
    print("cpu", " ".join(f"{k} {v:.2f}" for k, v in CPU.items()), file=sys.stderr)


if __name__ == "__main__":
    main()
