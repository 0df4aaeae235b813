"""The text documents of the day: each one's variables function and its text maker.

The registry (:mod:`tierctl.render.registry`) names them; :func:`tierctl.render.texts.render_texts`
calls them.  A maker receives the prepared day, the Jinja environment and the variables
its document's function returned, and gives back the texts by file key (plus anything its
writer needs, in ``extra``).  Templates are rendered through ``tierctl.render.render_template``
looked up at call time, so a test can watch every template the documents use.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from tierctl import render as _pkg
from tierctl.render.context import Prepared, email_context
from tierctl.render.environment import _text
from tierctl.render.figures import part_summary, sms_band, sms_length
from tierctl.render.values import _empty, decimal_value, int_value, need, need_list
from tierctl.render.views import transfer_parts


@dataclass
class Made:
    """One document's texts (file key -> text), its warnings, and what its writer needs."""

    texts: dict[str, str]
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def _render(env: Any, name: str, ctx: dict[str, Any]) -> str:
    return str(_pkg.render_template(env, name, ctx))


# -- the SPEC e-mail ---------------------------------------------------------------------------
def email_variables(p: Prepared) -> dict[str, Any]:
    return email_context(p)


def email_texts(p: Prepared, env: Any, ectx: dict[str, Any]) -> Made:
    lang = p.lang
    subject = " ".join(_render(env, f"{lang}/email_subject.txt.j2", ectx).split())
    body = _text(_render(env, f"{lang}/email.md.j2", ectx))
    # the HTML part of the same e-mail (tables for the P0 list and the costs), autoescaped
    html = _render(env.overlay(autoescape=True), f"{lang}/email.html.j2", ectx)
    # the .md copy of the email: subject and recipients above the same body
    head = [f"# {subject}", ""]
    lab = ("收件人", "抄送") if lang == "zh" else ("To", "Cc")
    sep = "：" if lang == "zh" else ": "
    head.append(f"- {lab[0]}{sep}{', '.join(ectx['to'])}")
    if ectx["cc"]:
        head.append(f"- {lab[1]}{sep}{', '.join(ectx['cc'])}")
    md = "\n".join(head) + "\n\n" + body
    return Made({"email_md": md, "email_body": body, "email_html": html},
                extra={"subject": subject, "email_ctx": ectx})


# -- the SMS per customer ------------------------------------------------------------------------
def sms_variables(p: Prepared) -> dict[str, Any]:
    cfg = p.config
    return {"short_max": int_value(cfg, "sms.short_max_days"), "standard_max": int_value(cfg, "sms.standard_max_days"),
            "limits": (int_value(cfg, "sms.segment_chars", lo=1), int_value(cfg, "sms.concat_segment_chars", lo=1))}


def sms_texts(p: Prepared, env: Any, v: dict[str, Any]) -> Made:
    lang = p.lang
    short_max, standard_max, limits = v["short_max"], v["standard_max"], v["limits"]
    tpl_name = f"{lang}/sms.txt.j2"
    messages: list[dict[str, Any]] = []
    for c in p.customers:
        band = sms_band(c["wait_days"], short_max, standard_max)
        text = _text(_render(env, tpl_name, {**p.base, "c": c, "band": band})).strip("\n")
        chars, segments = sms_length(text, *limits)
        messages.append({"c": c, "band": band, "text": text, "chars": chars, "segments": segments,
                         "short": _short_form(env, p, c, band, limits)})
    warnings = []
    no_phone = [m["c"]["name"] or m["c"]["id"] for m in messages if not m["c"]["phone"]]
    if no_phone:
        warnings.append(f"{len(no_phone)} 位客户没有手机号，未写入 sms.csv（见 sms.md）：{'、'.join(no_phone[:10])}"
                        + (" …" if len(no_phone) > 10 else ""))
    md = _text(_render(env, f"{lang}/sms.md.j2", {
        **p.base, "messages": messages, "short_max": short_max, "standard_max": standard_max}))
    heads = ("手机号", "客户姓名", "短信内容", "字数", "条数") if lang == "zh" else \
        ("phone", "name", "message", "characters", "segments")
    with_phone = [m for m in messages if m["c"]["phone"]]
    sms = pd.DataFrame({
        heads[0]: [m["c"]["phone"] for m in with_phone],
        heads[1]: [m["c"]["name"] for m in with_phone],
        heads[2]: [m["text"] for m in with_phone],
        heads[3]: [m["chars"] for m in with_phone],
        heads[4]: [m["segments"] for m in with_phone],
    })
    from tierctl.render import sms_platform

    plat = sms_platform.prepare([sms_platform.Message(phone=m["c"]["phone"], name=m["c"]["name"], text=m["text"],
                                                      customer_id=m["c"]["id"], short=m["short"])
                                 for m in messages],
                                p.config, marketing=False)  # notices about the customer's own car: no opt-out
    return Made({"sms_md": md}, warnings,
                extra={"sms": sms, "sms_platform": plat, "short_texts": "\n".join(m["short"] for m in messages),
                       "late_warnings": list(plat.warnings)})  # after the other documents' warnings


def _short_form(env: Any, p: Prepared, c: dict[str, Any], band: str, limits: tuple[int, int]) -> str:
    """The customer's short SMS: the first version of ``sms_short.txt.j2`` (fit = 0, 1, …)
    that fits one message together with the signature; the shortest when none does."""
    from tierctl.render import sms_platform

    sig = sms_platform.signature(p.config)
    n = int_value(p.config, "sms.short_fits", lo=1)
    text = ""
    for fit in range(n):
        text = _text(_render(env, f"{p.lang}/sms_short.txt.j2", {**p.base, "c": c, "band": band,
                                                                  "fit": fit})).strip("\n")
        if sms_length(sig + text, *limits)[1] <= 1:
            break
    return text


# -- the call scripts ----------------------------------------------------------------------------
def calls_variables(p: Prepared) -> dict[str, Any]:
    cfg = p.config
    call_tiers = need_list(cfg, "calls.tiers")
    next_days = int_value(cfg, "calls.next_call_days")
    next_time = need(cfg, "calls.next_call_time")
    callees = [c for c in p.customers if c["tier"] in call_tiers]
    loaner = {}  # does the tier's policy include a loaner (only wording: what may be asked for)
    for t in dict.fromkeys(c["tier"] for c in callees):
        unit = cfg.get(f"costs.loaner_per_day.{t}")
        loaner[t] = not _empty(unit) and decimal_value(cfg, f"costs.loaner_per_day.{t}") > 0
    return {**p.base, "customers": callees, "call_tiers": call_tiers, "loaner": loaner,
            "next_call_date": p.result.as_of + dt.timedelta(days=next_days), "next_call_time": next_time}


def calls_texts(p: Prepared, env: Any, ctx: dict[str, Any]) -> Made:
    return Made({"calls": _text(_render(env, f"{p.lang}/call_scripts.md.j2", ctx))})


# -- the transfer request ----------------------------------------------------------------------
def transfer_needs(p: Prepared) -> str | None:
    """Why today's export cannot support the transfer request (None: it can)."""
    if any(c["part"] or c["part_no"] for c in p.customers):
        return None
    return ("导出表没有「缺件名称」或「零件号」列（或都是空的），看不出客户在等哪些配件；"
            "在 CRM 导出中加上缺件名称或零件号列")


def transfer_variables(p: Prepared) -> dict[str, Any]:
    cfg = p.config
    needed_h = int_value(cfg, "transfer.needed_within_hours", lo=1)
    long_wait = int_value(cfg, "render.long_wait_days")
    top = p.base["top_tiers"]
    cs = p.customers
    return {
        **p.base, "parts_list": part_summary(cs, long_wait, top), "requested": transfer_parts(cfg, cs, top),
        "high_risk": [c for c in cs if c["tier"] in top], "complained": [c for c in cs if c["complained"]],
        "needed_hours": needed_h, "needed_by": p.result.now + dt.timedelta(hours=needed_h),
        "hq_status": cfg.get("transfer.hq_status") or "", "long_wait": long_wait,
    }


def transfer_texts(p: Prepared, env: Any, ctx: dict[str, Any]) -> Made:
    warnings = []
    unnamed = [c for c in p.customers if not (c["part"] or c["part_no"])]
    text = _text(_render(env, f"{p.lang}/transfer_request.md.j2", ctx))
    if unnamed:
        warnings.append(f"{len(unnamed)} 位客户没有填写缺件名称/零件号，跨区调度申请中看不出他们在等哪个配件")
    unmatched = [r["part"] for r in ctx["requested"] if not r["waiting"]]
    if unmatched:
        warnings.append(f"跨区调度申请要借的 {'、'.join(unmatched)} 在今天的名单中没有客户在等"
                        "（名称或零件号与导出表不一致？）")
    return Made({"transfer": text}, warnings)
