"""Who gets the loaners and the compensation budget while a part is back-ordered (issue 9).

The service centre has ``N`` loaner cars (``K`` of them premium) and a compensation
authority of ``B`` yuan for the ``D`` days until the part arrives.  Each waiting customer
may receive at most one *package* from their tier's policy (SPEC A5, listed in
``models/allocate.toml``): a loaner of some kind, the ride-hailing income subsidy per day,
one-off compensation items — or nothing.  We choose the packages that maximise the
*risk covered*: the sum of the covered customers' totals, weighted by tier.

This is a multiple-choice knapsack with three resource constraints (premium cars,
regular cars, money), solved exactly as an integer program with
:func:`scipy.optimize.milp` (HiGHS), never greedily: greedy-by-score is wrong as soon as a
big customer crowds out two slightly smaller ones that together weigh more.

"P0 first" is lexicographic and done in two stages rather than with a big weight:
stage 1 maximises the raw risk of the ``[objective].first`` tiers alone; stage 2 maximises
the weighted risk of everyone subject to keeping stage 1's optimum.  A weight "large
enough" would have to exceed the whole non-P0 objective (≈10⁹ for 2,000 customers), and an
objective of 10¹⁵ is where a floating-point MIP solver's tolerances stop being exact.

Among plans of equal coverage, the packages listed first in a tier's ``packages`` are
preferred (a P0 ride-hailing driver gets the income subsidy, not a loaner, when both are
affordable).  That preference is a bonus whose sum over all customers is below ½ of the
smallest coverage step, so it can break ties but never cost coverage.

Money is integer yuan and scores integer hundredths, so every total here is exact.
The module is pure: frame + model + resources in, :class:`Allocation` out.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from tierctl.errors import InputError, ModelError, Problem, UsageError
from tierctl.models.loader import Section

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
    "load_model",
]

#: Columns :func:`allocate` reads from the scored frame (``wait_days`` and ``_row`` are optional).
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

    def to_json(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id, "name": self.name, "tier": self.tier,
            "score": self.score, "covered": self.covered, "option": self.option,
            "option_name": self.option_name, "option_name_en": self.option_name_en,
            "loaner": self.loaner, "cost": self.cost, "why": list(self.why),
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

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step, "covered_weighted": self.covered_weighted,
            "gain_weighted": self.gain_weighted, "gain_raw": self.gain_raw,
            "gain_customers": self.gain_customers, "gain_first_raw": self.gain_first_raw,
            "optimal": self.optimal,
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
    """Customers in canonical order and one binary variable per (customer, applicable package)."""

    ids: np.ndarray  # str
    names: list[str]
    tiers: np.ndarray  # str
    cents: np.ndarray  # int64 score × 10**decimals
    weights: np.ndarray  # int64 tier weight
    impact: np.ndarray  # float
    ride: np.ndarray  # bool
    first: np.ndarray  # bool: tier in model.first
    pkg_keys: list[str]  # all package keys, index = var_pkg
    var_cust: np.ndarray
    var_pkg: np.ndarray
    var_rank: np.ndarray  # position in the tier's preference list
    var_cost: np.ndarray  # int64 yuan
    var_premium: np.ndarray  # bool
    var_regular: np.ndarray  # bool
    max_rank: int

    @property
    def value(self) -> np.ndarray:
        return self.cents * self.weights


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
    dup = (ids_s.duplicated(keep=False) & ids_s.notna()).to_numpy()
    for pos in np.flatnonzero(dup):
        problems.append(Problem(rows[pos], "customer_id", ids_s.iloc[pos],
                                "客户编号重复：同一位客户只能分配一次，请合并或更正"))
    tiers_s = frame["tier"].astype("string")
    bad_tier = (~tiers_s.isin(list(model.tiers)) | tiers_s.isna()).to_numpy()
    for pos in np.flatnonzero(bad_tier):
        problems.append(Problem(rows[pos], "tier", None if pd.isna(tiers_s.iloc[pos]) else tiers_s.iloc[pos],
                                f"级别不在分配模型中（可用：{', '.join(model.tiers)}）"))
    score = pd.to_numeric(frame["score"], errors="coerce").astype("Float64")
    bad_score = (score.isna() | ~np.isfinite(score.fillna(0).to_numpy(dtype=float))
                 | (score.fillna(0) < 0)).to_numpy(dtype=bool)
    for pos in np.flatnonzero(bad_score):
        problems.append(Problem(rows[pos], "score", frame["score"].iloc[pos], "总分应为不小于 0 的数字"))
    impact = pd.to_numeric(frame["I"], errors="coerce").astype("Float64")
    for pos in np.flatnonzero(impact.isna().to_numpy()):
        problems.append(Problem(rows[pos], "I", frame["I"].iloc[pos],
                                "缺少 I（影响程度）分：判断是否需要代步车要用到它"))
    try:
        # Unknown usage is not ride-hailing: the subsidy needs a positive answer.
        ride = frame["ride_hailing"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    except (TypeError, ValueError) as exc:
        raise InputError("「是否网约车」列应为 是/否（true/false）", hint="检查 ride_hailing 列") from exc
    if problems:
        raise InputError("分配前发现问题", problems=problems, hint="更正后重新运行")

    scale = 10 ** model.score_decimals
    cents_all = np.rint(score.to_numpy(dtype=float) * scale).astype(np.int64)
    ids_all = ids_s.to_numpy(dtype=str)
    tiers_all = tiers_s.to_numpy(dtype=str)
    tier_rank = {t: i for i, t in enumerate(model.tiers)}
    trank = np.array([tier_rank[t] for t in tiers_all], dtype=np.int64)
    # Canonical order (tier, score desc, id) so that row order never changes the plan,
    # even between customers the solver sees as interchangeable.
    order = np.lexsort((ids_all, -cents_all, trank)) if n else np.arange(0)
    names_all = frame["name"].astype("string").fillna("").to_numpy(dtype=str)

    ids = ids_all[order]
    tiers = tiers_all[order]
    cents = cents_all[order]
    imp = impact.to_numpy(dtype=float)[order]
    ride = ride[order]
    weights = np.array([model.tiers[t].weight for t in tiers], dtype=np.int64)
    first = np.isin(tiers, list(model.first)) if n else np.zeros(0, dtype=bool)

    need = imp >= model.need_impact
    pkg_keys = list(model.packages)
    pkg_index = {k: i for i, k in enumerate(pkg_keys)}
    vc, vp, vr = [], [], []
    max_rank = 0
    for t, pol in model.tiers.items():
        in_tier = tiers == t
        for rank, pk in enumerate(pol.packages):
            mask = in_tier & _applies(model, pk, need, ride)
            idx = np.flatnonzero(mask)
            vc.append(idx)
            vp.append(np.full(idx.size, pkg_index[pk], dtype=np.int64))
            vr.append(np.full(idx.size, rank, dtype=np.int64))
            max_rank = max(max_rank, rank)
    var_cust = np.concatenate(vc) if vc else np.zeros(0, dtype=np.int64)
    var_pkg = np.concatenate(vp) if vp else np.zeros(0, dtype=np.int64)
    var_rank = np.concatenate(vr) if vr else np.zeros(0, dtype=np.int64)
    # Variables grouped by customer keeps the constraint matrix tidy and the order canonical.
    o = np.lexsort((var_rank, var_cust))
    var_cust, var_pkg, var_rank = var_cust[o], var_pkg[o], var_rank[o]
    cost_of = np.array([model.package_cost(k, days) for k in pkg_keys], dtype=np.int64)
    pool_of = [model.loaners[model.packages[k].loaner].pool if model.packages[k].loaner else None
               for k in pkg_keys]
    premium_of = np.array([p == "premium" for p in pool_of], dtype=bool)
    regular_of = np.array([p == "regular" for p in pool_of], dtype=bool)
    return _Prob(
        ids=ids, names=[names_all[i] for i in order], tiers=tiers, cents=cents,
        weights=weights, impact=imp, ride=ride, first=first, pkg_keys=pkg_keys,
        var_cust=var_cust, var_pkg=var_pkg, var_rank=var_rank,
        var_cost=cost_of[var_pkg] if pkg_keys else np.zeros(0, dtype=np.int64),
        var_premium=premium_of[var_pkg] if pkg_keys else np.zeros(0, dtype=bool),
        var_regular=regular_of[var_pkg] if pkg_keys else np.zeros(0, dtype=bool),
        max_rank=max_rank,
    )


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


def _run_milp(p: _Prob, idx: np.ndarray, obj: np.ndarray, caps: _Caps, time_limit: float,
              floor: tuple[np.ndarray, int] | None = None) -> tuple[np.ndarray, bool]:
    """Maximise ``obj`` over variables ``idx``; return (chosen subset of idx, proven optimal).

    ``floor`` = (coefficients over idx, minimum) adds "this linear form ≥ minimum" (stage 2).
    """
    m = idx.size
    if m == 0:
        return idx, True
    cust = p.var_cust[idx]
    _, inv = np.unique(cust, return_inverse=True)
    k = int(inv.max()) + 1
    cols = np.arange(m)
    blocks = [sparse.csr_matrix((np.ones(m), (inv, cols)), shape=(k, m))]
    lb = [np.zeros(k)]
    ub = [np.ones(k)]
    resource_rows = [
        (p.var_premium[idx].astype(float), caps.premium),
        (p.var_regular[idx].astype(float), caps.regular),
        (p.var_cost[idx].astype(float), caps.budget),
    ]
    for coef, cap in resource_rows:
        if coef.any():
            blocks.append(sparse.csr_matrix(coef.reshape(1, -1)))
            lb.append(np.array([-np.inf]))
            ub.append(np.array([float(cap)]))
    if floor is not None:
        coef, minimum = floor
        blocks.append(sparse.csr_matrix(coef.astype(float).reshape(1, -1)))
        # Integer left-hand side: ≥ minimum − ½ is the same set, minus float noise.
        lb.append(np.array([minimum - 0.5]))
        ub.append(np.array([np.inf]))
    res = milp(
        c=-np.asarray(obj, dtype=float),
        integrality=np.ones(m),
        bounds=Bounds(0, 1),
        constraints=LinearConstraint(sparse.vstack(blocks, format="csr"),
                                     np.concatenate(lb), np.concatenate(ub)),
        # mip_rel_gap 0: HiGHS' default 1e-4 would stop at "within 0.01 %", not at optimal.
        options={"mip_rel_gap": 0.0, "time_limit": time_limit, "presolve": True},
    )
    if res.x is None:
        return idx[:0], False
    chosen = idx[np.rint(res.x) > 0.5]
    _check_feasible(p, chosen, caps)
    return chosen, res.status == 0


def _check_feasible(p: _Prob, chosen: np.ndarray, caps: _Caps) -> None:
    # Exact integer re-check of the rounded solver answer: a plan that overspends by one
    # yuan because of a solver tolerance must never reach a manager.
    cust = p.var_cust[chosen]
    ok = (np.unique(cust).size == cust.size
          and int(p.var_premium[chosen].sum()) <= caps.premium
          and int(p.var_regular[chosen].sum()) <= caps.regular
          and int(p.var_cost[chosen].sum()) <= caps.budget)
    if not ok:  # pragma: no cover - would be a solver bug
        raise RuntimeError("求解器返回的方案超出资源限制")


def _solve(p: _Prob, model: AllocateModel, caps: _Caps) -> tuple[np.ndarray, bool]:
    """The lexicographic optimum: first-tier raw risk, then weighted risk, then preference."""
    nv = p.var_cust.size
    all_idx = np.arange(nv)
    optimal = True
    floor = None
    is_first = p.first[p.var_cust]
    if is_first.any():
        fidx = all_idx[is_first]
        chosen1, ok1 = _run_milp(p, fidx, p.cents[p.var_cust[fidx]], caps, model.time_limit_s)
        optimal &= ok1
        best_first = int(p.cents[p.var_cust[chosen1]].sum())
        if best_first > 0:
            floor = (np.where(is_first, p.cents[p.var_cust], 0), best_first)
    obj = p.value[p.var_cust].astype(float)
    if p.max_rank > 0 and nv:
        # Preference bonus: at most n·R·eps < ½ in total, below the smallest coverage step (1).
        eps = 1.0 / (2.0 * (p.max_rank + 1) * (len(p.ids) + 1))
        obj = obj + (p.max_rank - p.var_rank) * eps
    chosen, ok = _run_milp(p, all_idx, obj, caps, model.time_limit_s, floor)
    return chosen, optimal and ok


def _shortfall_extras(p: _Prob, model: AllocateModel, caps: _Caps,
                      fidx: np.ndarray) -> tuple[int, int, int, bool]:
    """Fewest extra cars, then least extra money, to cover every coverable first-tier customer.

    Solved on the first-tier customers alone (they come first, so nobody else competes).
    Variables: the packages x, extra regular cars eR, extra premium cars eP (integers),
    extra money eB (continuous; integral at the optimum since costs are integers).
    """
    m = fidx.size
    cust = p.var_cust[fidx]
    _, inv = np.unique(cust, return_inverse=True)
    k = int(inv.max()) + 1
    # Columns: x (m), eR, eP, eB.
    n_cols = m + 3
    one = sparse.csr_matrix((np.ones(m), (inv, np.arange(m))), shape=(k, n_cols))
    prem = np.zeros(n_cols)
    prem[:m] = p.var_premium[fidx]
    prem[m + 1] = -1
    reg = np.zeros(n_cols)
    reg[:m] = p.var_regular[fidx]
    reg[m] = -1
    money = np.zeros(n_cols)
    money[:m] = p.var_cost[fidx]
    money[m + 2] = -1
    A = sparse.vstack([one, sparse.csr_matrix(np.vstack([prem, reg, money]))], format="csr")
    lb = np.concatenate([np.ones(k), np.full(3, -np.inf)])
    ub = np.concatenate([np.ones(k), [caps.premium, caps.regular, caps.budget]])
    integrality = np.concatenate([np.ones(m + 2), [0]])
    upper = np.concatenate([np.ones(m), [m, m, np.inf]])
    bounds = Bounds(np.zeros(n_cols), upper)
    opts = {"mip_rel_gap": 0.0, "time_limit": model.time_limit_s, "presolve": True}
    c_cars = np.zeros(n_cols)
    c_cars[m] = c_cars[m + 1] = 1
    r1 = milp(c_cars, integrality=integrality, bounds=bounds,
              constraints=LinearConstraint(A, lb, ub), options=opts)
    cars = int(round(r1.fun))
    c_money = np.zeros(n_cols)
    c_money[m + 2] = 1
    cap_cars = sparse.csr_matrix(c_cars.reshape(1, -1))
    r2 = milp(c_money, integrality=integrality, bounds=bounds,
              constraints=[LinearConstraint(A, lb, ub), LinearConstraint(cap_cars, -np.inf, cars + 0.5)],
              options=opts)
    x = np.rint(r2.x[:m]) > 0.5
    chosen = fidx[x]
    # Exact figures from the integral choice, not from the solver's floats.
    extra_p = max(0, int(p.var_premium[chosen].sum()) - caps.premium)
    extra_r = max(0, int(p.var_regular[chosen].sum()) - caps.regular)
    extra_b = max(0, int(p.var_cost[chosen].sum()) - caps.budget)
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
    budget: float,
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

    chosen, optimal = _solve(p, model, caps)
    warnings: list[str] = []
    if not optimal:
        warnings.append(f"求解在 {model.time_limit_s:g} 秒内未证明最优：这是当时找到的最好方案")

    pick = np.full(len(p.ids), -1, dtype=np.int64)  # customer -> variable index
    pick[p.var_cust[chosen]] = chosen
    covered_mask = pick >= 0
    has_option = np.zeros(len(p.ids), dtype=bool)
    has_option[p.var_cust] = True

    used = Usage(
        loaners_used=int(p.var_premium[chosen].sum() + p.var_regular[chosen].sum()),
        loaners_available=total_loaners,
        premium_used=int(p.var_premium[chosen].sum()), premium_available=caps.premium,
        regular_used=int(p.var_regular[chosen].sum()), regular_available=caps.regular,
        budget_used=int(p.var_cost[chosen].sum()), budget_available=caps.budget,
        days_to_eta=days,
    )
    covered = _risk(p, model, covered_mask)
    uncovered = _risk(p, model, ~covered_mask)
    no_package = _risk(p, model, ~has_option)

    shortfall, shortfall_ok = _shortfall(p, model, caps, covered_mask, has_option)
    if not shortfall_ok:
        warnings.append("P0 缺口的计算未在时限内证明最优")

    marginal: dict[str, Marginal] = {}
    if with_marginal:
        base_cov = covered_mask
        for resource, step, more in (
            ("loaners", model.marginal_loaners,
             _Caps(caps.regular + model.marginal_loaners, caps.premium, caps.budget)),
            ("budget", model.marginal_budget,
             _Caps(caps.regular, caps.premium, caps.budget + model.marginal_budget)),
        ):
            ch, ok = _solve(p, model, more)
            cov = np.zeros(len(p.ids), dtype=bool)
            cov[p.var_cust[ch]] = True
            marginal[resource] = _marginal(p, model, resource, step, base_cov, cov, ok)

    plan = _plan_rows(p, model, pick, days, caps, used)
    return Allocation(
        model=model.name, plan=plan, used=used, covered=covered, uncovered=uncovered,
        uncovered_no_package=no_package, p0_shortfall=shortfall, marginal=marginal,
        optimal=optimal, warnings=tuple(warnings),
    )


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
    return Marginal(
        resource=resource, step=step,
        covered_weighted=_as_float(int(v[cov].sum()), scale),
        gain_weighted=_as_float(int(v[cov].sum()) - int(v[base].sum()), scale),
        gain_raw=_as_float(int(p.cents[cov].sum()) - int(p.cents[base].sum()), scale),
        gain_customers=int(cov.sum()) - int(base.sum()),
        gain_first_raw=_as_float(int(p.cents[cov & p.first].sum())
                                 - int(p.cents[base & p.first].sum()), scale),
        optimal=ok,
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
        fidx = np.flatnonzero(in_first[p.var_cust])
        extra_cars, extra_prem, extra_money, ok = _shortfall_extras(p, model, caps, fidx)
        need = []
        if extra_cars:
            prem_txt = f"（其中 {extra_prem} 辆高端车）" if extra_prem else ""
            need.append(f"{extra_cars} 辆代步车{prem_txt}")
        if extra_money:
            need.append(f"{extra_money:,} 元预算")
        parts.append(
            f"现有资源不能覆盖全部 {names} 客户：{total} 位中覆盖了 {int((in_first & covered).sum())} 位，"
            f"{int(lacking.sum())} 位未覆盖。要全部覆盖，还需要 {'、'.join(need) or '（无）'}。")
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


def _plan_rows(p: _Prob, model: AllocateModel, pick: np.ndarray, days: int, caps: _Caps,
               used: Usage) -> tuple[PlanRow, ...]:
    scale = 10 ** model.score_decimals
    d = model.score_decimals
    left_money = caps.budget - used.budget_used
    left_regular = caps.regular - used.regular_used
    left_premium = caps.premium - used.premium_used
    # Applicable packages per customer, most preferred first (variables are grouped that way).
    starts = np.searchsorted(p.var_cust, np.arange(len(p.ids)))
    ends = np.searchsorted(p.var_cust, np.arange(len(p.ids)), side="right")
    cost_of = {k: model.package_cost(k, days) for k in model.packages}
    rows = []
    for c, (cid, name, tier, cents, imp, ride) in enumerate(
            zip(p.ids.tolist(), p.names, p.tiers.tolist(), p.cents.tolist(), p.impact.tolist(),
                p.ride.tolist(), strict=True)):
        pol = model.tiers[tier]
        score = _as_float(cents, scale)
        need = imp >= model.need_impact
        why = [f"{tier}（{pol.label}）总分 {cents / scale:.{d}f}，权重 {pol.weight}",
               (f"需要用车：I={_fmt_num(imp)} ≥ {model.need_impact}" if need
                else f"不需要用车：I={_fmt_num(imp)} < {model.need_impact}")]
        if ride:
            why.append("网约车/出租车司机")
        options = [p.pkg_keys[j] for j in p.var_pkg[starts[c]:ends[c]].tolist()]
        v = int(pick[c])
        if v >= 0:
            key = p.pkg_keys[int(p.var_pkg[v])]
            pk = model.packages[key]
            why.append(f"方案「{pk.name}」：" + "；".join(model.cost_lines(key, days))
                       + f"；合计 {cost_of[key]:,} 元")
            if options and options[0] != key:
                why.append(f"首选「{model.packages[options[0]].name}」未采用：按现有资源，"
                           f"这样分配覆盖的风险最大")
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
                                tuple(why)))
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
                            tuple(why)))
    return tuple(rows)
