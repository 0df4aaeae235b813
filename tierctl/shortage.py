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
import functools
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tierctl import background
from tierctl.cadence import ContactPolicy, load_policy
from tierctl.errors import InputError, ModelError, Problem
from tierctl.frames import key_positions, same_keys
from tierctl.io.ingest import ColumnSet
from tierctl.models.loader import Section
from tierctl.models.rules import Context, Rule, build_rule, num
from tierctl.textmatch import keyword_codes

TIER_FIELDS_TEXT = ("label", "label_en", "mode", "owner", "owner_short", "owner_short_en", "owner_role", "cadence_note", "channel", "action")


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
    label_en: str
    mode: str
    owner: str
    owner_short: str
    owner_short_en: str
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
    recipient_en: str = ""
    reason_en: str = ""


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
    policy: ContactPolicy = field(default_factory=ContactPolicy)  # crisis cadence, no-answer results
    redlist_recipient_en: str = ""
    redlist_reason_en: str = ""

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

    alerts = [AlertRule(a.str("id"), a.int("min_days", min=0), a.str("recipient"), a.str("reason", ""),
                        a.str("recipient_en", ""), a.str("reason_en", ""))
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
        policy=load_policy(sec, names),
        redlist_recipient_en=rl.str("recipient_en", "") if rl else "",
        redlist_reason_en=rl.str("reason_en", "") if rl else "",
    )


# -- the result --------------------------------------------------------------------------
@dataclass
class ShortageResult:
    """``customers`` is the scored frame sorted most urgent first.  Sorting every column
    of a million rows costs half a second, so it happens on first use; ``columns()``
    sorts only the columns asked for, and ``unordered`` serves sums and counts."""

    as_of: dt.date
    now: dt.datetime
    model: ShortageModel
    frame: pd.DataFrame  # in the export's row order
    order: np.ndarray  # positions in ``frame``, most urgent first
    warnings: list[str]
    # each row of ``frame``: its position in the ``previous`` frame scoring compared with
    # (−1: not there), and that frame's keys — the store's morning run reuses the join
    # instead of hashing a million keys again
    previous_positions: np.ndarray | None = None
    previous_keys: pd.Series | None = None

    @classmethod
    def from_sorted(cls, *, as_of: dt.date, now: dt.datetime, model: ShortageModel, customers: pd.DataFrame,
                    warnings: list[str]) -> ShortageResult:
        """A result whose frame is already most urgent first (e.g. read back from the store)."""
        customers = customers.reset_index(drop=True)
        res = cls(as_of=as_of, now=now, model=model, frame=customers, order=np.arange(len(customers)),
                  warnings=warnings)
        res.__dict__["customers"] = customers
        return res

    @functools.cached_property
    def customers(self) -> pd.DataFrame:
        return self.frame.take(self.order).reset_index(drop=True)

    @property
    def unordered(self) -> pd.DataFrame:
        """Every customer, in no particular order (for counts, sums and maxima)."""
        return self.__dict__.get("customers", self.frame)

    def columns(self, names: list[str]) -> pd.DataFrame:
        """Just these columns, most urgent first."""
        if "customers" in self.__dict__:
            return self.customers[names]
        return self.frame[names].take(self.order).reset_index(drop=True)

    def positions_in_previous(self, keys: pd.Series) -> np.ndarray | None:
        """For ``customers`` (most urgent first), each one's position in the previous
        run's rows whose keys are ``keys`` — when scoring joined with exactly those keys
        in that order (checked key by key); None otherwise."""
        if self.previous_positions is None or self.previous_keys is None \
                or not same_keys(self.previous_keys, keys):
            return None
        return self.previous_positions[self.order]

    def counts(self) -> dict[str, int]:
        vc = self.unordered["tier"].value_counts()
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
def _cat(codes: np.ndarray, categories: list[str]) -> pd.Categorical:
    """Texts as codes into a few categories (``-1`` → the empty text)."""
    cats = list(categories)
    if "" not in cats:
        cats.append("")
    empty = cats.index("")
    # categories must be unique for a Categorical; map duplicate texts to one code
    uniq: dict[str, int] = {}
    remap = np.empty(len(cats), dtype=np.int64)
    for i, c in enumerate(cats):
        remap[i] = uniq.setdefault(c, len(uniq))
    c = np.where(codes >= 0, codes, empty)
    return pd.Categorical.from_codes(remap[c], categories=list(uniq), validate=False)


def customer_key(frame: pd.DataFrame) -> pd.Series:
    """Who a row is, across days: the customer id, else the name (+ phone)."""
    n = len(frame)
    if "customer_id" in frame and not frame["customer_id"].isna().any():
        return frame["customer_id"].astype("str")
    key = frame["customer_id"].astype(object) if "customer_id" in frame else pd.Series([None] * n, dtype=object,
                                                                                        index=frame.index)
    missing = key.isna().to_numpy()
    if "name" in frame and missing.any():
        sub = frame.loc[missing]
        name_key = "姓名:" + sub["name"].astype(str)
        if "phone" in sub:
            name_key = name_key + "/" + sub["phone"].fillna("").astype(str)
        name_key = name_key.where(sub["name"].notna(), None)
        key = key.copy()
        key[missing] = name_key.to_numpy(dtype=object)
    return key.astype("str")


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
        start = frame["wait_start"].to_numpy(dtype="datetime64[D]")
        has = ~np.isnat(start)
        delta = (np.datetime64(as_of, "D") - start).astype("timedelta64[D]").astype(float)
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
    f = frame.reset_index(drop=True)
    n = len(f)
    warnings: list[str] = []
    key = customer_key(f)
    nokey = key.isna().to_numpy()
    if nokey.any():
        rows = f["_row"].to_numpy()[nokey]
        raise InputError("有客户既没有编号也没有姓名", path=path,
                         problems=[Problem(int(r), headers.get("customer_id", "客户编号"), "", "请填写客户编号或姓名")
                                   for r in rows[:20]], total=int(nokey.sum()),
                         hint="如果这是合计行或说明行，请从导出文件中删除")
    if "customer_id" not in f or f["customer_id"].isna().any():
        dupkey = key.duplicated(keep=False).to_numpy()
        if dupkey.any():
            rows = f["_row"].to_numpy()[dupkey]
            names = key.to_numpy()[dupkey]
            raise InputError("有同名同电话的客户出现多次（不会自动合并）", path=path,
                             problems=[Problem(int(r), headers.get("name", "客户姓名"), nm, "重复")
                                       for nm, r in zip(names[:20], rows[:20], strict=False)],
                             total=int(dupkey.sum()), hint="删除重复的行，或在导出中加上客户编号列")
    days, w = wait_days(f, as_of, headers, path)
    warnings += w
    cols: dict[str, Any] = {"key": key, "wait_days": days}

    red = None
    if red_list:
        red = np.zeros(n, dtype=bool)
        for col in ("customer_id", "phone"):
            if col in f:
                red |= f[col].isin(red_list).to_numpy(dtype=bool, na_value=False)
    cols["red_list"] = red if red is not None else np.zeros(n, dtype=bool)
    ctx = Context(negations=model.negations, red_list=red)
    view = f.assign(wait_days=days)  # rules see the computed wait

    total = np.zeros(n, dtype=np.int64)
    problems: list[Problem] = []
    for d, w_scaled in zip(model.dimensions, model.weights_scaled, strict=True):
        val, reason = _dimension(view, d, ctx, warnings, problems, headers)
        cols[d.key] = val
        cols[f"reason_{d.key}"] = reason
        total += val * w_scaled
    if problems:
        raise InputError("导出表中的维度分不在模型允许的范围内", path=path, problems=problems[:20],
                         total=len(problems), hint=f"模型 {model.name} 的维度分范围："
                         + "，".join(f"{d.key} {d.lo}–{d.hi}" for d in model.dimensions))
    cols["total_scaled"] = total
    cols["score"] = total / model.scale
    tier_idx = _tier_index(total, model)
    names = list(model.tier_names)
    cols["model_tier"] = pd.Categorical.from_codes(tier_idx, categories=names)
    view = view.assign(key=key)
    # the history joins (A4.4 with the previous run, A4.5 with a week ago) run side by side
    prev_keys = previous["key"] if previous is not None and len(previous) and "key" in previous else None
    prev_job = background.start(key_positions, key, prev_keys, name="tierctl-join") if prev_keys is not None else None
    week_pos = key_positions(key, week_ago["key"]) \
        if week_ago is not None and len(week_ago) and "key" in week_ago else None
    prev_pos = prev_job() if prev_job is not None else None
    final_idx, esc = escalate(view, tier_idx, model, previous=previous, week_ago=week_ago, ctx=ctx,
                              previous_positions=prev_pos, week_ago_positions=week_pos)
    cols["tier"] = pd.Categorical.from_codes(final_idx, categories=names)
    cols["escalations"] = esc
    cols.update(_policy(final_idx, model, now))
    cols["alerts"] = _alerts(view.assign(red_list=cols["red_list"]), model)
    out = f.drop(columns=[c for c in cols if c in f]).assign(**cols)
    order = _urgency_order(final_idx, total, days, key)
    return ShortageResult(as_of=as_of, now=now, model=model, frame=out, order=order, warnings=warnings,
                          previous_positions=prev_pos,
                          previous_keys=prev_keys)


def _urgency_order(tier_idx: np.ndarray, total: np.ndarray, days: np.ndarray, key: pd.Series) -> np.ndarray:
    """Most urgent first: final tier, then total, then days waited; the customer key
    breaks ties so that row order never changes the output."""
    import pyarrow as pa
    import pyarrow.compute as pc

    keys = pa.table({"k": key.astype("str")}).column("k")  # zero-copy for arrow-backed text
    if len(total) and 0 <= total.min() and total.max() < 2**30 and 0 <= days.min() and days.max() < 2**20:
        # one integer carries (tier, −total, −days): a two-key sort instead of four keys
        packed = (tier_idx.astype(np.int64) << 50) + ((2**30 - 1 - total.astype(np.int64)) << 20) \
            + (2**20 - 1 - days.astype(np.int64))
        table = pa.table({"p": packed, "k": keys})
        return pc.sort_indices(table, sort_keys=[("p", "ascending"), ("k", "ascending")]).to_numpy()
    table = pa.table({"t": tier_idx, "s": total, "d": days, "k": keys})
    return pc.sort_indices(table, sort_keys=[("t", "ascending"), ("s", "descending"), ("d", "descending"),
                                             ("k", "ascending")]).to_numpy()


def _dimension(f: pd.DataFrame, d: Dimension, ctx: Context, warnings: list[str],
               problems: list[Problem], headers: dict[str, str]) -> tuple[np.ndarray, pd.Categorical]:
    """The dimension's value per row (the highest score among the rules that fire, the
    default when none fires, or the export's own column when given) and its reason."""
    n = len(f)
    best = np.full(n, -np.inf)
    code = np.full(n, -1, dtype=np.int64)
    texts: list[str] = []
    for rule in d.rules:
        fired = rule.evaluate(f, ctx)
        better = fired.score > best  # NaN compares False
        if better.any():
            best[better] = fired.score[better]
            code[better] = fired.code[better] + len(texts)
        texts += [f"{d.key}={num(s)}: {r}" for r, s in zip(fired.reasons, fired.scores, strict=True)]
    derived = np.isfinite(best)
    val = np.where(derived, best, d.default)
    defaulted = ~derived
    if defaulted.any():
        if "{value}" in d.default_reason:
            vc, uniq = pd.factorize(f["wait_days"].to_numpy()[defaulted])
            code[defaulted] = vc + len(texts)
            texts += [f"{d.key}={d.default}: " + d.default_reason.format(value=num(u)) for u in uniq]
        else:
            code[defaulted] = len(texts)
            texts.append(f"{d.key}={d.default}: {d.default_reason}")
    warn_rows = defaulted
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
            gc, guniq = pd.factorize(given[ok])
            code[ok] = gc + len(texts)
            texts += [f"{d.key}={num(u)}: 取自导出表「{label}」列" for u in guniq]
            warn_rows = defaulted & ~ok
    if d.warn_when_default and warn_rows.any():
        who = _who(f, warn_rows)
        warnings.append(f"{d.warn_when_default}（{len(who)} 位：{'、'.join(who[:15])}{' …' if len(who) > 15 else ''}）")
    return val.astype(np.int64), _cat(code, texts)


def _num_text(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _who(f: pd.DataFrame, mask: np.ndarray) -> list[str]:
    idx = np.flatnonzero(mask)[:50]
    names = (f["name"] if "name" in f else f["customer_id"]).take(idx).to_numpy(dtype=object, na_value="?")
    rows = f["_row"].to_numpy()[idx]
    return [f"{nm}(第{r}行)" for nm, r in zip(names, rows, strict=True)] + [""] * (int(mask.sum()) - len(idx))


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
             week_ago: pd.DataFrame | None = None,
             ctx: Context | None = None,
             previous_positions: np.ndarray | None = None,
             week_ago_positions: np.ndarray | None = None) -> tuple[np.ndarray, pd.Categorical]:
    """Apply SPEC A4.  Returns the final tier index (0 = most urgent) and, per row, the
    fired rules' reasons joined by newlines.  A rule never lowers a tier.
    ``previous_positions`` / ``week_ago_positions``: each row's position in ``previous`` /
    ``week_ago`` when the caller has worked it out.

    The wait rules (A4.1–A4.3) look at the model tier, each setting a floor; the
    relative rules (A4.4 new complaint words, A4.5 contact spike) then raise one step
    each; a negative post (A4.6) goes straight to P0."""
    n = len(f)
    names = model.tier_names
    idx_of = {t: i for i, t in enumerate(names)}
    waits = f["wait_days"].to_numpy()
    fired_codes: list[np.ndarray] = []  # per rule: code into its texts, -1 = did not fire
    fired_texts: list[list[str]] = []

    def note(mask: np.ndarray, rule: Escalation, **details: np.ndarray) -> None:
        code = np.full(n, -1, dtype=np.int64)
        texts: list[str] = []
        if mask.any():
            parts = {"value": waits[mask], **{k: v[mask] for k, v in details.items()}}
            dcodes, uniq = combo_factorize(list(parts.values()))
            code[mask] = dcodes
            keys = list(parts)
            for u in uniq:
                vals = dict(zip(keys, u, strict=True))
                vals = {k: num(v) for k, v in vals.items()}
                texts.append(f"{rule.id}: " + (rule.reason.format(**vals) if rule.reason else rule.id))
        fired_codes.append(code)
        fired_texts.append(texts)

    floor = model_idx.copy()
    model_names = np.array(names, dtype=object)[model_idx]
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
            codes = keyword_codes(f[rule.field], list(rule.keywords), model.negations,
                                  factorized=ctx.factorized(f, rule.field) if ctx else None)
            fired = codes >= 0
            if previous is not None and len(previous) and rule.field in previous:
                prev = previous  # a key listed twice: its first row counts (key_positions)
                prev_hit = keyword_codes(prev[rule.field], list(rule.keywords), model.negations) >= 0
                pos = previous_positions if previous_positions is not None else key_positions(f["key"], prev["key"])
                seen = np.where(pos >= 0, prev_hit[np.maximum(pos, 0)], False)
                fired = fired & ~seen
            m = fired & (final > 0)
            final = np.where(m, np.maximum(final - rule.steps, 0), final)
            kw = np.array([*rule.keywords, ""], dtype=object)[codes]
            note(m, rule, keyword=kw)
        elif rule.type == "contact_spike":
            if rule.field not in f:
                continue
            now_c = f[rule.field].to_numpy(dtype=float, na_value=np.nan)
            prev_c = np.full(n, np.nan)
            if rule.previous_field and rule.previous_field in f:
                prev_c = f[rule.previous_field].to_numpy(dtype=float, na_value=np.nan)
            if week_ago is not None and len(week_ago) and rule.field in week_ago:
                wk = week_ago  # a key listed twice: its first row counts (key_positions)
                pos = week_ago_positions if week_ago_positions is not None else key_positions(f["key"], wk["key"])
                counts = pd.to_numeric(wk[rule.field], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
                from_store = np.where(pos >= 0, counts[np.maximum(pos, 0)], np.nan)
                prev_c = np.where(np.isnan(prev_c), from_store, prev_c)
            ratio = float(rule.ratio)
            with np.errstate(invalid="ignore"):
                m = (~np.isnan(now_c) & ~np.isnan(prev_c) & (now_c >= rule.min_count)
                     & (now_c >= ratio * prev_c) & (now_c > prev_c) & (final > 0))
            final = np.where(m, np.maximum(final - rule.steps, 0), final)
            note(m, rule, value=now_c, previous=prev_c)
        elif rule.type == "flag_to":
            if rule.field not in f:
                continue
            flag = f[rule.field].to_numpy(dtype=bool, na_value=False)
            target = idx_of[rule.to]
            m = flag & (final > target)
            final = np.where(m, target, final)
            note(m, rule)
    return final, _join_codes(fired_codes, fired_texts, n)


def combo_factorize(arrays: list[np.ndarray]) -> tuple[np.ndarray, list[tuple]]:
    """Factorise rows of several columns at once: codes per row and the distinct value
    tuples.  Each column is factorised alone and the codes are combined in mixed radix,
    far faster than a MultiIndex on a million rows."""
    parts = [pd.factorize(np.asarray(a), use_na_sentinel=False) for a in arrays]
    combined = np.zeros(len(arrays[0]) if arrays else 0, dtype=np.int64)
    radix = 1
    for codes, uniq in parts:
        combined += codes.astype(np.int64) * radix
        radix *= max(len(uniq), 1)
        if radix > 2**62:
            mi = pd.MultiIndex.from_arrays([np.asarray(a) for a in arrays])
            c, u = pd.factorize(mi)
            return c, list(u)
    codes, uniq = pd.factorize(combined)
    out: list[tuple] = []
    for value in uniq:
        v = int(value)
        tup = []
        for _c, u in parts:
            size = max(len(u), 1)
            tup.append(u[v % size])
            v //= size
        out.append(tuple(tup))
    return codes, out


def join_categoricals(parts: list[pd.Categorical | pd.Series], sep: str) -> pd.Categorical:
    """Row-wise ``sep.join`` of several categorical text columns (empty parts skipped),
    formatting each distinct combination once."""
    cats = [p.cat if isinstance(p, pd.Series) else p for p in parts]
    codes = []
    texts = []
    for c in cats:
        categories = list(c.categories)
        code = np.asarray(c.codes, dtype=np.int64).copy()
        if "" in categories:
            code[code == categories.index("")] = -1
        codes.append(code)
        texts.append(categories)
    n = len(codes[0]) if codes else 0
    return _join_codes(codes, texts, n, sep)


def _join_codes(codes: list[np.ndarray], texts: list[list[str]], n: int, sep: str = "\n") -> pd.Categorical:
    """Combine several per-rule reason codes into one text per row ("a\nb"), formatting
    each distinct combination once.  The codes are small integers already, so a row's
    combination is one integer in mixed radix."""
    if not codes:
        return _cat(np.full(n, -1), [])
    sizes = [len(t) + 1 for t in texts]  # +1: the rule did not fire (code -1)
    if float(np.prod(np.array(sizes, dtype=float))) >= 2.0**62:
        stacked = [np.asarray(c, dtype=np.int64) + 1 for c in codes]
        row_codes, uniq_t = combo_factorize(stacked)
        uniq_parts = [np.array([u[j] for u in uniq_t], dtype=np.int64) - 1 for j in range(len(codes))]
    else:
        combined = np.zeros(n, dtype=np.int64)
        radix = 1
        for c, size in zip(codes, sizes, strict=True):
            combined += (np.asarray(c, dtype=np.int64) + 1) * radix
            radix *= size
        row_codes, uniq = pd.factorize(combined)
        uniq_parts = []
        for size in sizes:
            uniq_parts.append(uniq % size - 1)
            uniq = uniq // size
    # per part, its text for each distinct combination ("" where the rule did not fire)
    columns = [np.array([*t, ""], dtype=object)[np.where(p >= 0, p, len(t))] for t, p in zip(texts, uniq_parts,
                                                                                           strict=True)]
    joined = [sep.join(x for x in combo if x) for combo in zip(*columns, strict=True)]
    return _cat(np.asarray(row_codes, dtype=np.int64), joined)


def _policy(tier_idx: np.ndarray, model: ShortageModel, now: dt.datetime) -> dict[str, Any]:
    """The tier policy per row: owner, channel, action, cadence and the respond-by time
    (the run's time plus the tier's first-contact target)."""
    tiers = model.tiers
    out: dict[str, Any] = {}
    for col in ("owner", "owner_role", "channel", "action"):
        out[col] = _cat(tier_idx, [getattr(t, col) for t in tiers])
    out["cadence_days"] = np.array([t.cadence_days for t in tiers], dtype=np.int64)[tier_idx]
    stamps = pd.DatetimeIndex([pd.Timestamp(now) + pd.Timedelta(hours=t.first_contact_hours) for t in tiers])
    out["respond_by"] = pd.Series(stamps.take(tier_idx))
    return out


def _alerts(f: pd.DataFrame, model: ShortageModel) -> pd.Categorical:
    """The highest wait-time alert a customer has reached, and the red-list alert."""
    n = len(f)
    waits = f["wait_days"].to_numpy()
    code = np.full(n, -1, dtype=np.int64)
    texts = [f"{a.id}→{a.recipient}: {a.reason}" for a in model.alerts]
    for j, a in enumerate(model.alerts):  # ascending: the last one reached wins
        code[waits >= a.min_days] = j
    red = f["red_list"].to_numpy(dtype=bool)
    if red.any():
        m = red & complaint_mask(f, model)
        extra = f"redlist→{model.redlist_recipient}: {model.redlist_reason}"
        base = len(texts)
        texts += [extra] + [t + "\n" + extra for t in texts]
        code = np.where(m, np.where(code >= 0, base + 1 + code, base), code)
    return _cat(code, texts)


def complaint_mask(f: pd.DataFrame, model: ShortageModel) -> np.ndarray:
    """Customers who already complained or posted (complaint flag, negative post, or
    a complaint keyword in the notes)."""
    n = len(f)
    m = np.zeros(n, dtype=bool)
    for col in ("complaint", "negative_post"):
        if col in f:
            m |= f[col].to_numpy(dtype=bool, na_value=False)
    if "notes" in f:
        m |= keyword_codes(f["notes"], list(model.complaint_keywords), model.negations) >= 0
    return m


# -- crisis level (A7) -------------------------------------------------------------------
@dataclass
class Crisis:
    level: int
    color: str
    label: str
    response: str
    criteria: list[dict[str, Any]]
    label_en: str = ""
    response_en: str = ""

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
    f = result.unordered
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
                  response=str(spec.get("response", "")), criteria=crit,
                  label_en=str(spec.get("label_en", "")), response_en=str(spec.get("response_en", "")))
