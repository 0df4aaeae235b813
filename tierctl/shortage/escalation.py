"""Escalation rules (SPEC A4): typed classes in one registry, applied in the model's order.

Each kind of rule is a class registered in :data:`ESCALATION_RULES` under the ``type``
a model file gives (``[[escalation]] type = "wait_floor"``).  A class reads and checks
its own keys when the model loads, says on which rows its condition holds today
(:meth:`Escalation.today`) and how it raises the tier (:meth:`Escalation.apply`).
Adding a rule is one class here and one ``[[escalation]]`` block in the model file.
A rule never lowers a tier.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from tierctl.io.ingest import ColumnSet
from tierctl.kernels.codes import combo_factorize, join_codes
from tierctl.kernels.keyjoin import key_positions
from tierctl.models.loader import Section
from tierctl.models.registry import Registry
from tierctl.models.rules import Context, num
from tierctl.textmatch import keyword_codes

if TYPE_CHECKING:
    from tierctl.shortage.model import ShortageModel


@dataclass
class EscalationView:
    """What a rule looks at: the frame (with ``key`` and the computed ``wait_days``),
    the tier the rules before it left, and the earlier runs to compare with."""

    f: pd.DataFrame
    tier: np.ndarray  # the current tier index per row (0 = most urgent)
    names: np.ndarray  # the tier names, most urgent first (object array)
    negations: tuple[str, ...]
    ctx: Context | None = None
    previous: pd.DataFrame | None = None
    previous_positions: np.ndarray | None = None
    week_ago: pd.DataFrame | None = None
    week_ago_positions: np.ndarray | None = None

    @property
    def waits(self) -> np.ndarray:
        return self.f["wait_days"].to_numpy()

    def positions(self, other: pd.DataFrame, known: np.ndarray | None) -> np.ndarray:
        """Each row's position in ``other`` (a key listed twice: its first row counts)."""
        return known if known is not None else key_positions(self.f["key"], other["key"])


class Escalation:
    """One ``[[escalation]]`` rule.  Subclasses set ``type``, read their own keys in
    :meth:`read` and say when they fire in :meth:`today`."""

    type: ClassVar[str]
    holds_by_default: ClassVar[bool] = True  # see ``holds`` in the model file
    # the keys a rule may have, with their defaults (each class sets those it reads)
    field: str = ""
    to: str = ""
    when_tiers: tuple[str, ...] = ()
    over_days: int = 0
    keywords: tuple[str, ...] = ()
    steps: int = 1
    previous_field: str = ""
    ratio: Decimal = Decimal(3)
    min_count: int = 0

    def __init__(self, sec: Section, tier_names: list[str], columns: ColumnSet) -> None:
        self.id = sec.str("id")
        self.reason = sec.str("reason", "")
        self.read(sec)
        for t in (*self.when_tiers, *([self.to] if self.to else [])):
            if t not in tier_names:
                raise sec.error("to", f"未知的分级「{t}」", hint=f"模型中的分级：{', '.join(tier_names)}")
        if self.field and self.field not in columns.specs:
            raise sec.error("field", f"引用了未声明的列「{self.field}」")
        self.holds = sec.bool("holds", self.holds_by_default)  # a raise that holds on later runs
        if any(ch in self.id for ch in "\t\n:"):
            raise sec.error("id", f"规则编号「{self.id}」不能含冒号、制表符或换行")

    def read(self, sec: Section) -> None:  # pragma: no cover - every rule reads something
        raise NotImplementedError

    def today(self, view: EscalationView) -> tuple[np.ndarray, dict[str, np.ndarray]]:  # pragma: no cover
        """Rows whose condition holds today, and the values its reason shows per row."""
        raise NotImplementedError

    def apply(self, applies: np.ndarray, tier: np.ndarray, model_idx: np.ndarray,
              idx_of: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
        """The tier after the rule, and the rows it is listed for: by default a raise by
        ``steps`` (never above the most urgent tier)."""
        listed = applies & (tier > 0)
        return np.where(listed, np.maximum(tier - self.steps, 0), tier), listed

    def previous_fields(self) -> tuple[str, ...]:
        """Columns of the previous run this rule compares with."""
        return ()

    def week_ago_fields(self) -> tuple[str, ...]:
        """Columns of the run a week ago this rule compares with."""
        return ()


ESCALATION_RULES: Registry[Escalation] = Registry("升级规则")


@ESCALATION_RULES.register
class WaitFloor(Escalation):
    """A4.1–A4.3: waiting more than ``over_days`` (in ``when_tiers``, if given) → at least ``to``.
    Listed whenever it applies and ``to`` is above the model tier."""

    type = "wait_floor"
    holds_by_default = False  # the wait only grows, so the rule fires again every morning

    def read(self, sec: Section) -> None:
        self.over_days = sec.int("over_days", min=0)
        self.when_tiers = tuple(sec.list("when_tiers", [], of=str))
        self.to = sec.str("to")

    def today(self, view: EscalationView) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        mask = view.waits > self.over_days
        if self.when_tiers:
            mask = mask & np.isin(view.names[view.tier], self.when_tiers)
        return mask, {}

    def apply(self, applies: np.ndarray, tier: np.ndarray, model_idx: np.ndarray,
              idx_of: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
        target = idx_of[self.to]
        return np.where(applies, np.minimum(tier, target), tier), applies & (model_idx > target)


@ESCALATION_RULES.register
class NewKeywords(Escalation):
    """A4.4: a complaint word in ``field`` that the previous run's row did not have → up ``steps``."""

    type = "new_keywords"

    def read(self, sec: Section) -> None:
        self.field = sec.str("field")
        self.keywords = tuple(sec.list("keywords", of=str))
        self.steps = sec.int("steps", 1, min=1)

    def today(self, view: EscalationView) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        f = view.f
        codes = keyword_codes(f[self.field], list(self.keywords), view.negations,
                              factorized=view.ctx.factorized(f, self.field) if view.ctx else None)
        mask = codes >= 0
        prev = view.previous
        if prev is not None and len(prev) and self.field in prev:
            prev_hit = keyword_codes(prev[self.field], list(self.keywords), view.negations) >= 0
            pos = view.positions(prev, view.previous_positions)
            mask = mask & ~np.where(pos >= 0, prev_hit[np.maximum(pos, 0)], False)
        return mask, {"keyword": np.array([*self.keywords, ""], dtype=object)[codes]}

    def previous_fields(self) -> tuple[str, ...]:
        return (self.field,)


@ESCALATION_RULES.register
class ContactSpike(Escalation):
    """A4.5: contacts in 7 days ≥ ``ratio`` × the previous week's (and ≥ ``min_count``) → up ``steps``.
    The previous week comes from ``previous_field`` of the export, else the run a week ago."""

    type = "contact_spike"

    def read(self, sec: Section) -> None:
        self.field = sec.str("field")
        self.previous_field = sec.str("previous_field", "")
        self.ratio = sec.decimal("ratio", 3, min=1)
        self.min_count = sec.int("min_count", 1, min=0)
        self.steps = sec.int("steps", 1, min=1)

    def today(self, view: EscalationView) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        f, n = view.f, len(view.f)
        now_c = f[self.field].to_numpy(dtype=float, na_value=np.nan)
        prev_c = np.full(n, np.nan)
        if self.previous_field and self.previous_field in f:
            prev_c = f[self.previous_field].to_numpy(dtype=float, na_value=np.nan)
        wk = view.week_ago
        if wk is not None and len(wk) and self.field in wk:
            pos = view.positions(wk, view.week_ago_positions)
            counts = pd.to_numeric(wk[self.field], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            prev_c = np.where(np.isnan(prev_c), np.where(pos >= 0, counts[np.maximum(pos, 0)], np.nan), prev_c)
        ratio = float(self.ratio)
        with np.errstate(invalid="ignore"):
            mask = (~np.isnan(now_c) & ~np.isnan(prev_c) & (now_c >= self.min_count)
                    & (now_c >= ratio * prev_c) & (now_c > prev_c))
        return mask, {"value": now_c, "previous": prev_c}

    def week_ago_fields(self) -> tuple[str, ...]:
        return (self.field,)


@ESCALATION_RULES.register
class FlagTo(Escalation):
    """A4.6: a yes/no column (a negative post) → straight to ``to``."""

    type = "flag_to"

    def read(self, sec: Section) -> None:
        self.field = sec.str("field")
        self.to = sec.str("to")

    def today(self, view: EscalationView) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return view.f[self.field].to_numpy(dtype=bool, na_value=False), {}

    def apply(self, applies: np.ndarray, tier: np.ndarray, model_idx: np.ndarray,
              idx_of: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
        target = idx_of[self.to]
        listed = applies & (tier > target)
        return np.where(listed, target, tier), listed


# -- applying the rules, with the raises that hold -----------------------------------------
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


@dataclass
class _Held:
    """The raises that hold from the previous run: per row a code into its distinct hold sets."""

    code: np.ndarray
    sets: list[dict[str, tuple[str, str]]]

    def by(self, rule: Escalation) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
        """Rows whose raise by ``rule`` holds from an earlier run, and a code per row into
        the distinct (since, reason) pairs."""
        n = len(self.code)
        if not rule.holds or not self.sets:
            return np.zeros(n, dtype=bool), np.full(n, -1, dtype=np.int64), []
        pairs: list[tuple[str, str]] = []
        per_set = np.full(len(self.sets) + 1, -1, dtype=np.int64)
        for j, s in enumerate(self.sets):
            if rule.id in s:
                per_set[j] = len(pairs)
                pairs.append(s[rule.id])
        code = per_set[np.where(self.code >= 0, self.code, len(self.sets))]
        return code >= 0, code, pairs


def _formatted(mask: np.ndarray, rule: Escalation, waits: np.ndarray,
               details: dict[str, np.ndarray]) -> tuple[np.ndarray, list[str]]:
    """Each masked row's reason (``rule.reason`` with its values), formatted once per
    distinct combination of values."""
    code = np.full(len(mask), -1, dtype=np.int64)
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
    idx_of = {t: i for i, t in enumerate(model.tier_names)}
    waits = f["wait_days"].to_numpy()
    since_today = as_of.isoformat() if as_of is not None else None
    fired_codes: list[np.ndarray] = []  # per rule: code into its texts, -1 = did not fire
    fired_texts: list[list[str]] = []
    hold_codes: list[np.ndarray] = []
    hold_texts: list[list[str]] = []
    held_before = _Held(*_previous_holds(f, model, previous, previous_positions))
    view = EscalationView(f, model_idx.copy(), np.array(model.tier_names, dtype=object), model.negations, ctx,
                          previous, previous_positions, week_ago, week_ago_positions)
    for rule in model.escalation:
        held, held_code, pairs = held_before.by(rule)
        details: dict[str, np.ndarray] = {}
        if rule.field and rule.field not in f:
            if not held.any():
                continue
            today = np.zeros(n, dtype=bool)  # the column is gone today: only the holds apply
        else:
            today, details = rule.today(view)
        view.tier, listed = rule.apply(today | held, view.tier, model_idx, idx_of)
        t_code, t_texts = _formatted(today, rule, waits, details)
        # the escalation lines: today's reason where the condition holds today, else the held one
        line = np.where(listed & today, t_code, -1)
        line = np.where(listed & ~today & held, len(t_texts) + held_code, line)
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
    return view.tier, join_codes(fired_codes, fired_texts, n), join_codes(hold_codes, hold_texts, n)


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
