"""A scored result as the snapshot stores it and back, and manual overrides applied to it (pure)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from tierctl.daily.values import OVERRIDE_ID, POLICY_COLUMNS
from tierctl.kernels.keyjoin import key_positions
from tierctl.shortage import ShortageModel, ShortageResult, parse_holds


# -- snapshot <-> result -------------------------------------------------------------------
def model_meta(model: ShortageModel) -> dict[str, Any]:
    """What a stored snapshot needs to be explained and acted on without the model
    file: dimensions and weights, tier thresholds and policy, alert rules."""
    return {
        "model": {"name": model.name, "path": str(model.path), "title": model.title, "total": model.total,
                  "scale": model.scale, "decimals": model.decimals},
        "dimensions": [{"key": d.key, "label": d.label, "weight": str(d.weight), "lo": d.lo, "hi": d.hi}
                       for d in model.dimensions],
        "tiers": [{"name": t.name, "min": str(t.min), "label": t.label, "mode": t.mode, "owner": t.owner,
                   "owner_short": t.owner_short or t.owner, "owner_role": t.owner_role,
                   "first_contact_hours": t.first_contact_hours, "cadence_days": t.cadence_days,
                   "cadence_note": t.cadence_note, "channel": t.channel, "action": t.action}
                  for t in model.tiers],
        "alerts": [{"id": a.id, "min_days": a.min_days, "recipient": a.recipient, "reason": a.reason,
                    "recipient_en": a.recipient_en, "reason_en": a.reason_en} for a in model.alerts],
        "redlist_alert": {"recipient": model.redlist_recipient, "reason": model.redlist_reason,
                          "recipient_en": model.redlist_recipient_en, "reason_en": model.redlist_reason_en},
        "escalation": [{"id": e.id, "type": e.type, "reason": e.reason} for e in model.escalation],
        "contact_policy": model.policy.to_json(),
    }


def snapshot_frame(result: ShortageResult) -> pd.DataFrame:
    """The rows to store for a scored export: every fact, dimension, reason, total and
    tier (policy columns are left out: they follow from the tier)."""
    c = result.customers
    f = c.drop(columns=[x for x in (*POLICY_COLUMNS, "score") if x in c])
    f = f.rename(columns={"key": "customer_key", "tier": "label"})
    f["score"] = c["total_scaled"].to_numpy() / result.model.scale
    for col in ("customer_id", "name", "phone"):  # an export may lack them (key = name, or id)
        if col not in f:
            f[col] = None
    return f


_NAT = np.iinfo(np.int64).min


def _utc_ns(s: pd.Series) -> np.ndarray:
    """Nanoseconds since the epoch (UTC) of a datetime column; NaT → the NaT integer."""
    t = pd.to_datetime(s, utc=True)
    return np.asarray(t.dt.as_unit("ns").array.asi8, dtype=np.int64)


def carry_forward(cur: pd.DataFrame, prev: pd.DataFrame | None, episode_start: dt.datetime,
                  pos: np.ndarray | None = None) -> pd.DataFrame:
    """Add ``first_seen`` (when the customer's current stay on the list began) and
    ``first_due`` (their first-contact deadline: the earliest any run has set).  A
    customer absent from the previous snapshot starts a new stay.  (A previous snapshot
    without these columns tells nothing about deadlines: every stay starts today.)"""
    out = cur.copy(deep=False)  # copy-on-write: the new columns never reach ``cur``
    respond = pd.to_datetime(out["respond_by"])
    tz = respond.dt.tz
    fd = _utc_ns(respond)
    fs = np.full(len(out), pd.Timestamp(episode_start).as_unit("ns").value, dtype=np.int64)
    if prev is not None and len(prev) and "first_seen" in prev and "first_due" in prev:
        if pos is None:  # each row's position in prev (−1: not there), unless the caller has it
            pos = key_positions(out["customer_key"], prev["customer_key"])
        take = np.where(pos >= 0, pos, 0)
        pfs, pfd = _utc_ns(prev["first_seen"])[take], _utc_ns(prev["first_due"])[take]
        fs = np.where((pos >= 0) & (pfs != _NAT), pfs, fs)
        fd = np.where((pos >= 0) & (pfd != _NAT) & ((pfd < fd) | (fd == _NAT)), pfd, fd)

    def stamp(ns: np.ndarray) -> pd.Series:
        t = pd.Series(pd.to_datetime(ns, utc=True), index=out.index)
        return t.dt.tz_convert(tz) if tz is not None else t

    out["first_seen"] = stamp(fs)
    out["first_due"] = stamp(fd)
    return out


def attach_policy(customers: pd.DataFrame, tiers: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Owner, channel, action and cadence from the tier (stored snapshots leave them out)."""
    f = customers
    by = {t["name"]: t for t in tiers}
    f["owner"] = f["tier"].map({k: t["owner"] for k, t in by.items()})
    f["owner_role"] = f["tier"].map({k: t["owner_role"] for k, t in by.items()})
    f["channel"] = f["tier"].map({k: t["channel"] for k, t in by.items()})
    f["action"] = f["tier"].map({k: t["action"] for k, t in by.items()})
    f["cadence_days"] = f["tier"].map({k: int(t["cadence_days"]) for k, t in by.items()}).astype("int64")
    return f


def result_from_rows(rows: pd.DataFrame, model: ShortageModel, as_of: dt.date, now: dt.datetime,
                     warnings: list[str] | None = None) -> ShortageResult:
    """Rebuild a :class:`ShortageResult` from a stored snapshot's rows (saved order kept)."""
    f = rows.rename(columns={"customer_key": "key", "label": "tier"}).copy()
    f = f.drop(columns=[c for c in ("first_seen", "first_due") if c in f])
    if "total_scaled" in f:
        f["score"] = f["total_scaled"].to_numpy() / model.scale
    tiers = [{"name": t.name, "owner": t.owner, "owner_role": t.owner_role, "channel": t.channel,
              "action": t.action, "cadence_days": t.cadence_days} for t in model.tiers]
    f = attach_policy(f, tiers)
    for col in ("escalations", "alerts", "holds"):
        if col in f:
            f[col] = f[col].fillna("")
    if "respond_by" in f:
        f["respond_by"] = pd.to_datetime(f["respond_by"])
    if "red_list" in f:
        f["red_list"] = f["red_list"].fillna(False).astype(bool)
    return ShortageResult.from_sorted(as_of=as_of, now=now, model=model, customers=f,
                                      warnings=list(warnings or []))


# -- overrides -----------------------------------------------------------------------------
def override_line(row: dict[str, Any], before: str, tz: dt.tzinfo | None = None) -> str:
    """The escalation-style line that shows a manual override as such."""
    at = row.get("created_at")
    when = at.astimezone(tz).strftime("%m-%d %H:%M") if isinstance(at, dt.datetime) and tz else (
        at.strftime("%m-%d %H:%M") if isinstance(at, dt.datetime) else "")
    who = f"{row['by']} " if row.get("by") else ""
    change = f"{before}→{row['label']}" if before != row["label"] else f"维持 {row['label']}"
    return f"{OVERRIDE_ID}: {change}（{row['reason']}；{who}{when}）"


def apply_overrides(customers: pd.DataFrame, active: pd.DataFrame, model: ShortageModel,
                    now: dt.datetime) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Set the tier of every customer with an active manual override (which holds until
    it is cleared or the customer leaves the list) and say so in ``escalations``.  An
    override that lowers the tier releases the customer's held raises (``holds``: the
    run stores none for them, so clearing the override later goes back to the model)."""
    if active is None or not len(active) or not len(customers):
        return customers, []
    ovr = {r["customer_key"]: r for r in active.to_dict("records") if r["label"] in model.tier_names}
    hit = customers["key"].isin(list(ovr)).to_numpy()
    if not hit.any():
        return customers, []
    f = customers.copy()
    applied = []
    tz = now.tzinfo
    esc = f["escalations"].to_numpy(dtype=object).copy()
    tier = f["tier"].to_numpy(dtype=object).copy()
    holds = f["holds"].to_numpy(dtype=object).copy() if "holds" in f else None
    rank_of = {t: i for i, t in enumerate(model.tier_names)}
    for i in np.flatnonzero(hit):
        o = ovr[f["key"].iat[i]]
        line = override_line(o, str(tier[i]), tz)
        rec = {"customer_key": o["customer_key"], "customer_id": o.get("customer_id"),
               "name": o.get("name"), "from": str(tier[i]), "to": o["label"], "reason": o["reason"]}
        if holds is not None and holds[i] and rank_of[o["label"]] > rank_of.get(str(tier[i]), -1):
            rec["released"] = [h["rule"] for h in parse_holds(holds[i])]
            holds[i] = ""
        applied.append(rec)
        tier[i] = o["label"]
        esc[i] = line if not esc[i] else f"{esc[i]}\n{line}"
    # the same types the scorer gives (categories), so every consumer reads them one way
    f["tier"] = pd.Categorical(tier, categories=model.tier_names)
    f["escalations"] = pd.Series(esc, index=f.index, dtype=object).fillna("").astype(str).astype("category")
    if holds is not None:
        f["holds"] = pd.Series(holds, index=f.index, dtype=object).fillna("").astype(str).astype("category")
    by = {t.name: t for t in model.tiers}
    changed = pd.Series(tier[hit], index=f.index[hit], dtype=object)
    for col, attr in (("owner", "owner"), ("owner_role", "owner_role"), ("channel", "channel"),
                      ("action", "action")):
        if col in f:
            f.loc[hit, col] = changed.map({k: getattr(t, attr) for k, t in by.items()})
    if "cadence_days" in f:
        f.loc[hit, "cadence_days"] = changed.map({k: t.cadence_days for k, t in by.items()}).astype("int64")
    if "respond_by" in f:
        hours = changed.map({k: t.first_contact_hours for k, t in by.items()}).astype("int64")
        f.loc[hit, "respond_by"] = pd.Timestamp(now) + pd.to_timedelta(hours, unit="h")
    rank = f["tier"].astype(str).map({t: i for i, t in enumerate(model.tier_names)}).astype("int64")
    f = f.assign(_r=rank).sort_values(["_r", "total_scaled", "wait_days", "key"],
                                      ascending=[True, False, False, True], kind="mergesort")
    return f.drop(columns="_r").reset_index(drop=True), applied
