"""Job A: parts-shortage crisis tiers (SPEC A1–A7), pure.

``score(frame, model, as_of, now)`` takes the typed export (see :mod:`tierctl.io.ingest`),
derives or validates the four dimension scores, computes the total exactly, assigns the
model tier, applies the escalation rules (which only ever raise a tier), and attaches the
tier policy (owner, respond-by, cadence, channel, compensation).  It does no I/O and
reads no clock: ``as_of`` and ``now`` are parameters, so yesterday's file re-scores to
exactly yesterday's result.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tierctl.errors import InputError, ModelError, Problem
from tierctl.io.ingest import ColumnSet
from tierctl.models.loader import Section
from tierctl.models.rules import Context, Rule, build_rule
from tierctl.textmatch import keyword_hits

TIER_FIELDS_TEXT = ("label", "mode", "owner", "owner_short", "owner_role", "cadence_note", "channel", "action")


# -- the model ---------------------------------------------------------------------------
@dataclass
class Dimension:
    key: str
    label: str
    label_en: str
    weight: Decimal
    lo: int
    hi: int
    default: int
    default_reason: str
    warn_when_default: str
    rules: list[Rule]


@dataclass
class Tier:
    name: str
    min: Decimal
    label: str
    mode: str
    owner: str
    owner_short: str
    owner_role: str
    first_contact_hours: int
    cadence_days: int
    cadence_note: str
    channel: str
    compensation: list[str]
    action: str
    progress_target: str = ""


@dataclass
class Escalation:
    id: str
    type: str
    reason: str
    over_days: int = 0
    when_tiers: tuple[str, ...] = ()
    to: str = ""
    field: str = ""
    previous_field: str = ""
    keywords: tuple[str, ...] = ()
    steps: int = 1
    ratio: Decimal = Decimal(3)
    min_count: int = 0


@dataclass
class AlertRule:
    id: str
    min_days: int
    recipient: str
    reason: str


@dataclass
class CrisisRules:
    levels: list[dict[str, Any]]
    affected: list[int]
    longest_wait: list[int]
    p0_count: list[int]
    eta_weeks_over: list[float]
    complaint_level: int


@dataclass
class ShortageModel:
    name: str
    title: str
    path: Path
    total: str
    decimals: int
    negations: tuple[str, ...]
    columns: ColumnSet
    dimensions: list[Dimension]
    tiers: list[Tier]  # most urgent first
    escalation: list[Escalation]
    alerts: list[AlertRule]
    redlist_recipient: str
    redlist_reason: str
    complaint_keywords: tuple[str, ...]
    crisis: CrisisRules
    expected_share: dict[str, tuple[float, float]]
    scale: int = 1  # totals are integers in units of 1/scale
    weights_scaled: list[int] = field(default_factory=list)

    @property
    def tier_names(self) -> list[str]:
        return [t.name for t in self.tiers]

    def tier(self, name: str) -> Tier:
        return self.tiers[self.tier_names.index(name)]

    @property
    def dim_keys(self) -> list[str]:
        return [d.key for d in self.dimensions]

    def format_score(self, scaled: int) -> str:
        return f"{Decimal(int(scaled)) / self.scale:.{self.decimals}f}"


def load_model(name_or_path: str | Path = "rite") -> ShortageModel:
    """Load and validate a shortage model (packaged name or a path to a user's copy)."""
    sec = Section.load(name_or_path, kind="shortage")
    total = sec.choice("total", ("weighted", "sum"), "weighted")
    negations = tuple(sec.list("negations", [], of=str))
    columns = ColumnSet.from_model(sec)
    dims = []
    for d in sec.sections("dimensions"):
        key = d.str("key")
        allowed = d.list("allowed", [1, 10], of=int)
        if len(allowed) != 2 or allowed[0] > allowed[1]:
            raise d.error("allowed", "应写成 [最低分, 最高分]")
        weight = d.decimal("weight", 1 if total == "sum" else None, min=0)
        if weight is None:
            raise d.error("weight", "加权模型的每个维度都需要 weight")
        dims.append(Dimension(
            key=key, label=d.str("label", key), label_en=d.str("label_en", key),
            weight=Decimal(weight), lo=allowed[0], hi=allowed[1],
            default=d.int("default", allowed[0], min=allowed[0], max=allowed[1]),
            default_reason=d.str("default_reason", "无规则命中，取默认值"),
            warn_when_default=d.str("warn_when_default", ""),
            rules=[build_rule(r) for r in d.sections("rules", [])],
        ))
        for r in dims[-1].rules:
            for f in r.uses():
                if f not in columns.specs:
                    raise d.error("rules", f"规则引用了未声明的列「{f}」", hint="在 [columns] 中声明这一列")
    if not dims:
        raise sec.error("dimensions", "至少需要一个维度")
    if len({d.key for d in dims}) != len(dims):
        raise sec.error("dimensions", "维度 key 重复")
    if total == "weighted" and sum(d.weight for d in dims) != 1:
        raise sec.error("dimensions", f"权重之和应为 1，实际为 {sum(d.weight for d in dims)}")
    places = max((-d.weight.normalize().as_tuple().exponent for d in dims), default=0)
    scale = 10 ** max(places, 0)
    weights_scaled = [int(d.weight * scale) for d in dims]

    tiers = []
    for t in sec.sections("tiers"):
        tiers.append(Tier(
            name=t.str("name"), min=t.decimal("min"),
            **{k: t.str(k, "") for k in TIER_FIELDS_TEXT},
            first_contact_hours=t.int("first_contact_hours", min=0),
            cadence_days=t.int("cadence_days", min=1),
            compensation=t.list("compensation", [], of=str),
            progress_target=t.str("progress_target", ""),
        ))
    if not tiers:
        raise sec.error("tiers", "至少需要一个分级")
    tiers.sort(key=lambda t: t.min, reverse=True)
    names = [t.name for t in tiers]
    if len(set(names)) != len(names):
        raise sec.error("tiers", "分级名称重复")

    esc = []
    for e in sec.sections("escalation", []):
        etype = e.choice("type", ("wait_floor", "new_keywords", "contact_spike", "flag_to"))
        rule = Escalation(id=e.str("id"), type=etype, reason=e.str("reason", ""))
        if etype == "wait_floor":
            rule.over_days = e.int("over_days", min=0)
            rule.when_tiers = tuple(e.list("when_tiers", [], of=str))
            rule.to = e.str("to")
        elif etype == "new_keywords":
            rule.field = e.str("field")
            rule.keywords = tuple(e.list("keywords", of=str))
            rule.steps = e.int("steps", 1, min=1)
        elif etype == "contact_spike":
            rule.field = e.str("field")
            rule.previous_field = e.str("previous_field", "")
            rule.ratio = e.decimal("ratio", 3, min=1)
            rule.min_count = e.int("min_count", 1, min=0)
            rule.steps = e.int("steps", 1, min=1)
        else:
            rule.field = e.str("field")
            rule.to = e.str("to")
        for t in (*rule.when_tiers, *([rule.to] if rule.to else [])):
            if t not in names:
                raise e.error("to", f"未知的分级「{t}」", hint=f"模型中的分级：{', '.join(names)}")
        if rule.field and rule.field not in columns.specs:
            raise e.error("field", f"引用了未声明的列「{rule.field}」")
        esc.append(rule)

    alerts = [AlertRule(a.str("id"), a.int("min_days", min=0), a.str("recipient"), a.str("reason", ""))
              for a in sec.sections("alerts", [])]
    alerts.sort(key=lambda a: a.min_days)
    rl = sec.section("redlist_alert", {})
    c = sec.section("crisis")
    crisis = CrisisRules(
        levels=c.list("levels", of=dict), affected=c.list("affected", of=int),
        longest_wait=c.list("longest_wait", of=int), p0_count=c.list("p0_count", of=int),
        eta_weeks_over=c.list("eta_weeks_over", of=(int, float)), complaint_level=c.int("complaint_level", 4),
    )
    if len(crisis.levels) != 4 or len(crisis.affected) != 3 or len(crisis.longest_wait) != 3 \
            or len(crisis.eta_weeks_over) != 3 or len(crisis.p0_count) != 2:
        raise c.error(None, "危机等级需要 4 个等级，affected/longest_wait/eta_weeks_over 各 3 个界限，p0_count 2 个")
    share = {}
    es = sec.section("expected_share", {})
    for k, v in es.items():
        if not (isinstance(v, list) and len(v) == 2):
            raise es.error(k, "应写成 [下限, 上限]，如 [0.10, 0.15]")
        share[k] = (float(v[0]), float(v[1]))
    return ShortageModel(
        name=sec.str("name", Path(sec.path).stem), title=sec.str("title", ""), path=sec.path,
        total=total, decimals=sec.int("decimals", 2, min=0, max=4), negations=negations,
        columns=columns, dimensions=dims, tiers=tiers, escalation=esc, alerts=alerts,
        redlist_recipient=rl.str("recipient", "区域总监") if rl else "区域总监",
        redlist_reason=rl.str("reason", "红名单客户投诉") if rl else "红名单客户投诉",
        complaint_keywords=tuple(rl.list("complaint_keywords", ["投诉", "曝光"], of=str)) if rl else ("投诉",),
        crisis=crisis, expected_share=share, scale=scale, weights_scaled=weights_scaled,
    )


# -- the result --------------------------------------------------------------------------
@dataclass
class ShortageResult:
    as_of: dt.date
    now: dt.datetime
    model: ShortageModel
    customers: pd.DataFrame  # sorted most urgent first
    warnings: list[str]

    def counts(self) -> dict[str, int]:
        vc = self.customers["tier"].value_counts()
        return {t: int(vc.get(t, 0)) for t in self.model.tier_names}

    def reasons(self, i: int) -> list[str]:
        row = self.customers.iloc[i]
        return row_reasons(row, self.model)

    def records(self) -> list[dict[str, Any]]:
        """One plain dict per customer (the JSON shape), most urgent first."""
        return [customer_record(r, self.model) for r in self.customers.to_dict("records")]

    def to_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "model": self.model.name,
            "generated_at": self.now.isoformat(),
            "counts": self.counts(),
            "customers": self.records(),
            "warnings": list(self.warnings),
        }


def row_reasons(row: Any, model: ShortageModel) -> list[str]:
    out = [row[f"reason_{d.key}"] for d in model.dimensions]
    esc = row["escalations"]
    if isinstance(esc, str) and esc:
        out.extend(esc.split("\n"))
    return out


def _plain(v: Any) -> Any:
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float) and np.isnan(v):
        return None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return v


def customer_record(r: dict[str, Any], model: ShortageModel) -> dict[str, Any]:
    esc = r["escalations"]
    return {
        "customer_id": _plain(r.get("customer_id")),
        "name": _plain(r.get("name")),
        "phone": _plain(r.get("phone")),
        "car": _plain(r.get("car")),
        "wait_days": int(r["wait_days"]),
        "dims": {d.key: int(r[d.key]) for d in model.dimensions},
        "score": float(Decimal(int(r["total_scaled"])) / model.scale),
        "model_tier": r["model_tier"],
        "tier": r["tier"],
        "reasons": row_reasons(r, model),
        "escalations": [e for e in esc.split("\n")] if isinstance(esc, str) and esc else [],
        "owner": r["owner"],
        "respond_by": r["respond_by"].isoformat(),
        "cadence_days": int(r["cadence_days"]),
        "channel": r["channel"],
        "compensation": list(model.tier(r["tier"]).compensation),
        "alerts": [a for a in r["alerts"].split("\n")] if isinstance(r["alerts"], str) and r["alerts"] else [],
        "row": int(r["_row"]),
    }


# -- scoring -----------------------------------------------------------------------------
def customer_key(frame: pd.DataFrame) -> pd.Series:
    """Who a row is, across days: the customer id, else the name (+ phone)."""
    n = len(frame)
    key = pd.Series([None] * n, index=frame.index, dtype=object)
    if "customer_id" in frame:
        key = frame["customer_id"].astype(object).where(frame["customer_id"].notna(), None)
    if "name" in frame:
        name_key = "姓名:" + frame["name"].astype(str)
        if "phone" in frame:
            name_key = name_key + "/" + frame["phone"].fillna("").astype(str)
        key = key.where(key.notna(), name_key.where(frame["name"].notna(), None))
    return key


def wait_days(frame: pd.DataFrame, as_of: dt.date, headers: dict[str, str] | None = None,
              path: Path | None = None) -> tuple[np.ndarray, list[str]]:
    """Days waited as of ``as_of``: from the wait-start date when there is one (so a
    re-score of an old file is exact), else the wait-days column.  Never negative."""
    n = len(frame)
    days = np.full(n, np.nan)
    warnings = []
    if "wait_days" in frame:
        days = frame["wait_days"].to_numpy(dtype=float, na_value=np.nan)
    if "wait_start" in frame:
        start = frame["wait_start"]
        has = start.notna().to_numpy()
        delta = (pd.Timestamp(as_of) - start).dt.days.to_numpy(dtype=float, na_value=np.nan)
        days = np.where(has, delta, days)
        future = has & (delta < 0)
        if future.any():
            rows = frame["_row"].to_numpy()[future]
            warnings.append(f"{future.sum()} 位客户的开始等待日期晚于评估日期 {as_of}，等待天数按 0 计"
                            f"（第 {'、'.join(map(str, rows[:10]))} 行）")
            days = np.where(future, 0, days)
    missing = np.isnan(days)
    if missing.any():
        headers = headers or {}
        rows = frame["_row"].to_numpy()[missing]
        col = headers.get("wait_days") or headers.get("wait_start") or "等待天数"
        raise InputError("有客户缺少等待天数（也没有开始等待日期）", path=path,
                         problems=[Problem(int(r), col, "", "请填写等待天数或开始等待日期") for r in rows[:20]],
                         total=int(missing.sum()))
    return days.astype(np.int64), warnings


def score(
    frame: pd.DataFrame,
    model: ShortageModel,
    as_of: dt.date,
    now: dt.datetime,
    *,
    previous: pd.DataFrame | None = None,
    week_ago: pd.DataFrame | None = None,
    red_list: set[str] | None = None,
    headers: dict[str, str] | None = None,
    path: Path | None = None,
) -> ShortageResult:
    """Score every customer of a typed shortage export.

    ``previous`` (the last stored snapshot: ``key``, ``notes``) feeds escalation rule A4.4;
    ``week_ago`` (``key``, ``contacts_7d``) feeds A4.5 when the export has no
    previous-week column.  ``red_list`` holds customer ids and phone numbers.
    """
    headers = headers or {}
    f = frame.reset_index(drop=True).copy()
    n = len(f)
    warnings: list[str] = []
    f["key"] = customer_key(f)
    nokey = f["key"].isna().to_numpy()
    if nokey.any():
        rows = f["_row"].to_numpy()[nokey]
        raise InputError("有客户既没有编号也没有姓名", path=path,
                         problems=[Problem(int(r), headers.get("customer_id", "客户编号"), "", "请填写客户编号或姓名")
                                   for r in rows[:20]], total=int(nokey.sum()),
                         hint="如果这是合计行或说明行，请从导出文件中删除")
    dupkey = f["key"].duplicated(keep=False).to_numpy()
    if dupkey.any() and "customer_id" not in f:
        rows = f["_row"].to_numpy()[dupkey]
        raise InputError("有同名同电话的客户出现多次（不会自动合并）", path=path,
                         problems=[Problem(int(r), headers.get("name", "客户姓名"), f["name"].iloc[i], "重复")
                                   for i, r in zip(np.flatnonzero(dupkey)[:20], rows[:20], strict=False)],
                         total=int(dupkey.sum()), hint="删除重复的行，或在导出中加上客户编号列")
    days, w = wait_days(f, as_of, headers, path)
    warnings += w
    f["wait_days"] = days

    red = None
    if red_list:
        red = np.zeros(n, dtype=bool)
        for col in ("customer_id", "phone"):
            if col in f:
                red |= f[col].isin(red_list).fillna(False).to_numpy(dtype=bool)
    f["red_list"] = red if red is not None else False
    ctx = Context(negations=model.negations, red_list=red)

    total = np.zeros(n, dtype=np.int64)
    problems: list[Problem] = []
    for d, w_scaled in zip(model.dimensions, model.weights_scaled, strict=True):
        val, reason = _dimension(f, d, ctx, warnings, problems, headers)
        f[d.key] = val
        f[f"reason_{d.key}"] = reason
        total += val * w_scaled
    if problems:
        raise InputError("导出表中的维度分不在模型允许的范围内", path=path, problems=problems[:20],
                         total=len(problems), hint=f"模型 {model.name} 的维度分范围："
                         + "，".join(f"{d.key} {d.lo}–{d.hi}" for d in model.dimensions))
    f["total_scaled"] = total
    f["score"] = total / model.scale
    tier_idx = _tier_index(total, model)
    names = np.array(model.tier_names, dtype=object)
    f["model_tier"] = names[tier_idx]
    final_idx, esc_text = escalate(f, tier_idx, model, previous=previous, week_ago=week_ago)
    f["tier"] = names[final_idx]
    f["escalations"] = esc_text
    _attach_policy(f, model, now)
    f["alerts"] = _alerts(f, model)
    f["_tier_rank"] = final_idx
    f = f.sort_values(["_tier_rank", "total_scaled", "wait_days", "key"],
                      ascending=[True, False, False, True], kind="mergesort").reset_index(drop=True)
    f = f.drop(columns=["_tier_rank"])
    return ShortageResult(as_of=as_of, now=now, model=model, customers=f, warnings=warnings)


def _dimension(f: pd.DataFrame, d: Dimension, ctx: Context, warnings: list[str],
               problems: list[Problem], headers: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    n = len(f)
    best = np.full(n, -np.inf)
    reason = np.full(n, None, dtype=object)
    for rule in d.rules:
        fired = rule.evaluate(f, ctx)
        better = fired.score > best  # NaN compares False
        if better.any():
            best[better] = fired.score[better]
            reason[better] = fired.reason.to_numpy()[better]
    derived = np.isfinite(best)
    val = np.where(derived, best, d.default)
    defaulted = ~derived
    if defaulted.any():
        reason[defaulted] = np.array(
            [d.default_reason.format(value=x) for x in f["wait_days"].to_numpy()[defaulted]], dtype=object
        ) if "{value}" in d.default_reason else d.default_reason
        if d.warn_when_default:
            who = _who(f, defaulted)
            warnings.append(f"{d.warn_when_default}（{len(who)} 位：{'、'.join(who[:15])}{' …' if len(who) > 15 else ''}）")
    if d.key in f:
        given = f[d.key].to_numpy(dtype=float, na_value=np.nan)
        has = ~np.isnan(given)
        if has.any():
            bad = has & ((given < d.lo) | (given > d.hi) | (given != np.round(given)))
            for i in np.flatnonzero(bad)[:20]:
                problems.append(Problem(int(f["_row"].iat[i]), headers.get(d.key, d.label), _num_text(given[i]),
                                        f"{d.label}（{d.key}）应为 {d.lo}–{d.hi} 的整数"))
            ok = has & ~bad
            val = np.where(ok, given, val)
            label = headers.get(d.key, d.key)
            reason[ok] = f"取自导出表「{label}」列"
            if defaulted.any() and d.warn_when_default and ok[defaulted].all():
                warnings.pop()  # every defaulted row was in fact given
    val = val.astype(np.int64)
    text = np.array([f"{d.key}={v}: {r}" for v, r in zip(val, reason, strict=True)], dtype=object) \
        if n < 50_000 else _prefix(d.key, val, reason)
    return val, text


def _prefix(key: str, val: np.ndarray, reason: np.ndarray) -> np.ndarray:
    # vectorised "K=v: reason" for large frames (arrow string concatenation)
    s = pd.Series(val).astype(str).radd(f"{key}=") + ": " + pd.Series(reason, dtype=str)
    return s.to_numpy(dtype=object)


def _num_text(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _who(f: pd.DataFrame, mask: np.ndarray) -> list[str]:
    names = f["name"] if "name" in f else f["key"]
    return [f"{nm}(第{r}行)" for nm, r in zip(names[mask].fillna("?"), f["_row"].to_numpy()[mask], strict=True)]


def _tier_index(total_scaled: np.ndarray, model: ShortageModel) -> np.ndarray:
    idx = np.full(len(total_scaled), len(model.tiers) - 1, dtype=np.int64)
    assigned = np.zeros(len(total_scaled), dtype=bool)
    for i, t in enumerate(model.tiers):
        m = ~assigned & (total_scaled >= int(t.min * model.scale))
        idx[m] = i
        assigned |= m
    return idx


def tier_for(total: Decimal | float | str, model: ShortageModel) -> str:
    """The model tier of one total (exact)."""
    scaled = int(Decimal(str(total)) * model.scale)
    return model.tier_names[int(_tier_index(np.array([scaled]), model)[0])]


def escalate(f: pd.DataFrame, model_idx: np.ndarray, model: ShortageModel, *,
             previous: pd.DataFrame | None = None,
             week_ago: pd.DataFrame | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Apply SPEC A4.  Returns the final tier index (0 = most urgent) and, per row, the
    fired rules' reasons joined by newlines.  A rule never lowers a tier."""
    n = len(f)
    names = model.tier_names
    idx_of = {t: i for i, t in enumerate(names)}
    texts: list[list[str]] = [[] for _ in range(n)]
    waits = f["wait_days"].to_numpy()
    model_names = np.array(names, dtype=object)[model_idx]

    def note(mask: np.ndarray, rule: Escalation, fmt: dict[str, np.ndarray] | None = None) -> None:
        for i in np.flatnonzero(mask):
            vals = {"value": waits[i], **{k: _num(v[i]) for k, v in (fmt or {}).items()}}
            texts[i].append(f"{rule.id}: " + (rule.reason.format(**vals) if rule.reason else rule.id))

    floor = model_idx.copy()
    for rule in (r for r in model.escalation if r.type == "wait_floor"):
        m = waits > rule.over_days
        if rule.when_tiers:
            m &= np.isin(model_names, rule.when_tiers)
        target = idx_of[rule.to]
        m &= model_idx > target  # only a rule that raises the tier fires
        floor = np.where(m, np.minimum(floor, target), floor)
        note(m, rule)
    final = floor
    for rule in model.escalation:
        if rule.type == "new_keywords":
            if rule.field not in f:
                continue
            hits = keyword_hits(f[rule.field], list(rule.keywords), model.negations)
            fired = hits.notna().to_numpy()
            if previous is not None and len(previous) and rule.field in previous:
                prev = previous.drop_duplicates("key").set_index("key")[rule.field]
                prev_hit = keyword_hits(prev, list(rule.keywords), model.negations).notna()
                seen = f["key"].map(prev_hit).fillna(False).to_numpy(dtype=bool)
                fired = fired & ~seen
            m = fired & (final > 0)
            final = np.where(m, np.maximum(final - rule.steps, 0), final)
            note(m, rule, {"keyword": hits.to_numpy()})
        elif rule.type == "contact_spike":
            if rule.field not in f:
                continue
            now_c = f[rule.field].to_numpy(dtype=float, na_value=np.nan)
            prev_c = np.full(n, np.nan)
            if rule.previous_field and rule.previous_field in f:
                prev_c = f[rule.previous_field].to_numpy(dtype=float, na_value=np.nan)
            if week_ago is not None and len(week_ago) and rule.field in week_ago:
                wk = week_ago.drop_duplicates("key").set_index("key")[rule.field]
                from_store = f["key"].map(wk).to_numpy(dtype=float, na_value=np.nan)
                prev_c = np.where(np.isnan(prev_c), from_store, prev_c)
            ratio = float(rule.ratio)
            with np.errstate(invalid="ignore"):
                m = (~np.isnan(now_c) & ~np.isnan(prev_c) & (now_c >= rule.min_count)
                     & (now_c >= ratio * prev_c) & (now_c > prev_c) & (final > 0))
            final = np.where(m, np.maximum(final - rule.steps, 0), final)
            note(m, rule, {"value": now_c, "previous": prev_c})
        elif rule.type == "flag_to":
            if rule.field not in f:
                continue
            flag = f[rule.field].fillna(False).to_numpy(dtype=bool)
            target = idx_of[rule.to]
            m = flag & (final > target)
            final = np.where(m, target, final)
            note(m, rule)
    joined = np.array(["\n".join(t) if t else "" for t in texts], dtype=object)
    return final, joined


def _num(v: Any) -> Any:
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return int(v)
    return v


def _attach_policy(f: pd.DataFrame, model: ShortageModel, now: dt.datetime) -> None:
    tiers = {t.name: t for t in model.tiers}
    tier = f["tier"]
    f["owner"] = tier.map({k: t.owner for k, t in tiers.items()})
    f["owner_role"] = tier.map({k: t.owner_role for k, t in tiers.items()})
    f["channel"] = tier.map({k: t.channel for k, t in tiers.items()})
    f["action"] = tier.map({k: t.action for k, t in tiers.items()})
    f["cadence_days"] = tier.map({k: t.cadence_days for k, t in tiers.items()}).astype("int64")
    hours = tier.map({k: t.first_contact_hours for k, t in tiers.items()}).astype("int64")
    f["respond_by"] = pd.Timestamp(now) + pd.to_timedelta(hours, unit="h")


def _alerts(f: pd.DataFrame, model: ShortageModel) -> np.ndarray:
    """The highest wait-time alert a customer has reached, and the red-list alert."""
    n = len(f)
    out = np.full(n, "", dtype=object)
    waits = f["wait_days"].to_numpy()
    for a in model.alerts:  # ascending: the last one reached wins
        m = waits >= a.min_days
        out[m] = f"{a.id}→{a.recipient}: {a.reason}"
    red = f["red_list"].to_numpy(dtype=bool)
    if red.any():
        complained = complaint_mask(f, model)
        m = red & complained
        extra = f"redlist→{model.redlist_recipient}: {model.redlist_reason}"
        out[m] = np.where(out[m] == "", extra, out[m] + "\n" + extra)
    return out


def complaint_mask(f: pd.DataFrame, model: ShortageModel) -> np.ndarray:
    """Customers who already complained or posted (complaint flag, negative post, or
    a complaint keyword in the notes)."""
    n = len(f)
    m = np.zeros(n, dtype=bool)
    for col in ("complaint", "negative_post"):
        if col in f:
            m |= f[col].fillna(False).to_numpy(dtype=bool)
    if "notes" in f:
        m |= keyword_hits(f["notes"], list(model.complaint_keywords), model.negations).notna().to_numpy()
    return m


# -- crisis level (A7) -------------------------------------------------------------------
@dataclass
class Crisis:
    level: int
    color: str
    label: str
    response: str
    criteria: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level, "color": self.color, "label": self.label,
                "response": self.response, "criteria": self.criteria}


def _level_by(value: float, bounds: list[float]) -> int:
    """1 + how many of the ascending bounds ``value`` reaches (value ≥ bound)."""
    return 1 + sum(1 for b in bounds if value >= b)


def crisis_level(result: ShortageResult, eta_weeks: float | None = None) -> Crisis:
    """SPEC A7: the highest level any criterion reaches."""
    model = result.model
    c = model.crisis
    f = result.customers
    counts = result.counts()
    p0 = counts.get(model.tier_names[0], 0)
    p1 = counts.get(model.tier_names[1], 0) if len(model.tiers) > 1 else 0
    longest = int(f["wait_days"].max()) if len(f) else 0
    complained = int(complaint_mask(f, model).sum()) if len(f) else 0
    crit = []
    crit.append({"name": "affected", "label": "受影响客户数", "value": len(f),
                 "level": _level_by(len(f), c.affected)})
    crit.append({"name": "longest_wait", "label": "最长等待天数", "value": longest,
                 "level": _level_by(longest, c.longest_wait)})
    tl = 1
    if p1 or p0:
        tl = 2
    if p0:
        tl = _level_by(p0, c.p0_count) + 1
    crit.append({"name": "tiers", "label": "P0/P1 人数", "value": {"P0": p0, "P1": p1}, "level": min(tl, 4)})
    if eta_weeks is not None:
        el = 1 + sum(1 for b in c.eta_weeks_over if eta_weeks > b)
        crit.append({"name": "eta_weeks", "label": "预计到货（周）", "value": eta_weeks, "level": el})
    crit.append({"name": "complaints", "label": "已投诉/发帖客户", "value": complained,
                 "level": c.complaint_level if complained else 1})
    level = max(x["level"] for x in crit)
    spec = next((lv for lv in c.levels if int(lv.get("level", 0)) == level), None)
    if spec is None:
        raise ModelError(f"危机等级 {level} 没有定义", path=model.path, key="crisis.levels")
    return Crisis(level=level, color=str(spec.get("color", "")), label=str(spec.get("label", "")),
                  response=str(spec.get("response", "")), criteria=crit)
