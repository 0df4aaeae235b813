"""Rule classes chosen by a ``type`` key in a model file.

Each rule evaluates a whole frame at once and returns, per row, the score it gives (NaN
where it does not fire) and the reason text.  Parameters are checked when the model
loads, so a bad model file fails before any customer is scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from tierctl.models.loader import Section
from tierctl.textmatch import keyword_hits


@dataclass
class Context:
    """What rules may look at besides the frame."""

    negations: tuple[str, ...] = ()
    red_list: np.ndarray | None = None  # bool per row


@dataclass
class Fired:
    score: np.ndarray  # float, NaN where the rule does not fire
    reason: pd.Series  # object: text where it fires


class Rule:
    type: ClassVar[str]
    fields: tuple[str, ...] = ()

    def __init__(self, sec: Section) -> None:
        self.reason = sec.str("reason", "")
        self.reason_en = sec.str("reason_en", "")

    def evaluate(self, frame: pd.DataFrame, ctx: Context) -> Fired:  # pragma: no cover
        raise NotImplementedError

    def uses(self) -> tuple[str, ...]:
        return self.fields

    @staticmethod
    def _fmt(template: str, **values: object) -> str:
        return template.format(**{k: _num(v) for k, v in values.items()})


def _num(v: object) -> object:
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _fmt_many(template: str, key: str, values: object, **const: object) -> np.ndarray:
    """Format ``template`` for many rows, once per distinct value (fast on 1M rows)."""
    codes, uniques = pd.factorize(pd.Series(values), use_na_sentinel=False)
    texts = np.array([template.format(**{key: _num(u)}, **{k: _num(v) for k, v in const.items()})
                      for u in uniques], dtype=object)
    return texts[codes]


def _none(n: int) -> Fired:
    return Fired(np.full(n, np.nan), pd.Series([None] * n, dtype=object))


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
        hits = keyword_hits(frame[self.field], self.keywords, ctx.negations if self.negate else ())
        fired = hits.notna().to_numpy()
        score = np.where(fired, float(self.score), np.nan)
        reason = pd.Series([None] * n, dtype=object)
        if fired.any():
            reason[fired] = _fmt_many(self.reason, "keyword", hits[fired].to_numpy(), field=self.field)
        return Fired(score, reason)


class Band(Rule):
    type = "band"

    def __init__(self, sec: Section) -> None:
        super().__init__(sec)
        self.field = sec.str("field")
        bands = sec.list("bands")
        parsed = []
        for i, b in enumerate(bands):
            if (not isinstance(b, list) or len(b) != 2
                    or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in b)):
                raise sec.error(f"bands[{i}]", "每一档应写成 [下限, 分数]，如 [28, 10]")
            parsed.append((float(b[0]), float(b[1])))
        if not parsed:
            raise sec.error("bands", "至少需要一档")
        # highest threshold first: the first band a value reaches is its band
        self.bands = sorted(parsed, key=lambda x: -x[0])
        self.fields = (self.field,)
        self.reason = self.reason or "{value} ≥ {min}"

    def evaluate(self, frame: pd.DataFrame, ctx: Context) -> Fired:
        n = len(frame)
        if self.field not in frame:
            return _none(n)
        v = pd.to_numeric(frame[self.field], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        score = np.full(n, np.nan)
        which = np.full(n, -1)
        for j, (lo, s) in enumerate(self.bands):
            m = np.isnan(score) & (v >= lo)
            score[m] = s
            which[m] = j
        reason = pd.Series([None] * n, dtype=object)
        for j, (lo, _s) in enumerate(self.bands):
            m = which == j
            if m.any():
                reason[m] = _fmt_many(self.reason, "value", v[m], min=lo)
        return Fired(score, reason)


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
        fired = frame[self.field].fillna(False).to_numpy(dtype=bool)
        reason = pd.Series([None] * n, dtype=object)
        reason[fired] = self._fmt(self.reason, field=self.field)
        return Fired(np.where(fired, float(self.score), np.nan), reason)


class Category(Rule):
    type = "category"

    def __init__(self, sec: Section) -> None:
        super().__init__(sec)
        self.field = sec.str("field")
        m = sec.section("map")
        self.map = {}
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
        raw = frame[self.field]
        key = raw.astype(str).str.strip().str.lower()
        score = key.map(self.map).to_numpy(dtype=float, na_value=np.nan)
        fired = ~np.isnan(score)
        reason = pd.Series([None] * n, dtype=object)
        if fired.any():
            reason[fired] = _fmt_many(self.reason, "value", raw[fired].to_numpy(), field=self.field)
        return Fired(score, reason)


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
        reason = pd.Series([None] * n, dtype=object)
        reason[fired] = self.reason
        return Fired(np.where(fired, float(self.score), np.nan), reason)


RULE_TYPES: dict[str, type[Rule]] = {c.type: c for c in (Keywords, Band, Flag, Category, RedList)}


def build_rule(sec: Section) -> Rule:
    t = sec.str("type")
    cls = RULE_TYPES.get(t)
    if cls is None:
        raise sec.error("type", f"未知的规则类型「{t}」", hint=f"可用：{', '.join(RULE_TYPES)}")
    return cls(sec)
