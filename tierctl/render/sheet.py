"""The evaluation sheet (客户分层评估表.xlsx): the RITE columns, the summary, print-ready."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from tierctl.render.figures import plan_view
from tierctl.render.plan_sheet import PLAN_LABELS, _col_values, _write_plan_sheet
from tierctl.render.values import action_text, owner_text, tier_labels
from tierctl.shortage import Crisis, ShortageResult, crisis_level


# -- the evaluation sheet ------------------------------------------------------------------------
class WorkbookSection(Protocol):
    """A hook for more sheets in the evaluation workbook (e.g. an allocation plan):
    called once after the built-in sheets with the open xlsxwriter workbook and the
    shared formats (``header``, ``text``, ``int``, ``tier:<name>``)."""

    def write_xlsx(self, workbook: Any, formats: dict[str, Any]) -> None: ...


SHEET_LABELS = {
    "zh": {
        "sheet": "客户分层评估表", "summary": "汇总", "name": "客户姓名", "car": "车型", "wait": "等待天数",
        "score": "总分", "tier": "优先级", "action": "行动计划", "owner": "负责人", "respond_by": "响应时限",
        "reasons": "评分依据", "id": "客户编号", "phone": "手机号", "part": "缺件",
        "title": "客户分层评估表 · 汇总", "as_of": "评估日期", "centre": "服务中心", "model": "评分模型",
        "waiting": "等待客户数", "label": "含义", "count": "人数", "share": "占比", "expected": "常见占比",
        "crisis": "危机等级", "response": "应对", "criteria": "判定依据", "criterion": "标准", "value": "数值",
        "level": "达到等级", "generated": "生成时间", "footer": "第 &P 页，共 &N 页",
    },
    "en": {
        "sheet": "Evaluation", "summary": "Summary", "name": "Name", "car": "Car", "wait": "Days waited",
        "score": "Score", "tier": "Tier", "action": "Action plan", "owner": "Owner", "respond_by": "Respond by",
        "reasons": "Reasons", "id": "Customer ID", "phone": "Phone", "part": "Part",
        "title": "Customer tier evaluation · summary", "as_of": "As of", "centre": "Service centre",
        "model": "Model", "waiting": "Customers waiting", "label": "Meaning", "count": "Customers",
        "share": "Share", "expected": "Usual share", "crisis": "Crisis level", "response": "Response",
        "criteria": "Criteria", "criterion": "Criterion", "value": "Value", "level": "Level reached",
        "generated": "Generated", "footer": "Page &P of &N",
    },
}
TIER_FILLS = ("#F4B6B6", "#F9D29D", "#FFF0A6", "#CDE8C4", "#D9E2F3", "#E4D7F0")
CRISIS_FILLS = {"green": "#CDE8C4", "yellow": "#FFF0A6", "orange": "#F9D29D", "red": "#F4B6B6"}


def sheet_columns(model: Any, lang: str) -> list[tuple[str, str, str, float]]:
    """(field, header, kind, width) in order: the seed's columns first."""
    L = SHEET_LABELS[lang]
    cols: list[tuple[str, str, str, float]] = [("name", L["name"], "text", 10), ("car", L["car"], "text", 16),
                                               ("wait_days", L["wait"], "int", 9)]
    for d in model.dimensions:
        label = d.label if lang == "zh" else d.label_en
        cols.append((d.key, f"{d.key} {label}", "int", 11 if lang == "zh" else 14))
    cols += [("score", L["score"], "score", 8), ("tier", L["tier"], "text", 8),
             ("action", L["action"], "wrap", 36), ("owner", L["owner"], "wrap", 16),
             ("respond_by", L["respond_by"], "datetime", 17), ("reasons", L["reasons"], "wrap", 58),
             ("customer_id", L["id"], "text", 10), ("phone", L["phone"], "text", 13), ("part", L["part"], "text", 14)]
    return cols



def write_evaluation_sheet(result: ShortageResult, path: Path, *, lang: str = "zh", crisis: Crisis | None = None,
                           centre: str = "", plan: WorkbookSection | Mapping[str, Any] | None = None,
                           constant_memory: bool = True) -> Path:
    """The RITE evaluation sheet (客户分层评估表) and a summary sheet, print-ready.

    Every text cell is written with ``write_string`` and the workbook refuses to turn
    strings into formulas or links, so a name like ``=HYPERLINK(…)`` stays text.
    ``plan`` adds more sheets (see :class:`WorkbookSection`); an allocation plan (the
    mapping ``tierctl allocate`` stores) adds each customer's package and cost after the
    action plan, and a sheet with the plan's totals and reasons."""
    from tierctl.io.writers import xlsx_workbook

    model = result.model
    L = SHEET_LABELS[lang]
    c = result.customers
    n = len(c)
    crisis = crisis or crisis_level(result)
    wb = xlsx_workbook(path, lang=lang, options={
        "constant_memory": constant_memory, "strings_to_formulas": False, "strings_to_urls": False,
        "strings_to_numbers": False, "remove_timezone": True,
    })
    try:
        wb.set_properties({"title": L["sheet"], "created": result.now.replace(tzinfo=None), "author": "tierctl"})
        header, formats, named = _formats(wb, model, lang)

        cols = sheet_columns(model, lang)
        view = plan_view(dict(plan), result, lang) if isinstance(plan, Mapping) else None
        if view is not None:
            at = next(j for j, col in enumerate(cols) if col[0] == "action") + 1
            cols[at:at] = [("plan_option", PLAN_LABELS[lang]["option"], "wrap", 30),
                           ("plan_cost", PLAN_LABELS[lang]["cost"], "int", 11)]
        ws = wb.add_worksheet(L["sheet"])
        for j, (_f, _head, _k, width) in enumerate(cols):
            ws.set_column(j, j, width)
        ws.set_row(0, 30)
        for j, (_f, head, _k, _w) in enumerate(cols):
            ws.write_string(0, j, head, header)
        _page_setup(ws, n, len(cols), centre, L["sheet"], L["footer"], result.as_of.isoformat())

        values = _sheet_values(result, cols, lang, model.policy.response(crisis.level))
        if view is not None:
            values[at], values[at + 1] = view["customer_option"], view["customer_cost"]
        _write_rows(ws, cols, values, c["tier"].tolist(), formats)

        _write_summary(wb, result, crisis, lang, centre, header, named)
        if view is not None:
            _write_plan_sheet(wb, result, view, lang, header, named)
        elif plan is not None and not isinstance(plan, Mapping):
            plan.write_xlsx(wb, named)
    finally:
        wb.close()
    return path


def _formats(wb: Any, model: Any, lang: str) -> tuple[Any, dict[tuple[str, str], Any], dict[str, Any]]:
    """The header format, a format per (tier, kind) and the named ones sections use."""
    base: dict[str, Any] = {"font_name": "Microsoft YaHei" if lang == "zh" else "Calibri", "font_size": 10, "valign": "top",
            "border": 1, "border_color": "#BFBFBF"}
    header = wb.add_format({**base, "bold": True, "bg_color": "#404040", "font_color": "#FFFFFF",
                            "text_wrap": True, "valign": "vcenter", "align": "center"})
    score_fmt = "0" if model.decimals == 0 else "0." + "0" * model.decimals
    kinds: dict[str, dict[str, Any]] = {"text": {}, "wrap": {"text_wrap": True}, "int": {"num_format": "0", "align": "center"},
             "score": {"num_format": score_fmt, "align": "center"},
             "datetime": {"num_format": "yyyy-mm-dd hh:mm", "align": "center"}}
    formats: dict[tuple[str, str], Any] = {}
    named: dict[str, Any] = {"header": header}
    for i, t in enumerate(model.tier_names):
        fill: dict[str, Any] = {"bg_color": TIER_FILLS[i]} if i < len(TIER_FILLS) else {}
        for k, extra in kinds.items():
            formats[(t, k)] = wb.add_format({**base, **fill, **extra})
        named[f"tier:{t}"] = formats[(t, "text")]
    named["text"] = wb.add_format(base)
    named["int"] = wb.add_format({**base, **kinds["int"]})
    return header, formats, named


def _page_setup(ws: Any, n: int, width: int, centre: str, title: str, footer: str, as_of: str) -> None:
    ws.freeze_panes(1, 1)
    ws.autofilter(0, 0, max(n, 1), width - 1)
    ws.set_landscape()
    ws.set_paper(9)  # A4
    ws.fit_to_pages(1, 0)
    ws.repeat_rows(0)
    ws.set_margins(left=0.4, right=0.4, top=0.6, bottom=0.6)
    ws.set_header(f"&L&\"-,Bold\"{_hf(centre)}&C&\"-,Bold\"{_hf(title)}&R{as_of}")
    ws.set_footer(f"&C{footer}")


def _write_rows(ws: Any, cols: list[tuple[str, str, str, float]], values: list[list[Any]], tiers: list[Any],
                formats: dict[tuple[str, str], Any]) -> None:
    """The customer rows, a column at a time: each row's style is its tier."""
    from tierctl.io.xlsxrows import RowsColumn

    names = list(dict.fromkeys(t for t, _k in formats))
    code = {t: i for i, t in enumerate(names)}
    kinds = {"int": "n", "score": "n", "datetime": "d"}
    columns = [RowsColumn(values[j], kinds.get(kind, "s"), [formats[(t, kind)] for t in names])
               for j, (_f, _h, kind, _w) in enumerate(cols)]
    ws.write_rows(1, columns, [code[t] for t in tiers])


def _hf(s: str) -> str:
    # header/footer codes start with &: a literal ampersand is written &&
    return s.replace("&", "&&")


def _sheet_values(result: ShortageResult, cols: list[tuple[str, str, str, float]], lang: str,
                  response: Any = None) -> list[list[Any]]:
    """The sheet's columns; owner and action as the crisis level ``response`` asks."""
    model = result.model
    c = result.customers
    tiers = {t.name: t for t in model.tiers}
    out: list[list[Any]] = []
    reasons = None
    for f, _h, _k, _w in cols:
        if f == "score":
            scale = Decimal(model.scale)
            out.append([float(Decimal(int(v)) / scale) for v in c["total_scaled"].tolist()])
        elif f in model.dim_keys or f == "wait_days":
            out.append([int(v) for v in c[f].tolist()])
        elif f == "action":
            acts = {k: action_text(t, lang, response) for k, t in tiers.items()}
            out.append([acts[t] for t in c["tier"].tolist()])
        elif f == "owner":
            owners = {k: owner_text(t, lang, response) for k, t in tiers.items()}
            out.append([owners[t] for t in c["tier"].tolist()])
        elif f == "respond_by":
            rb = c["respond_by"]
            if getattr(rb.dt, "tz", None) is not None:
                rb = rb.dt.tz_localize(None)
            out.append([x.to_pydatetime() for x in rb])
        elif f == "reasons":
            if reasons is None:
                parts = [c[f"reason_{d.key}"].astype(str) for d in model.dimensions]
                joined = parts[0]
                for p in parts[1:]:
                    joined = joined + "\n" + p
                esc = c["escalations"].fillna("").astype(str)
                joined = joined.where(esc == "", joined + "\n" + esc)
                reasons = joined.tolist()
            out.append(reasons)
        else:
            vals = _col_values(c, f)
            out.append([None if v is None or v == "" else str(v) for v in vals])
    return out


def _write_summary(wb: Any, result: ShortageResult, crisis: Crisis, lang: str, centre: str, header: Any,
                   named: dict[str, Any]) -> None:
    model = result.model
    L = SHEET_LABELS[lang]
    ws = wb.add_worksheet(L["summary"])
    bold = wb.add_format({"bold": True, "font_size": 10})
    title = wb.add_format({"bold": True, "font_size": 14})
    plain = wb.add_format({"font_size": 10, "valign": "top"})
    wrap = wb.add_format({"font_size": 10, "text_wrap": True, "valign": "top"})
    pct = wb.add_format({"font_size": 10, "num_format": "0%", "border": 1, "border_color": "#BFBFBF"})
    ws.set_column(0, 0, 16)
    ws.set_column(1, 1, 14)
    ws.set_column(2, 4, 12)
    ws.set_column(5, 5, 50)
    counts = result.counts()
    n = len(result.customers)
    r = 0
    ws.write_string(r, 0, L["title"], title)
    r += 2
    rows = [(L["as_of"], result.as_of.isoformat()), (L["generated"], result.now.strftime("%Y-%m-%d %H:%M")),
            (L["centre"], centre or "—"), (L["model"], f"{model.name} · {model.title}" if model.title else model.name)]
    for k, v in rows:
        ws.write_string(r, 0, k, bold)
        ws.write_string(r, 1, v, plain)
        r += 1
    ws.write_string(r, 0, L["waiting"], bold)
    ws.write_number(r, 1, n, plain)
    r += 2
    for j, h in enumerate((L["tier"], L["label"], L["count"], L["share"], L["expected"])):
        ws.write_string(r, j, h, header)
    r += 1
    labels = tier_labels(result, lang)
    for t in model.tier_names:
        fmt = named[f"tier:{t}"]
        ws.write_string(r, 0, t, fmt)
        ws.write_string(r, 1, labels[t], fmt)
        ws.write_number(r, 2, counts[t], fmt)
        ws.write_number(r, 3, counts[t] / n if n else 0, pct)
        lo_hi = model.expected_share.get(t)
        ws.write_string(r, 4, f"{lo_hi[0]:.0%}–{lo_hi[1]:.0%}" if lo_hi else "—", fmt)
        r += 1
    r += 1
    label = crisis.label
    if lang == "en":
        spec = next((lv for lv in model.crisis.levels if int(lv.get("level", 0)) == crisis.level), {})
        label = str(spec.get("label_en", crisis.color))
    cfmt = wb.add_format({"bold": True, "font_size": 12, "bg_color": CRISIS_FILLS.get(crisis.color, "#FFFFFF")})
    ws.write_string(r, 0, L["crisis"], bold)
    ws.write_string(r, 1, f"{crisis.level} {label}", cfmt)
    r += 1
    ws.write_string(r, 0, L["response"], bold)
    ws.write_string(r, 1, crisis.response, wrap)
    r += 2
    for j, h in enumerate((L["criterion"], L["value"], L["level"])):
        ws.write_string(r, j, h, header)
    r += 1
    for crit in crisis.criteria:
        v = crit["value"]
        ws.write_string(r, 0, str(crit["label"]), plain)
        if isinstance(v, dict):
            ws.write_string(r, 1, " / ".join(f"{k} {x}" for k, x in v.items()), plain)
        elif isinstance(v, int | float):
            ws.write_number(r, 1, v, plain)
        else:
            ws.write_string(r, 1, str(v), plain)
        ws.write_number(r, 2, int(crit["level"]), plain)
        r += 1
    ws.set_landscape()
    ws.set_paper(9)
    ws.fit_to_pages(1, 1)


