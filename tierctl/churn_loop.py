"""The closed loop of job B (流失风险分级响应) against the history store.

:mod:`tierctl.churn` is the pure core (score, plans, ROI arithmetic).  This module is
where its results meet the store and the renderer:

* :func:`save_result` keeps a scoring run as a ``churn`` snapshot (one per as-of day);
* :func:`log_intervention` records one execution record (客户 风险分 等级 负责人 联系时间
  联系结果 客户反馈 后续方案 完成时间, plus the action and its cost) and schedules the
  level's follow-ups; :func:`followups_due` lists the follow-ups due on a day for
  ``tierctl tasks``;
* :func:`loop_report` evaluates a period from the store: per level customers,
  intervened, won back, rate, cost, ROI, benchmarks, KPIs, the counterfactual;
  :func:`table_report` does the same from a table of figures (the seed's, or a file);
* :func:`write_report_xlsx` writes that report as a workbook with native Excel charts;
* :func:`draft_touches` drafts the low-risk upkeep messages from templates and checks
  them for taboo phrases.

Decisions where the playbook is silent (README repeats them for users):

* An *intervention* of the report is a customer's first logged contact in the period:
  its date, level and score are the starting point; every contact of that customer in
  the period adds its cost.  Customers are counted once per period.
* A level's follow-up schedule starts at the first contact that actually reached the
  customer (an unanswered call schedules nothing, the customer stays on the alert
  list).  A later contact that reaches the customer closes every open follow-up due up
  to ``[followup] close_early_days`` after it; if the customer's level has risen since
  the schedule started, the rest is superseded by the higher level's schedule.
* Effect: worked when a churn snapshot dated within ``effect.within_days`` after the
  intervention shows a score at least ``effect.drop`` lower; *pending* while that window
  is still open in the data; no snapshot in a closed window counts as not worked.
* Win-back: a paid visit within ``winback.months`` after the intervention (not on its
  day), read from the last-visit dates of later churn snapshots and from a visits export
  when given; *pending* while the window is open in the data.  Rates are ÷ intervened
  (the playbook's definition), so pending customers lower a young period's rate: the
  report shows how many are pending.
* Customers per level: everyone seen at that level in the period's snapshots, each
  once — at the level of their intervention if intervened, else at the highest level
  seen.  低 is upkeep, not an alert, and is left out of the table.
* Alert response (预警响应率): for each customer's first at-risk appearance in the
  period, was the first contact (any result) made by that snapshot's deadline; alerts
  whose deadline is still ahead and not yet answered are left out.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from tierctl.churn import (
    ChurnModel,
    ChurnResult,
    KpiResult,
    Level,
    ROIReport,
    add_months,
    evaluate_kpis,
    percent,
    roi_report,
    wan,
    win_back_flags,
)
from tierctl.errors import InputError, NotFoundError, RenderError, UsageError

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
            store.centre_is(followups), followups.c.kind == KIND, followups.c.customer_key == key, followups.c.status == "open")
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


# =====================================================================================
# The report
# =====================================================================================

# The seed's table (seed 001, "分级响应的威力"): level, customers, intervened, won back, cost 元.
SEED_TABLE: tuple[tuple[str, int, int, int, int], ...] = (
    ("mid", 850, 850, 562, 128_000),
    ("high", 320, 320, 150, 256_000),
    ("extreme", 180, 180, 54, 1_080_000),
)
TABLE_COLUMNS = {  # canonical name -> headers accepted in a figures file (--input)
    "level": ["等级", "风险等级", "level"],
    "customers": ["客户数", "客户", "customers"],
    "intervened": ["干预数", "干预", "intervened"],
    "won_back": ["挽回数", "挽回", "won_back", "won back"],
    "cost": ["成本", "成本（元）", "投入成本", "cost"],
}


@dataclass
class LoopReport:
    """A period's results: the ROI report plus KPIs, pending counts and the detail."""

    source: str  # "store" | "table"
    start: dt.date | None
    end: dt.date | None
    data_as_of: dt.date | None
    roi: ROIReport
    kpis: list[KpiResult]
    kpi_counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    pending: dict[str, dict[str, int]] = field(default_factory=dict)  # level key -> effect / win_back
    effect: dict[str, dict[str, int]] = field(default_factory=dict)  # level key -> worked / not / pending
    interventions: pd.DataFrame = field(default_factory=pd.DataFrame)
    warnings: list[str] = field(default_factory=list)
    title: str = ""

    def to_json(self) -> dict[str, Any]:
        doc = self.roi.to_json()
        for lv in doc["levels"]:
            lv["pending"] = self.pending.get(lv["level"], {"effect": 0, "win_back": 0})
            lv["effect"] = self.effect.get(lv["level"], {})
        return {
            "source": self.source, "title": self.title,
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
            "data_as_of": self.data_as_of.isoformat() if self.data_as_of else None,
            **doc,
            "kpis": [{"key": k.key, "label": k.label, "value": None if k.value is None else float(k.value),
                      "target": float(k.target), "met": k.met,
                      "count": list(self.kpi_counts[k.key]) if k.key in self.kpi_counts else None}
                     for k in self.kpis],
            "interventions": _records(self.interventions),
            "warnings": list(self.warnings),
        }

    def summary_lines(self) -> list[str]:
        lines = self.roi.summary_lines()
        for k in self.kpis:
            if k.value is None:
                continue
            cnt = self.kpi_counts.get(k.key)
            frac = f"（{cnt[0]}/{cnt[1]}）" if cnt else ""
            lines.append(f"{k.label} {percent(k.value)}{frac}，目标 >{percent(k.target)}："
                         + ("达标" if k.met else "未达标"))
        pend_e = sum(p.get("effect", 0) for p in self.pending.values())
        if pend_e:
            lines.append(f"另有 {pend_e} 位还在干预后 30 天的观察期内、风险分尚未降够：效果待定（按未降低计）")
        pend = sum(p.get("win_back", 0) for p in self.pending.values())
        if pend:
            lines.append(f"另有 {pend} 位干预不足 6 个月、尚未再次消费：挽回结果待定（按未挽回计）")
        return lines


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for r in frame.to_dict("records") if len(frame) else []:
        rec: dict[str, Any] = {}
        for k, v in r.items():
            if isinstance(v, dt.datetime | dt.date):
                rec[k] = v.isoformat()
            elif isinstance(v, float) and math.isnan(v) or v is pd.NA or v is pd.NaT or v is None:
                rec[k] = None
            elif isinstance(v, np.integer):
                rec[k] = int(v)
            elif isinstance(v, np.floating):
                rec[k] = float(v)
            elif isinstance(v, np.bool_):
                rec[k] = bool(v)
            else:
                rec[k] = v
        out.append(rec)
    return out


def table_report(rows: Iterable[Mapping[str, Any]] | pd.DataFrame, model: ChurnModel, title: str = "") -> LoopReport:
    """The report from per-level figures (level, customers?, intervened, won_back, cost)."""
    roi = roi_report(rows, model)
    counts = {"win_back": (roi.won_back, roi.intervened)} if roi.intervened else {}
    kpis = evaluate_kpis({k: v for k, v in counts.items()}, model)
    return LoopReport("table", None, None, None, roi, kpis, counts, title=title)


def seed_report(model: ChurnModel) -> LoopReport:
    """The seed's Q2 table: 1,350 intervened, 766 won back (57%), 146.4万, ROI 162%."""
    rows = [{"level": lv, "customers": c, "intervened": i, "won_back": w, "cost": cost}
            for lv, c, i, w, cost in SEED_TABLE]
    return table_report(rows, model, title="手册示例（某品牌 2023 年 Q2 分级响应效果）")


def read_table(path: Path, *, sheet: str | int | None = None, encoding: str | None = None) -> pd.DataFrame:
    """A figures file (CSV/xlsx: 等级 客户数 干预数 挽回数 成本) through the shared ingest."""
    from tierctl.io.ingest import ColumnSet, ColumnSpec, read_export

    specs = {
        "level": ColumnSpec("level", "text", tuple(TABLE_COLUMNS["level"]), required=True),
        "customers": ColumnSpec("customers", "int", tuple(TABLE_COLUMNS["customers"]), min=0),
        "intervened": ColumnSpec("intervened", "int", tuple(TABLE_COLUMNS["intervened"]), required=True, min=0),
        "won_back": ColumnSpec("won_back", "int", tuple(TABLE_COLUMNS["won_back"]), required=True, min=0),
        "cost": ColumnSpec("cost", "number", tuple(TABLE_COLUMNS["cost"]), required=True, min=0),
    }
    ex = read_export(path, ColumnSet(specs), sheet=sheet, encoding=encoding)
    f = ex.frame
    bad = [c for c in ("level", "intervened", "won_back", "cost") if f[c].isna().any()]
    if bad:
        r = f.loc[f[bad[0]].isna(), "_row"].iloc[0]
        raise InputError(f"第 {r} 行的「{ex.header(bad[0])}」为空", path=path, hint="每个等级一行，各列都要填写")
    rows = f.drop(columns="_row")
    if "customers" not in rows or rows["customers"].isna().all():
        rows = rows.drop(columns=[c for c in ("customers",) if c in rows])
    else:
        rows["customers"] = rows["customers"].fillna(rows["intervened"])
    return rows.astype({"intervened": int, "won_back": int}).assign(level=rows["level"].astype(str).str.strip())


def _local_date(t: Any, tz: dt.tzinfo | None) -> dt.date:
    return t.astimezone(tz).date() if isinstance(t, dt.datetime) else t


def loop_report(store: Store, model: ChurnModel, *, start: dt.date | None = None, end: dt.date | None = None,
                now: dt.datetime, visits: pd.DataFrame | None = None) -> LoopReport:
    """Evaluate the interventions of ``start``…``end`` (default: the whole history) from
    the store: the ROI table per at-risk level, KPIs, counterfactual and the detail.

    ``visits`` (customer_id, date, amount?) adds spending to what later churn snapshots
    show for the win-back.  Effect and win-back use data beyond ``end`` when present.

    Fast over a year of daily snapshots: who was at which level with which score each day
    comes from the compact lists every snapshot keeps in its meta (:func:`save_result`);
    rows are read only for a few intervened customers, by (snapshot, customer) index.
    """
    tz = now.tzinfo
    snaps = store.list_snapshots(KIND)  # oldest first
    all_contacts = store.contacts_list(KIND)
    if not snaps and not len(all_contacts):
        raise NotFoundError(f"历史数据库 {store.path} 中还没有流失风险评分和干预记录",
                            hint="先运行 tierctl churn 导出文件.xlsx，并用 tierctl churn log 记录干预")
    dates = [s.as_of for s in snaps]
    cdates = [_local_date(t, tz) for t in all_contacts["at"]] if len(all_contacts) else []
    start = start or min(dates + cdates)
    end = end or max(dates + cdates)
    if start > end:
        raise UsageError(f"--from {start} 晚于 --to {end}")
    warnings: list[str] = []
    data_as_of = max(dates) if dates else None

    # -- interventions in the period: one per customer, its first contact ---------------
    risk_levels = [lv for lv in model.levels if lv.at_risk]
    risk_keys = {lv.key for lv in risk_levels}
    ac = all_contacts
    if len(ac):
        ac = ac.assign(day=cdates)
        ac = ac[(ac["day"] >= start) & (ac["day"] <= end)]
    iv = _interventions(ac, model)
    low = iv[~iv["level_key"].isin(risk_keys)] if len(iv) else iv
    if len(low):
        warnings.append(f"{len(low)} 位客户在低风险（或未知）等级时被联系，属常规维护，未计入挽回统计")
        iv = iv[iv["level_key"].isin(risk_keys)].reset_index(drop=True)

    # -- who was at risk, at which level, in the period ------------------------------------
    risk = _at_risk_table(store, model, snaps)
    seen = _at_risk_days(model, risk, snaps, start, end)
    level_of = dict(zip(seen["customer_key"], seen["max_level"], strict=True))
    for k, lk in zip(iv["customer_key"], iv["level_key"], strict=True):
        level_of[k] = lk  # intervened customers count at their intervention's level

    # -- effect and win-back --------------------------------------------------------------
    iv = _effect(store, model, iv, snaps, risk)
    iv, wb_as_of = _win_back(store, model, iv, visits, snaps)

    # -- per level ------------------------------------------------------------------------
    counts = pd.Series(list(level_of.values()), dtype=object).value_counts() if level_of else pd.Series(dtype=int)
    rows = []
    pending: dict[str, dict[str, int]] = {}
    effect: dict[str, dict[str, int]] = {}
    for lv in risk_levels:
        sub = iv[iv["level_key"] == lv.key]
        n = int(counts.get(lv.key, 0))
        if not n and not len(sub):
            continue
        rows.append({"level": lv.key, "customers": max(n, len(sub)), "intervened": len(sub),
                     "won_back": int((sub["won_back"] == "won").sum()),
                     "cost": Decimal(str(round(float(sub["cost"].sum()), 2))) if len(sub) else Decimal(0)})
        pending[lv.key] = {"effect": int((sub["effect"] == "pending").sum()),
                           "win_back": int((sub["won_back"] == "pending").sum())}
        effect[lv.key] = {s: int((sub["effect"] == s).sum()) for s in ("worked", "not_worked", "pending", "no_data")}
    roi = roi_report(rows, model)

    # -- KPIs -----------------------------------------------------------------------------
    n_iv = len(iv)
    kc: dict[str, tuple[int, int]] = {}
    resp = _alert_response(seen, all_contacts, now, tz)
    if resp[1]:
        kc["alert_response"] = resp
    if n_iv:
        kc["contact"] = (int(iv["reached"].sum()), n_iv)
        kc["solved"] = (int(iv["solved"].sum()), n_iv)
        kc["risk_reduced"] = (int((iv["effect"] == "worked").sum()), n_iv)
        kc["win_back"] = (int((iv["won_back"] == "won").sum()), n_iv)
    kpis = evaluate_kpis({k: v for k, v in kc.items() if k in {x.key for x in model.kpis}}, model)
    if wb_as_of is None and n_iv:
        warnings.append("无法判断挽回：快照里没有「上次到店日期」，也没有给出 --visits 到店记录")
    return LoopReport("store", start, end, data_as_of, roi, kpis, kc, pending, effect, iv, warnings,
                      title=f"{start} 至 {end} 流失挽回效果")


def _interventions(contacts: pd.DataFrame, model: ChurnModel) -> pd.DataFrame:
    cols = ["customer_key", "customer_id", "name", "date", "at", "level_key", "level", "score_before", "owner",
            "action", "result", "contacts", "reached", "solved", "cost"]
    if not len(contacts):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols}).astype(
            {"reached": bool, "solved": bool, "cost": float, "contacts": int})
    c = contacts.sort_values(["at", "id"], kind="stable")
    reached_labels = {o.label for o in model.outcomes if o.reached}
    solved_labels = {o.label for o in model.outcomes if o.solved}
    c = c.assign(_reached=c["result"].isin(reached_labels), _solved=c["result"].isin(solved_labels),
                 _cost=pd.to_numeric(c["cost"], errors="coerce").fillna(0.0))
    g = c.groupby("customer_key", sort=False)
    firsts = g.head(1).set_index("customer_key")
    agg = g.agg(contacts=("id", "size"), reached=("_reached", "any"), solved=("_solved", "any"),
                cost=("_cost", "sum"))
    label_to_key = {lv.label: lv.key for lv in model.levels}
    out = pd.DataFrame({
        "customer_key": firsts.index.to_numpy(dtype=object),
        "customer_id": firsts["customer_id"].to_numpy(dtype=object),
        "name": firsts["name"].to_numpy(dtype=object),
        "date": firsts["day"].to_numpy(dtype=object),
        "at": firsts["at"].to_numpy(dtype=object),
        "level_key": firsts["label"].map(label_to_key).to_numpy(dtype=object),
        "level": firsts["label"].to_numpy(dtype=object),
        "score_before": pd.to_numeric(firsts["score"], errors="coerce").to_numpy(dtype=float),
        "owner": firsts["owner"].to_numpy(dtype=object),
        "action": firsts["action"].to_numpy(dtype=object),
        "result": firsts["result"].to_numpy(dtype=object),
    })
    a = agg.loc[out["customer_key"]]
    out["contacts"] = a["contacts"].to_numpy(dtype=int)
    out["reached"] = a["reached"].to_numpy(dtype=bool)
    out["solved"] = a["solved"].to_numpy(dtype=bool)
    out["cost"] = a["cost"].to_numpy(dtype=float)
    return out[cols]


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


def _at_risk_days(model: ChurnModel, risk: _RiskTable, snaps: Sequence[SnapshotInfo], start: dt.date,
                  end: dt.date) -> pd.DataFrame:
    """Per customer at risk on some day of the period: the highest level seen and the
    first at-risk appearance (date, level, that run's deadline for the level)."""
    keys_order = np.array([lv.key for lv in model.levels], dtype=object)
    inside = np.array([start <= s.as_of <= end for s in snaps], dtype=bool)
    m = inside[risk.pos] if len(risk.pos) else np.zeros(0, bool)
    code, rank, pos = risk.code[m], risk.rank[m], risk.pos[m]
    if not len(code):
        return pd.DataFrame({"customer_key": pd.Series(dtype=object), "max_level": pd.Series(dtype=object),
                             "first_day": pd.Series(dtype=object), "first_level": pd.Series(dtype=object),
                             "deadline": pd.Series(dtype="datetime64[ns, UTC]")})
    best = np.full(len(risk.keys), -1, dtype=np.int64)
    np.maximum.at(best, code, rank)
    # rows are in snapshot (as-of) order: a customer's first row is the first appearance
    seen, first = np.unique(code, return_index=True)
    fpos, frank = pos[first], rank[first]
    return pd.DataFrame({
        "customer_key": risk.keys.to_numpy()[seen],
        "max_level": keys_order[best[seen]],
        "first_day": pd.Series([snaps[p].as_of for p in fpos], dtype=object),
        "first_level": keys_order[frank],
        "deadline": pd.to_datetime(pd.Series([risk.deadlines[p].get(r) for p, r in zip(fpos, frank, strict=True)],
                                             dtype=object), utc=True, format="ISO8601"),
    })


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


def _effect(store: Store, model: ChurnModel, iv: pd.DataFrame, snaps: Sequence[SnapshotInfo],
            risk: _RiskTable) -> pd.DataFrame:
    """worked / not_worked / pending / no_data per intervention, and the lowest score seen
    within the window (look-ups stop once the effect is proven, so for a worked one it
    is the lowest score found, not necessarily the lowest of the window).

    Scores of at-risk days come from the snapshots' compact lists; a day the customer is
    not on them (low, or not in that export) is looked up by (snapshot, customer) —
    first one such day each (a score ≤ 40 already proves a fall from 61+), then all."""
    iv = iv.copy()
    iv["score_after"] = np.nan
    iv["effect"] = pd.Series(["no_data"] * len(iv), dtype=object)
    if not len(iv):
        return iv
    if not snaps:
        iv["effect"] = "pending"
        return iv
    within, drop = model.effect_within_days, model.effect_drop
    data_as_of = snaps[-1].as_of
    n = len(iv)
    d0 = list(iv["date"])
    # every (intervention, window day)
    days = np.array([s.as_of for s in snaps], dtype="datetime64[D]")
    lo = np.searchsorted(days, np.array(d0, dtype="datetime64[D]"), side="right")
    hi = np.searchsorted(days, np.array([d + dt.timedelta(days=within) for d in d0], dtype="datetime64[D]"),
                         side="right")
    counts = np.maximum(hi - lo, 0)
    ii = np.repeat(np.arange(n), counts)
    wpos = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)]) if counts.sum() \
        else np.zeros(0, np.int64)
    code = risk.keys.get_indexer(iv["customer_key"].astype(str).to_numpy(dtype=object))[ii]
    row = risk.lookup_index().get_indexer(wpos * (len(risk.keys) + 1) + code)
    row[code < 0] = -1
    score = np.where(row >= 0, risk.score[np.maximum(row, 0)] if len(risk.score) else np.nan, np.nan)
    threshold = iv["score_before"].to_numpy(dtype=float) - drop
    best = np.full(n, np.nan)
    if len(ii):
        ok = ~np.isnan(score)
        np.fmin.at(best, ii[ok], score[ok])
    worked = ~np.isnan(best) & (best <= threshold)
    low_max = model.levels[0].max
    todo = pd.DataFrame({"_i": ii[np.isnan(score)], "pos": wpos[np.isnan(score)]})
    keys = iv["customer_key"].to_numpy(dtype=object)
    for rnd in range(2):
        todo = todo[~worked[todo["_i"].to_numpy()]]
        if not len(todo):
            break
        if rnd == 0:  # one day each where a low score alone would prove the effect, all days for the rest
            proves = threshold[todo["_i"].to_numpy()] >= low_max
            batch = pd.concat([todo[proves].drop_duplicates("_i"), todo[~proves]])
        else:
            batch = todo
        wanted: dict[int, list[str]] = {}
        for p, i in zip(batch["pos"], batch["_i"], strict=True):
            wanted.setdefault(snaps[int(p)].id, []).append(keys[i])
        got = _rows_at(store, wanted, {x.id: x for x in snaps})
        if len(got):
            sid_pos = {s.id: p for p, s in enumerate(snaps)}
            g = pd.DataFrame({"pos": got["snapshot_id"].map(sid_pos).to_numpy(dtype=np.int64),
                              "key": got["customer_key"].to_numpy(dtype=object), "score": got["score"].to_numpy()})
            j = batch.assign(key=keys[batch["_i"].to_numpy()]).merge(g, on=["pos", "key"], how="inner")
            if len(j):
                np.fmin.at(best, j["_i"].to_numpy(dtype=np.int64), j["score"].to_numpy(dtype=float))
        worked = ~np.isnan(best) & (best <= threshold)
        todo = todo.drop(batch.index)
    iv["score_after"] = best
    open_ = np.array([d + dt.timedelta(days=within) > data_as_of for d in d0], dtype=bool)
    state = np.where(worked, "worked", np.where(open_, "pending", np.where(np.isnan(best), "no_data", "not_worked")))
    iv["effect"] = state.astype(object)
    return iv


def _win_back(store: Store, model: ChurnModel, iv: pd.DataFrame, visits: pd.DataFrame | None,
              snaps: Sequence[SnapshotInfo]) -> tuple[pd.DataFrame, dt.date | None]:
    """won / lost / pending per intervention (see the module notes), and the date the
    evidence reaches (None when there is none at all).

    A snapshot's last-visit date is the latest visit up to its day, so the last snapshot
    inside the window (and the first after it, for a gap at the window's end) tells
    whether the customer came back: two rows per customer, never the whole history."""
    iv = iv.copy()
    iv["last_visit_seen"] = None
    iv["won_back"] = pd.Series(["pending"] * len(iv), dtype=object)
    if not len(iv):
        return iv, (snaps[-1].as_of if snaps else None)
    months = model.winback_months
    ends = [add_months(d0, months) for d0 in iv["date"]]
    parts = []
    as_of: dt.date | None = None
    if snaps:
        days = [s.as_of for s in snaps]
        wanted: dict[int, list[str]] = {}
        import bisect

        for k, d0, end in zip(iv["customer_key"], iv["date"], ends, strict=True):
            i = bisect.bisect_right(days, end)  # snaps[i-1] is the last on or before the window's end
            if i > 0 and days[i - 1] > d0:
                wanted.setdefault(snaps[i - 1].id, []).append(k)
            if i < len(snaps):
                wanted.setdefault(snaps[i].id, []).append(k)
        got = _rows_at(store, wanted, {x.id: x for x in snaps}, "last_visit")
        if got["last_visit"].notna().any():
            lv = got.dropna(subset=["last_visit"])
            parts.append(pd.DataFrame({"customer_id": lv["customer_key"].astype(str).to_numpy(dtype=object),
                                       "date": pd.to_datetime(lv["last_visit"].astype(str).str[:10],
                                                              errors="coerce")}))
        if any(c.get("name") == "last_visit" for s in snaps[-1:] for c in (s.layout or [])):
            as_of = days[-1]  # the exports carry last visits: the evidence reaches the latest one
    if visits is not None and len(visits):
        v = pd.DataFrame({"customer_id": visits["customer_id"].astype(str).to_numpy(dtype=object),
                          "date": pd.to_datetime(visits["date"])})
        if "amount" in visits:
            v["amount"] = pd.to_numeric(visits["amount"], errors="coerce").fillna(1.0).to_numpy()
        parts.append(v)
        vmax = v["date"].max()
        if pd.notna(vmax):
            as_of = max(as_of, vmax.date()) if as_of else vmax.date()
    if as_of is None:
        return iv, None
    tx = pd.concat(parts, ignore_index=True).dropna(subset=["date"]) if parts else pd.DataFrame(
        {"customer_id": pd.Series(dtype=object), "date": pd.Series(dtype="datetime64[ns]")})
    if "amount" in tx:
        tx["amount"] = tx["amount"].fillna(1.0)
    d0 = pd.to_datetime(pd.Series(iv["date"].to_numpy(), dtype=object))
    ints = pd.DataFrame({"customer_id": iv["customer_key"].astype(str).to_numpy(dtype=object),
                         "intervention_date": d0})
    flags = win_back_flags(ints, tx, months, as_of=as_of)
    iv["won_back"] = np.where(flags.isna(), "pending", np.where(flags.fillna(False), "won", "lost")).astype(object)
    # the latest spending seen inside the window, for the detail sheet
    paid = tx[tx["amount"] > 0] if "amount" in tx else tx
    j = paid.merge(pd.DataFrame({"customer_id": ints["customer_id"], "_d0": d0, "_end": pd.to_datetime(ends),
                                 "_i": np.arange(len(iv))}), on="customer_id")
    j = j[(j["date"] > j["_d0"]) & (j["date"] <= j["_end"])]
    if len(j):
        last = j.groupby("_i")["date"].max()
        seen = np.full(len(iv), None, dtype=object)
        seen[last.index.to_numpy()] = [d.date() for d in last]
        iv["last_visit_seen"] = seen
    return iv, as_of


def _alert_response(seen: pd.DataFrame, contacts: pd.DataFrame, now: dt.datetime,
                    tz: dt.tzinfo | None) -> tuple[int, int]:
    """(alerts answered by their deadline, alerts answered or past their deadline): an
    alert is a customer's first at-risk appearance in the period."""
    f = seen[seen["deadline"].notna()] if len(seen) else seen
    if not len(f):
        return (0, 0)
    first = pd.Series(dtype="datetime64[ns, UTC]")
    if len(contacts):
        c = pd.DataFrame({"customer_key": contacts["customer_key"].to_numpy(dtype=object),
                          "at": pd.to_datetime(contacts["at"], utc=True)})
        j = c.merge(f[["customer_key", "first_day"]], on="customer_key")
        # only contacts from the alert's day on answer it
        day_start = pd.to_datetime(pd.Series(j["first_day"].to_numpy(), dtype=object))
        day_start = day_start.dt.tz_localize(tz).dt.tz_convert("UTC") if tz is not None else day_start.dt.tz_localize("UTC")
        j = j[j["at"].to_numpy() >= day_start.to_numpy()]
        first = j.groupby("customer_key")["at"].min()
    fc = f["customer_key"].map(first)
    answered = fc.notna() & (fc <= f["deadline"])
    now_utc = pd.Timestamp(now).tz_convert("UTC")
    due = answered | (f["deadline"] <= now_utc)
    return int(answered.sum()), int(due.sum())


# =====================================================================================
# The workbook (native Excel charts)
# =====================================================================================

STATUS_TEXT = {"below": "低于行业标准", "within": "达到行业标准", "above": "高于行业标准", "n/a": "—"}
EFFECT_TEXT = {"worked": "有效（降≥20分）", "not_worked": "未达标", "pending": "观察中", "no_data": "无后续评分"}
WINBACK_TEXT = {"won": "已挽回", "lost": "未挽回", "pending": "待定"}


def write_report_xlsx(report: LoopReport, path: Path, *, force: bool = False) -> Path:
    """The report as a print-ready workbook: the per-level table with totals, the
    counterfactual and KPIs, two native Excel charts (win-back rate against the
    benchmark, ROI by level) and the intervention detail.  Written atomically; text is
    never turned into a formula."""
    import xlsxwriter

    from tierctl.io.writers import atomic_path, neutralise

    roi = report.roi
    with atomic_path(path, force=force) as tmp:
        wb = xlsxwriter.Workbook(str(tmp), {"strings_to_formulas": False, "strings_to_urls": False,
                                            "strings_to_numbers": False})
        title = wb.add_format({"bold": True, "font_size": 14})
        head = wb.add_format({"bold": True, "bg_color": "#D9E1F2", "border": 1, "text_wrap": True,
                              "align": "center", "valign": "vcenter"})
        txt = wb.add_format({"border": 1})
        num = wb.add_format({"border": 1, "num_format": "#,##0"})
        money = wb.add_format({"border": 1, "num_format": "#,##0.00"})
        pct = wb.add_format({"border": 1, "num_format": "0%"})
        bold = wb.add_format({"bold": True, "border": 1})
        note = wb.add_format({"text_wrap": True, "valign": "top"})

        ws = wb.add_worksheet("挽回效果")
        ws.write_string(0, 0, neutralise(report.title or "流失挽回效果"), title)
        heads = ["等级", "客户数", "干预数", "挽回数", "挽回率", "行业标准下限", "行业标准上限", "对比行业标准",
                 "成本（元）", "挽回收入（元）", "ROI"]
        widths = [10, 9, 9, 9, 9, 12, 12, 14, 14, 16, 9]
        for j, (h, w) in enumerate(zip(heads, widths, strict=True)):
            ws.write_string(2, j, h, head)
            ws.set_column(j, j, w)
        r0 = 3
        for i, lv in enumerate(roi.levels):
            r = r0 + i
            ws.write_string(r, 0, f"{lv.label}风险", txt)
            ws.write_number(r, 1, lv.customers, num)
            ws.write_number(r, 2, lv.intervened, num)
            ws.write_number(r, 3, lv.won_back, num)
            _num_or_blank(ws, r, 4, lv.rate, pct)
            ws.write_number(r, 5, float(lv.benchmark[0]), pct)
            ws.write_number(r, 6, float(lv.benchmark[1]), pct)
            ws.write_string(r, 7, STATUS_TEXT[lv.benchmark_status], txt)
            ws.write_number(r, 8, float(lv.cost), money)
            ws.write_number(r, 9, float(lv.revenue), money)
            _num_or_blank(ws, r, 10, lv.roi, pct)
        rt = r0 + len(roi.levels)
        ws.write_string(rt, 0, "合计", bold)
        ws.write_number(rt, 1, roi.customers, num)
        ws.write_number(rt, 2, roi.intervened, num)
        ws.write_number(rt, 3, roi.won_back, num)
        _num_or_blank(ws, rt, 4, roi.rate, pct)
        for j in (5, 6, 7):
            ws.write_blank(rt, j, None, txt)
        ws.write_number(rt, 8, float(roi.cost), money)
        ws.write_number(rt, 9, float(roi.revenue), money)
        _num_or_blank(ws, rt, 10, roi.roi, pct)

        r = rt + 2
        lines = [f"平均年消费 {roi.average_annual_spend.normalize():f} 元；ROI = (挽回数 × 平均年消费 − 成本) ÷ 成本",
                 f"如果不干预：按 {percent(roi.base_churn_rate)} 流失率预计流失 {roi.expected_churn.normalize():f} 人，"
                 f"损失收入 {wan(roi.expected_loss)}元",
                 f"干预后：实际流失 {roi.actual_churn} 人，减少流失 {roi.churn_avoided.normalize():f} 人，"
                 f"避免损失 {wan(roi.saved)}元；增量ROI {percent(roi.incremental_roi)}"]
        for line in lines:
            ws.write_string(r, 0, line)
            r += 1
        if report.kpis:
            r += 1
            for j, h in enumerate(["考核指标", "实际", "目标（高于）", "分子/分母", "是否达标"]):
                ws.write_string(r, j, h, head)
            r += 1
            for k in report.kpis:
                ws.write_string(r, 0, k.label, txt)
                _num_or_blank(ws, r, 1, k.value, pct)
                ws.write_number(r, 2, float(k.target), pct)
                cnt = report.kpi_counts.get(k.key)
                ws.write_string(r, 3, f"{cnt[0]}/{cnt[1]}" if cnt else "—", txt)
                ws.write_string(r, 4, "—" if k.met is None else ("达标" if k.met else "未达标"), txt)
                r += 1
        for text in report.warnings:
            r += 1
            ws.write_string(r, 0, str(neutralise("注意：" + text)), note)

        n = len(roi.levels)
        if n:
            cats = ["挽回效果", r0, 0, r0 + n - 1, 0]
            ch = wb.add_chart({"type": "column"})
            ch.add_series({"name": "挽回率", "categories": cats, "values": ["挽回效果", r0, 4, r0 + n - 1, 4],
                           "data_labels": {"value": True, "num_format": "0%"}, "fill": {"color": "#4472C4"}})
            line = wb.add_chart({"type": "line"})  # one combined chart holds both benchmark lines
            for col, name, color in ((5, "行业标准下限", "#A5A5A5"), (6, "行业标准上限", "#ED7D31")):
                line.add_series({"name": name, "categories": cats, "values": ["挽回效果", r0, col, r0 + n - 1, col],
                                 "line": {"color": color, "dash_type": "dash"}, "marker": {"type": "diamond"}})
            ch.combine(line)
            ch.set_title({"name": "各风险等级挽回率与行业标准"})
            ch.set_y_axis({"num_format": "0%", "min": 0})
            ch.set_legend({"position": "bottom"})
            ws.insert_chart(2, 12, ch, {"x_scale": 1.1, "y_scale": 1.0})
            ch2 = wb.add_chart({"type": "column"})
            ch2.add_series({"name": "ROI", "categories": cats, "values": ["挽回效果", r0, 10, r0 + n - 1, 10],
                            "data_labels": {"value": True, "num_format": "0%"}, "fill": {"color": "#70AD47"},
                            "invert_if_negative": False})
            ch2.set_title({"name": "各风险等级 ROI"})
            ch2.set_y_axis({"num_format": "0%"})
            ch2.set_legend({"none": True})
            ws.insert_chart(18, 12, ch2, {"x_scale": 1.1, "y_scale": 1.0})
        ws.set_landscape()
        ws.fit_to_pages(1, 0)

        if len(report.interventions):
            _detail_sheet(wb, report.interventions, head, txt, num, money)
        wb.close()
    return path


def _num_or_blank(ws: Any, r: int, c: int, v: Decimal | None, fmt: Any) -> None:
    if v is None:
        ws.write_blank(r, c, None, fmt)
    else:
        ws.write_number(r, c, float(v), fmt)


def _detail_sheet(wb: Any, iv: pd.DataFrame, head: Any, txt: Any, num: Any, money: Any) -> None:
    from tierctl.io.writers import neutralise

    ws = wb.add_worksheet("干预明细")
    cols = [("客户编号", "customer_id", 14), ("客户", "name", 10), ("等级", "level", 6), ("干预日期", "date", 11),
            ("干预时风险分", "score_before", 10), ("30天内最低分", "score_after", 10), ("效果", "effect", 14),
            ("负责人", "owner", 12), ("首次干预", "action", 28), ("联系结果", "result", 10),
            ("联系次数", "contacts", 8), ("成本（元）", "cost", 11), ("窗口内最近到店", "last_visit_seen", 13),
            ("挽回", "won_back", 8)]
    for j, (h, _, w) in enumerate(cols):
        ws.write_string(0, j, h, head)
        ws.set_column(j, j, w)
    for i, rec in enumerate(iv.to_dict("records"), start=1):
        for j, (_, k, _) in enumerate(cols):
            v = rec.get(k)
            if k == "effect":
                v = EFFECT_TEXT.get(v, v)
            elif k == "won_back":
                v = WINBACK_TEXT.get(v, v)
            if v is None or (isinstance(v, float) and math.isnan(v)):
                ws.write_blank(i, j, None, txt)
            elif isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool):
                ws.write_number(i, j, float(v), money if k == "cost" else num)
            else:
                ws.write_string(i, j, str(neutralise(v.isoformat() if isinstance(v, dt.date) else str(v))), txt)
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, len(iv), len(cols) - 1)


# =====================================================================================
# Upkeep touches: drafted messages
# =====================================================================================

TOUCH_LABELS = {"birthday": "生日关怀", "festival": "节日问候", "mileage": "里程关怀", "quarterly_gift": "季度礼遇",
                "monthly_invitation": "活动邀请"}
TOUCH_LABELS_EN = {"birthday": "Birthday", "festival": "Festival", "mileage": "Mileage",
                   "quarterly_gift": "Quarterly gift", "monthly_invitation": "Monthly invitation"}
_NAME = "\x00客户称呼\x00"  # rendered once per message shape, then replaced per customer


@dataclass
class DraftedTouches:
    touches: pd.DataFrame  # date, customer_id, name, phone, kind, kind_label, detail, channel, message, taboo
    taboo: list[Any]
    templates: list[str]


def touch_template(kind: str, lang: str) -> str:
    return f"{lang}/touch_{kind}.txt.j2"


def draft_touches(tt: pd.DataFrame, customers: pd.DataFrame, model: ChurnModel, config: Any, *, lang: str = "zh",
                  templates: Path | None = None, allow_taboo: bool = False) -> DraftedTouches:
    """A drafted message for every upkeep touch (from :func:`tierctl.festivals.touches`),
    rendered from ``templates/<lang>/touch_<kind>.txt.j2`` and checked for taboo phrases.

    Each distinct message shape (kind, day, detail, mileage) renders once with a
    placeholder for the customer's name, which is filled in afterwards: a year of touches
    for 100,000 customers costs a few hundred renders, not millions.  A taboo phrase in a
    drafted message stops the run (RenderError naming template and phrase) unless
    ``allow_taboo``; the hits are returned either way.
    """
    from tierctl import documents as docs
    from tierctl.render import ConfigView, make_environment, render_template

    env = make_environment(lang, templates)
    phrases = docs.taboo_phrases(config)
    cust = customers.drop_duplicates("customer_id")
    cust.index = cust["customer_id"].astype(str).to_numpy()
    ids = tt["customer_id"].astype(str)
    names = ids.map(cust["name"]) if "name" in cust else pd.Series([None] * len(tt), index=tt.index)
    phones = ids.map(cust["phone"]) if "phone" in cust else pd.Series([None] * len(tt), index=tt.index)
    km = ids.map(cust["mileage_since_service"]) if "mileage_since_service" in cust else pd.Series(
        [np.nan] * len(tt), index=tt.index)
    names = names.astype(object).where(names.notna(), None)
    has_name = names.map(lambda v: isinstance(v, str) and v.strip() != "")
    km_int = pd.to_numeric(km, errors="coerce").where(tt["kind"] == "mileage")
    km_int = km_int.map(lambda v: None if pd.isna(v) else int(math.floor(v)))
    festivals = model.upkeep.festivals
    dates = pd.to_datetime(tt["date"]).dt.date

    def festival_of(detail: str, sent: dt.date) -> dict[str, Any] | None:
        # the touch is dated the day it is sent, lead_days before the festival itself
        for f in festivals:
            if detail.startswith(f.label):
                return {"key": f.key, "label": f.label, "calendar": f.calendar, "lead_days": f.lead_days,
                        "date": sent + dt.timedelta(days=f.lead_days)}
        return None

    shape = pd.DataFrame({"kind": tt["kind"].to_numpy(), "date": dates.to_numpy(), "detail": tt["detail"].to_numpy(),
                          "has_name": has_name.to_numpy(), "km": km_int.to_numpy(dtype=object)})
    codes, uniques = pd.factorize(pd.MultiIndex.from_frame(shape.astype(object).fillna(-1)))
    centre = ConfigView(config, "centre")
    texts: list[str] = []
    hits: list[Any] = []
    used: set[str] = set()
    for kind, day, detail, named, k in uniques:
        name = touch_template(str(kind), lang)
        used.add(name)
        fest = festival_of(str(detail), day) if kind == "festival" else None
        lead = fest["lead_days"] if fest else (model.upkeep.birthday_lead_days if kind == "birthday" else 0)
        ctx = {"c": {"name": _NAME if named else None}, "centre": centre, "as_of": day,
               "touch": {"kind": kind, "date": day, "detail": detail, "km": None if k == -1 else k,
                         "festival": fest, "days_before": lead, "occasion_date": day + dt.timedelta(days=lead)}}
        text = render_template(env, name, ctx).strip()
        texts.append(text)
        hits += docs.find_taboo(text.replace(_NAME, ""), phrases, name)
    if hits and not allow_taboo:
        shown = "\n".join(f"  - {h.describe()}" for h in hits[:10])
        raise RenderError(f"起草的维护短信里有禁忌用语：\n{shown}",
                          hint="修改模板（tierctl templates list 查看位置）后重试；确需保留时加 --allow-taboo")
    bad = {i for i, t in enumerate(texts) if docs.find_taboo(t.replace(_NAME, ""), phrases)}
    msg_by_shape = np.array(texts, dtype=object)[codes] if len(texts) else np.array([], dtype=object)
    msg = pd.Series(msg_by_shape, index=tt.index, dtype=object)
    named_idx = has_name.to_numpy()
    if named_idx.any():
        nm = names[named_idx].astype(str).str.strip()
        msg[named_idx] = [m.replace(_NAME, n) for m, n in zip(msg[named_idx], nm, strict=True)]
    taboo = pd.Series([[h.phrase for h in docs.find_taboo(texts[c], phrases)] if c in bad else []
                       for c in codes], index=tt.index, dtype=object)
    labels = TOUCH_LABELS if lang == "zh" else TOUCH_LABELS_EN
    out = pd.DataFrame({
        "date": dates.to_numpy(dtype=object), "customer_id": ids.to_numpy(dtype=object),
        "name": names.to_numpy(dtype=object), "phone": phones.astype(object).where(phones.notna(), None).to_numpy(),
        "kind": tt["kind"].to_numpy(dtype=object), "kind_label": tt["kind"].map(labels).to_numpy(dtype=object),
        "detail": tt["detail"].to_numpy(dtype=object), "channel": "短信" if lang == "zh" else "SMS",
        "message": msg.to_numpy(dtype=object), "taboo": taboo.to_numpy(dtype=object),
    })
    return DraftedTouches(out, hits, sorted(used))


def touches_json(d: DraftedTouches, start: dt.date, days: int, source: Mapping[str, Any]) -> dict[str, Any]:
    recs = []
    t = d.touches
    for r in t.to_dict("records"):
        recs.append({**r, "date": r["date"].isoformat()})
    return {"from": start.isoformat(), "days": days, "to": (start + dt.timedelta(days=max(days, 1) - 1)).isoformat(),
            "source": dict(source), "count": len(recs), "touches": recs,
            "taboo": [{"template": h.file, "phrase": h.phrase, "line": h.text} for h in d.taboo]}
