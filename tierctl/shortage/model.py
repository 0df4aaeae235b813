"""The shortage model (SPEC A1–A7): its dataclasses, and loading + validating a model file.

A model names its columns, dimensions (with their typed rules, see
:mod:`tierctl.models.rules`), tiers, escalation rules (typed classes of
:data:`tierctl.shortage.escalation.ESCALATION_RULES`), alerts and crisis levels.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from tierctl.daily.cadence import ContactPolicy, load_policy
from tierctl.io.ingest import ColumnSet
from tierctl.models.loader import Section
from tierctl.models.rules import Rule, build_rule
from tierctl.shortage.escalation import ESCALATION_RULES, Escalation

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
    escalation: list[Escalation]  # in the order the model file lists them
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

    def previous_fields(self) -> list[str]:
        """The columns of the previous run the escalation rules compare with."""
        return _unique(f for r in self.escalation for f in r.previous_fields())

    def week_ago_fields(self) -> list[str]:
        """The columns of the run a week ago the escalation rules compare with."""
        return _unique(f for r in self.escalation for f in r.week_ago_fields())




def _places(x: Decimal) -> int:
    exp = x.normalize().as_tuple().exponent
    return -exp if isinstance(exp, int) else 0


def _unique(items: Any) -> list[str]:
    return list(dict.fromkeys(items))


def load_model(name_or_path: str | Path = "rite") -> ShortageModel:
    """Load and validate a shortage model (packaged name or a path to a user's copy)."""
    sec = Section.load(name_or_path, kind="shortage")
    total = sec.choice("total", ("weighted", "sum"), "weighted")
    negations = tuple(sec.list("negations", [], of=str))
    columns = ColumnSet.from_model(sec)
    dims = _dimensions(sec, total, columns)
    places = max((_places(d.weight) for d in dims), default=0)
    scale = 10 ** max(places, 0)
    weights_scaled = [int(d.weight * scale) for d in dims]
    tiers = _tiers(sec)
    names = [t.name for t in tiers]
    esc = _escalation(sec, names, columns)
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
    crisis = _crisis(sec.section("crisis"))
    share = _expected_share(sec.section("expected_share", {}))
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


def _dimensions(sec: Section, total: str, columns: ColumnSet) -> list[Dimension]:
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
    return dims


def _tiers(sec: Section) -> list[Tier]:
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
    return tiers


def _escalation(sec: Section, names: list[str], columns: ColumnSet) -> list[Escalation]:
    """The escalation rules, in the order the model file lists them: each section is
    built by the class its ``type`` names (:data:`ESCALATION_RULES`)."""
    esc = [ESCALATION_RULES.build(e, names, columns) for e in sec.sections("escalation", [])]
    if len({r.id for r in esc}) != len(esc):
        raise sec.error("escalation", "升级规则的 id 重复")
    return esc


def _crisis(c: Section) -> CrisisRules:
    crisis = CrisisRules(
        levels=c.list("levels", of=dict), affected=c.list("affected", of=int),
        longest_wait=c.list("longest_wait", of=int), p0_count=c.list("p0_count", of=int),
        eta_weeks_over=c.list("eta_weeks_over", of=(int, float)), complaint_level=c.int("complaint_level", 4),
    )
    if len(crisis.levels) != 4 or len(crisis.affected) != 3 or len(crisis.longest_wait) != 3 \
            or len(crisis.eta_weeks_over) != 3 or len(crisis.p0_count) != 2:
        raise c.error(None, "危机等级需要 4 个等级，affected/longest_wait/eta_weeks_over 各 3 个界限，p0_count 2 个")
    return crisis


def _expected_share(es: Section) -> dict[str, tuple[float, float]]:
    share = {}
    for k, v in es.items():
        if not (isinstance(v, list) and len(v) == 2):
            raise es.error(k, "应写成 [下限, 上限]，如 [0.10, 0.15]")
        share[k] = (float(v[0]), float(v[1]))
    return share


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

