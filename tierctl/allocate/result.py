"""The allocation's result: the plan row by row and its figures, as plain JSON."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class PlanRow:
    """What one customer gets (or why they get nothing)."""

    customer_id: str
    name: str
    tier: str
    score: float
    covered: bool
    option: str | None  # package key; None when not covered
    option_name: str
    option_name_en: str
    loaner: str  # loaner kind key, or "none"
    cost: int  # yuan over the days to the ETA
    why: tuple[str, ...]
    #: "covered"; "resources" (a package applies, the resources went to more risk);
    #: "no_package" (nothing in the tier's policy applies: more resources would not help)
    status: str = "covered"

    def to_json(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id, "name": self.name, "tier": self.tier,
            "score": self.score, "covered": self.covered, "status": self.status,
            "option": self.option, "option_name": self.option_name,
            "option_name_en": self.option_name_en, "loaner": self.loaner, "cost": self.cost,
            "why": list(self.why),
        }


@dataclass(frozen=True)
class Risk:
    """A sum of customers' totals: raw and tier-weighted, overall and per tier."""

    customers: int
    raw: float
    weighted: float
    by_tier: dict[str, dict[str, float | int]]

    def to_json(self) -> dict[str, Any]:
        return {"customers": self.customers, "raw": self.raw, "weighted": self.weighted,
                "by_tier": {k: dict(v) for k, v in self.by_tier.items()}}


@dataclass(frozen=True)
class Usage:
    """Resources used by the plan vs available."""

    loaners_used: int
    loaners_available: int
    premium_used: int
    premium_available: int
    regular_used: int
    regular_available: int
    budget_used: int
    budget_available: int
    days_to_eta: int

    def to_json(self) -> dict[str, Any]:
        return {
            "loaners": {"used": self.loaners_used, "available": self.loaners_available},
            "premium_loaners": {"used": self.premium_used, "available": self.premium_available},
            "regular_loaners": {"used": self.regular_used, "available": self.regular_available},
            "budget": {"used": self.budget_used, "available": self.budget_available},
            "days_to_eta": self.days_to_eta,
        }


@dataclass(frozen=True)
class Shortfall:
    """What is missing to cover every customer of the "covered first" tiers (P0)."""

    tiers: tuple[str, ...]
    total: int  # customers in those tiers
    covered: int
    uncovered: tuple[str, ...]  # ids that more resources would cover
    no_package: tuple[str, ...]  # ids no package of their policy applies to
    extra_loaners: int  # more cars in all (premium included)
    extra_premium_loaners: int  # of which premium
    extra_budget: int  # yuan
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "tiers": list(self.tiers), "total": self.total, "covered": self.covered,
            "uncovered": list(self.uncovered), "no_package": list(self.no_package),
            "extra_loaners": self.extra_loaners,
            "extra_premium_loaners": self.extra_premium_loaners,
            "extra_budget": self.extra_budget, "message": self.message,
        }


@dataclass(frozen=True)
class Marginal:
    """Covered risk with a bit more of one resource, and the gain over the plan."""

    resource: str  # "loaners" | "budget"
    step: int
    covered_weighted: float
    gain_weighted: float
    gain_raw: float
    gain_customers: int
    gain_first_raw: float  # gain in the raw risk of the "covered first" tiers
    optimal: bool
    note: str  # one Chinese sentence for the manager

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step, "covered_weighted": self.covered_weighted,
            "gain_weighted": self.gain_weighted, "gain_raw": self.gain_raw,
            "gain_customers": self.gain_customers, "gain_first_raw": self.gain_first_raw,
            "optimal": self.optimal, "note": self.note,
        }


@dataclass(frozen=True)
class Allocation:
    """The plan and its figures; :meth:`to_json` is what ``--format json`` prints."""

    model: str
    plan: tuple[PlanRow, ...]
    used: Usage
    covered: Risk
    uncovered: Risk
    uncovered_no_package: Risk  # the part of ``uncovered`` no resource could cover
    p0_shortfall: Shortfall | None
    marginal: dict[str, Marginal]
    optimal: bool  # False only if the solver hit its time limit
    warnings: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types only (dicts, lists, str, int, float, bool, None)."""
        uncovered = self.uncovered.to_json()
        uncovered["no_package"] = self.uncovered_no_package.to_json()
        return {
            "model": self.model,
            "plan": [r.to_json() for r in self.plan],
            "used": self.used.to_json(),
            "covered": self.covered.to_json(),
            "uncovered": uncovered,
            "marginal": {k: m.to_json() for k, m in self.marginal.items()},
            "p0_shortfall": None if self.p0_shortfall is None else self.p0_shortfall.to_json(),
            "optimal": self.optimal,
            "warnings": list(self.warnings),
        }


def _as_float(units: int, scale: int) -> float:
    # Through Decimal so 860 hundredths print as 8.6, never 8.599999999999.
    return float(Decimal(units) / Decimal(scale))
