"""Job A's daily loop on the store: record a morning run (snapshot, changes, alerts,
overrides — one transaction), and answer the day's questions: tasks, open alerts, a
customer's history, why a score is what it is; log contacts and manual overrides.

Each public function returns JSON-ready data (the command line prints it as a table or
dumps it with ``--format json``); the logic itself lives in :mod:`tierctl.daily`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from tierctl import background, daily, owners
from tierctl.cadence import ContactPolicy, CrisisResponse, days_text, effective
from tierctl.daily import KIND, WorkCalendar
from tierctl.errors import ModelError, NotFoundError, UsageError
from tierctl.shortage import (
    Crisis,
    ShortageModel,
    ShortageResult,
    complaint_mask,
    crisis_level,
    load_model,
    parse_holds,
)
from tierctl.store import owners as store_owners
from tierctl.store.core import SnapshotInfo, Store, encode_snapshot

NOT_LISTED = "客户已不在名单中"


def _local(t: Any, tz: dt.tzinfo | None) -> str | None:
    if t is None or (not isinstance(t, dt.datetime) and pd.isna(t)):
        return None
    return (t.astimezone(tz) if tz else t).isoformat()


def _dims(meta: dict[str, Any]) -> list[str]:
    return [d["key"] for d in meta.get("dimensions", [])]


def _tiers(info: SnapshotInfo) -> list[dict[str, Any]]:
    tiers = info.meta.get("tiers")
    if tiers:
        return tiers
    model = _model_for(info)  # an old snapshot without its policy: ask the model file
    return daily.model_meta(model)["tiers"]


def _policy(info: SnapshotInfo) -> ContactPolicy:
    """The contact policy the snapshot was scored under (an older snapshot: the model's)."""
    p = info.meta.get("contact_policy")
    return ContactPolicy.from_json(p) if p else _model_for(info).policy


def _crisis_response(info: SnapshotInfo, policy: ContactPolicy) -> CrisisResponse | None:
    """What the crisis level of the snapshot's run asks of people (None: no level stored)."""
    level = (info.meta.get("crisis") or {}).get("level")
    return policy.response(level)


def last_contacts(store: Store, policy: ContactPolicy) -> pd.DataFrame:
    """Each customer's latest contact (``customer_key``, ``last_at``, ``last_result``) and
    the latest that reached them (``reached_at``): for the few whose latest contact did not
    (未接通 …), read from their contact log."""
    last = store.last_contacts(KIND)
    if not len(last):
        return last.assign(reached_at=pd.Series(dtype="datetime64[ns, UTC]"))
    codes, uniq = pd.factorize(last["last_result"])
    ok = np.array([policy.is_reached(u) for u in uniq] + [True], dtype=bool)[np.where(codes < 0, len(uniq), codes)]
    reached = last["last_at"].where(ok)
    missed = last["customer_key"][~ok]
    if len(missed):
        log = store.contact_results(KIND, missed.tolist())
        if len(log):
            log = log[[policy.is_reached(r) for r in log["result"].tolist()]]
            if len(log):
                best = pd.to_datetime(log["at"], utc=True).groupby(log["customer_key"].astype(str)).max()
                reached = reached.fillna(last["customer_key"].map(best))
    return last.assign(reached_at=pd.to_datetime(reached, utc=True))


def _last_contact_of(store: Store, key: str, policy: ContactPolicy) -> pd.DataFrame:
    """:func:`last_contacts` for one customer, from their contact log alone."""
    log = store.contact_results(KIND, [key])
    if not len(log):
        return pd.DataFrame({"customer_key": [], "last_at": pd.Series(dtype="datetime64[ns, UTC]")})
    at_ = pd.to_datetime(log["at"], utc=True)
    latest = int(np.argmax(at_.to_numpy()))  # the first of equal times: the row logged first
    same = np.flatnonzero(at_.to_numpy() == at_.to_numpy()[latest])
    result = log["result"].iloc[same[-1]]  # as contact_latest keeps it: the last logged at that time
    reached = at_[[policy.is_reached(r) for r in log["result"].tolist()]]
    return pd.DataFrame({"customer_key": [key], "last_at": [at_.iloc[latest]], "last_result": [result],
                         "reached_at": [reached.max() if len(reached) else pd.NaT]})


def _model_for(info: SnapshotInfo) -> ShortageModel:
    path = (info.meta.get("model") or {}).get("path")
    try:
        return load_model(info.model_name or "rite")
    except ModelError:
        if path:
            return load_model(path)
        raise


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
        day = daily.pick_week_ago(list(snaps), as_of)
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

        ovr = store.active_overrides(KIND)
        if not newest and len(ovr):  # re-scoring an old day: only overrides made by then count
            end_of_day = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
            ovr = ovr[[c < end_of_day for c in ovr["created_at"]]]
        result.customers, applied = daily.apply_overrides(result.customers, ovr, model, now)
        if applied:
            crisis = crisis_level(result, _eta(crisis))
        # named owners: a stored assignment (tierctl assign) wins over the export's advisor
        assigned = store_owners.active_assignments(store, KIND)
        if len(assigned):
            result.customers = owners.with_person(result.customers, assigned, key="key")

        rows = daily.snapshot_frame(result)
        dims = model.dim_keys
        prev = details = mv = None
        if prev_info is not None:
            prev = _prev_rows(store, prev_info, [])
            # the join scoring made with this run (A4.4) serves again, unless overrides re-sorted the rows
            pos = None if applied else result.positions_in_previous(prev["customer_key"])
            mv = daily.tier_moves(prev, rows, model.tier_names, pos=pos)
            lim = detail_limit  # the why is worked out for the customers the lists will hold
            few = [*rows["customer_key"][daily.first_n(mv["up"], lim) | daily.first_n(mv["down"], lim)].tolist(),
                   *prev["customer_key"][daily.first_n(mv["resolved"], lim)].tolist()]
            if few:  # the why of a tier change (and who left) needs details of those few only
                fields = [*dims, *(f"reason_{k}" for k in dims), "escalations"]
                details = store.snapshot_rows(prev_info.id, fields=fields, keys=few,
                                              generic=("customer_key", "customer_id", "name", "score"))
        start = dt.datetime.combine(as_of, dt.time(0), tzinfo=tz)
        rows = daily.carry_forward(rows, prev, start, pos=mv["pos"] if mv is not None else None)
        # the snapshot compresses on a thread while the changes and alerts are worked out
        encoded = None if dry_run else background.start(encode_snapshot, rows, name="tierctl-encode")
        changes = daily.diff_snapshots(prev, rows, model.tier_names, dims,
                                       prev_info.as_of if prev_info else None, details=details, moves=mv,
                                       limit=detail_limit)

        meta = daily.model_meta(model)
        meta.update({"crisis": crisis.to_json(), "counts": result.counts(), "generated_at": now.isoformat(),
                     "warnings": list(result.warnings), "overrides_applied": applied, **(extra_meta or {})})
        # the run whose alerts are known to be open (see _alerts_known): today's earlier run
        # when the day is scored again, else the previous run — read before the snapshot
        # replaces the former
        ref: tuple[SnapshotInfo, pd.DataFrame, np.ndarray, np.ndarray] | None = None
        if newest and replaced is not None:
            earlier = store.snapshot_rows(replaced.id, fields=["wait_days"], generic=("customer_key",))
            ref = (replaced, earlier, daily.key_positions(rows["customer_key"], earlier["customer_key"]),
                   daily.key_positions(earlier["customer_key"], rows["customer_key"]) < 0)
        elif newest and prev_info is not None and prev is not None and mv is not None:
            ref = (prev_info, prev, mv["pos"], mv["resolved"])
        fired: list[dict[str, Any]] = []
        fired_total = fired_customers = 0
        closed = 0
        if newest:
            cur = rows[["customer_key", "customer_id", "name", "wait_days"]].copy()
            red = result.customers["red_list"].to_numpy(dtype=bool) if "red_list" in result.customers else None
            if red is not None and red.any():
                cur["redlist_complaint"] = red & complaint_mask(result.customers, model)
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
            new = daily.alerts_to_fire(cur, meta["alerts"], meta["redlist_alert"], active, known=known)
            ovr_gone = _not_listed(ovr["customer_key"], rows["customer_key"]) if len(ovr) else []
            if dry_run:
                earlier = store.alerts_fired_on(KIND, as_of)
                if len(earlier):
                    earlier = earlier[daily.key_positions(earlier["customer_key"], rows["customer_key"]) >= 0]
                    drop = np.zeros(len(earlier), dtype=bool)  # what the run would close: lower rungs replaced
                    for _, keys, lower in daily.superseded(new, meta["alerts"]):
                        drop |= ((earlier["status"] == "open") & earlier["rule_id"].isin(lower)
                                 & earlier["customer_key"].astype(str).isin(keys)).to_numpy()
                    earlier = earlier[~drop]
                fired = _alert_records(earlier, tz, meta["alerts"]) + [
                    {"id": None, **r, "fired_on": as_of.isoformat(), "since": now.isoformat(), "status": "open",
                     "closed_at": None, "closed_by": None, "note": None} for r in _plain_records(new)]
                fired_total, fired_customers = len(fired), len({a["customer_key"] for a in fired})
                closed = len(store.active_alert_keys(KIND, keys=gone)) if gone else 0  # what a run would close
            else:
                # in key order: the index on the customer key then mostly grows at its end
                new = new.sort_values("customer_key", kind="mergesort").reset_index(drop=True)
                store.insert_alerts(KIND, new, as_of, now)
                _supersede(store, new, meta["alerts"], now)
                closed = store.resolve_alerts(KIND, gone, now, NOT_LISTED)
                store.end_overrides(KIND, ovr_gone, at=now, status="ended", reason=NOT_LISTED)
                if detail_limit is not None and replaced is None:
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
                fired = _alert_records(today, tz, meta["alerts"], customers=detail_limit)
        sid = None
        if encoded is not None:
            sid = store.save_snapshot(KIND, as_of, model.name, source_name, source_hash, encoded(), meta, now=now)
    snapshot = {"id": sid, "as_of": as_of.isoformat(), "stored": not dry_run, "replaced": replaced is not None,
                "path": store.path, "previous_as_of": prev_info.as_of.isoformat() if prev_info else None,
                "latest": newest, "alerts_closed": closed, "overrides_applied": len(applied),
                "alerts_fired": fired_total, "alerts_fired_customers": fired_customers}
    return {"changes": changes, "alerts_fired": fired, "snapshot": snapshot, "crisis": crisis,
            "overrides_applied": applied}


def _supersede(store: Store, new: pd.DataFrame, rules: list[dict[str, Any]], now: dt.datetime) -> None:
    """Close the open lower wait alerts of the customers a higher one just fired for (an
    acknowledged one stays as it was): each open line then names the highest threshold
    reached and its recipient."""
    by = {r["id"]: r for r in rules}
    for rid, keys, lower in daily.superseded(new, rules):
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
    return sorted(set(keys[daily.key_positions(keys, listed) < 0].tolist())) if len(keys) else []


def _plain_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: daily._plain(v) for k, v in r.items()} for r in frame.to_dict("records")]


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
        return daily._iso_each(t.dt.tz_convert(tz) if tz else t)

    out = pd.DataFrame({
        "id": f["id"].astype("int64"), "customer_key": f["customer_key"], "customer_id": f["customer_id"],
        "name": f["name"], "rule_id": f["rule_id"], "recipient": f["recipient"], "reason": f["reason"],
        "fired_on": f["fired_on"].astype(str),  # a date or its ISO text: the same text
        "since": local("fired_at"), "status": f["status"], "closed_at": local("closed_at"),
        "closed_by": f["closed_by"], "note": f["note"],
    })
    if rules is not None:
        out = out.iloc[_severity_order(f, rules)]
    return daily._records(out, list(out.columns))


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


def load_result(store: Store, as_of: dt.date | None) -> ShortageResult:
    """The stored shortage snapshot of ``as_of`` (or the latest before it; no date: the
    latest) as a :class:`ShortageResult`."""
    before = as_of + dt.timedelta(days=1) if as_of else None
    info = store.latest_snapshot(KIND, before=before)
    if info is None:
        when = f"{as_of} 或更早" if as_of else ""
        raise NotFoundError(f"历史数据库 {store.path} 中没有{when}的配件短缺评分",
                            hint="先运行 tierctl score 导出文件.xlsx（不加 --dry-run），或在命令中直接给出导出文件")
    model = _model_for(info)
    rows = store.snapshot_rows(info.id)
    gen = info.meta.get("generated_at")
    now = dt.datetime.fromisoformat(gen) if gen else info.created_at
    warnings = list(info.meta.get("warnings", []))
    if as_of and info.as_of != as_of:
        warnings.append(f"没有 {as_of} 的评分，使用最近一次（{info.as_of}）保存的结果")
    return daily.result_from_rows(rows, model, info.as_of, now, warnings)


def apply_late_overrides(store: Store, result: ShortageResult, now: dt.datetime) -> list[dict[str, Any]]:
    """Bring a stored result (:func:`load_result`) up to the manual overrides made or
    cleared since it was stored, in place, so that documents rendered later that day
    (``tierctl render`` without a file) follow the manager's decision without a new
    ``score``.  Only changes made by the end of the as-of day and by ``now`` count.
    Returns what was applied (``to`` = the tier now used)."""
    info = store.latest_snapshot(KIND, before=result.as_of + dt.timedelta(days=1))
    if info is None or not len(result.customers):
        return []
    tz = now.tzinfo
    stored_at = info.created_at
    until = min(now, dt.datetime.combine(result.as_of + dt.timedelta(days=1), dt.time(0), tzinfo=tz))
    every = store.overrides_list(KIND)
    if not len(every):
        return []
    made = [stored_at < c <= until for c in every["created_at"]]
    new = every[[m and s == "active" for m, s in zip(made, every["status"], strict=True)]]
    ended = every[[c <= stored_at and s != "active" and e is not None and not pd.isna(e) and stored_at < e <= until
                   for c, s, e in zip(every["created_at"], every["status"], every["ended_at"], strict=True)]]
    cleared = set(ended["customer_key"]) - set(every.loc[every["status"] == "active", "customer_key"])
    f = result.customers
    keys = f["key"].astype(str)
    prefix = f"{daily.OVERRIDE_ID}:"
    lines = f["escalations"].astype(str).str.split("\n")
    revert = []  # a cleared override: back to the tier the run had computed ("P1→P0" -> P1)
    for k in cleared & set(keys):
        i = int(np.flatnonzero((keys == k).to_numpy())[0])
        own = [x for x in lines.iat[i] if x.startswith(prefix)]
        if own:
            before = own[-1][len(prefix):].strip().split("→", 1)[0].split("（", 1)[0].replace("维持", "").strip()
            if before in result.model.tier_names:
                r = ended[ended["customer_key"] == k].iloc[-1].to_dict()
                revert.append({**r, "label": before, "reason": r.get("end_reason") or "取消人工调整"})
    touched = set(new["customer_key"]) | {r["customer_key"] for r in revert}
    if not touched:
        return []
    # an earlier override line of a customer whose override changed no longer holds
    esc = ["\n".join(x for x in ln if not x.startswith(prefix)) if k in touched else "\n".join(ln)
           for k, ln in zip(keys, lines, strict=True)]
    f = f.assign(escalations=pd.Series(esc, index=f.index, dtype=object))
    rows = pd.concat([new, pd.DataFrame(revert)], ignore_index=True) if revert else new
    out, applied = daily.apply_overrides(f, rows, result.model, now)
    if revert:  # a cleared override leaves no line behind
        back = {r["customer_key"] for r in revert}
        esc = ["\n".join(x for x in str(e).split("\n") if not x.startswith(prefix)) if k in back else str(e)
               for k, e in zip(out["key"].astype(str), out["escalations"], strict=True)]
        out["escalations"] = pd.Series(esc, index=out.index, dtype=object).astype("category")
    result.customers = out
    return applied


# -- finding a customer --------------------------------------------------------------------
def resolve_customer(store: Store, ident: str, info: SnapshotInfo | None = None) -> dict[str, Any]:
    """The customer a user means by ``ident``: a customer id/key, a name or a phone
    number, looked up in the given (default: latest) snapshot, else anywhere in history."""
    info = info or store.latest_snapshot(KIND)
    if info is None:
        raise NotFoundError(f"历史数据库 {store.path} 中还没有任何评分记录",
                            hint="先运行 tierctl score 导出文件.xlsx（不加 --dry-run）")
    ident = ident.strip()
    m = store.find_customers(info.id, ident)
    if len(m) > 1:
        exact = m[m["customer_key"] == ident]
        if len(exact) == 1:
            m = exact
        else:
            who = "；".join(f"{r['customer_id'] or r['customer_key']} {r['name'] or ''}".strip()
                           for r in m.head(10).to_dict("records"))
            raise UsageError(f"「{ident}」对应多位客户：{who}", hint="请改用客户编号")
    if len(m) == 1:
        r = m.iloc[0].to_dict()
        return {"customer_key": r["customer_key"], "customer_id": r["customer_id"], "name": r["name"],
                "phone": r["phone"], "label": r["label"], "score": daily._plain(r["score"]),
                "listed": True, "snapshot": info}
    if store.known_key(KIND, ident):
        rows = store.customer_rows(KIND, ident)
        r = rows.iloc[-1].to_dict()
        return {"customer_key": ident, "customer_id": r.get("customer_id"), "name": r.get("name"),
                "phone": r.get("phone"), "label": r.get("label"), "score": daily._plain(r.get("score")),
                "listed": False, "snapshot": info}
    raise NotFoundError(f"在 {info.as_of} 的名单和历史记录中都找不到客户「{ident}」",
                        hint="可用客户编号、姓名或手机号；tierctl tasks --view calls 可列出当前名单")


def _who(c: dict[str, Any]) -> dict[str, Any]:
    return {"customer_key": c["customer_key"], "customer_id": c.get("customer_id"), "name": c.get("name"),
            "phone": c.get("phone")}


# -- tasks -----------------------------------------------------------------------------------
def task_rows(store: Store, info: SnapshotInfo, day: dt.date,
              generic: tuple[str, ...] | None = None, keys: list[str] | None = None) -> tuple[pd.DataFrame, int]:
    """What the task list is computed from: the snapshot's customers (or ``keys`` only)
    with their waits moved on to ``day`` (and how many days that was) and active
    overrides applied."""
    rows = store.snapshot_rows(info.id, fields=["wait_days", "first_seen", "first_due", owners.ADVISOR],
                               **({"generic": generic} if generic else {}), **({"keys": keys} if keys else {}))
    stale = (day - info.as_of).days
    if stale:
        rows["wait_days"] = rows["wait_days"] + stale
    ovr = store.active_overrides(KIND)
    if len(ovr):
        lab = ovr.drop_duplicates("customer_key", keep="last").set_index("customer_key")["label"]
        rows["label"] = rows["customer_key"].map(lab).astype(object).fillna(rows["label"])
    # the person as of now: today's assignments count at once (like overrides)
    assigned = store_owners.active_assignments(store, KIND)
    if len(assigned) or owners.ADVISOR in rows:
        rows = owners.with_person(rows, assigned, key="customer_key")
    return rows, stale


def ordered_tasks(store: Store, info: SnapshotInfo, day: dt.date, now: dt.datetime, cal: WorkCalendar,
                  view: str = "due", generic: tuple[str, ...] | None = None, owner: str | None = None
                  ) -> tuple[pd.DataFrame, list[dict[str, Any]], int, dict[str, Any] | None]:
    """The task list of ``day`` from ``info`` ordered (:func:`tierctl.daily.order_tasks`)
    under the snapshot's contact policy and crisis level: (tasks, tiers, days the
    snapshot is old, what the crisis level changes — :func:`crisis_note`).  With
    ``owner``, one person's list: their customers, and those of the role they name."""
    tiers = _tiers(info)
    policy = _policy(info)
    crisis = _crisis_response(info, policy)
    rows, stale = task_rows(store, info, day, generic=generic)
    if owner is not None:
        rows = rows[owners.owner_mask(rows["label"], rows.get(owners.PERSON), owner, tiers)].reset_index(drop=True)
    tasks = daily.order_tasks(rows, tiers, last_contacts(store, policy), day, now, cal, view=view, policy=policy,
                              crisis=crisis)
    return tasks, tiers, stale, crisis_note(info, tiers, crisis)


def tasks_report(store: Store, day: dt.date, now: dt.datetime, cal: WorkCalendar, view: str = "due",
                 limit: int | None = None, owner: str | None = None) -> dict[str, Any]:
    """The contact tasks of ``day``, from the latest snapshot on or before it and the
    contact log only (plus active overrides).  ``count`` and ``overdue`` cover every
    task; ``groups`` lists the first ``limit`` (all when None) — a screen shows a
    hundred, and turning ninety thousand tasks into records would cost more than
    finding them."""
    info = store.latest_snapshot(KIND, before=day + dt.timedelta(days=1))
    if info is None:
        raise NotFoundError(f"历史数据库 {store.path} 中没有 {day} 或更早的评分",
                            hint="先运行 tierctl score 导出文件.xlsx（不加 --dry-run）")
    tasks, tiers, stale, crisis = ordered_tasks(store, info, day, now, cal, view, owner=owner)
    listed = daily.describe_tasks(tasks.head(limit) if limit else tasks, tiers, day, view=view)
    warnings = list(cal.warnings)
    if stale > 0:
        warnings.insert(0, f"最近一次评分是 {info.as_of}（{stale} 天前）：等待天数已顺延，分级可能已过时，请先运行 tierctl score")
    return {"date": day.isoformat(), "view": view, "now": now.isoformat(), "snapshot": info.to_json(),
            "count": int(len(tasks)), "overdue": int(tasks["overdue"].sum()) if view == "due" else int(
                (tasks["overdue"] & tasks["is_due"]).sum()),
            "crisis": crisis, "groups": daily.task_records(listed), "warnings": warnings}


def crisis_note(info: SnapshotInfo, tiers: list[dict[str, Any]], crisis: CrisisResponse | None
                ) -> dict[str, Any] | None:
    """The crisis level behind the task list and what it changes: the tiers whose cadence
    it tightens and the tiers it hands to another owner."""
    c = info.meta.get("crisis")
    if not c:
        return None
    out = {"level": c.get("level"), "label": c.get("label"), "contact_max_days": None, "contact_note": None,
           "tightened": [], "owners": {}}
    if crisis is not None:
        out["contact_max_days"] = None if crisis.contact_max_days is None else float(crisis.contact_max_days)
        for t in tiers:
            e = effective(t, crisis)
            if e["capped"]:
                out["tightened"].append(t["name"])
                out["contact_note"] = crisis.contact_note or days_text(crisis.contact_max_days or 1)
            if e["owner_changed"]:
                out["owners"][t["name"]] = e["owner"]
    return out


# -- alerts ----------------------------------------------------------------------------------
def alerts_report(store: Store, tz: dt.tzinfo | None, *, include_closed: bool = False) -> dict[str, Any]:
    frame = store.alerts_list(KIND, statuses=None if include_closed else ("open",))
    latest = store.latest_snapshot(KIND)
    rules = latest.meta.get("alerts", []) if latest else []
    records = _alert_records(frame, tz, rules)
    _with_escalations(store, records, tz)
    return {"alerts": records, "count": int(len(frame))}


def _with_escalations(store: Store, records: list[dict[str, Any]], tz: dt.tzinfo | None) -> None:
    """Each alert's escalation (``escalated_to``, ``escalated_at``; None when it has not
    escalated): an alert nobody acknowledged in time goes on to the next recipient
    (:mod:`tierctl.notify.escalation`)."""
    from tierctl.store.notify import escalations

    esc = escalations(store, KIND)
    by = {int(r["alert_id"]): r for r in esc.to_dict("records")} if len(esc) else {}
    for a in records:
        e = by.get(int(a["id"]))
        a["escalated_to"] = e["to_recipient"] if e else None
        a["escalated_at"] = _local(e["escalated_at"], tz) if e else None


def ack_alerts(store: Store, ids: list[int], now: dt.datetime, by: str | None, note: str | None) -> dict[str, Any]:
    done = store.ack_alerts(ids, now, by, note)
    return {"acked": [d["id"] for d in done if d["status_before"] == "open"],
            "already_closed": [{"id": d["id"], "status": d["status_before"]} for d in done
                               if d["status_before"] != "open"],
            "alerts": done}


# -- contacts --------------------------------------------------------------------------------
def log_contact(store: Store, ident: str, *, result: str, at: dt.datetime, now: dt.datetime,
                cal: WorkCalendar, note: str | None = None, by: str | None = None, plan: str | None = None,
                done_at: dt.datetime | None = None, channel: str | None = None) -> dict[str, Any]:
    """Log a contact.  One that reached the customer resets their contact clock; one
    whose result says they were not reached (``[contacts] not_reached`` of the model:
    未接通, 关机 …) does not, and they are due again the next (working) day.
    ``next_due`` is the customer's next deadline as ``tierctl tasks`` will show it."""
    if not result.strip():
        raise UsageError("--result 不能为空", hint="例如 --result 已接通 或 --result 未接通")
    c = resolve_customer(store, ident)
    info: SnapshotInfo = c["snapshot"]
    tier_list = _tiers(info)
    tiers = {t["name"]: t for t in tier_list}
    policy = _policy(info)
    crisis = _crisis_response(info, policy)
    label = c["label"]
    ovr = store.active_overrides(KIND)
    if len(ovr):
        mine = ovr[ovr["customer_key"] == c["customer_key"]]
        if len(mine):
            label = mine.iloc[-1]["label"]
    tier = tiers.get(label, {})
    owner = by or (effective(tier, crisis)["owner"] if tier else None)
    cid = store.add_contact(KIND, customer_key=c["customer_key"], customer_id=c.get("customer_id"),
                            name=c.get("name"), at=at, result=result.strip(), note=note, plan=plan, done_at=done_at,
                            by=by, score=c.get("score"), label=label, owner=owner, logged_at=now,
                            channel=channel)
    reached = policy.is_reached(result)
    next_due = None
    if c["listed"] and tier:
        day = now.astimezone(now.tzinfo).date()
        rows, _ = task_rows(store, info, day, keys=[c["customer_key"]])
        last = _last_contact_of(store, c["customer_key"], policy)
        t = daily.describe_tasks(daily.order_tasks(rows, tier_list, last, day, now, cal, view="all", policy=policy,
                                                   crisis=crisis), tier_list, day)
        if len(t):
            next_due = str(t["due"].iat[0])
    return {"id": cid, **_who(c), "tier": label, "at": at.isoformat(), "result": result.strip(), "note": note,
            "by": by, "owner": owner, "channel": channel, "listed": c["listed"], "reached": reached,
            "next_due": next_due, "warnings": list(cal.warnings)}


# the execution record (SPEC B) plus the channel, which tierctl contacts import reads back
EXPORT_COLUMNS = ["客户", "风险分", "等级", "负责人", "联系时间", "联系结果", "客户反馈", "后续方案", "完成时间", "渠道"]


def contacts_record(store: Store, tz: dt.tzinfo | None, since: dt.date | None = None,
                    until: dt.date | None = None) -> pd.DataFrame:
    """The execution record (执行记录): one row per logged contact, oldest first."""
    lo = dt.datetime.combine(since, dt.time(0), tzinfo=tz) if since else None
    hi = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(0), tzinfo=tz) if until else None
    f = store.contacts_list(KIND, since=lo, until=hi)

    def when(t: Any) -> str:
        return t.astimezone(tz).strftime("%Y-%m-%d %H:%M") if isinstance(t, dt.datetime) else ""

    from tierctl.contacts_import import load_contacts_model

    channels = load_contacts_model()
    rows = []
    for r in f.to_dict("records") if len(f) else []:
        who = r["name"] or ""
        if r["customer_id"] and r["customer_id"] != r["name"]:
            who = f"{who}（{r['customer_id']}）" if who else str(r["customer_id"])
        rows.append([who, r["score"], r["label"] or "", r["owner"] or r["by"] or "", when(r["at"]), r["result"] or "",
                     r["note"] or "", r["plan"] or "", when(r["done_at"]),
                     channels.label_of(r.get("channel")) if r.get("channel") else ""])
    out = pd.DataFrame(rows, columns=EXPORT_COLUMNS) if rows else pd.DataFrame({c: [] for c in EXPORT_COLUMNS})
    return out


# -- overrides --------------------------------------------------------------------------------
def set_override(store: Store, ident: str, tier: str, *, reason: str, by: str | None,
                 now: dt.datetime) -> dict[str, Any]:
    """Record a manual tier for a customer on the current list.  It holds from the next
    score run on (and at once in tasks) until cleared or the customer leaves the list."""
    if not reason or not reason.strip():
        raise UsageError("人工调整必须写明原因", hint='例如 --reason "客户已上门投诉，区域经理要求按 P0 处理"')
    info = store.latest_snapshot(KIND)
    c = resolve_customer(store, ident, info)
    names = [t["name"] for t in _tiers(c["snapshot"])]
    tier = tier.strip().upper()
    if tier not in names:
        raise UsageError(f"未知的分级「{tier}」", hint=f"可选：{'、'.join(names)}")
    if not c["listed"]:
        raise NotFoundError(f"客户「{ident}」不在最新（{c['snapshot'].as_of}）的名单中，无需调整")
    releases: list[dict[str, str]] = []
    if c["label"] in names and names.index(tier) > names.index(c["label"]):
        # lowering the tier releases the raises that hold (issue 14): say which, before the next run drops them
        held = store.snapshot_rows(c["snapshot"].id, fields=["holds"], keys=[c["customer_key"]],
                                   generic=("customer_key",))
        if "holds" in held and len(held):
            releases = parse_holds(held["holds"].iat[0])
    with store.transaction():
        store.end_overrides(KIND, [c["customer_key"]], at=now, status="replaced", reason="被新的人工调整取代", by=by)
        oid = store.add_override(KIND, customer_key=c["customer_key"], customer_id=c.get("customer_id"),
                                 name=c.get("name"), label=tier, previous_label=c["label"], reason=reason.strip(),
                                 by=by, created_at=now)
    return {"id": oid, **_who(c), "from": c["label"], "to": tier, "reason": reason.strip(), "by": by,
            "at": now.isoformat(), "holds": "直到用 --clear 取消，或客户离开名单",
            "releases": releases}


def clear_override(store: Store, ident: str, *, reason: str | None, by: str | None, now: dt.datetime
                   ) -> dict[str, Any]:
    c = resolve_customer(store, ident)
    n = store.end_overrides(KIND, [c["customer_key"]], at=now, status="cleared", reason=(reason or "").strip()
                            or "手动取消", by=by)
    if not n:
        raise NotFoundError(f"客户「{ident}」没有生效中的人工调整")
    return {**_who(c), "cleared": n, "at": now.isoformat(), "reason": reason, "by": by,
            "note": "下一次 tierctl score 起按模型分级"}


# -- history and why ---------------------------------------------------------------------------
def history_report(store: Store, ident: str, tz: dt.tzinfo | None) -> dict[str, Any]:
    """Every tier change of a customer with its date, time and cause, manual overrides
    included, and the day-by-day trajectory."""
    c = resolve_customer(store, ident)
    key = c["customer_key"]
    rows = store.customer_rows(KIND, key)
    snaps = store.list_snapshots(KIND)
    latest = snaps[-1]
    tier_names = [t["name"] for t in _tiers(latest)]
    dims = _dims(latest.meta)
    events = daily.tier_events(rows, [(s.as_of, s.created_at.astimezone(tz) if tz else s.created_at)
                                      for s in snaps], tier_names, dims)
    for o in store.overrides_list(KIND, key).to_dict("records"):
        events.append({"date": o["created_at"].astimezone(tz).date().isoformat(), "at": _local(o["created_at"], tz),
                       "type": "override", "from": o["previous_label"], "to": o["label"],
                       "cause": [f"人工调整（{o['by'] or '未署名'}）：{o['reason']}"]})
        if o["status"] != "active" and o.get("ended_at") is not None:
            kind = {"cleared": "override_cleared", "ended": "override_ended", "replaced": "override_replaced"}
            events.append({"date": o["ended_at"].astimezone(tz).date().isoformat(), "at": _local(o["ended_at"], tz),
                           "type": kind.get(o["status"], "override_ended"), "from": o["label"], "to": None,
                           "cause": [f"取消人工调整：{o['end_reason'] or ''}" + (f"（{o['ended_by']}）" if o.get("ended_by") else "")]})
    events.sort(key=lambda e: (e["at"] or e["date"], e["type"] not in ("listed", "returned")))
    trajectory = []
    for r in rows.to_dict("records") if len(rows) else []:
        trajectory.append({"date": r["as_of"].isoformat(), "tier": r["label"], "model_tier": r.get("model_tier"),
                           "score": daily._plain(r.get("score")), "wait_days": daily._plain(r.get("wait_days"))})
    contacts = store.contacts_list(KIND, key)
    active = store.active_overrides(KIND)
    active = active[active["customer_key"] == key] if len(active) else active
    return {"customer": _who(c), "listed": c["listed"], "tier": c["label"], "events": events,
            "trajectory": trajectory,
            "contacts": [{"at": _local(r["at"], tz), "result": r["result"], "note": r["note"], "by": r["by"]}
                         for r in contacts.to_dict("records")] if len(contacts) else [],
            "active_override": ({"to": active.iloc[-1]["label"], "reason": active.iloc[-1]["reason"],
                                 "by": active.iloc[-1]["by"], "since": _local(active.iloc[-1]["created_at"], tz)}
                                if len(active) else None)}


def why_report(store: Store, ident: str, day: dt.date | None, tz: dt.tzinfo | None) -> dict[str, Any]:
    """The stored score of a customer on ``day`` (default: the latest), rule by rule."""
    before = day + dt.timedelta(days=1) if day else None
    info = store.latest_snapshot(KIND, before=before)
    if info is None:
        raise NotFoundError(f"历史数据库 {store.path} 中没有{f' {day} 或更早' if day else '任何'}的评分")
    c = resolve_customer(store, ident, info)
    if not c["listed"]:
        raise NotFoundError(f"客户「{ident}」不在 {info.as_of} 的名单中",
                            hint="用 tierctl history 查看该客户在哪些日期有评分，再加 --date")
    rows = store.snapshot_rows(info.id, keys=[c["customer_key"]])
    row = {k: daily._plain(v) for k, v in rows.iloc[0].to_dict().items()}
    exp = daily.explain(row, info.meta)
    tiers = {t["name"]: t for t in _tiers(info)}
    t = tiers.get(row["label"], {})
    respond = rows.iloc[0].get("respond_by")
    active = store.active_overrides(KIND)
    active = active[active["customer_key"] == c["customer_key"]] if len(active) else active
    facts = {k: _fact(v) for k, v in row.items() if k in FACT_KEYS and v is not None}
    return {"customer": _who(c), "as_of": info.as_of.isoformat(), "snapshot_id": info.id,
            "model": (info.meta.get("model") or {}).get("name", info.model_name), "facts": facts, **exp,
            "policy": {"owner": t.get("owner"), "respond_by": respond.isoformat() if isinstance(respond, pd.Timestamp)
                       and not pd.isna(respond) else None, "cadence_days": t.get("cadence_days"),
                       "channel": t.get("channel"), "action": t.get("action"),
                       # how often and by whom at the run's crisis level (what tasks asks for)
                       "contact": _contact_policy(info, t)},
            "active_override": ({"to": active.iloc[-1]["label"], "reason": active.iloc[-1]["reason"],
                                 "by": active.iloc[-1]["by"], "since": _local(active.iloc[-1]["created_at"], tz)}
                                if len(active) else None)}


def _contact_policy(info: SnapshotInfo, tier: dict[str, Any]) -> dict[str, Any] | None:
    if not tier:
        return None
    policy = _policy(info)
    response = _crisis_response(info, policy)
    e = effective(tier, response)
    return {"cadence_days": e["cadence_days"], "note": e["note"], "owner": e["owner"],
            "crisis_level": response.level if response else None, "tightened": e["capped"],
            "owner_changed": e["owner_changed"]}


FACT_KEYS = ("car", "part", "advisor", "wait_start", "wait_days", "followers", "identity", "usage", "contacts_7d",
             "contacts_prev_week", "notes", "mood", "negative_post", "media_attention", "complaint", "red_list")


def _fact(v: Any) -> Any:
    if isinstance(v, pd.Timestamp):
        return v.date().isoformat() if v == v.normalize() else v.isoformat()
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def sha256_file(path: Any) -> str | None:
    """The SHA-256 of a file (hex), None when it cannot be read."""
    import hashlib

    try:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    except OSError:
        return None


def sha256_in_background(path: Any) -> Callable[[], str | None]:
    """Start :func:`sha256_file` on a thread and return the call that waits for it.
    ``hashlib`` lets go of the interpreter while it reads and hashes a megabyte, so the
    hash of a large export runs beside ingest and scoring on the second core instead of
    adding its time to the run."""
    return background.start(sha256_file, path, name="tierctl-sha256")


__all__ = ["NOT_LISTED", "ack_alerts", "alerts_report", "clear_override", "contacts_record", "history_report",
           "load_result", "log_contact", "previous_frames", "record_run", "resolve_customer", "set_override",
           "sha256_file", "sha256_in_background", "tasks_report", "why_report"]
