"""What allocation keeps in the history store and reads back: the day's plan as the
snapshot of kind ``allocation`` (one row per customer: package key as the label, cost as
the score, and why; the totals in the snapshot's meta).  Re-running a day replaces it.

Every function takes the open store (``tierctl.store.Store``) as a parameter.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from tierctl.allocate.result import Allocation

PLAN_KIND = "allocation"


def plan_rows(alloc: Allocation) -> pd.DataFrame:
    """One row per customer for the store: package key as the label, cost as the score."""
    plan = alloc.plan
    return pd.DataFrame({
        "customer_key": pd.array([r.customer_id for r in plan], dtype="string"),
        "customer_id": pd.array([r.customer_id for r in plan], dtype="string"),
        "name": pd.array([r.name for r in plan], dtype="string"),
        "label": pd.array([r.option or "" for r in plan], dtype="string"),
        "score": [float(r.cost) for r in plan],
        "tier": pd.array([r.tier for r in plan], dtype="string"),
        "risk": [r.score for r in plan],
        "covered": [bool(r.covered) for r in plan],
        "status": pd.array([r.status for r in plan], dtype="string"),
        "option_name": pd.array([r.option_name for r in plan], dtype="string"),
        "option_name_en": pd.array([r.option_name_en for r in plan], dtype="string"),
        "loaner": pd.array([r.loaner for r in plan], dtype="string"),
        "cost": [int(r.cost) for r in plan],
        "why": pd.array(["\n".join(r.why) for r in plan], dtype="string"),
    })


def save_plan(store: Any, result: Any, alloc: Allocation, *, resources: dict[str, Any], days_source: str,
              source_name: str | None = None, source_hash: str | None = None) -> dict[str, Any]:
    """Store the plan as the ``allocation`` snapshot of the scores' as-of date (replacing
    an earlier plan of that day) and return the snapshot's summary (``path`` included)."""
    doc = alloc.to_json()
    meta = {k: v for k, v in doc.items() if k != "plan"}
    meta.update({"resources": resources, "days_source": days_source, "scores_as_of": result.as_of.isoformat(),
                 "score_model": result.model.name, "generated_at": result.now.isoformat()})
    sid = store.save_snapshot(PLAN_KIND, result.as_of, alloc.model, source_name, source_hash, plan_rows(alloc),
                              meta)
    out = store.snapshot(sid).to_json()
    out["path"] = str(store.path)
    return out


def stored_plan(store: Any, as_of: dt.date) -> dict[str, Any] | None:
    """The plan stored for ``as_of`` in the shape of ``Allocation.to_json()`` (plus
    ``resources``, ``days_source``, ``stored_at`` …), or None when there is none."""
    info = store.snapshot_on(PLAN_KIND, as_of)
    if info is None:
        return None
    rows = store.snapshot_rows(info.id)
    plan = []
    for r in rows.to_dict("records"):
        covered = bool(r["covered"])
        plan.append({
            "customer_id": r["customer_id"], "name": r["name"] or "", "tier": r["tier"], "score": float(r["risk"]),
            "covered": covered, "status": r.get("status") or ("covered" if covered else "resources"),
            "option": r["label"] or None, "option_name": r["option_name"], "option_name_en": r["option_name_en"],
            "loaner": r["loaner"], "cost": int(r["cost"]), "why": str(r["why"] or "").split("\n"),
        })
    return {**info.meta, "plan": plan, "as_of": info.as_of.isoformat(), "stored_at": info.created_at.isoformat(),
            "snapshot_id": info.id}
