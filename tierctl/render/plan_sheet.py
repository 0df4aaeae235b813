"""The allocation plan in the evaluation workbook (tierctl allocate, issue 9)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd

from tierctl.shortage import ShortageResult


def _col_values(c: pd.DataFrame, name: str) -> list[Any]:
    if name not in c:
        return [None] * len(c)
    s = c[name]
    return s.astype(object).where(s.notna(), None).tolist()


# -- the allocation plan in the workbook (tierctl allocate, issue 9) -------------------------
PLAN_LABELS = {
    "zh": {"option": "补偿方案", "cost": "方案费用（元）", "sheet": "资源分配", "title": "资源分配方案",
           "days": "按到货还需（天）", "days_source": "天数来源", "resource": "资源", "used": "已用", "available": "可用",
           "loaners": "代步车（辆）", "premium": "其中高端车", "regular": "其中普通车", "budget": "补偿预算（元）",
           "tier": "级别", "covered": "覆盖", "total": "人数", "package": "方案", "count": "人数", "amount": "费用（元）",
           "marginal": "多一点资源能做什么", "shortfall": "P0 缺口", "none": "无：全部 P0 客户都已覆盖", "name": "客户姓名",
           "id": "客户编号", "score": "总分", "why": "分配原因", "risk": "安排情况",
           "risk_text": "已安排 {c} 位客户；{u} 位没有安排"},
    "en": {"option": "Package", "cost": "Package cost (CNY)", "sheet": "Allocation", "title": "Allocation plan",
           "days": "Days to ETA", "days_source": "Days from", "resource": "Resource", "used": "Used",
           "available": "Available", "loaners": "Loan cars", "premium": "of which premium", "regular": "of which regular",
           "budget": "Budget (CNY)", "tier": "Tier", "covered": "Covered", "total": "Customers", "package": "Package",
           "count": "Customers", "amount": "Cost (CNY)", "marginal": "What a little more would do", "shortfall": "P0 shortfall",
           "none": "none: every P0 customer is covered", "name": "Name", "id": "Customer ID", "score": "Score",
           "why": "Why (Chinese)", "risk": "Looked after",
           "risk_text": "{c} customers looked after; {u} not"},
}


def _write_plan_sheet(wb: Any, result: ShortageResult, view: dict[str, Any], lang: str, header: Any,
                      named: dict[str, Any]) -> None:
    """The plan's own sheet: totals first (resources, risk, packages, marginal values,
    shortfall), then every customer's package, cost and reasons.  Row by row, so it
    also works in xlsxwriter's constant-memory mode."""
    P = PLAN_LABELS[lang]
    ws = wb.add_worksheet(P["sheet"])
    bold = wb.add_format({"bold": True, "font_size": 10})
    title = wb.add_format({"bold": True, "font_size": 14})
    wrap = wb.add_format({"font_size": 10, "text_wrap": True, "valign": "top"})
    num = named["int"]
    for j, w in enumerate((16, 12, 30, 10, 12, 12, 70)):
        ws.set_column(j, j, w)
    r = 0
    ws.write_string(r, 0, f"{P['title']} · {view['as_of']}", title)
    r += 2
    ws.write_string(r, 0, P["days"], bold)
    ws.write_number(r, 1, view["days"], num)
    r += 1
    if view["days_source"]:
        ws.write_string(r, 0, P["days_source"], bold)
        ws.write_string(r, 1, str(view["days_source"]), wrap)
        r += 1
    r += 1
    for j, h in enumerate((P["resource"], P["used"], P["available"])):
        ws.write_string(r, j, h, header)
    r += 1
    for key in ("loaners", "premium", "regular", "budget"):
        ws.write_string(r, 0, P[key], named["text"])
        ws.write_number(r, 1, int(view[key]["used"]), num)
        ws.write_number(r, 2, int(view[key]["available"]), num)
        r += 1
    r += 1
    cov, unc = view["covered"], view["uncovered"]
    ws.write_string(r, 0, P["risk"], bold)
    ws.write_string(r, 1, P["risk_text"].format(c=cov["customers"], r=cov["raw"], w=cov["weighted"],
                                               u=unc["customers"]), wrap)
    r += 2
    for j, h in enumerate((P["tier"], P["covered"], P["total"])):
        ws.write_string(r, j, h, header)
    r += 1
    for t in view["tiers"]:
        fmt = named.get(f"tier:{t['name']}", named["text"])
        ws.write_string(r, 0, t["name"], fmt)
        ws.write_number(r, 1, t["covered"], fmt)
        ws.write_number(r, 2, t["total"], fmt)
        r += 1
    r += 1
    for j, h in enumerate((P["package"], P["count"], P["amount"])):
        ws.write_string(r, j, h, header)
    r += 1
    for pk in view["packages"]:
        ws.write_string(r, 0, str(pk["name"]), named["text"])
        ws.write_number(r, 1, pk["count"], num)
        ws.write_number(r, 2, pk["cost"], num)
        r += 1
    r += 1
    ws.write_string(r, 0, P["marginal"], bold)
    for m in view["marginal"].values():
        ws.write_string(r, 1, str(m["plain"]), wrap)
        r += 1
    r += 1
    ws.write_string(r, 0, P["shortfall"], bold)
    ws.write_string(r, 1, view["shortfall"]["message"] if view["shortfall"] else P["none"], wrap)
    r += 2
    _write_plan_customers(ws, result, view, P, r, header, named, wrap)
    ws.set_landscape()
    ws.set_paper(9)
    ws.fit_to_pages(1, 0)


def _write_plan_customers(ws: Any, result: ShortageResult, view: dict[str, Any], P: dict[str, str], r: int,
                          header: Any, named: dict[str, Any], wrap: Any) -> None:
    """Every customer's package, cost and reasons, from row ``r`` on."""
    num = named["int"]
    heads = (P["tier"], P["name"], P["option"], P["cost"], P["id"], P["score"], P["why"])
    for j, h in enumerate(heads):
        ws.write_string(r, j, h, header)
    top = r
    c = result.customers
    names = _col_values(c, "name")
    ids = _col_values(c, "customer_id")
    scale = Decimal(result.model.scale)
    for i, (t, total) in enumerate(zip(c["tier"].tolist(), c["total_scaled"].tolist(), strict=True)):
        r += 1
        fmt = named.get(f"tier:{t}", named["text"])
        ws.write_string(r, 0, str(t), fmt)
        ws.write_string(r, 1, "" if names[i] is None else str(names[i]), named["text"])
        ws.write_string(r, 2, view["customer_option"][i], wrap)
        cost = view["customer_cost"][i]
        if cost is None:
            ws.write_blank(r, 3, None, num)
        else:
            ws.write_number(r, 3, cost, num)
        ws.write_string(r, 4, "" if ids[i] is None else str(ids[i]), named["text"])
        ws.write_number(r, 5, float(Decimal(int(total)) / scale), named["text"])
        ws.write_string(r, 6, view["customer_why"][i], wrap)
    ws.autofilter(top, 0, max(r, top + 1), len(heads) - 1)
