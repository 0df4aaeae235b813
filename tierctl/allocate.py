"""Who gets the loaners and the compensation budget while a part is back-ordered (issue 9).

The service centre has ``N`` loaner cars (``K`` of them premium) and a compensation
authority of ``B`` yuan for the ``D`` days until the part arrives.  Each waiting customer
may receive at most one *package* from their tier's policy (SPEC A5, listed in
``models/allocate.toml``): a loaner of some kind, the ride-hailing income subsidy per day,
one-off compensation items — or nothing.  We choose the packages that maximise the
*risk covered*: the sum of the covered customers' totals, weighted by tier.

This is a multiple-choice knapsack with three resource constraints (premium cars,
regular cars, money), solved exactly as an integer program with
:func:`scipy.optimize.milp` (HiGHS, ``mip_rel_gap = 0``), never greedily: greedy-by-score is
wrong as soon as a big customer crowds out two slightly smaller ones that together weigh
more, or takes the car that a later customer could not do without.

Formulation.  Costs depend only on the package, applicability only on (tier, needs a car,
ride-hailing); so the customers of a tier with the same applicable packages are
interchangeable except for their score.  The integers are "how many of this class get
this package"; each customer has a continuous ``z`` in [0, 1], with Σz = Σcount per
class.  For integer counts the ``z`` part is integral (one equality per class: totally
unimodular), i.e. the best-scored members of the class are the ones covered, so the
optimum is exactly the one of the textbook binary customer×package program — which it
replaces because HiGHS needed 10–30 s on that one (2,000 customers, a binding budget:
thousands of interchangeable binaries to branch over) and needs ~0.05 s on this one.

"P0 first" is lexicographic, in two solves rather than with one big weight: stage 1
maximises the raw risk of the ``[objective].first`` tiers alone (then how many of them);
stage 2 maximises everyone's weighted risk subject to keeping stage 1's optimum.  A weight
"large enough" would have to exceed the whole non-P0 objective (≈10⁹ score-hundredths for
2,000 customers), and objectives of ~10¹⁵ are where a floating-point solver's tolerances
stop being exact.

Ties.  Among plans of equal coverage the solver prefers covering more customers and the
packages listed first in a tier's ``packages`` (a P0 ride-hailing driver gets the income
subsidy rather than a loaner when both are affordable).  That is a bonus whose sum over
all customers is below ½, while coverage moves in steps of ≥ 1 hundredth-point, so it
breaks ties and never costs coverage.

Money is integer yuan and scores integer hundredths, so every total here is exact.
The module is pure: frame + model + resources in, :class:`Allocation` out.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from tierctl.errors import InputError, Problem, UsageError
from tierctl.models.loader import Section

if TYPE_CHECKING:
    from tierctl.shortage import ShortageResult

__all__ = [
    "AllocateModel",
    "Allocation",
    "Item",
    "LoanerKind",
    "Marginal",
    "Package",
    "PlanRow",
    "Risk",
    "Shortfall",
    "TierPolicy",
    "Usage",
    "allocate",
    "check_resources",
    "frame_from_scores",
    "load_model",
]

#: Columns :func:`allocate` reads from the scored frame (``wait_days``, ``_row`` and
#: ``ride_hailing_reason`` are optional).
REQUIRED_COLUMNS = ("customer_id", "name", "tier", "score", "I", "ride_hailing")
POOLS = ("premium", "regular")


# =========================================================================================
# The model (rules as data)
# =========================================================================================


@dataclass(frozen=True)
class LoanerKind:
    """A kind of loaner car; ``pool`` says which cars it takes (premium or regular)."""

    key: str
    name: str
    name_en: str
    pool: str
    cost_per_day: int


@dataclass(frozen=True)
class Item:
    """A one-off compensation item (supercharging credit, extended warranty …)."""

    key: str
    name: str
    name_en: str
    cost: int


@dataclass(frozen=True)
class Package:
    """One option of a tier's compensation menu: ≤1 loaner, the subsidy or not, items."""

    key: str
    name: str
    name_en: str
    loaner: str | None
    subsidy: bool
    items: tuple[str, ...]


@dataclass(frozen=True)
class TierPolicy:
    """A tier's objective weight and its packages, most preferred first."""

    key: str
    label: str
    weight: int
    packages: tuple[str, ...]
    no_package_note: str


@dataclass(frozen=True)
class AllocateModel:
    """A validated ``kind = "allocate"`` model file."""

    name: str
    title: str
    path: Path
    tiers: dict[str, TierPolicy]
    packages: dict[str, Package]
    items: dict[str, Item]
    loaners: dict[str, LoanerKind]
    subsidy_name: str
    subsidy_name_en: str
    subsidy_per_day: int
    need_impact: int
    loaner_only_if_needed: bool
    subsidy_only_ride_hailing: bool
    mobility_if_needed: bool
    first: tuple[str, ...]
    days_to_eta: int
    score_decimals: int
    time_limit_s: float
    marginal_loaners: int
    marginal_budget: int

    @classmethod
    def from_section(cls, sec: Section) -> AllocateModel:
        """Build and validate the model; every problem raises :class:`ModelError` naming the key."""
        _only(sec, {"kind", "name", "title", "title_en", "defaults", "objective", "solver",
                    "marginal", "rules", "subsidy", "loaners", "items", "packages", "tiers"})
        defaults = sec.section("defaults", {})
        _only(defaults, {"days_to_eta", "score_decimals"})
        objective = sec.section("objective", {})
        _only(objective, {"first"})
        solver = sec.section("solver", {})
        _only(solver, {"time_limit_s"})
        marginal = sec.section("marginal", {})
        _only(marginal, {"loaners", "budget"})
        rules = sec.section("rules")
        _only(rules, {"need_impact", "loaner_only_if_needed", "subsidy_only_ride_hailing",
                      "mobility_if_needed"})
        subsidy = sec.section("subsidy")
        _only(subsidy, {"name", "name_en", "per_day"})

        loaners: dict[str, LoanerKind] = {}
        for key, s in _subsections(sec, "loaners"):
            _only(s, {"name", "name_en", "pool", "cost_per_day"})
            loaners[key] = LoanerKind(key, s.str("name"), s.str("name_en", key),
                                      s.choice("pool", POOLS), s.int("cost_per_day", min=0))
        items: dict[str, Item] = {}
        for key, s in _subsections(sec, "items"):
            _only(s, {"name", "name_en", "cost"})
            items[key] = Item(key, s.str("name"), s.str("name_en", key), s.int("cost", min=0))
        packages: dict[str, Package] = {}
        for key, s in _subsections(sec, "packages"):
            _only(s, {"name", "name_en", "loaner", "subsidy", "items"})
            loaner = s.str("loaner", "none")
            if loaner != "none" and loaner not in loaners:
                raise s.error("loaner", f"没有名为「{loaner}」的代步车种类",
                              hint=f"可用：none, {', '.join(loaners)}（在 [loaners.*] 中定义）")
            its = tuple(s.list("items", [], of=str))
            for i, it in enumerate(its):
                if it not in items:
                    raise s.error(f"items[{i}]", f"没有名为「{it}」的补偿项目",
                                  hint=f"可用：{', '.join(items)}（在 [items.*] 中定义）")
            if len(set(its)) != len(its):
                raise s.error("items", "同一个补偿项目写了两次")
            packages[key] = Package(key, s.str("name"), s.str("name_en", key),
                                    None if loaner == "none" else loaner,
                                    s.bool("subsidy", False), its)
        tiers: dict[str, TierPolicy] = {}
        for key, s in _subsections(sec, "tiers"):
            _only(s, {"label", "weight", "packages", "no_package_note"})
            pkgs = tuple(s.list("packages", of=str))
            for i, p in enumerate(pkgs):
                if p not in packages:
                    raise s.error(f"packages[{i}]", f"没有名为「{p}」的方案",
                                  hint=f"可用：{', '.join(packages)}（在 [packages.*] 中定义）")
            if len(set(pkgs)) != len(pkgs):
                raise s.error("packages", "同一个方案写了两次")
            tiers[key] = TierPolicy(key, s.str("label", key), s.int("weight", min=0, max=10**6),
                                    pkgs, s.str("no_package_note", f"{key} 政策没有可给的方案"))
        if not tiers:
            raise sec.error("tiers", "至少要定义一个级别（[tiers.P0] …）")
        first = tuple(objective.list("first", [], of=str))
        for i, t in enumerate(first):
            if t not in tiers:
                raise objective.error(f"first[{i}]", f"没有名为「{t}」的级别",
                                      hint=f"可用：{', '.join(tiers)}")
        return cls(
            name=sec.str("name", sec.path.stem),
            title=sec.str("title", sec.str("name", sec.path.stem)),
            path=sec.path,
            tiers=tiers,
            packages=packages,
            items=items,
            loaners=loaners,
            subsidy_name=subsidy.str("name"),
            subsidy_name_en=subsidy.str("name_en", "Income subsidy"),
            subsidy_per_day=subsidy.int("per_day", min=0),
            need_impact=rules.int("need_impact", min=0),
            loaner_only_if_needed=rules.bool("loaner_only_if_needed"),
            subsidy_only_ride_hailing=rules.bool("subsidy_only_ride_hailing"),
            mobility_if_needed=rules.bool("mobility_if_needed"),
            first=first,
            days_to_eta=defaults.int("days_to_eta", 21, min=0, max=3650),
            score_decimals=defaults.int("score_decimals", 2, min=0, max=4),
            time_limit_s=float(solver.number("time_limit_s", 30, min=0.1)),
            marginal_loaners=marginal.int("loaners", 1, min=1),
            marginal_budget=marginal.int("budget", 5000, min=1),
        )

    # -- costs ----------------------------------------------------------------------------
    def package_cost(self, key: str, days: int) -> int:
        """Total cost of a package in yuan over ``days`` days (exact integer)."""
        p = self.packages[key]
        cost = sum(self.items[i].cost for i in p.items)
        if p.loaner is not None:
            cost += self.loaners[p.loaner].cost_per_day * days
        if p.subsidy:
            cost += self.subsidy_per_day * days
        return cost

    def cost_lines(self, key: str, days: int) -> list[str]:
        """The cost of a package spelled out, one short Chinese line per component."""
        p = self.packages[key]
        lines = []
        if p.loaner is not None:
            lk = self.loaners[p.loaner]
            lines.append(f"{lk.name} {lk.cost_per_day:,} 元/天 × {days} 天 = "
                         f"{lk.cost_per_day * days:,} 元")
        if p.subsidy:
            lines.append(f"{self.subsidy_name} {self.subsidy_per_day:,} 元/天 × {days} 天 = "
                         f"{self.subsidy_per_day * days:,} 元")
        for i in p.items:
            it = self.items[i]
            lines.append(f"{it.name} {it.cost:,} 元" if it.cost else f"{it.name}（不计费）")
        return lines


def load_model(name_or_path: str | Path = "allocate") -> AllocateModel:
    """Load a packaged allocation model by name, or a user's copy by path."""
    return AllocateModel.from_section(Section.load(name_or_path, kind="allocate"))


# =========================================================================================
# From a scored shortage list to the allocation frame
# =========================================================================================


def frame_from_scores(result: ShortageResult) -> pd.DataFrame:
    """The frame :func:`allocate` reads, built from a scored shortage list (job A).

    ``customer_id`` is the shortage result's customer key (the id, or name + phone when
    the export has no id), so every plan row joins back to exactly one scored row.

    Who is a ride-hailing driver (the income subsidy's condition) is decided by the
    scoring model's own rule, not by a second keyword list: the usage text contains a
    keyword of the ``keywords`` rule(s) on ``usage`` that give the I dimension its top
    score (in ``rite``: 网约车/出租车/营运/滴滴/… → I = 10), with the model's negations.
    Editing that list in the model changes both the score and the subsidy.  A customer
    whose I is the top score although no usage keyword fired (the export carried the
    I score itself) counts as well: on the RITE scale, I = 10 *is* "ride-hailing / taxi
    driver".  ``ride_hailing_reason`` says which of the two applied.

    Raises :class:`UsageError` when the scoring model's I is not "impact of the car off
    the road" (``rite100``'s I is *influence*): need-a-car and ride-hailing rest on it.
    """
    from tierctl.models.rules import Keywords
    from tierctl.textmatch import keyword_codes

    model = result.model
    c = result.customers
    n = len(c)
    dim = next((d for d in model.dimensions if d.key == "I"), None)
    usage_rules = [r for r in (dim.rules if dim is not None else [])
                   if isinstance(r, Keywords) and r.field == "usage"]
    if dim is None or not usage_rules:
        what = f"是「{dim.label}」" if dim is not None else "不存在"
        raise UsageError(
            f"评分模型「{model.name}」的 I 维度{what}，不是按用车场景打的影响程度："
            "无法判断谁需要代步车、谁是网约车司机",
            hint="用 rite 模型打分后再分配（tierctl allocate 文件 --score-model rite）")
    usage = (c["usage"].astype("string") if "usage" in c.columns
             else pd.Series(pd.array([None] * n, dtype="string"), index=c.index))
    impact = pd.to_numeric(c["I"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    ride = np.zeros(n, dtype=bool)
    any_usage = np.zeros(n, dtype=bool)
    why = np.full(n, "", dtype=object)
    for rule in usage_rules:
        codes = keyword_codes(usage, rule.keywords, model.negations if rule.negate else ())
        fired = codes >= 0
        any_usage |= fired
        if float(rule.score) != float(dim.hi):
            continue
        texts = np.asarray([_rule_reason(rule.reason, k) for k in rule.keywords], dtype=np.object_)
        new = fired & ~ride
        why[new] = texts[codes[new]]
        ride |= fired
    given = ~ride & ~any_usage & (impact == float(dim.hi))
    why[given] = f"I={dim.hi}（导出表给出的{dim.label}满分，即营运车辆），用车场景未写明"
    ride |= given
    ids = c["key"] if "key" in c.columns else c["customer_id"]
    return pd.DataFrame({
        "customer_id": ids.astype("string").to_numpy(),
        "name": (c["name"].astype("string") if "name" in c.columns
                 else pd.Series(pd.array([None] * n, dtype="string"))).to_numpy(),
        "tier": c["tier"].astype("string").to_numpy(),
        # exact: the stored integer total, not a float that was divided somewhere
        "score": [float(Decimal(int(v)) / Decimal(model.scale)) for v in c["total_scaled"].tolist()]
        if "total_scaled" in c.columns else pd.to_numeric(c["score"]).to_numpy(),
        "I": impact,
        "ride_hailing": ride,
        "ride_hailing_reason": why,
        "wait_days": c["wait_days"].to_numpy() if "wait_days" in c.columns else np.zeros(n, dtype=np.int64),
        "_row": c["_row"].to_numpy() if "_row" in c.columns else np.arange(2, n + 2),
    })


def _rule_reason(template: str, keyword: str) -> str:
    try:
        return template.format(keyword=keyword, field="usage", value=keyword, min="")
    except (KeyError, IndexError, ValueError):
        return f"用车场景含「{keyword}」"


def _only(sec: Section, allowed: set[str]) -> None:
    # A typo such as ``cost_per_dya`` would otherwise silently fall back to a default.
    for k in sec.keys():
        if k not in allowed:
            raise sec.error(k, "不认识的设置项", hint=f"可用：{', '.join(sorted(allowed))}；检查拼写")


def _subsections(sec: Section, name: str) -> list[tuple[str, Section]]:
    table = sec.section(name, {})
    return [(k, table.section(k)) for k in table.keys()]


# =========================================================================================
# The result
# =========================================================================================


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


# =========================================================================================
# Preparing the problem
# =========================================================================================


@dataclass
class _Prob:
    """Customers in canonical order, grouped into classes of interchangeable customers.

    Costs depend only on the package and applicability only on (tier, needs a car,
    ride-hailing), so customers of one tier with the same applicable packages form a
    *class* whose members differ only in their score.  If a class gets ``n`` packages,
    giving them to its ``n`` highest scores is optimal, so the integer program needs one
    integer per (class, package) — "how many" — plus one continuous ``z`` in [0, 1] per
    customer.  For integer counts, the ``z`` part is an LP with a totally unimodular
    matrix (one equality per class), so it is integral: the formulation is exact.  It
    is also free of the symmetry between equal customers that made the per-customer
    binary formulation take 10–30 s on 2,000 customers with a binding budget.
    """

    ids: np.ndarray  # str
    names: list[str]
    tiers: np.ndarray  # str
    cents: np.ndarray  # int64 score × 10**decimals
    weights: np.ndarray  # int64 tier weight
    impact: np.ndarray  # float
    ride: np.ndarray  # bool
    ride_why: list[str]  # why a driver counts as ride-hailing ("" when not, or not given)
    first: np.ndarray  # bool: tier in model.first
    pkg_keys: list[str]  # all package keys; package index = position
    cls_of: np.ndarray  # customer -> class index, -1 when no package applies
    cls_first: np.ndarray  # bool per class
    cls_members: list[np.ndarray]  # customer indices per class, best score first
    cls_pkgs: list[list[int]]  # package indices per class, most preferred first
    y_cls: np.ndarray  # one entry per (class, package): the class …
    y_pkg: np.ndarray  # … the package index
    y_rank: np.ndarray  # … its position in the tier's preference list
    y_cost: np.ndarray  # … its cost in yuan (int64)
    y_premium: np.ndarray  # … takes a premium car
    y_regular: np.ndarray  # … takes a regular car
    y_ub: np.ndarray  # … the class size (upper bound of the count)
    max_rank: int

    @property
    def value(self) -> np.ndarray:
        return self.cents * self.weights

    def covered(self, counts: np.ndarray) -> np.ndarray:
        """Customer mask covered by integer ``counts`` per (class, package)."""
        return self.assign(counts) >= 0

    def assign(self, counts: np.ndarray) -> np.ndarray:
        """Customer -> package index (-1 = nothing) for integer ``counts``.

        The best scores of a class get packages, the most preferred package going to
        the highest score; ties in score were already broken by customer id.
        """
        pick = np.full(len(self.ids), -1, dtype=np.int64)
        for g, members in enumerate(self.cls_members):
            sel = np.flatnonzero(self.y_cls == g)  # already in preference order
            pkgs = np.repeat(self.y_pkg[sel], counts[sel].astype(np.int64))
            pick[members[:pkgs.size]] = pkgs
        return pick

    def usage(self, counts: np.ndarray) -> tuple[int, int, int]:
        """(premium cars, regular cars, yuan) used by ``counts`` — exact integers."""
        c = counts.astype(np.int64)
        return (int((c * self.y_premium).sum()), int((c * self.y_regular).sum()),
                int((c * self.y_cost).sum()))


def _prepare(frame: pd.DataFrame, model: AllocateModel, days: int) -> _Prob:
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"分配需要这些列，但表中没有：{', '.join(missing)}",
                         hint="先用 tierctl score 给客户打分（得到级别、总分、I 分和是否网约车），再分配")
    n = len(frame)
    rows = (frame["_row"].tolist() if "_row" in frame.columns else [None] * n)
    problems: list[Problem] = []

    ids_s = frame["customer_id"].astype("string")
    for pos in np.flatnonzero(ids_s.isna().to_numpy()):
        problems.append(Problem(rows[pos], "customer_id", None, "缺少客户编号"))
    dup = (ids_s.duplicated(keep=False) & ids_s.notna()).to_numpy(dtype=bool)
    for pos in np.flatnonzero(dup):
        problems.append(Problem(rows[pos], "customer_id", ids_s.iloc[pos],
                                "客户编号重复：同一位客户只能分配一次，请合并或更正"))
    tiers_s = frame["tier"].astype("string")
    bad_tier = (~tiers_s.isin(list(model.tiers))).fillna(True).to_numpy(dtype=bool)
    for pos in np.flatnonzero(bad_tier):
        v = tiers_s.iloc[pos]
        problems.append(Problem(rows[pos], "tier", None if pd.isna(v) else v,
                                f"级别不在分配模型中（可用：{', '.join(model.tiers)}）"))
    score = pd.to_numeric(frame["score"], errors="coerce").astype("Float64")
    sv = score.to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        bad_score = ~np.isfinite(sv) | (sv < 0)
    for pos in np.flatnonzero(bad_score):
        problems.append(Problem(rows[pos], "score", frame["score"].iloc[pos],
                                "总分应为不小于 0 的数字"))
    impact = pd.to_numeric(frame["I"], errors="coerce").astype("Float64")
    iv = impact.to_numpy(dtype=float, na_value=np.nan)
    for pos in np.flatnonzero(~np.isfinite(iv)):
        problems.append(Problem(rows[pos], "I", frame["I"].iloc[pos],
                                "缺少 I（影响程度）分：判断是否需要代步车要用到它"))
    try:
        # Unknown usage is not ride-hailing: the subsidy needs a positive answer.
        ride_all = frame["ride_hailing"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    except (TypeError, ValueError) as exc:
        raise InputError("「是否网约车」列（ride_hailing）应为 是/否（true/false）",
                         hint="检查 ride_hailing 列") from exc
    if problems:
        raise InputError("分配前发现问题", problems=problems, hint="更正后重新运行")
    ride_why_all = (frame["ride_hailing_reason"].astype("string").fillna("").tolist()
                    if "ride_hailing_reason" in frame.columns else [""] * n)

    scale = 10 ** model.score_decimals
    cents_all = np.rint(sv * scale).astype(np.int64)
    ids_all = ids_s.to_numpy(dtype=str)
    tiers_all = tiers_s.to_numpy(dtype=str)
    tier_rank = {t: i for i, t in enumerate(model.tiers)}
    trank = np.array([tier_rank[t] for t in tiers_all], dtype=np.int64)
    # Canonical order (tier, score desc, id) so that row order never changes the plan,
    # not even between customers the optimiser sees as interchangeable.
    order = np.lexsort((ids_all, -cents_all, trank))
    names_all = frame["name"].astype("string").fillna("").tolist()

    tiers = tiers_all[order]
    imp = iv[order]
    ride = ride_all[order]
    need = imp >= model.need_impact
    pkg_keys = list(model.packages)
    pkg_index = {k: i for i, k in enumerate(pkg_keys)}
    cost_of = np.array([model.package_cost(k, days) for k in pkg_keys], dtype=np.int64)
    pool_of = [_pool(model, k) for k in pkg_keys]

    cls_of = np.full(n, -1, dtype=np.int64)
    cls_members: list[np.ndarray] = []
    cls_pkgs: list[list[int]] = []
    cls_first: list[bool] = []
    y_cls: list[int] = []
    y_pkg: list[int] = []
    y_rank: list[int] = []
    max_rank = 0
    for t, pol in model.tiers.items():
        in_tier = tiers == t
        if not pol.packages or not in_tier.any():
            continue
        max_rank = max(max_rank, len(pol.packages) - 1)
        # Applicability pattern as a bitmask over the tier's packages: one class per pattern.
        code = np.zeros(n, dtype=np.int64)
        for j, pk in enumerate(pol.packages):
            code |= _applies(model, pk, need, ride).astype(np.int64) << j
        for u in np.unique(code[in_tier]).tolist():
            if u == 0:
                continue  # nothing applies: these customers stay uncovered
            g = len(cls_members)
            members = np.flatnonzero(in_tier & (code == u))
            cls_of[members] = g
            cls_members.append(members)
            cls_first.append(t in model.first)
            ranks = [j for j in range(len(pol.packages)) if u >> j & 1]
            cls_pkgs.append([pkg_index[pol.packages[j]] for j in ranks])
            for j in ranks:
                y_cls.append(g)
                y_pkg.append(pkg_index[pol.packages[j]])
                y_rank.append(j)
    yp = np.array(y_pkg, dtype=np.int64)
    yc = np.array(y_cls, dtype=np.int64)
    sizes = np.array([m.size for m in cls_members], dtype=np.int64)
    return _Prob(
        ids=ids_all[order], names=[names_all[i] for i in order], tiers=tiers,
        cents=cents_all[order],
        weights=np.array([model.tiers[t].weight for t in tiers], dtype=np.int64),
        impact=imp, ride=ride, ride_why=[ride_why_all[i] for i in order],
        first=np.isin(tiers, list(model.first)), pkg_keys=pkg_keys,
        cls_of=cls_of, cls_first=np.array(cls_first, dtype=bool), cls_members=cls_members,
        cls_pkgs=cls_pkgs, y_cls=yc, y_pkg=yp, y_rank=np.array(y_rank, dtype=np.int64),
        y_cost=cost_of[yp] if yp.size else np.zeros(0, dtype=np.int64),
        y_premium=np.array([pool_of[i] == "premium" for i in y_pkg], dtype=bool),
        y_regular=np.array([pool_of[i] == "regular" for i in y_pkg], dtype=bool),
        y_ub=sizes[yc] if yc.size else np.zeros(0, dtype=np.int64),
        max_rank=max_rank,
    )


def _pool(model: AllocateModel, key: str) -> str | None:
    """The car pool a package takes a car from, or None."""
    kind = model.packages[key].loaner
    return None if kind is None else model.loaners[kind].pool


def _applies(model: AllocateModel, key: str, need: np.ndarray, ride: np.ndarray) -> np.ndarray:
    """Which customers a package may go to under ``[rules]`` (vectorised)."""
    p = model.packages[key]
    mask = np.ones(need.shape, dtype=bool)
    if p.loaner is not None and model.loaner_only_if_needed:
        mask &= need
    if p.subsidy and model.subsidy_only_ride_hailing:
        mask &= ride
    if p.loaner is None and not p.subsidy and model.mobility_if_needed:
        # Someone who needs a car is not "covered" by a coupon.
        mask &= ~need
    return mask


def _not_applicable_reason(model: AllocateModel, key: str, impact: float, ride: bool) -> str | None:
    p = model.packages[key]
    need = impact >= model.need_impact
    i_txt = _fmt_num(impact)
    if p.loaner is not None and model.loaner_only_if_needed and not need:
        return f"「{p.name}」不适用：代步车只给需要用车的客户（I={i_txt} < {model.need_impact}）"
    if p.subsidy and model.subsidy_only_ride_hailing and not ride:
        return f"「{p.name}」不适用：{model.subsidy_name}只给网约车/出租车司机"
    if p.loaner is None and not p.subsidy and model.mobility_if_needed and need:
        return (f"「{p.name}」不适用：客户需要用车（I={i_txt} ≥ {model.need_impact}），"
                f"只送权益不算覆盖，须给代步车或{model.subsidy_name}")
    return None


# =========================================================================================
# Solving
# =========================================================================================


@dataclass(frozen=True)
class _Caps:
    regular: int
    premium: int
    budget: int


_HIGHS = {"presolve": True}


def _opts(model: AllocateModel) -> dict[str, Any]:
    # mip_rel_gap 0: HiGHS' default 1e-4 would stop "within 0.01 %", not at the optimum.
    return {**_HIGHS, "mip_rel_gap": 0.0, "time_limit": model.time_limit_s}


def _run_milp(p: _Prob, model: AllocateModel, cls_sel: np.ndarray, z_obj: np.ndarray,
              y_obj: np.ndarray, caps: _Caps,
              floor: tuple[np.ndarray, float] | None = None) -> tuple[np.ndarray, bool]:
    """Maximise over the selected classes; return (integer count per (class, package), optimal).

    Columns: the counts ``y`` (integer) then the customers' ``z`` (continuous).
    ``floor`` = (coefficient per customer, bound) adds Σ coef·z ≥ bound (stage 2).
    """
    counts = np.zeros(p.y_cls.size, dtype=np.int64)
    ysel = np.flatnonzero(cls_sel[p.y_cls]) if p.y_cls.size else np.zeros(0, dtype=np.int64)
    if ysel.size == 0:
        return counts, True
    zsel = np.flatnonzero((p.cls_of >= 0) & cls_sel[np.maximum(p.cls_of, 0)])
    my, mz = ysel.size, zsel.size
    remap = np.full(p.cls_first.size, -1, dtype=np.int64)
    chosen_cls = np.flatnonzero(cls_sel)
    remap[chosen_cls] = np.arange(chosen_cls.size)
    # Per class: Σ z (customers covered) − Σ y (packages handed out) = 0.
    link = sparse.csr_matrix(
        (np.concatenate([-np.ones(my), np.ones(mz)]),
         (np.concatenate([remap[p.y_cls[ysel]], remap[p.cls_of[zsel]]]),
          np.arange(my + mz))),
        shape=(chosen_cls.size, my + mz))
    blocks = [link]
    lb = [np.zeros(chosen_cls.size)]
    ub = [np.zeros(chosen_cls.size)]
    for coef, cap in ((p.y_premium[ysel], caps.premium), (p.y_regular[ysel], caps.regular),
                      (p.y_cost[ysel], caps.budget)):
        if coef.any():
            blocks.append(sparse.csr_matrix(
                np.concatenate([coef.astype(float), np.zeros(mz)]).reshape(1, -1)))
            lb.append(np.array([-np.inf]))
            ub.append(np.array([float(cap)]))
    if floor is not None:
        coef, bound = floor
        blocks.append(sparse.csr_matrix(
            np.concatenate([np.zeros(my), coef[zsel].astype(float)]).reshape(1, -1)))
        lb.append(np.array([bound]))
        ub.append(np.array([np.inf]))
    res = milp(
        c=-np.concatenate([y_obj[ysel], z_obj[zsel]]).astype(float),
        integrality=np.concatenate([np.ones(my), np.zeros(mz)]),
        bounds=Bounds(np.zeros(my + mz),
                      np.concatenate([p.y_ub[ysel].astype(float), np.ones(mz)])),
        constraints=LinearConstraint(sparse.vstack(blocks, format="csr"),
                                     np.concatenate(lb), np.concatenate(ub)),
        options=_opts(model),
    )
    if res.x is None:
        return counts, False
    counts[ysel] = np.rint(res.x[:my]).astype(np.int64)
    # Exact integer re-check of the rounded answer: a plan that overspends by one yuan
    # because of a solver tolerance must never reach a manager.
    prem, reg, money = p.usage(counts)
    if prem > caps.premium or reg > caps.regular or money > caps.budget:  # pragma: no cover
        raise RuntimeError("求解器返回的方案超出资源限制")
    return counts, res.status == 0


def _solve(p: _Prob, model: AllocateModel, caps: _Caps) -> tuple[np.ndarray, bool]:
    """The lexicographic optimum.

    Stage 1, first tiers only: their raw risk, then how many of them are covered.
    Stage 2, everyone, keeping stage 1's optimum: the weighted risk, then a tie-break
    bonus per package handed out that favours covering more customers and the packages
    listed first.  Each tie-break adds up to less than ½ over all customers, while the
    quantity above it moves in steps of ≥ 1, so a tie-break never costs coverage.
    """
    n = len(p.ids)
    optimal = True
    floor = None
    if p.cls_first.any():
        # δ·count ≤ n·δ < ½: "cover more P0" only decides between equal P0 risk.
        delta = 1.0 / (2.0 * (n + 1))
        first_obj = p.cents + delta
        counts1, ok1 = _run_milp(p, model, p.cls_first, first_obj,
                                 np.zeros(p.y_cls.size), caps)
        optimal &= ok1
        # The optimum from exact integers, not from the solver's floating objective.
        cov1 = p.covered(counts1)
        best = int(p.cents[cov1].sum()) + delta * int(cov1.sum())
        floor = (np.where(p.first, first_obj, 0.0), best - delta / 2)
    eps = 1.0 / (2.0 * (p.max_rank + 1) * (n + 1))
    counts, ok = _run_milp(p, model, np.ones(p.cls_first.size, dtype=bool),
                           p.value.astype(float), (p.max_rank + 1 - p.y_rank) * eps, caps, floor)
    return counts, optimal and ok


def _shortfall_extras(p: _Prob, model: AllocateModel, caps: _Caps) -> tuple[int, int, int, bool]:
    """Fewest extra cars, then least extra money, to cover every coverable first-tier customer.

    Solved on the first-tier classes alone (they come first, so nobody else competes).
    Columns: the counts y (integer), extra regular cars eR and premium cars eP (integer),
    extra money eB (continuous; integral at the optimum since costs are integers).
    """
    ysel = np.flatnonzero(p.cls_first[p.y_cls])
    my = ysel.size
    chosen_cls = np.flatnonzero(p.cls_first)
    remap = np.full(p.cls_first.size, -1, dtype=np.int64)
    remap[chosen_cls] = np.arange(chosen_cls.size)
    n_cols = my + 3
    cover = sparse.csr_matrix((np.ones(my), (remap[p.y_cls[ysel]], np.arange(my))),
                              shape=(chosen_cls.size, n_cols))
    sizes = np.array([p.cls_members[g].size for g in chosen_cls], dtype=float)
    prem = np.zeros(n_cols)
    prem[:my] = p.y_premium[ysel]
    prem[my + 1] = -1
    reg = np.zeros(n_cols)
    reg[:my] = p.y_regular[ysel]
    reg[my] = -1
    money = np.zeros(n_cols)
    money[:my] = p.y_cost[ysel]
    money[my + 2] = -1
    a = sparse.vstack([cover, sparse.csr_matrix(np.vstack([prem, reg, money]))], format="csr")
    lb = np.concatenate([sizes, np.full(3, -np.inf)])
    ub = np.concatenate([sizes, [caps.premium, caps.regular, caps.budget]])
    integrality = np.concatenate([np.ones(my + 2), [0]])
    total = float(sizes.sum())
    bounds = Bounds(np.zeros(n_cols),
                    np.concatenate([p.y_ub[ysel].astype(float), [total, total, np.inf]]))
    c_cars = np.zeros(n_cols)
    c_cars[my] = c_cars[my + 1] = 1
    # Among equally few extra cars, ask for regular ones: a premium car costs < 1 extra.
    c_first = c_cars.copy()
    c_first[my + 1] += 1.0 / (total + 1.0)
    r1 = milp(c_first, integrality=integrality, bounds=bounds,
              constraints=LinearConstraint(a, lb, ub), options=_opts(model))
    if r1.x is None:  # pragma: no cover - only on a solver time-out without any solution
        return 0, 0, 0, False
    cars = int(np.rint(r1.x[my] + r1.x[my + 1]))
    premium_cars = int(np.rint(r1.x[my + 1]))
    c_money = np.zeros(n_cols)
    c_money[my + 2] = 1
    only_prem = np.zeros(n_cols)
    only_prem[my + 1] = 1
    r2 = milp(c_money, integrality=integrality, bounds=bounds,
              constraints=[LinearConstraint(a, lb, ub),
                           LinearConstraint(np.vstack([c_cars, only_prem]), -np.inf,
                                            [cars + 0.5, premium_cars + 0.5])],
              options=_opts(model))
    x = r2.x if r2.x is not None else r1.x
    counts = np.zeros(p.y_cls.size, dtype=np.int64)
    counts[ysel] = np.rint(x[:my]).astype(np.int64)
    # Exact figures from the integral counts, not from the solver's floats.
    prem_used, reg_used, money_used = p.usage(counts)
    extra_p = max(0, prem_used - caps.premium)
    extra_r = max(0, reg_used - caps.regular)
    extra_b = max(0, money_used - caps.budget)
    return extra_r + extra_p, extra_p, extra_b, r1.status == 0 and r2.status == 0


# =========================================================================================
# The public entry point
# =========================================================================================


def allocate(
    frame: pd.DataFrame,
    model: AllocateModel | Section | str | Path = "allocate",
    *,
    loaners: int,
    premium_loaners: int = 0,
    budget: float | int | Decimal,
    days_to_eta: int | None = None,
    with_marginal: bool = True,
) -> Allocation:
    """Choose, for each scored customer, a package of their tier's policy or nothing.

    ``loaners`` is the whole fleet available, ``premium_loaners`` how many of those are
    premium (so ``premium_loaners ≤ loaners``); packages with a premium loaner take a
    premium car, the others a regular one.  ``budget`` is the compensation authority in
    yuan (fractions of a yuan are dropped) for ``days_to_eta`` days (default: the model's).
    ``with_marginal=False`` skips the two re-solves for the marginal values.

    Raises :class:`UsageError` for impossible resources, :class:`InputError` for bad rows,
    :class:`ModelError` for a bad model file.
    """
    if not isinstance(model, AllocateModel):
        model = (AllocateModel.from_section(model) if isinstance(model, Section)
                 else load_model(model))
    days = model.days_to_eta if days_to_eta is None else days_to_eta
    caps, total_loaners = _check_resources(loaners, premium_loaners, budget, days)
    p = _prepare(frame, model, days)

    counts, optimal = _solve(p, model, caps)
    warnings: list[str] = []
    if not optimal:
        warnings.append(f"求解在 {model.time_limit_s:g} 秒内未证明最优：这是当时找到的最好方案")

    pick = p.assign(counts)  # customer -> package index, -1 = nothing
    covered_mask = pick >= 0
    has_option = p.cls_of >= 0
    prem_used, reg_used, money_used = p.usage(counts)
    used = Usage(
        loaners_used=prem_used + reg_used, loaners_available=total_loaners,
        premium_used=prem_used, premium_available=caps.premium,
        regular_used=reg_used, regular_available=caps.regular,
        budget_used=money_used, budget_available=caps.budget, days_to_eta=days,
    )
    covered = _risk(p, model, covered_mask)
    uncovered = _risk(p, model, ~covered_mask)
    no_package = _risk(p, model, ~has_option)

    shortfall, shortfall_ok = _shortfall(p, model, caps, covered_mask, has_option)
    if not shortfall_ok:
        warnings.append("P0 缺口的计算未在时限内证明最优")

    marginal: dict[str, Marginal] = {}
    if with_marginal:
        for resource, step, more in (
            ("loaners", model.marginal_loaners,
             _Caps(caps.regular + model.marginal_loaners, caps.premium, caps.budget)),
            ("budget", model.marginal_budget,
             _Caps(caps.regular, caps.premium, caps.budget + model.marginal_budget)),
        ):
            more_counts, ok = _solve(p, model, more)
            marginal[resource] = _marginal(p, model, resource, step, covered_mask,
                                           p.covered(more_counts), ok)

    plan = _plan_rows(p, model, pick, days, caps, used)
    return Allocation(
        model=model.name, plan=plan, used=used, covered=covered, uncovered=uncovered,
        uncovered_no_package=no_package, p0_shortfall=shortfall, marginal=marginal,
        optimal=optimal, warnings=tuple(warnings),
    )


def check_resources(loaners: Any, premium_loaners: Any, budget: Any, days_to_eta: Any = 0) -> None:
    """Raise :class:`UsageError` for resources no plan can use (negative, premium cars
    beyond the fleet, a budget that is not an amount) — before any file is read."""
    _check_resources(loaners, premium_loaners, budget, days_to_eta)


def _check_resources(loaners: Any, premium: Any, budget: Any, days: Any) -> tuple[_Caps, int]:
    for label, v in (("--loaners", loaners), ("--premium-loaners", premium),
                     ("--days-to-eta", days)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
            raise UsageError(f"{label} 应为不小于 0 的整数，实际是 {v!r}")
    if premium > loaners:
        raise UsageError(f"--premium-loaners（{premium}）不能多于 --loaners（{loaners}）",
                         hint="--loaners 是代步车总数，其中 --premium-loaners 辆是高端车")
    try:
        b = Decimal(str(budget))
    except InvalidOperation as exc:
        raise UsageError(f"--budget 应为金额（元），实际是 {budget!r}") from exc
    if not b.is_finite() or b < 0:
        raise UsageError(f"--budget 应为不小于 0 的金额（元），实际是 {budget!r}")
    # Authority is whole yuan: a fraction can never be spent on integer-priced packages.
    whole = int(b.to_integral_value(rounding=ROUND_FLOOR))
    return _Caps(regular=int(loaners) - int(premium), premium=int(premium), budget=whole), int(loaners)


def _risk(p: _Prob, model: AllocateModel, mask: np.ndarray) -> Risk:
    scale = 10 ** model.score_decimals
    by_tier: dict[str, dict[str, float | int]] = {}
    for t in model.tiers:
        m = mask & (p.tiers == t)
        by_tier[t] = {"customers": int(m.sum()),
                      "raw": _as_float(int(p.cents[m].sum()), scale),
                      "weighted": _as_float(int(p.value[m].sum()), scale)}
    return Risk(customers=int(mask.sum()), raw=_as_float(int(p.cents[mask].sum()), scale),
                weighted=_as_float(int(p.value[mask].sum()), scale), by_tier=by_tier)


def _as_float(units: int, scale: int) -> float:
    # Through Decimal so 860 hundredths print as 8.6, never 8.599999999999.
    return float(Decimal(units) / Decimal(scale))


def _marginal(p: _Prob, model: AllocateModel, resource: str, step: int, base: np.ndarray,
              cov: np.ndarray, ok: bool) -> Marginal:
    scale = 10 ** model.score_decimals
    v = p.value
    gain_w = int(v[cov].sum()) - int(v[base].sum())
    gain_f = int(p.cents[cov & p.first].sum()) - int(p.cents[base & p.first].sum())
    what = f"多 {step} 辆代步车" if resource == "loaners" else f"多 {step:,} 元预算"
    first = "/".join(model.first) or "优先级别"
    if gain_f > 0 and gain_w < 0:
        # Lexicographic priority: the extra resource buys more first-tier coverage at the
        # price of lower tiers, which lowers the weighted sum — say so, it looks like a bug.
        note = (f"{what}：{first} 多覆盖 {_as_float(gain_f, scale)} 分风险；因 {first} 优先，"
                f"其他级别让出资源，加权覆盖风险变化 {_as_float(gain_w, scale)}")
    elif gain_w > 0 or gain_f > 0:
        note = f"{what}：加权覆盖风险 +{_as_float(gain_w, scale)}"
    else:
        note = f"{what}：覆盖风险不变（这项资源目前不是瓶颈）"
    return Marginal(
        resource=resource, step=step,
        covered_weighted=_as_float(int(v[cov].sum()), scale),
        gain_weighted=_as_float(gain_w, scale),
        gain_raw=_as_float(int(p.cents[cov].sum()) - int(p.cents[base].sum()), scale),
        gain_customers=int(cov.sum()) - int(base.sum()),
        gain_first_raw=_as_float(gain_f, scale),
        optimal=ok, note=note,
    )


def _shortfall(p: _Prob, model: AllocateModel, caps: _Caps, covered: np.ndarray,
               has_option: np.ndarray) -> tuple[Shortfall | None, bool]:
    """The first-tier customers left out and what would cover them all; (result, optimal)."""
    if not model.first:
        return None, True
    in_first = p.first
    total = int(in_first.sum())
    lacking = in_first & ~covered & has_option
    no_pkg = in_first & ~has_option
    if not lacking.any() and not no_pkg.any():
        return None, True
    names = "/".join(model.first)
    extra_cars = extra_prem = extra_money = 0
    ok = True
    parts = []
    if lacking.any():
        extra_cars, extra_prem, extra_money, ok = _shortfall_extras(p, model, caps)
        need = []
        if extra_cars:
            prem_txt = f"（其中 {extra_prem} 辆高端车）" if extra_prem else ""
            need.append(f"{extra_cars} 辆代步车{prem_txt}")
        if extra_money:
            need.append(f"{extra_money:,} 元预算")
        parts.append(
            f"现有资源不能覆盖全部 {names} 客户：{total} 位中覆盖了 {int((in_first & covered).sum())} 位，"
            f"{int(lacking.sum())} 位未覆盖。要全部覆盖，还需要 "
            f"{'、'.join(need) if ok else '（求解超时，未能算出）'}。")
    if no_pkg.any():
        parts.append(f"另有 {int(no_pkg.sum())} 位 {names} 客户没有适用的方案，增加资源也无法覆盖："
                     f"请检查分配模型的方案和适用规则。")
    s = Shortfall(
        tiers=tuple(model.first), total=total, covered=int((in_first & covered).sum()),
        uncovered=tuple(p.ids[lacking].tolist()), no_package=tuple(p.ids[no_pkg].tolist()),
        extra_loaners=extra_cars, extra_premium_loaners=extra_prem, extra_budget=extra_money,
        message="".join(parts),
    )
    return s, ok


# =========================================================================================
# Explanations
# =========================================================================================


def _fmt_num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _why_not_preferred(model: AllocateModel, preferred: str, chosen: str, cost_of: dict[str, int],
                       cars_left: dict[str, int]) -> str:
    """Why a covered customer got a less preferred package than the first one listed."""
    pk = model.packages[preferred]
    head = f"首选「{pk.name}」未采用："
    pool = _pool(model, preferred)
    if pool is not None and pool != _pool(model, chosen) and cars_left[pool] == 0:
        return head + f"没有空闲的{'高端' if pool == 'premium' else '普通'}代步车"
    extra = cost_of[preferred] - cost_of[chosen]
    if extra > 0:
        return head + f"要多花 {extra:,} 元，这笔预算用来覆盖更多风险"
    return head + "按现有资源，这样分配覆盖的风险最大"


def _plan_rows(p: _Prob, model: AllocateModel, pick: np.ndarray, days: int, caps: _Caps,
               used: Usage) -> tuple[PlanRow, ...]:
    scale = 10 ** model.score_decimals
    d = model.score_decimals
    left_money = caps.budget - used.budget_used
    left_regular = caps.regular - used.regular_used
    left_premium = caps.premium - used.premium_used
    cost_of = {k: model.package_cost(k, days) for k in model.packages}
    rows = []
    for cid, name, tier, cents, imp, ride, ride_why, g, v in zip(
            p.ids.tolist(), p.names, p.tiers.tolist(), p.cents.tolist(), p.impact.tolist(),
            p.ride.tolist(), p.ride_why, p.cls_of.tolist(), pick.tolist(), strict=True):
        pol = model.tiers[tier]
        score = _as_float(cents, scale)
        need = imp >= model.need_impact
        why = [f"{tier}（{pol.label}）总分 {cents / scale:.{d}f}，权重 {pol.weight}",
               (f"需要用车：I={_fmt_num(imp)} ≥ {model.need_impact}" if need
                else f"不需要用车：I={_fmt_num(imp)} < {model.need_impact}")]
        if ride:
            why.append(f"网约车/出租车司机：{ride_why}" if ride_why else "网约车/出租车司机")
        # Applicable packages, most preferred first.
        options = [p.pkg_keys[j] for j in p.cls_pkgs[g]] if g >= 0 else []
        if v >= 0:
            key = p.pkg_keys[v]
            pk = model.packages[key]
            why.append(f"方案「{pk.name}」：" + "；".join(model.cost_lines(key, days))
                       + f"；合计 {cost_of[key]:,} 元")
            if options and options[0] != key:
                why.append(_why_not_preferred(model, options[0], key, cost_of,
                                              {"premium": left_premium, "regular": left_regular}))
            rows.append(PlanRow(cid, name, tier, score, True, key, pk.name, pk.name_en,
                                pk.loaner or "none", cost_of[key], tuple(why)))
            continue
        if not options:
            if not pol.packages:
                why.append(pol.no_package_note)
            else:
                why.append("级别政策中的方案都不适用")
                why.extend(r for k in pol.packages
                           if (r := _not_applicable_reason(model, k, imp, ride)) is not None)
            rows.append(PlanRow(cid, name, tier, score, False, None, "无", "none", "none", 0,
                                tuple(why), "no_package"))
            continue
        cheapest = min(options, key=lambda k: (cost_of[k], options.index(k)))
        ck = model.packages[cheapest]
        car = ""
        if ck.loaner is not None:
            pool = model.loaners[ck.loaner].pool
            car = f" + 1 辆{'高端' if pool == 'premium' else '普通'}代步车"
        why.append(f"资源有限，未覆盖：最省的适用方案「{ck.name}」需 {cost_of[cheapest]:,} 元{car}；"
                   f"剩余 {left_money:,} 元、普通车 {left_regular} 辆、高端车 {left_premium} 辆，"
                   f"已优先覆盖风险更大的组合")
        if tier in model.first:
            why.append(f"{'/'.join(model.first)} 已先覆盖到资源允许的最大风险")
        rows.append(PlanRow(cid, name, tier, score, False, None, "无", "none", "none", 0,
                            tuple(why), "resources"))
    return tuple(rows)
