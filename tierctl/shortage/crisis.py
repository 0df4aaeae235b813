"""The crisis level of a shortage (SPEC A7) and the customers flagged for the PR plan (A4.6)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tierctl.errors import ModelError
from tierctl.shortage.report import ShortageResult, _plain
from tierctl.shortage.score import complaint_mask, media_mask


@dataclass
class Crisis:
    level: int
    color: str
    label: str
    response: str
    criteria: list[dict[str, Any]]
    label_en: str = ""
    response_en: str = ""
    # media attention (SPEC A4.6): how many customers, the first of them (most urgent
    # first), and whether the crisis is flagged for the PR plan
    media_attention: int = 0
    media_customers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pr_plan(self) -> bool:
        return self.media_attention > 0

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level, "color": self.color, "label": self.label,
                "response": self.response, "criteria": self.criteria,
                "pr_plan": self.pr_plan, "media_attention": self.media_attention,
                "media_customers": list(self.media_customers)}


MEDIA_LISTED = 20  # customers named with the PR-plan flag (the count covers everyone)


def _media_customers(result: ShortageResult, limit: int = MEDIA_LISTED) -> tuple[int, list[dict[str, Any]]]:
    """How many customers have media attention, and the first ``limit`` of them, most
    urgent first (only those rows are put in order)."""
    if "customers" in result.__dict__:  # already in order (overrides re-sorted it, or read from the store)
        src = result.customers
        idx = np.flatnonzero(media_mask(src, result.model))
    else:
        src = result.frame
        flagged = media_mask(src, result.model)
        idx = result.order[np.flatnonzero(flagged[result.order])] if flagged.any() else np.zeros(0, dtype=np.int64)
    take = idx[:limit]  # the two columns named, at those rows only (the rows are wide)
    ids, names = (src[c].take(take).tolist() if c in src else [None] * len(take) for c in ("customer_id", "name"))
    people = [{"customer_id": _plain(i), "name": _plain(n)} for i, n in zip(ids, names, strict=True)]
    return int(len(idx)), people


def _level_by(value: float, bounds: Sequence[float]) -> int:
    """1 + how many of the ascending bounds ``value`` reaches (value ≥ bound)."""
    return 1 + sum(1 for b in bounds if value >= b)


def crisis_level(result: ShortageResult, eta_weeks: float | None = None) -> Crisis:
    """SPEC A7: the highest level any criterion reaches."""
    model = result.model
    c = model.crisis
    f = result.unordered
    counts = result.counts()
    p0 = counts.get(model.tier_names[0], 0)
    p1 = counts.get(model.tier_names[1], 0) if len(model.tiers) > 1 else 0
    longest = int(f["wait_days"].max()) if len(f) else 0
    complained = int(complaint_mask(f, model).sum()) if len(f) else 0
    crit: list[dict[str, Any]] = []
    crit.append({"name": "affected", "label": "受影响客户数", "value": len(f),
                 "level": _level_by(len(f), c.affected)})
    crit.append({"name": "longest_wait", "label": "最长等待天数", "value": longest,
                 "level": _level_by(longest, c.longest_wait)})
    tl = 1
    if p1 or p0:
        tl = 2
    if p0:
        tl = _level_by(p0, c.p0_count) + 1
    crit.append({"name": "tiers", "label": "P0/P1 人数", "value": {"P0": p0, "P1": p1}, "level": min(tl, 4)})
    if eta_weeks is not None:
        el = 1 + sum(1 for b in c.eta_weeks_over if eta_weeks > b)
        crit.append({"name": "eta_weeks", "label": "预计到货（周）", "value": eta_weeks, "level": el})
    crit.append({"name": "complaints", "label": "已投诉/发帖客户", "value": complained,
                 "level": c.complaint_level if complained else 1})
    level = max(int(x["level"]) for x in crit)
    spec = next((lv for lv in c.levels if int(lv.get("level", 0)) == level), None)
    if spec is None:
        raise ModelError(f"危机等级 {level} 没有定义", path=model.path, key="crisis.levels")
    media, media_who = _media_customers(result) if len(f) else (0, [])
    return Crisis(level=level, color=str(spec.get("color", "")), label=str(spec.get("label", "")),
                  response=str(spec.get("response", "")), criteria=crit,
                  label_en=str(spec.get("label_en", "")), response_en=str(spec.get("response_en", "")),
                  media_attention=media, media_customers=media_who)
