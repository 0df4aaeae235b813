"""Who is due for contact on a day, in the list's order, and the texts a person reads (pure)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from tierctl.daily.cadence import ContactPolicy, CrisisResponse, effective
from tierctl.daily.calendar import WorkCalendar
from tierctl.daily.values import CALL_TIERS, EVENING_MIN_DAYS, _records
from tierctl.kernels.distinct import map_distinct
from tierctl.kernels.keyjoin import key_positions
from tierctl.kernels.radix_dates import dates_by_distinct


# -- tasks -------------------------------------------------------------------------------------
def _fmt_delta(hours: float) -> str:
    h = abs(hours)
    if h < 24:
        return f"{int(round(h))} 小时"
    return f"{int(h // 24)} 天" + (f" {int(round(h % 24))} 小时" if round(h % 24) else "")


def _iso_each(ts: pd.Series) -> np.ndarray:
    """ISO text of each timestamp, formatted once per distinct value."""
    return map_distinct(ts, lambda u: u.isoformat())


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
    eff = {k: effective(t, crisis) for k, t in by.items()}
    keep = rows["label"].isin(list(by)).to_numpy().copy()
    if view == "calls":
        keep &= rows["label"].isin([t["name"] for t in tiers[:call_tiers]]).to_numpy()
    elif view == "evening":
        keep &= (rows["wait_days"] >= evening_min_days).to_numpy()
    f = rows[keep].reset_index(drop=True)
    last_at, reached_at, result = _contact_times(f, last, policy, now.tzinfo)
    # per-tier figures through the label's codes (one look-up per distinct label)
    codes, uniq = pd.factorize(f["label"])
    w = _deadlines(f, last_at, reached_at, _PerTier(codes, uniq), eff, policy, day, now, cal)
    w.update(last_at=last_at, result=result, codes=codes)
    if view == "due":  # only the rows listed
        sel = np.flatnonzero(w["is_due"])
        f = f.iloc[sel].reset_index(drop=True)
        w = {k: v.iloc[sel].reset_index(drop=True) if isinstance(v, pd.Series) else v[sel] for k, v in w.items()}
    return _task_frame(f, w, _PerTier(w["codes"], uniq), by, eff)


class _PerTier:
    """A per-tier figure for each row, through the rows' label codes."""

    def __init__(self, codes: np.ndarray, uniq: Any) -> None:
        self.codes, self.uniq = codes, uniq

    def __call__(self, pick: Any, dtype: Any) -> np.ndarray:
        return np.array([pick(u) for u in self.uniq], dtype=dtype)[self.codes] if len(self.codes) \
            else np.zeros(0, dtype=dtype)


def _contact_times(f: pd.DataFrame, last: pd.DataFrame, policy: ContactPolicy, tz: dt.tzinfo | None
                   ) -> tuple[pd.Series, pd.Series, np.ndarray]:
    """Each row's latest contact of this stay on the list, the latest that reached them,
    and the latest one's result (see :func:`order_tasks` for ``last``)."""
    n_all = len(f)
    nat = np.full(n_all, np.datetime64("NaT"), dtype="datetime64[ns]")
    last_at, reached_at = _utc_series(nat, f.index), _utc_series(nat.copy(), f.index)
    result: np.ndarray = np.full(n_all, None, dtype=object)
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
            result = last["last_result"].to_numpy(dtype=object)[take]  # a copy (fancy indexing)
            result[~hit] = None
        if "reached_at" in last:  # worked out by the caller (tierctl.daily.reading.last_contacts)
            reached_at = stamps("reached_at")
        elif "last_result" in last:
            ok = map_distinct(last["last_result"], policy.is_reached, True, bool)
            reached_at = last_at.where(np.where(hit, ok[take], True))
        else:
            reached_at = last_at.copy()
    if "first_seen" in f:  # a contact from an earlier stay on the list does not count
        fs = pd.to_datetime(f["first_seen"], utc=True)
        last_at = last_at.where(~(fs.notna() & last_at.notna() & (last_at < fs)))
        reached_at = reached_at.where(~(fs.notna() & reached_at.notna() & (reached_at < fs)))
    if tz is not None:
        last_at, reached_at = last_at.dt.tz_convert(tz), reached_at.dt.tz_convert(tz)
    return last_at, reached_at, result


def _deadlines(f: pd.DataFrame, last_at: pd.Series, reached_at: pd.Series, per_tier: _PerTier,
               eff: dict[str, dict[str, Any]], policy: ContactPolicy, day: dt.date, now: dt.datetime,
               cal: WorkCalendar) -> dict[str, Any]:
    """Each row's deadline (first contact on the clock; the cadence in days, or on the
    clock below a day), whether it is due today and whether it is overdue."""
    tz = now.tzinfo
    contacted = reached_at.notna().to_numpy()
    # the latest contact of this stay did not reach the customer: a retry
    retry = last_at.notna().to_numpy() & (reached_at.isna() | (last_at > reached_at)).to_numpy()
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
        out[mask] = dates_by_distinct(d, n[mask], mode[mask], add)
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
    # from here ``clock``: the rows whose deadline is a time (a capped cadence below a day)
    return {"contacted": contacted, "retry": retry, "hours_left": hours_left, "due_day": due_day, "due_at": due_at,
            "first_due": first_due, "clock": on_clock, "is_due": np.where(contacted, due_day <= today, True),
            "overdue": np.where(contacted & ~on_clock, due_day < today, hours_left < 0)}


def _task_frame(f: pd.DataFrame, w: dict[str, Any], per_tier: _PerTier, by: dict[str, dict[str, Any]],
                eff: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """The rows of the task list with their figures, sorted: owner (by its most urgent
    tier), overdue first, tier, deadline; ties keep the snapshot's order."""
    n = len(f)
    rank = {k: i for i, k in enumerate(by)}
    tier_rank = per_tier(lambda u: rank[u], np.int64)
    out = pd.DataFrame({c: (f[c] if c in f else pd.Series([None] * n, dtype=object))
                        for c in ("customer_key", "customer_id", "name", "phone")})
    out["label"] = f["label"].astype(object)
    out["score"] = f["score"].to_numpy(dtype=float) if "score" in f else np.nan
    out["wait_days"] = f["wait_days"].to_numpy(dtype=np.int64)
    out["owner"] = per_tier(lambda u: eff[u]["owner"], object)
    out["owner_role"] = per_tier(lambda u: by[u].get("owner_role"), object)
    out["owner_person"] = f["owner_person"].to_numpy(dtype=object) if "owner_person" in f \
        else np.full(n, None, dtype=object)
    out["is_due"] = w["is_due"]
    out["overdue"] = w["overdue"]
    out["tier_rank"] = tier_rank
    out["retry"] = w["retry"]
    out["last_result"] = np.where(w["last_at"].notna().to_numpy(), w["result"], None)
    for c in ("contacted", "hours_left", "due_day", "clock", "due_at", "first_due", "last_at"):
        out[c] = w[c]
    out["note"] = per_tier(lambda u: eff[u]["note"], object)
    contacted, clock, due_day = w["contacted"], w["clock"], w["due_day"]
    # sort keys, all numeric: owner (by its most urgent tier), overdue first, tier, deadline
    due_ns = np.where(contacted & ~clock,
                      (due_day + np.timedelta64(1, "D")).astype("datetime64[ns]").astype(np.int64),
                      w["first_due"].where(~pd.Series(clock, dtype=bool), w["due_at"]).dt.tz_convert("UTC")
                      .dt.tz_localize(None).to_numpy().astype("datetime64[ns]").astype(np.int64) if n
                      else np.zeros(0, dtype=np.int64))
    owner_codes, _ = pd.factorize(out["owner"])
    owner_rank = out.groupby(owner_codes)["tier_rank"].transform("min").to_numpy() if n else owner_codes
    order = np.lexsort((due_ns, tier_rank, ~w["overdue"].astype(bool), owner_codes, owner_rank))
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
