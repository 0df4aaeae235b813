"""Scoring a churn export (SPEC B) — pure: no I/O, no clock.

:func:`score_churn` gives every customer a 0–100 risk score, the reasons behind it, a
level (低 / 中 / 高 / 极高), who must act and by when, the budget, a plan chosen by churn
reason (and, for 中, an incentive by customer type) and the follow-up dates.  ``as_of``
and ``now`` are parameters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tierctl.churn.plans import (
    _mask_lists,
    _plans,
    _reason_masks,
    _type_index,
    _unknown_label_warnings,
)
from tierctl.churn.prepare import _prepare, check_ids
from tierctl.churn.signals import _SCALE, _Ctx, _fmt_num, _gt
from tierctl.errors import InputError

if TYPE_CHECKING:
    from tierctl.churn.model import ChurnModel


@dataclass
class ChurnResult:
    """The scored customers plus what could not be evaluated.

    ``customers`` has one row per input row (input order) with: ``customer_id``,
    ``risk_score``, ``score_source`` (``given`` / ``signals``), ``level_key``, ``level``,
    ``owner_key``, ``owner``, ``value_segment``, ``respond_by`` (datetime or None),
    ``respond_label``, ``budget_min``, ``budget_max``, ``plan``, ``plan_basis``,
    ``churn_reasons`` (list of reason keys), ``customer_type``, ``reasons`` (list of
    strings), ``followups`` (list of dates), ``priority`` (1 = first when hands are
    short), ``must_intervene``, ``_row``, and the declared input columns passed through.
    """

    as_of: date
    now: datetime
    model_name: str
    customers: pd.DataFrame
    unavailable_signals: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types, customers in priority order (row order never matters)."""
        df = self.customers.sort_values("priority", kind="stable")
        # Deadlines and follow-up lists are shared per level: convert each distinct one once.
        iso: dict[Any, Any] = {}

        def when(x: Any) -> str | None:
            if x is None or x is pd.NaT:
                return None
            if x not in iso:
                iso[x] = x.isoformat()
            return iso[x]

        fol: dict[int, list[str]] = {}

        def dates(xs: list[date]) -> list[str]:
            k = id(xs)
            if k not in fol:
                fol[k] = [d.isoformat() for d in xs]
            return list(fol[k])

        score = df["risk_score"].to_numpy()
        scores = score.tolist() if score.dtype.kind in "iu" else [_json_num(v) for v in score]
        cols = zip(df["customer_id"].astype(str).tolist(), scores, df["level"].tolist(),
                   df["owner"].tolist(), df["respond_by"].tolist(), df["plan"].tolist(),
                   df["reasons"].tolist(), df["level_key"].tolist(), df["budget_min"].tolist(),
                   df["budget_max"].tolist(), df["followups"].tolist(), df["value_segment"].tolist(),
                   df["priority"].tolist(), strict=True)
        out = [{"customer_id": cid, "risk_score": sc, "level": lvl, "owner": own,
                "respond_by": when(rb), "plan": plan, "reasons": list(rs), "level_key": lk,
                "budget": [bmin, bmax], "followups": dates(fu), "value_segment": seg, "priority": pr}
               for cid, sc, lvl, own, rb, plan, rs, lk, bmin, bmax, fu, seg, pr in cols]
        return {"as_of": self.as_of.isoformat(), "model": self.model_name, "customers": out,
                "unavailable_signals": list(self.unavailable_signals), "warnings": list(self.warnings)}


def _json_num(v: Any) -> int | float:
    f = float(v)
    return int(f) if f.is_integer() else f



def _headers(frame: pd.DataFrame, model: ChurnModel, headers: Mapping[str, str] | None = None) -> dict[str, str]:
    """Column headers as the user's file spells them: the ingest's ``Export.headers``
    (or ``frame.attrs["headers"]``), else the model's first alias."""
    given = headers if headers is not None else (
        frame.attrs.get("headers", {}) if isinstance(frame.attrs.get("headers"), dict) else {})
    return {c: given.get(c, spec.display) for c, spec in model.columns.items()}



def _add_days(now: datetime, days: int, working: bool) -> tuple[datetime, bool]:
    """``now`` + ``days`` (calendar or China's working days) → (deadline, estimated?)."""
    if not working:
        return now + timedelta(days=days), False
    import chinese_calendar  # only needed when the option is on

    estimated = False
    d, left = now, days
    while left:
        d += timedelta(days=1)
        try:
            work = chinese_calendar.is_workday(d.date())
        except NotImplementedError:
            # The official calendar is published a year ahead; beyond it assume Mon–Fri.
            work, estimated = d.weekday() < 5, True
        if work:
            left -= 1
    return d, estimated


def score_churn(frame: pd.DataFrame, model: ChurnModel, as_of: date, now: datetime, *,
                headers: Mapping[str, str] | None = None, path: Path | str | None = None) -> ChurnResult:
    """Score every customer of an export; pure and vectorised.

    ``frame`` uses the model's canonical column names, as the shared ingest produces
    them: ``read_export(path, model.ingest_columns)`` → ``Export.frame`` (with ``_row`` =
    Excel row; without ``_row`` rows are numbered from 2); pass ``Export.headers`` and
    ``Export.path`` so that errors name the file and its own column headers.  A
    ``risk_score`` cell, when present, is used as given (validated against the model's
    range); otherwise the score is the capped sum of the signal points.  ``as_of`` is
    the day the export describes; ``now`` is when the alert is raised (deadlines count
    from it).  Raises :class:`InputError` listing every bad cell with row and column.
    """
    if "customer_id" not in frame.columns:
        raise InputError("缺少「客户编号」列", path=path, hint="导出表需要一列客户编号（客户编号 / 客户ID / customer_id）")
    n = len(frame)
    rows = frame["_row"].to_numpy(dtype=np.int64) if "_row" in frame.columns else np.arange(n, dtype=np.int64) + 2
    headers = _headers(frame, model, headers)
    ids = frame["customer_id"].reset_index(drop=True).astype("string")
    check_ids(ids, rows, headers["customer_id"], path)
    ctx = _prepare(frame, model, as_of, rows, headers, path)

    score, reasons, use_given, unavailable = _scores(frame, model, ctx, headers)
    maxes = np.array([lv.max for lv in model.levels], dtype=float)
    li = np.minimum(np.searchsorted(maxes, score, side="left"), len(model.levels) - 1)
    high, spend_f = _high_value(ctx, model)
    respond_arr, follow, estimated = _deadlines(model, as_of, now)
    out = _assign(model, ctx, li, high)
    must = high & np.isin(out["level_key"].to_numpy(dtype=object), list(model.must_levels))
    # customer id (unique) breaks the last ties, as an integer code: sorting text is slow
    id_code = pd.factorize(ids.fillna(""), sort=True)[0]
    order = np.lexsort((id_code, -spend_f, -score, ~must))
    priority = np.empty(n, dtype=np.int64)
    priority[order] = np.arange(1, n + 1)

    warnings = []
    if estimated:
        warnings.append("官方节假日日历暂无该年份数据，工作日按周一至周五估算")
    warnings += _unknown_label_warnings(ctx, model, rows, headers)

    all_int = bool(np.all(score == np.floor(score)))
    out.insert(0, "customer_id", ids)
    out.insert(1, "risk_score", score.astype(np.int64) if all_int else score)
    out.insert(2, "score_source", np.where(use_given, "given", "signals"))
    out.insert(8, "respond_by", pd.Series(respond_arr[li], dtype=object))
    out.insert(9, "respond_label", np.array([lv.respond_label for lv in model.levels], dtype=object)[li])
    out.insert(10, "budget_min", np.array([lv.budget[0] for lv in model.levels], dtype=np.int64)[li])
    out.insert(11, "budget_max", np.array([lv.budget[1] for lv in model.levels], dtype=np.int64)[li])
    out["reasons"] = pd.Series(reasons, dtype=object)
    out["followups"] = pd.Series(follow[li], dtype=object)
    out["priority"] = priority
    out["must_intervene"] = must
    out["_row"] = rows
    for col in model.columns:
        if col in frame.columns and col not in out.columns:
            out[col] = frame[col].reset_index(drop=True)  # keeps the ingest's dtype
    return ChurnResult(as_of, now, model.name, out, unavailable, warnings)


def _scores(frame: pd.DataFrame, model: ChurnModel, ctx: _Ctx,
            headers: Mapping[str, str]) -> tuple[np.ndarray, list[list[str]], np.ndarray, list[str]]:
    """Signals → points per group → score; the reasons per row; which rows took the
    given score; the signals that could not be evaluated."""
    n = ctx.n
    unavailable: list[str] = []
    groups: dict[str, list[int]] = {}
    pts_cols: list[np.ndarray] = []
    reason_cols: list[np.ndarray] = []
    for sig in model.signals:
        missing = [c for c in sig.needs() if c not in frame.columns]
        if missing:
            unavailable.append(f"{sig.label}（缺少列：{'、'.join(headers[c] for c in missing)}）")
            continue
        p, r = sig.evaluate(ctx)
        groups.setdefault(sig.group, []).append(len(pts_cols))
        pts_cols.append(p)
        reason_cols.append(r.to_numpy(dtype=object))
    total = np.zeros(n, dtype=np.int64)
    for members in groups.values():
        total += _group_points(members, pts_cols, reason_cols)
    computed = np.minimum(total, model.score_max)

    given = ctx.numbers.get("risk_score")
    use_given = ~np.isnan(given) if given is not None else np.zeros(n, dtype=bool)
    score = np.where(use_given, given if given is not None else 0, computed).astype(float)

    if reason_cols:
        mat = np.column_stack(reason_cols).tolist()  # nested lists iterate faster than rows
        reasons = [[x for x in row if x is not None] for row in mat]
    else:
        reasons = [[] for _ in range(n)]
    if use_given.any():
        gtext = _fmt_num(score[use_given])
        gi = np.flatnonzero(use_given)
        for i, t in zip(gi.tolist(), gtext, strict=True):
            reasons[i] = [model.given_reason.format(score=t)]
    return score, reasons, use_given, unavailable


def _group_points(members: list[int], pts_cols: list[np.ndarray], reason_cols: list[np.ndarray]) -> np.ndarray:
    """Points of a group of signals (the best one counts once); a signal that fired but
    lost within its group is shown, scored 0 (``reason_cols`` updated in place)."""
    if len(members) == 1:
        return pts_cols[members[0]]
    block = np.column_stack([pts_cols[i] for i in members])
    win = block.argmax(axis=1)  # first of the largest: model-file order breaks ties
    for j, i in enumerate(members):
        loser = (pts_cols[i] > 0) & (win != j)
        if loser.any():
            texts_i = reason_cols[i].copy()
            texts_i[loser] = pd.Series(texts_i[loser], dtype=object).str.replace(
                r": \+\d+$", "", regex=True).to_numpy(dtype=object) + "（与同组信号不重复计分）: +0"
            reason_cols[i] = texts_i
    return block.max(axis=1)


def _high_value(ctx: _Ctx, model: ChurnModel) -> tuple[np.ndarray, np.ndarray]:
    """(high value per row, annual spend with -1 for unknown — the triage's tie-break)."""
    if "annual_spend" in ctx.numbers:
        spend, ok = ctx.scaled("annual_spend")
        # "high value" is strictly above the threshold (年消费 > 8000)
        high = ok & _gt(spend, Fraction(model.high_value_annual_spend) * _SCALE)
        return high, np.where(ok, ctx.numbers["annual_spend"], -1.0)
    return np.zeros(ctx.n, dtype=bool), np.full(ctx.n, -1.0)


def _deadlines(model: ChurnModel, as_of: date, now: datetime) -> tuple[np.ndarray, np.ndarray, bool]:
    """Per level (computed once): the response deadline, the follow-up dates, and
    whether a working-day count had to be estimated."""
    estimated = False
    respond: list[datetime | None] = []
    for lv in model.levels:
        if lv.respond_hours is not None:
            respond.append(now + timedelta(hours=lv.respond_hours))
        elif lv.respond_days is not None:
            when, est = _add_days(now, lv.respond_days, model.count_working_days)
            estimated |= est
            respond.append(when)
        else:
            respond.append(None)
    respond_arr = np.array(respond + [None], dtype=object)[:-1]
    follow = np.empty(len(model.levels), dtype=object)
    for i, lv in enumerate(model.levels):
        follow[i] = [as_of + timedelta(days=d) for d in lv.followup_days]
    return respond_arr, follow, estimated


def _assign(model: ChurnModel, ctx: _Ctx, li: np.ndarray, high: np.ndarray) -> pd.DataFrame:
    """Level, owner (by value, raised by a reason's owner), segment, plan and its basis,
    churn reasons and customer type per row."""
    level_keys = np.array([lv.key for lv in model.levels], dtype=object)
    level_labels = np.array([lv.label for lv in model.levels], dtype=object)
    rank_of = {k: r for k, (r, _) in model.owners.items()}
    table = np.zeros((2, len(model.levels)), dtype=np.int64)
    for s_i, seg in enumerate(("ordinary", "high")):
        for l_i, lv in enumerate(model.levels):
            base = rank_of[lv.owner]
            floor = model.owner_matrix.get((seg, lv.key))
            table[s_i, l_i] = max(base, rank_of[floor]) if floor else base
    value_rank = table[high.astype(np.int64), li]  # 0 ordinary, 1 high

    reason_mask, reason_basis = _reason_masks(ctx, model)
    type_idx = _type_index(ctx, model)
    plan, basis, owner_rank = _plans(model, li, value_rank, type_idx, reason_mask, reason_basis)
    by_rank = sorted(model.owners, key=lambda k: rank_of[k])
    type_keys = np.array([t.key for t in model.customer_types] + [None], dtype=object)
    return pd.DataFrame({
        "level_key": level_keys[li],
        "level": level_labels[li],
        "owner_key": np.array(by_rank, dtype=object)[owner_rank],
        "owner": np.array([model.owners[k][1] for k in by_rank], dtype=object)[owner_rank],
        "value_segment": np.where(high, "high", "ordinary").astype(object),
        "plan": plan,
        "plan_basis": basis,
        "churn_reasons": _mask_lists(reason_mask, np.array([r.key for r in model.reasons], dtype=object)),
        "customer_type": type_keys[type_idx],
    })


def flat_frame(result: ChurnResult) -> pd.DataFrame:
    """The CSV shape: one row per customer in priority order, lists joined."""
    c = result.customers.sort_values("priority", kind="stable")
    cols: dict[str, Any] = {}
    for k in ("customer_id", "name", "phone"):
        cols[k] = c[k] if k in c else pd.Series([None] * len(c), index=c.index)
    for k in ("risk_score", "level", "owner", "respond_label"):
        cols[k] = c[k]
    cols["respond_by"] = [x.isoformat() if x is not None else "" for x in c["respond_by"]]
    cols["budget"] = c["budget_min"].astype(str) + "–" + c["budget_max"].astype(str)
    cols["plan"] = c["plan"]
    cols["reasons"] = ["；".join(r) for r in c["reasons"]]
    cols["followups"] = ["、".join(d.isoformat() for d in f) for f in c["followups"]]
    cols["value_segment"] = c["value_segment"]
    cols["priority"] = c["priority"]
    return pd.DataFrame(cols)


def main_reason(reasons: list[str]) -> str:
    """The reason that gave the most points (ties: the first)."""
    best, pts = "", -1
    for r in reasons:
        m = re.search(r": \+(\d+)$", r)
        p = int(m.group(1)) if m else 0
        if p > pts:
            best, pts = r, p
    return best
