"""The public entry point :func:`allocate`: frame + model + resources in, an
:class:`~tierctl.allocate.result.Allocation` out (pure)."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tierctl.allocate.model import AllocateModel, load_model
from tierctl.allocate.problem import _prepare, _Prob
from tierctl.allocate.report import _plan_rows
from tierctl.allocate.result import Allocation, Marginal, Risk, Shortfall, Usage, _as_float
from tierctl.allocate.solve import _Caps, _shortfall_extras, _solve
from tierctl.errors import UsageError
from tierctl.models.loader import Section


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

