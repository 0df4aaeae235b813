"""The churn model (SPEC B): load and validate ``tierctl/models/churn.toml``.

:func:`load_churn_model` reads a packaged model by name or a user's copy by path and
checks everything at load — columns (the shared :class:`tierctl.io.ingest.ColumnSpec`),
ranges, signals (built by ``type`` from :data:`tierctl.churn.signals.SIGNALS`), owners,
levels, the value matrix, churn reasons, customer types, KPIs, outcomes and upkeep — so
a bad model file fails before any customer is scored, naming the file and key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from tierctl.churn.festivals import UpkeepRules, check_fields
from tierctl.churn.signals import SIGNALS, KeywordsSignal, Signal
from tierctl.errors import ModelError, UsageError
from tierctl.io.ingest import ColumnSet, ColumnSpec
from tierctl.models.loader import Section

COLUMN_KINDS = ("text", "int", "number", "date", "bool")
VALUE_SEGMENTS = ("high", "ordinary")


@dataclass(frozen=True)
class FollowupStep:
    """One scheduled follow-up after an intervention: ``days`` later, by whom and how."""

    days: int
    owner: str | None  # owner key; None = whoever owns the intervention
    channel: str
    detail: str


@dataclass(frozen=True)
class Outcome:
    """A contact result ``tierctl churn log --result`` accepts, and what it counts as."""

    key: str
    label: str
    aliases: tuple[str, ...]
    reached: bool  # 客户接触率: the customer was actually spoken to / met
    solved: bool  # 问题解决率: the customer's problem is solved


@dataclass(frozen=True)
class Level:
    key: str
    label: str
    state: str
    min: int
    max: int
    owner: str
    respond_hours: int | None
    respond_days: int | None
    respond_label: str
    budget: tuple[int, int]
    followup_days: tuple[int, ...]
    benchmark: tuple[Decimal, Decimal]
    action: str
    followups: tuple[FollowupStep, ...] = ()
    # owner key → action text for that owner; else ``action`` with {owner} filled in
    actions: Mapping[str, str] = field(default_factory=dict)

    @property
    def at_risk(self) -> bool:
        """A level with a response deadline is an alert (低 runs on the upkeep calendar)."""
        return self.respond_hours is not None or self.respond_days is not None

    def action_for(self, owner_key: str, owner_label: str) -> str:
        """The standard action as said to this owner: ``actions[owner]`` when the model
        has one, else ``action``; ``{owner}`` becomes the owner's label."""
        return self.actions.get(owner_key, self.action).format(owner=owner_label)


@dataclass(frozen=True)
class Reason:
    """A churn reason (价格 / 不便 / 服务 / 技术) and its tailored plan."""

    key: str
    label: str
    labels: tuple[str, ...]
    keywords: tuple[str, ...]
    plan: str
    owner: str | None = None  # the plan needs at least this owner (optional, data)


@dataclass(frozen=True)
class CustomerType:
    """A mid-risk customer type and its incentive (with its approximate cost in 元)."""

    key: str
    label: str
    labels: tuple[str, ...]
    incentive: str
    cost: int


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    target: Decimal  # met when the actual rate is strictly above



@dataclass
class ChurnModel:
    """A loaded, validated churn model (see ``tierctl/models/churn.toml``)."""

    name: str
    path: Path
    title: str
    columns: dict[str, ColumnSpec]
    ranges: dict[str, tuple[float | None, float | None]]
    score_max: int
    given_reason: str
    negations: tuple[str, ...]
    signals: tuple[Signal, ...]
    owners: dict[str, tuple[int, str]]  # key → (seniority rank, label)
    levels: tuple[Level, ...]
    count_working_days: bool
    high_value_annual_spend: Decimal
    owner_matrix: dict[tuple[str, str], str]  # (value segment, level key) → owner key
    must_levels: tuple[str, ...]
    unknown_plan: str
    reasons: tuple[Reason, ...]
    customer_types: tuple[CustomerType, ...]
    effect_within_days: int
    effect_drop: int
    winback_months: int
    average_annual_spend: Decimal
    base_churn_rate: Decimal
    kpis: tuple[Kpi, ...]
    upkeep: UpkeepRules
    ingest_columns: ColumnSet = field(default_factory=lambda: ColumnSet({}))  # for read_export
    visit_columns: ColumnSet = field(default_factory=lambda: ColumnSet({}))  # a visits export (win-back)
    outcomes: tuple[Outcome, ...] = ()
    followup_close_early_days: int = 0

    def outcome(self, text: str) -> Outcome:
        """The outcome a ``--result`` text names (label, key or alias; case-insensitive)."""
        t = text.strip().casefold()
        for o in self.outcomes:
            if t in {o.key.casefold(), o.label.casefold(), *(a.casefold() for a in o.aliases)}:
                return o
        opts = "、".join(o.label for o in self.outcomes)
        raise UsageError(f"联系结果「{text}」不在可选范围内", hint=f"可选：{opts}（模型文件 [[outcomes]] 可增改）")

    def level(self, key_or_label: str) -> Level:
        """A level by key (``"mid"``) or label (``"中"`` / ``"中风险"``)."""
        for lv in self.levels:
            if key_or_label in (lv.key, lv.label, f"{lv.label}风险"):
                return lv
        opts = "、".join(f"{lv.key}/{lv.label}" for lv in self.levels)
        raise UsageError(f"没有「{key_or_label}」这个风险等级", hint=f"可选：{opts}")

    def level_for(self, score: float | int | Decimal) -> Level:
        """The level a score belongs to (first level whose ``max`` it does not exceed)."""
        for lv in self.levels:
            if score <= lv.max:
                return lv
        return self.levels[-1]


def load_churn_model(name_or_path: str | Path = "churn") -> ChurnModel:
    """Load a packaged churn model by name or a user's copy by path, fully validated.

    Raises :class:`~tierctl.errors.ModelError` naming the file and key on any problem.
    """
    sec = Section.load(name_or_path, kind="churn")
    columns = _columns(sec)
    ranges = _ranges(sec, columns)
    score = sec.section("score")
    score_max = score.int("max", 100, min=1)
    given_reason = score.str("given_reason", "流失风险分 {score}：取自导出表")
    text = sec.section("text", {})
    negations = tuple(text.list("negations", [], of=str)) if isinstance(text, Section) else ()
    signals = _signals(sec, columns, negations)
    owners = _owners(sec)
    levels = _levels(sec, owners, score_max)
    level_keys = [lv.key for lv in levels]
    matrix = _owner_matrix(sec, owners, level_keys)
    triage = sec.section("triage", {})
    must = tuple(triage.list("must_levels", [], of=str)) if isinstance(triage, Section) else ()
    for i, m in enumerate(must):
        if m not in level_keys:
            raise triage.error(f"must_levels[{i}]", f"未知等级「{m}」")
    reasons = _reasons(sec, owners)
    unknown_plan = sec.section("plans").str("unknown")
    check_fields(sec.section("plans"), "unknown", unknown_plan, {"owner"})
    _check_owner_texts(sec, owners, levels, matrix, reasons, unknown_plan)
    types = _customer_types(sec)
    kpis = tuple(Kpi(k.str("key"), k.str("label"), k.decimal("target", min=0, max=1)) for k in sec.sections("kpis", []))
    outcomes = _outcomes(sec)
    fsec = sec.section("followup", {})
    close_early = fsec.int("close_early_days", 0, min=0, max=30) if isinstance(fsec, Section) else 0
    visit_columns = _visit_columns(sec)
    dl = sec.section("deadlines", {})
    effect = sec.section("effect")
    roi = sec.section("roi")
    return ChurnModel(
        name=sec.path.stem,  # a user's copy is named by its file, so history shows which
        path=sec.path,
        title=sec.str("title", ""),
        columns=columns,
        ranges=ranges,
        score_max=score_max,
        given_reason=given_reason,
        negations=negations,
        signals=signals,
        owners=owners,
        levels=tuple(levels),
        count_working_days=dl.bool("count_working_days", False) if isinstance(dl, Section) else False,
        high_value_annual_spend=sec.section("value").decimal("high_value_annual_spend", min=0),
        owner_matrix=matrix,
        must_levels=must,
        unknown_plan=unknown_plan,
        reasons=tuple(reasons),
        customer_types=types,
        effect_within_days=effect.int("within_days", min=1),
        effect_drop=effect.int("drop", min=1),
        winback_months=sec.section("winback").int("months", min=1),
        average_annual_spend=roi.decimal("average_annual_spend", min=0),
        base_churn_rate=roi.decimal("base_churn_rate", min=0, max=1),
        kpis=kpis,
        upkeep=UpkeepRules.from_section(sec.section("upkeep")),
        ingest_columns=ColumnSet.from_model(sec),
        visit_columns=visit_columns,
        outcomes=outcomes,
        followup_close_early_days=close_early,
    )


def _columns(sec: Section) -> dict[str, ColumnSpec]:
    """``[columns]``: the shared ingest's column specs (name, kind, aliases, required)."""
    columns: dict[str, ColumnSpec] = {}
    for col, _ in sec.section("columns").items():
        c = sec.section("columns").section(col)
        columns[col] = ColumnSpec(col, c.choice("kind", COLUMN_KINDS), tuple(c.list("aliases", [], of=str)),
                                  c.bool("required", False))
    if "customer_id" not in columns:
        raise sec.error("columns", "必须声明 customer_id 列")
    return columns


def _ranges(sec: Section, columns: Mapping[str, ColumnSpec]) -> dict[str, tuple[float | None, float | None]]:
    ranges: dict[str, tuple[float | None, float | None]] = {}
    if "ranges" in sec:
        rs = sec.section("ranges")
        for col in rs.keys():
            r = rs.section(col)
            if col not in columns or columns[col].kind not in ("number", "int"):
                raise rs.error(col, f"「{col}」不是已声明的数字列")
            lo, hi = r.number("min", None), r.number("max", None)
            if lo is not None and hi is not None and lo > hi:
                raise r.error("min", f"最小值 {lo} 大于最大值 {hi}")
            ranges[col] = (lo, hi)
    return ranges


def _signals(sec: Section, columns: Mapping[str, ColumnSpec], negations: tuple[str, ...]) -> tuple[Signal, ...]:
    """``[[signals]]``, each built by its ``type`` from the one registry."""
    signals: list[Signal] = []
    seen: set[str] = set()
    for s in sec.sections("signals"):
        kind = s.choice("type", SIGNALS.names())
        sig = SIGNALS[kind](s, columns)
        if sig.key in seen:
            raise s.error("key", f"信号「{sig.key}」重复")
        seen.add(sig.key)
        if isinstance(sig, KeywordsSignal):
            sig.negations = negations
        signals.append(sig)
    return tuple(signals)


def _owners(sec: Section) -> dict[str, tuple[int, str]]:
    owners: dict[str, tuple[int, str]] = {}
    for i, o in enumerate(sec.sections("owners")):
        k = o.str("key")
        if k in owners:
            raise o.error("key", f"负责人「{k}」重复")
        owners[k] = (i, o.str("label"))
    return owners


def _owner_key(at: Section, key: str, owners: Mapping[str, tuple[int, str]]) -> str:
    owner = at.str(key)
    if owner not in owners:
        raise at.error(key, f"未知的负责人「{owner}」", hint=f"可选：{', '.join(owners)}")
    return owner


def _levels(sec: Section, owners: Mapping[str, tuple[int, str]], score_max: int) -> list[Level]:
    levels: list[Level] = []
    for ls in sec.sections("levels"):
        levels.append(_level(ls, owners, levels[-1].max + 1 if levels else 0))
    if not levels:
        raise sec.error("levels", "至少要有一个等级")
    if levels[-1].max != score_max:
        raise sec.error("levels", f"最后一个等级应到 {score_max} 分为止，实际到 {levels[-1].max}")
    level_keys = [lv.key for lv in levels]
    if len(set(level_keys)) != len(level_keys):
        raise sec.error("levels", "等级 key 重复")
    return levels


def _level(ls: Section, owners: Mapping[str, tuple[int, str]], expected: int) -> Level:
    lo, hi = ls.int("min", min=0), ls.int("max", min=0)
    if lo != expected:
        raise ls.error("min", f"等级分段要连续：应从 {expected} 开始，实际 {lo}")
    if hi < lo:
        raise ls.error("max", f"最大值 {hi} 小于最小值 {lo}")
    owner = _owner_key(ls, "owner", owners)
    hours, days = ls.int("respond_hours", None, min=1), ls.int("respond_days", None, min=1)
    if hours is not None and days is not None:
        raise ls.error("respond_hours", "respond_hours 与 respond_days 只能写一个")
    budget = ls.list("budget", of=int)
    if len(budget) != 2 or not 0 <= budget[0] <= budget[1]:
        raise ls.error("budget", "应为 [最低, 最高]（元），且最低 ≤ 最高")
    steps = _followup_steps(ls, owners)
    bm = ls.list("benchmark", ["0", "1"], of=(str, int, float))
    try:
        bm_d = (Decimal(str(bm[0])), Decimal(str(bm[1])))
    except Exception as exc:
        raise ls.error("benchmark", "应为 [\"0.60\", \"0.70\"] 这样的两个比例") from exc
    if len(bm) != 2 or not Decimal(0) <= bm_d[0] <= bm_d[1] <= Decimal(1):
        raise ls.error("benchmark", "应为两个 0–1 之间的比例，且前者 ≤ 后者")
    action = ls.str("action")
    check_fields(ls, "action", action, {"owner"})
    actions: dict[str, str] = {}
    if "actions" in ls:
        asec = ls.section("actions")
        for k in asec.keys():
            if k not in owners:
                raise asec.error(k, f"未知的负责人「{k}」", hint=f"可选：{', '.join(owners)}")
            actions[k] = asec.str(k)
            check_fields(asec, k, actions[k], {"owner"})
    return Level(ls.str("key"), ls.str("label"), ls.str("state", ""), lo, hi, owner,
                 hours, days, ls.str("respond_label", ""), (budget[0], budget[1]), tuple(st.days for st in steps),
                 bm_d, action, steps, actions)


def _owner_matrix(sec: Section, owners: Mapping[str, tuple[int, str]],
                  level_keys: Sequence[str]) -> dict[tuple[str, str], str]:
    matrix: dict[tuple[str, str], str] = {}
    for m in sec.sections("owner_matrix", []):
        value = m.choice("value", VALUE_SEGMENTS)
        lvl = m.choice("level", tuple(level_keys))
        matrix[(value, lvl)] = _owner_key(m, "owner", owners)
    return matrix


def _reasons(sec: Section, owners: Mapping[str, tuple[int, str]]) -> list[Reason]:
    reasons = []
    rsec = sec.section("reasons")
    for k in rsec.keys():
        r = rsec.section(k)
        plan = r.str("plan")
        check_fields(r, "plan", plan, {"owner"})
        r_owner = r.str("owner", "") or None
        if r_owner is not None and r_owner not in owners:
            raise r.error("owner", f"未知的负责人「{r_owner}」", hint=f"可选：{', '.join(owners)}")
        reasons.append(Reason(k, r.str("label"), tuple(r.list("labels", [], of=str)),
                              tuple(r.list("keywords", [], of=str)), plan, r_owner))
    return reasons


def _customer_types(sec: Section) -> tuple[CustomerType, ...]:
    types = []
    tsec = sec.section("customer_types")
    for k in tsec.keys():
        t = tsec.section(k)
        types.append(CustomerType(k, t.str("label"), tuple(t.list("labels", [], of=str)),
                                  t.str("incentive"), t.int("cost", 0, min=0)))
    return tuple(types)


def _outcomes(sec: Section) -> tuple[Outcome, ...]:
    outcomes: list[Outcome] = []
    seen_words: dict[str, str] = {}
    for o in sec.sections("outcomes", []):
        oc = Outcome(o.str("key"), o.str("label"), tuple(o.list("aliases", [], of=str)),
                     o.bool("reached"), o.bool("solved", False))
        if oc.solved and not oc.reached:
            raise o.error("solved", "问题已解决的结果必须也算接触到客户（reached = true）")
        for w in (oc.key, oc.label, *oc.aliases):
            k = w.strip().casefold()
            if k in seen_words and seen_words[k] != oc.key:
                raise o.error("aliases", f"「{w}」同时属于结果「{seen_words[k]}」和「{oc.key}」")
            seen_words[k] = oc.key
        outcomes.append(oc)
    return tuple(outcomes)


def _visit_columns(sec: Section) -> ColumnSet:
    wsec = sec.section("winback")
    visit_columns = ColumnSet.from_model(wsec) if "columns" in wsec else ColumnSet({})
    for need, kinds in (("customer_id", ("text",)), ("date", ("date",))):
        spec = visit_columns.specs.get(need)
        if visit_columns.specs and (spec is None or spec.kind not in kinds):
            raise wsec.error("columns", f"到店记录需要声明 {need} 列（类型 {kinds[0]}）")
    return visit_columns


def _check_owner_texts(sec: Section, owners: Mapping[str, tuple[int, str]], levels: Sequence[Level],
                       matrix: Mapping[tuple[str, str], str], reasons: Sequence[Reason], unknown_plan: str) -> None:
    """Every text a plan is made of must speak of the owner the plan names.

    A level's customers may get a more senior owner than the level's own (the value
    matrix; a churn reason whose plan needs, say, the store manager).  For every owner a
    level can actually end with, its action, the reason plans, the "ask first" plan and
    the follow-ups it says itself are rendered and may not name another owner: an owner
    of 店长 is never told "SA 3日内电话关怀".  The fix is data: ``{owner}`` in the text,
    or ``actions.<owner key>`` for a sentence of its own.
    """
    labels = {k: lab for k, (_, lab) in owners.items()}
    by_rank = sorted(owners, key=lambda k: owners[k][0])

    def other_owner(text: str, owner: str) -> str | None:
        mine = labels[owner]
        named = [lab for lab in labels.values() if lab in text and lab not in mine]
        return max(named, key=len) if named else None

    def fail(at: Section, key: str, text: str, other: str, owner: str, why: str) -> ModelError:
        return at.error(key, f"「{text}」说的是「{other}」，但{why}的负责人是「{labels[owner]}」",
                        hint=f"把负责人写成 {{owner}}（自动填入每位客户的实际负责人），"
                             f"或在 [[levels]] 的 actions 里为 {owner} 单独写一句")

    level_secs = sec.sections("levels")
    reason_secs = sec.section("reasons")
    raise_by = [r for r in reasons if r.owner is not None]
    for i, (lv, ls) in enumerate(zip(levels, level_secs, strict=True)):
        base = owners[lv.owner][0]
        by_value = {max(base, owners[matrix[(seg, lv.key)]][0]) if (seg, lv.key) in matrix else base
                    for seg in VALUE_SEGMENTS}
        reachable = set(by_value)
        if i > 0:  # the lowest level gets upkeep, never a reason plan
            reachable |= {max(r_, owners[x.owner][0]) for r_ in by_value for x in raise_by if x.owner}
        for rank in sorted(reachable):
            owner = by_rank[rank]
            text = lv.action_for(owner, labels[owner])
            other = other_owner(text, owner)
            if other:
                key = f"actions.{owner}" if owner in lv.actions else "action"
                who = f"「{lv.label}」等级" if rank == base else f"「{lv.label}」等级的部分客户（按客户价值或流失原因上调）"
                raise fail(ls, key, text, other, owner, who)
            for step, fs in zip(lv.followups, ls.sections("followups", []), strict=False):
                who = step.owner or owner
                other = other_owner(step.detail, who)
                if other:
                    raise fail(fs, "detail", step.detail, other, who, "这次回访")
        if i == 0:
            continue
        for x in reasons:
            for rank in sorted({max(r_, owners[x.owner][0]) if x.owner else r_ for r_ in by_value}):
                owner = by_rank[rank]
                text = x.plan.format(owner=labels[owner])
                other = other_owner(text, owner)
                if other:
                    raise fail(reason_secs.section(x.key), "plan", text, other, owner,
                               f"「{lv.label}」等级、流失原因为{x.label}的客户")
        for rank in sorted(by_value):
            owner = by_rank[rank]
            other = other_owner(unknown_plan.format(owner=labels[owner]), owner)
            if other:
                raise fail(sec.section("plans"), "unknown", unknown_plan, other, owner, f"「{lv.label}」等级的客户")


def _followup_steps(ls: Section, owners: Mapping[str, tuple[int, str]]) -> tuple[FollowupStep, ...]:
    """A level's follow-ups: ``followups = [{ days, owner?, channel?, detail? }, …]`` or
    the short form ``followup_days = [7, 30]``; days strictly increasing."""
    if "followups" in ls and "followup_days" in ls:
        raise ls.error("followups", "followups 与 followup_days 只能写一个")
    steps: list[FollowupStep] = []
    if "followups" in ls:
        for f in ls.sections("followups"):
            owner = f.str("owner", "") or None
            if owner is not None and owner not in owners:
                raise f.error("owner", f"未知的负责人「{owner}」", hint=f"可选：{', '.join(owners)}")
            steps.append(FollowupStep(f.int("days", min=1), owner, f.str("channel", "电话"),
                                      f.str("detail", "")))
        key = "followups"
    else:
        steps = [FollowupStep(d, None, "电话", "") for d in ls.list("followup_days", [], of=int)]
        key = "followup_days"
    days = [st.days for st in steps]
    if any(d <= 0 for d in days) or days != sorted(set(days)):
        raise ls.error(key, "回访天数应为递增的正整数")
    return tuple(steps)


# =====================================================================================
# Scoring
