"""Where the dashboard's RFM and churn parts come from (split from :mod:`tierctl.render.dashboard`):
the stored snapshots read back (newest on or before a day, a field's values, counts) and
the RFM type distribution, the RFM migration and the churn ROI by level."""

from __future__ import annotations

import contextlib
import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pandas as pd
import sqlalchemy as sa

from tierctl.errors import ModelError, UsageError
from tierctl.store.core import SnapshotInfo, Store

SHORTAGE, RFM, CHURN = "shortage", "rfm", "churn"
LEVEL_COLORS = ["#91cf60", "#fee08b", "#fc8d59", "#d73027"]
LEVEL_EN = {"low": "Low", "mid": "Medium", "high": "High", "extreme": "Extreme"}


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
    for v, cnt in _counted(_values(store, info, "type_no")):
        tno = type_no(v)
        if tno is not None:
            counts[tno] = counts.get(tno, 0) + int(cnt)
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
            from tierctl.churn.report import loop_report

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
