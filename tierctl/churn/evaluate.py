"""Evaluating a period's interventions against the store: who was at risk when, whether
each intervention worked (effect), whether the customer came back (win-back) and
whether alerts were answered in time (预警响应率).  See :mod:`tierctl.churn.report`."""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tierctl.churn.effect import add_months, win_back_flags
from tierctl.churn.history import _RiskTable, _rows_at
from tierctl.churn.model import ChurnModel

if TYPE_CHECKING:
    from tierctl.store import SnapshotInfo, Store


def _at_risk_days(model: ChurnModel, risk: _RiskTable, snaps: Sequence[SnapshotInfo], start: dt.date,
                  end: dt.date) -> pd.DataFrame:
    """Per customer at risk on some day of the period: the highest level seen and the
    first at-risk appearance (date, level, that run's deadline for the level)."""
    keys_order = np.array([lv.key for lv in model.levels], dtype=object)
    inside = np.array([start <= s.as_of <= end for s in snaps], dtype=bool)
    m = inside[risk.pos] if len(risk.pos) else np.zeros(0, bool)
    code, rank, pos = risk.code[m], risk.rank[m], risk.pos[m]
    if not len(code):
        return pd.DataFrame({"customer_key": pd.Series(dtype=object), "max_level": pd.Series(dtype=object),
                             "first_day": pd.Series(dtype=object), "first_level": pd.Series(dtype=object),
                             "deadline": pd.Series(dtype="datetime64[ns, UTC]")})
    best = np.full(len(risk.keys), -1, dtype=np.int64)
    np.maximum.at(best, code, rank)
    # rows are in snapshot (as-of) order: a customer's first row is the first appearance
    seen, first = np.unique(code, return_index=True)
    fpos, frank = pos[first], rank[first]
    return pd.DataFrame({
        "customer_key": risk.keys.to_numpy()[seen],
        "max_level": keys_order[best[seen]],
        "first_day": pd.Series([snaps[p].as_of for p in fpos], dtype=object),
        "first_level": keys_order[frank],
        "deadline": pd.to_datetime(pd.Series([risk.deadlines[p].get(r) for p, r in zip(fpos, frank, strict=True)],
                                             dtype=object), utc=True, format="ISO8601"),
    })



def _effect(store: Store, model: ChurnModel, iv: pd.DataFrame, snaps: Sequence[SnapshotInfo],
            risk: _RiskTable) -> pd.DataFrame:
    """worked / not_worked / pending / no_data per intervention, and the lowest score seen
    within the window (look-ups stop once the effect is proven, so for a worked one it
    is the lowest score found, not necessarily the lowest of the window).

    Scores of at-risk days come from the snapshots' compact lists; a day the customer is
    not on them (low, or not in that export) is looked up by (snapshot, customer) —
    first one such day each (a score ≤ 40 already proves a fall from 61+), then all."""
    iv = iv.copy()
    iv["score_after"] = np.nan
    iv["effect"] = pd.Series(["no_data"] * len(iv), dtype=object)
    if not len(iv):
        return iv
    if not snaps:
        iv["effect"] = "pending"
        return iv
    within, drop = model.effect_within_days, model.effect_drop
    data_as_of = snaps[-1].as_of
    n = len(iv)
    d0 = list(iv["date"])
    # every (intervention, window day)
    days = np.array([s.as_of for s in snaps], dtype="datetime64[D]")
    lo = np.searchsorted(days, np.array(d0, dtype="datetime64[D]"), side="right")
    hi = np.searchsorted(days, np.array([d + dt.timedelta(days=within) for d in d0], dtype="datetime64[D]"),
                         side="right")
    counts = np.maximum(hi - lo, 0)
    ii = np.repeat(np.arange(n), counts)
    wpos = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)]) if counts.sum() \
        else np.zeros(0, np.int64)
    code = risk.keys.get_indexer(iv["customer_key"].astype(str).to_numpy(dtype=object))[ii]
    row = risk.lookup_index().get_indexer(wpos * (len(risk.keys) + 1) + code)
    row[code < 0] = -1
    score = np.where(row >= 0, risk.score[np.maximum(row, 0)] if len(risk.score) else np.nan, np.nan)
    threshold = iv["score_before"].to_numpy(dtype=float) - drop
    best = np.full(n, np.nan)
    if len(ii):
        ok = ~np.isnan(score)
        np.fmin.at(best, ii[ok], score[ok])
    worked = ~np.isnan(best) & (best <= threshold)
    low_max = model.levels[0].max
    todo = pd.DataFrame({"_i": ii[np.isnan(score)], "pos": wpos[np.isnan(score)]})
    keys = iv["customer_key"].to_numpy(dtype=object)
    for rnd in range(2):
        todo = todo[~worked[todo["_i"].to_numpy()]]
        if not len(todo):
            break
        if rnd == 0:  # one day each where a low score alone would prove the effect, all days for the rest
            proves = threshold[todo["_i"].to_numpy()] >= low_max
            batch = pd.concat([todo[proves].drop_duplicates("_i"), todo[~proves]])
        else:
            batch = todo
        wanted: dict[int, list[str]] = {}
        for p, i in zip(batch["pos"], batch["_i"], strict=True):
            wanted.setdefault(snaps[int(p)].id, []).append(keys[i])
        got = _rows_at(store, wanted, {x.id: x for x in snaps})
        if len(got):
            sid_pos = {s.id: p for p, s in enumerate(snaps)}
            g = pd.DataFrame({"pos": got["snapshot_id"].map(sid_pos).to_numpy(dtype=np.int64),
                              "key": got["customer_key"].to_numpy(dtype=object), "score": got["score"].to_numpy()})
            j = batch.assign(key=keys[batch["_i"].to_numpy()]).merge(g, on=["pos", "key"], how="inner")
            if len(j):
                np.fmin.at(best, j["_i"].to_numpy(dtype=np.int64), j["score"].to_numpy(dtype=float))
        worked = ~np.isnan(best) & (best <= threshold)
        todo = todo.drop(batch.index)
    iv["score_after"] = best
    open_ = np.array([d + dt.timedelta(days=within) > data_as_of for d in d0], dtype=bool)
    state = np.where(worked, "worked", np.where(open_, "pending", np.where(np.isnan(best), "no_data", "not_worked")))
    iv["effect"] = state.astype(object)
    return iv


def _win_back(store: Store, model: ChurnModel, iv: pd.DataFrame, visits: pd.DataFrame | None,
              snaps: Sequence[SnapshotInfo]) -> tuple[pd.DataFrame, dt.date | None]:
    """won / lost / pending per intervention (see the module notes), and the date the
    evidence reaches (None when there is none at all).

    A snapshot's last-visit date is the latest visit up to its day, so the last snapshot
    inside the window (and the first after it, for a gap at the window's end) tells
    whether the customer came back: two rows per customer, never the whole history."""
    iv = iv.copy()
    iv["last_visit_seen"] = None
    iv["won_back"] = pd.Series(["pending"] * len(iv), dtype=object)
    if not len(iv):
        return iv, (snaps[-1].as_of if snaps else None)
    months = model.winback_months
    ends = [add_months(d0, months) for d0 in iv["date"]]
    parts = []
    as_of: dt.date | None = None
    if snaps:
        days = [s.as_of for s in snaps]
        wanted: dict[int, list[str]] = {}
        for k, d0, end in zip(iv["customer_key"], iv["date"], ends, strict=True):
            i = bisect.bisect_right(days, end)  # snaps[i-1] is the last on or before the window's end
            if i > 0 and days[i - 1] > d0:
                wanted.setdefault(snaps[i - 1].id, []).append(k)
            if i < len(snaps):
                wanted.setdefault(snaps[i].id, []).append(k)
        got = _rows_at(store, wanted, {x.id: x for x in snaps}, "last_visit")
        if got["last_visit"].notna().any():
            lv = got.dropna(subset=["last_visit"])
            parts.append(pd.DataFrame({"customer_id": lv["customer_key"].astype(str).to_numpy(dtype=object),
                                       "date": pd.to_datetime(lv["last_visit"].astype(str).str[:10],
                                                              errors="coerce")}))
        if any(c.get("name") == "last_visit" for s in snaps[-1:] for c in (s.layout or [])):
            as_of = days[-1]  # the exports carry last visits: the evidence reaches the latest one
    if visits is not None and len(visits):
        v = pd.DataFrame({"customer_id": visits["customer_id"].astype(str).to_numpy(dtype=object),
                          "date": pd.to_datetime(visits["date"])})
        if "amount" in visits:
            v["amount"] = pd.to_numeric(visits["amount"], errors="coerce").fillna(1.0).to_numpy()
        parts.append(v)
        vmax = v["date"].max()
        if pd.notna(vmax):
            as_of = max(as_of, vmax.date()) if as_of else vmax.date()
    if as_of is None:
        return iv, None
    tx = pd.concat(parts, ignore_index=True).dropna(subset=["date"]) if parts else pd.DataFrame(
        {"customer_id": pd.Series(dtype=object), "date": pd.Series(dtype="datetime64[ns]")})
    if "amount" in tx:
        tx["amount"] = tx["amount"].fillna(1.0)
    d0 = pd.to_datetime(pd.Series(iv["date"].to_numpy(), dtype=object))
    ints = pd.DataFrame({"customer_id": iv["customer_key"].astype(str).to_numpy(dtype=object),
                         "intervention_date": d0})
    flags = win_back_flags(ints, tx, months, as_of=as_of)
    iv["won_back"] = np.where(flags.isna(), "pending", np.where(flags.fillna(False), "won", "lost")).astype(object)
    # the latest spending seen inside the window, for the detail sheet
    paid = tx[tx["amount"] > 0] if "amount" in tx else tx
    j = paid.merge(pd.DataFrame({"customer_id": ints["customer_id"], "_d0": d0, "_end": pd.to_datetime(ends),
                                 "_i": np.arange(len(iv))}), on="customer_id")
    j = j[(j["date"] > j["_d0"]) & (j["date"] <= j["_end"])]
    if len(j):
        last = j.groupby("_i")["date"].max()
        seen = np.full(len(iv), None, dtype=object)
        seen[last.index.to_numpy()] = [d.date() for d in last]
        iv["last_visit_seen"] = seen
    return iv, as_of


def _alert_response(seen: pd.DataFrame, contacts: pd.DataFrame, now: dt.datetime,
                    tz: dt.tzinfo | None) -> tuple[int, int]:
    """(alerts answered by their deadline, alerts answered or past their deadline): an
    alert is a customer's first at-risk appearance in the period."""
    f = seen[seen["deadline"].notna()] if len(seen) else seen
    if not len(f):
        return (0, 0)
    first = pd.Series(dtype="datetime64[ns, UTC]")
    if len(contacts):
        c = pd.DataFrame({"customer_key": contacts["customer_key"].to_numpy(dtype=object),
                          "at": pd.to_datetime(contacts["at"], utc=True)})
        j = c.merge(f[["customer_key", "first_day"]], on="customer_key")
        # only contacts from the alert's day on answer it
        day_start = pd.to_datetime(pd.Series(j["first_day"].to_numpy(), dtype=object))
        day_start = day_start.dt.tz_localize(tz).dt.tz_convert("UTC") if tz is not None else day_start.dt.tz_localize("UTC")
        j = j[j["at"].to_numpy() >= day_start.to_numpy()]
        first = j.groupby("customer_key")["at"].min()
    fc = f["customer_key"].map(first)
    answered = fc.notna() & (fc <= f["deadline"])
    now_utc = pd.Timestamp(now).tz_convert("UTC")
    due = answered | (f["deadline"] <= now_utc)
    return int(answered.sum()), int(due.sum())


# =====================================================================================
# The workbook (native Excel charts)
