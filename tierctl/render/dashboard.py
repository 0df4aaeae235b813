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
* :func:`figures` turns that dict into SVG charts (:mod:`tierctl.render.charts`), each with a
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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from tierctl import daily
from tierctl.errors import ModelError, NotFoundError, RenderError
from tierctl.render import charts
from tierctl.render.dashboard_figures import Figure, figures
from tierctl.render.dashboard_png import (  # the pictures live in their own module
    CAIRO_HINT,
    LONG_PNG_NAME,
    _cairosvg,
    cjk_font,
    find_browser,
    render_long_png,
    render_pngs,
)
from tierctl.render.dashboard_sources import (
    SHORTAGE,
    _churn,
    _counted,
    _on_or_before,
    _rfm,
)
from tierctl.store.core import SnapshotInfo, Store

TIER_COLORS = ["#d73027", "#fc8d59", "#fee08b", "#91cf60", "#74add1", "#999999"]
CRISIS_COLORS = {"green": "#1a9850", "yellow": "#fee08b", "orange": "#fc8d59", "red": "#d73027"}
WAIT_COLORS = ["#91cf60", "#d9ef8b", "#fee08b", "#fc8d59", "#d73027"]
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
        by = [(names.get(k, k), n) for k, n in by]  # type: ignore[misc]
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
    inputs as :func:`tierctl.daily.reports.tasks_report`), counted for everyone but turned
    into records only for the rows the page lists."""

    from tierctl.daily.reports import ordered_tasks

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


def write_report(data: dict[str, Any], out_root: Path, *, png: bool = False, force: bool = False,
                 templates: Path | None = None, long_png: bool = False) -> ReportFiles:
    """Write ``<out_root>/<date>/dashboard.html`` (and the PNGs: ``png`` each chart,
    ``long_png`` the whole page as one tall phone-width picture, ``dashboard_long.png``).
    Nothing is overwritten without ``force``; each file is replaced atomically."""
    from tierctl.io.writers import check_writable, write_text

    out_dir = Path(out_root) / data["date"]
    figs = figures(data)
    html_path = out_dir / HTML_NAME
    long_path = out_dir / LONG_PNG_NAME
    targets = [html_path] + ([out_dir / f"{f.key}.png" for f in figs] if png else []) + ([long_path] if long_png else [])
    for t in targets:
        check_writable(t, force)
    if png:
        _cairosvg()  # fail before writing anything
    if long_png and find_browser() is None:
        from tierctl.render.dashboard_png import BROWSER_HINT

        raise RenderError("无法生成长图：没有找到 Chrome、Edge 或 Chromium", hint=BROWSER_HINT)
    html = render_html(data, figs, templates=templates)
    write_text(html_path, html, force=force)
    pngs: list[Path] = []
    warnings: list[str] = []
    if png:
        pngs, warnings = render_pngs(figs, out_dir, force=force)
    if long_png:
        pngs.append(render_long_png(html_path, long_path, force=force))
    return ReportFiles(out_dir, html_path, pngs, warnings)


__all__ = ["CAIRO_HINT", "LONG_PNG_NAME", "Figure", "Limits", "ReportFiles", "cjk_font", "figures", "find_browser",
           "gather", "render_html", "render_long_png", "render_pngs", "write_report"]
