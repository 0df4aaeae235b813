"""What the churn job stores and reads back (the SQL of job B).

* :func:`save_result` keeps a scoring run as a ``churn`` snapshot (one per as-of day),
  with the compact per-day lists of who is at which alert level (:func:`at_risk_meta`);
* :func:`log_intervention` records one execution record (客户 风险分 等级 负责人 联系时间
  联系结果 客户反馈 后续方案 完成时间, plus the action and its cost) and keeps the
  level's follow-up schedule; :func:`followups_due` lists the follow-ups due on a day
  for ``tierctl tasks``;
* :func:`latest_customers`, :func:`_at_risk_table` and :func:`_rows_at` read snapshots
  back for the touches and the report.

A level's follow-up schedule starts at the first contact that actually reached the
customer (an unanswered call schedules nothing, the customer stays on the alert list).
A later contact that reaches the customer closes every open follow-up due up to
``[followup] close_early_days`` after it; if the customer's level has risen since the
schedule started, the rest is superseded by the higher level's schedule.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from tierctl.churn.model import ChurnModel, Level
from tierctl.churn.score import ChurnResult
from tierctl.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    from tierctl.store import SnapshotInfo, Store

KIND = "churn"
TASK_KIND = "churn_followup"
FOLLOWUP_COLUMNS = ["customer_key", "customer_id", "name", "owner", "due", "kind", "channel", "detail"]
# Columns of ChurnResult.customers not worth storing: they follow from the level (and the
# as-of date) through the model, and a year of daily snapshots should stay small.
_NOT_STORED = ("followups", "respond_label", "budget_min", "budget_max", "owner_key", "priority", "score_source")


# =====================================================================================
# Snapshots
# =====================================================================================

def snapshot_frame(result: ChurnResult) -> pd.DataFrame:
    """The rows stored for a scoring run: key = customer id, label = level (中/高…),
    score = risk score; the inputs, reasons, owner, plan and deadline in the payload."""
    c = result.customers
    f = c.drop(columns=[x for x in (*_NOT_STORED, "level", "risk_score") if x in c]).copy()
    f.insert(0, "customer_key", c["customer_id"].astype("string"))
    f["label"] = c["level"].to_numpy()
    f["score"] = c["risk_score"].astype(float).to_numpy()
    if "respond_by" in f:
        f["respond_by"] = pd.to_datetime(pd.Series(c["respond_by"].to_numpy(), dtype=object), utc=True)
    return f


def snapshot_meta(result: ChurnResult, model: ChurnModel, source: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {
        "model": {"name": model.name, "path": str(model.path), "title": model.title},
        "now": result.now.isoformat(),
        "levels": [{"key": lv.key, "label": lv.label, "min": lv.min, "max": lv.max,
                    "respond_hours": lv.respond_hours, "respond_days": lv.respond_days} for lv in model.levels],
        "unavailable_signals": list(result.unavailable_signals),
        "warnings": list(result.warnings),
        "source": dict(source or {}),
    }


def save_result(store: Store, result: ChurnResult, model: ChurnModel, *, source_name: str | None,
                source_hash: str | None, source: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Store a scoring run as the ``churn`` snapshot of its as-of date (a re-run of the
    same day replaces it, never duplicates)."""
    before = store.snapshot_on(KIND, result.as_of)
    meta = snapshot_meta(result, model, source)
    c = result.customers
    # Compact per-day lists of who is at which alert level and that run's deadlines: the
    # report reads a year of these instead of a year of rows.
    meta.update(at_risk_meta(c["customer_id"], c["level_key"], c["risk_score"], model))
    first = c.drop_duplicates("level_key").set_index("level_key")["respond_by"] if len(c) else pd.Series(dtype=object)
    meta["deadlines"] = {k: v.isoformat() for k, v in first.items() if v is not None and v is not pd.NaT}
    sid = store.save_snapshot(KIND, result.as_of, model.name, source_name, source_hash, snapshot_frame(result), meta)
    return {"stored": True, "id": sid, "as_of": result.as_of.isoformat(), "rows": int(len(result.customers)),
            "replaced": before is not None}


def at_risk_meta(keys: pd.Series, level_keys: pd.Series, scores: pd.Series, model: ChurnModel) -> dict[str, Any]:
    """The compact per-day lists a churn snapshot keeps in its meta: for each alert level
    the customers on it and their scores, tab-joined (a year of them is what
    :func:`loop_report` reads instead of a year of rows)."""
    keys = pd.Series(keys).astype(str).reset_index(drop=True)
    level_keys = pd.Series(level_keys).reset_index(drop=True)
    scores = pd.Series(scores).reset_index(drop=True)
    out: dict[str, dict[str, str]] = {"at_risk": {}, "at_risk_scores": {}}
    for lv in model.levels:
        if lv.at_risk:
            on = (level_keys == lv.key).to_numpy()
            out["at_risk"][lv.key] = "\t".join(keys[on])
            out["at_risk_scores"][lv.key] = "\t".join(_num_text(scores[on]))
    return out


def _num_text(s: pd.Series) -> list[str]:
    x = s.to_numpy(dtype=float)
    return [str(int(v)) if v == int(v) else repr(float(v)) for v in x]


def latest_customers(store: Store, on: dt.date | None = None,
                     fields: Sequence[str] | None = None) -> tuple[SnapshotInfo, pd.DataFrame]:
    """The latest churn snapshot on or before ``on`` and its rows (all payload fields,
    or only ``fields``)."""
    info = store.latest_snapshot(KIND, before=on + dt.timedelta(days=1) if on else None)
    if info is None:
        when = f"{on} 或更早的" if on else ""
        raise NotFoundError(f"历史数据库 {store.path} 中没有{when}流失风险评分",
                            hint="先运行 tierctl churn 导出文件.xlsx（不加 --dry-run），或在命令中直接给出导出文件")
    return info, store.snapshot_rows(info.id, fields=fields)


def _resolve(store: Store, ident: str, on: dt.date) -> dict[str, Any]:
    info = store.latest_snapshot(KIND, before=on + dt.timedelta(days=1))
    if info is None:
        raise NotFoundError(f"历史数据库 {store.path} 中没有 {on} 或更早的流失风险评分",
                            hint="先运行 tierctl churn 导出文件.xlsx（不加 --dry-run）")
    text = ident.strip()
    hits = store.find_customers(info.id, text)
    if not len(hits):
        raise NotFoundError(f"客户「{ident}」不在 {info.as_of} 的流失风险评分中",
                            hint="用客户编号（也可用姓名或手机号）；名单以最近一次 tierctl churn 为准")
    if hits["customer_key"].nunique() > 1:
        who = "、".join(f"{r['name'] or ''}（{r['customer_id']}）" for r in hits.head(5).to_dict("records"))
        raise UsageError(f"「{ident}」对应多位客户：{who}", hint="请改用客户编号")
    row = hits.iloc[0].to_dict()
    extra = store.snapshot_rows(info.id, fields=["level_key", "owner"], keys=[row["customer_key"]])
    row.update({k: extra.iloc[0][k] for k in extra.columns if k in ("level_key", "owner")} if len(extra) else {})
    row["snapshot"] = info
    return row


# =====================================================================================
# Interventions and follow-ups
# =====================================================================================

def _tables() -> tuple[sa.Table, sa.Table, sa.Table, sa.Table]:
    from tierctl.store.schema import contacts, followups, snapshot_rows, snapshots

    return contacts, followups, snapshot_rows, snapshots


def _level_of(model: ChurnModel, key_or_label: Any) -> Level | None:
    if not isinstance(key_or_label, str) or not key_or_label:
        return None
    try:
        return model.level(key_or_label)
    except UsageError:
        return None


def _rank(model: ChurnModel, lv: Level | None) -> int:
    return -1 if lv is None else [x.key for x in model.levels].index(lv.key)


def _clean(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    return v


def log_intervention(store: Store, model: ChurnModel, ident: str, *, action: str, result: str, at: dt.datetime,
                     now: dt.datetime, feedback: str | None = None, next_plan: str | None = None,
                     cost: float | Decimal | None = None, by: str | None = None,
                     done_at: dt.datetime | None = None, customer: Mapping[str, Any] | None = None,
                     channel: str | None = None) -> dict[str, Any]:
    """Record one intervention (execution record) and keep the follow-up schedule.

    The customer is looked up in the latest churn snapshot on or before the contact's
    day (score, level and owner are taken from it).  ``result`` must name one of the
    model's outcomes.  Logging the same customer, time, action and result twice stores
    it once.  Returns what was recorded, the follow-ups closed and those scheduled.
    ``customer``: the customer's snapshot row (with ``snapshot``), when the caller has
    looked it up already (a bulk import); ``channel``: how the customer was reached.
    """
    if not action or not action.strip():
        raise UsageError("--action 不能为空", hint="写做了什么，例如 --action \"店长致电，约周三到店面谈\"")
    outcome = model.outcome(result)
    if cost is not None and (not math.isfinite(float(cost)) or float(cost) < 0):
        raise UsageError(f"--cost 应为不小于 0 的金额（元），而不是 {cost}")
    tz = now.tzinfo
    day = at.astimezone(tz).date()
    c = dict(customer) if customer is not None else _resolve(store, ident, day)
    level = _level_of(model, c.get("level_key")) or _level_of(model, c.get("label"))
    if level is None:
        raise NotFoundError(f"客户「{ident}」在 {c['snapshot'].as_of} 的评分里的等级「{c.get('label')}」不在当前模型中",
                            hint="用评分时的模型文件（--model）")
    owner = _clean(c.get("owner")) or model.owners[level.owner][1]
    if done_at is None and outcome.solved:
        done_at = at
    contacts, followups, _, _ = _tables()
    key = c["customer_key"]
    base = {"customer_key": key, "customer_id": c.get("customer_id"), "name": _clean(c.get("name")),
            "level": level.label, "level_key": level.key, "score": _clean(c.get("score")), "owner": owner,
            "at": at.isoformat(), "action": action.strip(), "result": outcome.label, "outcome": outcome.key,
            "reached": outcome.reached, "solved": outcome.solved, "feedback": feedback, "next": next_plan,
            "cost": None if cost is None else float(cost), "by": by,
            "done_at": done_at.isoformat() if done_at else None, "snapshot_as_of": c["snapshot"].as_of.isoformat()}
    with store.transaction() as conn:
        dup = conn.execute(sa.select(contacts.c.id).where(
            store.centre_is(contacts), contacts.c.kind == KIND, contacts.c.customer_key == key, contacts.c.at == at,
            contacts.c.action == action.strip(), contacts.c.result == outcome.label)).first()
        if dup is not None:
            return {"id": int(dup.id), **base, "duplicate": True, "episode": "unchanged",
                    "followups_closed": [], "followups_scheduled": [], "next_followup": _next_due(conn, key, store.centre)}
        cid = store.add_contact(KIND, customer_key=key, customer_id=c.get("customer_id"), name=_clean(c.get("name")),
                                at=at, result=outcome.label, note=feedback, plan=next_plan, done_at=done_at, by=by,
                                score=_clean(c.get("score")), label=level.label, owner=owner, logged_at=now,
                                action=action.strip(), cost=None if cost is None else float(cost),
                                channel=channel)
        open_rows = conn.execute(sa.select(followups).where(
            store.centre_is(followups), followups.c.kind == KIND, followups.c.customer_key == key,
            followups.c.status == "open")
            .order_by(followups.c.due, followups.c.id)).all()
        closed: list[dict[str, Any]] = []
        scheduled: list[dict[str, Any]] = []
        episode = "attempt"
        if outcome.reached:
            limit = day + dt.timedelta(days=model.followup_close_early_days)
            closing = [r for r in open_rows if r.due <= limit]
            remaining = [r for r in open_rows if r.due > limit]
            if closing:
                conn.execute(sa.update(followups).where(followups.c.id.in_([r.id for r in closing])).values(
                    status="done", closed_at=at, closed_by_contact=cid))
                closed = [{"due": r.due.isoformat(), "detail": r.detail} for r in closing]
            episode_level = _level_of(model, open_rows[0].level) if open_rows else None
            if not open_rows:
                episode = "new"
            elif _rank(model, level) > _rank(model, episode_level):
                episode = "escalated"
                if remaining:
                    conn.execute(sa.update(followups).where(followups.c.id.in_([r.id for r in remaining])).values(
                        status="superseded", closed_at=at, closed_by_contact=cid))
            else:
                episode = "continued" if remaining else "completed"
            if episode in ("new", "escalated"):
                scheduled = _schedule(conn, model, level, c, owner, cid, day, action.strip(), outcome.label, now)
        nxt = _next_due(conn, key, store.centre)
    return {"id": cid, **base, "duplicate": False, "episode": episode, "followups_closed": closed,
            "followups_scheduled": scheduled, "next_followup": nxt}


def _next_due(conn: sa.Connection, key: str, centre: str) -> str | None:
    _, followups, _, _ = _tables()
    v = conn.execute(sa.select(sa.func.min(followups.c.due)).where(
        followups.c.centre == centre, followups.c.kind == KIND, followups.c.customer_key == key,
        followups.c.status == "open")).scalar()
    if v is None:
        return None
    return v.isoformat() if isinstance(v, dt.date) else str(v)


def _schedule(conn: sa.Connection, model: ChurnModel, level: Level, c: Mapping[str, Any], owner: str, cid: int,
              day: dt.date, action: str, result: str, now: dt.datetime) -> list[dict[str, Any]]:
    _, followups, _, _ = _tables()
    n = len(level.followups)
    out = []
    for i, step in enumerate(level.followups, start=1):
        who = model.owners[step.owner][1] if step.owner else owner
        what = step.detail or f"干预后第 {step.days} 天回访"
        detail = f"{level.label}风险回访 {i}/{n}：{what}（{day:%m-%d} 干预：{action} → {result}）"
        row = {"kind": KIND, "customer_key": c["customer_key"], "customer_id": c.get("customer_id"),
               "name": _clean(c.get("name")), "contact_id": cid, "level": level.label, "step_days": step.days,
               "due": day + dt.timedelta(days=step.days), "owner": who, "channel": step.channel, "detail": detail,
               "status": "open", "created_at": now}
        conn.execute(sa.insert(followups).values(**row))
        out.append({"due": row["due"].isoformat(), "owner": who, "channel": step.channel, "detail": detail})
    return out


def followups_due(store: Store, day: dt.date) -> pd.DataFrame:
    """Churn follow-ups open and due on or before ``day`` (overdue first), for ``tierctl
    tasks``: ``customer_key, customer_id, name, owner, due (date), kind, channel, detail``."""
    _, followups, _, _ = _tables()
    f = followups.c
    stmt = (sa.select(f.customer_key, f.customer_id, f.name, f.owner, f.due, f.channel, f.detail)
            .where(store.centre_is(followups), f.kind == KIND, f.status == "open", f.due <= day).order_by(f.due, f.owner, f.customer_key, f.id))
    with store.reading() as conn:
        rows = conn.execute(stmt).all()
    out = pd.DataFrame({
        "customer_key": pd.Series([r.customer_key for r in rows], dtype=object),
        "customer_id": pd.Series([r.customer_id for r in rows], dtype=object),
        "name": pd.Series([r.name for r in rows], dtype=object),
        "owner": pd.Series([r.owner for r in rows], dtype=object),
        "due": pd.Series([r.due for r in rows], dtype=object),
        "kind": pd.Series([TASK_KIND] * len(rows), dtype=object),
        "channel": pd.Series([r.channel for r in rows], dtype=object),
        "detail": pd.Series([r.detail for r in rows], dtype=object),
    })
    return out[FOLLOWUP_COLUMNS]


def followup_records(frame: pd.DataFrame, day: dt.date) -> list[dict[str, Any]]:
    """JSON-ready rows of :func:`followups_due` with the days overdue."""
    out = []
    for r in frame.to_dict("records"):
        due = r["due"]
        out.append({**{k: r[k] for k in FOLLOWUP_COLUMNS if k != "due"}, "due": due.isoformat(),
                    "overdue_days": max(0, (day - due).days)})
    return out




@dataclass
class _RiskTable:
    """Every (snapshot, customer) at an alert level, as flat arrays in snapshot order:
    ``pos`` (index of the snapshot in the list given), ``code`` (index into ``keys``),
    ``rank`` (index of the level in the model) and ``score``; ``deadlines[pos][rank]``."""

    keys: pd.Index
    pos: np.ndarray
    code: np.ndarray
    rank: np.ndarray
    score: np.ndarray
    deadlines: list[dict[int, Any]]

    def lookup_index(self) -> pd.Index:
        """(pos, code) → row, as one int64 index."""
        return pd.Index(self.pos.astype(np.int64) * (len(self.keys) + 1) + self.code)


def _at_risk_table(store: Store, model: ChurnModel, snaps: Sequence[SnapshotInfo]) -> _RiskTable:
    """Who was at which alert level with which score in every snapshot.

    Read from the compact lists each snapshot keeps in its meta (:func:`save_result`) —
    a year of them is a few megabytes of text; a snapshot saved without them is read
    from its rows' labels and scores."""
    rank = {lv.key: i for i, lv in enumerate(model.levels)}
    by_label = {lv.label: lv.key for lv in model.levels if lv.at_risk}
    keys: list[str] = []
    pos: list[np.ndarray] = []
    ranks: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    deadlines: list[dict[int, Any]] = []
    for p, info in enumerate(snaps):
        meta = info.meta if isinstance(info.meta, dict) else {}
        lists, sc = meta.get("at_risk"), meta.get("at_risk_scores")
        dl = meta.get("deadlines", {}) or {}
        deadlines.append({rank[k]: v for k, v in dl.items() if k in rank})
        if isinstance(lists, dict) and isinstance(sc, dict):
            for lk, text in lists.items():
                if lk not in rank or not text:
                    continue
                ks = text.split("\t")
                vals = np.array(sc[lk].split("\t"), dtype=float) if sc.get(lk) else np.full(len(ks), np.nan)
                if len(vals) != len(ks):
                    vals = np.full(len(ks), np.nan)
                keys += ks
                pos.append(np.full(len(ks), p, dtype=np.int64))
                ranks.append(np.full(len(ks), rank[lk], dtype=np.int64))
                scores.append(vals)
        else:
            rows = store.snapshot_rows(info.id, fields=[])
            lab = rows["label"].map(by_label)
            keep = lab.notna().to_numpy()
            keys += rows.loc[keep, "customer_key"].astype(str).tolist()
            pos.append(np.full(int(keep.sum()), p, dtype=np.int64))
            ranks.append(lab[keep].map(rank).to_numpy(dtype=np.int64))
            scores.append(rows.loc[keep, "score"].to_numpy(dtype=float))
    codes, uniques = pd.factorize(np.array(keys, dtype=object)) if keys else (np.zeros(0, np.int64), [])
    cat = (lambda xs, t: np.concatenate(xs).astype(t) if xs else np.zeros(0, t))  # noqa: E731
    return _RiskTable(pd.Index(np.asarray(uniques, dtype=object)), cat(pos, np.int64), codes.astype(np.int64),
                      cat(ranks, np.int64), cat(scores, float), deadlines)



def _rows_at(store: Store, wanted: Mapping[int, Iterable[str]], infos: Mapping[int, SnapshotInfo],
             field: str | None = None) -> pd.DataFrame:
    """``customer_key, snapshot_id, score`` (and one payload ``field``) of the given
    customers in each given snapshot (column-wise snapshots decode only those columns)."""
    parts = []
    for sid, keys in wanted.items():
        ks = sorted(set(keys))
        if not ks:
            continue
        f = store.snapshot_rows(sid, fields=[field] if field else [], keys=ks, generic=("customer_key", "score"))
        if field and field not in f:
            f[field] = None
        part = pd.DataFrame({"customer_key": f["customer_key"].astype(object), "snapshot_id": sid,
                             "score": f["score"].astype(float)})
        if field:
            part[field] = f[field].astype(object).where(f[field].notna(), None)
        parts.append(part)
    if parts:
        out = pd.concat(parts, ignore_index=True)
        out["snapshot_id"] = out["snapshot_id"].astype(object)
        return out
    f = pd.DataFrame({"customer_key": pd.Series(dtype=object), "snapshot_id": pd.Series(dtype=object),
                      "score": pd.Series(dtype=float)})
    if field:
        f[field] = pd.Series(dtype=object)
    return f

