"""Tests for the loaner/budget allocator (tierctl.allocate, issue 9)."""

from __future__ import annotations

import copy
import itertools
import json
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tierctl.allocate import AllocateModel, Allocation, allocate, load_model
from tierctl.errors import InputError, ModelError, UsageError
from tierctl.models.loader import PACKAGED_DIR, Section

# -----------------------------------------------------------------------------------------
# helpers
# -----------------------------------------------------------------------------------------


def customers(*rows: dict[str, Any]) -> pd.DataFrame:
    """A scored frame; each row needs id/tier/score, I and ride_hailing default to 'no car'."""
    out = []
    for r in rows:
        out.append({"customer_id": r["id"], "name": r.get("name", f"客户{r['id']}"),
                    "tier": r["tier"], "score": r["score"], "I": r.get("I", 3),
                    "ride_hailing": r.get("ride", False), "wait_days": r.get("wait", 10)})
    cols = ["customer_id", "name", "tier", "score", "I", "ride_hailing", "wait_days"]
    return pd.DataFrame(out, columns=cols)


def small_model_data(**over: Any) -> dict[str, Any]:
    """A compact model whose costs are easy to reason about (days × per-day, items)."""
    data: dict[str, Any] = {
        "kind": "allocate",
        "name": "test",
        "defaults": {"days_to_eta": 10, "score_decimals": 2},
        "objective": {"first": ["P0"]},
        "marginal": {"loaners": 1, "budget": 1000},
        "rules": {"need_impact": 6, "loaner_only_if_needed": True,
                  "subsidy_only_ride_hailing": True, "mobility_if_needed": True},
        "subsidy": {"name": "收入补贴", "per_day": 200},
        "loaners": {
            "premium": {"name": "高端代步车", "pool": "premium", "cost_per_day": 300},
            "standard": {"name": "标准代步车", "pool": "regular", "cost_per_day": 100},
        },
        "items": {
            "care": {"name": "免费保养", "cost": 1000},
            "free": {"name": "维修优先", "cost": 0},
        },
        "packages": {
            "subsidy": {"name": "收入补贴", "subsidy": True},
            "premium": {"name": "高端代步车", "loaner": "premium"},
            "loaner": {"name": "标准代步车", "loaner": "standard"},
            "care": {"name": "免费保养", "items": ["care"]},
            "priority": {"name": "维修优先", "items": ["free"]},
        },
        "tiers": {
            "P0": {"weight": 8, "packages": ["subsidy", "premium", "loaner", "care"]},
            "P1": {"weight": 4, "packages": ["loaner", "care"]},
            "P2": {"weight": 2, "packages": ["loaner", "care"]},
            "P3": {"weight": 1, "packages": []},
        },
    }
    for k, v in over.items():
        data[k] = v
    return data


def model_from(data: dict[str, Any]) -> AllocateModel:
    return AllocateModel.from_section(Section(data, Path("test_allocate.toml")))


def packaged_data() -> dict[str, Any]:
    with open(PACKAGED_DIR / "allocate.toml", "rb") as fh:
        return tomllib.load(fh)


def cents(x: float) -> int:
    return round(x * 100)


def check_feasible(res: Allocation, model: AllocateModel, frame: pd.DataFrame) -> None:
    """The plan respects every resource and every applicability rule."""
    by_id = frame.set_index("customer_id")
    prem = reg = money = 0
    days = res.used.days_to_eta
    for row in res.plan:
        if not row.covered:
            assert row.option is None and row.cost == 0
            continue
        pk = model.packages[row.option]
        assert row.option in model.tiers[row.tier].packages
        assert row.cost == model.package_cost(row.option, days)
        c = by_id.loc[row.customer_id]
        need = c["I"] >= model.need_impact
        if pk.loaner is not None:
            if model.loaner_only_if_needed:
                assert need
            if model.loaners[pk.loaner].pool == "premium":
                prem += 1
            else:
                reg += 1
        if pk.subsidy and model.subsidy_only_ride_hailing:
            assert bool(c["ride_hailing"])
        if pk.loaner is None and not pk.subsidy and model.mobility_if_needed:
            assert not need
        money += row.cost
    assert prem == res.used.premium_used <= res.used.premium_available
    assert reg == res.used.regular_used <= res.used.regular_available
    assert money == res.used.budget_used <= res.used.budget_available


def greedy_by_score(frame: pd.DataFrame, model: AllocateModel, *, loaners: int, premium: int,
                    budget: int, days: int, cheapest: bool = False) -> tuple[int, int, int]:
    """The obvious heuristic: P0 first, then by score; the first package that still fits.

    Returns (first-tier raw cents, first-tier count, weighted cents) like :func:`objective`.
    """
    model_tiers = list(model.tiers)
    rows = sorted(frame.to_dict("records"),
                  key=lambda r: (r["tier"] not in model.first, -r["score"],
                                 model_tiers.index(r["tier"]), r["customer_id"]))
    left = {"premium": premium, "regular": loaners - premium, "money": budget}
    first = count = weighted = 0
    for r in rows:
        need = r["I"] >= model.need_impact
        opts = [k for k in model.tiers[r["tier"]].packages
                if applies(model, k, need, bool(r["ride_hailing"]))]
        if cheapest:
            opts.sort(key=lambda k: model.package_cost(k, days))
        for k in opts:
            pk = model.packages[k]
            cost = model.package_cost(k, days)
            pool = model.loaners[pk.loaner].pool if pk.loaner else None
            if cost > left["money"] or (pool and left[pool] < 1):
                continue
            left["money"] -= cost
            if pool:
                left[pool] -= 1
            weighted += cents(r["score"]) * model.tiers[r["tier"]].weight
            if r["tier"] in model.first:
                first += cents(r["score"])
                count += 1
            break
    return first, count, weighted


def applies(model: AllocateModel, key: str, need: bool, ride: bool) -> bool:
    """Applicability written out independently of the module (for the oracles)."""
    pk = model.packages[key]
    if pk.loaner is not None and model.loaner_only_if_needed and not need:
        return False
    if pk.subsidy and model.subsidy_only_ride_hailing and not ride:
        return False
    return not (pk.loaner is None and not pk.subsidy and model.mobility_if_needed and need)


def brute_force(frame: pd.DataFrame, model: AllocateModel, *, loaners: int, premium: int,
                budget: int, days: int) -> tuple[int, int, int]:
    """Enumerate every assignment; the lexicographic best (first-tier raw, count, weighted)."""
    rows = frame.to_dict("records")
    choices = []
    for r in rows:
        need = r["I"] >= model.need_impact
        opts: list[str | None] = [None]
        opts += [k for k in model.tiers[r["tier"]].packages
                 if applies(model, k, need, bool(r["ride_hailing"]))]
        choices.append(opts)
    best = (0, 0, 0)
    for combo in itertools.product(*choices):
        prem = reg = money = 0
        first = count = weighted = 0
        for r, k in zip(rows, combo, strict=True):
            if k is None:
                continue
            pk = model.packages[k]
            money += model.package_cost(k, days)
            if pk.loaner is not None:
                if model.loaners[pk.loaner].pool == "premium":
                    prem += 1
                else:
                    reg += 1
            weighted += cents(r["score"]) * model.tiers[r["tier"]].weight
            if r["tier"] in model.first:
                first += cents(r["score"])
                count += 1
        if prem <= premium and reg <= loaners - premium and money <= budget:
            best = max(best, (first, count, weighted))
    return best


def objective(res: Allocation, model: AllocateModel) -> tuple[int, int, int]:
    """(first-tier raw cents, first-tier customers covered, weighted cents): the order the
    allocator maximises in ("P0 first": their risk, then how many of them)."""
    first = sum(cents(res.covered.by_tier[t]["raw"]) for t in model.first)
    count = sum(int(res.covered.by_tier[t]["customers"]) for t in model.first)
    return first, count, cents(res.covered.weighted)


SEED_000 = customers(
    {"id": "A", "name": "张先生", "tier": "P0", "score": 8.60, "I": 10, "ride": True, "wait": 24},
    {"id": "B", "name": "王女士", "tier": "P2", "score": 4.55, "I": 8, "wait": 16},
    {"id": "C", "name": "李先生", "tier": "P1", "score": 4.85, "I": 3, "wait": 29},
    {"id": "D", "name": "赵先生", "tier": "P3", "score": 2.15, "I": 3, "wait": 10},
)

# -----------------------------------------------------------------------------------------
# the packaged model
# -----------------------------------------------------------------------------------------


def test_packaged_model_loads_with_documented_defaults() -> None:
    m = load_model()
    assert m.first == ("P0",)
    assert list(m.tiers) == ["P0", "P1", "P2", "P3"]
    assert 150 <= m.subsidy_per_day <= 200  # SPEC A5
    assert m.need_impact == 6 and m.loaner_only_if_needed and m.subsidy_only_ride_hailing
    assert m.tiers["P3"].packages == ()  # "none beyond normal order"
    # Premium loaners are P0's, and P1's only as the less-preferred "when spare" option.
    for t, pol in m.tiers.items():
        prem = [k for k in pol.packages if m.packages[k].loaner == "premium"]
        if t == "P1":
            std = [k for k in pol.packages if m.packages[k].loaner == "standard"]
            assert pol.packages.index(prem[0]) > pol.packages.index(std[0])
        elif t != "P0":
            assert prem == []


def test_seed_000_worked_examples_get_their_policy_packages() -> None:
    res = allocate(SEED_000, "allocate", loaners=6, budget=30000, days_to_eta=21)
    plan = {r.customer_id: r for r in res.plan}
    assert plan["A"].option == "p0_subsidy"  # ride-hailing P0: the income subsidy
    assert plan["A"].cost == 200 * 21 + 1000
    assert plan["B"].loaner == "economy"  # P2 who needs the car: economy loaner
    assert plan["C"].option == "p1_care"  # P1 with I=3: no loaner, free service
    assert not plan["D"].covered and "P3" in plan["D"].why[-1]
    assert res.covered.raw == 8.6 + 4.55 + 4.85 or cents(res.covered.raw) == 1800
    assert res.uncovered.customers == 1 and res.uncovered_no_package.customers == 1
    assert res.p0_shortfall is None and res.optimal
    assert any("4,200 元" in w for w in plan["A"].why)
    check_feasible(res, load_model(), SEED_000)


def test_premise_25_customers_6_loaners_30000_yuan() -> None:
    # Issue 9's premise: 25 waiting, 6 loaners, 30,000 元.  Shares as in SPEC A1.
    rows = []
    spec = ([("P0", 9.2, 10, True), ("P0", 8.6, 10, True), ("P0", 8.3, 8, False)]
            + [("P1", 7.5 - i * 0.2, 8 if i % 2 else 6, False) for i in range(6)]
            + [("P2", 5.8 - i * 0.2, 8 if i % 3 == 0 else 3, False) for i in range(8)]
            + [("P3", 3.5 - i * 0.2, 3, False) for i in range(8)])
    for i, (t, s, imp, ride) in enumerate(spec):
        rows.append({"id": f"K{i:02d}", "tier": t, "score": round(s, 2), "I": imp, "ride": ride})
    frame = customers(*rows)
    m = load_model()
    res = allocate(frame, m, loaners=6, budget=30000)
    check_feasible(res, m, frame)
    assert res.covered.by_tier["P0"]["customers"] == 3  # P0 first
    assert res.used.loaners_used <= 6 and res.used.budget_used <= 30000
    assert set(res.to_json()) >= {"plan", "used", "covered", "uncovered", "marginal",
                                  "p0_shortfall"}
    assert len(res.plan) == 25


# -----------------------------------------------------------------------------------------
# optimality: greedy is wrong, brute force agrees
# -----------------------------------------------------------------------------------------


def test_beats_greedy_when_one_big_customer_crowds_out_two() -> None:
    # Budget knapsack: greedy takes the 9.0 (2,000 元) and has nothing left; the two
    # 6.0s (1,000 元 each) together cover 12.0.
    data = small_model_data()
    data["loaners"]["standard"]["cost_per_day"] = 200
    m = model_from(data)
    frame = customers({"id": "big", "tier": "P1", "score": 7.9, "I": 8},
                      {"id": "s1", "tier": "P1", "score": 6.0, "I": 3},
                      {"id": "s2", "tier": "P1", "score": 6.0, "I": 3})
    kw = {"loaners": 5, "premium": 0, "budget": 2000, "days": 10}
    greedy = greedy_by_score(frame, m, **kw)
    res = allocate(frame, m, loaners=5, budget=2000, days_to_eta=10)
    assert objective(res, m) > greedy
    assert {r.customer_id for r in res.plan if r.covered} == {"s1", "s2"}
    assert objective(res, m) == brute_force(frame, m, **kw)


def test_beats_greedy_when_the_package_choice_matters() -> None:
    # One car.  Greedy gives the ride-hailing driver (first by score) the car; then the
    # other P0, who needs a car and is not a driver, gets nothing.  The optimum pays the
    # driver the subsidy and lends the car to the other.
    data = small_model_data()
    data["tiers"]["P0"]["packages"] = ["loaner", "subsidy"]
    m = model_from(data)
    frame = customers({"id": "driver", "tier": "P0", "score": 9.0, "I": 10, "ride": True},
                      {"id": "commuter", "tier": "P0", "score": 8.0, "I": 8})
    kw = {"loaners": 1, "premium": 0, "budget": 3000, "days": 10}
    for cheapest in (False, True):
        assert objective(allocate(frame, m, loaners=1, budget=3000), m) > \
            greedy_by_score(frame, m, cheapest=cheapest, **kw)
    plan = {r.customer_id: r for r in allocate(frame, m, loaners=1, budget=3000).plan}
    assert plan["driver"].option == "subsidy" and plan["commuter"].option == "loaner"


def test_beats_greedy_with_two_constraints_binding() -> None:
    # Cars and money both bind.  High scorers need (costly) cars; several cheaper
    # no-car customers together outweigh them.
    m = model_from(small_model_data())
    frame = customers(
        {"id": "a", "tier": "P1", "score": 7.9, "I": 8},
        {"id": "b", "tier": "P1", "score": 7.8, "I": 8},
        {"id": "c", "tier": "P1", "score": 6.5, "I": 3},
        {"id": "d", "tier": "P1", "score": 6.4, "I": 3},
        {"id": "e", "tier": "P1", "score": 6.3, "I": 3},
    )
    kw = {"loaners": 1, "premium": 0, "budget": 3000, "days": 10}
    res = allocate(frame, m, loaners=1, budget=3000)
    assert objective(res, m) >= greedy_by_score(frame, m, **kw)
    assert objective(res, m) == brute_force(frame, m, **kw)


tiers_st = st.sampled_from(["P0", "P1", "P2", "P3"])
customer_st = st.fixed_dictionaries({
    "tier": tiers_st,
    "score": st.integers(min_value=0, max_value=1000).map(lambda c: c / 100),
    "I": st.sampled_from([1, 3, 6, 8, 10]),
    "ride": st.booleans(),
})
package_names = ["subsidy", "premium", "loaner", "care", "priority"]


@st.composite
def instances(draw: st.DrawFn) -> tuple[AllocateModel, pd.DataFrame, dict[str, int]]:
    data = small_model_data()
    data["rules"] = {
        "need_impact": draw(st.sampled_from([1, 6, 11])),
        "loaner_only_if_needed": draw(st.booleans()),
        "subsidy_only_ride_hailing": draw(st.booleans()),
        "mobility_if_needed": draw(st.booleans()),
    }
    data["loaners"]["premium"]["cost_per_day"] = draw(st.integers(0, 400))
    data["loaners"]["standard"]["cost_per_day"] = draw(st.integers(0, 300))
    data["subsidy"]["per_day"] = draw(st.integers(0, 300))
    data["items"]["care"]["cost"] = draw(st.integers(0, 2000))
    data["objective"]["first"] = draw(st.sampled_from([["P0"], []]))
    for t in ("P0", "P1", "P2", "P3"):
        # ≤ 2 options per customer keeps the enumeration at ≤ 3^6 = 729 plans.
        data["tiers"][t]["packages"] = draw(st.lists(st.sampled_from(package_names),
                                                     max_size=2, unique=True))
        data["tiers"][t]["weight"] = draw(st.integers(0, 10))
    rows = draw(st.lists(customer_st, min_size=0, max_size=6))
    frame = customers(*({"id": f"c{i}", **r} for i, r in enumerate(rows)))
    loaners = draw(st.integers(0, 3))
    res = {"loaners": loaners, "premium": draw(st.integers(0, loaners)),
           "budget": draw(st.integers(0, 6000)), "days": draw(st.integers(0, 12))}
    return model_from(data), frame, res


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_equals_brute_force_on_small_random_cases(case: tuple) -> None:
    m, frame, r = case
    res = allocate(frame, m, loaners=r["loaners"], premium_loaners=r["premium"],
                   budget=r["budget"], days_to_eta=r["days"], with_marginal=False)
    check_feasible(res, m, frame)
    assert objective(res, m) == brute_force(frame, m, **r)
    assert objective(res, m) >= greedy_by_score(frame, m, **r)


@settings(max_examples=60, deadline=None)
@given(instances(), st.randoms(use_true_random=False))
def test_row_order_never_changes_the_plan(case: tuple, rnd: Any) -> None:
    m, frame, r = case
    kw = {"loaners": r["loaners"], "premium_loaners": r["premium"], "budget": r["budget"],
          "days_to_eta": r["days"]}
    a = allocate(frame, m, **kw).to_json()
    idx = list(frame.index)
    rnd.shuffle(idx)
    b = allocate(frame.loc[idx].reset_index(drop=True), m, **kw).to_json()
    assert a == b


# -----------------------------------------------------------------------------------------
# P0 first
# -----------------------------------------------------------------------------------------


def test_p0_is_covered_first_even_against_heavier_weights() -> None:
    # With weights alone the two P1s (weight 100) would win the single car.
    data = small_model_data()
    data["tiers"]["P0"]["weight"] = 1
    data["tiers"]["P1"]["weight"] = 100
    frame = customers({"id": "p0", "tier": "P0", "score": 8.0, "I": 8},
                      {"id": "p1a", "tier": "P1", "score": 7.9, "I": 8},
                      {"id": "p1b", "tier": "P1", "score": 7.9, "I": 3})
    # Car 1,000 元 for 10 days; the P1 care package 1,000 元.  Budget for one of them.
    res = allocate(frame, model_from(data), loaners=1, budget=1000)
    assert [r.customer_id for r in res.plan if r.covered] == ["p0"]
    data["objective"]["first"] = []
    res = allocate(frame, model_from(data), loaners=1, budget=1000)
    assert "p0" not in [r.customer_id for r in res.plan if r.covered]


def test_p0_shortfall_names_what_is_missing_and_that_is_enough() -> None:
    m = model_from(small_model_data())
    frame = customers(
        {"id": "x1", "tier": "P0", "score": 9.0, "I": 8},
        {"id": "x2", "tier": "P0", "score": 8.5, "I": 8},
        {"id": "x3", "tier": "P0", "score": 8.2, "I": 8},
        {"id": "y", "tier": "P1", "score": 7.0, "I": 3},
    )
    res = allocate(frame, m, loaners=1, budget=1500)
    s = res.p0_shortfall
    assert s is not None and s.covered == 1 and len(s.uncovered) == 2
    # Three standard cars at 1,000 元 each: 2 more cars and 1,500 元 more.
    assert (s.extra_loaners, s.extra_premium_loaners, s.extra_budget) == (2, 0, 1500)
    assert "还需要 2 辆代步车、1,500 元预算" in s.message
    more = allocate(frame, m, loaners=1 + s.extra_loaners, budget=1500 + s.extra_budget)
    assert more.p0_shortfall is None
    assert more.covered.by_tier["P0"]["customers"] == 3


@settings(max_examples=80, deadline=None)
@given(instances())
def test_shortfall_extras_are_sufficient_and_minimal_in_cars(case: tuple) -> None:
    m, frame, r = case
    kw = {"days_to_eta": r["days"], "with_marginal": False}
    res = allocate(frame, m, loaners=r["loaners"], premium_loaners=r["premium"],
                   budget=r["budget"], **kw)
    s = res.p0_shortfall
    if s is None or not s.uncovered:
        return
    more = allocate(frame, m, loaners=r["loaners"] + s.extra_loaners,
                    premium_loaners=r["premium"] + s.extra_premium_loaners,
                    budget=r["budget"] + s.extra_budget, **kw)
    assert more.p0_shortfall is None or not more.p0_shortfall.uncovered
    if s.extra_loaners:
        # One car fewer (of either kind), however much money: someone is left out.
        for dp in (0, 1):  # drop one regular car, or one premium car
            prem = s.extra_premium_loaners - dp
            if prem < 0 or s.extra_loaners - 1 < prem:
                continue
            fewer = allocate(frame, m, loaners=r["loaners"] + s.extra_loaners - 1,
                             premium_loaners=r["premium"] + prem, budget=10**9, **kw)
            assert fewer.p0_shortfall is not None and fewer.p0_shortfall.uncovered


def test_shortfall_prefers_asking_for_regular_cars() -> None:
    data = small_model_data()
    data["loaners"]["premium"]["cost_per_day"] = 100  # same price as a standard car
    m = model_from(data)
    frame = customers(*({"id": f"p{i}", "tier": "P0", "score": 9.0, "I": 8} for i in range(3)))
    s = allocate(frame, m, loaners=0, budget=10**6).p0_shortfall
    assert s is not None and (s.extra_loaners, s.extra_premium_loaners) == (3, 0)


# -----------------------------------------------------------------------------------------
# applicability rules and preferences
# -----------------------------------------------------------------------------------------


def test_subsidy_only_for_ride_hailing_and_loaner_only_when_needed() -> None:
    m = model_from(small_model_data())
    frame = customers(
        {"id": "driver", "tier": "P0", "score": 9.0, "I": 10, "ride": True},
        {"id": "commuter", "tier": "P0", "score": 8.8, "I": 8},
        {"id": "weekend", "tier": "P0", "score": 8.5, "I": 3},
        {"id": "weekend1", "tier": "P1", "score": 7.0, "I": 3},
    )
    res = allocate(frame, m, loaners=5, premium_loaners=2, budget=10**6)
    plan = {r.customer_id: r for r in res.plan}
    assert plan["driver"].option == "subsidy"  # preferred for drivers
    assert plan["commuter"].option == "premium"  # preferred over standard when a car is spare
    assert plan["weekend"].option == "care" and plan["weekend"].loaner == "none"
    assert plan["weekend1"].option == "care"
    check_feasible(res, m, frame)


def test_premium_cars_go_to_p0_and_to_p1_only_when_spare() -> None:
    m = load_model()
    frame = customers({"id": "p1", "tier": "P1", "score": 7.0, "I": 8},
                      {"id": "p2", "tier": "P2", "score": 5.0, "I": 8})
    # Only a premium car: P1 may take it (spare), P2's policy has no premium loaner.
    plan = {r.customer_id: r for r in allocate(frame, m, loaners=1, premium_loaners=1,
                                                budget=10**6).plan}
    assert plan["p1"].option == "p1_premium_spare" and not plan["p2"].covered
    # One premium + one regular: the P1 takes the spare premium car so that the regular
    # one can serve the P2 — both covered.
    plan = {r.customer_id: r for r in allocate(frame, m, loaners=2, premium_loaners=1,
                                                budget=10**6).plan}
    assert plan["p1"].option == "p1_premium_spare"
    assert plan["p2"].option == "p2_economy_loaner"
    # Enough regular cars: P1 gets the standard car it prefers; the premium car stays.
    res = allocate(frame, m, loaners=3, premium_loaners=1, budget=10**6)
    plan = {r.customer_id: r for r in res.plan}
    assert plan["p1"].option == "p1_standard_loaner" and res.used.premium_used == 0
    # A P0 who needs a car takes the premium car before a P1 could.
    frame = customers({"id": "p0", "tier": "P0", "score": 8.1, "I": 8},
                      {"id": "p1", "tier": "P1", "score": 7.9, "I": 8})
    plan = {r.customer_id: r for r in allocate(frame, m, loaners=2, premium_loaners=1,
                                                budget=10**6).plan}
    assert plan["p0"].option == "p0_premium_loaner"
    assert plan["p1"].option == "p1_standard_loaner"


def test_rules_can_be_switched_off_in_the_model() -> None:
    data = small_model_data()
    data["rules"]["loaner_only_if_needed"] = False
    data["rules"]["subsidy_only_ride_hailing"] = False
    data["tiers"]["P1"]["packages"] = ["loaner"]
    data["tiers"]["P0"]["packages"] = ["subsidy"]
    m = model_from(data)
    frame = customers({"id": "p1", "tier": "P1", "score": 7.0, "I": 1},
                      {"id": "p0", "tier": "P0", "score": 8.0, "I": 8, "ride": False})
    plan = {r.customer_id: r for r in allocate(frame, m, loaners=1, budget=10**6).plan}
    assert plan["p1"].option == "loaner" and plan["p0"].option == "subsidy"


def test_a_coupon_does_not_cover_someone_who_needs_the_car() -> None:
    m = model_from(small_model_data())
    frame = customers({"id": "n", "tier": "P1", "score": 7.0, "I": 8})
    res = allocate(frame, m, loaners=0, budget=10**6)
    row = res.plan[0]
    assert not row.covered
    assert "资源有限" in row.why[-1] and "标准代步车" in row.why[-1]


def test_no_applicable_package_is_explained() -> None:
    data = small_model_data()
    data["tiers"]["P1"]["packages"] = ["subsidy"]
    m = model_from(data)
    frame = customers({"id": "n", "tier": "P1", "score": 7.0, "I": 8, "ride": False})
    res = allocate(frame, m, loaners=5, budget=10**6)
    assert not res.plan[0].covered
    assert any("只给网约车" in w for w in res.plan[0].why)
    assert res.uncovered_no_package.customers == 1


def test_p0_without_any_applicable_package_is_flagged_not_costed() -> None:
    data = small_model_data()
    data["tiers"]["P0"]["packages"] = ["subsidy"]
    frame = customers({"id": "z", "tier": "P0", "score": 9.0, "I": 3})
    s = allocate(frame, model_from(data), loaners=5, budget=10**6).p0_shortfall
    assert s is not None and s.no_package == ("z",) and s.uncovered == ()
    assert "没有适用的方案" in s.message


def test_a_less_preferred_package_when_only_it_fits() -> None:
    m = model_from(small_model_data())
    frame = customers({"id": "d", "tier": "P0", "score": 9.0, "I": 10, "ride": True})
    # Subsidy 2,000 元 does not fit 1,500 元; the standard car (1,000 元) does.
    row = allocate(frame, m, loaners=1, budget=1500).plan[0]
    assert row.option == "loaner"
    assert any("首选" in w for w in row.why)


# -----------------------------------------------------------------------------------------
# edges: zero resources, nothing to do, exactness
# -----------------------------------------------------------------------------------------


def test_zero_resources_cover_only_free_packages() -> None:
    data = small_model_data()
    data["tiers"]["P2"]["packages"] = ["loaner", "priority"]  # priority costs nothing
    m = model_from(data)
    frame = customers({"id": "a", "tier": "P0", "score": 9.0, "I": 8},
                      {"id": "b", "tier": "P2", "score": 5.0, "I": 3},
                      {"id": "c", "tier": "P2", "score": 5.5, "I": 8})
    res = allocate(frame, m, loaners=0, budget=0)
    assert [r.customer_id for r in res.plan if r.covered] == ["b"]
    assert res.used.budget_used == 0 and res.used.loaners_used == 0
    assert res.p0_shortfall is not None and res.p0_shortfall.extra_loaners == 1
    assert res.p0_shortfall.extra_budget == 1000
    assert res.marginal["loaners"].gain_weighted == 0.0  # a car without money helps nobody


def test_empty_list_gives_empty_plan() -> None:
    res = allocate(customers(), "allocate", loaners=6, budget=30000)
    assert res.plan == () and res.covered.customers == 0 and res.uncovered.customers == 0
    assert res.p0_shortfall is None
    out = res.to_json()
    assert out["plan"] == [] and out["used"]["budget"]["used"] == 0
    json.dumps(out)


def test_only_p3_customers_gives_nothing_without_crashing() -> None:
    frame = customers(*({"id": f"q{i}", "tier": "P3", "score": 2.0} for i in range(4)))
    res = allocate(frame, "allocate", loaners=6, budget=30000)
    assert not any(r.covered for r in res.plan) and res.used.budget_used == 0


def test_totals_are_exact() -> None:
    # RITE totals are exact two-decimal numbers; floats must not leak into the sums.
    frame = customers({"id": "a", "tier": "P0", "score": 8.0, "I": 3},
                      {"id": "b", "tier": "P0", "score": 0.1, "I": 3},
                      {"id": "c", "tier": "P0", "score": 0.2, "I": 3})
    res = allocate(frame, model_from(small_model_data()), loaners=0, budget=10**6)
    assert res.covered.raw == 8.3 and res.covered.weighted == 66.4


def test_fractional_budget_is_floored_to_whole_yuan() -> None:
    m = model_from(small_model_data())
    frame = customers({"id": "a", "tier": "P1", "score": 7.0, "I": 3})
    assert not allocate(frame, m, loaners=0, budget=999.99).plan[0].covered
    assert allocate(frame, m, loaners=0, budget=1000.0).plan[0].covered


# -----------------------------------------------------------------------------------------
# marginal values
# -----------------------------------------------------------------------------------------


def test_marginal_values_equal_a_re_solve() -> None:
    m = load_model()
    rows = [{"id": f"c{i}", "tier": ["P0", "P1", "P2"][i % 3], "score": 9.5 - i * 0.25,
             "I": [10, 8, 6, 3][i % 4], "ride": i % 8 == 0} for i in range(20)]
    frame = customers(*rows)
    base = allocate(frame, m, loaners=3, premium_loaners=1, budget=12000)
    more_car = allocate(frame, m, loaners=4, premium_loaners=1, budget=12000)
    more_money = allocate(frame, m, loaners=3, premium_loaners=1, budget=17000)
    mg = base.marginal
    assert mg["loaners"].step == 1 and mg["budget"].step == 5000
    assert cents(mg["loaners"].gain_weighted) == \
        cents(more_car.covered.weighted) - cents(base.covered.weighted)
    assert cents(mg["budget"].gain_weighted) == \
        cents(more_money.covered.weighted) - cents(base.covered.weighted)
    assert mg["budget"].note


def test_marginal_note_explains_a_weighted_drop_from_p0_priority() -> None:
    # Base: the P0's 2,000 元 package does not fit 1,000 元, so both P1s (500 元 each) are
    # covered.  With 1,000 元 more the P0 goes first and takes it all: P0 risk +8.0, but
    # the weighted sum drops — the note must say why rather than look like a bug.
    data = small_model_data()
    data["items"]["half"] = {"name": "精洗", "cost": 500}
    data["items"]["care"]["cost"] = 2000
    data["packages"]["half"] = {"name": "精洗", "items": ["half"]}
    data["tiers"]["P0"] = {"weight": 1, "packages": ["care"]}
    data["tiers"]["P1"] = {"weight": 4, "packages": ["half"]}
    m = model_from(data)
    frame = customers({"id": "p0", "tier": "P0", "score": 8.0, "I": 3},
                      {"id": "a", "tier": "P1", "score": 7.0, "I": 3},
                      {"id": "b", "tier": "P1", "score": 7.0, "I": 3})
    res = allocate(frame, m, loaners=0, budget=1000)
    assert [r.customer_id for r in res.plan if r.covered] == ["a", "b"]
    mg = res.marginal["budget"]
    assert (mg.gain_first_raw, mg.gain_weighted, mg.gain_customers) == (8.0, -48.0, -1)
    assert "优先" in mg.note and "P0" in mg.note
    assert "不是瓶颈" in res.marginal["loaners"].note


# -----------------------------------------------------------------------------------------
# errors
# -----------------------------------------------------------------------------------------


def _mutations() -> list[tuple[str, Any]]:
    def typo(d: dict) -> None:
        d["loaners"]["standard"]["cost_per_dya"] = d["loaners"]["standard"].pop("cost_per_day")

    def bad_item(d: dict) -> None:
        d["packages"]["p0_subsidy"]["items"] = ["supercharging", "nonexistent"]

    def bad_package(d: dict) -> None:
        d["tiers"]["P1"]["packages"] = ["p1_care", "no_such_package"]

    def bad_loaner(d: dict) -> None:
        d["packages"]["p2_economy_loaner"]["loaner"] = "luxury"

    def bad_pool(d: dict) -> None:
        d["loaners"]["economy"]["pool"] = "rented"

    def negative_cost(d: dict) -> None:
        d["items"]["coupon"]["cost"] = -5

    def float_cost(d: dict) -> None:
        d["subsidy"]["per_day"] = 175.5

    def bad_first(d: dict) -> None:
        d["objective"]["first"] = ["PX"]

    def missing_rules(d: dict) -> None:
        del d["rules"]

    def top_typo(d: dict) -> None:
        d["tier"] = d.pop("tiers")

    return [("loaners.standard.cost_per_dya", typo), ("packages.p0_subsidy.items[1]", bad_item),
            ("tiers.P1.packages[1]", bad_package), ("packages.p2_economy_loaner.loaner", bad_loaner),
            ("loaners.economy.pool", bad_pool), ("items.coupon.cost", negative_cost),
            ("subsidy.per_day", float_cost), ("objective.first[0]", bad_first),
            ("rules", missing_rules), ("tier", top_typo)]


@pytest.mark.parametrize(("key", "mutate"), _mutations(), ids=[k for k, _ in _mutations()])
def test_bad_model_raises_model_error_naming_the_key(key: str, mutate: Any, tmp_path: Path) -> None:
    data = copy.deepcopy(packaged_data())
    mutate(data)
    with pytest.raises(ModelError) as err:
        model_from(data)
    assert f"[{key}]" in str(err.value)


def test_wrong_kind_of_model_file(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text('kind = "shortage"\n', encoding="utf-8")
    with pytest.raises(ModelError, match="allocate"):
        load_model(path)
    with pytest.raises(ModelError):
        allocate(SEED_000, "no_such_model", loaners=1, budget=1)


def test_bad_rows_raise_input_error_with_excel_rows() -> None:
    frame = SEED_000.copy()
    frame["_row"] = [2, 3, 4, 5]
    frame.loc[1, "tier"] = "P9"
    frame.loc[2, "customer_id"] = "A"
    with pytest.raises(InputError) as err:
        allocate(frame, "allocate", loaners=1, budget=1)
    text = str(err.value)
    assert "第 3 行" in text and "P9" in text and "重复" in text
    assert {p.row for p in err.value.problems} == {2, 3, 4}


def test_missing_columns_and_missing_impact() -> None:
    with pytest.raises(InputError, match="ride_hailing"):
        allocate(SEED_000.drop(columns=["ride_hailing"]), "allocate", loaners=1, budget=1)
    frame = SEED_000.copy()
    frame["I"] = pd.array([10, None, 3, 3], dtype="Int64")
    with pytest.raises(InputError, match="I"):
        allocate(frame, "allocate", loaners=1, budget=1)


def test_nullable_dtypes_from_ingest_are_accepted() -> None:
    frame = SEED_000.astype({"customer_id": "string", "name": "string", "tier": "string",
                             "score": "Float64", "I": "Int64", "ride_hailing": "boolean"})
    frame.loc[3, "ride_hailing"] = pd.NA  # unknown usage: not a driver
    res = allocate(frame, "allocate", loaners=6, budget=30000)
    assert res.to_json() == allocate(SEED_000, "allocate", loaners=6, budget=30000).to_json()


@pytest.mark.parametrize("kw", [
    {"loaners": -1, "budget": 100},
    {"loaners": 1, "premium_loaners": 2, "budget": 100},
    {"loaners": 1, "budget": -1},
    {"loaners": 1, "budget": float("nan")},
    {"loaners": 1, "budget": "many"},
    {"loaners": 1.5, "budget": 100},
    {"loaners": 1, "budget": 100, "days_to_eta": -3},
])
def test_impossible_resources_are_usage_errors(kw: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        allocate(SEED_000, "allocate", **kw)


def test_to_json_is_plain_json() -> None:
    out = allocate(SEED_000, "allocate", loaners=6, budget=30000).to_json()
    assert json.loads(json.dumps(out, ensure_ascii=False)) == out
    assert set(out["marginal"]) == {"loaners", "budget"}
    assert out["plan"][0]["why"] and isinstance(out["plan"][0]["why"], list)
