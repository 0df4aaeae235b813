"""Why each customer got what he got: the plan rows with their reasons in words."""

from __future__ import annotations

import numpy as np

from tierctl.allocate.model import AllocateModel
from tierctl.allocate.problem import _fmt_num, _not_applicable_reason, _pool, _Prob
from tierctl.allocate.result import PlanRow, Usage, _as_float
from tierctl.allocate.solve import _Caps


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
