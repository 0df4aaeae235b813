"""The per-unit work of RFM done natively: DuckDB over Arrow (multi-threaded, in memory).

:func:`aggregate` gets the checked visit columns (one entry per row of the export, and
``keep``, the rows that count) and returns, per unit with at least one non-refund visit:
the latest visit day, the net spend in fen, the distinct visits (F), the latest non-empty
name / phone / owner and the KOL mark; and what the quality notes need (units with only
refunds, order numbers shared by customers, rows without an order number, ids with
several names).  The rules are those of :mod:`tierctl.rfm.score`; the plain pandas
version they are tested against is in tests/test_rfm_engine.py.

Pure: no file, no store; DuckDB runs in an in-memory connection closed on return.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

# "latest" = latest date, then highest Excel row: the day shifted above any row number
_ROW_SPAN = 1 << 40


@dataclass
class Units:
    """Per scored unit (same order in every array) and the notes' raw material."""

    ids: pd.Index
    last_day: np.ndarray
    net_cents: np.ndarray
    frequency: np.ndarray
    kol: np.ndarray
    latest: dict[str, Any]
    basis: str  # order_id | visit_date
    refund_only: list[str] = field(default_factory=list)
    shared_orders: list[tuple[str, int]] = field(default_factory=list)
    name_conflicts: list[tuple[str, list[str]]] = field(default_factory=list)
    missing_order_rows: int = 0
    first_missing_order_row: int | None = None


def arrow_text(s: pd.Series) -> pa.ChunkedArray | pa.Array:
    """A text column as Arrow, without a copy when pandas already keeps it in Arrow."""
    arr = getattr(s.array, "_pa_array", None)
    if arr is not None:
        return arr
    return pa.array(s.astype("str").to_numpy(dtype=object, na_value=None), type=pa.string())


def aggregate(text: dict[str, pd.Series], day: np.ndarray, cents: np.ndarray, rows: np.ndarray,
              keep: np.ndarray, kol: np.ndarray | None, *, name_conflicts: bool) -> Units:
    """``text``: ``u`` (the unit key) and, when present, ``oid``, ``name``, ``phone``,
    ``cid`` (the owner, when the unit is the vehicle).  ``day`` whole days, ``cents``
    integer fen (refunds negative), ``rows`` Excel rows (-1 unknown)."""
    import duckdb

    cols: dict[str, Any] = {k: arrow_text(s) for k, s in text.items()}
    cols.update(day=pa.array(day), cents=pa.array(cents), row=pa.array(rows), keep=pa.array(keep))
    if kol is not None:
        cols["kol"] = pa.array(kol)
    con = duckdb.connect()
    try:
        con.register("t", pa.table(cols))
        units, basis = _unit_table(con, set(cols))
        out = _units(units, basis, set(cols))
        scored = set(out.ids)
        out.refund_only = sorted(units["u"][units["n_visit"].to_numpy() == 0].astype("str").tolist())
        if basis == "order_id":
            out.shared_orders = [(str(o), int(n)) for o, n in con.execute(
                "SELECT oid, count(DISTINCT u) FROM t WHERE keep AND cents >= 0 AND oid IS NOT NULL "
                "GROUP BY oid HAVING count(DISTINCT u) > 1").fetchall()]
            n_missing, first = con.execute(
                "SELECT count(*), min(row) FILTER (WHERE row >= 0) FROM t "
                "WHERE keep AND cents >= 0 AND oid IS NULL").fetchone() or (0, None)
            out.missing_order_rows = int(n_missing)
            out.first_missing_order_row = None if first is None else int(first)
        if name_conflicts and "name" in cols:
            found = con.execute("SELECT u, list(DISTINCT name) FROM t WHERE keep AND name IS NOT NULL "
                            "GROUP BY u HAVING count(DISTINCT name) > 1").fetchall()
            out.name_conflicts = [(str(u), sorted(names)) for u, names in found if u in scored]
        return out
    finally:
        con.close()


def _unit_table(con: Any, present: set[str]) -> tuple[pd.DataFrame, str]:
    has_oid = "oid" in present and bool(con.execute(
        "SELECT count(*) FROM t WHERE keep AND cents >= 0 AND oid IS NOT NULL").fetchone()[0])  # type: ignore[index]
    latest = [f"arg_max({c}, day * {_ROW_SPAN} + greatest(row, 0)) FILTER (WHERE {c} IS NOT NULL) AS {c}"
              for c in ("cid", "name", "phone") if c in present]
    kol = ["bool_or(kol) AS kol"] if "kol" in present else []
    if has_oid:
        freq_cte = """,
        numbered AS (SELECT DISTINCT u, day FROM t WHERE keep AND cents >= 0 AND oid IS NOT NULL),
        f_id AS (SELECT u, count(DISTINCT oid) AS f FROM t WHERE keep AND cents >= 0 AND oid IS NOT NULL GROUP BY u),
        f_day AS (SELECT a.u, count(DISTINCT a.day) AS f FROM t a ANTI JOIN numbered n ON a.u = n.u AND a.day = n.day
                  WHERE a.keep AND a.cents >= 0 AND a.oid IS NULL GROUP BY a.u)"""
        freq = "coalesce(f_id.f, 0) + coalesce(f_day.f, 0)"
        joins = "LEFT JOIN f_id ON f_id.u = g.u LEFT JOIN f_day ON f_day.u = g.u"
    else:
        freq_cte, freq, joins = "", "g.f", ""
    query = f"""
        WITH g AS (
          SELECT u, count(*) FILTER (WHERE cents >= 0) AS n_visit,
                 max(day) FILTER (WHERE cents >= 0) AS last_day, sum(cents)::BIGINT AS net,
                 count(DISTINCT day) FILTER (WHERE cents >= 0) AS f
                 {''.join(', ' + x for x in latest + kol)}
          FROM t WHERE keep GROUP BY u){freq_cte}
        SELECT g.*, ({freq})::BIGINT AS frequency FROM g {joins}"""
    return con.execute(query).df(), ("order_id" if has_oid else "visit_date")


def _units(units: pd.DataFrame, basis: str, present: set[str]) -> Units:
    sel = units["n_visit"].to_numpy() > 0
    g = units[sel]
    latest = {}
    for col, name in (("cid", "customer_id"), ("name", "name"), ("phone", "phone")):
        if col in present:
            latest[name] = pd.array(g[col].astype(object).where(g[col].notna(), None).tolist(), dtype="str")
    kol = (g["kol"].fillna(False).to_numpy(dtype=bool) if "kol" in present
           else np.zeros(len(g), dtype=bool))
    return Units(
        ids=pd.Index(pd.array(g["u"].astype(object).tolist(), dtype="str")),
        last_day=g["last_day"].to_numpy(dtype=np.int64),
        net_cents=g["net"].to_numpy(dtype=np.int64),
        frequency=g["frequency"].to_numpy(dtype=np.int64),
        kol=kol, latest=latest, basis=basis)
