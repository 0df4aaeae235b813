"""Customer grading (客户分级, job D): a 0–100 composite, five grades, overrides, changes.

Pure: a frame (canonical column names, as the shared ingest produces them) and a model
in, a :class:`GradeResult` out; no I/O, no clock.  The CLI, the store (grade history)
and the renderer (降级说明函) sit on top.

How the numbers are made (the model file ``tierctl/models/grade.toml`` says the same in
Chinese, for the user who copies it):

* **Indicator values.** Each indicator reads one column; a blank cell or a missing
  column can be *derived* (客单价 = 近12个月消费 ÷ 到店次数 when visits > 0;
  客户年限 = calendar months completed since 首次到店 up to ``as_of``, ÷ 12, so three
  full years is exactly 3.0).  A cell still blank afterwards follows the indicator's
  ``blank`` policy: ``zero`` (counts as 0 and is ranked), ``reweight`` (that customer is
  graded on his other indicators, their weights scaled up proportionally) or ``error``.
* **Missing indicator (decision for issue 7).** An indicator whose column is absent and
  cannot be derived — or whose column is entirely blank — is an :class:`InputError`
  when the model marks it ``required`` (spend, frequency, ticket in the default model:
  grading without them is meaningless); otherwise the remaining indicators are
  re-weighted proportionally (weight ÷ sum of the available weights) and the result
  carries a warning naming the missing indicator, the headers we looked for, and the
  weights actually used.
* **Percentile rank** (default normalisation), ties sharing a value::

      score = 100 × (below + (equal − 1) / 2) / (n − 1)

  where ``n`` counts the customers with a value for that indicator, ``below`` those with
  a strictly lower value and ``equal`` those with the same value (the customer
  included).  In words: the share of the *other* customers this one beats, a tie
  counting half.  Unique lowest = 0, unique highest = 100, all equal = 50, a single
  customer = 50 (nobody to compare with: the same rule as all equal).  The mean over
  all customers is always 50 whatever the ties, and row order cannot change anything.
* **Thresholds** (option): the points of the highest band whose ``min`` the value
  reaches, else ``below``.  Bands are checked at load to give never fewer points for a
  higher value, so raising an indicator never lowers the composite.
* **Which one (decision for issue 7).**  The model file's top-level ``normalise``
  (an indicator may override it; ``load_grade_model(normalise=…)``, the CLI's
  ``--normalise``, overrides both).  The packaged model keeps SPEC D's percentile
  default and carries calibrated bands for every indicator, so thresholds are one switch
  away.  Percentile composites bunch around 50 (the mean of several ranks), so the
  usual shares (VIP ~5 %, 休眠 ~15 %) are not met — on the sample VIP ≈ 2 %, 休眠 ≈ 42 %.
  That is reported as one explanation (:attr:`GradeResult.share_gap`, also one warning)
  that says how far off the shares are, why, and what to do — with the shares
  ``--normalise thresholds`` would give on the same file — and the CLI shows it before
  anything else (issue 14); a share is "far off" beyond ``share_tolerance_pct`` points *or* outside
  ``usual ÷ ratio … usual × ratio`` (so VIP at 1 % against 5 % is flagged although only
  4 points apart).
* **Exact composite.** Each indicator score is rounded half-up to 2 decimals (the
  number shown); the composite is ``Σ shown score × weight ÷ Σ weights used``, computed in
  integers (scores in hundredths, weights in units of 0.0001) and rounded half-up to 2
  decimals; that shown value is compared with the band minimums.  So 90.00 is VIP,
  89.99 is 核心, and a user who recomputes the composite in Excel from the shown
  indicator scores gets the same number and grade.
* **Overrides.** A manual grade always wins over the computed one (up or down); the
  computed grade stays visible, and the override's reason (required), who and when are
  carried in the result and its :attr:`GradeResult.audit`.  Among several overrides for
  one customer the one with the latest ``at`` wins (one without ``at`` counts as the
  oldest); two without a distinguishable ``at`` are an error (row order must not
  decide).  Overrides dated after ``as_of``
  are not yet in force, and those with an ``until`` before ``as_of`` have expired; both
  are reported as warnings.
* **Changes.** :func:`compare` lists upgrades and downgrades of the *final* grade
  against the previous grading, and for every downgrade (only downgrades) the data
  a 降级说明函 needs: the basis, the indicators that moved most, and what restores the
  grade (composite needed, and per indicator the score — and, approximately, the value
  — that alone would close the gap).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tierctl.errors import InputError, ModelError, Problem
from tierctl.models.loader import Section

# Weights are exact decimals with at most 4 places; internally integers in 0.0001 units.
WEIGHT_PLACES = 4
WEIGHT_SCALE = 10**WEIGHT_PLACES
# Scores and the composite are integers in hundredths: 100.00 → 10000.
FULL = 10000

Normalise = Literal["percentile", "thresholds"]
NORMALISE = ("percentile", "thresholds")
BlankPolicy = Literal["zero", "reweight", "error"]

_COLUMN_KINDS = ("text", "int", "number", "date", "bool")

# How each indicator value came about, per customer (used only to explain it).
_SRC_GIVEN, _SRC_DERIVED, _SRC_ZERO, _SRC_NONE = 0, 1, 2, 3


# =======================================================================================
# Model
# =======================================================================================


@dataclass(frozen=True)
class ColumnSpec:
    """One input column the model reads (see docs/CONVENTIONS.md)."""

    name: str
    kind: str
    aliases: tuple[str, ...]
    required: bool = False
    unique: bool = False
    min: Decimal | None = None
    max: Decimal | None = None


@dataclass(frozen=True)
class Ratio:
    """Derive a value as ``numerator / denominator`` (undefined when the denominator ≤ 0)."""

    numerator: str
    denominator: str
    type: str = "ratio"

    @property
    def sources(self) -> tuple[str, ...]:
        return (self.numerator, self.denominator)

    def describe(self, model: GradeModel) -> str:
        return f"由{model.column_label(self.numerator)}÷{model.column_label(self.denominator)}推算"


@dataclass(frozen=True)
class YearsSince:
    """Derive years as completed calendar months since a date, ÷ 12 (anniversary-exact)."""

    column: str
    type: str = "years_since"

    @property
    def sources(self) -> tuple[str, ...]:
        return (self.column,)

    def describe(self, model: GradeModel) -> str:
        return f"由{model.column_label(self.column)}推算"


Derive = Ratio | YearsSince


@dataclass(frozen=True)
class Band:
    """A threshold band: a value ≥ ``min`` earns ``points`` (hundredths in ``points_h``)."""

    min: Decimal
    points: Decimal

    @property
    def points_h(self) -> int:
        return int(self.points * 100)


@dataclass(frozen=True)
class Indicator:
    """One indicator of the composite, as declared under ``[indicators.<key>]``."""

    key: str
    label: str
    label_en: str
    group: str
    unit: str
    column: str
    weight: Decimal
    normalise: Normalise
    required: bool
    blank: BlankPolicy
    actionable: bool
    derive: Derive | None = None
    bands: tuple[Band, ...] = ()  # highest min first
    short: str = ""  # a column header for narrow tables (defaults to the label)
    below: Decimal = Decimal(0)

    @property
    def weight_units(self) -> int:
        """The weight in units of 0.0001 (exact)."""
        return int(self.weight * WEIGHT_SCALE)

    @property
    def score_column(self) -> str:
        return f"{self.key}_score"

    @property
    def value_column(self) -> str:
        return f"{self.key}_value"


@dataclass(frozen=True)
class GradeBand:
    """A grade and its lower bound on the composite (inclusive)."""

    name: str
    name_en: str
    min: Decimal
    usual_share_pct: Decimal | None
    aliases: tuple[str, ...]
    description: str = ""

    @property
    def min_h(self) -> int:
        return int(self.min * 100)


@dataclass(frozen=True)
class GradeModel:
    """A loaded, validated grading model (see ``tierctl/models/grade.toml``)."""

    name: str
    title: str
    path: Path
    columns: dict[str, ColumnSpec]
    indicators: tuple[Indicator, ...]
    grades: tuple[GradeBand, ...]  # highest first, as written in the file
    share_tolerance_pct: Decimal = Decimal(10)
    share_tolerance_ratio: Decimal = Decimal(2)
    percentile_min_customers: int = 20
    share_min_customers: int = 100
    letter_top_indicators: int = 2

    @property
    def normalise(self) -> str:
        """``percentile``, ``thresholds`` or ``mixed`` (indicators scored both ways)."""
        modes = {i.normalise for i in self.indicators}
        return modes.pop() if len(modes) == 1 else "mixed"

    def indicator(self, key: str) -> Indicator:
        for ind in self.indicators:
            if ind.key == key:
                return ind
        raise KeyError(key)

    def column_label(self, column: str) -> str:
        """The first (Chinese) alias of a column, for messages."""
        spec = self.columns.get(column)
        return spec.aliases[0] if spec and spec.aliases else column

    @property
    def grade_names(self) -> list[str]:
        """Grade names from the highest to the lowest."""
        return [g.name for g in self.grades]

    @property
    def categories(self) -> list[str]:
        """Grade names from the lowest to the highest (ordered categorical order)."""
        return self.grade_names[::-1]

    def rank(self, grade: object) -> int | None:
        """Position of a grade, 0 = lowest; accepts names and aliases; ``None`` if unknown."""
        if not isinstance(grade, str):
            return None
        return self._lookup.get(_norm_name(grade))

    def ranks(self, grades: pd.Series) -> np.ndarray:
        """:meth:`rank` for a whole column (float, NaN where unknown), once per distinct name."""
        codes, uniq = pd.factorize(grades.astype(object), use_na_sentinel=True)
        lut = np.array([np.nan if (r := self.rank(u)) is None else r for u in uniq] + [np.nan], dtype=float)
        return lut[codes]  # code -1 (blank) picks the trailing NaN

    @cached_property
    def _lookup(self) -> dict[str, int]:
        out: dict[str, int] = {}
        top = len(self.grades) - 1
        for i, g in enumerate(self.grades):
            for n in (g.name, g.name_en, *g.aliases):
                if n:
                    out[_norm_name(n)] = top - i
        return out


def _norm_name(s: str) -> str:
    return s.strip().casefold()


def _places(d: Decimal) -> int:
    exp = d.normalize().as_tuple().exponent
    return max(0, -exp) if isinstance(exp, int) else 0


def load_grade_model(name_or_path: str | Path = "grade", *, normalise: str | None = None) -> GradeModel:
    """Load and validate a grading model: a packaged name (``grade``) or a path.

    Everything is checked here, so a bad file fails before any customer is graded,
    with the file and key named (:class:`ModelError`): weights are exact decimals > 0
    with at most 4 places summing to exactly 1; threshold bands give never fewer points
    for a higher value (checked whether or not they are in use); grades are written from
    the highest ``min`` down to 0.

    How indicators are normalised: the file's top-level ``normalise`` (default
    ``percentile``), which an indicator's own ``normalise`` overrides; ``normalise``
    given here (the CLI's ``--normalise``) overrides both, for every indicator — each
    must then carry ``bands`` when it is ``thresholds``.
    """
    if normalise is not None and normalise not in NORMALISE:
        raise ModelError(f"未知的评分方式「{normalise}」", hint="可选：percentile（百分位）| thresholds（阈值）")
    sec = Section.load(name_or_path, kind="grade")
    columns = _load_columns(sec)
    if "customer_id" not in columns:
        raise sec.error("columns", "必须声明 [columns.customer_id]")

    default_normalise = sec.choice("normalise", NORMALISE, "percentile")
    inds_sec = sec.section("indicators")
    indicators = [_load_indicator(inds_sec.section(key), key, columns, default_normalise, normalise)
                  for key in inds_sec.keys()]
    if not indicators:
        raise inds_sec.error(None, "至少需要一个指标")
    total = sum((i.weight for i in indicators), Decimal(0))
    if total != 1:
        raise inds_sec.error(None, f"各指标权重之和应正好为 1，现在是 {total}",
                             hint="例如 0.30 + 0.20 + 0.10 + 0.15 + 0.15 + 0.10 = 1")

    grades = _load_grades(sec)
    report = sec.section("report", {})
    letter = sec.section("letter", {})
    return GradeModel(
        name=sec.str("name", sec.path.stem),
        title=sec.str("title", ""),
        path=sec.path,
        columns=columns,
        indicators=tuple(indicators),
        grades=grades,
        share_tolerance_pct=report.decimal("share_tolerance_pct", Decimal(10), min=0, max=100),
        share_tolerance_ratio=report.decimal("share_tolerance_ratio", Decimal(2), min=1),
        percentile_min_customers=report.int("percentile_min_customers", 20, min=1),
        share_min_customers=report.int("share_min_customers", 100, min=1),
        letter_top_indicators=letter.int("top_indicators", 2, min=1),
    )


def _load_columns(sec: Section) -> dict[str, ColumnSpec]:
    cols = sec.section("columns")
    out: dict[str, ColumnSpec] = {}
    for name in cols.keys():
        c = cols.section(name)
        lo = c.decimal("min", None)
        hi = c.decimal("max", None)
        out[name] = ColumnSpec(
            name=name,
            kind=c.choice("kind", _COLUMN_KINDS),
            aliases=tuple(c.list("aliases", [], of=str)),
            required=c.bool("required", False),
            unique=c.bool("unique", False),
            min=lo,
            max=hi,
        )
    return out


def _load_indicator(s: Section, key: str, columns: dict[str, ColumnSpec], default_normalise: str = "percentile",
                    force: str | None = None) -> Indicator:
    column = s.str("column")
    if column not in columns:
        raise s.error("column", f"列「{column}」没有在 [columns] 中声明")
    if columns[column].kind not in ("int", "number"):
        raise s.error("column", f"指标列「{column}」应为 int 或 number 类型")

    weight = s.decimal("weight", max=1)
    if weight <= 0:
        raise s.error("weight", f"权重应大于 0，实际是 {weight}", hint="不用的指标请整段删除")
    if _places(weight) > WEIGHT_PLACES:
        raise s.error("weight", f"权重最多 {WEIGHT_PLACES} 位小数，实际是 {weight}")

    derive: Derive | None = None
    if "derive" in s:
        d = s.section("derive")
        t = d.choice("type", ("ratio", "years_since"))
        if t == "ratio":
            derive = Ratio(d.str("numerator"), d.str("denominator"))
            kinds: tuple[str, ...] = ("int", "number")
        else:
            derive = YearsSince(d.str("column"))
            kinds = ("date",)
        for src in derive.sources:
            if src not in columns:
                raise d.error(None, f"推算用的列「{src}」没有在 [columns] 中声明")
            if columns[src].kind not in kinds:
                raise d.error(None, f"推算用的列「{src}」应为 {' 或 '.join(kinds)} 类型")

    normalise = s.choice("normalise", NORMALISE, default_normalise) if force is None else force
    bands: tuple[Band, ...] = ()
    below = s.decimal("below", Decimal(0), min=0, max=100)
    if "bands" in s:  # checked even when unused, so switching to thresholds never meets a bad file
        parsed = []
        for b in s.sections("bands"):
            pts = b.decimal("points", min=0, max=100)
            if _places(pts) > 2:
                raise b.error("points", f"分数最多 2 位小数，实际是 {pts}")
            parsed.append(Band(b.decimal("min"), pts))
        if not parsed:
            raise s.error("bands", "bands 至少需要一档")
        parsed.sort(key=lambda b: b.min, reverse=True)
        for hi, lo in zip(parsed, parsed[1:], strict=False):
            if hi.min == lo.min:
                raise s.error("bands", f"有两档的 min 都是 {hi.min}")
            if hi.points < lo.points:
                raise s.error("bands", f"min 更高的档（{hi.min}）分数反而更低（{hi.points} < {lo.points}）",
                              hint="分档应保证数值越高得分不降低")
        if below > parsed[-1].points:
            raise s.error("below", f"below（{below}）高于最低一档的分数（{parsed[-1].points}）")
        bands = tuple(parsed)
    if normalise == "thresholds" and not bands:
        how = "--normalise thresholds 要求" if force is not None else "normalise = \"thresholds\" 时"
        raise s.error("bands", f"{how}每个指标都写明分档 bands（{s.str('label', key)}没有）",
                      hint="例如 bands = [ { min = 9, points = 100 }, { min = 7, points = 70 } ]")
    if _places(below) > 2:
        raise s.error("below", f"分数最多 2 位小数，实际是 {below}")

    return Indicator(
        key=key,
        label=s.str("label", key),
        label_en=s.str("label_en", key),
        short=s.str("short", s.str("label", key)),
        group=s.str("group", ""),
        unit=s.str("unit", ""),
        column=column,
        weight=weight,
        normalise=normalise,  # type: ignore[arg-type]
        required=s.bool("required", True),
        blank=s.choice("blank", ("zero", "reweight", "error"), "reweight"),  # type: ignore[arg-type]
        actionable=s.bool("actionable", True),
        derive=derive,
        bands=bands,
        below=below,
    )


def _load_grades(sec: Section) -> tuple[GradeBand, ...]:
    out: list[GradeBand] = []
    seen: dict[str, str] = {}
    for g in sec.sections("grades"):
        name = g.str("name").strip()
        if not name:
            raise g.error("name", "等级名称不能为空")
        lo = g.decimal("min", min=0, max=100)
        if _places(lo) > 2:
            raise g.error("min", f"下限最多 2 位小数，实际是 {lo}")
        band = GradeBand(
            name=name,
            name_en=g.str("name_en", ""),
            min=lo,
            usual_share_pct=g.decimal("usual_share_pct", None, min=0, max=100),
            aliases=tuple(g.list("aliases", [], of=str)),
            description=g.str("description", ""),
        )
        for n in (band.name, band.name_en, *band.aliases):
            if not n:
                continue
            k = _norm_name(n)
            if k in seen and seen[k] != name:
                raise g.error("aliases", f"「{n}」同时指向「{seen[k]}」和「{name}」两个等级")
            seen[k] = name
        if out and lo >= out[-1].min:
            raise g.error("min", f"等级应从高到低书写，「{name}」的下限 {lo} 不低于上一级「{out[-1].name}」的 {out[-1].min}")
        out.append(band)
    if len(out) < 2:
        raise sec.error("grades", "至少需要两个等级")
    if out[-1].min != 0:
        raise sec.error("grades", f"最低一级「{out[-1].name}」的下限应为 0，实际是 {out[-1].min}")
    shares = [g.usual_share_pct for g in out if g.usual_share_pct is not None]
    if len(shares) == len(out):
        total = sum(shares, Decimal(0))
        if total != 100:
            raise sec.error("grades", f"各等级 usual_share_pct 之和应为 100，现在是 {total}")
    return tuple(out)


# =======================================================================================
# Normalisation
# =======================================================================================


def _percentile_h(values: np.ndarray) -> np.ndarray:
    """Percentile scores in hundredths (int64, rounded half-up); -1 where the value is NaN.

    ``100 × (below + (equal − 1)/2) / (n − 1)``, done in integers:
    ``num = 2·below + equal − 1`` and ``den = 2·(n − 1)``, so hundredths =
    ``round_half_up(10000·num/den) = (20000·num + den) // (2·den)``.
    """
    out = np.full(len(values), -1, dtype=np.int64)
    valid = ~np.isnan(values)
    x = values[valid]
    n = len(x)
    if n == 0:
        return out
    if n == 1:
        out[valid] = FULL // 2
        return out
    uniq, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    below = np.cumsum(counts) - counts
    num = 2 * below + counts - 1
    den = 2 * (n - 1)
    out[valid] = ((20000 * num + den) // (2 * den))[inv]
    return out


def percentile_rank(values: pd.Series | np.ndarray | list[float]) -> np.ndarray:
    """The percentile score (0–100, 2 decimals, NaN for NaN) of each value; ties share it."""
    arr = np.asarray(pd.to_numeric(pd.Series(values), errors="raise").to_numpy(dtype=float, na_value=np.nan))
    h = _percentile_h(arr)
    return np.where(h >= 0, h / 100, np.nan)


def _band_index(ind: Indicator, values: np.ndarray) -> np.ndarray:
    """Index into ``ind.bands`` (0 = highest) of the band each value reaches; -1 = below all."""
    mins_asc = np.array([float(b.min) for b in ind.bands[::-1]])
    i_asc = np.searchsorted(mins_asc, values, side="right") - 1
    return np.where(i_asc >= 0, len(ind.bands) - 1 - i_asc, -1)


def _thresholds_h(ind: Indicator, values: np.ndarray) -> np.ndarray:
    idx = _band_index(ind, values)
    pts = np.array([b.points_h for b in ind.bands] + [int(ind.below * 100)], dtype=np.int64)
    out = pts[idx]  # idx -1 picks the trailing "below" entry
    out[np.isnan(values)] = -1
    return out


# =======================================================================================
# Grading
# =======================================================================================


@dataclass
class GradeResult:
    """The grading of one export as of one date.

    ``customers`` keeps the input's order and index, one row per customer:
    ``customer_id`` (+ ``name``/``phone`` when given), ``composite`` (2 decimals),
    ``grade`` (final) and ``computed_grade`` (ordered categoricals, lowest grade first),
    ``overridden``, ``override_reason``/``override_by``/``override_at``, and for each
    indicator ``<key>_score`` (0–100, NaN when not counted for that customer) and
    ``<key>_value`` (the value that was ranked).
    """

    customers: pd.DataFrame
    model: GradeModel
    as_of: date
    weights: dict[str, Decimal]  # weights used, after re-weighting for missing indicators
    missing_indicators: list[str]
    distribution: pd.DataFrame  # grade, count, share_pct, usual_share_pct, diff_pct, flagged, computed_count
    warnings: list[str]
    audit: list[dict[str, Any]]  # one entry per override in force (plain JSON types)
    # Grade shares far from the usual ones, explained (plain JSON; None when they are
    # near): ``text`` (also in ``warnings``) and the same as ``lines``, ``flagged`` and ``usual`` (grade → %),
    # ``option`` and ``with_option`` (grade → % the computed grades would have with that
    # option on this same file; None when it cannot be said).
    share_gap: dict[str, Any] | None = None
    _sources: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _reasons: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def indicators(self) -> list[Indicator]:
        """The indicators that took part (missing optional ones left out)."""
        return [i for i in self.model.indicators if i.key in self.weights]

    @property
    def reasons(self) -> pd.DataFrame:
        """Why each customer got his composite: short Chinese texts, same index as
        ``customers``; one column per indicator (its value, score, weight and
        contribution, e.g. ``近12个月消费 12000元 → 85.2分（百分位）× 30% = 25.56``),
        then ``composite`` (the band reached) and ``override`` (NA when none).

        Built on first use (about a second per million customers): only ``why``, JSON
        and documents need them.
        """
        if self._reasons is None:
            self._reasons = _build_reasons(self)
        return self._reasons

    def reason_lists(self) -> list[list[str]]:
        """:attr:`reasons` as one list of texts per customer (NA left out)."""
        cols = [self.reasons[k].astype(object).tolist() for k in self.reasons.columns]
        return [[x for x in row if isinstance(x, str)] for row in zip(*cols, strict=True)]

    def to_json(self) -> dict[str, Any]:
        """The result as plain JSON types (what ``--format json`` prints)."""
        c = self.customers
        keys = [i.key for i in self.indicators]
        scores = {k: _plain_floats(c[f"{k}_score"]) for k in keys}
        values = {k: _plain_floats(c[f"{k}_value"]) for k in keys}
        ids = c["customer_id"].astype(object).tolist()
        names = _plain_obj(c["name"]) if "name" in c else [None] * len(c)
        comp = _plain_floats(c["composite"])
        grade = c["grade"].astype(object).tolist()
        computed = c["computed_grade"].astype(object).tolist()
        over = c["overridden"].tolist()
        o_reason = _plain_obj(c["override_reason"])
        o_by = _plain_obj(c["override_by"])
        o_at = _plain_obj(c["override_at"])
        reasons = self.reason_lists()
        customers = []
        for i in range(len(c)):
            customers.append({
                "customer_id": ids[i],
                "name": names[i],
                "composite": comp[i],
                "grade": grade[i],
                "computed_grade": computed[i],
                "overridden": bool(over[i]),
                "override": ({"reason": o_reason[i], "by": o_by[i], "at": o_at[i]} if over[i] else None),
                "indicators": {k: scores[k][i] for k in keys},
                "values": {k: values[k][i] for k in keys},
                "reasons": reasons[i],
            })
        return {
            "model": self.model.name,
            "as_of": self.as_of.isoformat(),
            "count": len(c),
            "share_gap": self.share_gap,
            "weights": {k: float(w) for k, w in self.weights.items()},
            "missing_indicators": list(self.missing_indicators),
            "distribution": _records(self.distribution),
            "warnings": list(self.warnings),
            "audit": list(self.audit),
            "customers": customers,
        }


def grade_customers(
    frame: pd.DataFrame,
    model: GradeModel,
    as_of: date,
    *,
    overrides: pd.DataFrame | None = None,
    path: str | Path | None = None,
    overrides_path: str | Path | None = None,
    headers: dict[str, str] | None = None,
) -> GradeResult:
    """Grade every customer of ``frame`` as of ``as_of``.

    ``frame`` has the model's canonical column names (``customer_id``, ``spend_12m`` …)
    and, when it comes from the ingest, ``_row`` with Excel row numbers for messages.
    ``overrides`` has ``customer_id``, ``grade``, ``reason`` (required) and optionally
    ``by``, ``at`` (when it was decided) and ``until`` (expiry date).  ``path`` and
    ``overrides_path`` only name the files in error messages; ``headers`` (canonical
    name → the header as the file spells it, :attr:`Export.headers`) makes messages and
    reasons name a column the way the user's file does.

    Raises :class:`InputError` (all bad cells at once, with Excel rows) for blank or
    duplicated customer ids, non-numeric or out-of-range values, first visits after
    ``as_of``, a missing required indicator, and bad override rows.
    """
    as_of = _as_date(as_of)
    if headers:
        model = _with_headers(model, headers)
    n = len(frame)
    if n == 0:
        raise InputError("导出中没有客户数据", path=path, hint="检查是否选错了工作表或文件")
    rows = _excel_rows(frame)
    ids = _customer_ids(frame, rows, path)
    warnings: list[str] = []
    problems: list[Problem] = []

    # -- 1. the value of each indicator --------------------------------------------------
    raw: dict[str, np.ndarray] = {}
    sources: dict[str, np.ndarray] = {}
    missing: list[Indicator] = []
    for ind in model.indicators:
        got = _indicator_values(ind, model, frame, as_of, rows, problems)
        if got is None:
            missing.append(ind)
            continue
        raw[ind.key], sources[ind.key] = got
    if problems:
        raise InputError("导出文件中有无法评分的数据", path=path, problems=problems,
                         hint="改正这些单元格后重新运行")

    missing_required = [i for i in missing if i.required]
    if missing_required:
        raise InputError(
            "缺少必需的指标：" + "；".join(_missing_text(i, model) for i in missing_required),
            path=path, hint="在导出中加上这些列（表头可用上面任一写法），或在模型文件中把该指标设为 required = false")
    if len(missing) == len(model.indicators):  # only possible when none is required
        raise InputError("导出中没有任何评分指标", path=path)

    # -- 2. blank cells --------------------------------------------------------------------
    for ind in model.indicators:
        if ind.key not in raw:
            continue
        v, src = raw[ind.key], sources[ind.key]
        blank = np.isnan(v)
        nb = int(blank.sum())
        if not nb:
            continue
        if ind.blank == "zero":
            v[blank] = 0.0
            src[blank] = _SRC_ZERO
            warnings.append(f"{ind.label}：{nb} 位客户为空，按 0 计")
        elif ind.blank == "reweight":
            src[blank] = _SRC_NONE
            warnings.append(f"{ind.label}：{nb} 位客户为空，这些客户不计该指标，其余指标按比例分配权重")
        else:
            for r, cid in zip(rows[blank][:20].tolist(), ids[blank][:20].tolist(), strict=True):
                problems.append(Problem(r, model.column_label(ind.column), None,
                                        f"客户 {cid} 的{ind.label}为空"))
            raise InputError(f"{ind.label}不能为空", path=path, problems=problems, total=nb,
                             hint="补全这些单元格，或在模型文件中把该指标的 blank 改为 zero / reweight")

    # -- 3. scores, composite, grade --------------------------------------------------------
    present = [i for i in model.indicators if i.key in raw]
    num = np.zeros(n, dtype=np.int64)
    wsum = np.zeros(n, dtype=np.int64)
    scores: dict[str, np.ndarray] = {}
    few: list[str] = []
    for ind in present:
        v = raw[ind.key]
        if ind.normalise == "percentile":
            h = _percentile_h(v)
            nv = int((~np.isnan(v)).sum())
            if nv < model.percentile_min_customers:
                few.append(f"{ind.label} {nv} 位")
        else:
            h = _thresholds_h(ind, v)
        scores[ind.key] = h
        counted = h >= 0
        w = ind.weight_units
        num += np.where(counted, h * w, 0)
        wsum += np.where(counted, w, 0)
    if few:
        warnings.append(f"参与百分位排名的客户较少（{'、'.join(few)}），分数较粗，仅供参考")
    nothing = wsum == 0
    if nothing.any():
        bad = [Problem(r, None, cid, "该客户所有评分指标都为空，无法计算综合分")
               for r, cid in zip(rows[nothing][:20].tolist(), ids[nothing][:20].tolist(), strict=True)]
        raise InputError("有客户无法评分", path=path, problems=bad, total=int(nothing.sum()))
    # round half-up of num/wsum (hundredths): exact, so 90.00 lands in VIP
    cents = (2 * num + wsum) // (2 * wsum)

    mins_low = np.array([g.min_h for g in model.grades[::-1]], dtype=np.int64)
    computed = np.searchsorted(mins_low, cents, side="right") - 1  # 0 = lowest grade

    # -- 4. overrides --------------------------------------------------------------------------
    final = computed.copy()
    o_reason = np.full(n, None, dtype=object)
    o_by = np.full(n, None, dtype=object)
    o_at = np.full(n, None, dtype=object)
    overridden = np.zeros(n, dtype=bool)
    audit: list[dict[str, Any]] = []
    if overrides is not None and len(overrides):
        ov = _validate_overrides(overrides, model, as_of, ids, overrides_path, warnings)
        pos = ov["_pos"].to_numpy()
        final[pos] = ov["_rank"].to_numpy()
        overridden[pos] = True
        o_reason[pos] = ov["reason"].to_numpy(dtype=object)
        o_by[pos] = ov["_by"].to_numpy(dtype=object)
        o_at[pos] = ov["_at_iso"].to_numpy(dtype=object)
        cats = model.categories
        for p, g, r, b, a in zip(pos.tolist(), ov["_rank"].tolist(), ov["reason"].tolist(),
                                 ov["_by"].tolist(), ov["_at_iso"].tolist(), strict=True):
            audit.append({
                "customer_id": str(ids.iat[p]),
                "computed_grade": cats[computed[p]],
                "grade": cats[g],
                "composite": int(cents[p]) / 100,
                "reason": r,
                "by": b,
                "at": a,
            })
        audit.sort(key=lambda a: a["customer_id"])

    # -- 5. result frame -----------------------------------------------------------------------
    cats = model.categories
    out: dict[str, Any] = {"customer_id": ids.array}
    for extra in ("name", "phone"):  # text, never numbers: phone numbers keep leading zeros
        if extra in frame.columns:
            out[extra] = frame[extra].astype("string").array
    out["composite"] = cents / 100
    out["grade"] = pd.Categorical.from_codes(final, categories=cats, ordered=True)
    out["computed_grade"] = pd.Categorical.from_codes(computed, categories=cats, ordered=True)
    out["overridden"] = overridden
    out["override_reason"] = o_reason
    out["override_by"] = o_by
    out["override_at"] = o_at
    for ind in present:
        h = scores[ind.key]
        out[ind.score_column] = np.where(h >= 0, h / 100, np.nan)
        out[ind.value_column] = np.where(h >= 0, raw[ind.key], np.nan)
    customers = pd.DataFrame(out, index=frame.index)

    # -- 6. weights used, distribution -----------------------------------------------------
    total_w = sum(i.weight_units for i in present)
    weights = {i.key: (Decimal(i.weight_units) / Decimal(total_w)).quantize(Decimal("0.0001"), ROUND_HALF_UP)
               for i in present}
    if missing:
        used = "、".join(f"{i.label} {weights[i.key] * 100:.2f}%" for i in present)
        warnings.append("缺少指标：" + "；".join(_missing_text(i, model) for i in missing)
                        + f"。其余指标按比例重新分配权重：{used}")
    distribution = _distribution(model, final, computed)
    gap = _share_gap(model, present, distribution, cents, raw)
    if gap:
        warnings.append(gap["text"])

    return GradeResult(
        customers=customers,
        model=model,
        as_of=as_of,
        weights=weights,
        missing_indicators=[i.key for i in missing],
        distribution=distribution,
        warnings=warnings,
        audit=audit,
        share_gap=gap,
        _sources=sources,
    )


def _with_headers(model: GradeModel, headers: dict[str, str]) -> GradeModel:
    """The model with each column's file header first among its aliases, so
    :meth:`GradeModel.column_label` (messages, reasons) uses the user's spelling."""
    cols = {}
    for name, spec in model.columns.items():
        h = headers.get(name)
        if h and spec.aliases[:1] != (h,):
            spec = replace(spec, aliases=(h, *[a for a in spec.aliases if a != h]))
        cols[name] = spec
    return replace(model, columns=cols)


def _missing_text(ind: Indicator, model: GradeModel) -> str:
    heads = "、".join(model.columns[ind.column].aliases[:4]) or ind.column
    text = f"{ind.label}（表头可写 {heads}"
    if ind.derive is not None:
        srcs = "、".join(model.column_label(s) for s in ind.derive.sources)
        text += f"；或提供 {srcs} 以推算"
    return text + "）"


def _as_date(d: date | datetime | pd.Timestamp | str) -> date:
    if isinstance(d, pd.Timestamp):
        return d.date()
    if isinstance(d, datetime):
        return d.date()
    if isinstance(d, date):
        return d
    return pd.Timestamp(d).date()


def _excel_rows(frame: pd.DataFrame) -> np.ndarray:
    """Excel row numbers (object array; ``None`` when the frame did not come from ingest)."""
    if "_row" in frame.columns:
        return frame["_row"].astype(object).to_numpy()
    return np.full(len(frame), None, dtype=object)


def _customer_ids(frame: pd.DataFrame, rows: np.ndarray, path: str | Path | None) -> pd.Series:
    """The customer ids as a string Series (positional index); blank or duplicated → error."""
    if "customer_id" not in frame.columns:
        raise InputError("导出中没有客户编号列", path=path,
                         hint="表头写成 客户编号 / 客户ID / customer_id 之一")
    s = frame["customer_id"].astype("string").str.strip().reset_index(drop=True)
    problems: list[Problem] = []
    blank = (s.isna() | (s == "")).to_numpy(dtype=bool)
    for r in rows[blank][:20].tolist():
        problems.append(Problem(r, "客户编号", None, "客户编号为空"))
    dup = s.duplicated(keep=False).to_numpy(dtype=bool) & ~blank
    if dup.any():
        for r, v in zip(rows[dup][:20].tolist(), s[dup][:20].tolist(), strict=True):
            problems.append(Problem(r, "客户编号", v, "客户编号重复（同一客户出现多行，请合并或删除重复行）"))
    if problems:
        raise InputError("客户编号有问题", path=path, problems=problems,
                         total=int(blank.sum() + dup.sum()))
    return s


def _numeric(frame: pd.DataFrame, col: str, spec: ColumnSpec, label: str,
             rows: np.ndarray, problems: list[Problem]) -> np.ndarray:
    """A column as float64 with NaN for blanks; bad cells appended to ``problems``."""
    s = frame[col]
    if pd.api.types.is_bool_dtype(s.dtype) or not pd.api.types.is_numeric_dtype(s.dtype):
        text = s.astype("string").str.strip()
        conv = pd.to_numeric(text.replace("", pd.NA), errors="coerce")
        bad = (conv.isna() & text.notna() & (text != "")).to_numpy(dtype=bool)
        for r, v in zip(rows[bad][:20].tolist(), text[bad][:20].tolist(), strict=True):
            problems.append(Problem(r, label, v, "不是数字"))
        v = conv.to_numpy(dtype=float, na_value=np.nan)
    else:
        v = s.to_numpy(dtype=float, na_value=np.nan).copy()
    with np.errstate(invalid="ignore"):
        inf = np.isinf(v)
        low = v < float(spec.min) if spec.min is not None else np.zeros(len(v), bool)
        high = v > float(spec.max) if spec.max is not None else np.zeros(len(v), bool)
    for mask, msg in ((inf, "不是有限的数字"), (low, f"不能小于 {spec.min}"), (high, f"不能大于 {spec.max}")):
        if mask.any():
            for r, val in zip(rows[mask][:20].tolist(), v[mask][:20].tolist(), strict=True):
                problems.append(Problem(r, label, _fmt_num(val), msg))
    v[inf] = np.nan
    return v


def _years_since(frame: pd.DataFrame, col: str, label: str, as_of: date,
                 rows: np.ndarray, problems: list[Problem]) -> np.ndarray:
    """Completed calendar months from the date to ``as_of``, ÷ 12; NaN for blank dates."""
    s = frame[col]
    if not pd.api.types.is_datetime64_any_dtype(s.dtype):
        parsed = pd.to_datetime(s, errors="coerce")
        bad = (parsed.isna() & s.notna()).to_numpy(dtype=bool)
        for r, v in zip(rows[bad][:20].tolist(), s[bad][:20].tolist(), strict=True):
            problems.append(Problem(r, label, v, "不是日期"))
        s = parsed
    if getattr(s.dt, "tz", None) is not None:
        s = s.dt.tz_localize(None)
    d = s.to_numpy(dtype="datetime64[D]")
    nat = np.isnat(d)
    month = d.astype("datetime64[M]")
    day = (d - month.astype("datetime64[D]")).astype(np.int64) + 1
    a = np.datetime64(as_of, "D")
    a_month = a.astype("datetime64[M]")
    a_day = int((a - a_month.astype("datetime64[D]")).astype(np.int64)) + 1
    months = (a_month - month).astype(np.int64) - (a_day < day)
    future = (d > a) & ~nat
    for r, v in zip(rows[future][:20].tolist(), d[future][:20].tolist(), strict=True):
        problems.append(Problem(r, label, str(v), f"晚于评估日 {as_of.isoformat()}（检查日期，或用 --as-of 指定评估日）"))
    out = months.astype(float) / 12
    out[nat] = np.nan
    return out


def _indicator_values(ind: Indicator, model: GradeModel, frame: pd.DataFrame, as_of: date,
                      rows: np.ndarray, problems: list[Problem]) -> tuple[np.ndarray, np.ndarray] | None:
    """The values of one indicator and how each came about; ``None`` when unavailable."""
    n = len(frame)
    has_col = ind.column in frame.columns
    can_derive = ind.derive is not None and all(c in frame.columns for c in ind.derive.sources)
    if not has_col and not can_derive:
        return None
    if has_col:
        v = _numeric(frame, ind.column, model.columns[ind.column], model.column_label(ind.column), rows, problems)
    else:
        v = np.full(n, np.nan)
    src = np.full(n, _SRC_GIVEN, dtype=np.int8)
    if can_derive:
        blank = np.isnan(v)
        if blank.any():
            d = _derive(ind.derive, model, frame, as_of, rows, problems)  # type: ignore[arg-type]
            fill = blank & ~np.isnan(d)
            v[fill] = d[fill]
            src[fill] = _SRC_DERIVED
    if np.isnan(v).all():
        return None  # an entirely blank column tells us nothing: treat as missing
    return v, src


def _derive(rule: Derive, model: GradeModel, frame: pd.DataFrame, as_of: date,
            rows: np.ndarray, problems: list[Problem]) -> np.ndarray:
    if isinstance(rule, Ratio):
        a = _numeric(frame, rule.numerator, model.columns[rule.numerator],
                     model.column_label(rule.numerator), rows, problems)
        b = _numeric(frame, rule.denominator, model.columns[rule.denominator],
                     model.column_label(rule.denominator), rows, problems)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)
    return _years_since(frame, rule.column, model.column_label(rule.column), as_of, rows, problems)


def _validate_overrides(ov: pd.DataFrame, model: GradeModel, as_of: date, ids: pd.Series,
                        path: str | Path | None, warnings: list[str]) -> pd.DataFrame:
    """Check override rows; return those in force, one per graded customer.

    Columns added: ``_pos`` (position in the graded frame), ``_rank`` (grade, 0 =
    lowest), ``_by``, ``_at_iso``.
    """
    need = [c for c in ("customer_id", "grade", "reason") if c not in ov.columns]
    if need:
        raise InputError(f"人工调整缺少列：{', '.join(need)}", path=path,
                         hint="人工调整需要 客户编号、等级、原因 三列")
    ov = ov.copy()
    rows = _excel_rows(ov)
    problems: list[Problem] = []
    cid = ov["customer_id"].astype("string").str.strip()
    reason = ov["reason"].astype("string").str.strip()
    ov["customer_id"] = cid
    ov["reason"] = reason
    ranks = [model.rank(g) for g in ov["grade"].tolist()]
    options = "、".join(model.grade_names)
    for r, c, g, rk, why in zip(rows.tolist(), cid.tolist(), ov["grade"].tolist(), ranks,
                                reason.tolist(), strict=True):
        who = f"客户 {c} " if c is not pd.NA and c else ""
        if c is pd.NA or not c:
            problems.append(Problem(r, "客户编号", None, "人工调整的客户编号为空"))
        if rk is None:
            problems.append(Problem(r, "等级", None if g is pd.NA else g, f"{who}不是有效等级，可选：{options}"))
        if why is pd.NA or not why:
            problems.append(Problem(r, "原因", None, f"{who}人工调整必须写明原因"))
    at = _timestamps(ov, "at", rows, problems)
    until = _timestamps(ov, "until", rows, problems)
    if problems:
        raise InputError("人工调整有问题", path=path, problems=problems,
                         hint="每条人工调整都要有客户编号、有效等级和原因")

    ov["_rank"] = ranks
    by = ov["by"].astype("string").str.strip() if "by" in ov.columns else pd.Series(pd.NA, index=ov.index)
    ov["_by"] = [None if (b is pd.NA or not b) else b for b in by.tolist()]
    ov["_at"] = at
    ov["_at_iso"] = [None if pd.isna(t) else t.isoformat() for t in at.tolist()]

    # decided after the as-of date, or expired before it: not in force for this grading
    later = np.array([not pd.isna(t) and t.date() > as_of for t in at.tolist()], dtype=bool)
    expired = np.array([not pd.isna(t) and t.date() < as_of for t in until.tolist()], dtype=bool)
    for mask, text in ((later, f"晚于评估日 {as_of.isoformat()} 才作出，本次不生效"),
                       (expired, f"已于评估日 {as_of.isoformat()} 前到期，本次不生效")):
        if mask.any():
            warnings.append(f"{int(mask.sum())} 条人工调整{text}：" + _some(ov.loc[mask, "customer_id"]))
    ov = ov[~(later | expired)]

    # several in force for one customer: the latest decision wins; a tie (or no times at
    # all) cannot be resolved without letting row order decide, so it is an error
    if ov["customer_id"].duplicated().any():
        latest = ov.groupby("customer_id")["_at"].transform("max")
        top = ov[(ov["_at"] == latest) | (ov["_at"].isna() & latest.isna())]
        clash = top["customer_id"].duplicated(keep=False)
        if clash.any():
            bad = [Problem(r, "客户编号", c, "同一客户有多条人工调整且时间相同（或都没写时间），无法判断以哪条为准")
                   for r, c in zip(_excel_rows(top[clash]).tolist(), top.loc[clash, "customer_id"].tolist(),
                                   strict=True)]
            raise InputError("人工调整有冲突", path=path, problems=bad, hint="删除多余的一条，或写明调整时间")
        ov = top

    pos = pd.Index(ids).get_indexer(ov["customer_id"].to_numpy(dtype=object))
    unknown = pos < 0
    if unknown.any():
        warnings.append(f"{int(unknown.sum())} 条人工调整的客户不在本次导出中，未生效：" + _some(ov.loc[unknown, "customer_id"]))
    ov = ov[~unknown].copy()
    ov["_pos"] = pos[~unknown]
    return ov


def _timestamps(ov: pd.DataFrame, col: str, rows: np.ndarray, problems: list[Problem]) -> pd.Series:
    if col not in ov.columns:
        return pd.Series(pd.NaT, index=ov.index, dtype="datetime64[ns]")
    s = ov[col]
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return s
    blank = s.isna() | (s.astype("string").str.strip() == "")
    try:
        parsed = pd.to_datetime(s.where(~blank), errors="coerce", format="mixed")
    except ValueError:  # times with different UTC offsets: compare them on one clock
        parsed = pd.to_datetime(s.where(~blank), errors="coerce", format="mixed", utc=True)
    bad = (parsed.isna() & ~blank).to_numpy(dtype=bool)
    label = {"at": "调整时间", "until": "有效期至"}[col]
    for r, v in zip(rows[bad].tolist(), s[bad].tolist(), strict=True):
        problems.append(Problem(r, label, v, "不是日期/时间"))
    return parsed


def _some(ids: pd.Series, k: int = 10) -> str:
    vals = sorted(str(x) for x in ids.tolist())
    more = f" 等 {len(vals)} 位" if len(vals) > k else ""
    return "、".join(vals[:k]) + more


def _share_gap(model: GradeModel, present: list[Indicator], dist: pd.DataFrame, cents: np.ndarray,
               raw: dict[str, np.ndarray]) -> dict[str, Any] | None:
    """Grade shares far from the usual ones: how far, why, and the option that changes it.

    Why this matters (issues 7 and 14): percentile scores are ranks against the other
    customers, and the mean of several ranks bunches around 50 — only customers near the
    top in nearly every indicator reach 90, and everyone a little below the middle lands
    under 45.  That is arithmetic, not bad data, and a manager reading "VIP 1%, 休眠 40%"
    needs to be told so first, with the way out (``--normalise thresholds``) and what
    it would give on this very file (the same composite, each percentile indicator
    scored by its bands instead; overrides left out).
    """
    flagged = dist[dist["flagged"]]
    if flagged.empty:
        return None
    parts = "、".join(f"{r.grade} {r.share_pct:.1f}%（通常约 {r.usual_share_pct:g}%）"
                      for r in flagged.itertuples(index=False))
    lines = [f"等级占比与通常占比相差较大：{parts}。"]
    top, bottom = dist.iloc[0], dist.iloc[-1]
    narrow = (top["usual_share_pct"] is not None and bottom["usual_share_pct"] is not None
              and top["share_pct"] < top["usual_share_pct"] and bottom["share_pct"] > bottom["usual_share_pct"])
    pct_weight = sum(i.weight_units for i in present if i.normalise == "percentile")
    option = None
    with_option = None
    if narrow and pct_weight * 2 >= sum(i.weight_units for i in present):
        q1, med, q3 = (np.percentile(cents, [25, 50, 75]) / 100).tolist()
        option = "--normalise thresholds"
        with_option = _shares_with_thresholds(model, present, raw)
        lines.append(f"原因：百分位得分是与本次其他客户相比的相对名次，几项平均后综合分集中在 50 分附近"
                     f"（本次中位数 {med:.1f} 分，一半客户在 {q1:.1f}–{q3:.1f} 分之间），所以达到 "
                     f"{_fmt_num(float(model.grades[0].min))} 分的少、低于 {_fmt_num(float(model.grades[-2].min))} "
                     "分的多；这不是数据错误。")
        remedy = (f"若希望等级代表绝对水平、占比接近通常水平，可加 {option} 按模型文件中的阈值分档评分"
                  "（请先按本店价位核对各指标的 bands）")
        if with_option:
            remedy += "，本文件按阈值分档将是：" + "、".join(f"{g} {v:.1f}%" for g, v in with_option.items())
        lines.append(remedy + "；或在模型文件中调整各等级的 min。")
    else:
        lines.append("请核对模型文件中各指标的阈值分档（bands）是否符合本店的价位和评分量纲，或调整各等级的 min。")
    return {
        "text": "".join(lines),
        "lines": lines,
        "flagged": {r.grade: float(r.share_pct) for r in flagged.itertuples(index=False)},
        "usual": {str(r.grade): (None if r.usual_share_pct is None else float(r.usual_share_pct))
                  for r in dist.itertuples(index=False)},
        "option": option,
        "with_option": with_option,
    }


def _shares_with_thresholds(model: GradeModel, present: list[Indicator],
                            raw: dict[str, np.ndarray]) -> dict[str, float] | None:
    """Share of each grade (highest first, percent) if every percentile indicator were
    scored by its bands: the composite and the grade bounds as in the run itself."""
    if any(i.normalise == "percentile" and not i.bands for i in present):
        return None
    n = len(next(iter(raw.values())))
    num = np.zeros(n, dtype=np.int64)
    wsum = np.zeros(n, dtype=np.int64)
    for ind in present:
        h = _thresholds_h(ind, raw[ind.key])
        counted = h >= 0
        num += np.where(counted, h * ind.weight_units, 0)
        wsum += np.where(counted, ind.weight_units, 0)
    ok = wsum > 0
    cents = (2 * num[ok] + wsum[ok]) // (2 * wsum[ok])
    mins_low = np.array([g.min_h for g in model.grades[::-1]], dtype=np.int64)
    grade = np.searchsorted(mins_low, cents, side="right") - 1
    counts = np.bincount(grade, minlength=len(model.grades))[::-1]
    total = max(int(ok.sum()), 1)
    return {g.name: round(100 * int(c) / total, 2) for g, c in zip(model.grades, counts.tolist(), strict=True)}


def _distribution(model: GradeModel, final: np.ndarray, computed: np.ndarray) -> pd.DataFrame:
    g = len(model.grades)
    n = max(len(final), 1)
    counts = np.bincount(final, minlength=g)[::-1]  # highest grade first
    ccounts = np.bincount(computed, minlength=g)[::-1]
    rows = []
    tol = float(model.share_tolerance_pct)
    ratio = float(model.share_tolerance_ratio)
    for band, c, cc in zip(model.grades, counts.tolist(), ccounts.tolist(), strict=True):
        share = round(100 * c / n, 2)
        usual = None if band.usual_share_pct is None else float(band.usual_share_pct)
        diff = None if usual is None else round(share - usual, 2)
        rows.append({
            "grade": band.name,
            "count": int(c),
            "share_pct": share,
            "usual_share_pct": usual,
            "diff_pct": diff,
            "flagged": bool(usual is not None and diff is not None and len(final) >= model.share_min_customers
                            and (abs(diff) > tol or not usual / ratio <= share <= usual * ratio)),
            "computed_count": int(cc),
        })
    return pd.DataFrame(rows)


# =======================================================================================
# Explanations
# =======================================================================================


def _fmt_num(v: float | None) -> str:
    """A number as a manager writes it: 3000, 2.5, 1.83 (at most 2 decimals)."""
    if v is None or v != v:
        return "空"
    t = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if t == "-0" else t


def _txt(values: np.ndarray) -> pa.Array:
    """Numbers → text (2 decimals at most, no trailing zeros), null for NaN; vectorised.

    Arrow prints the shortest text that round-trips, so rounding first gives "2.5" and
    "3000" rather than "2.50" or "0.30000000000000004".
    """
    return pc.cast(pa.array(np.round(values, 2), from_pandas=True), pa.string())


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _build_reasons(res: GradeResult) -> pd.DataFrame:
    """One text column per indicator, then ``composite`` and ``override`` (NA if none)."""
    model, c = res.model, res.customers
    n = len(c)
    present = res.indicators
    counted = {i.key: c[i.score_column].notna().to_numpy() for i in present}
    wsum = np.zeros(n, dtype=np.int64)
    for i in present:
        wsum += np.where(counted[i.key], i.weight_units, 0)

    out: dict[str, Any] = {}
    for ind in present:
        score = c[ind.score_column].to_numpy(dtype=float)
        value = c[ind.value_column].to_numpy(dtype=float)
        src = res._sources.get(ind.key, np.zeros(n, dtype=np.int8))
        pct = ind.weight_units * 100 / np.maximum(wsum, 1)  # this customer's weight, in %
        if ind.normalise == "thresholds":
            idx = _band_index(ind, value)
            how = pa.array(np.array([f"≥{_fmt_num(float(b.min))}" for b in ind.bands] + ["低于最低档"],
                                    dtype=object)[idx])
        else:
            how = "百分位"
        derived = f"（{ind.derive.describe(model)}）" if ind.derive else ""
        note = pa.array(np.array(["", derived, "（空白按 0 计）", ""], dtype=object)[src])
        text = _join(f"{ind.label} ", _txt(value), f"{ind.unit}", note, " → ", _txt(score), "分（", how,
                     "）× ", _txt(pct), "% = ", _txt(score * pct / 100))
        text = pc.if_else(pa.array(np.isnan(score)), f"{ind.label}：空白，不计入，其余指标按比例分配权重", text)
        out[ind.key] = text

    mins = np.array([_fmt_num(float(g.min)) for g in model.grades[::-1]], dtype=object)
    codes = c["computed_grade"].cat.codes.to_numpy()
    out["composite"] = _join("综合分 ", _txt(c["composite"].to_numpy(dtype=float)), " → ",
                             pa.array(np.array(model.categories, dtype=object)[codes]), "（≥",
                             pa.array(mins[codes]), "）")

    over = c["overridden"].to_numpy(dtype=bool)
    notes = np.full(n, None, dtype=object)
    final = c["grade"].astype(object).to_numpy()
    computed = c["computed_grade"].astype(object).to_numpy()
    for p, g, cg, r, by, at in zip(np.flatnonzero(over).tolist(), final[over].tolist(), computed[over].tolist(),
                                   c["override_reason"].to_numpy(dtype=object)[over].tolist(),
                                   c["override_by"].to_numpy(dtype=object)[over].tolist(),
                                   c["override_at"].to_numpy(dtype=object)[over].tolist(), strict=True):
        extra = "".join(x for x in (by and f"；调整人 {by}", at and f"；时间 {at}") if x)
        notes[p] = f"人工调整为 {g}（系统评定 {cg}）：{r}{extra}"
    out["override"] = pa.array(notes, type=pa.string())
    return pd.DataFrame({k: pd.array(v, dtype="string") if isinstance(v, np.ndarray) else
                         pd.Series(v.to_pandas(), dtype="string").array for k, v in out.items()},
                        index=c.index)


# =======================================================================================
# Changes against the previous grading
# =======================================================================================


@dataclass
class GradeChanges:
    """Upgrades and downgrades of the final grade since the previous grading.

    ``upgrades``/``downgrades``: customer_id, name, prev_grade, grade, prev_composite,
    composite, overridden.  ``letters``: one dict per downgrade (plain JSON types) with
    what a 降级说明函 needs — ``basis`` (sentences), ``moved`` (the indicators that fell
    most, with their weighted effect on the composite) and ``restore`` (the composite
    the previous grade needs, the gap, and per actionable indicator the score — and
    approximately the value — that alone would close it).
    """

    upgrades: pd.DataFrame
    downgrades: pd.DataFrame
    letters: list[dict[str, Any]]
    new: list[str]
    gone: list[str]
    unchanged: int
    warnings: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "upgrades": _records(self.upgrades),
            "downgrades": self.letters,
            "new": list(self.new),
            "gone": list(self.gone),
            "unchanged": self.unchanged,
            "warnings": list(self.warnings),
        }


def _prev_scores(prev: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Indicator scores of the previous grading, from ``<key>_score`` columns or an
    ``indicators`` column of dicts / JSON text (how a store may keep them)."""
    out = pd.DataFrame(index=prev.index)
    nested = None
    if "indicators" in prev.columns:
        items = [json.loads(x) if isinstance(x, str) else (x if isinstance(x, dict) else {})
                 for x in prev["indicators"].tolist()]
        nested = pd.DataFrame(items, index=prev.index)
    for k in keys:
        for suffix in ("score", "value"):
            col = f"{k}_{suffix}"
            if col in prev.columns:
                out[col] = pd.to_numeric(prev[col], errors="coerce").astype(float)
            elif suffix == "score" and nested is not None and k in nested.columns:
                out[col] = pd.to_numeric(nested[k], errors="coerce").astype(float)
            else:
                out[col] = np.nan
    return out


def compare(prev: pd.DataFrame, curr: GradeResult) -> GradeChanges:
    """Changes of the final grade from ``prev`` (the previous grading) to ``curr``.

    ``prev`` needs ``customer_id`` and ``grade``; ``composite``, ``overridden``,
    ``override_reason`` and the indicator scores (``<key>_score`` columns, or an
    ``indicators`` column of dicts) make the letters richer.  The shape of
    :attr:`GradeResult.customers` is accepted as is.  Only downgrades get a letter;
    customers new in ``curr`` or gone from it are listed, not compared.
    """
    model = curr.model
    keys = [i.key for i in curr.indicators]
    warnings: list[str] = []
    if "customer_id" not in prev.columns or "grade" not in prev.columns:
        raise InputError("上次分级的数据缺少 customer_id 或 grade 列")
    p = pd.DataFrame({"customer_id": prev["customer_id"].astype("string").str.strip()}, index=prev.index)
    if p["customer_id"].duplicated().any():
        raise InputError("上次分级中有重复的客户编号：" + _some(p.loc[p["customer_id"].duplicated(), "customer_id"]))
    p["prev_rank"] = model.ranks(prev["grade"])
    # the canonical name, even if the previous grading (or an override) used an alias
    p["prev_grade"] = np.where(np.isnan(p["prev_rank"].to_numpy(dtype=float)),
                               prev["grade"].astype(object).to_numpy(),
                               np.array(model.categories + [""], dtype=object)[
                                   np.nan_to_num(p["prev_rank"].to_numpy(dtype=float), nan=-1).astype(int)])
    p["prev_composite"] = (pd.to_numeric(prev["composite"], errors="coerce").astype(float)
                           if "composite" in prev.columns else np.nan)
    p["prev_overridden"] = (prev["overridden"].fillna(False).astype(bool).to_numpy()
                            if "overridden" in prev.columns else False)
    p["prev_override_reason"] = (prev["override_reason"].astype(object).to_numpy()
                                 if "override_reason" in prev.columns else None)
    ps = _prev_scores(prev, keys).add_prefix("prev_")
    p = pd.concat([p, ps], axis=1)
    unknown = p["prev_rank"].isna()
    if unknown.any():
        names = sorted({str(x) for x in p.loc[unknown, "prev_grade"].tolist()})
        warnings.append(f"上次分级中的等级 {'、'.join(names)} 不在当前模型中，{int(unknown.sum())} 位客户不作比较")
        p = p[~unknown]

    c = curr.customers.copy()
    c["rank"] = c["grade"].cat.codes.to_numpy()
    m = c.reset_index(drop=True).merge(p.reset_index(drop=True), on="customer_id", how="outer", indicator=True)
    new = sorted(m.loc[m["_merge"] == "left_only", "customer_id"].astype(str).tolist())
    gone = sorted(m.loc[m["_merge"] == "right_only", "customer_id"].astype(str).tolist())
    both = m[m["_merge"] == "both"].copy()
    both["prev_rank"] = both["prev_rank"].astype(int)
    up = both[both["rank"] > both["prev_rank"]]
    down = both[both["rank"] < both["prev_rank"]].sort_values("customer_id")
    cols = ["customer_id", *(["name"] if "name" in both.columns else []), "prev_grade", "grade",
            "prev_composite", "composite", "overridden"]
    upgrades = up.sort_values("customer_id")[cols].reset_index(drop=True)
    upgrades["grade"] = upgrades["grade"].astype(object)
    downgrades = down[cols].reset_index(drop=True)
    downgrades["grade"] = downgrades["grade"].astype(object)
    letters = _letters(down.reset_index(drop=True), curr) if len(down) else []
    return GradeChanges(upgrades=upgrades, downgrades=downgrades, letters=letters, new=new, gone=gone,
                        unchanged=int((both["rank"] == both["prev_rank"]).sum()), warnings=warnings)


def _needed_value(ind: Indicator, curr: GradeResult, target_h: np.ndarray) -> np.ndarray:
    """Roughly the value that earns ``target_h`` hundredths today (NaN if none does).

    Thresholds: the minimum of the lowest band giving that many points.  Percentile:
    the lowest value among today's customers whose score reaches the target —
    approximate, since one customer moving also moves the ranks (hence "约" in letters).
    """
    out = np.full(len(target_h), np.nan)
    if ind.normalise == "thresholds":
        bands = ind.bands[::-1]  # lowest band first; points never fall as min rises
        pts = np.array([b.points_h for b in bands], dtype=np.int64)
        mins = np.array([float(b.min) for b in bands])
        idx = np.searchsorted(pts, target_h, side="left")
        hit = (idx < len(bands)) & (target_h > int(ind.below * 100))
        out[hit] = mins[idx[hit]]
        return out
    c = curr.customers
    s = c[ind.score_column].to_numpy(dtype=float)
    v = c[ind.value_column].to_numpy(dtype=float)
    ok = ~np.isnan(s)
    order = np.argsort(v[ok], kind="stable")
    vs, ss = v[ok][order], np.rint(s[ok][order] * 100).astype(np.int64)
    idx = np.searchsorted(ss, target_h, side="left")  # ss is non-decreasing: sorted by value
    hit = idx < len(vs)
    out[hit] = vs[idx[hit]]
    return out


def _col(df: pd.DataFrame, name: str, default: Any = None) -> list[Any]:
    """A column as a list of plain Python values (NaN/NA → None), or ``default`` for all."""
    if name not in df.columns:
        return [default] * len(df)
    s = df[name]
    if pd.api.types.is_float_dtype(s.dtype):
        a = s.to_numpy(dtype=float, na_value=np.nan)
        o = a.astype(object)
        o[np.isnan(a)] = None
        return o.tolist()
    return [_nan_none(v) for v in s.astype(object).tolist()]


def _letters(down: pd.DataFrame, curr: GradeResult) -> list[dict[str, Any]]:
    """Letter data for each downgraded row of the merged frame.

    The arithmetic is done on whole columns; the loop at the end only assembles dicts.
    """
    model = curr.model
    present = curr.indicators
    n = len(down)
    bands_low = model.grades[::-1]
    w = np.array([i.weight_units for i in present], dtype=np.int64)
    score = np.column_stack([down[i.score_column].to_numpy(dtype=float) for i in present])
    prev_score = np.column_stack([down[f"prev_{i.score_column}"].to_numpy(dtype=float) for i in present])
    counted = ~np.isnan(score)
    score_h = np.where(counted, np.rint(np.nan_to_num(score) * 100), 0).astype(np.int64)
    wsum = (counted * w).sum(axis=1)
    num = (score_h * w).sum(axis=1)
    cents = np.rint(down["composite"].to_numpy(dtype=float) * 100).astype(np.int64)
    needed = np.array([g.min_h for g in bands_low], dtype=np.int64)[down["prev_rank"].to_numpy(dtype=int)]
    gap = np.maximum(needed - cents, 0)

    # weighted effect of each indicator's change on the composite (composite points);
    # the most negative first, rises and unknowns (NaN) never count as "moved"
    impact = (score - prev_score) * w / np.maximum(wsum, 1)[:, None]
    sort_key = np.where(np.isnan(impact) | (impact >= 0), np.inf, impact)
    order = np.argsort(sort_key, axis=1, kind="stable")[:, : model.letter_top_indicators]

    # score each indicator alone needs: the smallest d with
    # round_half_up((num + w·d)/wsum) ≥ needed  ⇔  2(num + w·d) + wsum ≥ 2·wsum·needed
    lack = (2 * wsum * needed - wsum - 2 * num)[:, None]
    d = np.maximum(-(-lack // (2 * w[None, :])), 0)
    target = np.where(counted, score_h + d, -1)
    value_needed = np.column_stack([_needed_value(i, curr, np.maximum(target[:, k], 0))
                                    for k, i in enumerate(present)])

    cols = {name: _col(down, name) for name in ("customer_id", "name", "phone", "prev_grade", "grade",
                                                "prev_composite", "override_reason", "prev_overridden")}
    over = down["overridden"].to_numpy(dtype=bool).tolist()
    values = {i.key: _col(down, i.value_column) for i in present}
    prev_values = {i.key: _col(down, f"prev_{i.value_column}") for i in present}
    score_l, prev_l, impact_l = score.tolist(), prev_score.tolist(), impact.tolist()
    target_l, vneed_l = target.tolist(), value_needed.tolist()
    out: list[dict[str, Any]] = []
    for j in range(n):
        prev_g, g = str(cols["prev_grade"][j]), str(cols["grade"][j])
        prev_c, comp = cols["prev_composite"][j], cents[j] / 100
        need_txt = _fmt_num(needed[j] / 100)
        moved = []
        for k in order[j].tolist():
            if sort_key[j, k] == np.inf:
                break
            i = present[k]
            moved.append({"indicator": i.key, "label": i.label, "unit": i.unit,
                          "prev_score": _nan_none(prev_l[j][k]), "score": _nan_none(score_l[j][k]),
                          "prev_value": prev_values[i.key][j], "value": values[i.key][j],
                          "impact": round(impact_l[j][k], 2)})

        basis = [f"综合分由 {prev_c:.2f} 变为 {comp:.2f}；{prev_g}需 ≥{need_txt}" if prev_c is not None
                 else f"本次综合分 {comp:.2f}；{prev_g}需 ≥{need_txt}"]
        for mv in moved:
            frm = "" if mv["prev_value"] is None else f"{_fmt_num(mv['prev_value'])}{mv['unit']} → "
            to = "" if mv["value"] is None else f"{_fmt_num(mv['value'])}{mv['unit']}，"
            same = mv["value"] is not None and mv["value"] == mv["prev_value"]
            why = "（数值未变，其他客户提高后排名下降）" if same else ""
            basis.append(f"{mv['label']}：{frm}{to}得分 {_fmt_num(mv['prev_score'])} → "
                         f"{_fmt_num(mv['score'])}{why}，综合分因此减少 {abs(mv['impact']):.2f}")
        if over[j]:
            basis.append(f"人工调整为 {g}：{cols['override_reason'][j]}")
        elif cols["prev_overridden"][j]:
            basis.append(f"上次的{prev_g}为人工调整，本次按综合评分定级")

        options = []
        for k, i in enumerate(present):
            t = target_l[j][k]
            if not i.actionable or t < 0:
                continue
            reach = t <= FULL
            options.append({"indicator": i.key, "label": i.label, "unit": i.unit,
                            "score": _nan_none(score_l[j][k]), "score_needed": t / 100, "reachable": reach,
                            "value_needed": _nan_none(vneed_l[j][k]) if reach else None})
        # the indicators that fell first: that is where the customer most easily recovers
        rank = {mv["indicator"]: r for r, mv in enumerate(moved)}
        options.sort(key=lambda o: (rank.get(o["indicator"], len(rank)), not o["reachable"], o["score_needed"]))
        if over[j] and gap[j] == 0:
            text = [f"综合分已达到{prev_g}标准，当前等级由人工调整决定；调整原因消除后即可恢复{prev_g}"]
        else:
            text = [f"综合分提高 {gap[j] / 100:.2f} 分（达到 {need_txt}）即可恢复{prev_g}"]
            for o in options:
                if o["reachable"]:
                    val = "" if o["value_needed"] is None else f"（约 {_fmt_num(o['value_needed'])}{o['unit']}）"
                    text.append(f"例如单靠{o['label']}：得分由 {_fmt_num(o['score'])} 提高到 "
                                f"{_fmt_num(o['score_needed'])}{val}")
        out.append({
            "customer_id": str(cols["customer_id"][j]),
            "name": cols["name"][j],
            "phone": cols["phone"][j],
            "prev_grade": prev_g,
            "grade": g,
            "prev_composite": prev_c,
            "composite": comp,
            "overridden": over[j],
            "override_reason": cols["override_reason"][j] if over[j] else None,
            "prev_overridden": bool(cols["prev_overridden"][j]),
            "basis": basis,
            "moved": moved,
            "restore": {"grade": prev_g, "composite_needed": needed[j] / 100, "gap": gap[j] / 100,
                        "options": options, "text": text},
        })
    return out


# =======================================================================================
# Plain JSON helpers
# =======================================================================================


def _nan_none(x: Any) -> Any:
    """A plain JSON value: NaN/NA/NaT → None, numpy scalars → Python ones."""
    t = type(x)
    if t is str or t is int or t is bool or x is None:
        return x
    if t is float:
        return None if x != x else x
    if x is pd.NA or x is pd.NaT:
        return None
    if isinstance(x, np.floating):
        return None if np.isnan(x) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, pd.Timestamp | datetime | date):
        return x.isoformat()
    return x


def _plain_floats(s: pd.Series) -> list[float | None]:
    a = s.to_numpy(dtype=float, na_value=np.nan)
    return [None if v != v else v for v in a.tolist()]


def _plain_obj(s: pd.Series) -> list[Any]:
    return [_nan_none(v) if not isinstance(v, str) else v for v in s.astype(object).tolist()]


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _nan_none(v) for k, v in r.items()} for r in df.astype(object).to_dict("records")]
