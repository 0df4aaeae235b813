"""Data preparation for the rendered documents (SPEC A8), pure.

Everything a template shows is computed here from a scored
:class:`~tierctl.shortage.ShortageResult` and the configuration: the wait bands, the
parts ETA per customer and the waits it implies, the cost of the shortage up to the ETA
(every figure with the inputs that produced it), the SMS band and length of each
message, the taboo-phrase check.  No I/O, no clock: ``as_of`` and ``now`` come from the
result.  Values a document needs and the configuration lacks raise
:class:`~tierctl.errors.ConfigError` naming the key and the file to edit.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tierctl import cadence
from tierctl.errors import ConfigError
from tierctl.shortage import ShortageResult, complaint_mask, media_mask
from tierctl.textmatch import keyword_hits

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
        d, _key = live.for_part(_text(part) or None, _text(part_no) or None)
        if d is not None:
            weeks.append(_weeks(d, result.as_of))
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


# the opening of a call follows the cause, most serious first (see customer_views)
TONES = ("legal", "posted", "complained", "angry", "anxious", "trusting", "calm")


def customer_views(result: ShortageResult, config: Any, eta: EtaPlan, lang: str = "zh",
                   rows: int | None = None, reasons: Any = None,
                   response: Any = None) -> list[dict[str, Any]]:
    """One plain dict per customer (most urgent first) with everything a template may
    show; owner and action as the crisis level ``response`` asks (see
    :func:`at_crisis_level` when the level is known only later).  Raises ConfigError when a customer's part has no ETA in the configuration.

    ``reasons`` (:class:`tierctl.plain_reasons.PlainReasons`, default: the one the
    configuration names) turns the rule reasons into ``plain_reasons`` for outward
    documents; ``reasons``/``escalations``/``main_reason`` keep the rule codes.
    ``tone`` says how a call should open, the first that applies: ``legal`` (the notes
    mention lawyers, suing, 12315), ``posted`` (a negative post), ``complained`` (the
    complaint flag), ``angry`` (the E score), ``complained`` (complaint words in the
    notes), ``anxious`` (the E score), ``trusting`` (the customer said so: a reason
    marked ``tone = "trusting"``), else ``calm`` — never thanks without a reason to."""
    from tierctl import plain_reasons as pr

    plain = reasons if reasons is not None else pr.for_config(config)
    model = result.model
    c = result.customers if rows is None else result.customers.head(rows)
    n = len(c)
    labels = tier_labels(result, lang)
    tiers = {t.name: t for t in model.tiers}
    negations = list(model.negations)
    ride_kw = config.get("render.ride_hailing_keywords") or []
    legal_kw = config.get("render.legal_keywords") or []
    usage = c["usage"] if "usage" in c else pd.Series([None] * n, index=c.index, dtype=object)
    notes = c["notes"] if "notes" in c else pd.Series([None] * n, index=c.index, dtype=object)
    ride = keyword_hits(usage, ride_kw, negations).notna().to_numpy() if ride_kw else np.zeros(n, bool)
    legal = keyword_hits(notes, legal_kw, negations).notna().to_numpy() if legal_kw else np.zeros(n, bool)
    complained = complaint_mask(c, model) if n else np.zeros(0, bool)
    media = media_mask(c, model)  # SPEC A4.6: flagged for the PR plan
    posted = (c["negative_post"].to_numpy(dtype=bool, na_value=False) if "negative_post" in c
              else np.zeros(n, bool))
    flagged = (c["complaint"].to_numpy(dtype=bool, na_value=False) if "complaint" in c else np.zeros(n, bool))
    callers = {t.name: caller_for(config, t, lang) for t in model.tiers}
    angry_from = float(config.get("calls.angry_from", 0.7))
    anxious_from = float(config.get("calls.anxious_from", 0.45))
    edim = next((d for d in model.dimensions if d.key == "E"), None)
    out: list[dict[str, Any]] = []
    missing_eta: list[str] = []
    cols = set(c.columns)
    records = c.to_dict("records")
    for i, r in enumerate(records):
        t = tiers[r["tier"]]
        part = _text(r.get("part")) if "part" in cols else ""
        part_no = _text(r.get("part_no")) if "part_no" in cols else ""
        eta_date, eta_key = eta.for_part(part or None, part_no or None)
        if eta_date is None:
            missing_eta.append(part or part_no or "（未填缺件）")
            eta_days = 0
        else:
            eta_days = max((eta_date - result.as_of).days, 0)
        wait = int(r["wait_days"])
        emotion = "calm"
        if edim is not None and edim.hi > edim.lo:
            frac = (int(r["E"]) - edim.lo) / (edim.hi - edim.lo)
            emotion = "angry" if frac >= angry_from else "anxious" if frac >= anxious_from else "calm"
        esc = r.get("escalations")
        followers = r.get("followers") if "followers" in cols else None
        fol = None if followers is None or followers is pd.NA or (isinstance(followers, float) and math.isnan(followers)) \
            else int(followers)
        respond_by = r["respond_by"]
        escs = esc.split("\n") if isinstance(esc, str) and esc else []
        top_dim = max(zip(model.dimensions, model.weights_scaled, strict=True),
                      key=lambda dw: int(r[dw[0].key]) * dw[1])[0]
        phrases = plain.phrases(r, model, lang)
        esc_plain = [p.text for p in phrases if p.source in escs]
        tone = ("legal" if legal[i] else "posted" if posted[i] else "complained" if flagged[i]
                else "angry" if emotion == "angry" else "complained" if complained[i]
                else emotion if emotion != "calm" else
                "trusting" if any(p.tone == "trusting" for p in phrases) else "calm")
        out.append({
            "index": i + 1,
            "id": _text(r.get("customer_id")),
            "name": _text(r.get("name")),
            "phone": _text(r.get("phone")),
            "car": _text(r.get("car")),
            "part": part,
            "part_no": part_no,
            "wait_days": wait,
            "tier": t.name,
            "tier_label": labels[t.name],
            "model_tier": r["model_tier"],
            "escalated": r["model_tier"] != t.name,
            "score": model.format_score(int(r["total_scaled"])),
            "dims": [{"key": d.key, "label": d.label if lang == "zh" else d.label_en, "value": int(r[d.key])}
                     for d in model.dimensions],
            "dims_text": " ".join(f"{d.key}{int(r[d.key])}" for d in model.dimensions),
            "reasons": [str(r[f"reason_{d.key}"]) for d in model.dimensions],
            "escalations": escs,
            "main_reason": escs[-1] if escs else str(r[f"reason_{top_dim.key}"]),
            # outward documents: the same reasons in plain words, without rule codes
            "plain_reasons": [p.text for p in phrases],
            "main_plain": (esc_plain[-1] if esc_plain else phrases[0].text if phrases
                           else (f"已等 {wait} 天" if lang == "zh" else f"waited {wait} days")),
            "tone": tone,
            "posted": bool(posted[i]),
            "caller": callers[t.name],
            "plan": None,  # what the day's allocation plan gave this customer (set by render.prepare)
            "owner": owner_text(t, lang, response),
            "action": action_text(t, lang, response),
            "respond_by": respond_by.to_pydatetime() if hasattr(respond_by, "to_pydatetime") else respond_by,
            "cadence_days": int(r["cadence_days"]),
            "channel": t.channel,
            "identity": _text(r.get("identity")) if "identity" in cols else "",
            "followers": fol,
            "usage": _text(r.get("usage")) if "usage" in cols else "",
            "eta_date": eta_date,
            "eta_key": eta_key,
            "eta_days": eta_days,
            "wait_at_eta": wait + eta_days,
            "emotion": emotion,
            "ride_hailing": bool(ride[i]),
            "legal": bool(legal[i]),
            "complained": bool(complained[i]),
            "media_attention": bool(media[i]),
        })
    if missing_eta:
        names = sorted(set(missing_eta))
        raise ConfigError(
            f"没有预计到货时间：{'、'.join(names[:10])}", path=config.path or Path("tierctl.toml"), key="parts.eta_date",
            hint="填写 parts.eta_date（全部缺件通用）或 parts.eta_weeks，或在 [parts.by_part] 中按配件填写到货日期",
        )
    return out


# -- everything the packaged documents need, checked at once --------------------------------
COMMON_REQUIRED = ("centre.name", "centre.manager", "centre.manager_phone", "parts.status", "progress.date",
                   "progress.today", "progress.tomorrow")
# what each document needs on top (a document whose keys are missing is left out, with a warning)
DOCUMENT_REQUIRED = {
    "email": ("email.to", "request.recipient", "request.items", "measures.taken", "costs.lifetime_value"),
    "sms": (),
    "calls": (),
    "transfer": ("transfer.promises", "transfer.parts"),
}
REQUIRED = COMMON_REQUIRED + tuple(k for keys in DOCUMENT_REQUIRED.values() for k in keys)


def preflight(result: ShortageResult, config: Any, eta_weeks: float | None = None, *,
              planned: bool = False) -> dict[str, list[str]]:
    """Every configuration value the documents need and the file lacks.

    What every document needs (centre, progress, ETA) missing: one error listing *all*
    the missing keys, so a new user fills the file in one pass.  Otherwise the keys each
    document lacks, by document (``email``, ``sms``, ``calls``, ``transfer``): the caller
    leaves those documents out and says why.  ``planned``: an allocation plan decides
    the offers and the e-mail's loaner and compensation costs, so ``offer.<tier>`` and
    those unit costs are not needed."""
    common = [k for k in COMMON_REQUIRED if _empty(config.get(k))]
    per: dict[str, list[str]] = {d: [k for k in keys if _empty(config.get(k))] for d, keys in DOCUMENT_REQUIRED.items()}
    c = result.customers
    present = [t for t in result.model.tier_names if (c["tier"] == t).any()]
    for t in present:
        if not planned and _empty(config.get(f"offer.{t}")):
            per["sms"].append(f"offer.{t}")
            per["calls"].append(f"offer.{t}")
        for sect in (("costs.churn_risk",) if planned else ("costs.loaner_per_day", "costs.compensation",
                                                            "costs.churn_risk")):
            if _empty(config.get(f"{sect}.{t}")):
                per["email"].append(f"{sect}.{t}")
    if eta_weeks is None and _empty(config.get("parts.eta_date")) and _empty(config.get("parts.eta_weeks")):
        by_part = config.get("parts.by_part") or {}
        covered = isinstance(by_part, dict) and len(c) and all(
            any(str(c[col].iloc[i]) in by_part for col in ("part", "part_no") if col in c and pd.notna(c[col].iloc[i]))
            for i in range(len(c)))
        if not covered:
            common.append("parts.eta_date")
    if not planned and len(c) and "usage" in c and _empty(config.get("costs.income_subsidy_per_day")):
        tiers_ok = config.get("costs.income_subsidy_tiers") or []
        kw = config.get("render.ride_hailing_keywords") or []
        drivers = keyword_hits(c["usage"], kw, list(result.model.negations)).notna() & c["tier"].isin(tiers_ok)
        if kw and drivers.any():
            per["email"].append("costs.income_subsidy_per_day")
    if len(c) and "notes" in c and _empty(config.get("costs.legal_exposure_per_case")):
        kw = config.get("render.legal_keywords") or []
        if kw and keyword_hits(c["notes"], kw, list(result.model.negations)).notna().any():
            per["email"].append("costs.legal_exposure_per_case")
    if common:
        missing = list(dict.fromkeys(common + [k for keys in per.values() for k in keys]))
        raise ConfigError(
            f"缺少 {len(missing)} 个配置项，生成文件需要它们：\n" + "\n".join(f"  - {k}" for k in missing),
            path=config.path or Path("tierctl.toml"),
            hint="在配置文件中逐项填写（tierctl init 生成的 tierctl.toml 里每项都有说明和示例）；"
                 "程序不会替您编造中心信息、进展、到货时间和金额",
        )
    return {d: list(dict.fromkeys(keys)) for d, keys in per.items() if keys}


# -- what we offer a customer -------------------------------------------------------------
OFFER_CONDITIONS = ("ride_hailing", "legal", "complained")


def offer_for(config: Any, customer: dict[str, Any]) -> list[str]:
    """The rights promised to one customer: ``offer.<tier>``, a list whose items are a
    text or a table ``{ text = "…", only = "ride_hailing" }`` (offered only to customers
    with that trait, e.g. an income subsidy only to ride-hailing drivers)."""
    key = f"offer.{customer['tier']}"
    items = need(config, key, hint=f"在 [offer] 中写出可向 {customer['tier']} 客户承诺的权益，"
                                   f'例如 {customer["tier"]} = ["标准代步车", "到货后优先维修"]')
    if not isinstance(items, list):
        raise ConfigError("应为列表", path=config.path or Path("tierctl.toml"), key=key)
    out = []
    for i, it in enumerate(items):
        if isinstance(it, str):
            if it.strip():
                out.append(it)
            continue
        if not isinstance(it, dict) or not isinstance(it.get("text"), str):
            raise ConfigError('每一项应为文字，或 { text = "…", only = "ride_hailing" }',
                              path=config.path or Path("tierctl.toml"), key=f"{key}[{i}]")
        only = it.get("only")
        if only is not None and only not in OFFER_CONDITIONS:
            raise ConfigError(f"only 只能是 {' / '.join(OFFER_CONDITIONS)}",
                              path=config.path or Path("tierctl.toml"), key=f"{key}[{i}].only")
        if only is None or customer.get(only):
            out.append(it["text"])
    if not out:
        raise ConfigError(f"没有适用于客户「{customer.get('name') or customer.get('id')}」的权益",
                          path=config.path or Path("tierctl.toml"), key=key,
                          hint="至少写一项不带 only 条件的权益")
    return out


def offers(config: Any, customer: dict[str, Any]) -> list[str]:
    """What a document may tell this customer about loaners and compensation: what the
    day's allocation plan gave them (possibly nothing) when there is a plan for them,
    else the tier's policy (``offer.<tier>``), which the templates word as what *may* be
    offered, not as a promise."""
    plan = customer.get("plan")
    if plan is not None:
        return list(plan["offer"])
    return offer_for(config, customer)


def package_offers(plan: dict[str, Any], lang: str = "zh", model: Any = None) -> dict[str, list[str]]:
    """Each package of the plan as the customer is told it: its loaner, the income
    subsidy and its items, from the allocation model (``model``, when it is the one the
    plan was made with); else the package's name split at its "+"s, without the notes
    in brackets that are meant for the manager (「（高端车不够时）」)."""
    out: dict[str, list[str]] = {}
    rows = [r for r in plan.get("plan") or [] if r.get("covered") and r.get("option")]
    usable = model is not None and all(
        r["option"] in model.packages and model.packages[r["option"]].name == r["option_name"] for r in rows)
    for r in rows:
        key = str(r["option"])
        if key in out:
            continue
        if usable:
            pk = model.packages[key]
            parts = []
            if pk.loaner is not None:
                lk = model.loaners[pk.loaner]
                parts.append(lk.name if lang == "zh" else lk.name_en)
            if pk.subsidy:
                parts.append(f"{model.subsidy_name}（每天 {model.subsidy_per_day:,} 元）" if lang == "zh"
                             else f"{model.subsidy_name_en} ({model.subsidy_per_day:,} CNY a day)")
            parts += [model.items[i].name if lang == "zh" else model.items[i].name_en for i in pk.items]
        else:
            name = str(r["option_name"] if lang == "zh" else r.get("option_name_en") or r["option_name"])
            name = re.sub(r"^[^：:+]*[：:]\s*", "", name)  # 「VIP 补偿：延长质保 + …」
            parts = [re.sub(r"\s*[（(][^）)]*[）)]\s*$", "", x).strip() for x in re.split(r"\s*\+\s*", name)]
        out[key] = [x for x in parts if x]
    return out


def customer_plans(plan: dict[str, Any], result: ShortageResult, lang: str = "zh", model: Any = None
                   ) -> list[dict[str, Any] | None]:
    """Per scored customer (aligned with ``result.customers``): what the plan gave them
    (``covered``, ``status``, ``offer`` lines, ``loaner``, ``cost``), or None when the
    plan does not list them (it was made from another list)."""
    by_key = {str(r["customer_id"]): r for r in plan.get("plan") or []}
    c = result.customers
    keys = (c["key"] if "key" in c else c["customer_id"]).astype(str).tolist()
    lines = package_offers(plan, lang, model)
    out: list[dict[str, Any] | None] = []
    for k in keys:
        r = by_key.get(k)
        if r is None:
            out.append(None)
            continue
        covered = bool(r["covered"])
        out.append({"covered": covered, "status": str(r.get("status") or ("covered" if covered else "resources")),
                    "option": r.get("option"), "offer": lines.get(str(r.get("option")), []) if covered else [],
                    "loaner": covered and str(r.get("loaner") or "none") != "none",
                    "cost": int(r.get("cost") or 0) if covered else 0,
                    "name": str(r["option_name"] if lang == "zh" else r.get("option_name_en") or r["option_name"])})
    return out


def transfer_parts(config: Any, customers: Sequence[dict[str, Any]], top: Sequence[str] = ("P0", "P1")
                   ) -> list[dict[str, Any]]:
    """What the transfer request asks peer centres for: ``transfer.parts``, each
    ``{ part = "前保险杠总成", quantity = 6 }`` (``part_no`` optional) as the manager
    decided, with the waiting customers of that part (matched by name or part number)
    as the reason.  The request never makes up a quantity of its own."""
    key = "transfer.parts"
    items = need(config, key, hint='写出要向兄弟店借的配件和数量，例如 parts = [{ part = "前保险杠总成", quantity = 6 }]')
    if not isinstance(items, list):
        raise ConfigError("应为列表", path=config.path or Path("tierctl.toml"), key=key)
    out = []
    for i, it in enumerate(items):
        k = f"{key}[{i}]"
        if not isinstance(it, dict) or not isinstance(it.get("part"), str) or not it["part"].strip():
            raise ConfigError('每一项应写成 { part = "配件名称", quantity = 件数 }（可加 part_no = "零件号"）',
                              path=config.path or Path("tierctl.toml"), key=k)
        unknown = set(it) - {"part", "part_no", "quantity"}
        if unknown:
            raise ConfigError(f"不认识的项：{'、'.join(sorted(unknown))}", path=config.path or Path("tierctl.toml"),
                              key=f"{k}.{sorted(unknown)[0]}", hint="可用：part、part_no、quantity")
        q = it.get("quantity")
        if isinstance(q, bool) or not isinstance(q, int) or q < 1:
            raise ConfigError(f"件数应为正整数，实际是「{q}」", path=config.path or Path("tierctl.toml"),
                              key=f"{k}.quantity")
        part, part_no = it["part"].strip(), _text(it.get("part_no"))
        cs = [c for c in customers if (c["part"] and c["part"] == part) or (part_no and c["part_no"] == part_no)
              or (c["part_no"] and c["part_no"] == part)]
        etas = sorted({c["eta_date"] for c in cs if c["eta_date"] is not None})
        out.append({"part": part, "part_no": part_no, "quantity": q, "waiting": len(cs),
                    "urgent": sum(1 for c in cs if c["tier"] in top),
                    "longest_wait": max((c["wait_days"] for c in cs), default=None),
                    "eta_date": etas[-1] if etas else None, "customers": cs})
    return out


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
