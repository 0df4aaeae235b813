"""Figures of the day for the documents: wait bands, parts, the cost of the shortage, SMS
bands and lengths, the taboo check, the allocation plan's view (moved from
tierctl/documents.py; pure)."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from tierctl.errors import ConfigError
from tierctl.render.values import _missing, decimal_value, yuan
from tierctl.shortage import ShortageResult


# -- situation -----------------------------------------------------------------------------
def wait_bands(customers: Sequence[dict[str, Any]], bounds: Sequence[int]) -> list[dict[str, Any]]:
    """Counts per wait band: bounds [7, 14, 21, 28] -> 0–7, 8–14, 15–21, 22–28, >28."""
    edges = sorted(int(b) for b in bounds)
    out: list[dict[str, Any]] = []
    lo = 0
    for hi in edges:
        out.append({"lo": lo, "hi": hi, "count": sum(1 for c in customers if lo <= c["wait_days"] <= hi)})
        lo = hi + 1
    out.append({"lo": lo, "hi": None, "count": sum(1 for c in customers if c["wait_days"] >= lo)})
    return out


def part_summary(customers: Sequence[dict[str, Any]], long_wait: int, top: Sequence[str] = ("P0", "P1")
                 ) -> list[dict[str, Any]]:
    """Per part (name + part number): customers waiting, the ETA, and the waits at the
    ETA; the parts that hold the most urgent customers first."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for c in customers:
        groups.setdefault((c["part"], c["part_no"]), []).append(c)
    out = []
    for (part, part_no), cs in groups.items():
        urgent = [c for c in cs if c["tier"] in top]
        etas = sorted({c["eta_date"] for c in cs if c["eta_date"] is not None})
        out.append({
            "part": part, "part_no": part_no, "quantity": len(cs),
            "urgent": len(urgent),
            "tiers": {t: sum(1 for c in cs if c["tier"] == t) for t in dict.fromkeys(c["tier"] for c in cs)},
            "eta_date": etas[-1] if etas else None,
            "eta_days": max(c["eta_days"] for c in cs),
            "longest_wait": max(c["wait_days"] for c in cs),
            "longest_at_eta": max(c["wait_at_eta"] for c in cs),
            "over_at_eta": sum(1 for c in cs if c["wait_at_eta"] > long_wait),
            "customers": cs,
        })
    out.sort(key=lambda p: (-p["urgent"], -p["quantity"], p["part"], p["part_no"]))
    return out


# -- costs (Effect) ------------------------------------------------------------------------
@dataclass
class CostLine:
    """One traceable figure: ``count × days × unit`` (days may be None) × rate."""

    kind: str  # loaner | subsidy | compensation | package (the plan's) | legal | ltv
    tier: str | None
    count: int
    days: int | None
    unit: Decimal
    rate: Decimal | None
    amount: Decimal
    keys: list[str] = field(default_factory=list)  # the configuration keys behind it
    name: str = ""  # a plan package's name


@dataclass
class Costs:
    lines: list[CostLine]
    total: Decimal
    source: str  # the configuration file the unit costs came from
    planned: bool = False  # loaners and compensation from the allocation plan, not from every customer's tier
    loaner_tiers: list[str] = field(default_factory=list)  # without a plan: the tiers costed with a loaner each

    def by_kind(self, kind: str) -> list[CostLine]:
        return [x for x in self.lines if x.kind == kind]

    def subtotal(self, kind: str) -> Decimal:
        return sum((x.amount for x in self.by_kind(kind)), Decimal(0))

    def as_context(self) -> dict[str, Any]:
        kinds = ("loaner", "subsidy", "compensation", "package", "legal", "ltv")
        return {"lines": self.lines, "total": self.total, "source": self.source, "planned": self.planned,
                "loaner_tiers": self.loaner_tiers,
                **{k: self.by_kind(k) for k in kinds}, "subtotals": {k: self.subtotal(k) for k in kinds}}


def cost_breakdown(customers: Sequence[dict[str, Any]], config: Any, tier_names: Sequence[str], *,
                   planned: bool = False) -> Costs:
    """The cost of the shortage up to the ETA, from ``[costs]`` unit prices.

    loaner: per tier and days-to-ETA, count × days × ``costs.loaner_per_day.<tier>``;
    subsidy: ride-hailing drivers of ``costs.income_subsidy_tiers``, count × days ×
    ``costs.income_subsidy_per_day``; compensation: count × ``costs.compensation.<tier>``;
    legal: customers whose notes mention lawyers/suing/12315 × ``costs.legal_exposure_per_case``;
    ltv: count × ``costs.lifetime_value`` × ``costs.churn_risk.<tier>``.

    Without a plan the loaner lines assume a loaner for every customer of a tier whose
    unit cost is not 0 — an upper bound, and the e-mail says so (``loaner_tiers``).
    ``planned``: the customers carry the day's allocation plan (``c["plan"]``); then
    loaners, subsidy and compensation are what the plan gave, package by package
    (count × the package's cost to the ETA), instead of the per-tier estimate.
    """
    present = [t for t in tier_names if any(c["tier"] == t for c in customers)]
    lines: list[CostLine] = []
    if planned:
        groups: dict[tuple[str, int], int] = {}
        for c in customers:
            pl = c.get("plan")
            if pl is not None and pl["covered"]:
                groups[(pl["name"], pl["cost"])] = groups.get((pl["name"], pl["cost"]), 0) + 1
        for (name, cost), count in sorted(groups.items(), key=lambda kv: (-kv[0][1] * kv[1], kv[0][0])):
            lines.append(CostLine("package", None, count, None, Decimal(cost), None, yuan(count * cost), [], name))
        return _risk_costs(customers, config, present, lines, planned=True, loaner_tiers=[])

    def by_days(cs: Iterable[dict[str, Any]]) -> list[tuple[int, int]]:
        counts: dict[int, int] = {}
        for c in cs:
            counts[c["eta_days"]] = counts.get(c["eta_days"], 0) + 1
        return sorted(counts.items(), key=lambda kv: -kv[0])

    for t in present:
        key = f"costs.loaner_per_day.{t}"
        unit = decimal_value(config, key)
        if unit == 0:
            continue
        for days, count in by_days(c for c in customers if c["tier"] == t):
            if days == 0:
                continue
            lines.append(CostLine("loaner", t, count, days, unit, None, yuan(count * days * unit), [key]))
    sub_tiers = config.get("costs.income_subsidy_tiers")
    if sub_tiers is None:
        raise _missing(config, "costs.income_subsidy_tiers")
    drivers = [c for c in customers if c["ride_hailing"] and c["tier"] in sub_tiers]
    if drivers:
        key = "costs.income_subsidy_per_day"
        unit = decimal_value(config, key)
        if unit:
            for days, count in by_days(drivers):
                if days:
                    lines.append(CostLine("subsidy", None, count, days, unit, None, yuan(count * days * unit),
                                          [key, "costs.income_subsidy_tiers"]))
    for t in present:
        key = f"costs.compensation.{t}"
        unit = decimal_value(config, key)
        count = sum(1 for c in customers if c["tier"] == t)
        if unit:
            lines.append(CostLine("compensation", t, count, None, unit, None, yuan(count * unit), [key]))
    loaner_tiers = list(dict.fromkeys(x.tier for x in lines if x.kind == "loaner" and x.tier))
    return _risk_costs(customers, config, present, lines, planned=False, loaner_tiers=loaner_tiers)


def _risk_costs(customers: Sequence[dict[str, Any]], config: Any, present: Sequence[str], lines: list[CostLine], *,
                planned: bool, loaner_tiers: list[str]) -> Costs:
    """The legal exposure and the lifetime value at risk, added to ``lines``."""
    legal = sum(1 for c in customers if c["legal"])
    if legal:
        key = "costs.legal_exposure_per_case"
        unit = decimal_value(config, key)
        if unit:
            lines.append(CostLine("legal", None, legal, None, unit, None, yuan(legal * unit),
                                  [key, "render.legal_keywords"]))
    ltv = decimal_value(config, "costs.lifetime_value")
    for t in present:
        key = f"costs.churn_risk.{t}"
        rate = decimal_value(config, key, hi=Decimal(1))
        count = sum(1 for c in customers if c["tier"] == t)
        if rate and ltv:
            lines.append(CostLine("ltv", t, count, None, ltv, rate, yuan(count * ltv * rate),
                                  ["costs.lifetime_value", key]))
    total = sum((x.amount for x in lines), Decimal(0))
    return Costs(lines, total, Path(config.path).name if config.path else "内置默认配置", planned, loaner_tiers)


# -- SMS -----------------------------------------------------------------------------------
def sms_band(days: int, short_max: int = 7, standard_max: int = 14) -> str:
    """Days 0–7 short, 8–14 standard, ≥15 detailed (with the default bounds)."""
    if days <= short_max:
        return "short"
    if days <= standard_max:
        return "standard"
    return "detailed"


# GSM 03.38 basic set and the extension set (those count as two septets).
_GSM_BASIC = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                 "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
_GSM_EXT = set("^{}\\[~]|€\f")


def sms_length(text: str, single: int = 70, multi: int = 67, gsm_single: int = 160, gsm_multi: int = 153
               ) -> tuple[int, int]:
    """(characters, segments) as a carrier counts them.  Any Chinese character makes
    the message UCS-2: 70 characters fit one SMS, a longer message is sent as parts of
    67.  A message entirely in the GSM alphabet fits 160, parts of 153."""
    if all(ch in _GSM_BASIC or ch in _GSM_EXT for ch in text):
        n = sum(2 if ch in _GSM_EXT else 1 for ch in text)
        lim1, limn = gsm_single, gsm_multi
    else:
        n = len(text.encode("utf-16-le")) // 2  # an emoji takes two UCS-2 units
        lim1, limn = single, multi
    if n == 0:
        return 0, 0
    return n, 1 if n <= lim1 else math.ceil(n / limn)


# -- taboo phrases -------------------------------------------------------------------------
@dataclass(frozen=True)
class TabooHit:
    file: str
    line: int
    phrase: str
    text: str

    def describe(self) -> str:
        return f"{self.file} 第 {self.line} 行：「{self.phrase}」 — {self.text.strip()[:60]}"


def _norm(s: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", s)).casefold()


def _norm_en(s: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", s)).casefold().replace("’", "'")


def taboo_phrases(config: Any) -> list[str]:
    """The taboo list (SPEC A5 + seed 001): ``taboo.phrases`` + ``taboo.phrases_en`` +
    the user's ``taboo.extra``."""
    out: list[str] = []
    for key in ("taboo.phrases", "taboo.phrases_en", "taboo.extra"):
        v = config.get(key) or []
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ConfigError("应为文字列表", path=config.path or Path("tierctl.toml"), key=key)
        out.extend(x for x in v if x.strip())
    return list(dict.fromkeys(out))


def find_taboo(text: str, phrases: Sequence[str], file: str = "") -> list[TabooHit]:
    """Every line of ``text`` that contains a taboo phrase.  Chinese phrases match
    ignoring spaces and full-/half-width forms; Latin ones ignoring case."""
    prepared = []
    for p in phrases:
        latin = bool(re.search(r"[A-Za-z]", p))
        prepared.append((p, _norm_en(p) if latin else _norm(p), latin))
    hits = []
    for no, line in enumerate(text.splitlines(), start=1):
        compact = None
        spaced = None
        for phrase, key, latin in prepared:
            if latin:
                spaced = spaced if spaced is not None else _norm_en(line)
                if key in spaced:
                    hits.append(TabooHit(file, no, phrase, line))
            else:
                compact = compact if compact is not None else _norm(line)
                if key in compact:
                    hits.append(TabooHit(file, no, phrase, line))
    return hits


# -- the allocation plan (tierctl allocate, issue 9) ---------------------------------------
# What the evaluation sheet and the SPEC e-mail show of the day's stored allocation plan
# (the shape of ``tierctl.allocate.Allocation.to_json()``; ``tierctl allocate`` stores it).
PLAN_NOT_COVERED = {
    "zh": {"resources": "未分配（资源已用于风险更高的客户）", "no_package": "未分配（级别政策无适用方案）",
           "missing": "（分配方案中没有这位客户）"},
    "en": {"resources": "none (resources went to higher risks)", "no_package": "none (nothing in the tier's policy)",
           "missing": "(not in the allocation plan)"},
}


def _signed(x: float | int) -> str:
    v = Decimal(str(x)).normalize()
    v = v.quantize(Decimal(1)) if v == v.to_integral_value() else v
    return f"+{v:,f}" if v > 0 else f"{v:,f}"


def marginal_plain(key: str, m: dict[str, Any], lang: str = "zh") -> str:
    """What a little more of a resource would do, for a director: more customers looked
    after, or the same number with the resources moved to higher risks, or nothing —
    never the optimiser's weighted figures."""
    step = int(m["step"])
    if lang == "zh":
        what = f"再多 {step} 辆代步车" if key == "loaners" else f"再多 {step:,} 元预算"
        if m["gain_customers"] > 0:
            return f"{what}：可多安排 {m['gain_customers']} 位客户"
        if m["gain_weighted"] > 0 or m["gain_first_raw"] > 0:
            return f"{what}：可以把资源换给风险更高的客户"
        return f"{what}：今天的安排不会因此改变"
    what = (f"{step} more loan car{'s' if step != 1 else ''}" if key == "loaners" else f"{step:,} CNY more budget")
    if m["gain_customers"] > 0:
        return f"{what}: {m['gain_customers']} more customers looked after"
    if m["gain_weighted"] > 0 or m["gain_first_raw"] > 0:
        return f"{what}: the resources could go to higher-risk customers"
    return f"{what}: today's arrangement would not change"


def plan_view(plan: dict[str, Any], result: ShortageResult, lang: str = "zh") -> dict[str, Any]:
    """The plan as the documents use it: resources used vs available, risk covered per
    tier, the packages handed out, the P0 shortfall, the marginal values, and for each
    scored customer (by customer key) the package and its cost."""
    rows = plan.get("plan") or []
    by_key = {str(r["customer_id"]): r for r in rows}
    c = result.customers
    keys = (c["key"] if "key" in c else c["customer_id"]).astype(str).tolist()
    labels = PLAN_NOT_COVERED[lang]
    options: list[str] = []
    costs: list[int | None] = []
    for k in keys:
        r = by_key.get(k)
        if r is None:
            options.append(labels["missing"])
            costs.append(None)
        elif r["covered"]:
            options.append(str(r["option_name"] if lang == "zh" else r["option_name_en"]))
            costs.append(int(r["cost"]))
        else:
            options.append(labels.get(str(r.get("status") or "resources"), labels["resources"]))
            costs.append(None)
    used = plan["used"]
    cov, unc = plan["covered"], plan["uncovered"]
    tiers = [{"name": t, "covered": int(v["customers"]), "total": int(v["customers"]) + int(unc["by_tier"][t]["customers"])}
             for t, v in cov["by_tier"].items()]
    packages: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["covered"]:
            p = packages.setdefault(str(r["option"]), {"name": r["option_name"] if lang == "zh" else r["option_name_en"],
                                                       "count": 0, "cost": 0})
            p["count"] += 1
            p["cost"] += int(r["cost"])
    marginal = {}
    for key, m in (plan.get("marginal") or {}).items():
        marginal[key] = {**m, "gain_weighted_signed": _signed(m["gain_weighted"]),
                         "gain_first_signed": _signed(m["gain_first_raw"]), "plain": marginal_plain(key, m, lang)}
    sf = plan.get("p0_shortfall")
    shortfall = None
    if sf:
        shortfall = {**sf, "tiers_text": "/".join(sf["tiers"]), "uncovered_count": len(sf["uncovered"]),
                     "no_package_count": len(sf["no_package"])}
    return {
        "days": int(used["days_to_eta"]),
        "days_source": plan.get("days_source", ""),
        "as_of": plan.get("as_of", result.as_of.isoformat()),
        "loaners": used["loaners"], "premium": used["premium_loaners"], "regular": used["regular_loaners"],
        "budget": {**used["budget"], "left": int(used["budget"]["available"]) - int(used["budget"]["used"])},
        "covered": {"customers": int(cov["customers"]), "raw": cov["raw"], "weighted": cov["weighted"]},
        "uncovered": {"customers": int(unc["customers"]), "raw": unc["raw"],
                      "no_package": int((unc.get("no_package") or {}).get("customers", 0))},
        "tiers": tiers,
        "packages": sorted(packages.values(), key=lambda p: (-p["cost"], -p["count"], p["name"])),
        "marginal": marginal,
        "shortfall": shortfall,
        "optimal": bool(plan.get("optimal", True)),
        "customer_option": options,  # aligned with result.customers
        "customer_cost": costs,
        "customer_why": ["\n".join(by_key[k]["why"]) if k in by_key else "" for k in keys],
        "missing": sum(1 for k in keys if k not in by_key),
    }
