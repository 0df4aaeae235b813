"""The closed loop's pure arithmetic (SPEC B): follow-up dates, whether an intervention
worked, and win-back (still spending within ``months`` after the intervention)."""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from tierctl.churn.model import ChurnModel


def followup_dates(level: str, intervention_date: date, model: ChurnModel) -> list[date]:
    """Follow-up dates for a level (key or label) counted from the intervention date."""
    lv = model.level(level)
    return [intervention_date + timedelta(days=d) for d in lv.followup_days]


def intervention_effect(score_before: int | float | tuple[date, int | float],
                        scores_after: Iterable[tuple[date, int | float]],
                        within_days: int = 30, drop: int = 20, *,
                        intervention_date: date | None = None) -> bool:
    """Did the intervention work: a score ≥ ``drop`` points lower within ``within_days``?

    ``score_before`` is the score at the intervention, either ``(date, score)`` or a
    number together with ``intervention_date``.  Only scores dated after the
    intervention and at most ``within_days`` later count (the model's defaults are in
    ``model.effect_within_days`` / ``model.effect_drop``).
    """
    if isinstance(score_before, tuple):
        start, before = score_before
    else:
        if intervention_date is None:
            raise ValueError("score_before is a number: pass intervention_date too")
        start, before = intervention_date, score_before
    end = start + timedelta(days=within_days)
    b = Decimal(str(before))
    return any(start < d <= end and b - Decimal(str(s)) >= drop for d, s in scores_after)


def add_months(d: date, months: int) -> date:
    """Same day ``months`` later, clamped to the month end (31 Aug + 6 → 28/29 Feb)."""
    y, m = divmod(d.month - 1 + months, 12)
    y += d.year
    m += 1
    return date(y, m, min(d.day, calendar.monthrange(y, m)[1]))


def won_back(intervention_date: date, spending: Iterable[date | tuple[date, float]],
             months: int = 6, *, as_of: date | None = None) -> bool | None:
    """Still spending within ``months`` after the intervention (the win-back definition).

    ``spending`` holds dates of paid visits or ``(date, amount)`` pairs (amount ≤ 0,
    e.g. a refund, does not count).  Spending on the intervention day itself does not
    count: it is usually the intervention visit.  With ``as_of`` before the window ends
    and no spending yet, the answer is ``None`` (not decided yet).
    """
    end = add_months(intervention_date, months)
    for item in spending:
        d, amount = (item, 1) if isinstance(item, date) else item
        if intervention_date < d <= end and amount > 0:
            return True
    if as_of is not None and as_of < end:
        return None
    return False


def win_back_flags(interventions: pd.DataFrame, transactions: pd.DataFrame, months: int = 6, *,
                   as_of: date | None = None) -> pd.Series:
    """Vectorised :func:`won_back` for many interventions.

    ``interventions``: ``customer_id``, ``intervention_date``; ``transactions``:
    ``customer_id``, ``date`` and optionally ``amount``.  Returns a nullable boolean
    Series aligned with ``interventions`` (NA = window still open and nothing spent).
    """
    iv = interventions[["customer_id", "intervention_date"]].copy()
    iv["_i"] = np.arange(len(iv))
    iv["_start"] = pd.to_datetime(iv["intervention_date"])
    iv["_end"] = [pd.Timestamp(add_months(d.date(), months)) for d in iv["_start"]]
    tx = transactions.copy()
    tx["_d"] = pd.to_datetime(tx["date"])
    if "amount" in tx.columns:
        tx = tx[pd.to_numeric(tx["amount"]) > 0]
    j = iv.merge(tx[["customer_id", "_d"]], on="customer_id", how="inner")
    hit = j[(j["_d"] > j["_start"]) & (j["_d"] <= j["_end"])]["_i"].unique()
    res = pd.Series(False, index=interventions.index, dtype="boolean")
    res.iloc[np.asarray(hit, dtype=np.int64)] = True
    if as_of is not None:
        open_ = (iv["_end"] > pd.Timestamp(as_of)).to_numpy() & ~res.to_numpy(dtype=bool)
        res[open_] = pd.NA
    return res


def rows_per_level(interventions: pd.DataFrame, model: ChurnModel) -> dict[str, dict[str, Any]]:
    """Aggregate per-intervention records (``level``, ``won_back``, ``cost``) for ROI."""
    out: dict[str, dict[str, Any]] = {}
    for lv in model.levels:
        keys = {lv.key, lv.label, f"{lv.label}风险"}
        sub = interventions[interventions["level"].isin(keys)]
        if len(sub) == 0:
            continue
        out[lv.key] = {"customers": len(sub), "intervened": len(sub),
                       "won_back": int(sub["won_back"].fillna(False).astype(bool).sum()),
                       "cost": Decimal(str(pd.to_numeric(sub["cost"]).sum()))}
    return out


# =====================================================================================
