"""The daily dashboard (``tierctl report``): one self-contained HTML page, and its charts
as PNG files on request.

Three steps, each usable on its own:

* :func:`gather` reads what the page shows from the store into a plain, JSON-ready
  dict: the crisis level and its criteria, P0–P3 counts today and on every stored day,
  today's wait-days histogram, the open alerts, today's tasks by owner, the changes
  since the previous run and — when those jobs have stored snapshots — the RFM type
  distribution, the RFM migration between the last two snapshots and the churn ROI by
  level.  Everything that grows with the customer count is aggregated inside SQLite
  (``GROUP BY`` over the snapshot rows, JSON fields extracted in the database); only
  bounded lists (the first alerts, tasks and changes) come back as rows.
* :func:`figures` turns that dict into SVG charts (:mod:`tierctl.charts`), each with a
  table holding the same numbers.
* :func:`write_report` renders ``dashboard.html`` through the strict Jinja environment
  of :mod:`tierctl.render` (autoescaped: customer names and notes are text, never
  markup) and, with ``png``, converts each chart with ``cairosvg``.

No command-line code here: the ``report`` command opens the store, calls these and
prints what comes back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from tierctl import charts, daily
from tierctl.errors import ModelError, NotFoundError, RenderError, UsageError
from tierctl.store.core import SnapshotInfo, Store

SHORTAGE, RFM, CHURN = "shortage", "rfm", "churn"
TIER_COLORS = ["#d73027", "#fc8d59", "#fee08b", "#91cf60", "#74add1", "#999999"]
CRISIS_COLORS = {"green": "#1a9850", "yellow": "#fee08b", "orange": "#fc8d59", "red": "#d73027"}
WAIT_COLORS = ["#91cf60", "#d9ef8b", "#fee08b", "#fc8d59", "#d73027"]
RFM_COLORS = ["#1a9850", "#66bd63", "#a6d96a", "#fdae61", "#4575b4", "#74add1", "#abd9e9", "#bdbdbd"]
LEVEL_COLORS = ["#91cf60", "#fee08b", "#fc8d59", "#d73027"]
LEVEL_EN = {"low": "Low", "mid": "Medium", "high": "High", "extreme": "Extreme"}
HTML_NAME = "dashboard.html"


@dataclass
class Limits:
    """How many rows the page lists (the counts always cover everyone)."""

    alerts: int = 50
    tasks_per_owner: int = 15
    changes: int = 30
    trend_days: int = 60
    max_hist_days: int = 90


# =========================================================================================
# Gathering
# =========================================================================================
def gather(store: Store, day: dt.date, now: dt.datetime, *, lang: str = "zh", working_days: bool = False,
           centre: str | None = None, limits: Limits | None = None, calendar: Any = None) -> dict[str, Any]:
    """Everything the dashboard of ``day`` shows, as JSON-ready data.  ``calendar``: the
    :class:`tierctl.daily.WorkCalendar` of the task list (default: one from ``working_days``).

    Uses the newest snapshot of each job on or before ``day``; a job without one is
    ``None``.  Raises :class:`NotFoundError` when no job has any snapshot."""
    lim = limits or Limits()
    warnings: list[str] = []
    data: dict[str, Any] = {"date": day.isoformat(), "lang": lang, "generated_at": now.isoformat(),
                            "centre": centre or None, "warnings": warnings}
    data["shortage"] = _shortage(store, day, now, lang, working_days, lim, warnings, calendar)
    data["rfm"] = _rfm(store, day, lang, warnings)
    data["churn"] = _churn(store, day, now, lang, warnings)
    if data["shortage"] is None and data["rfm"] is None and data["churn"] is None:
        raise NotFoundError(f"历史数据库 {store.path} 中没有 {day} 或更早的评分、RFM 或流失风险结果",
                            hint="先运行 tierctl score 导出文件.xlsx（不加 --dry-run）保存一次评分")
    return data


def _on_or_before(store: Store, kind: str, day: dt.date) -> SnapshotInfo | None:
    return store.latest_snapshot(kind, before=day + dt.timedelta(days=1))


def _layout_names(info: SnapshotInfo) -> set[str]:
    return {c["name"] for c in (info.layout or [])}


def _values(store: Store, info: SnapshotInfo, name: str) -> pd.Series:
    """One payload field of every row of a snapshot, or the generic ``label`` when the
    snapshot has no such field."""
    if name in _layout_names(info):
        return store.snapshot_rows(info.id, fields=[name], generic=("customer_key",))[name]
    return store.snapshot_rows(info.id, fields=[], generic=("customer_key", "label"))["label"]


def _counted(values: pd.Series) -> list[tuple[Any, int]]:
    vc = values.dropna().value_counts(sort=False)
    return [(v.item() if hasattr(v, "item") else v, int(k)) for v, k in vc.items()]


def _shortage_model(info: SnapshotInfo) -> Any | None:
    from tierctl.shortage import load_model

    for cand in (info.model_name, (info.meta.get("model") or {}).get("path"), "rite"):
        if not cand:
            continue
        with contextlib.suppress(ModelError, OSError):
            return load_model(cand)
    return None


def _wait_thresholds(model: Any | None, meta: dict[str, Any]) -> list[tuple[int, str | None]]:
    """The wait-days reference lines: the T dimension's bands on ``wait_days`` (7, 14, 21,
    28 in the default model) plus every wait alert, each with the alert's recipient."""
    days: set[int] = set()
    if model is not None:
        for d in model.dimensions:
            for r in d.rules:
                if getattr(r, "type", "") == "band" and getattr(r, "field", "") == "wait_days":
                    days |= {int(lo) for lo, _ in r.bands if lo > 0}
    alerts = {int(a["min_days"]): a["recipient"] for a in meta.get("alerts", [])}
    days |= set(alerts)
    if not days:
        days = {7, 14, 21, 28}
    return [(d, alerts.get(d)) for d in sorted(days)]


def _tier_meta(info: SnapshotInfo, model: Any | None, lang: str) -> list[dict[str, Any]]:
    tiers = info.meta.get("tiers") or ([{"name": t.name, "label": t.label, "owner_short": t.owner_short}
                                        for t in model.tiers] if model is not None else [])
    en = {t.name: t for t in model.tiers} if model is not None else {}
    out = []
    for i, t in enumerate(tiers):
        label = t.get("label", "")
        owner = t.get("owner_short") or t.get("owner") or ""
        if lang == "en" and t["name"] in en:
            label = en[t["name"]].label_en or label
            owner = en[t["name"]].owner_short_en or owner
        out.append({"name": t["name"], "label": label, "owner": owner,
                    "color": TIER_COLORS[min(i, len(TIER_COLORS) - 1)]})
    return out


def _counts_sql(store: Store, ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Customers per label of snapshots whose meta has no counts."""
    out: dict[int, dict[str, int]] = {}
    for sid in ids:
        labels = store.snapshot_rows(sid, fields=[], generic=("customer_key", "label"))["label"]
        out[sid] = {str(v): k for v, k in _counted(labels)}
    return out


def _shortage(store: Store, day: dt.date, now: dt.datetime, lang: str, working_days: bool, lim: Limits,
              warnings: list[str], calendar: Any = None) -> dict[str, Any] | None:
    info = _on_or_before(store, SHORTAGE, day)
    if info is None:
        return None
    if info.as_of != day:
        warnings.append(f"没有 {day} 的配件短缺评分，显示最近一次（{info.as_of}）的结果"
                        if lang == "zh" else f"No shortage run for {day}: showing the latest one ({info.as_of})")
    model = _shortage_model(info)
    tiers = _tier_meta(info, model, lang)
    names = [t["name"] for t in tiers]

    # counts today and on every stored day (from each snapshot's meta; SQL where missing)
    snaps = [s for s in store.list_snapshots(SHORTAGE) if s.as_of <= info.as_of][-lim.trend_days:]
    missing = [s.id for s in snaps if not isinstance(s.meta.get("counts"), dict)]
    counted = _counts_sql(store, missing)
    trend: list[dict[str, Any]] = []
    for s in snaps:
        stored = s.meta.get("counts")
        c: dict[str, Any] = stored if isinstance(stored, dict) else counted.get(s.id, {})
        trend.append({"date": s.as_of.isoformat(), "counts": {n: int(c.get(n, 0)) for n in names}})
    today: dict[str, int] = trend[-1]["counts"] if trend else {n: 0 for n in names}
    total = sum(today.values())
    for t in tiers:
        t["count"] = today.get(t["name"], 0)
        t["share"] = round(100 * t["count"] / total, 1) if total else 0.0

    crisis = _crisis(info.meta.get("crisis"), model, lang)
    return {
        "as_of": info.as_of.isoformat(), "snapshot_id": info.id, "customers": info.row_count,
        "model": info.model_name, "stale_days": (day - info.as_of).days,
        "crisis": crisis, "tiers": tiers, "trend": trend,
        "wait": _wait(store, info, model, lim, lang),
        "alerts": _alerts(store, info, lim, lang),
        "tasks": _tasks(store, info, day, now, working_days, lim, calendar),
        "changes": _changes(store, info, names, lim, model),
    }


CRITERIA_EN = {"affected": "Customers affected", "longest_wait": "Longest wait (days)", "tiers": "P0 / P1 customers",
               "eta_weeks": "Parts ETA (weeks)", "complaints": "Already complained / posted"}


def _crisis(c: dict[str, Any] | None, model: Any | None, lang: str) -> dict[str, Any] | None:
    if not c:
        return None
    spec: dict[str, Any] = {}
    if model is not None:
        spec = next((lv for lv in model.crisis.levels if int(lv.get("level", 0)) == int(c["level"])), {})
    label, response = c.get("label", ""), c.get("response", "")
    if lang == "en":
        label = spec.get("label_en") or label
        response = spec.get("response_en") or response
    crit = []
    for x in c.get("criteria", []):
        v = x.get("value")
        text = " / ".join(f"{k} {val}" for k, val in v.items()) if isinstance(v, dict) else (
            f"{v:g}" if isinstance(v, float) else str(v))
        crit.append({"name": x.get("name"), "label": CRITERIA_EN.get(x.get("name"), x.get("label"))
                     if lang == "en" else x.get("label"), "value": text, "level": int(x.get("level", 1)),
                     "decisive": int(x.get("level", 1)) == int(c["level"]) and int(c["level"]) > 1})
    color = c.get("color", "")
    return {"level": int(c["level"]), "color": color, "hex": CRISIS_COLORS.get(color, "#999999"),
            "label": label, "response": response, "criteria": crit,
            # media attention (SPEC A4.6): the crisis is flagged for the PR plan (runs before issue 14: none)
            "pr_plan": bool(c.get("pr_plan", False)), "media_attention": int(c.get("media_attention") or 0),
            "media_customers": list(c.get("media_customers") or [])}


def _wait(store: Store, info: SnapshotInfo, model: Any | None, lim: Limits, lang: str) -> dict[str, Any]:
    waits = store.snapshot_rows(info.id, fields=["wait_days"], generic=("customer_key",)).get("wait_days")
    rows = [(int(a), n) for a, n in _counted(waits)] if waits is not None else []
    lines = _wait_thresholds(model, info.meta)
    longest = max((a for a, _ in rows), default=0)
    limit = max(35, (lines[-1][0] + 7) if lines else 35)
    hi = limit if longest + 1 <= limit else min(longest + 1, lim.max_hist_days + 1)
    width = max(1, math.ceil(hi / 45))
    hi = math.ceil(hi / width) * width
    open_last = longest >= hi
    nb = hi // width
    edges = [i * width for i in range(nb + 1)]
    counts = [0] * nb
    n = total_days = 0
    for a, k in rows:
        counts[min(a // width, nb - 1)] += k
        n += k
        total_days += a * k
    thresholds = [d for d, _ in lines]
    colors = [WAIT_COLORS[min(sum(1 for t in thresholds if e >= t), len(WAIT_COLORS) - 1)] for e in edges[:-1]]
    day_word = "天" if lang == "zh" else "d"
    ref = [{"days": d, "label": f"{d} {day_word}" + (f" · {who}" if who else "")} for d, who in lines]
    bands = []
    bounds = [0, *thresholds]
    for i, lo in enumerate(bounds):
        up = bounds[i + 1] if i + 1 < len(bounds) else None
        k = sum(c for a, c in rows if a >= lo and (up is None or a < up))
        label = f"{lo}–{up - 1}" if up is not None else f"≥{lo}"
        bands.append({"label": label, "count": k,
                      "share": round(100 * k / n, 1) if n else 0.0})
    return {"edges": edges, "counts": counts, "colors": colors, "open_last": open_last, "lines": ref,
            "bands": bands, "longest": longest, "mean": round(total_days / n, 1) if n else 0.0, "customers": n}


def _alerts(store: Store, info: SnapshotInfo, lim: Limits, lang: str = "zh") -> dict[str, Any]:
    """Open alerts: counts per recipient and, one line per customer, their most serious
    alert (the others are lower rungs of the same wait) with everyone already notified.
    Counted and ranked in SQL: a long shortage holds an alert or three per customer.  In
    English, reasons and recipients from the rules' ``*_en`` texts (the wait at firing
    kept)."""
    from tierctl.store.schema import alerts

    a = alerts.c
    open_ = sa.and_(store.centre_is(alerts), a.kind == SHORTAGE, a.status == "open")
    ranks = {r["id"]: -int(r["min_days"]) for r in info.meta.get("alerts", [])}
    ranks["redlist"] = -10_000
    rank = sa.case(ranks, value=a.rule_id, else_=0)
    cols = (a.id, a.customer_key, a.customer_id, a.name, a.rule_id, a.recipient, a.reason, a.fired_on)
    with store.reading() as conn:
        by = conn.execute(sa.select(a.recipient, sa.func.count()).where(open_).group_by(a.recipient)
                          .order_by(sa.func.min(rank), a.recipient)).all()
        customers = conn.execute(sa.select(sa.func.count(sa.distinct(a.customer_key))).where(open_)).scalar() or 0
        # most serious first: a customer's first row in this order is their worst alert;
        # read ever more rows until enough customers are listed (a window function
        # over every alert is ten times slower in SQLite)
        top: list[Any] = []
        seen: set[str] = set()
        batch = lim.alerts * 4
        offset = 0
        while len(top) < lim.alerts:
            rows = conn.execute(sa.select(*cols).where(open_).order_by(rank, a.fired_on, a.id)
                                .limit(batch).offset(offset)).all()
            for r in rows:
                if r.customer_key not in seen and len(top) < lim.alerts:
                    seen.add(r.customer_key)
                    top.append(r)
            if len(rows) < batch:
                break
            offset += batch
            batch *= 4
        keys = [r.customer_key for r in top]
        notified: dict[str, list[str]] = {k: [] for k in keys}
        for i in range(0, len(keys), 500):
            for k, who in conn.execute(sa.select(a.customer_key, a.recipient).where(
                    open_, a.customer_key.in_(keys[i:i + 500])).order_by(a.customer_key, rank, a.id)):
                if who not in notified[k]:
                    notified[k].append(who)
    shown = [{"id": int(r.id), "customer_id": r.customer_id, "name": r.name, "rule_id": r.rule_id,
              "recipient": r.recipient, "recipients": notified[r.customer_key], "reason": r.reason,
              "fired_on": r.fired_on.isoformat() if isinstance(r.fired_on, dt.date) else str(r.fired_on)}
             for r in top]
    if lang == "en":
        names = daily.alert_recipients_in_english(info.meta)
        for x in shown:
            x["recipient"], x["reason"] = daily.alert_in_english(x, info.meta)
            x["recipients"] = [names.get(w, w) for w in x["recipients"]]
        by = [(names.get(k, k), n) for k, n in by]
    count = sum(int(n) for _, n in by)
    return {"count": count, "customers": int(customers),
            "by_recipient": [{"recipient": k, "count": int(n)} for k, n in by],
            "items": shown, "more": max(0, int(customers) - len(shown))}


def _due_text(text: str) -> str:
    """``2026-11-20T11:00:00+08:00`` → ``11-20 11:00``; a date → ``11-20``."""
    try:
        if "T" in text:
            t = dt.datetime.fromisoformat(text)
            return f"{t:%m-%d %H:%M}"
        return f"{dt.date.fromisoformat(text):%m-%d}"
    except ValueError:
        return text


def _tasks(store: Store, info: SnapshotInfo, day: dt.date, now: dt.datetime,
           working_days: bool, lim: Limits, calendar: Any = None) -> dict[str, Any]:
    """Today's contact tasks by owner, as ``tierctl tasks`` computes them (the same
    inputs as :func:`tierctl.store.loop.tasks_report`), counted for everyone but turned
    into records only for the rows the page lists."""

    from tierctl.store.loop import ordered_tasks

    cal = calendar or daily.WorkCalendar(working_days)
    # no phone numbers: the page never shows them
    tasks, tiers, stale, _ = ordered_tasks(store, info, day, now, cal, "due",
                                           generic=("customer_key", "customer_id", "name", "label", "score"))
    # order_tasks sorts by owner (most urgent owner first): keep that order
    owners = list(dict.fromkeys(tasks["owner"].tolist()))
    count = tasks.groupby("owner", sort=False).size()
    overdue = tasks.groupby("owner", sort=False)["overdue"].sum()
    head = daily.describe_tasks(tasks.groupby("owner", sort=False).head(lim.tasks_per_owner), tiers, day)
    listed = {g["owner"]: g["tasks"] for g in daily.task_records(head)} if len(head) else {}
    groups = []
    for o in owners:
        n = int(count[o])
        groups.append({"owner": o, "count": n, "overdue": int(overdue[o]),
                       "tasks": [{**{k: t[k] for k in ("customer_id", "name", "tier", "wait_days", "task", "status",
                                                       "overdue")}, "due": _due_text(str(t["due"]))}
                                 for t in listed.get(o, [])],
                       "more": max(0, n - len(listed.get(o, [])))})
    warnings = list(cal.warnings)
    if stale > 0:
        warnings.insert(0, f"最近一次评分是 {info.as_of}（{stale} 天前）：等待天数已顺延，分级可能已过时")
    return {"count": int(len(tasks)), "overdue": int(tasks["overdue"].sum()), "groups": groups,
            "warnings": warnings}


def _changes(store: Store, info: SnapshotInfo, names: list[str], lim: Limits, model: Any | None
             ) -> dict[str, Any] | None:
    """New, upgraded, downgraded and resolved customers since the previous run: one
    pass over today's rows joined to the previous run's on the customer key (counted
    with numpy), and those who left; the why for the listed ones."""

    prev = store.latest_snapshot(SHORTAGE, before=info.as_of)
    if prev is None:
        return None
    gen = ("customer_key", "customer_id", "name", "label", "score")
    cur = store.snapshot_rows(info.id, fields=[], generic=gen)
    old = store.snapshot_rows(prev.id, fields=[], generic=gen)
    was = pd.Series(old["label"].astype(object).to_numpy(), index=old["customer_key"].astype(object).to_numpy())
    cur_keys = cur["customer_key"].astype(object)
    listed = cur_keys.isin(was.index).to_numpy()
    prev_label = cur_keys.map(was).to_numpy(dtype=object)
    gone_m = ~old["customer_key"].astype(object).isin(cur_keys).to_numpy()

    def tuples(f: pd.DataFrame, cols: tuple[str, ...], extra: np.ndarray | None = None) -> list[tuple]:
        vals = [f[c].astype(object).where(f[c].notna(), None).tolist() for c in cols]
        if extra is not None:
            vals.insert(4, [None if v is None or v != v else v for v in extra.tolist()])
        return list(zip(*vals, strict=True))

    rows = tuples(cur, ("customer_key", "customer_id", "name", "label", "score"), prev_label)
    gone = tuples(old.loc[gone_m], ("customer_key", "customer_id", "name", "label"))
    ri = {n: i for i, n in enumerate(names)}
    other = len(names)
    n = len(rows)
    now_rank = np.fromiter((ri.get(r[3], other) for r in rows), dtype=np.int64, count=n)
    was_rank = np.fromiter((ri.get(r[4], other) for r in rows), dtype=np.int64, count=n)
    score = np.fromiter((r[5] if r[5] is not None else 0.0 for r in rows), dtype=float, count=n)
    keys = np.array([r[0] for r in rows], dtype=object)
    new_m = ~listed
    up_m = listed & (now_rank < was_rank)
    down_m = listed & (now_rank > was_rank)

    def pick(mask: np.ndarray, *order: np.ndarray) -> list[tuple]:
        """The first rows of ``mask`` by ``order`` (most significant first), then key."""
        idx = np.flatnonzero(mask)
        if not len(idx):
            return []
        key_rank = np.empty(len(idx), dtype=np.int64)
        key_rank[np.argsort(keys[idx], kind="stable")] = np.arange(len(idx))
        o = np.lexsort((key_rank, *(x[idx] for x in reversed(order))))
        return [rows[i] for i in idx[o][:lim.changes]]

    new_rows = pick(new_m, now_rank, -score)
    up_rows = pick(up_m, now_rank, -score)
    down_rows = pick(down_m, was_rank)
    gone_sorted = sorted(gone, key=lambda r: (ri.get(r[3], other), r[0]))
    moves: dict[tuple[str, str], int] = {}
    for r in (rows[i] for i in np.flatnonzero(up_m | down_m)):
        moves[(r[4], r[3])] = moves.get((r[4], r[3]), 0) + 1
    counts = {"new": int(new_m.sum()), "upgraded": int(up_m.sum()), "downgraded": int(down_m.sum()),
              "resolved": len(gone)}
    why = _why(store, info, prev, [r[0] for r in up_rows] + [r[0] for r in down_rows], names, model)

    def who(r: tuple, moved: bool = False) -> dict[str, Any]:
        d = {"customer_id": r[1], "name": r[2], "tier": r[3]}
        if moved:
            d.update({"from": r[4], "to": r[3], "why": why.get(r[0], [])})
        return d

    shown_gone = gone_sorted[:lim.changes]
    return {"previous_as_of": prev.as_of.isoformat(), "counts": counts,
            "moves": [{"from": a, "to": b, "count": k} for (a, b), k in
                      sorted(moves.items(), key=lambda m: (ri.get(m[0][0], other), ri.get(m[0][1], other)))],
            "new": [who(r) for r in new_rows], "upgraded": [who(r, True) for r in up_rows],
            "downgraded": [who(r, True) for r in down_rows],
            "resolved": [{"customer_id": r[1], "name": r[2], "tier": r[3]} for r in shown_gone],
            "more": {"new": counts["new"] - len(new_rows), "upgraded": counts["upgraded"] - len(up_rows),
                     "downgraded": counts["downgraded"] - len(down_rows),
                     "resolved": counts["resolved"] - len(shown_gone)}}


def _why(store: Store, info: SnapshotInfo, prev: SnapshotInfo, keys: list[str], names: list[str],
         model: Any | None) -> dict[str, list[str]]:
    """Why each listed customer moved (the daily loop's own explanation), read for those
    customers only."""
    if not keys:
        return {}
    from tierctl.daily import change_causes

    dims = [d["key"] for d in info.meta.get("dimensions", [])] or (model.dim_keys if model is not None else [])
    fields = [*dims, *(f"reason_{k}" for k in dims), "escalations"]
    cur = store.snapshot_rows(info.id, fields=fields, keys=keys)
    old = store.snapshot_rows(prev.id, fields=fields, keys=keys)
    before = {r["customer_key"]: r for r in old.to_dict("records")}
    rank = {n: i for i, n in enumerate(names)}
    out = {}
    for r in cur.to_dict("records"):
        p = before.get(r["customer_key"])
        if p is None:
            continue
        up = rank.get(r["label"], 99) < rank.get(p["label"], 99)
        out[r["customer_key"]] = change_causes(p, r, dims, up=up)
    return out


# -- RFM -------------------------------------------------------------------------------------
def _rfm(store: Store, day: dt.date, lang: str, warnings: list[str]) -> dict[str, Any] | None:
    info = _on_or_before(store, RFM, day)
    if info is None:
        return None
    from tierctl.rfm import load_rfm_model

    model = None
    for cand in (info.model_name, "rfm"):
        if cand:
            with contextlib.suppress(ModelError, OSError, UsageError):
                model = load_rfm_model(cand)
                break
    if model is None:
        warnings.append("无法读取 RFM 模型，跳过 RFM 部分")
        return None
    types = list(model.types)

    def name(t: Any) -> str:
        return t.name_en if lang == "en" else t.name_zh

    lookup: dict[str, int] = {}
    for t in types:
        for k in (str(t.no), t.name_zh, t.name_en):
            lookup[k] = t.no

    def type_no(v: Any) -> int | None:
        if v is None:
            return None
        with contextlib.suppress(TypeError, ValueError):
            return int(v)
        return lookup.get(str(v).strip())

    counts: dict[int, int] = {}
    for v, k in _counted(_values(store, info, "type_no")):
        no = type_no(v)
        if no is not None:
            counts[no] = counts.get(no, 0) + int(k)
    n = sum(counts.values())
    dist = [{"type_no": t.no, "name": name(t), "pattern": t.pattern, "customers": counts.get(t.no, 0),
             "share": round(100 * counts.get(t.no, 0) / n, 1) if n else 0.0,
             "usual": f"{t.share_pct[0]:g}–{t.share_pct[1]:g}%",
             "red_alert": t.no in model.red_alert_types} for t in types]
    out: dict[str, Any] = {"as_of": info.as_of.isoformat(), "customers": n, "types": dist, "migration": None}
    prev = store.latest_snapshot(RFM, before=info.as_of)
    if prev is not None:
        out["migration"] = _migration(store, info, prev, types, model, name, type_no, lang)
    return out


def _migration(store: Store, info: SnapshotInfo, prev: SnapshotInfo, types: list[Any], model: Any, name: Any,
               type_no: Any, lang: str) -> dict[str, Any]:
    def typed(si: SnapshotInfo) -> pd.Series:
        keys = store.snapshot_rows(si.id, fields=[], generic=("customer_key",))["customer_key"].astype(object)
        return pd.Series(_values(store, si, "type_no").astype(object).to_numpy(), index=keys.to_numpy())

    cur, old = typed(info), typed(prev)
    nos = [t.no for t in types]
    idx = {no: i for i, no in enumerate(nos)}
    matrix = [[0] * (len(nos) + 1) for _ in range(len(nos) + 1)]  # + new row, + departed column
    listed = cur.index.isin(old.index)
    before = old.reindex(cur.index[listed])
    pairs = pd.DataFrame({"a": before.to_numpy(), "b": cur[listed].to_numpy()})
    for (a, b), k in pairs.value_counts(dropna=False, sort=False).items():
        ta, tb = type_no(None if a is None or a != a else a), type_no(None if b is None or b != b else b)
        if ta in idx and tb in idx:
            matrix[idx[ta]][idx[tb]] += int(k)
    for b, k in _counted(cur[~listed]):
        tb = type_no(b)
        if tb in idx:
            matrix[len(nos)][idx[tb]] += int(k)
    for a, k in _counted(old[~old.index.isin(cur.index)]):
        ta = type_no(a)
        if ta in idx:
            matrix[idx[ta]][len(nos)] += int(k)
    flows = []
    for fl in model.key_flows:
        if fl.from_type in idx and fl.to_type in idx:
            base = sum(matrix[idx[fl.from_type]])
            k = matrix[idx[fl.from_type]][idx[fl.to_type]]
            flows.append({"name": fl.name_en if lang == "en" else fl.name_zh,
                          "from": fl.from_type, "to": fl.to_type, "count": k, "base": base,
                          "rate": round(100 * k / base, 1) if base else None, "target_pct": fl.target_pct,
                          "target": fl.target_zh})
    return {"previous_as_of": prev.as_of.isoformat(), "types": nos, "names": [name(t) for t in types],
            "matrix": matrix, "flows": flows}


# -- churn ----------------------------------------------------------------------------------
def _q(d: Decimal, places: int = 0) -> Decimal:
    return d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _churn_roi(store: Store, info: SnapshotInfo, model: Any, day: dt.date, now: dt.datetime, per: dict[str, int],
               warnings: list[str]) -> tuple[dict[str, Any] | None, str]:
    """The ROI by level: from the logged interventions (``tierctl churn log``, evaluated
    by :func:`tierctl.churn_loop.loop_report` up to ``day``) when there are any, else
    from results stored with the snapshot (``meta["roi"]``), else a projection."""
    from tierctl import churn
    from tierctl.errors import TierctlError
    from tierctl.store.schema import contacts

    with store.reading() as conn:
        logged = conn.execute(sa.select(sa.func.count()).where(store.centre_is(contacts), contacts.c.kind == CHURN)).scalar() or 0
    if logged:
        try:
            from tierctl.churn_loop import loop_report

            rep = loop_report(store, model, end=day, now=now)
            if rep.roi.intervened:
                return rep.roi.to_json(), "actual"
        except (TierctlError, ImportError) as exc:
            warnings.append(f"无法从干预记录计算 ROI（{exc}），改用预计值")
    stored = info.meta.get("roi")
    if isinstance(stored, dict) and stored.get("levels"):
        return stored, "actual"
    # No intervention results yet: project today's customers with each level's budget
    # midpoint and the midpoint of its win-back benchmark.
    rows = {}
    for lv in model.levels:
        k = per.get(lv.key, 0)
        lo, hi = lv.benchmark
        at_risk = getattr(lv, "at_risk", not (lo == 0 and hi == 1))
        if not k or not at_risk:  # 低: automatic upkeep, no win-back benchmark
            continue
        won = int(_q(Decimal(k) * (lo + hi) / 2))
        cost = Decimal(k) * (Decimal(lv.budget[0]) + Decimal(lv.budget[1])) / 2
        rows[lv.key] = {"customers": k, "intervened": k, "won_back": won, "cost": cost}
    return (churn.roi_report(rows, model).to_json() if rows else None), "projected"


def _churn(store: Store, day: dt.date, now: dt.datetime, lang: str, warnings: list[str]) -> dict[str, Any] | None:
    info = _on_or_before(store, CHURN, day)
    if info is None:
        return None
    from tierctl import churn

    model = None
    for cand in (info.model_name, "churn"):
        if cand:
            with contextlib.suppress(ModelError, OSError, UsageError):
                model = churn.load_churn_model(cand)
                break
    if model is None:
        warnings.append("无法读取流失风险模型，跳过 ROI 部分")
        return None
    raw = _counted(_values(store, info, "level_key"))
    per: dict[str, int] = {}
    for v, k in raw:
        try:
            lv = model.level(str(v))
        except Exception:  # noqa: BLE001 - a label the model does not know: not counted
            continue
        per[lv.key] = per.get(lv.key, 0) + int(k)
    def label(lv: Any) -> str:
        return LEVEL_EN.get(lv.key, lv.label) if lang == "en" else lv.label

    levels = [{"key": lv.key, "label": label(lv), "customers": per.get(lv.key, 0),
               "color": LEVEL_COLORS[min(i, len(LEVEL_COLORS) - 1)]} for i, lv in enumerate(model.levels)]
    roi, basis = _churn_roi(store, info, model, day, now, per, warnings)
    roi_rows = []
    if roi:
        labels = {lv.key: label(lv) for lv in model.levels}
        for x in roi["levels"]:
            key = x.get("level")
            roi_rows.append({"key": key, "label": labels.get(key, x.get("label", key)),
                             "customers": x.get("customers"), "intervened": x.get("intervened"),
                             "won_back": x.get("won_back"), "rate": _pct(x.get("rate")),
                             "cost": x.get("cost"), "revenue": x.get("revenue"), "roi": _pct(x.get("roi"))})
    total = roi.get("total") if roi else None
    return {"as_of": info.as_of.isoformat(), "customers": sum(per.values()), "levels": levels, "roi_basis": basis,
            "roi": roi_rows, "total": ({"customers": total.get("customers"), "won_back": total.get("won_back"),
                                        "cost": total.get("cost"), "revenue": total.get("revenue"),
                                        "roi": _pct(total.get("roi")), "rate": _pct(total.get("rate"))}
                                       if total else None),
            "average_annual_spend": float(model.average_annual_spend)}


def _pct(v: Any) -> float | None:
    if v is None:
        return None
    return round(float(v) * 100, 1)


# =========================================================================================
# Figures
# =========================================================================================
@dataclass
class Figure:
    """One chart: the SVG and a table with the same numbers (its text alternative)."""

    key: str
    title: str
    caption: str
    svg: str
    headers: list[str]
    rows: list[list[Any]]
    section: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "caption": self.caption, "headers": self.headers,
                "rows": self.rows, "section": self.section}


TEXT = {
    "zh": {
        "trend": "P0–P3 人数趋势", "trend_desc": "每次保存的评分中各分级的人数（堆叠柱形图）",
        "trend_cap": "各分级人数随日期的变化", "date": "日期", "customers": "人数", "total": "合计",
        "wait": "等待天数分布", "wait_desc": "今天名单上客户的等待天数直方图，虚线为 7/14/21/28 天等界限",
        "wait_cap": "等待天数直方图与预警界限", "days": "等待天数", "range": "等待天数区间",
        "rfm": "RFM 客户类型分布", "rfm_desc": "八类客户各有多少人", "rfm_cap": "八类客户的人数与占比",
        "type": "客户类型", "share": "占比", "usual": "常见占比",
        "mig": "RFM 客户迁移", "mig_desc": "上期类型（行）到本期类型（列）的人数，红框为关键流向",
        "mig_cap": "上期到本期的类型迁移矩阵", "prev": "上期类型", "curr": "本期类型", "new": "新客户",
        "departed": "已流失/不在本期", "roi": "流失干预 ROI（按风险等级）",
        "roi_desc": "每个风险等级的投入产出比", "roi_cap": "各风险等级的干预投入产出比",
        "level": "风险等级", "intervened": "干预", "won": "挽回", "rate": "挽回率", "cost": "成本（元）",
        "revenue": "挽回收入（元）", "roi_pct": "ROI",
    },
    "en": {
        "trend": "P0–P3 customers over time", "trend_desc": "Customers per tier in every stored run (stacked bars)",
        "trend_cap": "Customers per tier by date", "date": "Date", "customers": "Customers", "total": "Total",
        "wait": "Days waited", "wait_desc": "Histogram of days waited by today's customers; dashed lines mark the 7/14/21/28-day limits",
        "wait_cap": "Days-waited histogram and alert limits", "days": "Days waited", "range": "Days waited",
        "rfm": "RFM customer types", "rfm_desc": "Customers in each of the eight types",
        "rfm_cap": "Customers and share per type", "type": "Type", "share": "Share", "usual": "Usual share",
        "mig": "RFM migration", "mig_desc": "Customers from last period's type (rows) to this period's (columns); key flows outlined in red",
        "mig_cap": "Type migration matrix, last period to this one", "prev": "Last period", "curr": "This period",
        "new": "New", "departed": "Left / not this period", "roi": "Churn intervention ROI by level",
        "roi_desc": "Return on the intervention cost per risk level", "roi_cap": "Return on intervention per risk level",
        "level": "Risk level", "intervened": "Intervened", "won": "Won back", "rate": "Win-back rate",
        "cost": "Cost (CNY)", "revenue": "Revenue won back (CNY)", "roi_pct": "ROI",
    },
}


def figures(data: dict[str, Any], *, font: str = charts.FONT_STACK) -> list[Figure]:
    """The dashboard's charts, in page order, each with its table."""
    tx = TEXT["en" if data.get("lang") == "en" else "zh"]
    out: list[Figure] = []
    s = data.get("shortage")
    if s:
        tiers = s["tiers"]
        dates = [t["date"] for t in s["trend"]]
        series = [charts.Series(t["name"], [d["counts"][t["name"]] for d in s["trend"]], t["color"]) for t in tiers]
        svg = charts.stacked_bars([d[5:] for d in dates], series, title=tx["trend"], desc=tx["trend_desc"],
                                  y_label=tx["customers"], font=font, key="fig-trend")
        rows = [[d["date"], *[d["counts"][t["name"]] for t in tiers], sum(d["counts"].values())] for d in s["trend"]]
        out.append(Figure("trend", tx["trend"], tx["trend_cap"], svg,
                          [tx["date"], *[t["name"] for t in tiers], tx["total"]], rows, "shortage"))
        w = s["wait"]
        lines = [charts.RefLine(x["days"], x["label"]) for x in w["lines"]]
        svg = charts.histogram(w["edges"], w["counts"], title=tx["wait"], desc=tx["wait_desc"], colors=w["colors"],
                               lines=lines, x_label=tx["days"], y_label=tx["customers"], font=font, key="fig-wait",
                               last_open=w["open_last"])
        out.append(Figure("wait", tx["wait"], tx["wait_cap"], svg, [tx["range"], tx["customers"], tx["share"]],
                          [[b["label"], b["count"], f"{b['share']:g}%"] for b in w["bands"]], "shortage"))
    r = data.get("rfm")
    if r:
        types = r["types"]
        svg = charts.hbars([f"{t['type_no']} {t['name']}" for t in types], [t["customers"] for t in types],
                           title=tx["rfm"], desc=tx["rfm_desc"], colors=RFM_COLORS[:len(types)],
                           value_labels=[f"{charts.fmt_num(t['customers'])}（{t['share']:g}%）" if data.get("lang") != "en"
                                         else f"{charts.fmt_num(t['customers'])} ({t['share']:g}%)" for t in types],
                           font=font, key="fig-rfm")
        out.append(Figure("rfm_types", tx["rfm"], tx["rfm_cap"], svg,
                          [tx["type"], "R·F·M", tx["customers"], tx["share"], tx["usual"]],
                          [[f"{t['type_no']} {t['name']}", t["pattern"], t["customers"], f"{t['share']:g}%", t["usual"]]
                           for t in types], "rfm"))
        m = r.get("migration")
        if m:
            names = [f"{no} {nm}" for no, nm in zip(m["types"], m["names"], strict=True)]
            rows_l = [*names, tx["new"]]
            cols_l = [*names, tx["departed"]]
            idx = {no: i for i, no in enumerate(m["types"])}
            marks = [(idx[f["from"]], idx[f["to"]]) for f in m["flows"]]
            svg = charts.heatmap(rows_l, cols_l, m["matrix"], title=tx["mig"], desc=tx["mig_desc"],
                                 row_label=tx["prev"], col_label=tx["curr"], font=font, key="fig-migration",
                                 highlight=marks)
            out.append(Figure("rfm_migration", tx["mig"], tx["mig_cap"], svg, [f"{tx['prev']} \\ {tx['curr']}", *cols_l],
                              [[rows_l[i], *row] for i, row in enumerate(m["matrix"])], "rfm"))
    c = data.get("churn")
    if c and c.get("roi"):
        rows_r = c["roi"]
        colors = {lv["key"]: lv["color"] for lv in c["levels"]}
        svg = charts.hbars([x["label"] for x in rows_r], [x["roi"] or 0 for x in rows_r], title=tx["roi"],
                           desc=tx["roi_desc"], colors=[colors.get(x["key"], "#4575b4") for x in rows_r],
                           value_labels=[f"{x['roi']:g}%" if x["roi"] is not None else "—" for x in rows_r],
                           font=font, key="fig-roi", x_label="ROI %")
        out.append(Figure("churn_roi", tx["roi"], tx["roi_cap"], svg,
                          [tx["level"], tx["customers"], tx["intervened"], tx["won"], tx["rate"], tx["cost"],
                           tx["revenue"], tx["roi_pct"]],
                          [[x["label"], x["customers"], x["intervened"], x["won_back"],
                            f"{x['rate']:g}%" if x["rate"] is not None else "—", x["cost"], x["revenue"],
                            f"{x['roi']:g}%" if x["roi"] is not None else "—"] for x in rows_r], "churn"))
    return out


# =========================================================================================
# Writing
# =========================================================================================
@dataclass
class ReportFiles:
    out_dir: Path
    html: Path
    pngs: list[Path]
    warnings: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "html": str(self.html), "png": [str(p) for p in self.pngs],
                "warnings": list(self.warnings)}


def render_html(data: dict[str, Any], figs: list[Figure], *, templates: Path | None = None) -> str:
    """The page: the language's ``dashboard.html.j2`` (a user folder's copy first),
    autoescaped."""
    from tierctl.render import make_environment, render_template

    lang = "en" if data.get("lang") == "en" else "zh"
    env = make_environment(lang, templates)
    env.autoescape = True  # HTML: every value is escaped unless marked safe (the charts)
    from markupsafe import Markup

    by_key = {f.key: {**f.to_json(), "svg": Markup(f.svg)} for f in figs}
    return render_template(env, f"{lang}/dashboard.html.j2", {"d": data, "fig": by_key, "figs": list(by_key.values()),
                                                               "font_stack": charts.FONT_STACK})


def cjk_font() -> str | None:
    """An installed font family that has Chinese glyphs (preferring the page's stack),
    or None.  cairosvg takes the first family of ``font-family`` only and does not
    fall back per glyph, so the PNGs name one family that exists."""
    if not shutil.which("fc-list"):
        return None
    try:
        out = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    fams = [f.strip() for line in out.splitlines() for f in line.split(",") if f.strip()]
    for want in ("Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC", "WenQuanYi Micro Hei", "Source Han Sans SC"):
        if want in fams:
            return want
    return next((f for f in fams if "Mono" not in f), fams[0] if fams else None)


CAIRO_HINT = ("PNG 需要 Python 包 cairosvg（pip install cairosvg）和系统的 cairo 库：\n"
              "  Windows：安装 GTK3 运行库（GTK-for-Windows-Runtime-Environment-Installer，含 libcairo-2.dll），"
              "安装时勾选「加入 PATH」，装好后关掉并重新打开命令行窗口再运行；\n"
              "  macOS：brew install cairo；Debian/Ubuntu：sudo apt-get install libcairo2。\n"
              "  不装也行：去掉 --png，dashboard.html 可以直接用浏览器打开、打印或截图。")


def _cairosvg() -> Any:
    try:
        import cairosvg
    except (ImportError, OSError) as exc:  # OSError: the system cairo library is missing
        raise RenderError(f"无法生成 PNG：{exc}", hint=CAIRO_HINT) from exc
    return cairosvg


def render_pngs(figs: list[Figure], out_dir: Path, *, force: bool = False, scale: float = 2.0) -> tuple[list[Path], list[str]]:
    """Each chart as ``<key>.png`` (white background, ``scale`` × its size)."""
    from tierctl.io.writers import atomic_path

    cairosvg = _cairosvg()
    warnings = []
    family = cjk_font()
    if family is None:
        warnings.append("系统中没有中文字体，PNG 中的中文会显示为方框；请安装 fonts-wqy-microhei 或 fonts-noto-cjk")
        family = "sans-serif"
    attr = f'font-family="{escape(charts.FONT_STACK, quote=True)}"'
    paths = []
    for f in figs:
        svg = f.svg.replace(attr, f'font-family="{escape(family, quote=True)}"', 1)
        path = out_dir / f"{f.key}.png"
        with atomic_path(path, force=force) as tmp:
            cairosvg.svg2png(bytestring=svg.encode("utf-8"), write_to=str(tmp), scale=scale,
                             background_color="white")
        paths.append(path)
    return paths, warnings


def write_report(data: dict[str, Any], out_root: Path, *, png: bool = False, force: bool = False,
                 templates: Path | None = None) -> ReportFiles:
    """Write ``<out_root>/<date>/dashboard.html`` (and the PNGs).  Nothing is
    overwritten without ``force``; each file is replaced atomically."""
    from tierctl.io.writers import check_writable, write_text

    out_dir = Path(out_root) / data["date"]
    figs = figures(data)
    html_path = out_dir / HTML_NAME
    targets = [html_path] + ([out_dir / f"{f.key}.png" for f in figs] if png else [])
    for t in targets:
        check_writable(t, force)
    if png:
        _cairosvg()  # fail before writing anything
    html = render_html(data, figs, templates=templates)
    write_text(html_path, html, force=force)
    pngs: list[Path] = []
    warnings: list[str] = []
    if png:
        pngs, warnings = render_pngs(figs, out_dir, force=force)
    return ReportFiles(out_dir, html_path, pngs, warnings)


__all__ = ["Figure", "Limits", "ReportFiles", "cjk_font", "figures", "gather", "render_html", "render_pngs",
           "write_report"]
