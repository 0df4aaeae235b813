"""What every template needs, computed once (:func:`prepare`), and the e-mail's variables."""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from tierctl.errors import ConfigError, RenderError, TierctlError
from tierctl.render.environment import LANGS, ConfigView
from tierctl.render.figures import cost_breakdown, part_summary, plan_view, wait_bands
from tierctl.render.values import (
    EtaPlan,
    _missing,
    at_crisis_level,
    date_value,
    eta_plan,
    int_value,
    need_list,
    tier_labels,
)
from tierctl.render.views import customer_plans, customer_views, offers, preflight
from tierctl.shortage import Crisis, ShortageResult, crisis_level


# -- contexts --------------------------------------------------------------------------------
@dataclass
class Prepared:
    """Everything the templates and writers need, computed once."""

    result: ShortageResult
    config: Any
    lang: str
    crisis: Crisis
    eta: EtaPlan
    customers: list[dict[str, Any]]
    base: dict[str, Any]
    missing: dict[str, list[str]]  # configuration keys each document lacks (those documents are left out)


def check_progress_date(config: Any, as_of: dt.date) -> None:
    """Today's progress must be today's: SMS and calls say 「今天」."""
    d = date_value(config, "progress.date")
    if d != as_of:
        raise ConfigError(
            f"进展日期是 {d}，不是评估日期 {as_of}：短信和通话脚本会把旧进展当作今天的进展发给客户",
            path=config.path or Path("tierctl.toml"), key="progress.date",
            hint="更新 [progress] 中今天做了什么、结果如何、明天的计划，并把 progress.date 改为今天",
        )


def prepare(result: ShortageResult, config: Any, *, lang: str = "zh", eta_weeks: float | None = None,
            crisis: Crisis | None = None, plan: Mapping[str, Any] | None = None,
            allocation_model: Any = None) -> Prepared:
    """Check the configuration and work out what every template needs.

    ``plan``: the day's stored allocation plan; each customer then carries what it gave
    them (``c.plan``) and the documents offer exactly that.  ``allocation_model``: the
    allocation model the plan was made with, to spell a package out item by item (by
    default the packaged model of the plan's name, when it matches the plan)."""
    from tierctl.render import plain_reasons

    if lang not in LANGS:
        raise RenderError(f"不支持的语言「{lang}」", hint="可选：zh | en")
    if len(result.customers) == 0:
        raise RenderError("导出表中没有等待配件的客户，没有需要生成的文件")
    missing = preflight(result, config, eta_weeks, planned=plan is not None)
    eta = eta_plan(config, result.as_of, eta_weeks)
    customers = customer_views(result, config, eta, lang, reasons=plain_reasons.for_config(config))
    if plan is not None:
        for c, pl in zip(customers, customer_plans(dict(plan), result, lang, allocation_model
                                                        or _packaged_allocation_model(plan)), strict=True):
            c["plan"] = pl
    max_eta_days = max(c["eta_days"] for c in customers)
    if crisis is None:
        crisis = crisis_level(result, max_eta_days / 7)
    model = result.model
    at_crisis_level(customers, result, lang, model.policy.response(crisis.level))
    labels = tier_labels(result, lang)
    counts = result.counts()
    n = len(customers)
    tiers = []
    for t in model.tiers:
        lo_hi = model.expected_share.get(t.name)
        tiers.append({"name": t.name, "label": labels[t.name], "count": counts[t.name],
                      "share": Decimal(counts[t.name]) / Decimal(n), "expected": lo_hi,
                      "first_contact_hours": t.first_contact_hours, "cadence_days": t.cadence_days})
    crisis_d = crisis.to_json()
    if lang == "en":
        spec = next((lv for lv in model.crisis.levels if int(lv.get("level", 0)) == crisis.level), {})
        crisis_d["label"] = str(spec.get("label_en", crisis.color))
    base: dict[str, Any] = {
        "as_of": result.as_of,
        "now": result.now,
        "lang": lang,
        "model": {"name": model.name, "title": model.title},
        "centre": ConfigView(config, "centre"),
        "config": ConfigView(config),
        "progress": ConfigView(config, "progress"),
        "parts": ConfigView(config, "parts"),
        "offer": ConfigView(config, "offer"),
        "request": ConfigView(config, "request"),
        "transfer": ConfigView(config, "transfer"),
        "measures": ConfigView(config, "measures"),
        "crisis": crisis_d,
        "tiers": tiers,
        "counts": counts,
        "total": n,
        "top_tiers": list(model.tier_names[:2]),
        "config_file": config.source,
        "offer_for": lambda c: offers(config, c),
    }
    # the day's allocation plan (tierctl allocate), if one was stored: None otherwise
    base["plan"] = plan_view(dict(plan), result, lang) if plan is not None else None
    return Prepared(result, config, lang, crisis, eta, customers, base, missing)


def _packaged_allocation_model(plan: Mapping[str, Any]) -> Any:
    """The packaged allocation model the plan names, or None (then the packages are
    spelled out from their names)."""
    name = str(plan.get("model") or "")
    if not name or "/" in name or name.endswith(".toml"):
        return None
    try:
        from tierctl.allocate import load_model

        return load_model(name)
    except TierctlError:
        return None



def email_context(p: Prepared) -> dict[str, Any]:
    cfg = p.config
    cs = p.customers
    long_wait = int_value(cfg, "render.long_wait_days")
    bands = wait_bands(cs, need_list(cfg, "render.wait_bands", int))
    costs = cost_breakdown(cs, cfg, p.result.model.tier_names, planned=p.base["plan"] is not None)
    top = p.base["top_tiers"]
    p0 = [c for c in cs if c["tier"] == top[0]]
    high = [c for c in cs if c["tier"] in top]
    respond_h = int_value(cfg, "request.respond_within_hours", lo=1)
    decide_h = int_value(cfg, "request.decide_within_hours", lo=1)
    to = _addresses(cfg, "email.to", required=True)
    cc = _addresses(cfg, "email.cc", required=False)
    mail = cfg.get("centre.manager_email") or ""
    if mail and "@" not in mail:
        raise ConfigError(f"「{mail}」不是邮箱地址", path=cfg.path or Path("tierctl.toml"), key="centre.manager_email")
    n = len(cs)
    return {
        **p.base,
        "customers": cs,
        "bands": bands,
        "long_wait": long_wait,
        "parts_list": part_summary(cs, long_wait, top),
        "over_at_eta": sum(1 for c in cs if c["wait_at_eta"] > long_wait),
        "longest_wait": max(c["wait_days"] for c in cs),
        "longest_at_eta": max(c["wait_at_eta"] for c in cs),
        "mean_wait": (Decimal(sum(c["wait_days"] for c in cs)) / n).quantize(Decimal("0.1")),
        "p0": p0,
        "high_risk": high,
        "high_share": Decimal(len(high)) / Decimal(n),
        "expected_high": _expected_high(p),
        "ride_hailing": [c for c in cs if c["ride_hailing"]],
        "legal": [c for c in cs if c["legal"]],
        "complained": [c for c in cs if c["complained"]],
        "costs": costs.as_context(),
        "respond_hours": respond_h,
        "respond_by": p.result.now + dt.timedelta(hours=respond_h),
        "decide_hours": decide_h,
        "decide_by": p.result.now + dt.timedelta(hours=decide_h),
        "to": to,
        "cc": cc,
        "manager_email": mail,
        "fallback": cfg.get("request.fallback") or [],
        "commitments": cfg.get("request.commitments") or [],
        "attachment": f"客户分层评估表-{p.result.as_of.isoformat()}.xlsx" if p.lang == "zh"
        else f"evaluation-sheet-{p.result.as_of.isoformat()}.xlsx",
    }


def _expected_high(p: Prepared) -> tuple[Decimal, Decimal] | None:
    """The model's usual share of P0 + P1 customers (sum of their expected ranges)."""
    lo = hi = Decimal(0)
    for t in p.base["top_tiers"]:
        share = p.result.model.expected_share.get(t)
        if share is None:
            return None
        lo += Decimal(str(share[0]))
        hi += Decimal(str(share[1]))
    return lo.quantize(Decimal("0.01")), hi.quantize(Decimal("0.01"))


def _addresses(cfg: Any, key: str, *, required: bool) -> list[str]:
    v = cfg.get(key)
    if v is None or v == [] or v == "":
        if required:
            raise _missing(cfg, key, hint='填写收件人，例如 to = ["王总 <wang@example.com>"]')
        return []
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ConfigError("应为邮箱地址列表", path=cfg.path or Path("tierctl.toml"), key=key)
    out = []
    for x in v:
        _name, addr = email.utils.parseaddr(x)
        if "@" not in addr:
            raise ConfigError(f"「{x}」不是邮箱地址", path=cfg.path or Path("tierctl.toml"), key=key,
                              hint='写成 "wang@example.com" 或 "王总 <wang@example.com>"')
        out.append(x.strip())
    return out


