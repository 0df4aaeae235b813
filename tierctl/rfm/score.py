"""RFM segmentation (job C): score every customer 1–5 on R, F and M and sort them into 8 types.

Pure core: a frame of visits, the model and the as-of date go in, an :class:`RfmResult`
comes out.  No I/O, no clock.

How the numbers are made (the rules a service manager can check by hand):

* **Window.** Only visits in the ``window_days`` days up to and including the as-of date
  count (``as_of - window_days < date <= as_of``).  Rows dated after the as-of date are
  dropped and listed in :attr:`RfmResult.quality` with their Excel row; older rows are
  dropped and counted.  A customer with no visit in the window is not scored.
* **Unit.** The owner (``customer_id``, default) or the vehicle (``vin``), per the model.
* **R** = as-of date − date of the latest visit, in days (refunds are not visits).
* **F** = distinct visits: distinct repair-order / invoice numbers when the export has
  them, otherwise distinct visit dates (:attr:`RfmResult.frequency_basis` says which).
  Rows without an order number fall back to their date, unless the same customer has a
  numbered order that day (then they are lines of that order, not another visit).
* **M** = net spend in the window in 元 (refunds, i.e. negative amounts, lower it), summed
  per customer, or divided by F when the model says ``monetary = "mean"``.  Money is
  handled in integer fen so that sums never depend on row order.
* **Scores.**  Quantile binning (default): every customer is ranked in the "good"
  direction (fewest days, most visits, most money = best) with ties sharing the lowest
  rank of their group (``rank(method="min")``), and ``score = (rank - 1) * 5 // n + 1``.
  Equal values therefore always share a score and row order cannot change a score;
  a group of tied customers gets the score of its lowest position (so when 80% of
  customers have one visit, all of them get F=1, and nobody gets 2–4).  With fewer
  than 5 customers the top scores cannot be reached (one customer scores 1-1-1); the
  result says so in ``quality``.  Threshold binning uses the model's fixed boundaries.
  Either way the boundaries actually applied are returned as :class:`Edges`, and passing
  them back (``edges=``) scores a later month on the same scale (*frozen* edges).
* **Type.**  A score ≥ ``high_min`` (4) is high; the (R, F, M) high/low pattern picks
  one of the 8 types in the model; all 125 score combinations map to exactly one type.
"""


from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from tierctl.errors import UsageError
from tierctl.rfm.columns import (
    _NAT_DAY,
    _as_text,
    _date_to_day,
    _days_to_iso,
    _require_columns,
    _to_bool,
    _to_days,
    _to_float,
)
from tierctl.rfm.engine import Units, aggregate
from tierctl.rfm.model import (
    _DIM_LABEL,
    _DIM_UNIT,
    _HIGHER_IS_BETTER,
    _QUALITY_ORDER,
    DIMENSIONS,
    N_SCORES,
    Edges,
    RfmModel,
    _fmt_number,
    _plain_number,
    rfm_types,
)
from tierctl.rfm.result import RfmResult, _plain


# =====================================================================================
# Scoring
# =====================================================================================
def quantile_scores(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Tie-safe quantile scores 1–5: ``(rank_min - 1) * 5 // n + 1``.

    ``rank_min`` ranks in the good direction (worst = 1) with ties taking the lowest rank
    of their group, so equal values share a score whatever the row order, and no bin
    edge has to be unique (the failure of ``pd.qcut``).  Works for n = 0, 1, 2.
    """
    values = np.asarray(values)
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.int8)
    good = values if higher_is_better else -values
    # rank_min = 1 + number of values strictly worse; via the sorted unique values
    uniq, inverse, counts = np.unique(good, return_inverse=True, return_counts=True)
    below = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank_min = below[inverse] + 1
    return ((rank_min - 1) * N_SCORES // n + 1).astype(np.int8)


def _edges_from_scores(values: np.ndarray, scores: np.ndarray,
                       higher: bool) -> tuple[float | None, ...]:
    """The least good value among those scoring ≥ k, for k = 2..5 (see :class:`Edges`)."""
    bounds: list[float | None] = []
    for k in range(2, N_SCORES + 1):
        sel = values[scores >= k]
        if len(sel) == 0:
            bounds.append(None)
        else:
            bounds.append(_plain_number(sel.min() if higher else sel.max()))
    return tuple(bounds)



# =====================================================================================
# compute_rfm
# =====================================================================================
class _Quality:
    """Collects data-quality notes; per-row notes are built from arrays in one pass."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def rows(self, kind: str, rows: np.ndarray | None, ids: Iterable, details: Iterable[str]) -> None:
        # tolist() turns a column into Python values in one C pass (tens of thousands of
        # refunds or future rows are common in a big export)
        ids = ids.tolist() if isinstance(ids, pd.Series | pd.Index | np.ndarray) else list(ids)
        # -1 = the frame had no _row column (a library caller): say "unknown", not row -1
        rows_l = ([r if r >= 0 else None for r in rows.tolist()] if rows is not None
                  else [None] * len(ids))
        self.items.extend({"kind": kind, "row": r, "customer_id": i if i is None or type(i) is str else _plain(i),
                           "detail": d} for r, i, d in zip(rows_l, ids, details, strict=True))

    def one(self, kind: str, detail: str, row: int | None = None, customer_id: str | None = None) -> None:
        self.items.append({"kind": kind, "row": row, "customer_id": customer_id, "detail": detail})

    def sorted(self) -> list[dict[str, Any]]:
        order = {k: i for i, k in enumerate(_QUALITY_ORDER)}
        return sorted(self.items, key=lambda q: (order.get(q["kind"], len(order)),
                                                 q["row"] if q["row"] is not None else -1,
                                                 str(q["customer_id"] or ""), q["detail"]))


def compute_rfm(visits: pd.DataFrame, model: RfmModel, as_of: date, *,
                edges: Edges | None = None) -> RfmResult:
    """Score every unit (owner or vehicle) on R, F, M and assign one of the 8 types.

    ``visits``: one row per visit / invoice line with the canonical columns of the model
    (``customer_id``, ``visit_date``, ``amount`` required; ``name``, ``phone``, ``vin``,
    ``order_id``, ``kol`` optional) and ``_row`` (the Excel row number, used in notes).

    ``edges``: boundaries from an earlier result (``result.edges``) to score on the same
    scale as that run (month-over-month comparability).  Without them the model's
    ``binning`` decides: quantile edges computed from this data, or the fixed thresholds.
    See the module docstring for every rule.  The checks and per-row notes are numpy on
    the whole columns; the per-unit grouping is :func:`tierctl.rfm.engine.aggregate`.
    """
    as_of = check_as_of(as_of, model, edges)
    unit_col = model.unit_column
    _require_columns(visits, unit_col)
    q = _Quality()
    window_start = as_of - timedelta(days=model.window_days - 1)
    units = _aggregate(visits, model, unit_col, as_of, window_start, q)
    return score_units(units, q, model, as_of, edges=edges)


def check_as_of(as_of: date, model: RfmModel, edges: Edges | None) -> date:
    """The as-of date as a date, checked with the frozen edges against the model."""
    if isinstance(as_of, datetime):
        as_of = as_of.date()
    if not isinstance(as_of, date):
        raise UsageError(f"评估日期无效：{as_of!r}")
    if edges is not None and edges.monetary_basis != model.monetary:
        raise UsageError(f"冻结的边界按 M={edges.monetary_basis} 计算，本模型是 M={model.monetary}",
                         hint="两次运行的 M 口径必须一致才能比较")
    return as_of


def score_units(units: Units, q: _Quality, model: RfmModel, as_of: date, *,
                edges: Edges | None = None) -> RfmResult:
    """The result from the grouped units and the row notes already in ``q``: R, F, M,
    scores, types, the notes about units.  Shared by :func:`compute_rfm` and the
    DuckDB fast path (:mod:`tierctl.rfm.fastpath`), which groups the file itself."""
    unit_col = model.unit_column
    window_start = as_of - timedelta(days=model.window_days - 1)
    n = len(units.ids)
    recency = _date_to_day(as_of) - units.last_day
    _note_units(units, q)
    frequency = units.frequency
    if model.monetary == "mean":
        monetary = np.rint(units.net_cents / np.maximum(frequency, 1)) / 100  # fen-rounded mean per visit
    else:
        monetary = units.net_cents / 100
    values = {"recency_days": recency, "frequency": frequency, "monetary": monetary}
    scores, used, binning, small = _score(values, model, edges, n, q)
    r, f, m = scores["recency_days"], scores["frequency"], scores["monetary"]
    type_no = rfm_types(r, f, m, model)
    customers = _customers_frame(model, unit_col, units.ids, units.latest, units.last_day, recency, frequency,
                                 monetary, units.net_cents / 100, r, f, m, type_no, units.kol)
    return RfmResult(
        as_of=as_of, window_start=window_start, window_days=model.window_days, unit=model.unit,
        customers=customers, summary=_summary(model, customers), edges=used, binning=binning,
        frequency_basis=units.basis, monetary_basis=model.monetary, quality=q.sorted(),
        model_name=model.name, small_population=small,
    )


def _aggregate(visits: pd.DataFrame, model: RfmModel, unit_col: str, as_of: date, window_start: date,
               q: _Quality) -> Units:
    """Check every row (notes with Excel rows for the rows that do not count), then group."""
    n_rows = len(visits)
    rows = (visits["_row"].to_numpy(dtype=np.int64, na_value=-1) if "_row" in visits
            else np.full(n_rows, -1, dtype=np.int64))
    unit_s = _as_text(visits[unit_col])
    id_s = unit_s if unit_col == "customer_id" else _as_text(visits["customer_id"])
    day = _to_days(visits["visit_date"])
    amount = _to_float(visits["amount"])
    as_of_day, start_day = _date_to_day(as_of), _date_to_day(window_start)

    miss_unit = unit_s.isna().to_numpy()
    miss_date = day == _NAT_DAY
    miss_amount = np.isnan(amount)
    missing = miss_unit | miss_date | miss_amount
    if missing.any():
        idx = np.flatnonzero(missing)
        labels = {unit_col: miss_unit, "visit_date": miss_date, "amount": miss_amount}
        q.rows("missing_value", rows[idx], id_s.iloc[idx],
               ["缺少 " + "、".join(c for c, m in labels.items() if m[i]) + "，该行未计入" for i in idx])
    future = ~missing & (day > as_of_day)
    if future.any():
        idx = np.flatnonzero(future)
        q.rows("after_as_of", rows[idx], id_s.iloc[idx],
               [f"日期 {d} 晚于评估日 {as_of.isoformat()}，该行未计入" for d in _days_to_iso(day[idx])])
    old = ~missing & (day < start_day)
    if old.any():
        q.one("outside_window", f"{int(old.sum())} 行早于统计窗口起点 {window_start.isoformat()}"
                                f"（窗口 {model.window_days} 天），未计入")
    keep = ~(missing | future | old)
    # in place, on arrays of millions: the fen of the rows kept (0 elsewhere), and their days
    fen = np.multiply(amount, 100)
    del amount
    fen[~keep] = 0
    cents = np.rint(fen, out=fen).astype(np.int64)
    del fen
    day[~keep] = 0
    refund = keep & (cents < 0)
    if refund.any():
        idx = np.flatnonzero(refund)
        q.rows("refund", rows[idx], id_s.iloc[idx], [f"退款 {c / 100:.2f} 元：冲减 M，不算到店" for c in cents[idx]])

    text = {"u": unit_s}
    for col, key in (("order_id", "oid"), ("name", "name"), ("phone", "phone")):
        if col in visits and col != unit_col:
            text[key] = _as_text(visits[col])
    if unit_col != "customer_id":
        text["cid"] = id_s
    kol = _to_bool(visits["kol"]) if "kol" in visits else None
    return aggregate(text, day, cents, rows, keep, kol,
                     name_conflicts=unit_col == "customer_id")


def _note_units(units: Units, q: _Quality) -> None:
    """The notes about whole units and orders, from what the grouping found."""
    if units.refund_only:
        q.rows("refund_only", None, units.refund_only,
               ["窗口内只有退款、没有到店记录，未参与评分"] * len(units.refund_only))
    negative = np.flatnonzero(units.net_cents < 0)
    if len(negative):
        q.rows("negative_net", None, units.ids[negative],
               [f"窗口内净消费为负（{c / 100:.2f} 元）：退款对应的消费可能在窗口之前"
                for c in units.net_cents[negative]])
    if units.shared_orders:
        q.rows("shared_order_id", None, [None] * len(units.shared_orders),
               [f"单号「{o}」出现在 {k} 个客户名下，每个客户各计一次到店" for o, k in units.shared_orders])
    if units.missing_order_rows:
        q.one("missing_order_id",
              f"{units.missing_order_rows} 行到店记录没有工单号，按到店日期计次（同一天已有工单的并入该工单）",
              row=units.first_missing_order_row)
    if units.name_conflicts:
        q.rows("id_name_conflict", None, [u for u, _ in units.name_conflicts],
               [f"同一客户编号对应多个姓名：{'、'.join(names)}，已按一个客户统计，请核对"
                for _, names in units.name_conflicts])


def _score(values: dict[str, np.ndarray], model: RfmModel, edges: Edges | None, n: int,
           q: _Quality) -> tuple[dict[str, np.ndarray], Edges, str, dict[str, Any] | None]:
    """Scores per dimension, the edges applied, the binning and the small-population note."""
    if edges is not None:
        return {dim: edges.score(dim, values[dim]) for dim in DIMENSIONS}, edges, "frozen", None
    if model.binning == "thresholds":
        th = model.thresholds
        return {dim: th.score(dim, values[dim]) for dim in DIMENSIONS}, th, "thresholds", None
    scores = {dim: quantile_scores(values[dim], _HIGHER_IS_BETTER[dim]) for dim in DIMENSIONS}
    used = Edges(**{dim: _edges_from_scores(values[dim], scores[dim], _HIGHER_IS_BETTER[dim])  # type: ignore[arg-type]
                    for dim in DIMENSIONS}, source="quantile", monetary_basis=model.monetary)
    _note_quantile_limits(values, scores, n, q, model.quantile_min_customers)
    small = _small_population(values, n, model) if 0 < n < model.quantile_min_customers else None
    return scores, used, "quantile", small


def _note_quantile_limits(values: dict[str, np.ndarray], scores: dict[str, np.ndarray], n: int,
                          q: _Quality, min_customers: int = N_SCORES) -> None:
    if 0 < n < max(min_customers, N_SCORES):
        unreachable = "，最高分达不到 5" if n < N_SCORES else ""
        q.one("small_sample", f"只有 {n} 位客户（少于 {max(min_customers, N_SCORES)} 位），按本次数据的分位数打分不可靠"
                              f"（一位客户的变化就会挪动别人的分数{unreachable}）；建议改用固定阈值"
                              "（模型 [thresholds]，binning = \"thresholds\"）")
    if n < N_SCORES:
        return
    for dim in DIMENSIONS:
        present = np.bincount(scores[dim], minlength=N_SCORES + 1)[1:]
        empty = [str(k) for k in range(1, N_SCORES + 1) if present[k - 1] == 0]
        if not empty:
            continue
        vals, counts = np.unique(values[dim], return_counts=True)
        top = int(np.argmax(counts))
        q.one("ties", f"{_DIM_LABEL[dim]}：{counts[top] / n:.0%} 的客户数值相同"
                      f"（{_fmt_number(vals[top])}{_DIM_UNIT[dim]}），并列同分，"
                      f"{'、'.join(empty)} 分无人")


def _small_population(values: dict[str, np.ndarray], n: int, model: RfmModel) -> dict[str, Any]:
    """What a small run should be told: the model's fixed thresholds and what they give
    on this data (customers per type), so the suggestion can be judged before use."""
    th = model.thresholds
    sc = {dim: th.score(dim, values[dim]) for dim in DIMENSIONS}
    got = rfm_types(sc["recency_days"], sc["frequency"], sc["monetary"], model)
    counts = np.bincount(np.asarray(got, dtype=np.int64), minlength=max(t.no for t in model.types) + 1)
    return {
        "customers": int(n),
        "min_customers": int(model.quantile_min_customers),
        "thresholds": th.to_dict(),
        "with_thresholds": [{"type": t.no, "type_name": t.name_zh, "customers": int(counts[t.no])}
                            for t in model.types],
    }


def _customers_frame(model: RfmModel, unit_col: str, unit_ids: pd.Index, latest: dict,
                     last_day: np.ndarray, recency: np.ndarray, frequency: np.ndarray,
                     monetary: np.ndarray, revenue: np.ndarray, r: np.ndarray, f: np.ndarray,
                     m: np.ndarray, type_no: np.ndarray, kol: np.ndarray) -> pd.DataFrame:
    n = len(unit_ids)
    # Lists are read per type, biggest spenders first; the id breaks ties so the order
    # never depends on the input's row order.
    id_rank = np.empty(n, dtype=np.int64)
    id_rank[np.asarray(unit_ids.argsort())] = np.arange(n)
    perm = np.lexsort((id_rank, -monetary, type_no))

    by_no = {t.no: t for t in model.types}
    nos = np.array(sorted(by_no))
    pos = np.searchsorted(nos, type_no[perm])
    rp, fp, mp = r[perm], f[perm], m[perm]
    combo = (rp.astype(np.int16) - 1) * 25 + (fp.astype(np.int16) - 1) * 5 + (mp.astype(np.int16) - 1)
    labels = [f"{a}-{b}-{c}" for a in range(1, 6) for b in range(1, 6) for c in range(1, 6)]

    def text(arr: Any) -> Any:
        return (arr if isinstance(arr, pd.api.extensions.ExtensionArray) and
                isinstance(arr.dtype, pd.StringDtype) else pd.array(arr, dtype="str")).take(perm)

    def text_of(choices: list[str], idx: np.ndarray) -> Any:
        # repeat a few labels many times without building a Python object per row
        return pd.array(pa.array(choices, type=pa.large_string()).take(pa.array(idx)), dtype="str")

    data: dict[str, Any] = {unit_col: text(unit_ids.array)}
    for col in (["customer_id"] if unit_col == "vin" else []) + ["name", "phone"]:
        data[col] = text(latest[col]) if col in latest else pd.array([pd.NA] * n, dtype="str")
    data.update({
        "last_visit": last_day[perm].astype("datetime64[D]").astype("datetime64[s]"),
        "recency_days": recency[perm],
        "frequency": frequency[perm],
        "monetary": monetary[perm],
        "revenue": revenue[perm],
        "r": rp, "f": fp, "m": mp,
        "rfm": text_of(labels, combo),
        "type_no": type_no[perm].astype(np.int64),
        "type_name": text_of([by_no[k].name_zh for k in nos], pos),
        "strategy": text_of([by_no[k].strategy_zh for k in nos], pos),
        "kol": kol[perm],
        "kol_flag": kol[perm] & (mp < model.high_min),
        "red_alert": np.isin(type_no[perm], list(model.red_alert_types)),
    })
    return pd.DataFrame(data)


def _summary(model: RfmModel, customers: pd.DataFrame) -> pd.DataFrame:
    n = len(customers)
    counts = customers.groupby("type_no").size()
    rev = customers.groupby("type_no")["revenue"].sum()
    total_rev = float(customers["revenue"].sum())
    rows = []
    for t in model.types:
        k = int(counts.get(t.no, 0))
        share = 100 * k / n if n else 0.0
        revenue = round(float(rev.get(t.no, 0.0)), 2)
        lo, hi = t.share_pct
        flag = None
        if n >= max(model.share_flag_min_customers, 1):
            if share > hi * (1 + model.share_far_relative):
                flag = "above"
            elif share < lo * (1 - model.share_far_relative):
                flag = "below"
        rows.append({
            "type_no": t.no, "type_name": t.name_zh, "type_name_en": t.name_en,
            "customers": k, "share_pct": round(share, 2), "revenue": revenue,
            "revenue_share_pct": round(100 * revenue / total_rev, 2) if total_rev > 0 else None,
            "usual_share_lo": lo, "usual_share_hi": hi,
            "usual_profit_lo": t.profit_pct[0], "usual_profit_hi": t.profit_pct[1],
            "share_flag": flag, "red_alert": t.no in model.red_alert_types,
        })
    return pd.DataFrame(rows)
