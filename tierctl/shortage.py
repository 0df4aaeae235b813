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

HOLD_TEXT = "自 {since} 起保持：{reason}"
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
    # the scores the model's bands give (rite100: R 0/10/20/30 …); empty: every integer in range
    points: tuple[int, ...] = ()

    @property
    def scale(self) -> DimScale:
        return DimScale(self.lo, self.hi, self.points)


@dataclass(frozen=True)
class DimScale:
    """A dimension's scale: the allowed range and, if the model has them, its band scores."""

    lo: int
    hi: int
    points: tuple[int, ...] = ()

    def in_range(self, v: np.ndarray) -> np.ndarray:
        return (v >= self.lo) & (v <= self.hi) & (v == np.round(v))

    def on_points(self, v: np.ndarray) -> np.ndarray:
        return self.in_range(v) & (np.isin(v, self.points) if self.points else True)

    def describe(self) -> str:
        return f"{self.lo}–{self.hi}" + (f"，档位 {'/'.join(map(str, self.points))}" if self.points else "")


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
    holds: bool = False  # a raise by this rule holds on later runs (see ``escalate``)


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
    # the escalation line of a raise held from an earlier run ({since}, {reason}, {rule})
    hold_text: str = HOLD_TEXT
    # the yes/no column that flags a customer (and the crisis) for the PR plan (SPEC A4.6)
    pr_plan_field: str = ""
    # appended to a dimension's reason when a negation word cancelled one of its keywords
    negation_note: str = "「{keyword}」前有否定词「{negation}」，未计入"
    # the other packaged shortage models' scales per dimension key, to name the model a
    # column of given scores belongs to when it does not fit this one
    other_scales: dict[str, dict[str, DimScale]] = field(default_factory=dict)
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
            points=_points(d, allowed),
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
        # wait rules need no hold: the wait only grows, so they fire again every morning
        rule.holds = e.bool("holds", etype != "wait_floor")
        if any(ch in rule.id for ch in "\t\n:"):
            raise e.error("id", f"规则编号「{rule.id}」不能含冒号、制表符或换行")
        esc.append(rule)
    if len({r.id for r in esc}) != len(esc):
        raise sec.error("escalation", "升级规则的 id 重复")
    hold = sec.section("holds", {})
    hold_text = hold.str("text", HOLD_TEXT)
    try:
        hold_text.format(since="2026-11-23", reason="x", rule="A4.4")
    except (KeyError, IndexError, ValueError) as exc:
        raise hold.error("text", f"只能使用 {{since}}、{{reason}}、{{rule}}：{exc}") from None
    pr = sec.section("pr_plan", {})
    pr_field = pr.str("field", "")
    if pr_field and pr_field not in columns.specs:
        raise pr.error("field", f"引用了未声明的列「{pr_field}」", hint="在 [columns] 中声明这一列（是/否）")

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
        hold_text=hold_text, pr_plan_field=pr_field,
        negation_note=_negation_note(sec),
        other_scales={k: v for k, v in packaged_scales().items() if k != sec.str("name", Path(sec.path).stem)},
        policy=load_policy(sec, names),
        redlist_recipient_en=rl.str("recipient_en", "") if rl else "",
        redlist_reason_en=rl.str("reason_en", "") if rl else "",
    )


def _points(d: Section, allowed: list[int]) -> tuple[int, ...]:
    pts = d.list("points", [], of=int)
    bad = [p for p in pts if not allowed[0] <= p <= allowed[1]]
    if bad:
        raise d.error("points", f"档位分 {bad} 不在 allowed {allowed} 之内")
    return tuple(sorted(set(pts)))


@functools.lru_cache(maxsize=1)
def packaged_scales() -> dict[str, dict[str, DimScale]]:
    """Each packaged shortage model's dimension scales (read once per process)."""
    from tierctl.models.loader import packaged_models

    out: dict[str, dict[str, DimScale]] = {}
    for name in packaged_models("shortage"):
        sec = Section.load(name, kind="shortage")
        scales = {}
        for d in sec.sections("dimensions"):
            allowed = d.list("allowed", [1, 10], of=int)
            scales[d.str("key")] = DimScale(allowed[0], allowed[1], _points(d, allowed))
        out[sec.str("name", name)] = scales
    return out


def _negation_note(sec: Section) -> str:
    note = sec.str("negation_note", ShortageModel.negation_note)
    try:
        note.format(keyword="骗", negation="不是")
    except (KeyError, IndexError, ValueError) as exc:
        raise sec.error("negation_note", f"只能使用 {{keyword}} 和 {{negation}}：{exc}") from exc
    return note


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


def _person(r: dict[str, Any]) -> str | None:
    """The named owner (an assignment, else the export's advisor): see tierctl.owners."""
    from tierctl.owners import person_of

    return person_of(r)


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
        "owner_role": _plain(r.get("owner_role")),
        "owner_person": _person(r),
        "respond_by": r["respond_by"].isoformat(),
        "cadence_days": int(r["cadence_days"]),
        "channel": r["channel"],
        "compensation": list(model.tier(r["tier"]).compensation),
        "alerts": [a for a in r["alerts"].split("\n")] if isinstance(r["alerts"], str) and r["alerts"] else [],
        # the raises that hold from an earlier run (or start today): rule, since, reason
        "holds": parse_holds(r.get("holds")),
        "media_attention": _flag(r.get(model.pr_plan_field)) if model.pr_plan_field else False,
        "row": int(r["_row"]),
    }


def _flag(v: Any) -> bool:
    v = _plain(v)
    return bool(v) if v is not None and not (isinstance(v, float) and np.isnan(v)) else False


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

    ``previous`` (the last stored snapshot: ``key``, ``notes``, ``holds``) feeds escalation
    rule A4.4 and the raises that hold (see :func:`escalate_holding`);
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
    ctx = Context(negations=model.negations, red_list=red, negation_note=model.negation_note)
    view = f.assign(wait_days=days)  # rules see the computed wait

    total = np.zeros(n, dtype=np.int64)
    check_given_scores(view, model, headers, path)
    for d, w_scaled in zip(model.dimensions, model.weights_scaled, strict=True):
        val, reason = _dimension(view, d, ctx, warnings, headers)
        cols[d.key] = val
        cols[f"reason_{d.key}"] = reason
        total += val * w_scaled
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
    final_idx, esc, holds = escalate_holding(view, tier_idx, model, previous=previous, week_ago=week_ago, ctx=ctx,
                                             previous_positions=prev_pos, week_ago_positions=week_pos, as_of=as_of)
    cols["tier"] = pd.Categorical.from_codes(final_idx, categories=names)
    cols["escalations"] = esc
    cols["holds"] = holds
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


def check_given_scores(f: pd.DataFrame, model: ShortageModel, headers: dict[str, str] | None = None,
                       path: Path | None = None) -> None:
    """Dimension scores the export gives must be on the model's scale; never a silent
    mis-score.  A column is refused when a value is outside the model's range (30 under
    rite's 1–10), or when the model has band scores (rite100: R 0/10/20/30 …), some value
    is off them and another packaged model takes the whole column (8 under rite100 is a
    1–10 score).  A column on both scales (10/10/10/10) is read under the chosen model;
    an off-band value no other model explains (R 25 under rite100) is a manager's own
    judgement and is taken as given.  The error names each column and, when one other
    model takes every given column, suggests ``--model`` with it."""
    headers = headers or {}
    given = {}
    for d in model.dimensions:
        if d.key in f:
            v = f[d.key].to_numpy(dtype=float, na_value=np.nan)
            if (~np.isnan(v)).any():
                given[d.key] = (d, v, ~np.isnan(v))
    if not given:
        return

    def fitting(key: str, values: np.ndarray) -> list[str]:
        return [m for m, sc in model.other_scales.items() if key in sc and bool(sc[key].on_points(values).all())]

    every = [m for m, sc in model.other_scales.items()
             if all(k in sc and bool(sc[k].on_points(v[has]).all()) for k, (_d, v, has) in given.items())]
    lines: list[str] = []
    problems: list[Problem] = []
    total = 0
    rows = f["_row"].to_numpy()
    for key, (d, v, has) in given.items():
        own = d.scale
        bad = has & ~own.in_range(v)
        fits = fitting(key, v[has])
        off = has & ~bad & ~own.on_points(v)
        if not bad.any() and not (off.any() and fits):
            continue
        mark = bad if bad.any() else off
        header = headers.get(key, d.label)
        what = f"超出 {own.lo}–{own.hi}（或不是整数）" if bad.any() else f"不在档位 {'/'.join(map(str, own.points))} 上"
        line = f"「{header}」列（{key} {d.label}）有 {int(mark.sum())} 个值{what}"
        if fits:
            line += "，像是" + "、".join(f"模型 {m} 的分数（{key} {model.other_scales[m][key].describe()}）" for m in fits)
        lines.append(line)
        # a few cells per column, so that every column shows
        problems += [Problem(int(rows[i]), header, _num_text(v[i]), what) for i in np.flatnonzero(mark)[:3]]
        total += int(mark.sum())
    if not lines:
        return
    if every:
        hint = (f"这是模型 {every[0]} 的分数吗？请加 --model {every[0]} 重新运行；"
                "否则改正这些单元格，或清空它们由 tierctl 按原始信息推算")
    else:
        hint = (f"模型 {model.name} 的维度分：" + "，".join(f"{d.key} {d.scale.describe()}" for d in model.dimensions)
                + "；改正这些单元格，或清空它们由 tierctl 按原始信息推算")
    raise InputError(f"导出表中的维度分与模型 {model.name} 的分制不符：\n  " + "\n  ".join(lines), path=path,
                     problems=problems[:20], total=total, hint=hint)


def _dimension(f: pd.DataFrame, d: Dimension, ctx: Context, warnings: list[str],
               headers: dict[str, str]) -> tuple[np.ndarray, pd.Categorical]:
    """The dimension's value per row (the highest score among the rules that fire, the
    default when none fires, or the export's own column when given) and its reason."""
    n = len(f)
    best = np.full(n, -np.inf)
    code = np.full(n, -1, dtype=np.int64)
    texts: list[str] = []
    cancel_codes: list[np.ndarray] = []  # per keyword rule: what a negation word cancelled
    cancel_texts: list[list[str]] = []
    for rule in d.rules:
        fired = rule.evaluate(f, ctx)
        better = fired.score > best  # NaN compares False
        if better.any():
            best[better] = fired.score[better]
            code[better] = fired.code[better] + len(texts)
        texts += [f"{d.key}={num(s)}: {r}" for r, s in zip(fired.reasons, fired.scores, strict=True)]
        if fired.cancel_code is not None and fired.cancelled:
            cancel_codes.append(fired.cancel_code)
            cancel_texts.append(fired.cancelled)
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
            ok = has & d.scale.in_range(given)  # (check_given_scores refused anything else)
            val = np.where(ok, given, val)
            label = headers.get(d.key, d.key)
            gc, guniq = pd.factorize(given[ok])
            code[ok] = gc + len(texts)
            texts += [f"{d.key}={num(u)}: 取自导出表「{label}」列" for u in guniq]
            warn_rows = defaulted & ~ok
            for c in cancel_codes:  # a score taken from the export owes nothing to the notes
                c[ok] = -1
    if d.warn_when_default and warn_rows.any():
        who = _who(f, warn_rows)
        warnings.append(f"{d.warn_when_default}（{len(who)} 位：{'、'.join(who[:15])}{' …' if len(who) > 15 else ''}）")
    if cancel_codes:
        return val.astype(np.int64), _with_notes(code, texts, _join_codes(cancel_codes, cancel_texts, n, "；"))
    return val.astype(np.int64), _cat(code, texts)


def _with_notes(code: np.ndarray, texts: list[str], notes: pd.Categorical) -> pd.Categorical:
    """Each row's reason followed by its notes in brackets ("E=2: …（「骗」前有否定词「不是」，
    未计入）"), formatting each distinct pair once."""
    cats = list(notes.categories)
    ncode = np.asarray(notes.codes, dtype=np.int64)
    pair = (code.astype(np.int64) + 1) * (len(cats) + 1) + (ncode + 1)
    pc, uniq = pd.factorize(pair)
    out = []
    for u in uniq:
        r, c = divmod(int(u), len(cats) + 1)
        reason = texts[r - 1] if r > 0 else ""
        note = cats[c - 1] if c > 0 else ""
        out.append(f"{reason}（{note}）" if note and reason else reason or note)
    return _cat(pc.astype(np.int64), out)


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
             week_ago_positions: np.ndarray | None = None,
             as_of: dt.date | None = None) -> tuple[np.ndarray, pd.Categorical]:
    """Apply SPEC A4.  Returns the final tier index (0 = most urgent) and, per row, the
    fired rules' reasons joined by newlines (see :func:`escalate_holding`, which also
    returns the raises that hold)."""
    final, text, _holds = escalate_holding(f, model_idx, model, previous=previous, week_ago=week_ago, ctx=ctx,
                                           previous_positions=previous_positions,
                                           week_ago_positions=week_ago_positions, as_of=as_of)
    return final, text


def parse_holds(text: Any) -> list[dict[str, str]]:
    """The stored holds of one customer ("rule\\tsince\\treason" lines) as dicts."""
    out = []
    for line in text.split("\n") if isinstance(text, str) and text else []:
        parts = line.split("\t", 2)
        if len(parts) == 3:
            out.append({"rule": parts[0], "since": parts[1], "reason": parts[2]})
    return out


def _previous_holds(f: pd.DataFrame, model: ShortageModel, previous: pd.DataFrame | None,
                    positions: np.ndarray | None) -> tuple[np.ndarray, list[dict[str, tuple[str, str]]]]:
    """Per row, a code into the distinct hold sets of the previous run (−1: none, or not
    listed then — a customer who left the list and came back starts fresh)."""
    n = len(f)
    if previous is None or not len(previous) or "holds" not in previous \
            or not any(r.holds for r in model.escalation):
        return np.full(n, -1, dtype=np.int64), []
    pos = positions if positions is not None else key_positions(f["key"], previous["key"])
    text = previous["holds"].astype(object)
    codes, uniq = pd.factorize(text.where(text.notna() & (text != ""), None))
    sets = [{h["rule"]: (h["since"], h["reason"]) for h in parse_holds(u)} for u in uniq]
    row = np.where(pos >= 0, np.asarray(codes, dtype=np.int64)[np.maximum(pos, 0)], -1) if len(codes) \
        else np.full(n, -1, dtype=np.int64)
    return row, sets


def escalate_holding(f: pd.DataFrame, model_idx: np.ndarray, model: ShortageModel, *,
                     previous: pd.DataFrame | None = None,
                     week_ago: pd.DataFrame | None = None,
                     ctx: Context | None = None,
                     previous_positions: np.ndarray | None = None,
                     week_ago_positions: np.ndarray | None = None,
                     as_of: dt.date | None = None) -> tuple[np.ndarray, pd.Categorical, pd.Categorical]:
    """Apply SPEC A4: the final tier index (0 = most urgent), per row the reasons of the
    rules that raised it (joined by newlines), and per row the raises that hold
    ("rule\\tsince\\treason" lines, see :func:`parse_holds`).  A rule never lowers a tier.
    ``previous_positions`` / ``week_ago_positions``: each row's position in ``previous`` /
    ``week_ago`` when the caller has worked it out.

    The rules apply one after the other in the order the model file lists them, each to
    the tier the rules before it left (P3 waiting 22 days: A4.1 makes it P2, then A4.2
    P1).  A wait rule (A4.1–A4.3) is listed whenever it applies and its tier is above the
    model tier, even when an earlier rule got there first (P2 at 29 days: A4.2 and A4.3).
    A relative rule (A4.4 new complaint words, A4.5 contact spike) raises by its steps;
    a flag rule (A4.6 negative post) raises to its tier.

    A rule with ``holds`` keeps applying on later runs once its condition was met
    (``previous`` carries the ``holds`` column of the previous run): the complaint of
    yesterday's note still counts this morning, when it is no longer new.  A hold starts
    on ``as_of`` (none is started without it) and ends when the customer is missing from
    the previous run (left the list) or a manual override lowered the tier (the store
    then saves no holds for them)."""
    n = len(f)
    names = model.tier_names
    idx_of = {t: i for i, t in enumerate(names)}
    names_arr = np.array(names, dtype=object)
    waits = f["wait_days"].to_numpy()
    since_today = as_of.isoformat() if as_of is not None else None
    fired_codes: list[np.ndarray] = []  # per rule: code into its texts, -1 = did not fire
    fired_texts: list[list[str]] = []
    hold_codes: list[np.ndarray] = []
    hold_texts: list[list[str]] = []
    prev_code, prev_sets = _previous_holds(f, model, previous, previous_positions)

    def formatted(mask: np.ndarray, rule: Escalation, **details: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """Each masked row's reason (``rule.reason`` with its values), formatted once per
        distinct combination of values."""
        code = np.full(n, -1, dtype=np.int64)
        texts: list[str] = []
        if mask.any():
            parts = {"value": waits[mask], **{k: v[mask] for k, v in details.items()}}
            dcodes, uniq = combo_factorize(list(parts.values()))
            code[mask] = dcodes
            keys = list(parts)
            for u in uniq:
                vals = {k: num(v) for k, v in zip(keys, u, strict=True)}
                texts.append(rule.reason.format(**vals) if rule.reason else rule.id)
        return code, texts

    def held_by(rule: Escalation) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
        """Rows whose raise by ``rule`` holds from an earlier run, and a code per row into
        the distinct (since, reason) pairs."""
        code = np.full(n, -1, dtype=np.int64)
        if not rule.holds or not prev_sets:
            return np.zeros(n, dtype=bool), code, []
        pairs: list[tuple[str, str]] = []
        per_set = np.full(len(prev_sets) + 1, -1, dtype=np.int64)
        for j, s in enumerate(prev_sets):
            if rule.id in s:
                per_set[j] = len(pairs)
                pairs.append(s[rule.id])
        code = per_set[np.where(prev_code >= 0, prev_code, len(prev_sets))]
        return code >= 0, code, pairs

    tier = model_idx.copy()
    for rule in model.escalation:
        details: dict[str, np.ndarray] = {}
        held, held_code, pairs = held_by(rule)
        if rule.type != "wait_floor" and rule.field not in f:
            if not held.any():
                continue
            today = np.zeros(n, dtype=bool)  # the column is gone today: only the holds apply
        elif rule.type == "wait_floor":
            today = waits > rule.over_days
            if rule.when_tiers:
                today = today & np.isin(names_arr[tier], rule.when_tiers)
        elif rule.type == "new_keywords":
            codes = keyword_codes(f[rule.field], list(rule.keywords), model.negations,
                                  factorized=ctx.factorized(f, rule.field) if ctx else None)
            today = codes >= 0
            if previous is not None and len(previous) and rule.field in previous:
                prev = previous  # a key listed twice: its first row counts (key_positions)
                prev_hit = keyword_codes(prev[rule.field], list(rule.keywords), model.negations) >= 0
                pos = previous_positions if previous_positions is not None else key_positions(f["key"], prev["key"])
                seen = np.where(pos >= 0, prev_hit[np.maximum(pos, 0)], False)
                today = today & ~seen
            details["keyword"] = np.array([*rule.keywords, ""], dtype=object)[codes]
        elif rule.type == "contact_spike":
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
                today = (~np.isnan(now_c) & ~np.isnan(prev_c) & (now_c >= rule.min_count)
                         & (now_c >= ratio * prev_c) & (now_c > prev_c))
            details.update(value=now_c, previous=prev_c)
        else:  # flag_to
            today = f[rule.field].to_numpy(dtype=bool, na_value=False)
        applies = today | held
        # the tier after the rule, and the rows it is listed for
        if rule.type == "wait_floor":
            target = idx_of[rule.to]
            listed = applies & (model_idx > target)
            tier = np.where(applies, np.minimum(tier, target), tier)
        elif rule.type == "flag_to":
            target = idx_of[rule.to]
            listed = applies & (tier > target)
            tier = np.where(listed, target, tier)
        else:
            listed = applies & (tier > 0)
            tier = np.where(listed, np.maximum(tier - rule.steps, 0), tier)
        t_code, t_texts = formatted(today, rule, **details)
        # the escalation lines: today's reason where the condition holds today, else the held one
        line = np.where(listed & today, t_code, -1)
        old = listed & ~today & held
        line = np.where(old, len(t_texts) + held_code, line)
        fired_codes.append(line)
        fired_texts.append([f"{rule.id}: {t}" for t in t_texts]
                           + [f"{rule.id}: " + model.hold_text.format(since=s, reason=r, rule=rule.id)
                              for s, r in pairs])
        if rule.holds:  # what holds after this run: the earlier raise (its first day), else today's
            h = np.where(held, held_code, -1)
            if since_today is not None:
                h = np.where(today & ~held, len(pairs) + t_code, h)
            hold_codes.append(h)
            hold_texts.append([f"{rule.id}\t{s}\t{r}" for s, r in pairs]
                              + [f"{rule.id}\t{since_today}\t{t}" for t in t_texts])
    return tier, _join_codes(fired_codes, fired_texts, n), _join_codes(hold_codes, hold_texts, n)


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
    # media attention (SPEC A4.6): how many customers, the first of them (most urgent
    # first), and whether the crisis is flagged for the PR plan
    media_attention: int = 0
    media_customers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pr_plan(self) -> bool:
        return self.media_attention > 0

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level, "color": self.color, "label": self.label,
                "response": self.response, "criteria": self.criteria,
                "pr_plan": self.pr_plan, "media_attention": self.media_attention,
                "media_customers": list(self.media_customers)}


MEDIA_LISTED = 20  # customers named with the PR-plan flag (the count covers everyone)


def media_mask(f: pd.DataFrame, model: ShortageModel) -> np.ndarray:
    """Customers flagged for media attention (the model's ``[pr_plan] field``)."""
    col = model.pr_plan_field
    if not col or col not in f:
        return np.zeros(len(f), dtype=bool)
    return f[col].to_numpy(dtype=bool, na_value=False)


def _media_customers(result: ShortageResult, limit: int = MEDIA_LISTED) -> tuple[int, list[dict[str, Any]]]:
    """How many customers have media attention, and the first ``limit`` of them, most
    urgent first (only those rows are put in order)."""
    if "customers" in result.__dict__:  # already in order (overrides re-sorted it, or read from the store)
        src = result.customers
        idx = np.flatnonzero(media_mask(src, result.model))
    else:
        src = result.frame
        flagged = media_mask(src, result.model)
        idx = result.order[np.flatnonzero(flagged[result.order])] if flagged.any() else np.zeros(0, dtype=np.int64)
    rows = src.take(idx[:limit])
    people = [{"customer_id": _plain(r.get("customer_id")), "name": _plain(r.get("name"))}
              for r in rows.to_dict("records")]
    return int(len(idx)), people


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
    media, media_who = _media_customers(result) if len(f) else (0, [])
    return Crisis(level=level, color=str(spec.get("color", "")), label=str(spec.get("label", "")),
                  response=str(spec.get("response", "")), criteria=crit,
                  label_en=str(spec.get("label_en", "")), response_en=str(spec.get("response_en", "")),
                  media_attention=media, media_customers=media_who)
