"""Churn-risk graded response (流失风险分级响应), SPEC part B — the pure core.

``score_churn(frame, model, as_of, now)`` gives every customer a 0–100 risk score, the
reasons behind it, a level (低 / 中 / 高 / 极高), who must act and by when, the budget,
a plan chosen by churn reason (and, for 中, an incentive by customer type — never one
coupon for everybody) and the follow-up dates.  The rest of the module is the closed
loop: follow-up dates, whether an intervention worked, win-back, ROI with the
counterfactual, KPIs against targets and win-back benchmarks.

Everything numeric comes from the model file (``tierctl/models/churn.toml``); this module
holds the rule *classes* (``type = "overdue" | "days_since" | "band" | "drop" |
"pct_drop" | "keywords" | "flag"``), each checked when the model loads.

No I/O, no clock: ``as_of`` and ``now`` are parameters.  Thresholds are compared in
exact arithmetic (values scaled to hundredths as integers, thresholds as fractions), so
a ticket falling from 2000 to 1000 is exactly a 50 % drop.

Decisions where the playbook is silent (the model file repeats the tunable ones):

* A ``risk_score`` cell is used as given per row; rows where it is empty are scored
  from the signals.  Fractional scores are kept and banded by upper bounds (40.5 → 中).
* Signals sharing a ``group`` (open-complaint flag and complaint words) count once; the
  losing one is still listed with ``+0`` so ``why`` shows everything that was seen.
* Overdue needs both ratio (≥ 1.25 × usual interval) and lateness (≥ 30 days), so a
  customer on a 20-day rhythm is not "wavering" after 25 days.
* 高价值 is annual spend strictly above 8,000; an empty spend counts as ordinary.  The
  value matrix only ever raises the level's own owner; so does a churn reason with an
  ``owner`` (none in the packaged model) when its plan is part of the customer's plan.
* Every plan text is said to the customer's final owner: ``{owner}`` in an action or
  plan is that owner's label, ``actions.<owner>`` gives an owner a sentence of its own,
  and a text that would name another owner than the one it is said to is refused when
  the model loads (an owner of 店长 is never told "SA 3日内电话关怀").
* Plan: 低 gets upkeep only; 中 gets the incentive of its customer type, else the plan
  of its churn reason(s), else "ask first"; 高/极高 get the plan of every churn reason
  found.  Reasons come from the 流失原因 column, else are inferred from 备注 keywords.
* Follow-ups in a scoring run count from ``as_of`` (the alert day).  Deadlines count
  from ``now``; day targets may count China's official working days (off by default).
  Each level's follow-ups are data (``followups = [{ days, owner?, channel?, detail? }]``,
  or the short ``followup_days``); the store-facing loop (:mod:`tierctl.churn_loop`)
  schedules them after an intervention.
* What ``churn log --result`` accepts is data too (``[[outcomes]]``): each outcome says
  whether the customer was reached (客户接触率) and the problem solved (问题解决率).
* ``model.ingest_columns`` is the model's ``[columns]`` for the shared ingest
  (``read_export``), so headers, aliases, mapping files, encodings and row numbers
  behave as in ``tierctl score``; ``model.visit_columns`` reads a visits export.
* Duplicated customer ids stop the run (InputError naming the rows): merging them
  silently would mix two people's history.
* ``roi`` is the playbook's (all won-back customers credited); ``incremental_roi``
  credits only churn avoided versus the base rate — on the seed table it is −23 %.
"""

from __future__ import annotations

import calendar
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from tierctl.errors import InputError, ModelError, Problem, UsageError
from tierctl.festivals import UpkeepRules, check_fields
from tierctl.io.ingest import ColumnSet
from tierctl.models.loader import Section
from tierctl.textmatch import keyword_hits

COLUMN_KINDS = ("text", "int", "number", "date", "bool")
VALUE_SEGMENTS = ("high", "ordinary")
_SCALE = 100  # numbers are compared as integer hundredths: exact for money and ratings


# =====================================================================================
# Model
# =====================================================================================

@dataclass(frozen=True)
class ColumnSpec:
    """One input column as the model declares it (shared-ingest format)."""

    name: str
    kind: str
    aliases: tuple[str, ...]
    required: bool

    @property
    def header(self) -> str:
        """The name shown to users when the file's own header is unknown."""
        return self.aliases[0] if self.aliases else self.name


@dataclass(frozen=True)
class Band:
    """``at`` threshold → ``points``; the highest-scoring band met wins."""

    at: Decimal
    points: int

    @property
    def frac(self) -> Fraction:
        return Fraction(self.at)


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
class _Ctx:
    """Typed input columns shared by the signals of one scoring run."""

    n: int
    as_of: date
    numbers: dict[str, np.ndarray]  # float with NaN
    dates: dict[str, np.ndarray]  # datetime64[D] with NaT
    texts: dict[str, pd.Series]
    flags: dict[str, np.ndarray]  # bool, NA → False

    def scaled(self, col: str) -> tuple[np.ndarray, np.ndarray]:
        """(integer hundredths, valid mask) — exact comparisons on money and ratings."""
        x = self.numbers[col]
        ok = ~np.isnan(x)
        return np.where(ok, np.rint(np.where(ok, x, 0) * _SCALE), 0).astype(np.int64), ok

    def days_since(self, col: str) -> tuple[np.ndarray, np.ndarray]:
        d = self.dates[col]
        ok = ~np.isnat(d)
        days = (np.datetime64(self.as_of, "D") - np.where(ok, d, np.datetime64(self.as_of, "D")))
        # A visit after the as-of date (a re-scored old file) counts as "today", never negative.
        return np.maximum(days.astype(np.int64), 0), ok


class Signal:
    """Base of the signal rule classes; subclasses are chosen by the ``type`` key."""

    type_name: ClassVar[str] = ""
    fields: ClassVar[tuple[str, ...]] = ()
    registry: ClassVar[dict[str, type[Signal]]] = {}

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        Signal.registry[cls.type_name] = cls

    def __init__(self, sec: Section, columns: Mapping[str, ColumnSpec]) -> None:
        self.sec = sec
        self.key = sec.str("key")
        self.label = sec.str("label", self.key)
        self.group = sec.str("group", self.key)
        bands = []
        for b in sec.sections("bands"):
            bands.append(Band(b.decimal("at", min=0), b.int("points", min=0, max=1000)))
        if not bands:
            raise sec.error("bands", "至少要有一档 { at = …, points = … }")
        self.bands = tuple(bands)
        self.reason = sec.str("reason")
        try:
            used = {f for _, f, _, _ in string.Formatter().parse(self.reason) if f is not None}
        except ValueError as exc:
            raise sec.error("reason", f"说明模板格式错误：{exc}") from exc
        if used - set(self.fields):
            raise sec.error("reason", f"说明模板里有未知字段 {sorted(used - set(self.fields))}",
                            hint=f"{self.type_name} 类信号可用：{', '.join(self.fields) or '（无）'}")
        self._columns = columns

    def column(self, name: str, kinds: tuple[str, ...]) -> str:
        """Read a column key and check the model declares it with a suitable kind."""
        col = self.sec.str(name)
        spec = self._columns.get(col)
        if spec is None:
            raise self.sec.error(name, f"列「{col}」没有在 [columns] 里声明")
        if spec.kind not in kinds:
            raise self.sec.error(name, f"列「{col}」的类型是 {spec.kind}，这个信号需要 {'/'.join(kinds)}")
        return col

    def needs(self) -> tuple[str, ...]:
        raise NotImplementedError

    def evaluate(self, ctx: _Ctx) -> tuple[np.ndarray, pd.Series]:
        """Points per row (0 = not fired) and the reason text with its points (None)."""
        raise NotImplementedError

    # -- shared machinery ------------------------------------------------------------
    def _pick(self, met: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Highest points among the bands met → (points, index of that band or -1)."""
        n = len(met[0])
        pts = np.zeros(n, dtype=np.int64)
        idx = np.full(n, -1, dtype=np.int64)
        for i, (band, m) in enumerate(zip(self.bands, met, strict=True)):
            better = m & ((idx < 0) | (band.points > pts))
            pts[better] = band.points
            idx[better] = i
        return pts, idx

    def _render(self, pts: np.ndarray, idx: np.ndarray, values: Mapping[str, np.ndarray],
                n: int) -> pd.Series:
        """Fill the reason template for fired rows only.

        Built with numpy's string ufuncs on the fired subset, so 100,000 customers cost
        a handful of array operations, not a Python loop.  Float fields are written as a
        manager would (2500, 7.5); everything else with ``str``.
        """
        out = np.full(n, None, dtype=object)
        fired = idx >= 0
        if not fired.any():
            return pd.Series(out, dtype=object)
        at_text = np.array([_fmt_dec(b.at) for b in self.bands])
        fields: dict[str, np.ndarray] = {"at": at_text[idx[fired]]}
        for k, v in values.items():
            sub = np.asarray(v)[fired]
            fields[k] = _fmt_num(sub).astype(str) if sub.dtype.kind == "f" else sub.astype(str)
        text = np.zeros(int(fired.sum()), dtype="U1")
        for literal, name, _spec, _conv in string.Formatter().parse(self.reason):
            if literal:
                text = np.strings.add(text, literal)
            if name is not None:
                text = np.strings.add(text, fields[name])
        text = np.strings.add(np.strings.add(text, ": +"), pts[fired].astype(str))
        out[fired] = text.astype(object)
        return pd.Series(out, dtype=object)


def _ge(lhs: np.ndarray, frac: Fraction, rhs: np.ndarray | int = 1) -> np.ndarray:
    """Exact ``lhs >= frac * rhs`` on integer arrays (cross-multiplied)."""
    return lhs * frac.denominator >= frac.numerator * rhs


def _gt(lhs: np.ndarray, frac: Fraction, rhs: np.ndarray | int = 1) -> np.ndarray:
    return lhs * frac.denominator > frac.numerator * rhs


def _le(lhs: np.ndarray, frac: Fraction, rhs: np.ndarray | int = 1) -> np.ndarray:
    return lhs * frac.denominator <= frac.numerator * rhs


class OverdueSignal(Signal):
    """Days since the last visit ≥ ``at`` × the customer's usual interval."""

    type_name = "overdue"
    fields = ("days", "interval", "at")

    def __init__(self, sec: Section, columns: Mapping[str, ColumnSpec]) -> None:
        super().__init__(sec, columns)
        self.date_column = self.column("date_column", ("date",))
        self.interval_column = self.column("interval_column", ("number", "int"))
        self.min_days_over = sec.int("min_days_over", 0, min=0)

    def needs(self) -> tuple[str, ...]:
        return (self.date_column, self.interval_column)

    def evaluate(self, ctx: _Ctx) -> tuple[np.ndarray, pd.Series]:
        days, ok_d = ctx.days_since(self.date_column)
        interval, ok_i = ctx.scaled(self.interval_column)
        ok = ok_d & ok_i & (interval > 0)
        days_s = days * _SCALE
        late = ok & (days_s - interval >= self.min_days_over * _SCALE)
        met = [late & _ge(days_s, b.frac, interval) for b in self.bands]
        pts, idx = self._pick(met)
        return pts, self._render(pts, idx, {"days": days, "interval": ctx.numbers[self.interval_column]}, ctx.n)


class DaysSinceSignal(Signal):
    """Days since a date ≥ ``at`` (e.g. 180 days without a visit)."""

    type_name = "days_since"
    fields = ("days", "at")

    def __init__(self, sec: Section, columns: Mapping[str, ColumnSpec]) -> None:
        super().__init__(sec, columns)
        self.date_column = self.column("date_column", ("date",))

    def needs(self) -> tuple[str, ...]:
        return (self.date_column,)

    def evaluate(self, ctx: _Ctx) -> tuple[np.ndarray, pd.Series]:
        days, ok = ctx.days_since(self.date_column)
        met = [ok & _ge(days, b.frac) for b in self.bands]
        pts, idx = self._pick(met)
        return pts, self._render(pts, idx, {"days": days}, ctx.n)


class BandSignal(Signal):
    """A number at least (or at most) ``at``: no-shows, unanswered calls, low rating."""

    type_name = "band"
    fields = ("value", "at")

    def __init__(self, sec: Section, columns: Mapping[str, ColumnSpec]) -> None:
        super().__init__(sec, columns)
        self.col = self.column("column", ("number", "int"))
        self.direction = sec.choice("direction", ("at_least", "at_most"))

    def needs(self) -> tuple[str, ...]:
        return (self.col,)

    def evaluate(self, ctx: _Ctx) -> tuple[np.ndarray, pd.Series]:
        v, ok = ctx.scaled(self.col)
        cmp = _ge if self.direction == "at_least" else _le
        met = [ok & cmp(v, b.frac * _SCALE) for b in self.bands]
        pts, idx = self._pick(met)
        return pts, self._render(pts, idx, {"value": ctx.numbers[self.col]}, ctx.n)


class DropSignal(Signal):
    """``previous - current ≥ at`` (e.g. satisfaction 9 → 7 is a drop of 2)."""

    type_name = "drop"
    fields = ("previous", "current", "drop", "at")

    def __init__(self, sec: Section, columns: Mapping[str, ColumnSpec]) -> None:
        super().__init__(sec, columns)
        self.col = self.column("column", ("number", "int"))
        self.prev = self.column("previous_column", ("number", "int"))

    def needs(self) -> tuple[str, ...]:
        return (self.col, self.prev)

    def evaluate(self, ctx: _Ctx) -> tuple[np.ndarray, pd.Series]:
        cur, ok_c = ctx.scaled(self.col)
        prev, ok_p = ctx.scaled(self.prev)
        ok = ok_c & ok_p
        drop = prev - cur
        met = [ok & _ge(drop, b.frac * _SCALE) for b in self.bands]
        pts, idx = self._pick(met)
        return pts, self._render(pts, idx, {
            "previous": ctx.numbers[self.prev], "current": ctx.numbers[self.col],
            "drop": drop / _SCALE}, ctx.n)


class PctDropSignal(Signal):
    """Relative fall ``(previous - current) / previous ≥ at %`` (average ticket)."""

    type_name = "pct_drop"
    fields = ("previous", "current", "pct", "at")

    def __init__(self, sec: Section, columns: Mapping[str, ColumnSpec]) -> None:
        super().__init__(sec, columns)
        self.col = self.column("column", ("number", "int"))
        self.prev = self.column("previous_column", ("number", "int"))
        for i, b in enumerate(self.bands):
            if b.at > 100:
                raise sec.error(f"bands[{i}].at", f"百分比 {b.at} 超过 100")

    def needs(self) -> tuple[str, ...]:
        return (self.col, self.prev)

    def evaluate(self, ctx: _Ctx) -> tuple[np.ndarray, pd.Series]:
        cur, ok_c = ctx.scaled(self.col)
        prev, ok_p = ctx.scaled(self.prev)
        ok = ok_c & ok_p & (prev > 0)
        fall = prev - cur
        met = [ok & _ge(fall * 100, b.frac, prev) for b in self.bands]
        pts, idx = self._pick(met)
        with np.errstate(divide="ignore", invalid="ignore"):
            pct = np.where(prev > 0, np.floor(fall * 100 / np.where(prev > 0, prev, 1)), 0)
        # Shown rounded down so the printed percentage never exceeds the real one.
        return pts, self._render(pts, idx, {
            "previous": ctx.numbers[self.prev], "current": ctx.numbers[self.col],
            "pct": pct.astype(np.int64)}, ctx.n)


class KeywordsSignal(Signal):
    """A keyword in a text column, not negated (比价, 4S店 …, but not 没有比价)."""

    type_name = "keywords"
    fields = ("keyword",)

    def __init__(self, sec: Section, columns: Mapping[str, ColumnSpec]) -> None:
        super().__init__(sec, columns)
        self.col = self.column("column", ("text",))
        self.keywords = tuple(sec.list("keywords", of=str))
        if not self.keywords or any(not k for k in self.keywords):
            raise sec.error("keywords", "关键词列表不能为空，也不能有空字符串")
        if len(self.bands) != 1:
            raise sec.error("bands", "关键词信号只有一档：[{ at = 1, points = … }]")
        self.negations: tuple[str, ...] = ()

    def needs(self) -> tuple[str, ...]:
        return (self.col,)

    def evaluate(self, ctx: _Ctx) -> tuple[np.ndarray, pd.Series]:
        hits = keyword_hits(ctx.texts[self.col].reset_index(drop=True), self.keywords, self.negations)
        fired = hits.notna().to_numpy()
        pts, idx = self._pick([fired])
        return pts, self._render(pts, idx, {"keyword": hits.to_numpy(dtype=object)}, ctx.n)


class FlagSignal(Signal):
    """A yes/no column is true (an open complaint)."""

    type_name = "flag"
    fields = ()

    def __init__(self, sec: Section, columns: Mapping[str, ColumnSpec]) -> None:
        super().__init__(sec, columns)
        self.col = self.column("column", ("bool",))
        if len(self.bands) != 1:
            raise sec.error("bands", "是/否信号只有一档：[{ at = 1, points = … }]")

    def needs(self) -> tuple[str, ...]:
        return (self.col,)

    def evaluate(self, ctx: _Ctx) -> tuple[np.ndarray, pd.Series]:
        pts, idx = self._pick([ctx.flags[self.col]])
        return pts, self._render(pts, idx, {}, ctx.n)


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

    columns: dict[str, ColumnSpec] = {}
    for col, _ in sec.section("columns").items():
        c = sec.section("columns").section(col)
        columns[col] = ColumnSpec(col, c.choice("kind", COLUMN_KINDS), tuple(c.list("aliases", [], of=str)),
                                  c.bool("required", False))
    if "customer_id" not in columns:
        raise sec.error("columns", "必须声明 customer_id 列")

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

    score = sec.section("score")
    score_max = score.int("max", 100, min=1)
    given_reason = score.str("given_reason", "流失风险分 {score}：取自导出表")
    text = sec.section("text", {})
    negations = tuple(text.list("negations", [], of=str)) if isinstance(text, Section) else ()

    signals: list[Signal] = []
    seen: set[str] = set()
    for s in sec.sections("signals"):
        kind = s.choice("type", tuple(Signal.registry))
        sig = Signal.registry[kind](s, columns)
        if sig.key in seen:
            raise s.error("key", f"信号「{sig.key}」重复")
        seen.add(sig.key)
        if isinstance(sig, KeywordsSignal):
            sig.negations = negations
        signals.append(sig)

    owners: dict[str, tuple[int, str]] = {}
    for i, o in enumerate(sec.sections("owners")):
        k = o.str("key")
        if k in owners:
            raise o.error("key", f"负责人「{k}」重复")
        owners[k] = (i, o.str("label"))

    levels: list[Level] = []
    for ls in sec.sections("levels"):
        lo, hi = ls.int("min", min=0), ls.int("max", min=0)
        expected = 0 if not levels else levels[-1].max + 1
        if lo != expected:
            raise ls.error("min", f"等级分段要连续：应从 {expected} 开始，实际 {lo}")
        if hi < lo:
            raise ls.error("max", f"最大值 {hi} 小于最小值 {lo}")
        owner = ls.str("owner")
        if owner not in owners:
            raise ls.error("owner", f"未知的负责人「{owner}」", hint=f"可选：{', '.join(owners)}")
        hours, days = ls.int("respond_hours", None, min=1), ls.int("respond_days", None, min=1)
        if hours is not None and days is not None:
            raise ls.error("respond_hours", "respond_hours 与 respond_days 只能写一个")
        budget = ls.list("budget", of=int)
        if len(budget) != 2 or not 0 <= budget[0] <= budget[1]:
            raise ls.error("budget", "应为 [最低, 最高]（元），且最低 ≤ 最高")
        steps = _followup_steps(ls, owners)
        fdays = tuple(st.days for st in steps)
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
        levels.append(Level(ls.str("key"), ls.str("label"), ls.str("state", ""), lo, hi, owner,
                            hours, days, ls.str("respond_label", ""), (budget[0], budget[1]), fdays, bm_d,
                            action, steps, actions))
    if not levels:
        raise sec.error("levels", "至少要有一个等级")
    if levels[-1].max != score_max:
        raise sec.error("levels", f"最后一个等级应到 {score_max} 分为止，实际到 {levels[-1].max}")
    level_keys = [lv.key for lv in levels]
    if len(set(level_keys)) != len(level_keys):
        raise sec.error("levels", "等级 key 重复")

    matrix: dict[tuple[str, str], str] = {}
    for m in sec.sections("owner_matrix", []):
        value = m.choice("value", VALUE_SEGMENTS)
        lvl = m.choice("level", level_keys)
        owner = m.str("owner")
        if owner not in owners:
            raise m.error("owner", f"未知的负责人「{owner}」", hint=f"可选：{', '.join(owners)}")
        matrix[(value, lvl)] = owner

    triage = sec.section("triage", {})
    must = tuple(triage.list("must_levels", [], of=str)) if isinstance(triage, Section) else ()
    for i, m in enumerate(must):
        if m not in level_keys:
            raise triage.error(f"must_levels[{i}]", f"未知等级「{m}」")

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
    unknown_plan = sec.section("plans").str("unknown")
    check_fields(sec.section("plans"), "unknown", unknown_plan, {"owner"})
    _check_owner_texts(sec, owners, levels, matrix, reasons, unknown_plan)
    types = []
    tsec = sec.section("customer_types")
    for k in tsec.keys():
        t = tsec.section(k)
        types.append(CustomerType(k, t.str("label"), tuple(t.list("labels", [], of=str)),
                                  t.str("incentive"), t.int("cost", 0, min=0)))

    kpis = []
    for k in sec.sections("kpis", []):
        kpis.append(Kpi(k.str("key"), k.str("label"), k.decimal("target", min=0, max=1)))

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
    fsec = sec.section("followup", {})
    close_early = fsec.int("close_early_days", 0, min=0, max=30) if isinstance(fsec, Section) else 0
    wsec = sec.section("winback")
    visit_columns = ColumnSet.from_model(wsec) if "columns" in wsec else ColumnSet({})
    for need, kinds in (("customer_id", ("text",)), ("date", ("date",))):
        spec = visit_columns.specs.get(need)
        if visit_columns.specs and (spec is None or spec.kind not in kinds):
            raise wsec.error("columns", f"到店记录需要声明 {need} 列（类型 {kinds[0]}）")

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
        signals=tuple(signals),
        owners=owners,
        levels=tuple(levels),
        count_working_days=dl.bool("count_working_days", False) if isinstance(dl, Section) else False,
        high_value_annual_spend=sec.section("value").decimal("high_value_annual_spend", min=0),
        owner_matrix=matrix,
        must_levels=must,
        unknown_plan=unknown_plan,
        reasons=tuple(reasons),
        customer_types=tuple(types),
        effect_within_days=effect.int("within_days", min=1),
        effect_drop=effect.int("drop", min=1),
        winback_months=sec.section("winback").int("months", min=1),
        average_annual_spend=roi.decimal("average_annual_spend", min=0),
        base_churn_rate=roi.decimal("base_churn_rate", min=0, max=1),
        kpis=tuple(kpis),
        upkeep=UpkeepRules.from_section(sec.section("upkeep")),
        ingest_columns=ColumnSet.from_model(sec),
        visit_columns=visit_columns,
        outcomes=tuple(outcomes),
        followup_close_early_days=close_early,
    )


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
# =====================================================================================

@dataclass
class ChurnResult:
    """The scored customers plus what could not be evaluated.

    ``customers`` has one row per input row (input order) with: ``customer_id``,
    ``risk_score``, ``score_source`` (``given`` / ``signals``), ``level_key``, ``level``,
    ``owner_key``, ``owner``, ``value_segment``, ``respond_by`` (datetime or None),
    ``respond_label``, ``budget_min``, ``budget_max``, ``plan``, ``plan_basis``,
    ``churn_reasons`` (list of reason keys), ``customer_type``, ``reasons`` (list of
    strings), ``followups`` (list of dates), ``priority`` (1 = first when hands are
    short), ``must_intervene``, ``_row``, and the declared input columns passed through.
    """

    as_of: date
    now: datetime
    model_name: str
    customers: pd.DataFrame
    unavailable_signals: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types, customers in priority order (row order never matters)."""
        df = self.customers.sort_values("priority", kind="stable")
        # Deadlines and follow-up lists are shared per level: convert each distinct one once.
        iso: dict[Any, Any] = {}

        def when(x: Any) -> str | None:
            if x is None or x is pd.NaT:
                return None
            if x not in iso:
                iso[x] = x.isoformat()
            return iso[x]

        fol: dict[int, list[str]] = {}

        def dates(xs: list[date]) -> list[str]:
            k = id(xs)
            if k not in fol:
                fol[k] = [d.isoformat() for d in xs]
            return list(fol[k])

        score = df["risk_score"].to_numpy()
        scores = score.tolist() if score.dtype.kind in "iu" else [_json_num(v) for v in score]
        cols = zip(df["customer_id"].astype(str).tolist(), scores, df["level"].tolist(),
                   df["owner"].tolist(), df["respond_by"].tolist(), df["plan"].tolist(),
                   df["reasons"].tolist(), df["level_key"].tolist(), df["budget_min"].tolist(),
                   df["budget_max"].tolist(), df["followups"].tolist(), df["value_segment"].tolist(),
                   df["priority"].tolist(), strict=True)
        out = [{"customer_id": cid, "risk_score": sc, "level": lvl, "owner": own,
                "respond_by": when(rb), "plan": plan, "reasons": list(rs), "level_key": lk,
                "budget": [bmin, bmax], "followups": dates(fu), "value_segment": seg, "priority": pr}
               for cid, sc, lvl, own, rb, plan, rs, lk, bmin, bmax, fu, seg, pr in cols]
        return {"as_of": self.as_of.isoformat(), "model": self.model_name, "customers": out,
                "unavailable_signals": list(self.unavailable_signals), "warnings": list(self.warnings)}


def _json_num(v: Any) -> int | float:
    f = float(v)
    return int(f) if f.is_integer() else f


def _fmt_num(x: np.ndarray) -> np.ndarray:
    """Numbers as a manager writes them: 2500, 7.5, 0.25 (no trailing .0)."""
    x = np.asarray(x, dtype=float)
    out = np.full(len(x), "", dtype=object)
    ok = ~np.isnan(x)
    r = np.round(np.where(ok, x, 0), 2)
    integral = ok & (r == np.floor(r))
    out[integral] = r[integral].astype(np.int64).astype(str)
    frac = ok & ~integral
    if frac.any():
        out[frac] = [f"{v:.2f}".rstrip("0").rstrip(".") for v in r[frac]]
    return out


def _fmt_dec(d: Decimal) -> str:
    return format(d.normalize(), "f")


def _headers(frame: pd.DataFrame, model: ChurnModel, headers: Mapping[str, str] | None = None) -> dict[str, str]:
    """Column headers as the user's file spells them: the ingest's ``Export.headers``
    (or ``frame.attrs["headers"]``), else the model's first alias."""
    given = headers if headers is not None else (
        frame.attrs.get("headers", {}) if isinstance(frame.attrs.get("headers"), dict) else {})
    return {c: given.get(c, spec.header) for c, spec in model.columns.items()}


def _prepare(frame: pd.DataFrame, model: ChurnModel, as_of: date, rows: np.ndarray,
             headers: Mapping[str, str], path: Path | str | None = None) -> _Ctx:
    """Type every declared column present and check ranges; all bad cells in one error."""
    problems: list[Problem] = []
    numbers: dict[str, np.ndarray] = {}
    dates: dict[str, np.ndarray] = {}
    texts: dict[str, pd.Series] = {}
    flags: dict[str, np.ndarray] = {}

    def bad(mask: np.ndarray, col: str, values: pd.Series, msg: str) -> None:
        for r, v in zip(rows[mask], values[mask].tolist(), strict=True):
            problems.append(Problem(int(r), headers[col], v, msg))

    for col, spec in model.columns.items():
        if col not in frame.columns:
            continue
        s = frame[col].reset_index(drop=True)
        present = s.notna().to_numpy().copy()
        if pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s):
            # only text cells can be "present but blank"; typed columns skip the cost
            present &= (s.astype("string").str.strip() != "").fillna(False).to_numpy(dtype=bool)
        if spec.kind in ("number", "int"):
            num = pd.to_numeric(s, errors="coerce") if not pd.api.types.is_numeric_dtype(s) else s
            x = num.to_numpy(dtype=float, na_value=np.nan)
            notnum = present & np.isnan(x)
            if notnum.any():
                bad(notnum, col, s, "应为数字")
            inf = np.isinf(x)
            if inf.any():
                bad(inf, col, s, "应为有限的数字")
                x = np.where(inf, np.nan, x)
            lo, hi = model.ranges.get(col, (None, None))
            ok = ~np.isnan(x)
            if lo is not None or hi is not None:
                out = ok & (((x < lo) if lo is not None else False) | ((x > hi) if hi is not None else False))
                if out.any():
                    span = f"{'' if lo is None else _fmt_num(np.array([lo]))[0]}–{'' if hi is None else _fmt_num(np.array([hi]))[0]}"
                    bad(out, col, s, f"超出允许范围 {span}，请改正这一格" if hi is not None
                        else f"不能小于 {_fmt_num(np.array([lo]))[0]}，请改正这一格")
            numbers[col] = x
        elif spec.kind == "date":
            d = s if pd.api.types.is_datetime64_any_dtype(s) else pd.to_datetime(s, errors="coerce")
            arr = d.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
            notdate = present & np.isnat(arr)
            if notdate.any():
                bad(notdate, col, s, "不是日期，请写成 2026-11-23 这样")
            dates[col] = arr
        elif spec.kind == "bool":
            flags[col], notbool = _to_flags(s)
            if notbool.any():
                bad(notbool, col, s, "应为 是/否")
        else:
            texts[col] = s.astype("string")
    if problems:
        raise InputError("导出表里有无法使用的值", problems=problems, path=path,
                         hint="改正这些格子后重新运行；空着的格子会被当作“未知”")
    return _Ctx(len(frame), as_of, numbers, dates, texts, flags)


_TRUE = {"是", "有", "y", "yes", "true", "t", "1", "✓", "√", "未解决"}
_FALSE = {"否", "无", "没有", "n", "no", "false", "f", "0", "已解决"}


def _to_flags(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(true mask, unreadable mask) for a yes/no column in any of the usual spellings."""
    if pd.api.types.is_bool_dtype(s):
        return s.fillna(False).to_numpy(dtype=bool), np.zeros(len(s), dtype=bool)
    t = s.astype("string").str.strip().str.lower()
    yes = t.isin(_TRUE).fillna(False).to_numpy(dtype=bool)
    no = t.isin(_FALSE).fillna(False).to_numpy(dtype=bool)
    empty = t.isna().to_numpy() | (t == "").fillna(True).to_numpy(dtype=bool)
    return yes, ~(yes | no | empty)


def _match_labels(text: pd.Series, options: Sequence[tuple[str, ...]]) -> np.ndarray:
    """Boolean matrix rows × options: does the cell contain any of the option's labels."""
    s = text.fillna("").str.lower()
    cols = []
    for labels in options:
        if not labels:
            cols.append(np.zeros(len(s), dtype=bool))
            continue
        pat = "|".join(re.escape(x.lower()) for x in sorted(labels, key=len, reverse=True))
        cols.append(s.str.contains(pat, regex=True).fillna(False).to_numpy(dtype=bool))
    return np.column_stack(cols) if cols else np.zeros((len(s), 0), dtype=bool)


def _add_days(now: datetime, days: int, working: bool) -> tuple[datetime, bool]:
    """``now`` + ``days`` (calendar or China's working days) → (deadline, estimated?)."""
    if not working:
        return now + timedelta(days=days), False
    import chinese_calendar  # only needed when the option is on

    estimated = False
    d, left = now, days
    while left:
        d += timedelta(days=1)
        try:
            work = chinese_calendar.is_workday(d.date())
        except NotImplementedError:
            # The official calendar is published a year ahead; beyond it assume Mon–Fri.
            work, estimated = d.weekday() < 5, True
        if work:
            left -= 1
    return d, estimated


def score_churn(frame: pd.DataFrame, model: ChurnModel, as_of: date, now: datetime, *,
                headers: Mapping[str, str] | None = None, path: Path | str | None = None) -> ChurnResult:
    """Score every customer of an export; pure and vectorised.

    ``frame`` uses the model's canonical column names, as the shared ingest produces
    them: ``read_export(path, model.ingest_columns)`` → ``Export.frame`` (with ``_row`` =
    Excel row; without ``_row`` rows are numbered from 2); pass ``Export.headers`` and
    ``Export.path`` so that errors name the file and its own column headers.  A
    ``risk_score`` cell, when present, is used as given (validated against the model's
    range); otherwise the score is the capped sum of the signal points.  ``as_of`` is
    the day the export describes; ``now`` is when the alert is raised (deadlines count
    from it).  Raises :class:`InputError` listing every bad cell with row and column.
    """
    if "customer_id" not in frame.columns:
        raise InputError("缺少「客户编号」列", path=path, hint="导出表需要一列客户编号（客户编号 / 客户ID / customer_id）")
    n = len(frame)
    rows = frame["_row"].to_numpy(dtype=np.int64) if "_row" in frame.columns else np.arange(n, dtype=np.int64) + 2
    headers = _headers(frame, model, headers)
    ids = frame["customer_id"].reset_index(drop=True).astype("string")

    problems = [Problem(int(r), headers["customer_id"], None, "客户编号为空")
                for r in rows[ids.isna().to_numpy() | (ids.str.strip() == "").fillna(True).to_numpy()]]
    dup = ids.duplicated(keep=False).fillna(False).to_numpy(dtype=bool) & ids.notna().to_numpy()
    if dup.any():
        first_row = pd.Series(rows[dup]).groupby(ids[dup].to_numpy()).transform("min").to_numpy()
        for r, v, f in zip(rows[dup], ids[dup].tolist(), first_row, strict=True):
            if r != f:
                problems.append(Problem(int(r), headers["customer_id"], v, f"与第 {f} 行客户编号重复"))
    if problems:
        raise InputError("客户编号有问题", problems=problems, path=path,
                         hint="每位客户一行；重复的行不会被自动合并，请在导出表里核对")

    ctx = _prepare(frame, model, as_of, rows, headers, path)

    # --- signals -> points per group -> score ----------------------------------------
    unavailable: list[str] = []
    groups: dict[str, list[int]] = {}
    pts_cols: list[np.ndarray] = []
    reason_cols: list[np.ndarray] = []
    for sig in model.signals:
        missing = [c for c in sig.needs() if c not in frame.columns]
        if missing:
            unavailable.append(f"{sig.label}（缺少列：{'、'.join(headers[c] for c in missing)}）")
            continue
        p, r = sig.evaluate(ctx)
        groups.setdefault(sig.group, []).append(len(pts_cols))
        pts_cols.append(p)
        reason_cols.append(r.to_numpy(dtype=object))
    total = np.zeros(n, dtype=np.int64)
    for members in groups.values():
        if len(members) == 1:
            total += pts_cols[members[0]]
            continue
        block = np.column_stack([pts_cols[i] for i in members])
        win = block.argmax(axis=1)  # first of the largest: model-file order breaks ties
        total += block.max(axis=1)
        for j, i in enumerate(members):
            # A signal that fired but lost within its group is shown, scored 0.
            loser = (pts_cols[i] > 0) & (win != j)
            if loser.any():
                texts_i = reason_cols[i].copy()
                texts_i[loser] = pd.Series(texts_i[loser], dtype=object).str.replace(
                    r": \+\d+$", "", regex=True).to_numpy(dtype=object) + "（与同组信号不重复计分）: +0"
                reason_cols[i] = texts_i
    computed = np.minimum(total, model.score_max)

    given = ctx.numbers.get("risk_score")
    use_given = ~np.isnan(given) if given is not None else np.zeros(n, dtype=bool)
    score = np.where(use_given, given if given is not None else 0, computed).astype(float)

    if reason_cols:
        mat = np.column_stack(reason_cols).tolist()  # nested lists iterate faster than rows
        reasons = [[x for x in row if x is not None] for row in mat]
    else:
        reasons = [[] for _ in range(n)]
    if use_given.any():
        gtext = _fmt_num(score[use_given])
        gi = np.flatnonzero(use_given)
        for i, t in zip(gi.tolist(), gtext, strict=True):
            reasons[i] = [model.given_reason.format(score=t)]

    # --- level, value, owner ----------------------------------------------------------
    maxes = np.array([lv.max for lv in model.levels], dtype=float)
    li = np.minimum(np.searchsorted(maxes, score, side="left"), len(model.levels) - 1)
    level_keys = np.array([lv.key for lv in model.levels], dtype=object)
    level_labels = np.array([lv.label for lv in model.levels], dtype=object)

    if "annual_spend" in ctx.numbers:
        spend, ok = ctx.scaled("annual_spend")
        # "high value" is strictly above the threshold (年消费 > 8000)
        high = ok & _gt(spend, Fraction(model.high_value_annual_spend) * _SCALE)
        spend_f = np.where(ok, ctx.numbers["annual_spend"], -1.0)
    else:
        high = np.zeros(n, dtype=bool)
        spend_f = np.full(n, -1.0)
    segment = np.where(high, "high", "ordinary").astype(object)

    owner_keys = list(model.owners)
    rank_of = {k: r for k, (r, _) in model.owners.items()}
    seg_idx = high.astype(np.int64)  # 0 ordinary, 1 high
    table = np.zeros((2, len(model.levels)), dtype=np.int64)
    for s_i, seg in enumerate(("ordinary", "high")):
        for l_i, lv in enumerate(model.levels):
            base = rank_of[lv.owner]
            floor = model.owner_matrix.get((seg, lv.key))
            table[s_i, l_i] = max(base, rank_of[floor]) if floor else base
    value_rank = table[seg_idx, li]

    # --- deadlines, budgets, follow-ups (per level, computed once) --------------------
    estimated = False
    respond: list[datetime | None] = []
    for lv in model.levels:
        if lv.respond_hours is not None:
            respond.append(now + timedelta(hours=lv.respond_hours))
        elif lv.respond_days is not None:
            when, est = _add_days(now, lv.respond_days, model.count_working_days)
            estimated |= est
            respond.append(when)
        else:
            respond.append(None)
    respond_arr = np.array(respond + [None], dtype=object)[:-1]
    follow = np.empty(len(model.levels), dtype=object)
    for i, lv in enumerate(model.levels):
        follow[i] = [as_of + timedelta(days=d) for d in lv.followup_days]

    # --- plans: by reason, by type for mid; computed per distinct combination ----------
    reason_mask, reason_basis = _reason_masks(ctx, model)
    type_idx = _type_index(ctx, model)
    # a reason whose plan needs a more senior owner (its optional ``owner``) raises the
    # owner too, and every plan text is said to the owner it ends with
    plan, basis, owner_rank = _plans(model, li, value_rank, type_idx, reason_mask, reason_basis)
    by_rank = sorted(owner_keys, key=lambda k: rank_of[k])
    owner_key_arr = np.array(by_rank, dtype=object)[owner_rank]
    owner_label_arr = np.array([model.owners[k][1] for k in by_rank], dtype=object)[owner_rank]
    reason_keys = np.array([r.key for r in model.reasons], dtype=object)
    reason_lists = _mask_lists(reason_mask, reason_keys)
    type_keys = np.array([t.key for t in model.customer_types] + [None], dtype=object)

    # --- triage order when resources are short ----------------------------------------
    must = high & np.isin(level_keys[li], list(model.must_levels))
    # customer id (unique) breaks the last ties, as an integer code: sorting text is slow
    id_code = pd.factorize(ids.fillna(""), sort=True)[0]
    order = np.lexsort((id_code, -spend_f, -score, ~must))
    priority = np.empty(n, dtype=np.int64)
    priority[order] = np.arange(1, n + 1)

    warnings = []
    if estimated:
        warnings.append("官方节假日日历暂无该年份数据，工作日按周一至周五估算")
    warnings += _unknown_label_warnings(ctx, model, rows, headers)

    all_int = bool(np.all(score == np.floor(score)))
    out = pd.DataFrame({
        "customer_id": ids,
        "risk_score": score.astype(np.int64) if all_int else score,
        "score_source": np.where(use_given, "given", "signals"),
        "level_key": level_keys[li],
        "level": level_labels[li],
        "owner_key": owner_key_arr,
        "owner": owner_label_arr,
        "value_segment": segment,
        "respond_by": pd.Series(respond_arr[li], dtype=object),
        "respond_label": np.array([lv.respond_label for lv in model.levels], dtype=object)[li],
        "budget_min": np.array([lv.budget[0] for lv in model.levels], dtype=np.int64)[li],
        "budget_max": np.array([lv.budget[1] for lv in model.levels], dtype=np.int64)[li],
        "plan": plan,
        "plan_basis": basis,
        "churn_reasons": reason_lists,
        "customer_type": type_keys[type_idx],
        "reasons": pd.Series(reasons, dtype=object),
        "followups": pd.Series(follow[li], dtype=object),
        "priority": priority,
        "must_intervene": must,
        "_row": rows,
    })
    for col in model.columns:
        if col in frame.columns and col not in out.columns:
            out[col] = frame[col].reset_index(drop=True)  # keeps the ingest's dtype
    return ChurnResult(as_of, now, model.name, out, unavailable, warnings)


def _reason_masks(ctx: _Ctx, model: ChurnModel) -> tuple[np.ndarray, np.ndarray]:
    """Churn reasons per row: from the 流失原因 column, else inferred from 备注.

    Returns (bool matrix rows × reasons, source per row: "column" / "notes" / "").
    """
    n = ctx.n
    r = len(model.reasons)
    mask = np.zeros((n, r), dtype=bool)
    source = np.full(n, "", dtype=object)
    if r == 0:
        return mask, source
    if "churn_reason" in ctx.texts:
        mask = _match_labels(ctx.texts["churn_reason"], [x.labels for x in model.reasons])
        source[mask.any(axis=1)] = "column"
    if "notes" in ctx.texts:
        todo = np.asarray(~mask.any(axis=1), dtype=bool)
        if todo.any():
            notes = ctx.texts["notes"].reset_index(drop=True)
            inferred: np.ndarray = np.column_stack([
                keyword_hits(notes, x.keywords, model.negations).notna().to_numpy() if x.keywords
                else np.zeros(n, dtype=bool) for x in model.reasons])
            inferred &= todo[:, None]
            mask |= inferred
            source[inferred.any(axis=1)] = "notes"
    return mask, source


def _type_index(ctx: _Ctx, model: ChurnModel) -> np.ndarray:
    """Index of the first matching customer type, or len(types) when unknown."""
    t = len(model.customer_types)
    if t == 0 or "customer_type" not in ctx.texts:
        return np.full(ctx.n, t, dtype=np.int64)
    m = _match_labels(ctx.texts["customer_type"], [x.labels for x in model.customer_types])
    return np.where(m.any(axis=1), m.argmax(axis=1), t).astype(np.int64)


def _mask_lists(mask: np.ndarray, keys: np.ndarray) -> pd.Series:
    if mask.shape[1] == 0:
        return pd.Series([[] for _ in range(mask.shape[0])], dtype=object)
    code = mask.astype(np.int64) @ (1 << np.arange(mask.shape[1], dtype=np.int64))
    uniq, inv = np.unique(code, return_inverse=True)
    lists = [[k for j, k in enumerate(keys) if u >> j & 1] for u in uniq]
    return pd.Series([lists[i] for i in inv], dtype=object)


def _plans(model: ChurnModel, li: np.ndarray, value_rank: np.ndarray, type_idx: np.ndarray,
           reason_mask: np.ndarray, reason_source: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plan text, its basis and the final owner rank per row; built once per distinct
    (level, owner by value, type, reasons).

    The owner by value (``value_rank``) is raised to a reason's ``owner`` when that
    reason's plan is part of the plan; the level's action and the reason plans are then
    said to that final owner (``{owner}``, or the level's ``actions.<owner>``).
    """
    n = len(li)
    nr = reason_mask.shape[1]
    rcode = reason_mask.astype(np.int64) @ (1 << np.arange(nr, dtype=np.int64)) if nr else np.zeros(n, np.int64)
    src = np.select([reason_source == "column", reason_source == "notes"], [1, 2], 0)
    combo = np.column_stack([li, value_rank, type_idx, rcode, src])
    uniq, inv = np.unique(combo, axis=0, return_inverse=True)
    by_rank = sorted(model.owners, key=lambda k: model.owners[k][0])
    plans, bases, ranks = [], [], []
    src_label = {1: "导出表", 2: "备注推断"}
    for lvl_i, v_rank, t_i, code, s in uniq.tolist():
        lv = model.levels[lvl_i]
        rs = [model.reasons[j] for j in range(nr) if code >> j & 1]
        ct = model.customer_types[t_i] if t_i < len(model.customer_types) else None
        basis = []
        if rs:
            basis.append(f"流失原因：{'、'.join(x.label for x in rs)}（{src_label.get(s, '')}）")
        if ct:
            basis.append(f"客户类型：{ct.label}")
        if lvl_i == 0:
            kind = "upkeep"  # the lowest level is routine upkeep, no win-back plan
        elif lv.key == "mid" and ct is not None:
            kind = "incentive"
        elif rs:
            kind = "reasons"
        else:
            kind = "unknown"
        rank = v_rank
        if kind == "reasons":
            raisers = [x for x in rs if x.owner is not None and model.owners[x.owner][0] > rank]
            if raisers:
                rank = max(model.owners[x.owner][0] for x in raisers if x.owner)
                basis.append(f"负责人按流失原因（{'、'.join(x.label for x in raisers)}）上调为"
                             f"{model.owners[by_rank[rank]][1]}")
        key = by_rank[rank]
        label = model.owners[key][1]
        if kind == "incentive":
            assert ct is not None
            detail = f"激励（{ct.label}）：{ct.incentive}（约{ct.cost}元）"
        elif kind == "reasons":
            detail = "；".join(f"{x.label}→{x.plan.format(owner=label)}" for x in rs)
        elif kind == "unknown":
            detail = model.unknown_plan.format(owner=label)
        else:
            detail = ""
        action = lv.action_for(key, label)
        plans.append(action + ("；" + detail if detail else ""))
        bases.append("；".join(basis))
        ranks.append(rank)
    idx = inv.ravel()
    return (np.array(plans, dtype=object)[idx], np.array(bases, dtype=object)[idx],
            np.array(ranks, dtype=np.int64)[idx])


def _unknown_label_warnings(ctx: _Ctx, model: ChurnModel, rows: np.ndarray,
                            headers: Mapping[str, str]) -> list[str]:
    """Values of 流失原因 / 客户类型 that match nothing: the plan falls back, say so."""
    out = []
    for col, opts in (("churn_reason", model.reasons), ("customer_type", model.customer_types)):
        if col not in ctx.texts or not opts:
            continue
        s = ctx.texts[col].reset_index(drop=True)
        m = _match_labels(s, [x.labels for x in opts]).any(axis=1)
        unknown = ~m & s.notna().to_numpy() & (s.str.strip() != "").fillna(False).to_numpy(dtype=bool)
        if unknown.any():
            shown = "、".join(f"第{r}行「{v}」" for r, v in zip(rows[unknown][:10], s[unknown].tolist()[:10], strict=False))
            more = "" if unknown.sum() <= 10 else f" 等 {int(unknown.sum())} 处"
            out.append(f"「{headers[col]}」有无法识别的值：{shown}{more}；"
                       f"可用：{'、'.join(x.label for x in opts)}")
    return out


# =====================================================================================
# Closed loop: follow-ups, effect, win-back
# =====================================================================================

def followup_dates(level: str, intervention_date: date, model: ChurnModel) -> list[date]:
    """Follow-up dates for a level (key or label) counted from the intervention date."""
    lv = model.level(level)
    return [intervention_date + timedelta(days=d) for d in lv.followup_days]


def intervention_effect(score_before: int | float | tuple[date, int | float],
                        scores_after: Iterable[tuple[date, int | float]],
                        within_days: int = 30, drop: int = 20, *,
                        intervention_date: date | None = None) -> bool:
    """Did the intervention work: a score ≥ ``drop`` points lower within ``within_days``?

    ``score_before`` is the score at the intervention, either ``(date, score)`` or a
    number together with ``intervention_date``.  Only scores dated after the
    intervention and at most ``within_days`` later count (the model's defaults are in
    ``model.effect_within_days`` / ``model.effect_drop``).
    """
    if isinstance(score_before, tuple):
        start, before = score_before
    else:
        if intervention_date is None:
            raise ValueError("score_before is a number: pass intervention_date too")
        start, before = intervention_date, score_before
    end = start + timedelta(days=within_days)
    b = Decimal(str(before))
    return any(start < d <= end and b - Decimal(str(s)) >= drop for d, s in scores_after)


def add_months(d: date, months: int) -> date:
    """Same day ``months`` later, clamped to the month end (31 Aug + 6 → 28/29 Feb)."""
    y, m = divmod(d.month - 1 + months, 12)
    y += d.year
    m += 1
    return date(y, m, min(d.day, calendar.monthrange(y, m)[1]))


def won_back(intervention_date: date, spending: Iterable[date | tuple[date, float]],
             months: int = 6, *, as_of: date | None = None) -> bool | None:
    """Still spending within ``months`` after the intervention (the win-back definition).

    ``spending`` holds dates of paid visits or ``(date, amount)`` pairs (amount ≤ 0,
    e.g. a refund, does not count).  Spending on the intervention day itself does not
    count: it is usually the intervention visit.  With ``as_of`` before the window ends
    and no spending yet, the answer is ``None`` (not decided yet).
    """
    end = add_months(intervention_date, months)
    for item in spending:
        d, amount = (item, 1) if isinstance(item, date) else item
        if intervention_date < d <= end and amount > 0:
            return True
    if as_of is not None and as_of < end:
        return None
    return False


def win_back_flags(interventions: pd.DataFrame, transactions: pd.DataFrame, months: int = 6, *,
                   as_of: date | None = None) -> pd.Series:
    """Vectorised :func:`won_back` for many interventions.

    ``interventions``: ``customer_id``, ``intervention_date``; ``transactions``:
    ``customer_id``, ``date`` and optionally ``amount``.  Returns a nullable boolean
    Series aligned with ``interventions`` (NA = window still open and nothing spent).
    """
    iv = interventions[["customer_id", "intervention_date"]].copy()
    iv["_i"] = np.arange(len(iv))
    iv["_start"] = pd.to_datetime(iv["intervention_date"])
    iv["_end"] = [pd.Timestamp(add_months(d.date(), months)) for d in iv["_start"]]
    tx = transactions.copy()
    tx["_d"] = pd.to_datetime(tx["date"])
    if "amount" in tx.columns:
        tx = tx[pd.to_numeric(tx["amount"]) > 0]
    j = iv.merge(tx[["customer_id", "_d"]], on="customer_id", how="inner")
    hit = j[(j["_d"] > j["_start"]) & (j["_d"] <= j["_end"])]["_i"].unique()
    res = pd.Series(False, index=interventions.index, dtype="boolean")
    res.iloc[np.asarray(hit, dtype=np.int64)] = True
    if as_of is not None:
        open_ = (iv["_end"] > pd.Timestamp(as_of)).to_numpy() & ~res.to_numpy(dtype=bool)
        res[open_] = pd.NA
    return res


def rows_per_level(interventions: pd.DataFrame, model: ChurnModel) -> dict[str, dict[str, Any]]:
    """Aggregate per-intervention records (``level``, ``won_back``, ``cost``) for ROI."""
    out: dict[str, dict[str, Any]] = {}
    for lv in model.levels:
        keys = {lv.key, lv.label, f"{lv.label}风险"}
        sub = interventions[interventions["level"].isin(keys)]
        if len(sub) == 0:
            continue
        out[lv.key] = {"customers": len(sub), "intervened": len(sub),
                       "won_back": int(sub["won_back"].fillna(False).astype(bool).sum()),
                       "cost": Decimal(str(pd.to_numeric(sub["cost"]).sum()))}
    return out


# =====================================================================================
# ROI, benchmarks, KPIs
# =====================================================================================

def _d(v: Any) -> Decimal:
    return v if isinstance(v, Decimal) else Decimal(str(v))


def percent(x: Decimal | None, places: int = 0) -> str:
    """``Decimal('0.6612')`` → ``"66%"`` (half up, as a report prints it)."""
    if x is None:
        return "—"
    q = Decimal(1).scaleb(-places)
    return f"{(x * 100).quantize(q, rounding=ROUND_HALF_UP)}%"


def wan(amount: Decimal | int, places: int = 2) -> str:
    """Money in 万元 as the playbook writes it: 128000 → ``"12.8万"``, 3830000 → ``"383万"``."""
    v = (_d(amount) / 10000).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    s = format(v.normalize(), "f")
    return f"{s}万"


@dataclass(frozen=True)
class LevelROI:
    level_key: str
    label: str
    customers: int
    intervened: int
    won_back: int
    rate: Decimal | None
    cost: Decimal
    revenue: Decimal
    roi: Decimal | None
    benchmark: tuple[Decimal, Decimal]
    benchmark_status: str  # below | within | above | n/a


@dataclass(frozen=True)
class ROIReport:
    """Per-level results, totals and the no-intervention counterfactual.

    ``roi`` is the playbook's: every won-back customer's annual spend counts.
    ``incremental_roi`` counts only the churn avoided versus the base churn rate, which
    is the stricter figure (customers who would have stayed anyway are not credited).
    """

    levels: tuple[LevelROI, ...]
    customers: int
    intervened: int
    won_back: int
    rate: Decimal | None
    cost: Decimal
    average_annual_spend: Decimal
    revenue: Decimal
    roi: Decimal | None
    base_churn_rate: Decimal
    expected_churn: Decimal
    expected_loss: Decimal
    actual_churn: int
    churn_avoided: Decimal
    saved: Decimal
    incremental_roi: Decimal | None

    def to_json(self) -> dict[str, Any]:
        def num(v: Decimal | None) -> float | int | None:
            if v is None:
                return None
            return int(v) if v == v.to_integral_value() else float(v)

        return {
            "levels": [{"level": r.level_key, "label": r.label, "customers": r.customers,
                        "intervened": r.intervened, "won_back": r.won_back, "rate": num(r.rate),
                        "cost": num(r.cost), "revenue": num(r.revenue), "roi": num(r.roi),
                        "benchmark": [num(r.benchmark[0]), num(r.benchmark[1])],
                        "benchmark_status": r.benchmark_status} for r in self.levels],
            "total": {"customers": self.customers, "intervened": self.intervened,
                      "won_back": self.won_back, "rate": num(self.rate), "cost": num(self.cost),
                      "revenue": num(self.revenue), "roi": num(self.roi)},
            "counterfactual": {"base_churn_rate": num(self.base_churn_rate),
                               "expected_churn": num(self.expected_churn),
                               "expected_loss": num(self.expected_loss),
                               "actual_churn": self.actual_churn,
                               "churn_avoided": num(self.churn_avoided), "saved": num(self.saved),
                               "incremental_roi": num(self.incremental_roi)},
        }

    def summary_lines(self) -> list[str]:
        """The report as the playbook prints it (percentages whole, money in 万)."""
        status = {"below": "低于行业标准", "within": "达到行业标准", "above": "高于行业标准", "n/a": ""}
        lines = []
        for r in self.levels:
            bm = f"（行业标准 {percent(r.benchmark[0])}–{percent(r.benchmark[1])}，{status[r.benchmark_status]}）"
            lines.append(f"{r.label}风险：客户 {r.customers} 人，干预 {r.intervened} 人，挽回 {r.won_back} 人，"
                         f"挽回率 {percent(r.rate)}，成本 {wan(r.cost)}{bm}")
        avg = format(self.average_annual_spend.normalize(), "f")
        lines.append(f"合计：客户 {self.customers} 人，干预 {self.intervened} 人，挽回 {self.won_back} 人，"
                     f"挽回率 {percent(self.rate)}，成本 {wan(self.cost)}")
        lines.append(f"挽回收入：{self.won_back} × {avg} = {wan(self.revenue)}元")
        lines.append(f"ROI = ({wan(self.revenue)} − {wan(self.cost)}) ÷ {wan(self.cost)} = {percent(self.roi)}")
        lines.append(f"如果不干预：预计流失 {_int_text(self.expected_churn)} 人（{percent(self.base_churn_rate)}流失率），"
                     f"损失收入 {wan(self.expected_loss)}元")
        lines.append(f"干预后：实际流失 {self.actual_churn} 人，减少流失 {_int_text(self.churn_avoided)} 人，"
                     f"避免损失 {wan(self.saved)}元")
        lines.append(f"增量ROI（只计减少的流失）= ({wan(self.saved)} − {wan(self.cost)}) ÷ {wan(self.cost)} "
                     f"= {percent(self.incremental_roi)}")
        return lines


def _int_text(d: Decimal) -> str:
    return format(d.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP).normalize(), "f")


def benchmark_status(level: str, rate: Decimal | float | None, model: ChurnModel) -> str:
    """``below`` / ``within`` / ``above`` the level's win-back benchmark (inclusive)."""
    if rate is None:
        return "n/a"
    lo, hi = model.level(level).benchmark
    r = _d(rate)
    return "below" if r < lo else "above" if r > hi else "within"


def _level_rows(rows_per_level: Any) -> list[tuple[str, Mapping[str, Any]]]:
    if isinstance(rows_per_level, pd.DataFrame):
        return [(str(r["level"]), r) for r in rows_per_level.to_dict("records")]
    if isinstance(rows_per_level, Mapping):
        return [(str(k), v) for k, v in rows_per_level.items()]
    return [(str(r["level"]), r) for r in rows_per_level]


def roi_report(rows_per_level: Any, model: ChurnModel) -> ROIReport:
    """Per level: customers, intervened, won back, rate, cost, ROI; totals; counterfactual.

    ``rows_per_level`` is a mapping level → ``{"customers"?, "intervened", "won_back",
    "cost"}`` (level by key or label; ``customers`` defaults to ``intervened``), a list
    of such dicts with a ``level`` key, or a DataFrame with those columns.  Costs in 元.
    ROI = (won back × average annual spend − cost) ÷ cost; the counterfactual applies
    the base churn rate to the customers intervened.  Exact (Decimal) throughout.
    """
    avg, base = model.average_annual_spend, model.base_churn_rate
    out: list[LevelROI] = []
    seen: set[str] = set()
    for name, r in _level_rows(rows_per_level):
        lv = model.level(name)
        if lv.key in seen:
            raise UsageError(f"等级「{lv.label}」出现了两次")
        seen.add(lv.key)
        intervened = int(r["intervened"])
        customers = int(r.get("customers", intervened)) if hasattr(r, "get") else intervened
        won = int(r["won_back"])
        cost = _d(r["cost"])
        if not 0 <= won <= intervened <= customers or cost < 0:
            raise InputError(f"{lv.label}风险的数字不合理：客户 {customers}、干预 {intervened}、挽回 {won}、成本 {cost}",
                             hint="应满足 0 ≤ 挽回 ≤ 干预 ≤ 客户数，成本不为负")
        rate = Decimal(won) / Decimal(intervened) if intervened else None
        revenue = won * avg
        roi = (revenue - cost) / cost if cost else None
        out.append(LevelROI(lv.key, lv.label, customers, intervened, won, rate, cost, revenue, roi,
                            lv.benchmark, benchmark_status(lv.key, rate, model)))
    order = {lv.key: i for i, lv in enumerate(model.levels)}
    out.sort(key=lambda x: order[x.level_key])
    customers = sum(x.customers for x in out)
    intervened = sum(x.intervened for x in out)
    won = sum(x.won_back for x in out)
    cost = sum((x.cost for x in out), Decimal(0))
    revenue = won * avg
    expected = intervened * base
    actual = intervened - won
    avoided = expected - actual
    saved = avoided * avg
    return ROIReport(
        levels=tuple(out), customers=customers, intervened=intervened, won_back=won,
        rate=Decimal(won) / Decimal(intervened) if intervened else None, cost=cost,
        average_annual_spend=avg, revenue=revenue, roi=(revenue - cost) / cost if cost else None,
        base_churn_rate=base, expected_churn=expected, expected_loss=expected * avg,
        actual_churn=actual, churn_avoided=avoided, saved=saved,
        incremental_roi=(saved - cost) / cost if cost else None,
    )


@dataclass(frozen=True)
class KpiResult:
    key: str
    label: str
    value: Decimal | None
    target: Decimal
    met: bool | None  # None when no figure was given


def evaluate_kpis(actuals: Mapping[str, Any], model: ChurnModel) -> list[KpiResult]:
    """Each KPI of the model against its target (met = strictly above, as ">95%").

    ``actuals`` maps KPI key → a rate (0–1) or a ``(numerator, denominator)`` pair,
    e.g. ``{"alert_response": (96, 100), "win_back": 0.57}``.  KPIs not given are
    returned with ``value=None``; unknown keys are an error.
    """
    known = {k.key for k in model.kpis}
    unknown = set(actuals) - known
    if unknown:
        raise UsageError(f"未知的指标：{'、'.join(sorted(unknown))}", hint=f"可用：{'、'.join(sorted(known))}")
    out = []
    for k in model.kpis:
        if k.key not in actuals or actuals[k.key] is None:
            out.append(KpiResult(k.key, k.label, None, k.target, None))
            continue
        v = actuals[k.key]
        if isinstance(v, tuple):
            num, den = v
            value = _d(num) / _d(den) if den else None
        else:
            value = _d(v)
        out.append(KpiResult(k.key, k.label, value, k.target, None if value is None else value > k.target))
    return out
