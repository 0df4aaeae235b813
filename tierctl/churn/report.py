"""The churn job's period report: win-back, ROI, KPIs and the counterfactual.

:func:`loop_report` evaluates a period from the store; :func:`table_report` does the
same from a table of figures (the seed's, or a file read by :func:`read_table`).

Decisions where the playbook is silent (README repeats them for users):

* An *intervention* of the report is a customer's first logged contact in the period:
  its date, level and score are the starting point; every contact of that customer in
  the period adds its cost.  Customers are counted once per period.
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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tierctl.churn.evaluate import _alert_response, _at_risk_days, _effect, _win_back
from tierctl.churn.history import KIND, _at_risk_table
from tierctl.churn.model import ChurnModel
from tierctl.churn.roi import KpiResult, ROIReport, evaluate_kpis, percent, roi_report
from tierctl.errors import InputError, NotFoundError, UsageError

if TYPE_CHECKING:
    from tierctl.store import Store


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

    roi, pending, effect = _per_level(model, iv, level_of)

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


def _per_level(model: ChurnModel, iv: pd.DataFrame, level_of: Mapping[str, str]
               ) -> tuple[ROIReport, dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """The ROI table per at-risk level, and per level the pending and effect counts."""
    counts = pd.Series(list(level_of.values()), dtype=object).value_counts() if level_of else pd.Series(dtype=int)
    rows = []
    pending: dict[str, dict[str, int]] = {}
    effect: dict[str, dict[str, int]] = {}
    for lv in (x for x in model.levels if x.at_risk):
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
    return roi_report(rows, model), pending, effect


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

