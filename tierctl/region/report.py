"""``tierctl region report``: what the regional director sees of every centre in one
database — crisis level, tier counts and their trend, open and overdue alerts by
recipient, the longest-waiting customers of the region, parts one centre waits for and
another has requested or received (transfer candidates), RFM type shares and churn ROI.

Read from the store only, one centre at a time through ``Store.for_centre`` (so each
centre's figures are exactly what its own commands see).  Parameters in
``tierctl/data/region.toml``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tierctl.errors import ConfigError
from tierctl.models.loader import load_toml
from tierctl.store import Store

PARAMS = Path(__file__).resolve().parent.parent / "data" / "region.toml"
SHORTAGE, RFM, CHURN = "shortage", "rfm", "churn"


@dataclass(frozen=True)
class RegionParams:
    trend_days: int
    overdue_days: int
    worst_limit: int
    part_field: str
    received_days: int
    requested_keywords: tuple[str, ...]


def load_params(path: Path | None = None) -> RegionParams:
    p = path or PARAMS
    sec = load_toml(p).get("region")
    if not isinstance(sec, dict):
        raise ConfigError("缺少 [region] 段", path=p, key="region")

    def num(key: str, lo: int) -> int:
        v = sec.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise ConfigError(f"应为不小于 {lo} 的整数，而不是「{v}」", path=p, key=f"region.{key}")
        return v

    kw = sec.get("requested_keywords", [])
    if not isinstance(kw, list) or not all(isinstance(k, str) and k for k in kw):
        raise ConfigError("应为非空文字的列表", path=p, key="region.requested_keywords")
    field = sec.get("part_field")
    if not isinstance(field, str) or not field:
        raise ConfigError("应为快照字段名", path=p, key="region.part_field")
    return RegionParams(num("trend_days", 1), num("overdue_days", 0), num("worst_limit", 1), field,
                        num("received_days", 0), tuple(kw))


def gather(store: Store, as_of: dt.date, params: RegionParams, *,
           churn_roi: Callable[[Store], dict[str, Any] | None] | None = None) -> dict[str, Any]:
    """The region's figures as plain data (the HTML and the workbook are made from it)."""
    centres, worst, waiting, offering = [], [], [], []
    alerts = []
    for c in store.centres():
        view = store.for_centre(c["centre"])
        row, rows, offers = _centre(view, as_of, params)
        row["churn_roi"] = churn_roi(view) if churn_roi is not None and CHURN in c["kinds"] else None
        centres.append(row)
        alerts += _alerts(view, as_of, params, c["kinds"])
        if rows is not None and len(rows):
            worst.append(rows.assign(centre=view.centre))
            waiting.append(rows.assign(centre=view.centre))
        offering += offers
    top = (pd.concat(worst, ignore_index=True).sort_values(["wait_days", "centre", "customer_key"],
                                                           ascending=[False, True, True], kind="mergesort")
           .head(params.worst_limit) if worst else pd.DataFrame())
    return {"as_of": as_of.isoformat(), "centres": centres, "alerts": alerts,
            "worst": [{"centre": r.centre, "customer_id": r.customer_id, "name": r.name, "label": r.label,
                       "part": r.part, "wait_days": int(r.wait_days)} for r in top.itertuples()] if len(top) else [],
            "transfers": _transfers(waiting, offering)}


def _centre(view: Store, as_of: dt.date, params: RegionParams) -> tuple[dict[str, Any], pd.DataFrame | None, list]:
    start = as_of - dt.timedelta(days=params.trend_days - 1)
    snaps = [s for s in view.list_snapshots(SHORTAGE) if start <= s.as_of <= as_of]
    row: dict[str, Any] = {"centre": view.centre, "as_of": None, "crisis_level": None, "crisis_label": None,
                           "counts": {}, "trend": [], "rfm_shares": _rfm_shares(view, as_of)}
    if not snaps:
        return row, None, []
    last = snaps[-1]
    crisis = last.meta.get("crisis") or {}
    row.update(as_of=last.as_of.isoformat(), crisis_level=crisis.get("level"), crisis_label=crisis.get("label"),
               counts=dict(last.meta.get("counts") or {}),
               trend=[{"as_of": s.as_of.isoformat(), "counts": dict(s.meta.get("counts") or {})} for s in snaps])
    f = params.part_field
    rows = view.snapshot_rows(last.id, fields=[f, "wait_days", "notes"],
                              generic=("customer_key", "customer_id", "name", "label"))
    rows = rows.rename(columns={f: "part"}) if f in rows else rows.assign(part=None)
    rows["wait_days"] = pd.to_numeric(rows.get("wait_days"), errors="coerce").fillna(0).astype(int)
    offers = []
    if params.requested_keywords and "notes" in rows:
        notes = rows["notes"].astype(object).fillna("").astype(str)
        hit = notes.str.contains("|".join(map(_escape, params.requested_keywords)), regex=True)
        offers += [(view.centre, p, "requested") for p in rows.loc[hit, "part"].dropna().unique()]
    # customers who left the list within the window: their part came (received)
    earlier = [s for s in snaps if s.as_of >= last.as_of - dt.timedelta(days=params.received_days) and s is not last]
    if earlier:
        prev = view.snapshot_rows(earlier[0].id, fields=[f], generic=("customer_key",))
        if f in prev:
            now_listed = set(rows["customer_key"].tolist())
            gone = prev[[k not in now_listed for k in prev["customer_key"].tolist()]]
            offers += [(view.centre, p, "received") for p in gone[f].dropna().unique()]
    return row, rows.drop(columns=[c for c in ("notes",) if c in rows]), offers


def _escape(text: str) -> str:
    import re

    return re.escape(text)


def _rfm_shares(view: Store, as_of: dt.date) -> dict[str, float]:
    info = view.latest_snapshot(RFM, before=as_of + dt.timedelta(days=1))
    if info is None:
        return {}
    labels = view.snapshot_rows(info.id, fields=[], generic=("customer_key", "label"))["label"]
    shares = labels.astype(object).fillna("?").value_counts(normalize=True)
    return {str(k): round(float(v), 4) for k, v in shares.sort_index().items()}


def _alerts(view: Store, as_of: dt.date, params: RegionParams, kinds: list[str]) -> list[dict[str, Any]]:
    out = []
    limit = as_of - dt.timedelta(days=params.overdue_days)
    for kind in kinds:
        a = view.alerts_list(kind, statuses=("open",))
        if not len(a):
            continue
        fired = pd.to_datetime(a["fired_on"].astype(str)).dt.date
        a = a.assign(overdue=(fired <= limit).to_numpy())
        for who, g in a.groupby("recipient", sort=True):
            out.append({"centre": view.centre, "kind": kind, "recipient": str(who), "open": len(g),
                        "overdue": int(g["overdue"].sum())})
    return out


def _transfers(waiting: list[pd.DataFrame], offering: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """A part customers of one centre wait for that another centre has requested or
    received: who could lend it, for how many customers, the longest wait."""
    if not waiting or not offering:
        return []
    w = pd.concat(waiting, ignore_index=True).dropna(subset=["part"])
    need = (w.groupby(["centre", "part"], sort=False)
            .agg(customers=("customer_key", "size"), longest_wait=("wait_days", "max")).reset_index())
    offers = pd.DataFrame(sorted(set(offering)), columns=["from_centre", "part", "status"])
    m = need.merge(offers, on="part")
    m = m[m["centre"] != m["from_centre"]].rename(columns={"centre": "waiting_centre"})
    m = m.sort_values(["longest_wait", "part", "waiting_centre", "from_centre"],
                      ascending=[False, True, True, True], kind="mergesort")
    return [{"part": str(r.part), "waiting_centre": str(r.waiting_centre), "customers": int(r.customers),
             "longest_wait": int(r.longest_wait), "from_centre": str(r.from_centre), "status": str(r.status)}
            for r in m.itertuples()]
