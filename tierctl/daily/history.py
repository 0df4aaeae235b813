"""What the daily loop stores: a morning run recorded (snapshot, changes, alerts,
overrides — one transaction), and the stored alerts as records."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from tierctl.daily import owners
from tierctl.daily.alerts import alerts_to_fire, superseded
from tierctl.daily.changes import diff_snapshots, first_n, pick_week_ago, tier_moves
from tierctl.daily.reading import NOT_LISTED
from tierctl.daily.snapshot import apply_overrides, carry_forward, model_meta, snapshot_frame
from tierctl.daily.tasks import _iso_each
from tierctl.daily.values import KIND, _plain, _records
from tierctl.kernels import background
from tierctl.kernels.keyjoin import key_positions
from tierctl.shortage import (
    Crisis,
    ShortageModel,
    ShortageResult,
    complaint_mask,
    crisis_level,
)
from tierctl.store import owners as store_owners
from tierctl.store.core import SnapshotInfo, Store, encode_snapshot

# -- the morning run -----------------------------------------------------------------------
PREV_FIELDS = ("first_seen", "first_due", "wait_days")  # carried forward; wait_days for the alerts


def _prev_rows(store: Store, info: SnapshotInfo, fields: list[str]) -> pd.DataFrame:
    """The previous snapshot's key, id, name, tier, score and ``fields`` — read once per
    run: ``previous_for`` and ``record_run`` share it (cached on the store, keyed by the
    snapshot's identity, so a snapshot replaced in between is read again)."""
    cache = store.__dict__.setdefault("_prev_cache", {})
    ident = (info.id, info.replaced, info.created_at)
    hit = cache.get(ident)
    if hit is not None and all(f in hit[0] for f in fields):
        return hit[1]
    want = list(dict.fromkeys([*fields, *PREV_FIELDS]))
    frame = store.snapshot_rows(info.id, fields=want, generic=("customer_key", "label"))
    cache.clear()
    cache[ident] = (set(want), frame)
    return frame


def previous_frames(store: Store, model: ShortageModel, as_of: dt.date
                    ) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """The history escalation rules compare with: the previous run's fields of the
    ``new_keywords`` rules (A4.4) and its ``holds`` (the raises that hold, strictly
    before ``as_of``: re-running a day reads the same) and, from the snapshot closest to a week before, the
    fields of the ``contact_spike`` rules (A4.5).  Frames have ``key`` + those fields."""
    kw = [e.field for e in model.escalation if e.type == "new_keywords"]
    if any(e.holds for e in model.escalation):
        kw.append("holds")  # the raises that hold from the previous run (issue 14)
    spike = [e.field for e in model.escalation if e.type == "contact_spike"]
    previous = week_ago = None
    prev = store.latest_snapshot(KIND, before=as_of)
    if prev is not None and kw:
        previous = _prev_rows(store, prev, kw).rename(columns={"customer_key": "key"})
    if spike:
        snaps = {s.as_of: s for s in store.list_snapshots(KIND)}
        day = pick_week_ago(list(snaps), as_of)
        if day is not None:
            week_ago = store.snapshot_rows(snaps[day].id, fields=spike, generic=("customer_key",)
                                           ).rename(columns={"customer_key": "key"})
    return previous, week_ago


def _eta(crisis: Crisis) -> float | None:
    for c in crisis.criteria:
        if c.get("name") == "eta_weeks":
            return float(c["value"])
    return None


def record_run(store: Store, result: ShortageResult, crisis: Crisis, *, source_name: str | None,
               source_hash: str | None, dry_run: bool = False,
               extra_meta: dict[str, Any] | None = None, detail_limit: int | None = None) -> dict[str, Any]:
    """Store a scored export as the day's snapshot and move the daily loop on — all in one
    transaction, so a run that fails or is killed leaves the store as it was.

    Applies active manual overrides to ``result`` (in place: its ``customers`` are
    replaced), compares with the previous snapshot (``changes``), opens the alerts whose
    threshold was crossed and closes those of customers who left the list.  With
    ``dry_run`` nothing is written; the returned ``changes`` and ``alerts_fired`` show
    what a real run would have done.  With ``detail_limit`` those lists hold only the
    first customers of each kind (counts stay complete: ``changes["counts"]``,
    ``snapshot["alerts_fired"]`` and ``snapshot["alerts_fired_customers"]``)."""
    model = result.model
    as_of, now = result.as_of, result.now
    tz = now.tzinfo
    ctx = store.reading() if dry_run else store.transaction()
    with ctx:
        latest = store.latest_snapshot(KIND)
        newest = latest is None or latest.as_of <= as_of
        prev_info = store.latest_snapshot(KIND, before=as_of)
        replaced = store.snapshot_on(KIND, as_of)
        ovr, applied, crisis = _apply_people(store, result, crisis, newest)
        rows = snapshot_frame(result)
        prev, details, mv = _moves(store, prev_info, rows, result, bool(applied), detail_limit)
        start = dt.datetime.combine(as_of, dt.time(0), tzinfo=tz)
        rows = carry_forward(rows, prev, start, pos=mv["pos"] if mv is not None else None)
        # the snapshot compresses on a thread while the changes and alerts are worked out
        encoded = None if dry_run else background.start(encode_snapshot, rows, name="tierctl-encode")
        changes = diff_snapshots(prev, rows, model.tier_names, model.dim_keys,
                                 prev_info.as_of if prev_info else None, details=details, moves=mv,
                                 limit=detail_limit)

        meta = model_meta(model)
        meta.update({"crisis": crisis.to_json(), "counts": result.counts(), "generated_at": now.isoformat(),
                     "warnings": list(result.warnings), "overrides_applied": applied, **(extra_meta or {})})
        fired: list[dict[str, Any]] = []
        fired_total = fired_customers = closed = 0
        if newest:
            # the run whose alerts are known to be open (see _alerts_known): today's earlier run
            # when the day is scored again, else the previous run — read before the snapshot
            # replaces the former
            ref: tuple[SnapshotInfo, pd.DataFrame, np.ndarray, np.ndarray] | None = None
            if replaced is not None:
                earlier = store.snapshot_rows(replaced.id, fields=["wait_days"], generic=("customer_key",))
                ref = (replaced, earlier, key_positions(rows["customer_key"], earlier["customer_key"]),
                       key_positions(earlier["customer_key"], rows["customer_key"]) < 0)
            elif prev_info is not None and prev is not None and mv is not None:
                ref = (prev_info, prev, mv["pos"], mv["resolved"])
            new, gone = _alerts_due(store, result, rows, meta, ref)
            if dry_run:
                fired, closed = _preview_alerts(store, rows, new, gone, meta, as_of, now)
                fired_total, fired_customers = len(fired), len({a["customer_key"] for a in fired})
            else:
                ovr_gone = _not_listed(ovr["customer_key"], rows["customer_key"]) if len(ovr) else []
                fired, fired_total, fired_customers, closed = _open_alerts(
                    store, new, gone, ovr_gone, meta, as_of, now, detail_limit, first_today=replaced is None)
        sid = None
        if encoded is not None:
            sid = store.save_snapshot(KIND, as_of, model.name, source_name, source_hash, encoded(), meta, now=now)
    snapshot = {"id": sid, "as_of": as_of.isoformat(), "stored": not dry_run, "replaced": replaced is not None,
                "path": store.path, "previous_as_of": prev_info.as_of.isoformat() if prev_info else None,
                "latest": newest, "alerts_closed": closed, "overrides_applied": len(applied),
                "alerts_fired": fired_total, "alerts_fired_customers": fired_customers}
    return {"changes": changes, "alerts_fired": fired, "snapshot": snapshot, "crisis": crisis,
            "overrides_applied": applied}


def _apply_people(store: Store, result: ShortageResult, crisis: Crisis, newest: bool
                  ) -> tuple[pd.DataFrame, list[dict[str, Any]], Crisis]:
    """Active manual overrides applied to ``result`` (its crisis level worked out again
    when they changed tiers) and the stored named owners: (overrides, applied, crisis)."""
    as_of, now = result.as_of, result.now
    ovr = store.active_overrides(KIND)
    if not newest and len(ovr):  # re-scoring an old day: only overrides made by then count
        end_of_day = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(0), tzinfo=now.tzinfo)
        ovr = ovr[[c < end_of_day for c in ovr["created_at"]]]
    result.customers, applied = apply_overrides(result.customers, ovr, result.model, now)
    if applied:
        crisis = crisis_level(result, _eta(crisis))
    # named owners: a stored assignment (tierctl assign) wins over the export's advisor
    assigned = store_owners.active_assignments(store, KIND)
    if len(assigned):
        result.customers = owners.with_person(result.customers, assigned, key="key")
    return ovr, applied, crisis


def _moves(store: Store, prev_info: SnapshotInfo | None, rows: pd.DataFrame, result: ShortageResult,
           applied: bool, detail_limit: int | None
           ) -> tuple[pd.DataFrame | None, pd.DataFrame | None, dict[str, np.ndarray] | None]:
    """The previous run's rows, the details of the few whose tier moved or who left (for
    the why), and the tier moves: (prev, details, moves); all None without a previous run."""
    if prev_info is None:
        return None, None, None
    model = result.model
    dims = model.dim_keys
    details = None
    prev = _prev_rows(store, prev_info, [])
    # the join scoring made with this run (A4.4) serves again, unless overrides re-sorted the rows
    pos = None if applied else result.positions_in_previous(prev["customer_key"])
    mv = tier_moves(prev, rows, model.tier_names, pos=pos)
    lim = detail_limit  # the why is worked out for the customers the lists will hold
    few = [*rows["customer_key"][first_n(mv["up"], lim) | first_n(mv["down"], lim)].tolist(),
           *prev["customer_key"][first_n(mv["resolved"], lim)].tolist()]
    if few:  # the why of a tier change (and who left) needs details of those few only
        fields = [*dims, *(f"reason_{k}" for k in dims), "escalations"]
        details = store.snapshot_rows(prev_info.id, fields=fields, keys=few,
                                      generic=("customer_key", "customer_id", "name", "score"))
    return prev, details, mv


def _alerts_due(store: Store, result: ShortageResult, rows: pd.DataFrame, meta: dict[str, Any],
                ref: tuple[SnapshotInfo, pd.DataFrame, np.ndarray, np.ndarray] | None
                ) -> tuple[pd.DataFrame, list[str]]:
    """The alerts that fire now and the customers whose open alerts close (they left)."""
    cur = rows[["customer_key", "customer_id", "name", "wait_days"]].copy()
    red = result.customers["red_list"].to_numpy(dtype=bool) if "red_list" in result.customers else None
    if red is not None and red.any():
        cur["redlist_complaint"] = red & complaint_mask(result.customers, result.model)
    known = _alerts_known(ref[0], ref[1], ref[2], cur, meta["alerts"]) if ref is not None else None
    if known is None:  # the first run, an old snapshot, or changed alert rules: ask the store
        active = store.active_alert_keys(KIND)
        gone = _not_listed(active["customer_key"], rows["customer_key"]) if len(active) else []
    else:
        assert ref is not None
        todo = np.zeros(len(cur), dtype=bool)
        for r in meta["alerts"]:
            todo |= (cur["wait_days"].to_numpy() >= int(r["min_days"])) & ~known[r["id"]]
        if "redlist_complaint" in cur:
            todo |= cur["redlist_complaint"].to_numpy(dtype=bool)
        active = store.active_alert_keys(KIND, keys=cur["customer_key"][todo].tolist())
        # every open alert belongs to a customer of that run (it closed the others): those
        # who left are exactly its customers missing today
        gone = sorted(set(ref[1]["customer_key"][ref[3]].astype(str).tolist()))
    return alerts_to_fire(cur, meta["alerts"], meta["redlist_alert"], active, known=known), gone


def _preview_alerts(store: Store, rows: pd.DataFrame, new: pd.DataFrame, gone: list[str], meta: dict[str, Any],
                    as_of: dt.date, now: dt.datetime) -> tuple[list[dict[str, Any]], int]:
    """What a real run would show and close (a dry run): (today's alerts, closed)."""
    earlier = store.alerts_fired_on(KIND, as_of)
    if len(earlier):
        earlier = earlier[key_positions(earlier["customer_key"], rows["customer_key"]) >= 0]
        drop = np.zeros(len(earlier), dtype=bool)  # what the run would close: lower rungs replaced
        for _, keys, lower in superseded(new, meta["alerts"]):
            drop |= ((earlier["status"] == "open") & earlier["rule_id"].isin(lower)
                     & earlier["customer_key"].astype(str).isin(keys)).to_numpy()
        earlier = earlier[~drop]
    fired = _alert_records(earlier, now.tzinfo, meta["alerts"]) + [
        {"id": None, **r, "fired_on": as_of.isoformat(), "since": now.isoformat(), "status": "open",
         "closed_at": None, "closed_by": None, "note": None} for r in _plain_records(new)]
    closed = len(store.active_alert_keys(KIND, keys=gone)) if gone else 0  # what a run would close
    return fired, closed


def _open_alerts(store: Store, new: pd.DataFrame, gone: list[str], ovr_gone: list[str], meta: dict[str, Any],
                 as_of: dt.date, now: dt.datetime, detail_limit: int | None, *, first_today: bool
                 ) -> tuple[list[dict[str, Any]], int, int, int]:
    """Open the new alerts, close the replaced and those of customers who left, end their
    overrides: (today's alerts as records, their count, their customers, closed)."""
    # in key order: the index on the customer key then mostly grows at its end
    new = new.sort_values("customer_key", kind="mergesort").reset_index(drop=True)
    store.insert_alerts(KIND, new, as_of, now)
    _supersede(store, new, meta["alerts"], now)
    closed = store.resolve_alerts(KIND, gone, now, NOT_LISTED)
    store.end_overrides(KIND, ovr_gone, at=now, status="ended", reason=NOT_LISTED)
    if detail_limit is not None and first_today:
        # no earlier run today: today's alerts are the ones just opened, so only the
        # customers the text lists are read back (a first run may open millions)
        fired_total, fired_customers = len(new), int(new["customer_key"].nunique())
        order = _severity_order(new.assign(fired_at="", id=np.arange(len(new))), meta["alerts"])
        top = pd.unique(new["customer_key"].to_numpy()[order])[:detail_limit]
        today = store.alerts_fired_on(KIND, as_of, keys=list(top))
    else:
        today = store.alerts_fired_on(KIND, as_of)
        fired_total = len(today)
        fired_customers = int(today["customer_key"].nunique()) if len(today) else 0
    return _alert_records(today, now.tzinfo, meta["alerts"], customers=detail_limit), fired_total, fired_customers, \
        closed


def _supersede(store: Store, new: pd.DataFrame, rules: list[dict[str, Any]], now: dt.datetime) -> None:
    """Close the open lower wait alerts of the customers a higher one just fired for (an
    acknowledged one stays as it was): each open line then names the highest threshold
    reached and its recipient."""
    by = {r["id"]: r for r in rules}
    for rid, keys, lower in superseded(new, rules):
        r = by[rid]
        store.resolve_alerts(KIND, keys, now, f"已升级为 {rid}：{r['reason'] or rid} → {r['recipient']}",
                             rules=lower, statuses=("open",))


def _alerts_known(prev_info: SnapshotInfo, prev: pd.DataFrame, pos: np.ndarray, cur: pd.DataFrame,
                  rules: list[dict[str, Any]]) -> dict[str, np.ndarray] | None:
    """Per wait rule, the customers of today's run whose alert is certainly open or
    acknowledged already, without reading the alerts table: listed in the reference run
    ``prev`` (``pos``: where each of today's customers is in it, -1 if not) and already
    past the rule's threshold then, under the same rules.

    The reference run is the previous run when today has none yet, or today's earlier
    run when the day is scored again.  Why it holds: that snapshot was the newest when it
    was stored and nothing came after it, so its run fired every such alert or found it
    open; alerts close only when a run finds the customer gone (acknowledged ones still
    count), and no run came between.  None when this cannot be relied on (the alert
    rules changed, or the snapshot holds no wait)."""
    if "wait_days" not in prev or (prev_info.meta or {}).get("alerts") != rules:
        return None
    before = pd.to_numeric(prev["wait_days"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    was = np.where(pos >= 0, before[np.maximum(pos, 0)], np.nan)
    with np.errstate(invalid="ignore"):
        return {r["id"]: (pos >= 0) & (was >= int(r["min_days"])) for r in rules}


def _not_listed(keys: pd.Series, listed: pd.Series) -> list[str]:
    """The distinct ``keys`` that are not on today's list."""
    return sorted(set(keys[key_positions(keys, listed) < 0].tolist())) if len(keys) else []


def _plain_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in r.items()} for r in frame.to_dict("records")]


def alert_severity(rule_id: str, rules: list[dict[str, Any]]) -> int:
    """0 = most severe: the red-list complaint, then wait rules from the longest wait."""
    if rule_id == "redlist":
        return 0
    days = {r["id"]: int(r["min_days"]) for r in rules}
    return 1 + sorted(days.values(), reverse=True).index(days[rule_id]) if rule_id in days else 99


def _alert_records(frame: pd.DataFrame, tz: dt.tzinfo | None, rules: list[dict[str, Any]] | None = None,
                   customers: int | None = None) -> list[dict[str, Any]]:
    """Alerts as JSON-ready dicts (column-wise: a first run may fire a great many).  With
    ``rules``, a customer's alerts stay together, the customer with the most severe first;
    with ``customers`` too, only the alerts of that many customers (the first ones)."""
    if not len(frame):
        return []
    f = frame.reset_index(drop=True)
    if rules is not None and customers is not None:
        f = f.iloc[_severity_order(f, rules)]
        keep = pd.factorize(f["customer_key"])[0] < customers  # codes follow first appearance
        f = f[keep].reset_index(drop=True)

    def local(col: str) -> np.ndarray:
        t = pd.to_datetime(f[col], utc=True, format="ISO8601") if f[col].notna().any() else None
        if t is None:
            return np.full(len(f), None, dtype=object)
        return _iso_each(t.dt.tz_convert(tz) if tz else t)

    out = pd.DataFrame({
        "id": f["id"].astype("int64"), "customer_key": f["customer_key"], "customer_id": f["customer_id"],
        "name": f["name"], "rule_id": f["rule_id"], "recipient": f["recipient"], "reason": f["reason"],
        "fired_on": f["fired_on"].astype(str),  # a date or its ISO text: the same text
        "since": local("fired_at"), "status": f["status"], "closed_at": local("closed_at"),
        "closed_by": f["closed_by"], "note": f["note"],
    })
    return _records(out, list(out.columns), rows=_severity_order(f, rules) if rules is not None else None)


def _severity_order(f: pd.DataFrame, rules: list[dict[str, Any]]) -> np.ndarray:
    """Positions of the alerts in ``f``: by customer, the customer with the most severe
    alert first (then the earliest, the lowest id); a customer's alerts by severity.
    Sorted on integer codes (a first run may fire a million and a half)."""
    n = len(f)
    if not n:
        return np.zeros(0, dtype=np.int64)
    rule_codes, rule_uniq = pd.factorize(f["rule_id"].astype(str))
    sev = np.array([alert_severity(r, rules) for r in rule_uniq], dtype=np.int64)[rule_codes]
    at_rank, _ = pd.factorize(f["fired_at"].astype(str), sort=True)  # ISO UTC text sorts as time
    ids = f["id"].to_numpy(dtype=np.int64)
    by_alert = np.lexsort((ids, at_rank, sev))  # every alert, the most severe (earliest, lowest id) first
    cust, _ = pd.factorize(f["customer_key"])
    lead = np.empty(int(cust.max()) + 1, dtype=np.int64)  # each customer's first place in that order
    lead[cust[by_alert[::-1]]] = np.arange(n - 1, -1, -1)
    place = np.empty(n, dtype=np.int64)
    place[by_alert] = np.arange(n)
    return np.lexsort((place, lead[cust]))
