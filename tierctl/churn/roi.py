"""ROI, win-back benchmarks and KPIs (SPEC B), exact (Decimal) throughout.

``roi`` is the playbook's (all won-back customers credited); ``incremental_roi``
credits only churn avoided versus the base rate — on the seed table it is −23 %.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

import pandas as pd

from tierctl.errors import InputError, UsageError

if TYPE_CHECKING:
    from tierctl.churn.model import ChurnModel


def _d(v: Any) -> Decimal:
    return v if isinstance(v, Decimal) else Decimal(str(v))


def percent(x: Decimal | None, places: int = 0) -> str:
    """``Decimal('0.6612')`` → ``"66%"`` (half up, as a report prints it)."""
    if x is None:
        return "—"
    q = Decimal(1).scaleb(-places)
    return f"{(x * 100).quantize(q, rounding=ROUND_HALF_UP)}%"


def wan(amount: Decimal | int, places: int = 2) -> str:
    """Money in 万元 as the playbook writes it: 128000 → ``"12.8万"``, 3830000 → ``"383万"``."""
    v = (_d(amount) / 10000).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    s = format(v.normalize(), "f")
    return f"{s}万"


@dataclass(frozen=True)
class LevelROI:
    level_key: str
    label: str
    customers: int
    intervened: int
    won_back: int
    rate: Decimal | None
    cost: Decimal
    revenue: Decimal
    roi: Decimal | None
    benchmark: tuple[Decimal, Decimal]
    benchmark_status: str  # below | within | above | n/a


@dataclass(frozen=True)
class ROIReport:
    """Per-level results, totals and the no-intervention counterfactual.

    ``roi`` is the playbook's: every won-back customer's annual spend counts.
    ``incremental_roi`` counts only the churn avoided versus the base churn rate, which
    is the stricter figure (customers who would have stayed anyway are not credited).
    """

    levels: tuple[LevelROI, ...]
    customers: int
    intervened: int
    won_back: int
    rate: Decimal | None
    cost: Decimal
    average_annual_spend: Decimal
    revenue: Decimal
    roi: Decimal | None
    base_churn_rate: Decimal
    expected_churn: Decimal
    expected_loss: Decimal
    actual_churn: int
    churn_avoided: Decimal
    saved: Decimal
    incremental_roi: Decimal | None

    def to_json(self) -> dict[str, Any]:
        def num(v: Decimal | None) -> float | int | None:
            if v is None:
                return None
            return int(v) if v == v.to_integral_value() else float(v)

        return {
            "levels": [{"level": r.level_key, "label": r.label, "customers": r.customers,
                        "intervened": r.intervened, "won_back": r.won_back, "rate": num(r.rate),
                        "cost": num(r.cost), "revenue": num(r.revenue), "roi": num(r.roi),
                        "benchmark": [num(r.benchmark[0]), num(r.benchmark[1])],
                        "benchmark_status": r.benchmark_status} for r in self.levels],
            "total": {"customers": self.customers, "intervened": self.intervened,
                      "won_back": self.won_back, "rate": num(self.rate), "cost": num(self.cost),
                      "revenue": num(self.revenue), "roi": num(self.roi)},
            "counterfactual": {"base_churn_rate": num(self.base_churn_rate),
                               "expected_churn": num(self.expected_churn),
                               "expected_loss": num(self.expected_loss),
                               "actual_churn": self.actual_churn,
                               "churn_avoided": num(self.churn_avoided), "saved": num(self.saved),
                               "incremental_roi": num(self.incremental_roi)},
        }

    def summary_lines(self) -> list[str]:
        """The report as the playbook prints it (percentages whole, money in 万)."""
        status = {"below": "低于行业标准", "within": "达到行业标准", "above": "高于行业标准", "n/a": ""}
        lines = []
        for r in self.levels:
            bm = f"（行业标准 {percent(r.benchmark[0])}–{percent(r.benchmark[1])}，{status[r.benchmark_status]}）"
            lines.append(f"{r.label}风险：客户 {r.customers} 人，干预 {r.intervened} 人，挽回 {r.won_back} 人，"
                         f"挽回率 {percent(r.rate)}，成本 {wan(r.cost)}{bm}")
        avg = format(self.average_annual_spend.normalize(), "f")
        lines.append(f"合计：客户 {self.customers} 人，干预 {self.intervened} 人，挽回 {self.won_back} 人，"
                     f"挽回率 {percent(self.rate)}，成本 {wan(self.cost)}")
        lines.append(f"挽回收入：{self.won_back} × {avg} = {wan(self.revenue)}元")
        lines.append(f"ROI = ({wan(self.revenue)} − {wan(self.cost)}) ÷ {wan(self.cost)} = {percent(self.roi)}")
        lines.append(f"如果不干预：预计流失 {_int_text(self.expected_churn)} 人（{percent(self.base_churn_rate)}流失率），"
                     f"损失收入 {wan(self.expected_loss)}元")
        lines.append(f"干预后：实际流失 {self.actual_churn} 人，减少流失 {_int_text(self.churn_avoided)} 人，"
                     f"避免损失 {wan(self.saved)}元")
        lines.append(f"增量ROI（只计减少的流失）= ({wan(self.saved)} − {wan(self.cost)}) ÷ {wan(self.cost)} "
                     f"= {percent(self.incremental_roi)}")
        return lines


def _int_text(d: Decimal) -> str:
    return format(d.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP).normalize(), "f")


def benchmark_status(level: str, rate: Decimal | float | None, model: ChurnModel) -> str:
    """``below`` / ``within`` / ``above`` the level's win-back benchmark (inclusive)."""
    if rate is None:
        return "n/a"
    lo, hi = model.level(level).benchmark
    r = _d(rate)
    return "below" if r < lo else "above" if r > hi else "within"


def _level_rows(rows_per_level: Any) -> list[tuple[str, Mapping[str, Any]]]:
    if isinstance(rows_per_level, pd.DataFrame):
        return [(str(r["level"]), r) for r in rows_per_level.to_dict("records")]
    if isinstance(rows_per_level, Mapping):
        return [(str(k), v) for k, v in rows_per_level.items()]
    return [(str(r["level"]), r) for r in rows_per_level]


def roi_report(rows_per_level: Any, model: ChurnModel) -> ROIReport:
    """Per level: customers, intervened, won back, rate, cost, ROI; totals; counterfactual.

    ``rows_per_level`` is a mapping level → ``{"customers"?, "intervened", "won_back",
    "cost"}`` (level by key or label; ``customers`` defaults to ``intervened``), a list
    of such dicts with a ``level`` key, or a DataFrame with those columns.  Costs in 元.
    ROI = (won back × average annual spend − cost) ÷ cost; the counterfactual applies
    the base churn rate to the customers intervened.  Exact (Decimal) throughout.
    """
    avg, base = model.average_annual_spend, model.base_churn_rate
    out: list[LevelROI] = []
    seen: set[str] = set()
    for name, r in _level_rows(rows_per_level):
        lv = model.level(name)
        if lv.key in seen:
            raise UsageError(f"等级「{lv.label}」出现了两次")
        seen.add(lv.key)
        intervened = int(r["intervened"])
        customers = int(r.get("customers", intervened)) if hasattr(r, "get") else intervened
        won = int(r["won_back"])
        cost = _d(r["cost"])
        if not 0 <= won <= intervened <= customers or cost < 0:
            raise InputError(f"{lv.label}风险的数字不合理：客户 {customers}、干预 {intervened}、挽回 {won}、成本 {cost}",
                             hint="应满足 0 ≤ 挽回 ≤ 干预 ≤ 客户数，成本不为负")
        rate = Decimal(won) / Decimal(intervened) if intervened else None
        revenue = won * avg
        roi = (revenue - cost) / cost if cost else None
        out.append(LevelROI(lv.key, lv.label, customers, intervened, won, rate, cost, revenue, roi,
                            lv.benchmark, benchmark_status(lv.key, rate, model)))
    order = {lv.key: i for i, lv in enumerate(model.levels)}
    out.sort(key=lambda x: order[x.level_key])
    customers = sum(x.customers for x in out)
    intervened = sum(x.intervened for x in out)
    won = sum(x.won_back for x in out)
    cost = sum((x.cost for x in out), Decimal(0))
    revenue = won * avg
    expected = intervened * base
    actual = intervened - won
    avoided = expected - actual
    saved = avoided * avg
    return ROIReport(
        levels=tuple(out), customers=customers, intervened=intervened, won_back=won,
        rate=Decimal(won) / Decimal(intervened) if intervened else None, cost=cost,
        average_annual_spend=avg, revenue=revenue, roi=(revenue - cost) / cost if cost else None,
        base_churn_rate=base, expected_churn=expected, expected_loss=expected * avg,
        actual_churn=actual, churn_avoided=avoided, saved=saved,
        incremental_roi=(saved - cost) / cost if cost else None,
    )


@dataclass(frozen=True)
class KpiResult:
    key: str
    label: str
    value: Decimal | None
    target: Decimal
    met: bool | None  # None when no figure was given


def evaluate_kpis(actuals: Mapping[str, Any], model: ChurnModel) -> list[KpiResult]:
    """Each KPI of the model against its target (met = strictly above, as ">95%").

    ``actuals`` maps KPI key → a rate (0–1) or a ``(numerator, denominator)`` pair,
    e.g. ``{"alert_response": (96, 100), "win_back": 0.57}``.  KPIs not given are
    returned with ``value=None``; unknown keys are an error.
    """
    known = {k.key for k in model.kpis}
    unknown = set(actuals) - known
    if unknown:
        raise UsageError(f"未知的指标：{'、'.join(sorted(unknown))}", hint=f"可用：{'、'.join(sorted(known))}")
    out = []
    for k in model.kpis:
        if k.key not in actuals or actuals[k.key] is None:
            out.append(KpiResult(k.key, k.label, None, k.target, None))
            continue
        v = actuals[k.key]
        if isinstance(v, tuple):
            num, den = v
            value = _d(num) / _d(den) if den else None
        else:
            value = _d(v)
        out.append(KpiResult(k.key, k.label, value, k.target, None if value is None else value > k.target))
    return out
