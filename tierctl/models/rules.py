"""Rule classes chosen by a ``type`` key in a model file.

Each rule evaluates a whole frame at once.  It returns, per row, the score it gives
(NaN where it does not fire) and a reason *code* into a short list of reason texts:
reasons repeat (every customer waiting 24 days has the same one), so a million rows
carry a million small integers and a few hundred distinct texts, never a million
formatted strings.  Parameters are checked when the model loads, so a bad model file
fails before any customer is scored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd

from tierctl.models.loader import Section
from tierctl.models.registry import Registry
from tierctl.textmatch import factorize_text, keyword_match


@dataclass
class Context:
    """What rules may look at besides the frame; text columns are factorised once per
    run and shared by every rule that reads them."""

    negations: tuple[str, ...] = ()
    red_list: np.ndarray | None = None  # bool per row
    # how a keyword cancelled by a negation word is told in the reasons
    negation_note: str = "「{keyword}」前有否定词「{negation}」，未计入"
    _factorized: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def factorized(self, frame: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
        if column not in self._factorized:
            self._factorized[column] = factorize_text(frame[column])
        return self._factorized[column]


@dataclass
class Fired:
    score: np.ndarray  # float per row, NaN where the rule does not fire
    code: np.ndarray  # int per row into ``reasons``, -1 where it does not fire
    reasons: list[str]  # distinct reason texts
    scores: list[float]  # the score that goes with each reason text
    # where the rule did not fire because a negation word cancelled its keyword: a code per
    # row into ``cancelled`` (-1: nothing cancelled), e.g. "「骗」前有否定词「不是」，未计入"
    cancel_code: np.ndarray | None = None
    cancelled: list[str] = field(default_factory=list)


def num(v: object) -> object:
    """12.0 → 12 for display."""
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return int(v)
    return v


def _none(n: int) -> Fired:
    return Fired(np.full(n, np.nan), np.full(n, -1, dtype=np.int64), [], [])


class Rule:
    type: ClassVar[str]
    fields: tuple[str, ...] = ()

    def __init__(self, sec: Section) -> None:
        self.reason = sec.str("reason", "")

    def evaluate(self, frame: pd.DataFrame, ctx: Context) -> Fired:  # pragma: no cover
        raise NotImplementedError

    def uses(self) -> tuple[str, ...]:
        return self.fields


class Keywords(Rule):
    type = "keywords"

    def __init__(self, sec: Section) -> None:
        super().__init__(sec)
        self.field = sec.str("field")
        self.keywords = sec.list("keywords", of=str)
        if not self.keywords:
            raise sec.error("keywords", "关键词列表不能为空")
        self.score = sec.number("score")
        self.negate = sec.bool("negate", True)
        self.fields = (self.field,)
        self.reason = self.reason or "「{field}」含「{keyword}」"

    def evaluate(self, frame: pd.DataFrame, ctx: Context) -> Fired:
        n = len(frame)
        if self.field not in frame:
            return _none(n)
        match = keyword_match(frame[self.field], self.keywords, ctx.negations if self.negate else (),
                              factorized=ctx.factorized(frame, self.field))
        code = match.code
        score = np.where(code >= 0, float(self.score), np.nan)
        reasons = [self.reason.format(keyword=k, field=self.field) for k in self.keywords]
        cancel_code, cancelled = match.cancel_notes(ctx.negation_note)
        return Fired(score, code, reasons, [float(self.score)] * len(reasons), cancel_code, cancelled)


class Band(Rule):
    """Score by the highest band a number reaches (value ≥ band minimum)."""

    type = "band"

    def __init__(self, sec: Section) -> None:
        super().__init__(sec)
        self.field = sec.str("field")
        parsed = []
        for i, b in enumerate(sec.list("bands")):
            if (not isinstance(b, list) or len(b) != 2
                    or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in b)):
                raise sec.error(f"bands[{i}]", "每一档应写成 [下限, 分数]，如 [28, 10]")
            parsed.append((float(b[0]), float(b[1])))
        if not parsed:
            raise sec.error("bands", "至少需要一档")
        self.bands = sorted(parsed, key=lambda x: -x[0])  # highest threshold first
        self.fields = (self.field,)
        self.reason = self.reason or "{value} ≥ {min}"

    def band_of(self, v: np.ndarray) -> np.ndarray:
        """Index into ``self.bands`` per value, -1 below every band or missing."""
        which = np.full(len(v), -1, dtype=np.int64)
        for j in range(len(self.bands) - 1, -1, -1):  # lowest first, higher bands overwrite
            which[v >= self.bands[j][0]] = j
        return which

    def evaluate(self, frame: pd.DataFrame, ctx: Context) -> Fired:
        n = len(frame)
        if self.field not in frame:
            return _none(n)
        v = pd.to_numeric(frame[self.field], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        which = self.band_of(v)
        fired = which >= 0
        score = np.full(n, np.nan)
        score[fired] = np.array([s for _, s in self.bands])[which[fired]]
        code = np.full(n, -1, dtype=np.int64)
        reasons: list[str] = []
        scores: list[float] = []
        if fired.any():
            vc, uniq = pd.factorize(v[fired])
            code[fired] = vc
            for u in uniq:
                lo, s = self.bands[int(self.band_of(np.array([u]))[0])]
                reasons.append(self.reason.format(value=num(u), min=num(lo)))
                scores.append(s)
        return Fired(score, code, reasons, scores)


class Flag(Rule):
    type = "flag"

    def __init__(self, sec: Section) -> None:
        super().__init__(sec)
        self.field = sec.str("field")
        self.score = sec.number("score")
        self.fields = (self.field,)
        self.reason = self.reason or "「{field}」为是"

    def evaluate(self, frame: pd.DataFrame, ctx: Context) -> Fired:
        n = len(frame)
        if self.field not in frame:
            return _none(n)
        fired = frame[self.field].to_numpy(dtype=bool, na_value=False)
        return Fired(np.where(fired, float(self.score), np.nan), np.where(fired, 0, -1),
                     [self.reason.format(field=self.field)], [float(self.score)])


class Category(Rule):
    type = "category"

    def __init__(self, sec: Section) -> None:
        super().__init__(sec)
        self.field = sec.str("field")
        m = sec.section("map")
        self.map: dict[str, float] = {}
        for k, v in m.items():
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise m.error(k, "分数应为数字")
            self.map[str(k).strip().lower()] = float(v)
        self.fields = (self.field,)
        self.reason = self.reason or "「{field}」为「{value}」"

    def evaluate(self, frame: pd.DataFrame, ctx: Context) -> Fired:
        n = len(frame)
        if self.field not in frame:
            return _none(n)
        codes, uniq = ctx.factorized(frame, self.field)
        per = np.array([self.map.get(str(u).strip().lower(), np.nan) for u in uniq] + [np.nan])
        score = per[codes]  # code -1 picks the trailing NaN
        fired = ~np.isnan(score)
        code = np.where(fired, codes, -1)
        reasons = [self.reason.format(value=u, field=self.field) for u in uniq]
        return Fired(score, code, reasons, [float(x) for x in per[:-1]])


class RedList(Rule):
    type = "redlist"

    def __init__(self, sec: Section) -> None:
        super().__init__(sec)
        self.score = sec.number("score")
        self.reason = self.reason or "在红名单中"

    def evaluate(self, frame: pd.DataFrame, ctx: Context) -> Fired:
        n = len(frame)
        if ctx.red_list is None:
            return _none(n)
        fired = ctx.red_list
        return Fired(np.where(fired, float(self.score), np.nan), np.where(fired, 0, -1), [self.reason],
                     [float(self.score)])


DIMENSION_RULES: Registry[Rule] = Registry("规则")
for _cls in (Keywords, Band, Flag, Category, RedList):
    DIMENSION_RULES.register(_cls)
RULE_TYPES = DIMENSION_RULES  # the name older code used


def build_rule(sec: Section) -> Rule:
    return DIMENSION_RULES.build(sec)
