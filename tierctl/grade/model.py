"""The grading model (job D): load and validate ``tierctl/models/grade.toml``.

Everything is checked at load, so a bad file fails before any customer is graded,
with the file and key named.  How indicator values are derived and scored is in
:mod:`tierctl.grade.indicators` (one registered class per ``derive.type`` and per
``normalise``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from tierctl.errors import ModelError
from tierctl.grade.indicators import DERIVES, NORMALISERS, Derive
from tierctl.io.ingest import ColumnSpec
from tierctl.models.loader import Section

# Weights are exact decimals with at most 4 places; internally integers in 0.0001 units.
WEIGHT_PLACES = 4
WEIGHT_SCALE = 10**WEIGHT_PLACES
Normalise = Literal["percentile", "thresholds"]
NORMALISE = NORMALISERS.names()  # ("percentile", "thresholds")
BlankPolicy = Literal["zero", "reweight", "error"]

_COLUMN_KINDS = ("text", "int", "number", "date", "bool")



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
        out[name] = ColumnSpec(
            name=name,
            kind=c.choice("kind", _COLUMN_KINDS),
            aliases=tuple(c.list("aliases", [], of=str)),
            required=c.bool("required", False),
            unique=c.bool("unique", False),
            min=_bound(c.decimal("min", None)),
            max=_bound(c.decimal("max", None)),
        )
    return out


def _bound(d: Decimal | None) -> float | None:
    """A column bound as the ingest's ColumnSpec keeps it: a whole number stays an int, so
    messages read 不能小于 0 (as the file writes it), not 0.0."""
    if d is None:
        return None
    return int(d) if d == d.to_integral_value() else float(d)


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
        derive = DERIVES[d.choice("type", DERIVES.names())].from_section(d, columns)

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


