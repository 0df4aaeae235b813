"""A deliberately plain, row-by-row implementation of the same RITE rules.

It reads the same model file and applies each rule to one customer at a time with
``iterrows`` — the way a first version is usually written.  The benchmark times it
against the vectorised :func:`tierctl.shortage.score`; the tests use it as an oracle
(both must agree on every customer).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd

from tierctl.models.rules import Band, Category, Flag, Keywords, RedList
from tierctl.shortage import ShortageModel
from tierctl.textmatch import fires


def _rule_score(rule, row: pd.Series, model: ShortageModel, red: bool) -> float | None:
    if isinstance(rule, RedList):
        return rule.score if red else None
    value = row.get(rule.field)
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(rule, Keywords):
        return rule.score if fires(str(value), rule.keywords, model.negations if rule.negate else ()) else None
    if isinstance(rule, Band):
        for lo, s in rule.bands:
            if float(value) >= lo:
                return s
        return None
    if isinstance(rule, Flag):
        return rule.score if bool(value) else None
    if isinstance(rule, Category):
        return rule.map.get(str(value).strip().lower())
    raise TypeError(rule)


def score_rowwise(frame: pd.DataFrame, model: ShortageModel, as_of: dt.date,
                  red_list: set[str] | None = None) -> list[dict]:
    out = []
    names = model.tier_names
    for _, row in frame.iterrows():
        if "wait_start" in row and not pd.isna(row["wait_start"]):
            wait = max(0, (as_of - row["wait_start"].date()).days)
        else:
            wait = int(row["wait_days"])
        row = row.copy()
        row["wait_days"] = wait
        red = bool(red_list) and (row.get("customer_id") in red_list or row.get("phone") in red_list)
        dims = {}
        total = Decimal(0)
        for d in model.dimensions:
            given = row.get(d.key)
            if given is not None and not pd.isna(given):
                v = int(given)
            else:
                scores = [s for r in d.rules if (s := _rule_score(r, row, model, red)) is not None]
                v = int(max(scores)) if scores else d.default
            dims[d.key] = v
            total += v * d.weight
        model_tier = next(t.name for t in model.tiers if total >= t.min)
        idx = names.index(model_tier)
        final = idx  # the rules in the model file's order, each on the tier the ones before left
        for e in model.escalation:
            if e.type == "wait_floor":
                if wait > e.over_days and (not e.when_tiers or names[final] in e.when_tiers):
                    final = min(final, names.index(e.to))
            elif e.type == "new_keywords" and isinstance(row.get(e.field), str):
                if fires(row[e.field], e.keywords, model.negations) and final > 0:
                    final = max(0, final - e.steps)
            elif e.type == "contact_spike":
                now_c, prev_c = row.get(e.field), row.get(e.previous_field) if e.previous_field else None
                if (now_c is not None and prev_c is not None and not pd.isna(now_c) and not pd.isna(prev_c)
                        and now_c >= e.min_count and now_c >= float(e.ratio) * prev_c and now_c > prev_c and final > 0):
                    final = max(0, final - e.steps)
            elif e.type == "flag_to" and e.field in row and not pd.isna(row[e.field]) and bool(row[e.field]):
                final = min(final, names.index(e.to))
        out.append({"key": row.get("customer_id") if not pd.isna(row.get("customer_id", None)) else row.get("name"),
                    "wait_days": wait, "dims": dims, "total": total, "model_tier": model_tier, "tier": names[final]})
    return out
