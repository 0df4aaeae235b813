"""Per-customer views for the documents: what each template shows about one customer, the
preflight of the configuration, offers and the day's allocation plan per customer, the
parts to borrow (moved from tierctl/documents.py; pure)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tierctl.errors import ConfigError
from tierctl.render.values import (
    EtaPlan,
    _empty,
    _text,
    action_text,
    caller_for,
    need,
    owner_text,
    tier_labels,
)
from tierctl.shortage import ShortageResult, complaint_mask, media_mask
from tierctl.textmatch import keyword_hits

# the opening of a call follows the cause, most serious first (see customer_views)
TONES = ("legal", "posted", "complained", "angry", "anxious", "trusting", "calm")


def customer_views(result: ShortageResult, config: Any, eta: EtaPlan, lang: str = "zh",
                   rows: int | None = None, reasons: Any = None,
                   response: Any = None) -> list[dict[str, Any]]:
    """One plain dict per customer (most urgent first) with everything a template may
    show; owner and action as the crisis level ``response`` asks (see
    :func:`at_crisis_level` when the level is known only later).  Raises ConfigError when a customer's part has no ETA in the configuration.

    ``reasons`` (:class:`tierctl.render.plain_reasons.PlainReasons`, default: the one the
    configuration names) turns the rule reasons into ``plain_reasons`` for outward
    documents; ``reasons``/``escalations``/``main_reason`` keep the rule codes.
    ``tone`` says how a call should open, the first that applies: ``legal`` (the notes
    mention lawyers, suing, 12315), ``posted`` (a negative post), ``complained`` (the
    complaint flag), ``angry`` (the E score), ``complained`` (complaint words in the
    notes), ``anxious`` (the E score), ``trusting`` (the customer said so: a reason
    marked ``tone = "trusting"``), else ``calm`` — never thanks without a reason to."""
    from tierctl.render import plain_reasons as pr

    plain = reasons if reasons is not None else pr.for_config(config)
    model = result.model
    c = result.customers if rows is None else result.customers.head(rows)
    flags = _flags(c, model, config)
    labels = tier_labels(result, lang)
    tiers = {t.name: t for t in model.tiers}
    callers = {t.name: caller_for(config, t, lang) for t in model.tiers}
    moods = (float(config.get("calls.angry_from", 0.7)), float(config.get("calls.anxious_from", 0.45)),
             next((d for d in model.dimensions if d.key == "E"), None))
    out: list[dict[str, Any]] = []
    missing_eta: list[str] = []
    cols = set(c.columns)
    for i, r in enumerate(c.to_dict("records")):
        t = tiers[r["tier"]]
        part = _text(r.get("part")) if "part" in cols else ""
        part_no = _text(r.get("part_no")) if "part_no" in cols else ""
        eta_date, eta_key = eta.for_part(part or None, part_no or None)
        if eta_date is None:
            missing_eta.append(part or part_no or "（未填缺件）")
        view = _view(r, i, t, model, lang, cols, {k: bool(v[i]) for k, v in flags.items()}, plain, moods, response)
        eta_days = 0 if eta_date is None else max((eta_date - result.as_of).days, 0)
        view.update({"tier_label": labels[t.name], "caller": callers[t.name], "part": part, "part_no": part_no,
                     "eta_date": eta_date, "eta_key": eta_key, "eta_days": eta_days,
                     "wait_at_eta": view["wait_days"] + eta_days})
        out.append({k: view[k] for k in VIEW_KEYS})
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



# the keys of a customer's view, in the order templates have always seen them
VIEW_KEYS = ("index", "id", "name", "phone", "car", "part", "part_no", "wait_days", "tier", "tier_label", "model_tier",
             "escalated", "score", "dims", "dims_text", "reasons", "escalations", "main_reason", "plain_reasons",
             "main_plain", "tone", "posted", "caller", "plan", "owner", "action", "respond_by", "cadence_days",
             "channel", "identity", "followers", "usage", "eta_date", "eta_key", "eta_days", "wait_at_eta", "emotion",
             "ride_hailing", "legal", "complained", "media_attention")


def _flags(c: pd.DataFrame, model: Any, config: Any) -> dict[str, np.ndarray]:
    """Per customer: ride-hailing driver, legal words in the notes, complained, media
    attention (SPEC A4.6: flagged for the PR plan), a negative post, the complaint flag."""
    n = len(c)
    negations = list(model.negations)
    ride_kw = config.get("render.ride_hailing_keywords") or []
    legal_kw = config.get("render.legal_keywords") or []
    usage = c["usage"] if "usage" in c else pd.Series([None] * n, index=c.index, dtype=object)
    notes = c["notes"] if "notes" in c else pd.Series([None] * n, index=c.index, dtype=object)
    return {
        "ride": keyword_hits(usage, ride_kw, negations).notna().to_numpy() if ride_kw else np.zeros(n, bool),
        "legal": keyword_hits(notes, legal_kw, negations).notna().to_numpy() if legal_kw else np.zeros(n, bool),
        "complained": complaint_mask(c, model) if n else np.zeros(0, bool),
        "media": media_mask(c, model),
        "posted": (c["negative_post"].to_numpy(dtype=bool, na_value=False) if "negative_post" in c
                   else np.zeros(n, bool)),
        "flagged": c["complaint"].to_numpy(dtype=bool, na_value=False) if "complaint" in c else np.zeros(n, bool),
    }


def _emotion(r: dict[str, Any], moods: tuple[float, float, Any]) -> str:
    angry_from, anxious_from, edim = moods
    if edim is not None and edim.hi > edim.lo:
        frac = (int(r["E"]) - edim.lo) / (edim.hi - edim.lo)
        return "angry" if frac >= angry_from else "anxious" if frac >= anxious_from else "calm"
    return "calm"


def _followers(r: dict[str, Any], cols: set[str]) -> int | None:
    followers = r.get("followers") if "followers" in cols else None
    if followers is None or followers is pd.NA or (isinstance(followers, float) and math.isnan(followers)):
        return None
    return int(followers)


def _view(r: dict[str, Any], i: int, t: Any, model: Any, lang: str, cols: set[str], f: dict[str, bool],
          plain: Any, moods: tuple[float, float, Any], response: Any) -> dict[str, Any]:
    """One customer's view, without what depends on the day's ETA, labels and callers."""
    wait = int(r["wait_days"])
    emotion = _emotion(r, moods)
    esc = r.get("escalations")
    respond_by = r["respond_by"]
    escs = esc.split("\n") if isinstance(esc, str) and esc else []
    top_dim = max(zip(model.dimensions, model.weights_scaled, strict=True),
                  key=lambda dw: int(r[dw[0].key]) * dw[1])[0]
    phrases = plain.phrases(r, model, lang)
    esc_plain = [p.text for p in phrases if p.source in escs]
    tone = ("legal" if f["legal"] else "posted" if f["posted"] else "complained" if f["flagged"]
            else "angry" if emotion == "angry" else "complained" if f["complained"]
            else emotion if emotion != "calm" else
            "trusting" if any(p.tone == "trusting" for p in phrases) else "calm")
    return {
        "index": i + 1,
        "id": _text(r.get("customer_id")),
        "name": _text(r.get("name")),
        "phone": _text(r.get("phone")),
        "car": _text(r.get("car")),
        "wait_days": wait,
        "tier": t.name,
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
        "posted": f["posted"],
        "plan": None,  # what the day's allocation plan gave this customer (set by render.prepare)
        "owner": owner_text(t, lang, response),
        "action": action_text(t, lang, response),
        "respond_by": respond_by.to_pydatetime() if hasattr(respond_by, "to_pydatetime") else respond_by,
        "cadence_days": int(r["cadence_days"]),
        "channel": t.channel,
        "identity": _text(r.get("identity")) if "identity" in cols else "",
        "followers": _followers(r, cols),
        "usage": _text(r.get("usage")) if "usage" in cols else "",
        "emotion": emotion,
        "ride_hailing": f["ride"],
        "legal": f["legal"],
        "complained": f["complained"],
        "media_attention": f["media"],
    }
