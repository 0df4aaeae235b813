"""What grading keeps in the history store (kind ``"grade"``) and reads back.

* every grading run is a snapshot (one per as-of date; re-running a day replaces it,
  never duplicates it), one row per customer: final grade (``label``), composite
  (``score``), the computed grade, whether and why it was overridden, and each
  indicator's value and score — enough for :func:`tierctl.grade.compare` to explain
  the next run's downgrades, and for :func:`grade_history` to show a customer's story;
* an override made with ``tierctl grade override`` is a row of the store's overrides
  table: it applies to every later run until cleared; replacing or clearing it ends the
  row (with who, when and why) instead of deleting it.

Override precedence (decided for issue 7): an overrides *file* given for a run is that
run's instruction and, like any command-line input, beats stored state — a file row
without a time replaces the customer's stored override for that run (with a warning);
a file row with a time competes on time with the stored one (the latest decision wins,
as in :func:`tierctl.grade.grade_customers`).  File overrides are recorded in the run's
snapshot, not kept for later runs.

Every function takes the open store (``tierctl.store.Store``) as a parameter.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tierctl.errors import NotFoundError, UsageError
from tierctl.grade.changes import GradeChanges
from tierctl.grade.model import GradeModel
from tierctl.grade.result import GradeResult

KIND = "grade"


def stored_overrides(store: Any, tz: dt.tzinfo) -> pd.DataFrame:
    """The active overrides of the store, shaped for :func:`grade_customers` (``at`` =
    when it was made, local wall time)."""
    o = store.active_overrides(KIND)
    if not len(o):
        return pd.DataFrame(columns=["customer_id", "grade", "reason", "by", "at", "override_id"])
    return pd.DataFrame({
        "customer_id": o["customer_key"].astype(str),
        "grade": o["label"],
        "reason": o["reason"],
        "by": o["by"],
        "at": [_local_text(t, tz) for t in o["created_at"]],
        "override_id": o["id"],
    })


def _local_text(t: Any, tz: dt.tzinfo) -> str | None:
    if t is None or (isinstance(t, float) and np.isnan(t)):
        return None
    if isinstance(t, str):
        t = dt.datetime.fromisoformat(t)
    return t.astimezone(tz).replace(tzinfo=None).isoformat(timespec="seconds")


def combine_overrides(from_file: pd.DataFrame | None, stored: pd.DataFrame | None) -> tuple[pd.DataFrame | None,
                                                                                           list[str]]:
    """The overrides one run applies: the file's, then the stored ones the file does not
    replace (see the module docstring).  Returns the frame and warnings."""
    warnings: list[str] = []
    parts = []
    if from_file is not None and len(from_file):
        parts.append(from_file.assign(_source="file"))
    if stored is not None and len(stored):
        s = stored
        if from_file is not None and len(from_file):
            undated = from_file["at"].isna() if "at" in from_file.columns else pd.Series(True, index=from_file.index)
            replaced = set(from_file.loc[undated, "customer_id"].astype(str).str.strip())
            hit = s["customer_id"].isin(replaced)
            if hit.any():
                ids = sorted(s.loc[hit, "customer_id"].tolist())
                more = f" 等 {len(ids)} 位" if len(ids) > 10 else ""
                warnings.append(f"本次的人工调整文件替代了已保存的人工调整（仅本次）：{'、'.join(ids[:10])}{more}")
                s = s[~hit]
        # rows of a store have no Excel row: keep _row empty so messages do not invent one
        parts.append(s.assign(_source="stored", _row=None))
    if not parts:
        return None, warnings
    return pd.concat(parts, ignore_index=True), warnings


def override_grade(model: GradeModel, grade: str) -> str:
    """The canonical name of ``grade`` (aliases accepted); a usage error otherwise."""
    r = model.rank(grade)
    if r is None:
        raise UsageError(f"「{grade}」不是有效的等级", hint=f"可选：{'、'.join(model.grade_names)}")
    return model.categories[r]


def add_override(store: Any, model: GradeModel, customer_id: str, grade: str, reason: str | None,
                 by: str | None, now: dt.datetime) -> dict[str, Any]:
    """Record a manual grade for ``customer_id`` from now on (until cleared).  A reason is
    required; an override already in force for the customer is ended (kept in history)."""
    cid = customer_id.strip()
    if not cid:
        raise UsageError("客户编号不能为空")
    why = (reason or "").strip()
    if not why:
        raise UsageError("人工调整必须写明原因", hint='加 --reason "原因"，例如 --reason "转介绍 10 位新客户"')
    name = override_grade(model, grade)
    last = last_grading(store, cid)
    with store.transaction():
        replaced = _active_for(store, cid)
        if replaced is not None:
            store.end_overrides(KIND, [cid], at=now, status="replaced", reason="被新的人工调整取代", by=by)
        oid = store.add_override(KIND, customer_key=cid, customer_id=cid,
                                 name=last.get("name") if last else None, label=name,
                                 previous_label=last.get("computed_grade") if last else None,
                                 reason=why, by=by, created_at=now)
    return {"id": oid, "customer_id": cid, "name": last.get("name") if last else None, "grade": name,
            "reason": why, "by": by, "at": now.isoformat(), "last": last,
            "replaced": _plain_override(replaced, now.tzinfo) if replaced is not None else None}


def clear_override(store: Any, customer_id: str, reason: str | None, by: str | None,
                   now: dt.datetime) -> dict[str, Any]:
    """End the customer's override: later runs grade him by his composite again."""
    cid = customer_id.strip()
    active = _active_for(store, cid)
    if active is None:
        raise NotFoundError(f"客户 {cid} 没有生效中的人工调整",
                            hint="用 tierctl grade overrides 查看生效中的人工调整")
    store.end_overrides(KIND, [cid], at=now, status="cleared", reason=(reason or "").strip() or "人工取消", by=by)
    return {"customer_id": cid, "cleared": _plain_override(active, now.tzinfo), "at": now.isoformat(), "by": by}


def _active_for(store: Any, cid: str) -> dict[str, Any] | None:
    o = store.overrides_list(KIND, cid)
    if not len(o):
        return None
    act = o[o["status"] == "active"]
    return act.iloc[-1].to_dict() if len(act) else None


def _plain_override(row: dict[str, Any], tz: dt.tzinfo | None = None) -> dict[str, Any]:
    """An overrides-table row as plain JSON types; times in ``tz`` wall time when given."""
    out = {}
    for k in ("id", "customer_id", "name", "label", "previous_label", "reason", "by", "created_at", "status",
              "ended_at", "ended_by", "end_reason"):
        v = row.get(k)
        if isinstance(v, dt.datetime):
            v = _local_text(v, tz) if tz is not None else v.isoformat()
        elif v is not None and not isinstance(v, str | int | float | bool):
            v = str(v)
        if isinstance(v, float) and np.isnan(v):
            v = None
        out["grade" if k == "label" else k] = v
    return out


def overrides_table(store: Any, tz: dt.tzinfo, *, all_: bool = False) -> list[dict[str, Any]]:
    """Overrides in force (or, with ``all_``, every one ever made — replaced and cleared
    ones too), oldest first, times in local wall time."""
    o = store.overrides_list(KIND) if all_ else store.active_overrides(KIND)
    return [_plain_override(r, tz) for r in o.to_dict("records")]


# =======================================================================================
# Snapshots
# =======================================================================================


def snapshot_frame(result: GradeResult) -> pd.DataFrame:
    """One row per customer, as the store keeps it (generic columns + payload)."""
    c = result.customers
    out: dict[str, Any] = {
        "customer_key": c["customer_id"].array,
        "customer_id": c["customer_id"].array,
        "name": c["name"].array if "name" in c else None,
        "phone": c["phone"].array if "phone" in c else None,
        "label": c["grade"].astype(str).to_numpy(dtype=object),
        "score": c["composite"].to_numpy(dtype=float),
        "computed_grade": c["computed_grade"].astype(str).to_numpy(dtype=object),
        "overridden": c["overridden"].to_numpy(dtype=bool),
        "override_reason": pd.array(c["override_reason"].to_numpy(dtype=object), dtype="string"),
        "override_by": pd.array(c["override_by"].to_numpy(dtype=object), dtype="string"),
        "override_at": pd.array(c["override_at"].to_numpy(dtype=object), dtype="string"),
    }
    for ind in result.indicators:
        out[ind.score_column] = c[ind.score_column].to_numpy(dtype=float)
        out[ind.value_column] = c[ind.value_column].to_numpy(dtype=float)
    return pd.DataFrame(out)


def snapshot_meta(result: GradeResult, changes: GradeChanges | None, previous: Any | None) -> dict[str, Any]:
    model = result.model
    return {
        "model_title": model.title,
        "model_path": str(model.path),
        "normalise": model.normalise,
        "weights": {k: float(v) for k, v in result.weights.items()},
        "missing_indicators": list(result.missing_indicators),
        "distribution": [{k: _plain(v) for k, v in r.items()}
                         for r in result.distribution.astype(object).to_dict("records")],
        "overrides": len(result.audit),
        "previous": previous.as_of.isoformat() if previous is not None else None,
        "upgrades": len(changes.upgrades) if changes is not None else 0,
        "downgrades": len(changes.downgrades) if changes is not None else 0,
    }


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def previous_grading(store: Any, as_of: dt.date) -> tuple[Any, pd.DataFrame] | None:
    """The latest grading strictly before ``as_of`` and its rows, in the shape
    :func:`tierctl.grade.compare` takes (``grade``, ``composite`` …)."""
    info = store.latest_snapshot(KIND, before=as_of)
    if info is None:
        return None
    rows = store.snapshot_rows(info.id)
    rows = rows.rename(columns={"label": "grade", "score": "composite"})
    return info, rows


def save_grading(store: Any, result: GradeResult, source: Path, meta: dict[str, Any],
                 now: dt.datetime) -> Any:
    """Store the run (replacing an earlier run of the same as-of date); returns its info."""
    sid = store.save_snapshot(KIND, result.as_of, result.model.name, source.name, file_hash(source),
                              snapshot_frame(result), meta, now=now)
    return store.snapshot(sid)


def last_grading(store: Any, customer_id: str) -> dict[str, Any] | None:
    """The customer's row in his latest grading (None if never graded)."""
    rows = store.customer_rows(KIND, customer_id)
    if not len(rows):
        return None
    r = rows.iloc[-1].to_dict()
    return {"as_of": _iso(r.get("as_of")), "grade": r.get("label"), "composite": r.get("score"),
            "computed_grade": r.get("computed_grade"), "name": r.get("name")}


def _iso(v: Any) -> Any:
    return v.isoformat() if isinstance(v, dt.date | dt.datetime) else v


def grade_history(store: Any, model: GradeModel, customer_id: str, tz: dt.tzinfo) -> dict[str, Any]:
    """A customer's grading story: every grading with its grade, composite and change,
    and every override made or ended, in time order."""
    cid = customer_id.strip()
    rows = store.customer_rows(KIND, cid)
    ovs = store.overrides_list(KIND, cid)
    if not len(rows) and not len(ovs):
        raise NotFoundError(f"客户 {cid} 没有客户分级记录",
                            hint="检查客户编号（导出中的写法，含前导 0）；或先运行 tierctl grade 导出文件")
    gradings = []
    prev = None
    for r in rows.to_dict("records"):
        g = r.get("label")
        change = None
        if prev is not None and g != prev:
            a, b = model.rank(g), model.rank(prev)
            change = "changed" if a is None or b is None else ("up" if a > b else "down")
        gradings.append({
            "as_of": _iso(r["as_of"]), "snapshot_id": int(r["snapshot_id"]), "grade": g,
            "composite": _num(r.get("score")), "computed_grade": r.get("computed_grade"),
            "overridden": bool(r.get("overridden") or False),
            "override_reason": r.get("override_reason") if r.get("overridden") else None,
            "override_by": r.get("override_by") if r.get("overridden") else None,
            "previous_grade": prev, "change": change,
        })
        prev = g
    events = []
    for o in ovs.to_dict("records"):
        events.append({"at": _local_text(o["created_at"], tz), "event": "override", "grade": o["label"],
                       "reason": o["reason"], "by": o.get("by"), "previous_grade": o.get("previous_label"),
                       "id": int(o["id"])})
        if o.get("ended_at") is not None and not (isinstance(o["ended_at"], float) and np.isnan(o["ended_at"])):
            events.append({"at": _local_text(o["ended_at"], tz), "event": o["status"], "grade": o["label"],
                           "reason": o.get("end_reason"), "by": o.get("ended_by"), "previous_grade": None,
                           "id": int(o["id"])})
    events.sort(key=lambda e: (e["at"] or "", e["id"]))
    name = next((r.get("name") for r in reversed(rows.to_dict("records")) if r.get("name")), None)
    active = ovs[ovs["status"] == "active"] if len(ovs) else ovs
    return {"customer_id": cid, "name": name, "gradings": gradings, "overrides": events,
            "active_override": _plain_override(active.iloc[-1].to_dict(), tz) if len(active) else None}


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    return None if isinstance(v, float) and np.isnan(v) else v


def _num(v: Any) -> float | None:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    return float(v)

