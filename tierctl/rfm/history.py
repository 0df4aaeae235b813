"""Month-over-month migration between two RFM snapshots, and the shape the history
store keeps (the store itself is not imported here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from tierctl.errors import InputError, UsageError
from tierctl.rfm.model import DIMENSIONS, Edges, RfmModel, rfm_types
from tierctl.rfm.result import RfmResult, _plain


# =====================================================================================
# Migration
# =====================================================================================
@dataclass
class Migration:
    """Month-over-month movement between two RFM snapshots.

    ``matrix``: counts, index = previous type number plus ``"new"`` (not in the previous
    snapshot), columns = current type number plus ``"departed"`` (not in the current one).
    ``flows``: one dict per key flow of the model (``key``, ``name``, ``from_type``,
    ``to_type``, ``count``, ``base`` = customers of ``from_type`` last time, ``rate_pct``,
    ``target_zh``, ``target_pct``, ``customer_ids`` sorted).
    ``shares``: per type, customers and share last time and now, and the change in points.
    ``edges``: the bin edges each side was scored with (:meth:`Edges.to_dict`, ``None``
    when unknown), ``same_scale`` (both sides used the same bounds, so a move is a change
    in the customer, not in the scale) and ``note``, one sentence saying so.
    """

    matrix: pd.DataFrame
    flows: list[dict[str, Any]]
    shares: pd.DataFrame
    prev_as_of: date | None = None
    curr_as_of: date | None = None
    edges: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "prev_as_of": self.prev_as_of.isoformat() if self.prev_as_of else None,
            "curr_as_of": self.curr_as_of.isoformat() if self.curr_as_of else None,
            "matrix": {
                "rows": [str(i) for i in self.matrix.index],
                "columns": [str(c) for c in self.matrix.columns],
                "counts": [[int(v) for v in row] for row in self.matrix.to_numpy()],
            },
            "flows": [{k: (list(v) if isinstance(v, list) else _plain(v)) for k, v in fl.items()}
                      for fl in self.flows],
            "shares": [{k: _plain(v) for k, v in row.items()}
                       for row in self.shares.to_dict(orient="records")],
            "edges": self.edges,
        }


def migrate(prev: RfmResult | pd.DataFrame, curr: RfmResult | pd.DataFrame, model: RfmModel, *,
            key: str | None = None, prev_edges: Edges | None = None, curr_edges: Edges | None = None,
            prev_as_of: date | None = None, curr_as_of: date | None = None) -> Migration:
    """Compare two snapshots (results, or their ``customers`` frames with ``type_no``).

    Customers are matched on ``key`` (default: the unit column of the results, else
    ``customer_id``).  The edges and dates default to those of the results; pass them for
    frames (e.g. stored snapshots).  Pure: nothing is read or stored.
    """
    if isinstance(prev, RfmResult):
        prev_as_of = prev_as_of or prev.as_of
        prev_edges = prev_edges or prev.edges
    if isinstance(curr, RfmResult):
        curr_as_of = curr_as_of or curr.as_of
        curr_edges = curr_edges or curr.edges
    if isinstance(prev, RfmResult) and isinstance(curr, RfmResult) and prev.unit != curr.unit:
        raise UsageError("两次 RFM 的统计单位不同（车主 / 车辆），不能比较迁移")
    if key is None:
        key = next((x.unit_column for x in (prev, curr) if isinstance(x, RfmResult)), "customer_id")
    a = _snapshot_types(prev, key, model, "上期")
    b = _snapshot_types(curr, key, model, "本期")

    nos = [t.no for t in model.types]
    joined = a.to_frame("prev").join(b.to_frame("curr"), how="outer")
    prev_lab = joined["prev"].astype(object).where(joined["prev"].notna(), "new")
    curr_lab = joined["curr"].astype(object).where(joined["curr"].notna(), "departed")
    prev_lab = prev_lab.map(lambda v: v if v == "new" else int(v))
    curr_lab = curr_lab.map(lambda v: v if v == "departed" else int(v))
    matrix = pd.crosstab(prev_lab, curr_lab)
    matrix = matrix.reindex(index=[*nos, "new"], columns=[*nos, "departed"], fill_value=0)
    matrix = matrix.astype(np.int64)
    matrix.index.name, matrix.columns.name = "prev", "curr"

    flows = []
    for fl in model.key_flows:
        sel = (joined["prev"] == fl.from_type) & (joined["curr"] == fl.to_type)
        ids = sorted(str(i) for i in joined.index[sel.fillna(False).to_numpy(dtype=bool)])
        base = int((a == fl.from_type).sum())
        flows.append({
            "key": fl.key, "name": fl.name_zh, "from_type": fl.from_type, "to_type": fl.to_type,
            "count": len(ids), "base": base,
            "rate_pct": round(100 * len(ids) / base, 2) if base else None,
            "target_zh": fl.target_zh, "target_pct": fl.target_pct, "customer_ids": ids,
        })

    na, nb = len(a), len(b)
    ca, cb = a.value_counts(), b.value_counts()
    shares = pd.DataFrame([{
        "type_no": t.no, "type_name": t.name_zh,
        "prev_customers": int(ca.get(t.no, 0)),
        "prev_share_pct": round(100 * ca.get(t.no, 0) / na, 2) if na else 0.0,
        "curr_customers": int(cb.get(t.no, 0)),
        "curr_share_pct": round(100 * cb.get(t.no, 0) / nb, 2) if nb else 0.0,
    } for t in model.types])
    shares["change_pp"] = (shares["curr_share_pct"] - shares["prev_share_pct"]).round(2)
    return Migration(matrix=matrix, flows=flows, shares=shares, prev_as_of=prev_as_of,
                     curr_as_of=curr_as_of, edges=_edges_info(prev_edges, curr_edges))


def _same_bounds(a: Edges, b: Edges) -> bool:
    return all(a.bounds(d) == b.bounds(d) for d in DIMENSIONS) and a.monetary_basis == b.monetary_basis


def _edges_info(prev: Edges | None, curr: Edges | None) -> dict[str, Any]:
    same = prev is not None and curr is not None and _same_bounds(prev, curr)
    if prev is None or curr is None:
        note = "缺少一期的分箱边界，无法判断两期是否同一尺度"
    elif same:
        note = "两期使用同一套分箱边界：客户的迁移来自其自身到店和消费的变化，可直接比较"
    else:
        note = ("两期各自按当期数据计算分箱边界，边界不同：部分迁移可能只是边界移动所致；"
                "加 --freeze-edges 可按上期边界重新评分本期")
    return {"prev": prev.to_dict() if prev is not None else None,
            "curr": curr.to_dict() if curr is not None else None,
            "same_scale": same, "note": note}


def flow_customers(mig: Migration, prev: pd.DataFrame, curr: pd.DataFrame, key: str) -> pd.DataFrame:
    """The customers behind each key flow, one row each: ``flow`` (key), ``flow_name``,
    the key column, ``customer_id``, ``name``, ``phone`` (from the current snapshot),
    the previous and current ``rfm`` and type, and the current R/F/M values."""
    cols = [c for c in dict.fromkeys((key, "customer_id", "name", "phone", "recency_days", "frequency",
                                      "monetary", "rfm", "type_name")) if c in curr.columns]
    now = curr[cols].drop_duplicates(subset=[key]).set_index(curr[key].astype("str").rename("_k"))
    before = prev[[c for c in (key, "rfm", "type_name") if c in prev.columns]]
    before = before.set_index(prev[key].astype("str").rename("_k"))
    parts = []
    for fl in mig.flows:
        ids = list(fl["customer_ids"])
        part = now.reindex(ids).reset_index(drop=True)
        part.insert(0, "flow", fl["key"])
        part.insert(1, "flow_name", fl["name"])
        if key in part.columns:
            part[key] = pd.array(ids, dtype="str")
        else:
            part.insert(2, key, pd.array(ids, dtype="str"))
        prior = before.reindex(ids)
        part["prev_rfm"] = prior["rfm"].to_numpy() if "rfm" in prior else None
        part["prev_type_name"] = prior["type_name"].to_numpy() if "type_name" in prior else None
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=["flow", "flow_name", key])
    return pd.concat(parts, ignore_index=True)


# =====================================================================================
# Snapshots (the shape the history store keeps; the store itself is not imported here)
# =====================================================================================
_SNAPSHOT_FIELDS = ("last_visit", "recency_days", "frequency", "monetary", "revenue", "r", "f", "m",
                    "rfm", "type_no", "kol", "kol_flag", "red_alert")


def snapshot_rows(result: RfmResult) -> pd.DataFrame:
    """One row per scored unit for the history store: ``customer_key`` (the unit: owner
    id or VIN), ``customer_id``, ``name``, ``phone``, ``label`` (type name), ``score``
    (type number) and the R/F/M values and scores."""
    c = result.customers
    rows = pd.DataFrame({"customer_key": c[result.unit_column],
                         "customer_id": c["customer_id"], "name": c["name"], "phone": c["phone"],
                         "label": c["type_name"], "score": c["type_no"]})
    for col in _SNAPSHOT_FIELDS:
        rows[col] = c[col]
    return rows


def snapshot_meta(result: RfmResult, **extra: Any) -> dict[str, Any]:
    """What a stored snapshot needs besides its rows: the edges (to freeze them later or
    to say which were used), the unit, the bases and the summary."""
    counts: dict[str, int] = {}
    for q in result.quality:
        counts[q["kind"]] = counts.get(q["kind"], 0) + 1
    return {
        "job": "rfm", "model": result.model_name, "unit": result.unit,
        "window_days": result.window_days, "window_start": result.window_start.isoformat(),
        "binning": result.binning, "frequency_basis": result.frequency_basis,
        "monetary_basis": result.monetary_basis, "edges": result.edges.to_dict(),
        "summary": [{k: _plain(v) for k, v in row.items()}
                    for row in result.summary.to_dict(orient="records")],
        "quality_counts": counts, **extra,
    }


def customers_from_snapshot(rows: pd.DataFrame, unit: str) -> pd.DataFrame:
    """A stored snapshot's rows back in the shape of :attr:`RfmResult.customers` (the
    columns that were stored), for :func:`migrate` and :func:`rescore`."""
    unit_col = "vin" if unit == "vin" else "customer_id"
    out = rows.drop(columns=["score"] + (["type_name"] if "label" in rows else []), errors="ignore")
    out = out.rename(columns={"label": "type_name"})
    if unit_col == "vin":
        out = out.rename(columns={"customer_key": "vin"})
    else:
        out = out.drop(columns=["customer_key"]).assign(customer_id=rows["customer_key"])
    for col in (unit_col, "customer_id", "name", "phone", "type_name", "rfm"):
        if col in out:
            out[col] = out[col].astype("str")
    for col in ("recency_days", "frequency", "r", "f", "m", "type_no"):
        if col in out:
            out[col] = pd.to_numeric(out[col]).astype(np.int64)
    for col in ("monetary", "revenue"):
        if col in out:
            out[col] = pd.to_numeric(out[col]).astype(np.float64)
    return out


def rescore(customers: pd.DataFrame, model: RfmModel, edges: Edges, *,
            monetary_basis: str | None = None) -> pd.DataFrame:
    """Re-score stored R/F/M values on other edges (e.g. last month's: frozen).

    ``customers`` needs ``recency_days``, ``frequency`` and ``monetary``; the scores, the
    ``rfm`` label, the type and the flags are recomputed, the values are not touched.
    ``monetary_basis``: the basis the values were computed with (must match the edges).
    """
    basis = monetary_basis or model.monetary
    if edges.monetary_basis != basis:
        raise UsageError(f"冻结的边界按 M={edges.monetary_basis} 计算，这一期是 M={basis}",
                         hint="两期的 M 口径必须一致才能比较")
    for col in DIMENSIONS:
        if col not in customers.columns:
            raise UsageError(f"快照缺少 {col}，不能按其他边界重新评分")
    out = customers.copy()
    scores = {dim: edges.score(dim, out[dim].to_numpy(dtype=np.float64)) for dim in DIMENSIONS}
    r, f, m = scores["recency_days"], scores["frequency"], scores["monetary"]
    type_no = rfm_types(r, f, m, model)
    by_no = {t.no: t for t in model.types}
    out["r"], out["f"], out["m"] = r, f, m
    out["rfm"] = pd.array([f"{a}-{b}-{c}" for a, b, c in zip(r, f, m, strict=True)], dtype="str")
    out["type_no"] = type_no.astype(np.int64)
    out["type_name"] = pd.array([by_no[int(k)].name_zh for k in type_no], dtype="str")
    if "strategy" in out:
        out["strategy"] = pd.array([by_no[int(k)].strategy_zh for k in type_no], dtype="str")
    if "kol" in out:
        kol = pd.array(out["kol"].astype(object).where(out["kol"].notna(), False), dtype="boolean")
        out["kol_flag"] = kol.to_numpy(dtype=bool, na_value=False) & (m < model.high_min)
    out["red_alert"] = np.isin(type_no, list(model.red_alert_types))
    # the order of RfmResult.customers: by type, biggest spenders first, then the key
    key = "vin" if "vin" in out.columns else "customer_id"
    order = np.lexsort((out[key].astype("str").rank(method="first").to_numpy(),
                        -out["monetary"].to_numpy(dtype=np.float64), out["type_no"].to_numpy()))
    return out.iloc[order].reset_index(drop=True)


def _snapshot_types(snap: RfmResult | pd.DataFrame, key: str, model: RfmModel, label: str) -> pd.Series:
    frame = snap.customers if isinstance(snap, RfmResult) else snap
    for col in (key, "type_no"):
        if col not in frame.columns:
            raise UsageError(f"{label}客户表缺少列 {col}")
    ids = frame[key].astype("str")
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        shown = "、".join(sorted(set(dup.tolist()))[:10])
        raise InputError(f"{label}客户表中有重复的{key}：{shown}", hint="每个客户只能出现一次")
    types = frame["type_no"].to_numpy()
    unknown = sorted(set(types.tolist()) - {t.no for t in model.types})
    if unknown:
        raise UsageError(f"{label}客户表中有模型不认识的类型编号：{unknown}")
    return pd.Series(types.astype(np.int64), index=pd.Index(ids.to_numpy(), name=key), name="type_no")
