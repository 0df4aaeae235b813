"""How a grade indicator gets its values and its scores: typed classes in the ONE
registry (:class:`tierctl.models.registry.Registry`), keyed by what the model file says.

* ``derive = { type = "…" }`` — how a blank or missing indicator value is derived from
  other columns (:data:`DERIVES`: ``ratio``, ``years_since``);
* ``normalise = "…"`` — how a value becomes a 0–100 score (:data:`NORMALISERS`:
  ``percentile``, ``thresholds``).

A new way is one class (``@DERIVES.register`` / ``@NORMALISERS.register``) and one line
in the model file.  Pure: arrays in, arrays out; scores are integers in hundredths
(-1 where the value is NaN).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa

from tierctl.errors import Problem
from tierctl.grade.inputs import _fmt_num, _numeric, _years_since
from tierctl.io.ingest import ColumnSpec
from tierctl.models.loader import Section
from tierctl.models.registry import Registry

if TYPE_CHECKING:
    from tierctl.grade.model import GradeModel, Indicator

# Scores and the composite are integers in hundredths: 100.00 → 10000.
FULL = 10000

# How each indicator value came about, per customer (used only to explain it).
_SRC_GIVEN, _SRC_DERIVED, _SRC_ZERO, _SRC_NONE = 0, 1, 2, 3


# =======================================================================================
# Derived values
# =======================================================================================


class DeriveRule:
    """A way to derive an indicator's value from other columns of the export."""

    type: ClassVar[str]
    kinds: ClassVar[tuple[str, ...]]  # the column kinds the sources must have

    @property
    def sources(self) -> tuple[str, ...]:  # pragma: no cover - every rule names its own
        raise NotImplementedError

    @classmethod
    def build(cls, d: Section) -> DeriveRule:  # pragma: no cover
        raise NotImplementedError

    @classmethod
    def from_section(cls, d: Section, columns: dict[str, ColumnSpec]) -> DeriveRule:
        rule = cls.build(d)
        for src in rule.sources:
            if src not in columns:
                raise d.error(None, f"推算用的列「{src}」没有在 [columns] 中声明")
            if columns[src].kind not in cls.kinds:
                raise d.error(None, f"推算用的列「{src}」应为 {' 或 '.join(cls.kinds)} 类型")
        return rule

    def describe(self, model: GradeModel) -> str:  # pragma: no cover
        raise NotImplementedError

    def values(self, model: GradeModel, frame: pd.DataFrame, as_of: date, rows: np.ndarray,
               problems: list[Problem]) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError


DERIVES: Registry[DeriveRule] = Registry("推算方式")


@DERIVES.register
@dataclass(frozen=True)
class Ratio(DeriveRule):
    """Derive a value as ``numerator / denominator`` (undefined when the denominator ≤ 0)."""

    numerator: str
    denominator: str
    type: ClassVar[str] = "ratio"
    kinds: ClassVar[tuple[str, ...]] = ("int", "number")

    @classmethod
    def build(cls, d: Section) -> Ratio:
        return cls(d.str("numerator"), d.str("denominator"))

    @property
    def sources(self) -> tuple[str, ...]:
        return (self.numerator, self.denominator)

    def describe(self, model: GradeModel) -> str:
        return f"由{model.column_label(self.numerator)}÷{model.column_label(self.denominator)}推算"

    def values(self, model: GradeModel, frame: pd.DataFrame, as_of: date, rows: np.ndarray,
               problems: list[Problem]) -> np.ndarray:
        a = _numeric(frame, self.numerator, model.columns[self.numerator], model.column_label(self.numerator),
                    rows, problems)
        b = _numeric(frame, self.denominator, model.columns[self.denominator],
                    model.column_label(self.denominator), rows, problems)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)


@DERIVES.register
@dataclass(frozen=True)
class YearsSince(DeriveRule):
    """Derive years as completed calendar months since a date, ÷ 12 (anniversary-exact)."""

    column: str
    type: ClassVar[str] = "years_since"
    kinds: ClassVar[tuple[str, ...]] = ("date",)

    @classmethod
    def build(cls, d: Section) -> YearsSince:
        return cls(d.str("column"))

    @property
    def sources(self) -> tuple[str, ...]:
        return (self.column,)

    def describe(self, model: GradeModel) -> str:
        return f"由{model.column_label(self.column)}推算"

    def values(self, model: GradeModel, frame: pd.DataFrame, as_of: date, rows: np.ndarray,
               problems: list[Problem]) -> np.ndarray:
        return _years_since(frame, self.column, model.column_label(self.column), as_of, rows, problems)


Derive = DeriveRule


# =======================================================================================
# Normalisation: a value → a score in hundredths
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


class Normaliser:
    """How an indicator's values become scores (``normalise = "<type>"``)."""

    type: ClassVar[str]
    # True when a score is a rank against the other customers (so a value needed to
    # reach a score is approximate, and equal values can score lower next time)
    relative: ClassVar[bool] = False

    @staticmethod
    def scores_h(ind: Indicator, values: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    @staticmethod
    def how(ind: Indicator, values: np.ndarray) -> Any:  # pragma: no cover
        """How each score was found, for the reasons (one text, or an Arrow array per row)."""
        raise NotImplementedError

    @staticmethod
    def needed_value(ind: Indicator, values: np.ndarray, scores: np.ndarray,
                     target_h: np.ndarray) -> np.ndarray:  # pragma: no cover
        """Roughly the value that earns ``target_h`` hundredths today (NaN if none does);
        ``values``/``scores`` are today's, per customer (scores NaN when not counted)."""
        raise NotImplementedError


NORMALISERS: Registry[Normaliser] = Registry("评分方式", key="normalise")


@NORMALISERS.register
class Percentile(Normaliser):
    type = "percentile"
    relative = True

    @staticmethod
    def scores_h(ind: Indicator, values: np.ndarray) -> np.ndarray:
        return _percentile_h(values)

    @staticmethod
    def how(ind: Indicator, values: np.ndarray) -> Any:
        return "百分位"

    @staticmethod
    def needed_value(ind: Indicator, values: np.ndarray, scores: np.ndarray, target_h: np.ndarray) -> np.ndarray:
        # the lowest value among today's customers whose score reaches the target —
        # approximate, since one customer moving also moves the ranks (hence "约" in letters)
        out = np.full(len(target_h), np.nan)
        ok = ~np.isnan(scores)
        order = np.argsort(values[ok], kind="stable")
        vs, ss = values[ok][order], np.rint(scores[ok][order] * 100).astype(np.int64)
        idx = np.searchsorted(ss, target_h, side="left")  # ss is non-decreasing: sorted by value
        hit = idx < len(vs)
        out[hit] = vs[idx[hit]]
        return out


@NORMALISERS.register
class Thresholds(Normaliser):
    type = "thresholds"

    @staticmethod
    def scores_h(ind: Indicator, values: np.ndarray) -> np.ndarray:
        return _thresholds_h(ind, values)

    @staticmethod
    def how(ind: Indicator, values: np.ndarray) -> Any:
        idx = _band_index(ind, values)
        return pa.array(np.array([f"≥{_fmt_num(float(b.min))}" for b in ind.bands] + ["低于最低档"],
                                 dtype=object)[idx])

    @staticmethod
    def needed_value(ind: Indicator, values: np.ndarray, scores: np.ndarray, target_h: np.ndarray) -> np.ndarray:
        # the minimum of the lowest band giving that many points
        out = np.full(len(target_h), np.nan)
        bands = ind.bands[::-1]  # lowest band first; points never fall as min rises
        pts = np.array([b.points_h for b in bands], dtype=np.int64)
        mins = np.array([float(b.min) for b in bands])
        idx = np.searchsorted(pts, target_h, side="left")
        hit = (idx < len(bands)) & (target_h > int(ind.below * 100))
        out[hit] = mins[idx[hit]]
        return out
