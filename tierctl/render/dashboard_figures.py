"""The dashboard's charts (split from :mod:`tierctl.render.dashboard`): each an SVG from
:mod:`tierctl.render.charts` with a table of the same numbers.  An estimated figure (the churn
ROI before any intervention result is logged) is drawn hatched and labelled 预计."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tierctl.render import charts

RFM_COLORS = ["#1a9850", "#66bd63", "#a6d96a", "#fdae61", "#4575b4", "#74add1", "#abd9e9", "#bdbdbd"]


# =========================================================================================
# Figures
# =========================================================================================
@dataclass
class Figure:
    """One chart: the SVG and a table with the same numbers (its text alternative)."""

    key: str
    title: str
    caption: str
    svg: str
    headers: list[str]
    rows: list[list[Any]]
    section: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "caption": self.caption, "headers": self.headers,
                "rows": self.rows, "section": self.section}


TEXT = {
    "zh": {
        "trend": "P0–P3 人数趋势", "trend_desc": "每次保存的评分中各分级的人数（堆叠柱形图）",
        "trend_cap": "各分级人数随日期的变化", "date": "日期", "customers": "人数", "total": "合计",
        "wait": "等待天数分布", "wait_desc": "今天名单上客户的等待天数直方图，虚线为 7/14/21/28 天等界限",
        "wait_cap": "等待天数直方图与预警界限", "days": "等待天数", "range": "等待天数区间",
        "rfm": "RFM 客户类型分布", "rfm_desc": "八类客户各有多少人", "rfm_cap": "八类客户的人数与占比",
        "type": "客户类型", "share": "占比", "usual": "常见占比",
        "mig": "RFM 客户迁移", "mig_desc": "上期类型（行）到本期类型（列）的人数，红框为关键流向",
        "mig_cap": "上期到本期的类型迁移矩阵", "prev": "上期类型", "curr": "本期类型", "new": "新客户",
        "departed": "已流失/不在本期", "roi": "流失干预 ROI（按风险等级）",
        "roi_desc": "每个风险等级的投入产出比", "roi_cap": "各风险等级的干预投入产出比",
        "roi_est": "流失干预 ROI（预计，按风险等级）", "est": "预计",
        "roi_desc_est": "每个风险等级的预计投入产出比：尚无干预结果，按行业挽回率和预算中值估算，不是实际数字",
        "roi_cap_est": "预计值（斜线）：尚未记录干预结果，按今天的人数、预算中值和行业挽回率中值估算",
        "level": "风险等级", "intervened": "干预", "won": "挽回", "rate": "挽回率", "cost": "成本（元）",
        "revenue": "挽回收入（元）", "roi_pct": "ROI",
    },
    "en": {
        "trend": "P0–P3 customers over time", "trend_desc": "Customers per tier in every stored run (stacked bars)",
        "trend_cap": "Customers per tier by date", "date": "Date", "customers": "Customers", "total": "Total",
        "wait": "Days waited", "wait_desc": "Histogram of days waited by today's customers; dashed lines mark the 7/14/21/28-day limits",
        "wait_cap": "Days-waited histogram and alert limits", "days": "Days waited", "range": "Days waited",
        "rfm": "RFM customer types", "rfm_desc": "Customers in each of the eight types",
        "rfm_cap": "Customers and share per type", "type": "Type", "share": "Share", "usual": "Usual share",
        "mig": "RFM migration", "mig_desc": "Customers from last period's type (rows) to this period's (columns); key flows outlined in red",
        "mig_cap": "Type migration matrix, last period to this one", "prev": "Last period", "curr": "This period",
        "new": "New", "departed": "Left / not this period", "roi": "Churn intervention ROI by level",
        "roi_desc": "Return on the intervention cost per risk level", "roi_cap": "Return on intervention per risk level",
        "roi_est": "Churn intervention ROI by level (estimate)", "est": "est.",
        "roi_desc_est": "Estimated return per risk level: no intervention results yet, projected from the benchmark "
                        "and budget midpoints, not an actual figure",
        "roi_cap_est": "Estimates (hatched): no intervention results logged yet; projected from today's counts, "
                       "the budget midpoint and the benchmark win-back midpoint",
        "level": "Risk level", "intervened": "Intervened", "won": "Won back", "rate": "Win-back rate",
        "cost": "Cost (CNY)", "revenue": "Revenue won back (CNY)", "roi_pct": "ROI",
    },
}


def figures(data: dict[str, Any], *, font: str = charts.FONT_STACK) -> list[Figure]:
    """The dashboard's charts, in page order, each with its table."""
    tx = TEXT["en" if data.get("lang") == "en" else "zh"]
    out: list[Figure] = []
    s = data.get("shortage")
    if s:
        tiers = s["tiers"]
        dates = [t["date"] for t in s["trend"]]
        series = [charts.Series(t["name"], [d["counts"][t["name"]] for d in s["trend"]], t["color"]) for t in tiers]
        svg = charts.stacked_bars([d[5:] for d in dates], series, title=tx["trend"], desc=tx["trend_desc"],
                                  y_label=tx["customers"], font=font, key="fig-trend")
        rows = [[d["date"], *[d["counts"][t["name"]] for t in tiers], sum(d["counts"].values())] for d in s["trend"]]
        out.append(Figure("trend", tx["trend"], tx["trend_cap"], svg,
                          [tx["date"], *[t["name"] for t in tiers], tx["total"]], rows, "shortage"))
        w = s["wait"]
        lines = [charts.RefLine(x["days"], x["label"]) for x in w["lines"]]
        svg = charts.histogram(w["edges"], w["counts"], title=tx["wait"], desc=tx["wait_desc"], colors=w["colors"],
                               lines=lines, x_label=tx["days"], y_label=tx["customers"], font=font, key="fig-wait",
                               last_open=w["open_last"])
        out.append(Figure("wait", tx["wait"], tx["wait_cap"], svg, [tx["range"], tx["customers"], tx["share"]],
                          [[b["label"], b["count"], f"{b['share']:g}%"] for b in w["bands"]], "shortage"))
    r = data.get("rfm")
    if r:
        types = r["types"]
        svg = charts.hbars([f"{t['type_no']} {t['name']}" for t in types], [t["customers"] for t in types],
                           title=tx["rfm"], desc=tx["rfm_desc"], colors=RFM_COLORS[:len(types)],
                           value_labels=[f"{charts.fmt_num(t['customers'])}（{t['share']:g}%）" if data.get("lang") != "en"
                                         else f"{charts.fmt_num(t['customers'])} ({t['share']:g}%)" for t in types],
                           font=font, key="fig-rfm")
        out.append(Figure("rfm_types", tx["rfm"], tx["rfm_cap"], svg,
                          [tx["type"], "R·F·M", tx["customers"], tx["share"], tx["usual"]],
                          [[f"{t['type_no']} {t['name']}", t["pattern"], t["customers"], f"{t['share']:g}%", t["usual"]]
                           for t in types], "rfm"))
        m = r.get("migration")
        if m:
            names = [f"{no} {nm}" for no, nm in zip(m["types"], m["names"], strict=True)]
            rows_l = [*names, tx["new"]]
            cols_l = [*names, tx["departed"]]
            idx = {no: i for i, no in enumerate(m["types"])}
            marks = [(idx[f["from"]], idx[f["to"]]) for f in m["flows"]]
            svg = charts.heatmap(rows_l, cols_l, m["matrix"], title=tx["mig"], desc=tx["mig_desc"],
                                 row_label=tx["prev"], col_label=tx["curr"], font=font, key="fig-migration",
                                 highlight=marks)
            out.append(Figure("rfm_migration", tx["mig"], tx["mig_cap"], svg, [f"{tx['prev']} \\ {tx['curr']}", *cols_l],
                              [[rows_l[i], *row] for i, row in enumerate(m["matrix"])], "rfm"))
    c = data.get("churn")
    if c and c.get("roi"):
        rows_r = c["roi"]
        colors = {lv["key"]: lv["color"] for lv in c["levels"]}
        est = c.get("roi_basis") == "projected"  # no intervention results: an estimate, drawn as one
        title = tx["roi_est"] if est else tx["roi"]
        svg = charts.hbars([x["label"] for x in rows_r], [x["roi"] or 0 for x in rows_r], title=title,
                           desc=tx["roi_desc_est"] if est else tx["roi_desc"],
                           colors=[colors.get(x["key"], "#4575b4") for x in rows_r],
                           value_labels=[f"{x['roi']:g}%" if x["roi"] is not None else "—" for x in rows_r],
                           font=font, key="fig-roi", x_label="ROI %", estimate=tx["est"] if est else None)
        out.append(Figure("churn_roi", title, tx["roi_cap_est"] if est else tx["roi_cap"], svg,
                          [tx["level"], tx["customers"],
                           *(f"{tx['est']} {h}" if est else h for h in (tx["intervened"], tx["won"], tx["rate"],
                                                                         tx["cost"], tx["revenue"], tx["roi_pct"]))],
                          [[x["label"], x["customers"], x["intervened"], x["won_back"],
                            f"{x['rate']:g}%" if x["rate"] is not None else "—", x["cost"], x["revenue"],
                            f"{x['roi']:g}%" if x["roi"] is not None else "—"] for x in rows_r], "churn"))
    return out
