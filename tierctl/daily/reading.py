"""What the daily loop reads back from the store: the policy a snapshot was scored under,
each customer's latest contact, a customer found by id/name/phone, a stored result."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from tierctl.daily import owners
from tierctl.daily.cadence import ContactPolicy, CrisisResponse
from tierctl.daily.snapshot import apply_overrides, model_meta, result_from_rows
from tierctl.daily.values import KIND, OVERRIDE_ID, _plain
from tierctl.errors import ModelError, NotFoundError, UsageError
from tierctl.shortage import (
    ShortageModel,
    ShortageResult,
    load_model,
)
from tierctl.store import owners as store_owners
from tierctl.store.core import SnapshotInfo, Store

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
    return model_meta(model)["tiers"]


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
    return result_from_rows(rows, model, info.as_of, now, warnings)


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
    prefix = f"{OVERRIDE_ID}:"
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
    out, applied = apply_overrides(f, rows, result.model, now)
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
                "phone": r["phone"], "label": r["label"], "score": _plain(r["score"]),
                "listed": True, "snapshot": info}
    if store.known_key(KIND, ident):
        rows = store.customer_rows(KIND, ident)
        r = rows.iloc[-1].to_dict()
        return {"customer_key": ident, "customer_id": r.get("customer_id"), "name": r.get("name"),
                "phone": r.get("phone"), "label": r.get("label"), "score": _plain(r.get("score")),
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
