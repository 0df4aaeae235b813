"""Which alerts fire, which they replace, and their English texts (pure)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from tierctl.kernels.keyjoin import key_positions


# -- alerts ----------------------------------------------------------------------------------
def alerts_to_fire(cur: pd.DataFrame, rules: Sequence[dict[str, Any]], redlist: dict[str, Any] | None,
                   active: pd.DataFrame | None, known: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Alerts crossing their threshold now: for each customer the highest wait rule
    reached (``wait_days`` ≥ ``min_days``: a wait of 33 days alerts the 28-day recipient,
    not the 14-day one) and the red-list complaint rule (``redlist_complaint``), minus
    those already covered — an alert fires once, not on every morning run.  A wait alert
    is covered by an open or acknowledged alert of the same rule or a higher one for that
    customer (``active``: ``customer_key``, ``rule_id``).  ``known`` (per rule id, a mask
    of ``cur``) marks customers known to be covered for that rule already (listed in the
    previous run and past its threshold then) without looking them up in ``active``.

    Rule by rule the alerts are positions of ``cur`` (numpy); the frame is built once at
    the end (on the few rows of a morning run, pandas' cost per operation is what counts)."""
    cols = ["customer_key", "customer_id", "name", "rule_id", "recipient", "reason"]
    waits = cur["wait_days"].to_numpy()
    keys = cur["customer_key"]
    ladder = sorted(rules, key=lambda r: int(r["min_days"]))
    act_rules = active["rule_id"].astype(str) if active is not None and len(active) else None

    def uncovered(idx: np.ndarray, rule_ids: list[str]) -> np.ndarray:
        """``idx`` without the customers who have an active alert of one of ``rule_ids``."""
        if active is None or act_rules is None or not len(idx):
            return idx
        same = active["customer_key"][act_rules.isin(rule_ids).to_numpy()]
        return idx[key_positions(keys.iloc[idx], same) < 0] if len(same) else idx

    top = np.full(len(cur), -1, dtype=np.int64)
    for j, r in enumerate(ladder):  # ascending: the last one reached wins
        top[waits >= int(r["min_days"])] = j
    fired = []  # per rule: (positions of cur, rule id, recipient, reasons)
    for j, r in enumerate(ladder):
        m = top == j
        if known is not None and r["id"] in known:
            m &= ~known[r["id"]]
        idx = uncovered(np.flatnonzero(m), [x["id"] for x in ladder[j:]])  # this rung or a higher one
        if len(idx):
            base = r["reason"] or f"等待已满 {r['min_days']} 天"
            days = pd.Series(waits[idx]).astype(str).to_numpy(dtype=object)
            fired.append((idx, r["id"], r["recipient"], (base + "（已等待 ") + days + " 天）"))
    if redlist and "redlist_complaint" in cur:
        idx = uncovered(np.flatnonzero(cur["redlist_complaint"].fillna(False).to_numpy(dtype=bool)), ["redlist"])
        if len(idx):
            fired.append((idx, "redlist", redlist["recipient"], np.full(len(idx), redlist["reason"], dtype=object)))
    if not fired:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    out = cur[cols[:3]].iloc[np.concatenate([f[0] for f in fired])].reset_index(drop=True)
    out["rule_id"] = np.concatenate([np.full(len(f[0]), f[1], dtype=object) for f in fired])
    out["recipient"] = np.concatenate([np.full(len(f[0]), f[2], dtype=object) for f in fired])
    out["reason"] = np.concatenate([f[3] for f in fired])
    return out


def alert_recipients_in_english(meta: dict[str, Any]) -> dict[str, str]:
    """Chinese recipient → English, from the alert rules of a snapshot's ``meta``."""
    rules = [*meta.get("alerts", []), meta.get("redlist_alert") or {}]
    return {r["recipient"]: r["recipient_en"] for r in rules if r.get("recipient_en") and r.get("recipient")}


def alert_in_english(alert: dict[str, Any], meta: dict[str, Any]) -> tuple[str, str]:
    """(recipient, reason) of a stored alert in English, from the rules' ``*_en`` texts
    (the wait at firing kept: ``Waited 28 days or more (33 days)``); the stored Chinese
    text where a rule has none."""
    rules = {r["id"]: r for r in meta.get("alerts", [])}
    rules["redlist"] = meta.get("redlist_alert") or {}
    rule = rules.get(str(alert.get("rule_id")), {})
    reason = str(alert.get("reason") or "")
    if rule.get("reason_en"):
        waited = re.search(r"已等待 (\d+) 天", reason)
        reason = rule["reason_en"] + (f" ({waited.group(1)} days)" if waited else "")
    who = str(alert.get("recipient") or "")
    return alert_recipients_in_english(meta).get(who, who), reason


def superseded(new: pd.DataFrame, rules: Sequence[dict[str, Any]]) -> list[tuple[str, list[str], list[str]]]:
    """The lower wait rules each newly fired wait alert replaces: (its rule id, the
    customers it fired for, the lower rule ids) per rule — their open alerts close, so
    that every open line names the highest threshold reached."""
    ladder = sorted(rules, key=lambda r: int(r["min_days"]))
    out = []
    for j, r in enumerate(ladder):
        if not j:
            continue
        keys = new["customer_key"][(new["rule_id"] == r["id"]).to_numpy()]
        if len(keys):
            out.append((r["id"], sorted(set(keys.astype(str).tolist())), [x["id"] for x in ladder[:j]]))
    return out
