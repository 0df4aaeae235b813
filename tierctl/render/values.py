"""Values the documents read from the configuration, how figures are written, the parts ETA,
the tier wording and who calls (moved from tierctl/documents.py; pure)."""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pandas as pd

from tierctl.daily import cadence
from tierctl.errors import ConfigError
from tierctl.shortage import ShortageResult

# English wording for what the model files only say in Chinese (tier labels, owners).
TIER_LABEL_EN = ("critical", "high", "medium", "low")
OWNER_EN = {
    "service_manager": "the service manager in person",
    "sa_supervisor": "the SA supervisor or service manager",
    "sa": "the service advisor",
    "system": "a group message",
}

SMS_BANDS = ("short", "standard", "detailed")


# -- configuration access -------------------------------------------------------------------
def _missing(config: Any, key: str, hint: str | None = None) -> ConfigError:
    return ConfigError(
        "缺少配置项（文件生成需要它）", path=config.path or Path("tierctl.toml"), key=key,
        hint=hint or "在 tierctl.toml 中填写这一项（tierctl init 可生成带注释的模板）",
    )


def _empty(v: Any) -> bool:
    return v is None or v == "" or (isinstance(v, list | dict) and len(v) == 0)


def need(config: Any, key: str, hint: str | None = None) -> Any:
    """A configuration value that must be present and non-empty."""
    v = config.get(key)
    if _empty(v):
        raise _missing(config, key, hint)
    return v


def need_list(config: Any, key: str, of: type | tuple[type, ...] = str, hint: str | None = None) -> list:
    v = need(config, key, hint)
    if not isinstance(v, list) or not all(isinstance(x, of) for x in v):
        raise ConfigError("应为列表" + ("（文字）" if of is str else ""), path=config.path or Path("tierctl.toml"),
                          key=key)
    return v


def decimal_value(config: Any, key: str, *, lo: Decimal | None = Decimal(0), hi: Decimal | None = None) -> Decimal:
    v = need(config, key)
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise ConfigError("应为数字", path=config.path or Path("tierctl.toml"), key=key)
    try:
        d = Decimal(str(v).replace(",", ""))
    except InvalidOperation as exc:
        raise ConfigError(f"「{v}」不是数字", path=config.path or Path("tierctl.toml"), key=key) from exc
    if (lo is not None and d < lo) or (hi is not None and d > hi):
        rng = f"{lo if lo is not None else ''}–{hi if hi is not None else ''}"
        raise ConfigError(f"数值 {v} 超出范围 {rng}", path=config.path or Path("tierctl.toml"), key=key)
    return d


def int_value(config: Any, key: str, *, lo: int = 0) -> int:
    d = decimal_value(config, key, lo=Decimal(lo))
    if d != d.to_integral_value():
        raise ConfigError("应为整数", path=config.path or Path("tierctl.toml"), key=key)
    return int(d)


def date_value(config: Any, key: str) -> dt.date:
    return as_date(need(config, key), key, config)


def as_date(v: Any, key: str, config: Any) -> dt.date:
    """A TOML date (2026-12-15) or a date written as text (2026/12/15, 2026年12月15日)."""
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    m = re.match(r"^\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s*$", str(v))
    if not m:
        raise ConfigError(f"「{v}」不是日期", path=config.path or Path("tierctl.toml"), key=key,
                          hint="写成 2026-12-15")
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError as exc:
        raise ConfigError(f"「{v}」不是有效日期", path=config.path or Path("tierctl.toml"), key=key) from exc


def toml_key(name: str) -> str:
    """A table key as TOML spells it (quoted unless bare)."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else '"' + name.replace('"', '\\"') + '"'


# -- money and numbers ---------------------------------------------------------------------
def yuan(d: Decimal | int | float) -> Decimal:
    return Decimal(str(d)).quantize(Decimal(1), rounding=ROUND_HALF_UP)


def fmt_money(d: Decimal | int | float) -> str:
    """16200 -> '16,200'; keeps the fraction of a non-integral unit price (0.5 -> '0.5')."""
    v = Decimal(str(d))
    if v == v.to_integral_value():
        return f"{int(v):,}"
    return f"{v.normalize():,f}"


def fmt_wan(d: Decimal | int | float) -> str:
    """Yuan as 万元 with at most two decimals: 162000 -> '16.2'."""
    v = (Decimal(str(d)) / Decimal(10000)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{v.normalize():,f}" if v != 0 else "0"


def fmt_pct(x: Decimal | float, places: int = 0) -> str:
    v = Decimal(str(x)) * 100
    q = Decimal(1) if places == 0 else Decimal(1).scaleb(-places)
    return f"{v.quantize(q, rounding=ROUND_HALF_UP)}%"


# -- ETA -----------------------------------------------------------------------------------
@dataclass
class EtaPlan:
    """When the parts arrive: a general date and per-part overrides (name or part number)."""

    general: dt.date | None
    general_source: str  # "--eta-weeks", "parts.eta_date" or "parts.eta_weeks"
    by_part: dict[str, dt.date]

    def for_part(self, part: str | None, part_no: str | None) -> tuple[dt.date | None, str]:
        for k in (part_no, part):
            if k and k in self.by_part:
                return self.by_part[k], f"parts.by_part.{toml_key(k)}"
        return self.general, self.general_source


def eta_plan(config: Any, as_of: dt.date, eta_weeks: float | None = None, *, stale_ok: bool = False) -> EtaPlan:
    """Read the parts ETA.  ``--eta-weeks`` (``eta_weeks``) wins over ``parts.eta_date``,
    which wins over ``parts.eta_weeks``.  A date before ``as_of`` is stale: an error
    (unless ``stale_ok``: the caller deals with it)."""
    general: dt.date | None = None
    source = "parts.eta_date"
    if eta_weeks is not None:
        if eta_weeks < 0:
            raise ConfigError("--eta-weeks 不能为负数", path=config.path or Path("tierctl.toml"), key="parts.eta_weeks")
        general = as_of + dt.timedelta(days=round(eta_weeks * 7))
        source = "--eta-weeks"
    elif not _empty(config.get("parts.eta_date")):
        general = date_value(config, "parts.eta_date")
        source = "parts.eta_date"
    elif not _empty(config.get("parts.eta_weeks")):
        w = decimal_value(config, "parts.eta_weeks")
        general = as_of + dt.timedelta(days=int((w * 7).to_integral_value(rounding=ROUND_HALF_UP)))
        source = "parts.eta_weeks"
    by_part: dict[str, dt.date] = {}
    table = config.get("parts.by_part") or {}
    if not isinstance(table, dict):
        raise ConfigError("应为一个表：配件名称或零件号 = 到货日期", path=config.path or Path("tierctl.toml"),
                          key="parts.by_part")
    for name, value in table.items():
        by_part[str(name)] = as_date(value, f"parts.by_part.{toml_key(str(name))}", config)
    for key, d in [(source, general), *((f"parts.by_part.{toml_key(k)}", v) for k, v in by_part.items())]:
        if d is not None and d < as_of and key != "--eta-weeks" and not stale_ok:
            raise ConfigError(f"预计到货日期 {d} 早于评估日期 {as_of}（配置过期了？）",
                              path=config.path or Path("tierctl.toml"), key=key,
                              hint="更新为供应链最新给出的到货日期")
    return EtaPlan(general, source, by_part)


def crisis_eta_weeks(result: ShortageResult, config: Any, eta_weeks: float | None = None
                     ) -> tuple[float | None, list[str]]:
    """The parts ETA in weeks for the crisis level (SPEC A7), read as ``render`` reads it
    (:func:`eta_plan`): the latest arrival among the waiting customers' parts, from
    ``[parts.by_part]``, else ``parts.eta_date``, else ``parts.eta_weeks``.  ``eta_weeks``
    (``--eta-weeks``) replaces the general ETA and is used as given.  Used by ``score``,
    which must not stop the morning run for a stale configuration: a date before the
    as-of date is left out, with a warning (``render`` refuses it).  None when no ETA is
    known."""
    if eta_weeks is not None and eta_weeks < 0:
        raise ConfigError("--eta-weeks 不能为负数", path=config.path or Path("tierctl.toml"), key="parts.eta_weeks")
    plan = eta_plan(config, result.as_of, stale_ok=True)
    warnings: list[str] = []
    general = plan.general
    if general is not None and general < result.as_of:
        warnings.append(f"配置 {plan.general_source} 的预计到货日期 {general} 早于评估日期 {result.as_of}：危机等级未计入到货时间，"
                        "请更新为供应链最新给出的日期")
        general = None
    by_part = {}
    for k, d in plan.by_part.items():
        if d < result.as_of:
            warnings.append(f"配置 parts.by_part.{toml_key(k)} 的预计到货日期 {d} 早于评估日期 {result.as_of}：危机等级未计入该配件")
        else:
            by_part[k] = d
    if eta_weeks is not None:
        general = None  # replaced by the weeks given, used as given
    weeks: list[float] = [float(eta_weeks)] if eta_weeks is not None else []
    f = result.unordered
    if not len(f):
        return (max(weeks) if weeks else None), warnings
    if not by_part:  # every customer's part arrives on the general date
        if general is not None and plan.general_source == "parts.eta_weeks":
            weeks.append(float(decimal_value(config, "parts.eta_weeks")))  # the weeks as written
        elif general is not None:
            weeks.append(_weeks(general, result.as_of))
        return (max(weeks) if weeks else None), warnings
    live = EtaPlan(general, plan.general_source, by_part)
    cols = {k: f[k].astype(object).where(f[k].notna(), None) if k in f else pd.Series(None, index=f.index,
                                                                                       dtype=object)
            for k in ("part", "part_no")}
    for part, part_no in pd.DataFrame(cols).drop_duplicates().itertuples(index=False):
        due, _key = live.for_part(_text(part) or None, _text(part_no) or None)
        if due is not None:
            weeks.append(_weeks(due, result.as_of))
    return (max(weeks) if weeks else None), warnings


def _weeks(day: dt.date, as_of: dt.date) -> float:
    """Days until ``day`` in weeks, to two decimals (24 days: 3.43)."""
    return round(max((day - as_of).days, 0) / 7, 2)


# -- customers -----------------------------------------------------------------------------
def _text(v: Any) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(v).strip()


def tier_labels(result: ShortageResult, lang: str) -> dict[str, str]:
    out = {}
    for i, t in enumerate(result.model.tiers):
        out[t.name] = t.label if lang == "zh" else (TIER_LABEL_EN[i] if i < len(TIER_LABEL_EN) else t.name)
    return out


def action_text(tier: Any, lang: str, response: Any = None) -> str:
    """The action plan of a tier: its action and how often to contact — the tier's own
    cadence, or the one the crisis level ``response`` (:class:`tierctl.cadence.CrisisResponse`)
    asks for when it is tighter — and who owns it at that level."""
    pol = cadence.effective(_tier_dict(tier), response, lang)
    if lang == "zh":
        text = f"{tier.action}；{pol['note']}" if tier.action else pol["note"]
        return text + (f"；危机 {response.level} 级由{pol['owner']}负责" if pol["owner_changed"] else "")
    who = OWNER_EN.get(tier.owner_role, tier.owner_short or "the owner")
    text = f"First contact within {tier.first_contact_hours} h by {who}; {pol['note']}"
    return text + (f"; owned by {pol['owner']} at crisis level {response.level}" if pol["owner_changed"] else "")


def owner_text(tier: Any, lang: str, response: Any = None) -> str:
    """Who owns a tier's customers: the tier's owner, or the one the crisis level hands
    them to."""
    pol = cadence.effective(_tier_dict(tier), response, lang)
    if pol["owner_changed"]:
        return f"{pol['owner']}（危机 {response.level} 级接管）" if lang == "zh" \
            else f"{pol['owner']} (takes over at crisis level {response.level})"
    return tier.owner if lang == "zh" else OWNER_EN.get(tier.owner_role, tier.owner_short)


def at_crisis_level(customers: list[dict[str, Any]], result: ShortageResult, lang: str, response: Any) -> None:
    """Set each customer view's owner and action as the crisis level ``response`` asks."""
    tiers = {t.name: t for t in result.model.tiers}
    texts = {k: (owner_text(t, lang, response), action_text(t, lang, response)) for k, t in tiers.items()}
    for c in customers:
        c["owner"], c["action"] = texts[c["tier"]]


def _tier_dict(tier: Any) -> dict[str, Any]:
    return {"name": tier.name, "cadence_days": tier.cadence_days, "cadence_note": tier.cadence_note,
            "owner": tier.owner, "owner_short": tier.owner_short, "owner_short_en": tier.owner_short_en}


def caller_for(config: Any, tier: Any, lang: str = "zh") -> dict[str, Any]:
    """Who makes a tier's calls, as the policy names the owner (SPEC A5): the service
    manager himself for P0 (name and direct line from [centre]); for the other tiers the
    owner's title (SA主管 …) and, when ``calls.callers.<tier>`` gives them, a name and phone."""
    if tier.owner_role == "service_manager":
        return {"manager": True, "title": tier.owner_short if lang == "zh" else "service manager",
                "name": str(config.get("centre.manager") or ""), "phone": str(config.get("centre.manager_phone") or "")}
    own = config.get(f"calls.callers.{tier.name}") or {}
    if not isinstance(own, dict):
        raise ConfigError("应为一个表：name、phone", path=config.path or Path("tierctl.toml"),
                          key=f"calls.callers.{tier.name}")
    title = tier.owner_short if lang == "zh" else (tier.owner_short_en or OWNER_EN.get(tier.owner_role, tier.name))
    return {"manager": False, "title": title, "name": _text(own.get("name")), "phone": _text(own.get("phone"))}

