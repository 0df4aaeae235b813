"""The daily loop of job A, pure: what changed since the previous run, which alerts fire,
which customers are due for contact, working-day deadlines, and the explanations behind
a stored score.

Frames and plain values in, frames and JSON-ready dicts out: no database, no clock, no
files (the store and the command line feed these functions; see
:mod:`tierctl.store.loop`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from tierctl.cadence import ContactPolicy, CrisisResponse, effective
from tierctl.frames import key_positions
from tierctl.shortage import ShortageModel, ShortageResult, parse_holds

KIND = "shortage"
# columns of ShortageResult.customers that follow from the tier (re-derived on reading)
POLICY_COLUMNS = ("owner", "owner_role", "channel", "action", "cadence_days")
OVERRIDE_ID = "人工调整"
CALL_TIERS = 2  # the 16:00 call list: the two most urgent tiers (P0, P1)
EVENING_MIN_DAYS = 15  # the evening written update: everyone waiting at least this long


# -- working days --------------------------------------------------------------------------
class WorkCalendar:
    """Day targets counted in calendar days, or (``working_days``) in working days on
    China's official calendar: public holidays are skipped and the make-up Saturdays and
    Sundays (调休) count.  A target of whole weeks counts 5 working days per week, so
    "weekly" stays a working week.

    Where the days off come from, for each year: the user's holiday file for that year
    (``years``, see :mod:`tierctl.holidays`), else the ``chinese_calendar`` package,
    which only knows the years it was released for; a year neither knows falls back to
    Monday–Friday with one warning that says what to do."""

    def __init__(self, working_days: bool = False, years: dict[int, Any] | None = None) -> None:
        self.working_days = working_days
        self.years = dict(years or {})
        self.warnings: list[str] = []
        self._fallback_years: set[int] = set()

    def is_workday(self, day: dt.date) -> bool:
        own = self.years.get(day.year)
        if own is not None:
            return bool(own.is_workday(day))
        import chinese_calendar

        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            if day.year not in self._fallback_years:
                self._fallback_years.add(day.year)
                self.warnings.append(
                    f"{day.year} 年没有法定节假日数据（chinese_calendar 不含该年，也没有给出该年的节假日文件）："
                    "该年按周一至周五计算工作日，节假日和调休未计入。请按 README「节假日文件」的格式写一份"
                    f" {day.year} 年的节假日文件，在 tierctl.toml 的 [calendar] 中写 file = \"文件路径\"，"
                    "或在命令后加 --holidays 文件路径")
            return day.weekday() < 5

    @staticmethod
    def working_days_for(days: int) -> int:
        """A day target in working days: whole weeks count 5 each (1 周 = 5 个工作日)."""
        return days // 7 * 5 + days % 7

    def add_days(self, start: dt.date, days: int, *, calendar_cap: bool = False) -> dt.date:
        """The date a target of ``days`` days set on ``start`` falls due.  With
        ``calendar_cap`` a target counted in working days never falls later than
        ``days`` calendar days (a customer who must never wait longer, holidays or not)."""
        if not self.working_days:
            return start + dt.timedelta(days=days)
        left = self.working_days_for(days)
        d = start
        while left > 0:
            d += dt.timedelta(days=1)
            if self.is_workday(d):
                left -= 1
        if calendar_cap:
            return min(d, start + dt.timedelta(days=days))
        return d


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


# -- changes since the previous run ---------------------------------------------------------
def _lines(text: Any) -> list[str]:
    return [x for x in str(text).split("\n") if x] if isinstance(text, str) and text else []


def _rule_id(line: str) -> str:
    return line.split(":", 1)[0].strip()


def _after_colon(text: str) -> str:
    return text.split(": ", 1)[1] if ": " in text else text


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


def _isna(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _who(r: dict[str, Any]) -> dict[str, Any]:
    return {"customer_key": r.get("customer_key"), "customer_id": _plain(r.get("customer_id")),
            "name": _plain(r.get("name"))}


def _plain(v: Any) -> Any:
    if v is None or _isna(v):
        return None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def _records(frame: pd.DataFrame, cols: Sequence[str], rename: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Plain dicts of a few columns (column-wise conversion: much faster than to_dict)."""
    rename = rename or {}
    n = len(frame)
    data = []
    for c in cols:
        if c not in frame:
            data.append([None] * n)
            continue
        s = frame[c]
        obj = s.astype(object)
        data.append(obj.where(s.notna(), None).tolist() if s.hasnans or s.dtype == np.dtype(object) else obj.tolist())
    names = [rename.get(c, c) for c in cols]
    return [dict(zip(names, vals, strict=True)) for vals in zip(*data, strict=True)] if n else []


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
    codes, uniq = pd.factorize(labels)
    table = np.array([float(rank.get(u, np.nan)) for u in uniq] + [np.nan], dtype=float)
    return table[np.where(codes >= 0, codes, len(uniq))]


def first_n(mask: np.ndarray, limit: int | None) -> np.ndarray:
    """``mask`` keeping only its first ``limit`` true rows (all when None)."""
    return mask if limit is None else mask & (np.cumsum(mask) <= limit)


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
    out["new"] = _records(cur[first(mv["new"])], [*who, "label"], {"label": "tier"})
    out["upgraded"], out["downgraded"] = [], []
    moved = first(mv["up"]) | first(mv["down"])
    if moved.any():
        src = details if details is not None else prev
        assert src is not None and prev is not None
        idx = np.flatnonzero(moved)
        fields = [c for c in ("score", "escalations", *dims, *(f"reason_{k}" for k in dims))]
        c_part = cur[[c for c in dict.fromkeys([*who, "label", *fields]) if c in cur]].iloc[idx].reset_index(drop=True)
        spos = key_positions(c_part["customer_key"], src["customer_key"])
        s_part = src[[c for c in fields if c in src]].iloc[np.where(spos >= 0, spos, 0)].reset_index(drop=True) \
            if len(src) else None
        prev_label = prev["label"].to_numpy(dtype=object)[mv["pos"][idx]]
        rank = {t: i for i, t in enumerate(tier_names)}
        up = np.array([rank[c] < rank[p] for c, p in zip(c_part["label"].tolist(), prev_label.tolist(), strict=True)],
                      dtype=bool)
        # the causes repeat (same dimension changes, same rules): explain each combination once
        combo = pd.DataFrame({"_up": up, "_found": spos >= 0})
        for f in fields:
            combo["c_" + f] = c_part[f].astype(object).to_numpy() if f in c_part else None
            combo["p_" + f] = s_part[f].astype(object).to_numpy() if s_part is not None and f in s_part else None
        from tierctl.shortage import combo_factorize

        codes, _ = combo_factorize([combo[c].astype(object).where(combo[c].notna(), "\0").to_numpy(dtype=object)
                                    for c in combo.columns])
        codes = np.asarray(codes, dtype=np.int64)
        firsts = pd.Series(np.arange(len(codes))).groupby(codes).first().to_numpy()
        arrays = {col: combo[col].to_numpy(dtype=object) for col in combo.columns}
        whys: list[list[str]] = []
        for r in firsts.tolist():
            c = {f: _plain(arrays["c_" + f][r]) for f in fields}
            p = {f: _plain(arrays["p_" + f][r]) for f in fields} if arrays["_found"][r] else {}
            whys.append(change_causes(p, c, dims, up=bool(arrays["_up"][r])))
        people = _records(c_part, ["customer_key", "customer_id", "name", "label"])
        for w, pl, u, code in zip(people, prev_label.tolist(), up.tolist(), codes.tolist(), strict=True):
            to = w.pop("label")
            out["upgraded" if u else "downgraded"].append({**w, "from": pl, "to": to, "why": list(whys[code])})
    out["resolved"] = []
    if prev is not None and mv["resolved"].any():
        gone = prev[first(mv["resolved"])]
        if details is not None and not all(c in gone for c in who):
            d = details.drop_duplicates("customer_key").set_index("customer_key")
            gone = gone[["customer_key", "label"]].assign(
                customer_id=gone["customer_key"].map(d["customer_id"]) if "customer_id" in d else None,
                name=gone["customer_key"].map(d["name"]) if "name" in d else None)
        out["resolved"] = _records(gone, [*who, "label"], {"label": "tier"})
    out["counts"] = counts
    return out


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
    previous run and past its threshold then) without looking them up in ``active``."""
    cols = ["customer_key", "customer_id", "name", "rule_id", "recipient", "reason"]
    parts = []
    waits = cur["wait_days"].to_numpy()
    ladder = sorted(rules, key=lambda r: int(r["min_days"]))
    top = np.full(len(cur), -1, dtype=np.int64)
    for j, r in enumerate(ladder):  # ascending: the last one reached wins
        top[waits >= int(r["min_days"])] = j
    for j, r in enumerate(ladder):
        m = top == j
        if known is not None and r["id"] in known:
            m &= ~known[r["id"]]
        if m.any():
            sub = cur.loc[m, ["customer_key", "customer_id", "name"]].copy()
            sub["rule_id"] = r["id"]
            sub["recipient"] = r["recipient"]
            base = r["reason"] or f"等待已满 {r['min_days']} 天"
            sub["reason"] = (base + "（已等待 ") + pd.Series(waits[m], index=sub.index).astype(str) + " 天）"
            if active is not None and len(active):  # covered by this rung or a higher one
                higher = {x["id"] for x in ladder[j:]}
                same = active["customer_key"][active["rule_id"].astype(str).isin(higher).to_numpy()]
                if len(same):
                    sub = sub[key_positions(sub["customer_key"], same) < 0]
            parts.append(sub)
    if redlist and "redlist_complaint" in cur:
        m = cur["redlist_complaint"].fillna(False).to_numpy(dtype=bool)
        if m.any():
            sub = cur.loc[m, ["customer_key", "customer_id", "name"]].copy()
            sub["rule_id"] = "redlist"
            sub["recipient"] = redlist["recipient"]
            sub["reason"] = redlist["reason"]
            if active is not None and len(active):
                same = active["customer_key"][(active["rule_id"].astype(str) == "redlist").to_numpy()]
                if len(same):
                    sub = sub[key_positions(sub["customer_key"], same) < 0]
            parts.append(sub)
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    cand = pd.concat(parts, ignore_index=True)
    return cand[cols].reset_index(drop=True)


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


def superseded(new: pd.DataFrame, rules: Sequence[dict[str, Any]]) -> list[tuple[str, list[str], str]]:
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


# -- tasks -------------------------------------------------------------------------------------
def _fmt_delta(hours: float) -> str:
    h = abs(hours)
    if h < 24:
        return f"{int(round(h))} 小时"
    return f"{int(h // 24)} 天" + (f" {int(round(h % 24))} 小时" if round(h % 24) else "")


def _iso_each(ts: pd.Series) -> np.ndarray:
    """ISO text of each timestamp, formatted once per distinct value."""
    codes, uniq = pd.factorize(ts)
    texts = np.array([u.isoformat() for u in uniq] + [None], dtype=object)
    return texts[np.where(codes < 0, len(uniq), codes)]


def compute_tasks(rows: pd.DataFrame, tiers: Sequence[dict[str, Any]], last: pd.DataFrame, day: dt.date,
                  now: dt.datetime, cal: WorkCalendar, *, view: str = "due",
                  evening_min_days: int = EVENING_MIN_DAYS, call_tiers: int = CALL_TIERS,
                  policy: ContactPolicy | None = None, crisis: CrisisResponse | None = None) -> pd.DataFrame:
    """The task list for ``day``, every row described: :func:`order_tasks` then
    :func:`describe_tasks` (see there)."""
    return describe_tasks(order_tasks(rows, tiers, last, day, now, cal, view=view, evening_min_days=evening_min_days,
                                      call_tiers=call_tiers, policy=policy, crisis=crisis), tiers, day, view=view,
                          evening_min_days=evening_min_days)


def _utc_series(values: np.ndarray, index: pd.Index) -> pd.Series:
    return pd.Series(values, index=index, dtype="datetime64[ns]").dt.tz_localize("UTC")


def order_tasks(rows: pd.DataFrame, tiers: Sequence[dict[str, Any]], last: pd.DataFrame, day: dt.date,
                now: dt.datetime, cal: WorkCalendar, *, view: str = "due",
                evening_min_days: int = EVENING_MIN_DAYS, call_tiers: int = CALL_TIERS,
                policy: ContactPolicy | None = None, crisis: CrisisResponse | None = None) -> pd.DataFrame:
    """Who is on the task list of ``day``, in the list's order, with the figures the texts
    are made from (:func:`describe_tasks` adds them — for the rows a screen shows only, when
    ninety thousand are due).

    ``last`` holds each customer's latest contact (``customer_key``, ``last_at``) and,
    when known, its ``last_result`` and the latest contact that reached the customer
    (``reached_at``: otherwise the latest contact if its result is not in
    ``policy.not_reached``); without either every contact counts as reached.

    ``view="due"``: every customer whose first contact is due (never reached in this
    stay on the list: the tier's first-contact deadline applies, on the clock) or whose
    cadence has run out since the last contact that reached them.  The cadence is the
    tier's, capped by the crisis level (``crisis``, see :mod:`tierctl.cadence`): the
    tier's own counts calendar or working days (a tier in ``policy.calendar_cap`` never
    later than its cadence in calendar days), a crisis cap counts calendar days, or
    hours on the clock below one day.  A latest contact that did not reach the customer
    (``policy.not_reached``) leaves the cadence as it was and makes them due again
    ``policy.retry_days`` days after the attempt, if that is later.  ``"calls"``: all
    customers of the two most urgent tiers (the 16:00–18:00 call round).  ``"evening"``:
    everyone waiting ≥ ``evening_min_days`` (the evening written update).  ``"all"``:
    everyone.  Sorted by owner (the most urgent owner first), then overdue first, then
    tier; ties keep the snapshot's order (most urgent first)."""
    if view not in ("due", "calls", "evening", "all"):
        raise ValueError(view)
    policy = policy or ContactPolicy()
    by = {t["name"]: t for t in tiers}
    rank = {t["name"]: i for i, t in enumerate(tiers)}
    eff = {k: effective(t, crisis) for k, t in by.items()}
    keep = rows["label"].isin(list(by)).to_numpy().copy()
    if view == "calls":
        keep &= rows["label"].isin([t["name"] for t in tiers[:call_tiers]]).to_numpy()
    elif view == "evening":
        keep &= (rows["wait_days"] >= evening_min_days).to_numpy()
    f = rows[keep].reset_index(drop=True)
    tz = now.tzinfo
    n_all = len(f)
    nat = np.full(n_all, np.datetime64("NaT"), dtype="datetime64[ns]")
    last_at, reached_at = _utc_series(nat, f.index), _utc_series(nat.copy(), f.index)
    result = np.full(n_all, None, dtype=object)
    if len(last) and n_all:
        last = last.drop_duplicates("customer_key")
        pos = key_positions(f["customer_key"], last["customer_key"])
        hit = pos >= 0
        take = np.maximum(pos, 0)

        def stamps(col: str) -> pd.Series:
            v = pd.to_datetime(last[col], utc=True).dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
            return _utc_series(np.where(hit, v[take], np.datetime64("NaT")), f.index)

        last_at = stamps("last_at")
        if "last_result" in last:
            result = np.where(hit, last["last_result"].to_numpy(dtype=object)[take], None)
        if "reached_at" in last:  # worked out by the caller (tierctl.store.loop.last_contacts)
            reached_at = stamps("reached_at")
        elif "last_result" in last:
            codes, uniq = pd.factorize(last["last_result"])
            ok = np.array([policy.is_reached(u) for u in uniq] + [True], dtype=bool)[np.where(codes < 0, len(uniq),
                                                                                              codes)]
            reached_at = last_at.where(np.where(hit, ok[take], True))
        else:
            reached_at = last_at.copy()
    if "first_seen" in f:  # a contact from an earlier stay on the list does not count
        fs = pd.to_datetime(f["first_seen"], utc=True)
        last_at = last_at.where(~(fs.notna() & last_at.notna() & (last_at < fs)))
        reached_at = reached_at.where(~(fs.notna() & reached_at.notna() & (reached_at < fs)))
    if tz is not None:
        last_at, reached_at = last_at.dt.tz_convert(tz), reached_at.dt.tz_convert(tz)
    contacted = reached_at.notna().to_numpy()
    # the latest contact of this stay did not reach the customer: a retry
    retry = last_at.notna().to_numpy() & (reached_at.isna() | (last_at > reached_at)).to_numpy()
    # per-tier figures through the label's codes (one look-up per distinct label)
    label_codes, label_uniq = pd.factorize(f["label"])

    def per_tier(pick: Any, dtype: Any) -> np.ndarray:
        return np.array([pick(u) for u in label_uniq], dtype=dtype)[label_codes] if len(f) \
            else np.zeros(0, dtype=dtype)

    cad = per_tier(lambda u: eff[u]["cadence_days"], float)
    capped = per_tier(lambda u: eff[u]["capped"], bool)
    clock = capped & (cad < 1)  # below a day: on the clock
    # how a whole-day target counts: 0 as configured, 1 as configured but never past the
    # calendar days (policy.calendar_cap), 2 calendar days (a crisis cap)
    mode = np.where(capped, 2, per_tier(lambda u: u in policy.calendar_cap, bool).astype(np.int64))
    days = np.where(clock, 0, cad).astype(np.int64)

    # first contact: the tier's deadline, on the clock
    first_due = pd.to_datetime(f["first_due"], utc=True) if "first_due" in f \
        else pd.Series(pd.NaT, index=f.index, dtype="datetime64[ns, UTC]")
    now_ts = pd.Timestamp(now)
    first_due = first_due.fillna(now_ts)
    if tz is not None:
        first_due = first_due.dt.tz_convert(tz)
    hours_left = (first_due - now_ts).dt.total_seconds().to_numpy() / 3600.0

    def add(start: dt.date, n: int, m: int) -> dt.date:
        return start + dt.timedelta(days=n) if m == 2 else cal.add_days(start, n, calendar_cap=m == 1)

    def due_dates(stamp: pd.Series, mask: np.ndarray, n: np.ndarray) -> np.ndarray:
        """``add`` for the rows of ``mask``: each distinct (day, days, mode) worked out once."""
        out = np.full(len(f), np.datetime64("NaT"), dtype="datetime64[D]")
        if not mask.any():
            return out
        d = stamp[mask].dt.tz_localize(None).to_numpy().astype("datetime64[D]").astype(np.int64)
        nn, mm = n[mask].astype(np.int64), mode[mask].astype(np.int64)
        radix = int(nn.max()) + 1
        codes, uniq = pd.factorize((d * radix + nn) * 3 + mm)
        table = np.array([np.datetime64(add(dt.date(1970, 1, 1) + dt.timedelta(days=int(u // 3 // radix)),
                                            int(u // 3 % radix), int(u % 3)), "D") for u in uniq],
                         dtype="datetime64[D]")
        out[mask] = table[codes]
        return out

    # cadence: whole days counted from the date of the last contact that reached them …
    by_day = contacted & ~clock
    due_day = due_dates(reached_at, by_day, days)
    again = by_day & retry  # … and never before the retry after an attempt that did not
    if again.any():
        due_day = np.where(again, np.maximum(due_day, due_dates(last_at, again, np.minimum(days, policy.retry_days))),
                           due_day)
    # … or below a day, on the clock from the time of the last contact (a retry as long after the attempt)
    due_at = pd.Series(pd.NaT, index=f.index, dtype=first_due.dtype)
    on_clock = contacted & clock
    if on_clock.any():
        span = pd.to_timedelta(cad * 24, unit="h")
        start = reached_at.where(~pd.Series(retry, index=f.index), last_at)
        due_at = (start + span).where(pd.Series(on_clock, index=f.index))
        due_day = np.where(on_clock, due_at.dt.tz_localize(None).to_numpy().astype("datetime64[D]"), due_day)
        hours_left = np.where(on_clock, (due_at - now_ts).dt.total_seconds().to_numpy() / 3600.0, hours_left)
    today = np.datetime64(day, "D")
    clock = on_clock  # from here: the rows whose deadline is a time (a capped cadence below a day)
    is_due = np.where(contacted, due_day <= today, True)
    overdue = np.where(contacted & ~clock, due_day < today, hours_left < 0)

    if view == "due":  # only the rows listed
        sel = np.flatnonzero(is_due)
        f = f.iloc[sel].reset_index(drop=True)
        last_at, first_due = last_at.iloc[sel].reset_index(drop=True), first_due.iloc[sel].reset_index(drop=True)
        due_at = due_at.iloc[sel].reset_index(drop=True)
        contacted, hours_left, due_day, clock = contacted[sel], hours_left[sel], due_day[sel], clock[sel]
        is_due, overdue, label_codes, retry, result = is_due[sel], overdue[sel], label_codes[sel], retry[sel], result[sel]
    n = len(f)
    tier_rank = per_tier(lambda u: rank[u], np.int64)
    owner = per_tier(lambda u: eff[u]["owner"], object)
    out = pd.DataFrame({c: (f[c] if c in f else pd.Series([None] * n, dtype=object))
                        for c in ("customer_key", "customer_id", "name", "phone")})
    out["label"] = f["label"].astype(object)
    out["score"] = f["score"].to_numpy(dtype=float) if "score" in f else np.nan
    out["wait_days"] = f["wait_days"].to_numpy(dtype=np.int64)
    out["owner"] = owner
    out["owner_role"] = per_tier(lambda u: by[u].get("owner_role"), object)
    out["owner_person"] = f["owner_person"].to_numpy(dtype=object) if "owner_person" in f \
        else np.full(n, None, dtype=object)
    out["is_due"] = is_due
    out["overdue"] = overdue
    out["tier_rank"] = tier_rank
    out["retry"] = retry
    out["last_result"] = np.where(last_at.notna().to_numpy(), result, None)
    out["contacted"] = contacted
    out["hours_left"] = hours_left
    out["due_day"] = due_day
    out["clock"] = clock
    out["due_at"] = due_at
    out["first_due"] = first_due
    out["last_at"] = last_at
    out["note"] = per_tier(lambda u: eff[u]["note"], object)
    # sort keys, all numeric: owner (by its most urgent tier), overdue first, tier, deadline
    due_ns = np.where(contacted & ~clock,
                      (due_day + np.timedelta64(1, "D")).astype("datetime64[ns]").astype(np.int64),
                      first_due.where(~pd.Series(clock, dtype=bool), due_at).dt.tz_convert("UTC").dt.tz_localize(None)
                      .to_numpy().astype("datetime64[ns]").astype(np.int64) if n else np.zeros(0, dtype=np.int64))
    owner_codes, _ = pd.factorize(out["owner"])
    owner_rank = out.groupby(owner_codes)["tier_rank"].transform("min").to_numpy() if n else owner_codes
    order = np.lexsort((due_ns, tier_rank, ~overdue.astype(bool), owner_codes, owner_rank))
    return out.take(order).reset_index(drop=True)


TASK_WORK = ("contacted", "hours_left", "due_day", "clock", "due_at", "first_due", "last_at", "note")


def describe_tasks(tasks: pd.DataFrame, tiers: Sequence[dict[str, Any]], day: dt.date, *, view: str = "due",
                   evening_min_days: int = EVENING_MIN_DAYS) -> pd.DataFrame:
    """``tasks`` (rows of :func:`order_tasks` for the same ``day`` and ``view``, any subset)
    with the texts a person reads: task, channel, due (the deadline, or the day the
    cadence runs out), its kind, status, last contact."""
    by = {t["name"]: t for t in tiers}
    today = np.datetime64(day, "D")
    out = tasks.drop(columns=list(TASK_WORK))
    contacted = tasks["contacted"].to_numpy(dtype=bool)
    clock = tasks["clock"].to_numpy(dtype=bool)
    by_day = contacted & ~clock
    label = tasks["label"].to_numpy(dtype=object)
    due_day = tasks["due_day"].to_numpy(dtype="datetime64[D]")
    late_days = (today - due_day).astype("timedelta64[D]").astype(np.int64)

    def first_status(h: float) -> str:
        return f"逾期 {_fmt_delta(h)}" if h < 0 else f"剩 {_fmt_delta(h)}"

    def cadence_status(late: int) -> str:
        return f"逾期 {late} 天" if late > 0 else ("今天到期" if late == 0 else f"{-late} 天后到期")

    out["channel"] = [by[x]["channel"] for x in label] if view != "evening" else "短信/微信（书面）"
    if view == "due":
        task = np.where(contacted, tasks["note"].to_numpy(dtype=object), "首次联系")
        retry = tasks["retry"].to_numpy(dtype=bool)
        if retry.any():
            when = tasks["last_at"].dt.strftime("%m-%d").to_numpy(dtype=object)
            res = tasks["last_result"].to_numpy(dtype=object)
            task = np.array([f"重拨：上次{r}（{w}）；{t}" if again else t
                             for again, r, w, t in zip(retry.tolist(), res.tolist(), when.tolist(), task.tolist(),
                                                       strict=True)], dtype=object)
        out["task"] = task
    else:
        out["task"] = "16:00–18:00 电话沟通进展" if view == "calls" else f"晚间书面进展更新（等待 ≥{evening_min_days} 天）"
    out["due"] = np.where(by_day, np.datetime_as_string(due_day).astype(object),
                          np.where(clock, _iso_each(tasks["due_at"]), _iso_each(tasks["first_due"])))
    out["due_kind"] = np.where(contacted, "cadence", "first")
    out["status"] = [cadence_status(int(ld)) if c else first_status(float(h))
                     for c, ld, h in zip(by_day.tolist(), late_days.tolist(), tasks["hours_left"].tolist(),
                                         strict=True)]
    out["last_contact"] = _iso_each(tasks["last_at"])
    return out


TASK_FIELDS = ("customer_key", "customer_id", "name", "phone", "label", "score", "wait_days", "task", "channel",
               "due", "due_kind", "is_due", "overdue", "status", "last_contact", "owner_role", "owner_person",
               "last_result", "retry")


def task_records(tasks: pd.DataFrame) -> list[dict[str, Any]]:
    """Tasks as JSON-ready dicts grouped by owner (in the list's order)."""
    groups: list[dict[str, Any]] = []
    recs = _records(tasks, TASK_FIELDS, {"label": "tier"})
    for owner, r in zip(tasks["owner"].tolist(), recs, strict=True):
        if not groups or groups[-1]["owner"] != owner:
            groups.append({"owner": owner, "tasks": []})
        groups[-1]["tasks"].append(r)
    return groups


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
