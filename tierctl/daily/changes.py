"""What changed since the previous run, a customer's tier events, and a stored score explained (pure)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from tierctl.daily.values import (
    OVERRIDE_ID,
    _after_colon,
    _isna,
    _lines,
    _plain,
    _records,
    _rule_id,
)
from tierctl.kernels.distinct import map_distinct
from tierctl.kernels.keyjoin import key_positions
from tierctl.shortage import parse_holds


def change_causes(prev: dict[str, Any], cur: dict[str, Any], dims: Sequence[str], *, up: bool) -> list[str]:
    """Why a customer's tier moved: the dimensions that changed (with today's reason) and
    the escalation rules that started (upgrade) or stopped (downgrade) applying."""
    out = []
    for k in dims:
        a, b = prev.get(k), cur.get(k)
        if a is None or b is None or _isna(a) or _isna(b):
            continue
        if int(a) != int(b):
            reason = cur.get(f"reason_{k}")
            out.append(f"{k} {int(a)}→{int(b)}" + (f"（{_after_colon(str(reason))}）" if isinstance(reason, str) else ""))
    before = {_rule_id(x): x for x in _lines(prev.get("escalations"))}
    after = {_rule_id(x): x for x in _lines(cur.get("escalations"))}
    if up:
        out += [after[r] for r in after if r not in before or (r == OVERRIDE_ID and after[r] != before.get(r))]
    else:
        out += [f"{r} 不再适用（上次：{_after_colon(before[r])}）" for r in before if r not in after]
        out += [after[r] for r in after if r == OVERRIDE_ID and after[r] != before.get(r)]
    if not out:
        a, b = prev.get("score"), cur.get("score")
        if a is not None and b is not None and not _isna(a) and not _isna(b) and a != b:
            out.append(f"总分 {a:g}→{b:g}")
        else:
            out.append("评分规则或分级阈值有变化")
    return out



def tier_moves(prev: pd.DataFrame | None, cur: pd.DataFrame, tier_names: Sequence[str],
               pos: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Masks of ``cur`` (new, upgraded, downgraded) and of ``prev`` (resolved), and for
    each ``cur`` row its position in ``prev`` (−1 when new; ``pos`` when the caller
    has worked it out already)."""
    rank = {t: i for i, t in enumerate(tier_names)}
    if prev is None or not len(prev):
        n = len(cur)
        return {"pos": np.full(n, -1), "new": np.ones(n, dtype=bool), "up": np.zeros(n, dtype=bool),
                "down": np.zeros(n, dtype=bool), "resolved": np.zeros(0 if prev is None else len(prev), dtype=bool)}
    if pos is None:
        pos = key_positions(cur["customer_key"], prev["customer_key"])
    resolved = np.ones(len(prev), dtype=bool)  # keys are unique on both sides: the rows nobody matched
    resolved[pos[pos >= 0]] = False
    r_now, r_prev_all = _ranks(cur["label"], rank), _ranks(prev["label"], rank)
    r_before = np.where(pos >= 0, r_prev_all[np.maximum(pos, 0)], np.nan)
    valid = (pos >= 0) & ~np.isnan(r_now) & ~np.isnan(r_before)
    return {"pos": pos, "new": pos < 0, "up": valid & (r_now < r_before), "down": valid & (r_now > r_before),
            "resolved": resolved}


def _ranks(labels: pd.Series, rank: dict[str, int]) -> np.ndarray:
    """Each label's rank (NaN for a label the model does not know), looked up once per
    distinct label."""
    return map_distinct(labels, lambda u: float(rank.get(u, np.nan)), np.nan, float)


def first_n(mask: np.ndarray, limit: int | None) -> np.ndarray:
    """``mask`` keeping only its first ``limit`` true rows (all when None)."""
    return mask if limit is None else mask & (np.cumsum(mask) <= limit)


def _objects(col: pd.Series | None, n: int) -> np.ndarray:
    """A column's values as Python objects (all None without the column)."""
    return np.full(n, None, dtype=object) if col is None else col.to_numpy(dtype=object)


def _filled(values: np.ndarray) -> np.ndarray:
    """``values`` with every missing one (None, NaN, NA) as ``"\\0"``: what combinations are told apart by."""
    out = values.copy()
    out[pd.isna(values)] = "\0"
    return out


def _first_of_each(codes: np.ndarray) -> np.ndarray:
    """For each code 0, 1, … (in order), the position of its first row."""
    if not len(codes):
        return np.zeros(0, dtype=np.int64)
    first = np.full(int(codes.max()) + 1, len(codes), dtype=np.int64)
    np.minimum.at(first, codes, np.arange(len(codes), dtype=np.int64))
    return first[first < len(codes)]


def diff_snapshots(prev: pd.DataFrame | None, cur: pd.DataFrame, tier_names: Sequence[str],
                   dims: Sequence[str], previous_as_of: dt.date | None = None,
                   details: pd.DataFrame | None = None, moves: dict[str, np.ndarray] | None = None,
                   limit: int | None = None) -> dict[str, Any]:
    """New, upgraded, downgraded (from → to, why) and resolved (no longer on the export)
    customers between two snapshots' rows (``customer_key``, ``customer_id``, ``name``,
    ``label``; for the why: dimensions, ``reason_*``, ``escalations``, ``score``).  The
    previous rows' details may come separately (``details``, at least for the
    customers whose tier moved) so a large previous snapshot need not be read whole.
    ``counts`` always covers everyone; with ``limit`` each list holds only its first
    ``limit`` customers (what a screen shows — a first run of a million customers would
    otherwise build a million records nobody reads)."""
    out: dict[str, Any] = {"previous_as_of": previous_as_of.isoformat() if previous_as_of else None}
    mv = moves if moves is not None else tier_moves(prev, cur, tier_names)
    counts = {"new": int(mv["new"].sum()), "upgraded": int(mv["up"].sum()), "downgraded": int(mv["down"].sum()),
              "resolved": int(mv["resolved"].sum())}

    def first(mask: np.ndarray) -> np.ndarray:
        return first_n(mask, limit)

    who = ["customer_key", "customer_id", "name"]
    out["new"] = _records(cur, [*who, "label"], {"label": "tier"}, rows=first(mv["new"]))
    out["upgraded"], out["downgraded"] = [], []
    moved = first(mv["up"]) | first(mv["down"])
    if moved.any():
        src = details if details is not None else prev
        assert src is not None and prev is not None
        idx = np.flatnonzero(moved)
        fields = [c for c in ("score", "escalations", *dims, *(f"reason_{k}" for k in dims))]
        spos = key_positions(cur["customer_key"].iloc[idx], src["customer_key"])
        at = np.where(spos >= 0, spos, 0)  # (a row of src not found: marked by _found)

        def values(frame: pd.DataFrame, f: str, rows: np.ndarray) -> np.ndarray:
            """Column ``f`` at ``rows`` as Python objects (all None without the column):
            each column taken alone, never a frame of the wide rows."""
            return _objects(frame[f].iloc[rows] if f in frame and len(frame) else None, len(rows))

        prev_label = prev["label"].to_numpy(dtype=object)[mv["pos"][idx]]
        rank = {t: i for i, t in enumerate(tier_names)}
        up = np.array([rank[c] < rank[p] for c, p in zip(values(cur, "label", idx).tolist(), prev_label.tolist(),
                                                          strict=True)], dtype=bool)
        # the causes repeat (same dimension changes, same rules): explain each combination
        # once — the columns as object arrays (no frame: a few rows are the common case)
        arrays: dict[str, np.ndarray] = {"_up": up.astype(object), "_found": (spos >= 0).astype(object)}
        for f in fields:
            arrays["c_" + f] = values(cur, f, idx)
            arrays["p_" + f] = values(src, f, at)
        from tierctl.shortage import combo_factorize

        codes, _ = combo_factorize([_filled(a) for a in arrays.values()])
        codes = np.asarray(codes, dtype=np.int64)
        firsts = _first_of_each(codes)
        whys: list[list[str]] = []
        for r in firsts.tolist():
            c = {f: _plain(arrays["c_" + f][r]) for f in fields}
            p = {f: _plain(arrays["p_" + f][r]) for f in fields} if arrays["_found"][r] else {}
            whys.append(change_causes(p, c, dims, up=bool(arrays["_up"][r])))
        people = _records(cur, [*who, "label"], rows=idx)
        for w, pl, u, code in zip(people, prev_label.tolist(), up.tolist(), codes.tolist(), strict=True):
            to = w.pop("label")
            out["upgraded" if u else "downgraded"].append({**w, "from": pl, "to": to, "why": list(whys[code])})
    out["resolved"] = []
    if prev is not None and mv["resolved"].any():
        rows = np.flatnonzero(first(mv["resolved"]))
        out["resolved"] = _records(prev, [*who, "label"], {"label": "tier"}, rows=rows)
        if details is not None and not all(c in prev for c in who):
            # id and name from the details (a key's first row there; None when it is not there)
            found = key_positions(prev["customer_key"].iloc[rows], details["customer_key"])
            none = {"customer_id": None, "name": None}
            ids = _records(details, ["customer_id", "name"], rows=np.maximum(found, 0)) if len(details) \
                else [none] * len(rows)
            for rec, j, i in zip(out["resolved"], found.tolist(), ids, strict=True):
                rec.update(i if j >= 0 else none)
    out["counts"] = counts
    return out



# -- explaining a stored score -----------------------------------------------------------------
def explain(row: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """A stored customer's score rule by rule: each dimension's value and reason, weight ×
    value = contribution, the total, the tier thresholds it was compared with, the
    escalation rules that fired and the final tier."""
    m = meta.get("model", {})
    scale = int(m.get("scale", 1))
    decimals = int(m.get("decimals", 2))
    dims = []
    total = Decimal(0)
    for d in meta.get("dimensions", []):
        v = row.get(d["key"])
        if v is None or _isna(v):
            continue
        w = Decimal(d["weight"])
        contrib = w * int(v)
        total += contrib
        dims.append({"key": d["key"], "label": d["label"], "value": int(v), "weight": str(w),
                     "contribution": f"{contrib:.{max(decimals, 2)}f}" if m.get("total") != "sum" else str(int(v)),
                     "reason": row.get(f"reason_{d['key']}")})
    stored = row.get("total_scaled")
    exact = Decimal(int(stored)) / scale if stored is not None and not _isna(stored) else total
    tiers = []
    model_tier = row.get("model_tier")
    for t in meta.get("tiers", []):
        tiers.append({"tier": t["name"], "min": t["min"], "label": t.get("label", ""),
                      "reached": exact >= Decimal(t["min"])})
    esc = _lines(row.get("escalations"))
    formula = " + ".join(f"{d['key']}×{d['weight']}" for d in dims) if m.get("total") != "sum" \
        else " + ".join(d["key"] for d in dims)
    return {
        "dimensions": dims,
        "formula": formula,
        "sum": (" + ".join(f"{d['value']}×{d['weight']}" for d in dims) if m.get("total") != "sum"
                else " + ".join(str(d["value"]) for d in dims)) + f" = {exact:.{decimals}f}",
        "total": f"{exact:.{decimals}f}",
        "thresholds": tiers,
        "model_tier": model_tier,
        "escalations": [e for e in esc if _rule_id(e) != OVERRIDE_ID],
        # raises that hold from an earlier run: rule, since (the day it fired), reason
        "holds": parse_holds(row.get("holds")),
        "override": next((e for e in esc if _rule_id(e) == OVERRIDE_ID), None),
        "tier": row.get("label"),
        "alerts": _lines(row.get("alerts")),
    }


# -- history -------------------------------------------------------------------------------------
def tier_events(rows: pd.DataFrame, snapshot_dates: Sequence[tuple[dt.date, dt.datetime]],
                tier_names: Sequence[str], dims: Sequence[str]) -> list[dict[str, Any]]:
    """A customer's tier trajectory as events (first listed, upgraded, downgraded, left the
    list, back on it) with the run's date and time and the cause, from their rows across
    snapshots (``as_of``, ``label`` …) and every snapshot date of the job."""
    rank = {t: i for i, t in enumerate(tier_names)}
    present = {r["as_of"]: r for r in rows.to_dict("records")} if len(rows) else {}
    events: list[dict[str, Any]] = []
    prev: dict[str, Any] | None = None
    seen = False
    for day, at in snapshot_dates:
        cur = present.get(day)
        base = {"date": day.isoformat(), "at": at.isoformat() if at else None}
        if cur is None:
            if prev is not None:
                events.append({**base, "type": "left", "from": prev["label"], "to": None,
                               "cause": ["不在当天的导出名单中（已到件/已交车或已移出）"]})
            prev = None
            continue
        if prev is None:
            events.append({**base, "type": "returned" if seen else "listed", "from": None, "to": cur["label"],
                           "cause": _listing_causes(cur, dims)})
        elif cur["label"] != prev["label"]:
            up = rank.get(cur["label"], 99) < rank.get(prev["label"], 99)
            events.append({**base, "type": "upgraded" if up else "downgraded", "from": prev["label"],
                           "to": cur["label"], "cause": change_causes(prev, cur, dims, up=up)})
        prev = cur
        seen = True
    return events


def _listing_causes(row: dict[str, Any], dims: Sequence[str]) -> list[str]:
    out = [str(row[f"reason_{k}"]) for k in dims if isinstance(row.get(f"reason_{k}"), str)]
    return out + _lines(row.get("escalations"))


def pick_week_ago(dates: Sequence[dt.date], as_of: dt.date, slack: int = 3) -> dt.date | None:
    """The stored date closest to ``as_of`` − 7 days (A4.5 compares with the previous
    week's contact count), within ± ``slack`` days so that the two 7-day windows barely
    overlap; on a tie the earlier date."""
    target = as_of - dt.timedelta(days=7)
    best = None
    for d in dates:
        if d >= as_of or abs((d - target).days) > slack:
            continue
        key = (abs((d - target).days), d)
        if best is None or key < best:
            best = key
    return best[1] if best else None
