"""Churn-risk signals (SPEC B): the rule classes a churn model lists under ``[[signals]]``.

Each class is registered in :data:`SIGNALS` (the one registry of typed rule classes,
:class:`tierctl.models.registry.Registry`) under its ``type`` — ``"overdue" |
"days_since" | "band" | "drop" | "pct_drop" | "keywords" | "flag"``.  A new signal is
one class decorated with ``@SIGNALS.register`` and one ``type = "…"`` line in the
model file.  Parameters are checked when the model loads.

Thresholds are compared in exact arithmetic (values scaled to hundredths as integers,
thresholds as fractions), so a ticket falling from 2000 to 1000 is exactly a 50 % drop.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import ClassVar

import numpy as np
import pandas as pd

from tierctl.io.ingest import ColumnSpec
from tierctl.kernels.template_fill import fill_template
from tierctl.models.loader import Section
from tierctl.models.registry import Registry
from tierctl.textmatch import keyword_hits

_SCALE = 100  # numbers are compared as integer hundredths: exact for money and ratings


@dataclass(frozen=True)
class Band:
    """``at`` threshold → ``points``; the highest-scoring band met wins."""

    at: Decimal
    points: int

    @property
    def frac(self) -> Fraction:
        return Fraction(self.at)



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

    type: ClassVar[str] = ""
    fields: ClassVar[tuple[str, ...]] = ()

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
                            hint=f"{self.type} 类信号可用：{', '.join(self.fields) or '（无）'}")
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
        text = fill_template(self.reason, fields, int(fired.sum()))
        text = np.strings.add(np.strings.add(text, ": +"), pts[fired].astype(str))
        out[fired] = text.astype(object)
        return pd.Series(out, dtype=object)


SIGNALS: Registry[Signal] = Registry("信号")


def _ge(lhs: np.ndarray, frac: Fraction, rhs: np.ndarray | int = 1) -> np.ndarray:
    """Exact ``lhs >= frac * rhs`` on integer arrays (cross-multiplied)."""
    return lhs * frac.denominator >= frac.numerator * rhs


def _gt(lhs: np.ndarray, frac: Fraction, rhs: np.ndarray | int = 1) -> np.ndarray:
    return lhs * frac.denominator > frac.numerator * rhs


def _le(lhs: np.ndarray, frac: Fraction, rhs: np.ndarray | int = 1) -> np.ndarray:
    return lhs * frac.denominator <= frac.numerator * rhs


@SIGNALS.register
class OverdueSignal(Signal):
    """Days since the last visit ≥ ``at`` × the customer's usual interval."""

    type = "overdue"
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


@SIGNALS.register
class DaysSinceSignal(Signal):
    """Days since a date ≥ ``at`` (e.g. 180 days without a visit)."""

    type = "days_since"
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


@SIGNALS.register
class BandSignal(Signal):
    """A number at least (or at most) ``at``: no-shows, unanswered calls, low rating."""

    type = "band"
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


@SIGNALS.register
class DropSignal(Signal):
    """``previous - current ≥ at`` (e.g. satisfaction 9 → 7 is a drop of 2)."""

    type = "drop"
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


@SIGNALS.register
class PctDropSignal(Signal):
    """Relative fall ``(previous - current) / previous ≥ at %`` (average ticket)."""

    type = "pct_drop"
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


@SIGNALS.register
class KeywordsSignal(Signal):
    """A keyword in a text column, not negated (比价, 4S店 …, but not 没有比价)."""

    type = "keywords"
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


@SIGNALS.register
class FlagSignal(Signal):
    """A yes/no column is true (an open complaint)."""

    type = "flag"
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

