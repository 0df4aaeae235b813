"""Rendering the daily documents (SPEC A8): the SPEC email (.eml + .md), the evaluation
sheet (.xlsx), the SMS per customer (.csv + .md), the call scripts and the cross-region
transfer request.

The Jinja environment is strict (``StrictUndefined``: a missing value is an error, never
a blank in a customer's SMS), searches a user's template folder before the packaged one
and offers the packaged templates under a ``default:`` prefix so a user template can
extend them (``{% extends "default:zh/sms.txt.j2" %}``).  As soon as a user folder is in
play every template renders in Jinja's sandbox.

Configuration reaches the templates through :class:`ConfigView`: a value the
configuration lacks raises :class:`~tierctl.errors.ConfigError` naming the dotted key
and the file, the moment a template asks for it.

Pure of the command line: :func:`render_documents` takes a scored result and a
:class:`~tierctl.config.Config` and writes one folder, all or nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.policy
import email.utils
import hashlib
import os
import re
import shutil
import tempfile
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from tierctl import documents as docs
from tierctl.errors import ConfigError, RenderError, TierctlError
from tierctl.shortage import Crisis, ShortageResult, crisis_level

LANGS = ("zh", "en")

FILES = {
    "email_eml": "spec_email.eml",
    "email_md": "spec_email.md",
    "sheet": "evaluation_sheet.xlsx",
    "sms_csv": "sms.csv",
    "sms_md": "sms.md",
    "calls": "call_scripts.md",
    "transfer": "transfer_request.md",
    # SMS ready for a platform (tierctl.sms_platform): one upload file per [sms.platforms] entry
    # (these two by default) and the check sheet
    "sms_aliyun": "sms_aliyun.xlsx",
    "sms_tencent": "sms_tencent.xlsx",
    "sms_check": "sms_check.xlsx",
}
# documents whose text is said or sent to customers: checked for taboo phrases
CUSTOMER_FACING = ("sms_md", "calls")

TEMPLATE_NAMES = (
    "email_subject.txt.j2", "email.md.j2", "email.html.j2", "sms.txt.j2", "sms_short.txt.j2", "sms.md.j2",
    "call_scripts.md.j2", "transfer_request.md.j2",
)


def packaged_templates_dir() -> Path:
    """The packaged ``templates/`` folder: inside the installed package (wheel), or at
    the top of a source checkout (editable install)."""
    here = Path(__file__).resolve().parent
    for cand in (here / "templates", here.parent / "templates"):
        if (cand / "zh").is_dir():
            return cand
    raise RenderError("找不到内置模板文件夹 templates/", hint="重新安装 tierctl")


# -- configuration as seen by templates -------------------------------------------------------
class ConfigView:
    """Read-only, strict view of (a part of) the configuration for templates.

    ``{{ centre.name }}`` returns the value; a key that is absent or empty raises
    ConfigError naming ``centre.name`` and the configuration file.  It has no public
    methods, so a configuration key can never be shadowed by one (``request.items``)."""

    __slots__ = ("_cfg", "_data", "_key")

    def __init__(self, cfg: Any, key: str = "", data: Any = None) -> None:
        self._cfg = cfg
        self._key = key
        self._data = cfg.get(key) if data is None and key else (cfg.data if data is None else data)

    def _sub(self, name: str) -> str:
        return f"{self._key}.{docs.toml_key(name)}" if self._key else docs.toml_key(name)

    def _wrap(self, v: Any, key: str) -> Any:
        if isinstance(v, dict):
            return ConfigView(self._cfg, key, v)
        if isinstance(v, list):
            return [self._wrap(x, f"{key}[{i}]") for i, x in enumerate(v)]
        return v

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: Any) -> Any:
        key = self._sub(str(name))
        if not isinstance(self._data, dict) or name not in self._data or docs._empty(self._data[name]):
            raise docs._missing(self._cfg, key)
        return self._wrap(self._data[name], key)

    def __contains__(self, name: object) -> bool:
        return isinstance(self._data, dict) and name in self._data and not docs._empty(self._data[name])

    def __iter__(self):  # noqa: ANN204 - iterate keys like a dict
        return iter(self._data if isinstance(self._data, dict) else ())

    def __len__(self) -> int:
        return len(self._data) if isinstance(self._data, dict | list) else 0

    def __bool__(self) -> bool:
        return not docs._empty(self._data)

    def __str__(self) -> str:
        raise docs._missing(self._cfg, self._key, hint=f"「{self._key}」是一个表，模板应取其中的某一项")

    def __repr__(self) -> str:
        return f"ConfigView({self._key!r})"


# -- the environment -----------------------------------------------------------------------
def _fmt_date(lang: str):
    def f(d: dt.date | dt.datetime | None) -> str:
        if d is None:
            return ""
        if lang == "zh":
            return f"{d.month}月{d.day}日"
        return f"{d.day} {d.strftime('%b')} {d.year}"
    return f


def _fmt_datetime(lang: str):
    def f(d: dt.datetime | None) -> str:
        if d is None:
            return ""
        if lang == "zh":
            return f"{d.month}月{d.day}日 {d:%H:%M}"
        return f"{d.day} {d.strftime('%b')} {d:%H:%M}"
    return f


def _weekday(lang: str):
    zh = "一二三四五六日"

    def f(d: dt.date) -> str:
        return f"周{zh[d.weekday()]}" if lang == "zh" else d.strftime("%a")
    return f


def _number(x: Any) -> str:
    """12000 -> '12,000' (integers only; anything else as written)."""
    if isinstance(x, int) and not isinstance(x, bool):
        return f"{x:,}"
    if isinstance(x, float | Decimal) and x == int(x):
        return f"{int(x):,}"
    return str(x)


def make_environment(lang: str = "zh", user_dir: Path | None = None):
    """The strict Jinja environment: user folder first, then the packaged templates,
    and ``default:`` for the packaged ones.  Sandboxed when a user folder is given."""
    from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader, StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    packaged = FileSystemLoader(str(packaged_templates_dir()), encoding="utf-8")
    loaders: list[Any] = [PrefixLoader({"default": packaged}, delimiter=":")]
    if user_dir is not None:
        user_dir = Path(user_dir).expanduser()
        if not user_dir.is_dir():
            raise RenderError(f"模板文件夹 {user_dir} 不存在", hint="检查 --templates 或配置 render.templates")
        loaders.append(FileSystemLoader(str(user_dir), encoding="utf-8"))
    loaders.append(packaged)
    cls = SandboxedEnvironment if user_dir is not None else Environment
    env = cls(loader=ChoiceLoader(loaders), undefined=StrictUndefined, autoescape=False,
              trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update({
        "money": docs.fmt_money, "wan": docs.fmt_wan, "pct": docs.fmt_pct, "date": _fmt_date(lang),
        "datetime": _fmt_datetime(lang), "weekday": _weekday(lang), "number": _number,
    })
    env.globals["lang"] = lang
    return env


def _template_location(exc: BaseException) -> tuple[str | None, int | None]:
    """The template file and line an exception was raised at (Jinja rewrites the
    traceback so template frames carry the template's file name and line)."""
    found: tuple[str | None, int | None] = (None, None)
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        fn = frame.f_code.co_filename
        if fn.endswith(".j2") or fn.endswith(".jinja") or "<template>" in fn:
            found = (fn, lineno)
    return found


def _short(path: str | None) -> str:
    if not path:
        return "模板"
    p = Path(path)
    try:
        return str(p.relative_to(packaged_templates_dir())) + "（内置）"
    except ValueError:
        return str(p)


def render_template(env: Any, name: str, context: dict[str, Any]) -> str:
    """Render one template; every failure becomes a RenderError/ConfigError that names
    the template, the line and what is missing."""
    from jinja2 import TemplateNotFound, TemplateSyntaxError, UndefinedError
    from jinja2.exceptions import SecurityError

    try:
        return env.get_template(name).render(context)
    except ConfigError as exc:
        fn, line = _template_location(exc)
        where = f"{_short(fn)} 第 {line} 行" if fn else name
        exc.hint = (exc.hint or "") + f"\n（{where} 需要这一项）"
        raise
    except TierctlError:
        raise
    except TemplateNotFound as exc:
        raise RenderError(f"找不到模板 {exc.name}",
                          hint="用 tierctl templates list 查看有哪些模板；覆盖内置模板时文件名要相同（如 zh/sms.txt.j2）") from exc
    except TemplateSyntaxError as exc:
        raise RenderError(f"模板语法错误：{_short(exc.filename) if exc.filename else exc.name} 第 {exc.lineno} 行："
                          f"{exc.message}") from exc
    except SecurityError as exc:
        fn, line = _template_location(exc)
        raise RenderError(f"模板 {_short(fn) if fn else name}{f' 第 {line} 行' if line else ''} 试图访问不允许的内容："
                          f"{exc}", hint="用户模板在沙箱中运行，只能使用模板变量，不能访问 Python 内部属性") from exc
    except UndefinedError as exc:
        fn, line = _template_location(exc)
        raise RenderError(f"模板 {_short(fn) if fn else name}{f' 第 {line} 行' if line else ''} 用到了没有的变量："
                          f"{exc.message}", hint="用 tierctl templates list 查看每个模板能用的变量") from exc
    except Exception as exc:  # a template can raise anything (division by zero, bad filter argument)
        fn, line = _template_location(exc)
        raise RenderError(f"模板 {_short(fn) if fn else name}{f' 第 {line} 行' if line else ''} 渲染失败："
                          f"{type(exc).__name__}: {exc}") from exc


# -- contexts --------------------------------------------------------------------------------
@dataclass
class Prepared:
    """Everything the templates and writers need, computed once."""

    result: ShortageResult
    config: Any
    lang: str
    crisis: Crisis
    eta: docs.EtaPlan
    customers: list[dict[str, Any]]
    base: dict[str, Any]
    missing: dict[str, list[str]]  # configuration keys each document lacks (those documents are left out)


def check_progress_date(config: Any, as_of: dt.date) -> None:
    """Today's progress must be today's: SMS and calls say 「今天」."""
    d = docs.date_value(config, "progress.date")
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
    from tierctl import plain_reasons

    if lang not in LANGS:
        raise RenderError(f"不支持的语言「{lang}」", hint="可选：zh | en")
    if len(result.customers) == 0:
        raise RenderError("导出表中没有等待配件的客户，没有需要生成的文件")
    missing = docs.preflight(result, config, eta_weeks, planned=plan is not None)
    eta = docs.eta_plan(config, result.as_of, eta_weeks)
    customers = docs.customer_views(result, config, eta, lang, reasons=plain_reasons.for_config(config))
    if plan is not None:
        for c, pl in zip(customers, docs.customer_plans(dict(plan), result, lang, allocation_model
                                                        or _packaged_allocation_model(plan)), strict=True):
            c["plan"] = pl
    max_eta_days = max(c["eta_days"] for c in customers)
    if crisis is None:
        crisis = crisis_level(result, max_eta_days / 7)
    model = result.model
    docs.at_crisis_level(customers, result, lang, model.policy.response(crisis.level))
    labels = docs.tier_labels(result, lang)
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
        "offer_for": lambda c: docs.offers(config, c),
    }
    # the day's allocation plan (tierctl allocate), if one was stored: None otherwise
    base["plan"] = docs.plan_view(dict(plan), result, lang) if plan is not None else None
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


def _text(s: str) -> str:
    """Tidy a rendered document: no trailing spaces, at most one blank line in a row,
    exactly one final newline."""
    lines = [ln.rstrip() for ln in s.replace("\r\n", "\n").split("\n")]
    out = "\n".join(lines)
    out = re.sub(r"\n{3,}", "\n\n", out).strip("\n")
    return out + "\n"


def email_context(p: Prepared) -> dict[str, Any]:
    cfg = p.config
    cs = p.customers
    long_wait = docs.int_value(cfg, "render.long_wait_days")
    bands = docs.wait_bands(cs, docs.need_list(cfg, "render.wait_bands", int))
    costs = docs.cost_breakdown(cs, cfg, p.result.model.tier_names, planned=p.base["plan"] is not None)
    top = p.base["top_tiers"]
    p0 = [c for c in cs if c["tier"] == top[0]]
    high = [c for c in cs if c["tier"] in top]
    respond_h = docs.int_value(cfg, "request.respond_within_hours", lo=1)
    decide_h = docs.int_value(cfg, "request.decide_within_hours", lo=1)
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
        "parts_list": docs.part_summary(cs, long_wait, top),
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
            raise docs._missing(cfg, key, hint='填写收件人，例如 to = ["王总 <wang@example.com>"]')
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


# -- the documents -----------------------------------------------------------------------------
@dataclass
class Rendered:
    texts: dict[str, str]  # key of FILES -> text (only the documents that were made)
    sms: pd.DataFrame | None  # the upload CSV (before neutralising); None when the SMS were not made
    subject: str
    email_ctx: dict[str, Any] | None
    taboo: list[docs.TabooHit]
    warnings: list[str]
    skipped: dict[str, str]  # document -> why it was not made (see DOCUMENTS)
    sms_platform: Any = None  # tierctl.sms_platform.Prepared: the upload files' rows


# the documents render_texts makes, the files each one writes, and what to call it in a warning
DOCUMENTS = {
    "email": (("email_eml", "email_md"), "资源申请邮件"),
    "sms": (("sms_csv", "sms_md"), "客户短信"),
    "calls": (("calls",), "通话脚本"),
    "transfer": (("transfer",), "跨区调度申请"),
}


def _skip_reason(doc: str, why: str) -> str:
    files, label = DOCUMENTS[doc]
    return f"未生成{label}（{'、'.join(FILES[f] for f in files)}）：{why}"


def _missing_keys(p: Prepared, doc: str) -> str | None:
    keys = p.missing.get(doc)
    if not keys:
        return None
    where = p.config.path or Path("tierctl.toml")
    return _skip_reason(doc, f"配置 {where} 缺少 {'、'.join(keys)}；填写后加 --force 重新生成")


def render_texts(p: Prepared, env: Any) -> Rendered:
    """Render every text document in memory (nothing is written).

    A document that today's configuration or export cannot support (its configuration
    keys are missing; no part column for the transfer request) is left out and
    ``skipped`` says why; the others are made.  Template and configuration *errors*
    still stop everything."""
    cfg = p.config
    lang = p.lang
    warnings: list[str] = []
    skipped: dict[str, str] = {}
    check_progress_date(cfg, p.result.as_of)
    texts: dict[str, str] = {}
    subject = ""
    ectx: dict[str, Any] | None = None

    if (why := _missing_keys(p, "email")) is not None:
        skipped["email"] = why
    else:
        ectx = email_context(p)
        subject = " ".join(render_template(env, f"{lang}/email_subject.txt.j2", ectx).split())
        body = _text(render_template(env, f"{lang}/email.md.j2", ectx))
        texts["email_body"] = body
        # the HTML part of the same e-mail (tables for the P0 list and the costs), autoescaped
        texts["email_html"] = render_template(env.overlay(autoescape=True), f"{lang}/email.html.j2", ectx)
        # the .md copy of the email: subject and recipients above the same body
        head = [f"# {subject}", ""]
        lab = ("收件人", "抄送") if lang == "zh" else ("To", "Cc")
        sep = "：" if lang == "zh" else ": "
        head.append(f"- {lab[0]}{sep}{', '.join(ectx['to'])}")
        if ectx["cc"]:
            head.append(f"- {lab[1]}{sep}{', '.join(ectx['cc'])}")
        texts["email_md"] = "\n".join(head) + "\n\n" + body

    # SMS per customer
    sms: pd.DataFrame | None = None
    if (why := _missing_keys(p, "sms")) is not None:
        skipped["sms"] = why
    else:
        short_max = docs.int_value(cfg, "sms.short_max_days")
        standard_max = docs.int_value(cfg, "sms.standard_max_days")
        limits = (docs.int_value(cfg, "sms.segment_chars", lo=1), docs.int_value(cfg, "sms.concat_segment_chars", lo=1))
        tpl_name = f"{lang}/sms.txt.j2"
        messages: list[dict[str, Any]] = []
        for c in p.customers:
            band = docs.sms_band(c["wait_days"], short_max, standard_max)
            text = _text(render_template(env, tpl_name, {**p.base, "c": c, "band": band})).strip("\n")
            chars, segments = docs.sms_length(text, *limits)
            messages.append({"c": c, "band": band, "text": text, "chars": chars, "segments": segments,
                             "short": _short_form(env, p, c, band, limits)})
        no_phone = [m["c"]["name"] or m["c"]["id"] for m in messages if not m["c"]["phone"]]
        if no_phone:
            warnings.append(f"{len(no_phone)} 位客户没有手机号，未写入 sms.csv（见 sms.md）：{'、'.join(no_phone[:10])}"
                            + (" …" if len(no_phone) > 10 else ""))
        texts["sms_md"] = _text(render_template(env, f"{lang}/sms.md.j2", {
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

    # call scripts
    if (why := _missing_keys(p, "calls")) is not None:
        skipped["calls"] = why
    else:
        call_tiers = docs.need_list(cfg, "calls.tiers")
        next_days = docs.int_value(cfg, "calls.next_call_days")
        next_time = docs.need(cfg, "calls.next_call_time")
        callees = [c for c in p.customers if c["tier"] in call_tiers]
        loaner = {}  # does the tier's policy include a loaner (only wording: what may be asked for)
        for t in dict.fromkeys(c["tier"] for c in callees):
            unit = cfg.get(f"costs.loaner_per_day.{t}")
            loaner[t] = not docs._empty(unit) and docs.decimal_value(cfg, f"costs.loaner_per_day.{t}") > 0
        texts["calls"] = _text(render_template(env, f"{lang}/call_scripts.md.j2", {
            **p.base, "customers": callees, "call_tiers": call_tiers, "loaner": loaner,
            "next_call_date": p.result.as_of + dt.timedelta(days=next_days), "next_call_time": next_time,
        }))

    # transfer request
    has_part = any(c["part"] or c["part_no"] for c in p.customers)
    if not has_part:
        skipped["transfer"] = _skip_reason(
            "transfer", "导出表没有「缺件名称」或「零件号」列（或都是空的），看不出客户在等哪些配件；"
                        "在 CRM 导出中加上缺件名称或零件号列")
    elif (why := _missing_keys(p, "transfer")) is not None:
        skipped["transfer"] = why
    else:
        needed_h = docs.int_value(cfg, "transfer.needed_within_hours", lo=1)
        long_wait = docs.int_value(cfg, "render.long_wait_days")
        top = p.base["top_tiers"]
        cs = p.customers
        requested = docs.transfer_parts(cfg, cs, top)
        texts["transfer"] = _text(render_template(env, f"{lang}/transfer_request.md.j2", {
            **p.base, "parts_list": docs.part_summary(cs, long_wait, top), "requested": requested,
            "high_risk": [c for c in cs if c["tier"] in top], "complained": [c for c in cs if c["complained"]],
            "needed_hours": needed_h, "needed_by": p.result.now + dt.timedelta(hours=needed_h),
            "hq_status": cfg.get("transfer.hq_status") or "", "long_wait": long_wait,
        }))
        unnamed = [c for c in p.customers if not (c["part"] or c["part_no"])]
        if unnamed:
            warnings.append(f"{len(unnamed)} 位客户没有填写缺件名称/零件号，跨区调度申请中看不出他们在等哪个配件")
        unmatched = [r["part"] for r in requested if not r["waiting"]]
        if unmatched:
            warnings.append(f"跨区调度申请要借的 {'、'.join(unmatched)} 在今天的名单中没有客户在等"
                            "（名称或零件号与导出表不一致？）")

    plat = None
    if sms is not None:
        from tierctl import sms_platform

        plat = sms_platform.prepare([sms_platform.Message(phone=m["c"]["phone"], name=m["c"]["name"], text=m["text"],
                                                          customer_id=m["c"]["id"], short=m["short"])
                                     for m in messages],
                                    cfg, marketing=False)  # notices about the customer's own car: no opt-out
        warnings += plat.warnings

    phrases = docs.taboo_phrases(cfg)
    hits: list[docs.TabooHit] = []
    for key in CUSTOMER_FACING:
        if key in texts:
            hits += docs.find_taboo(texts[key], phrases, FILES[key])
    warnings += list(skipped.values())
    if plat is not None:
        hits += docs.find_taboo("\n".join(m["short"] for m in messages), phrases, FILES["sms_check"])
    return Rendered(texts, sms, subject, ectx, hits, warnings, skipped, sms_platform=plat)


def _short_form(env: Any, p: Prepared, c: dict[str, Any], band: str, limits: tuple[int, int]) -> str:
    """The customer's short SMS: the first version of ``sms_short.txt.j2`` (fit = 0, 1, …)
    that fits one message together with the signature; the shortest when none does."""
    from tierctl import sms_platform

    sig = sms_platform.signature(p.config)
    n = docs.int_value(p.config, "sms.short_fits", lo=1)
    text = ""
    for fit in range(n):
        text = _text(render_template(env, f"{p.lang}/sms_short.txt.j2", {**p.base, "c": c, "band": band,
                                                                          "fit": fit})).strip("\n")
        if docs.sms_length(sig + text, *limits)[1] <= 1:
            break
    return text


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


def _col_values(c: pd.DataFrame, name: str) -> list[Any]:
    if name not in c:
        return [None] * len(c)
    s = c[name]
    return s.astype(object).where(s.notna(), None).tolist()


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

        cols = sheet_columns(model, lang)
        view = docs.plan_view(dict(plan), result, lang) if isinstance(plan, Mapping) else None
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
        ws.freeze_panes(1, 1)
        ws.autofilter(0, 0, max(n, 1), len(cols) - 1)
        ws.set_landscape()
        ws.set_paper(9)  # A4
        ws.fit_to_pages(1, 0)
        ws.repeat_rows(0)
        ws.set_margins(left=0.4, right=0.4, top=0.6, bottom=0.6)
        ws.set_header(f"&L&\"-,Bold\"{_hf(centre)}&C&\"-,Bold\"{_hf(L['sheet'])}&R{result.as_of.isoformat()}")
        ws.set_footer(f"&C{L['footer']}")

        values = _sheet_values(result, cols, lang, model.policy.response(crisis.level))
        if view is not None:
            values[at], values[at + 1] = view["customer_option"], view["customer_cost"]
        tiers = c["tier"].tolist()
        writers = []
        for j, (_f, _h, kind, _w) in enumerate(cols):
            writers.append((j, kind, values[j]))
        write_string, write_number, write_blank, write_datetime = (ws.write_string, ws.write_number,
                                                                   ws.write_blank, ws.write_datetime)
        for i in range(n):
            r = i + 1
            t = tiers[i]
            for j, kind, vals in writers:
                v = vals[i]
                fmt = formats[(t, kind)]
                if v is None:
                    write_blank(r, j, None, fmt)
                elif kind == "int" or kind == "score":
                    write_number(r, j, v, fmt)
                elif kind == "datetime":
                    write_datetime(r, j, v, fmt)
                else:
                    write_string(r, j, v, fmt)

        _write_summary(wb, result, crisis, lang, centre, header, named)
        if view is not None:
            _write_plan_sheet(wb, result, view, lang, header, named)
        elif plan is not None and not isinstance(plan, Mapping):
            plan.write_xlsx(wb, named)
    finally:
        wb.close()
    return path


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
    ws.set_landscape()
    ws.set_paper(9)
    ws.fit_to_pages(1, 0)


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
            acts = {k: docs.action_text(t, lang, response) for k, t in tiers.items()}
            out.append([acts[t] for t in c["tier"].tolist()])
        elif f == "owner":
            owners = {k: docs.owner_text(t, lang, response) for k, t in tiers.items()}
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
    labels = docs.tier_labels(result, lang)
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


# -- the e-mail ---------------------------------------------------------------------------------
def build_eml(*, subject: str, body: str, to: Sequence[str], cc: Sequence[str] = (), sender: str | None = None,
              date: dt.datetime | None = None, attachments: Sequence[tuple[str, bytes, str]] = (),
              html: str | None = None) -> bytes:
    """An unsent draft (``X-Unsent: 1``): Outlook and Foxmail open it ready to edit and
    send.  Headers in UTF-8 encoded words, body base64, CRLF line ends.  With ``html``
    the body is multipart/alternative (plain text and HTML), the attachments beside it."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["Subject"] = subject
    if sender:
        msg["From"] = sender
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    if date is not None:
        msg["Date"] = email.utils.format_datetime(date)
    msg["X-Unsent"] = "1"
    msg.set_content(body, subtype="plain", charset="utf-8", cte="base64")
    if html is not None:
        msg.add_alternative(html, subtype="html", charset="utf-8", cte="base64")
    for filename, data, mime in attachments:
        maintype, subtype = mime.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    # stable boundaries keep re-renders byte-identical
    seed = hashlib.sha1((body + (html or "")).encode("utf-8")).hexdigest()[:24]
    for i, part in enumerate(p for p in msg.walk() if p.is_multipart()):
        part.set_boundary(f"tierctl-{i}-{seed}")
    return msg.as_bytes()


XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# -- the whole render ---------------------------------------------------------------------------
@dataclass
class RenderReport:
    out_dir: Path
    files: list[Path]  # the files written, in FILES order
    warnings: list[str]
    taboo: list[docs.TabooHit]
    crisis: Crisis
    counts: dict[str, int]
    sms_segments: int
    skipped: dict[str, str] = field(default_factory=dict)  # document -> why it was not made


def existing_outputs(target: Path) -> list[Path]:
    return [target / f for f in FILES.values() if (target / f).exists()]


def render_documents(result: ShortageResult, config: Any, out_root: Path | str, *, lang: str = "zh",
                     templates: Path | None = None, force: bool = False, allow_taboo: bool = False,
                     eta_weeks: float | None = None, crisis: Crisis | None = None,
                     plan: WorkbookSection | Mapping[str, Any] | None = None,
                     allocation_model: Any = None) -> RenderReport:
    """Render every document it can into ``out_root/<as-of>/``, all or nothing.

    Text documents are rendered in memory first (config, template and taboo errors
    surface before anything touches the disk); then everything is written into a
    temporary folder inside ``out_root`` and moved into place.  On any error the
    temporary folder is removed.  Existing outputs are kept unless ``force``.  A document
    today's configuration or export cannot support is left out (``skipped`` and the
    warnings say why; with ``force`` an earlier copy of it from the same day is removed,
    it would be out of date).

    ``plan``: the day's allocation plan (``tierctl allocate``'s stored mapping) decides
    each customer's offer in the SMS and call scripts, the e-mail's loaner and
    compensation costs, and puts each customer's package and cost into the evaluation
    sheet; or a :class:`WorkbookSection`.  ``allocation_model``: see :func:`prepare`."""
    out_root = Path(out_root)
    target = out_root / result.as_of.isoformat()
    if target.exists() and not target.is_dir():
        raise RenderError(f"{target} 已存在且不是文件夹")
    clash = existing_outputs(target)
    if clash and not force:
        raise RenderError(f"{target} 中已有今天的文件，未覆盖：{'、'.join(p.name for p in clash)}",
                          hint="加 --force 覆盖，或用 --out 换一个输出文件夹")
    p = prepare(result, config, lang=lang, eta_weeks=eta_weeks, crisis=crisis,
                plan=plan if isinstance(plan, Mapping) else None, allocation_model=allocation_model)
    env = make_environment(lang, templates)
    rendered = render_texts(p, env)
    warnings = list(rendered.warnings)
    pv = p.base["plan"]
    if pv is not None and pv["missing"]:
        warnings.append(f"资源分配方案（{pv['as_of']}）中没有 {pv['missing']} 位客户：方案是按另一份名单做的，"
                        "这些客户的短信和通话脚本按政策写「可为您申请」；需要时重新运行 tierctl allocate")
    if rendered.taboo:
        lines = []
        for f in dict.fromkeys(h.file for h in rendered.taboo):
            in_file = [h for h in rendered.taboo if h.file == f]
            lines += [h.describe() for h in in_file[:5]]
            if len(in_file) > 5:
                lines.append(f"{f} 另有 {len(in_file) - 5} 处")
        if not allow_taboo:
            raise RenderError("客户短信/通话脚本中出现禁忌用语，未生成任何文件：\n" + "\n".join(f"  - {x}" for x in lines),
                              hint="修改 tierctl.toml 中的进展文字或模板后重试；确需保留时加 --allow-taboo")
        warnings += [f"禁忌用语：{x}" for x in lines]

    t = rendered.texts
    made = ["sheet"] + [f for doc, (files, _l) in DOCUMENTS.items() if doc not in rendered.skipped for f in files]
    made = [k for k in FILES if k in made]
    created_root = not out_root.exists()
    out_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tierctl-render-", dir=out_root))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the day's folder should not be
        sheet = tmp / FILES["sheet"]
        write_evaluation_sheet(result, sheet, lang=lang, crisis=p.crisis, centre=str(config.get("centre.name") or ""),
                               plan=plan)
        ectx = rendered.email_ctx
        if ectx is not None:
            (tmp / FILES["email_md"]).write_text(t["email_md"], encoding="utf-8")
            sender = None
            if ectx["manager_email"]:
                sender = email.utils.formataddr((str(config.get("centre.manager") or ""), ectx["manager_email"]))
            eml = build_eml(subject=rendered.subject, body=t["email_body"], to=ectx["to"], cc=ectx["cc"],
                            sender=sender, date=result.now,
                            attachments=[(ectx["attachment"], sheet.read_bytes(), XLSX_MIME)],
                            html=t["email_html"])
            (tmp / FILES["email_eml"]).write_bytes(eml)
        if rendered.sms is not None:
            from tierctl.io.writers import neutralise_frame

            safe = neutralise_frame(rendered.sms)
            safe.to_csv(tmp / FILES["sms_csv"], index=False, encoding="utf-8-sig", lineterminator="\r\n")
        for key in ("sms_md", "calls", "transfer"):
            if key in t:
                (tmp / FILES[key]).write_text(t[key], encoding="utf-8")
        sms_files: list[Path] = []
        if rendered.sms_platform is not None:
            from tierctl import sms_platform

            sms_files = sms_platform.write_files(rendered.sms_platform, tmp, lang=lang)
        # into place: one rename when the day's folder is new, else file by file
        names = list(dict.fromkeys([*(FILES[k] for k in made), *(f.name for f in sms_files)]))
        clash = [target / f for f in dict.fromkeys([*FILES.values(), *names]) if (target / f).exists()]
        if clash and not force:
            raise RenderError(f"{target} 中已有今天的文件，未覆盖：{'、'.join(x.name for x in clash)}",
                              hint="加 --force 覆盖")
        if not target.exists():
            os.rename(tmp, target)
        else:
            for f in names:
                os.replace(tmp / f, target / f)
            stale = [target / f for f in FILES.values() if f not in names and (target / f).exists()]
            for f in stale:
                f.unlink()
            if stale:
                warnings.append(f"已删除今天早些时候生成的 {'、'.join(f.name for f in stale)}：这次没有生成，旧文件已过时")
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if created_root:
            with contextlib.suppress(OSError):
                out_root.rmdir()
        raise
    sms = rendered.sms
    return RenderReport(
        out_dir=target, files=[target / f for f in names], warnings=warnings, taboo=rendered.taboo,
        crisis=p.crisis, counts=result.counts(),
        sms_segments=int(sms[sms.columns[4]].sum()) if sms is not None and len(sms) else 0,
        skipped=dict(rendered.skipped),
    )


# -- templates list and lint ------------------------------------------------------------------------
VARIABLES: dict[str, str] = {
    "as_of": "评估日期（date）",
    "now": "运行时刻（datetime，带时区）",
    "lang": "语言 zh / en",
    "model": "评分模型：name、title",
    "centre": "配置 [centre]：name、region、manager、manager_phone …",
    "config": "整个配置文件（缺项时报错并指出配置项）",
    "progress": "配置 [progress]：date、today（action/result 列表）、tomorrow",
    "parts": "配置 [parts]：status、eta_date、eta_weeks、by_part",
    "offer": "配置 [offer]：每个分级可向客户承诺的权益列表，如 offer.P0",
    "offer_for": "函数 offer_for(c)：对这位客户可以说的权益。有资源分配方案（c.plan）时是方案给的（可能为空），"
                 "否则按 offer.<分级> 和 only 条件筛选（这时只能说「可为您申请」，不是承诺）",
    "request": "配置 [request]：recipient、items、fallback、commitments …",
    "transfer": "配置 [transfer]：promises、needed_within_hours、hq_status",
    "measures": "配置 [measures]：taken（已采取的本地措施）",
    "crisis": "危机等级：level、color、label、response、criteria、pr_plan（有客户引起媒体关注，需要公关预案）、"
              "media_attention（人数）、media_customers（customer_id、name）",
    "tiers": "每个分级：name、label、count、share、expected、first_contact_hours、cadence_days",
    "counts": "每个分级的人数 {P0: 8, …}",
    "total": "等待客户数",
    "top_tiers": "最高的两个分级（P0、P1）",
    "config_file": "配置文件路径",
    "customers": "客户列表（见 c）",
    "c": "一位客户：name、phone、car、part、wait_days、tier、tier_label、score、dims、reasons、escalations"
         "（带规则编号，仅供内部）、plain_reasons、main_plain（对外的说法）、owner、action、respond_by、identity、"
         "followers、eta_date、eta_days、wait_at_eta、media_attention、tone（legal/posted/complained/angry/anxious/trusting/calm）、"
         "caller（title、name、phone、manager）、plan（资源分配方案给的：covered、offer、loaner、cost；没有方案时为空）…",
    "requested": "要向兄弟店借的配件（配置 transfer.parts）：part、part_no、quantity，以及 waiting、urgent、"
                 "longest_wait、eta_date（今天名单中在等这个配件的客户）",
    "band": "短信档位：short（0–7 天）、standard（8–14 天）、detailed（≥15 天）",
    "messages": "每条短信：c、band、text、chars、segments、short（短版，见 sms_short.txt.j2）",
    "fit": "短版短信的版本（0 最完整，越大越短；tierctl 取第一个连同签名放得进一条的）",
    "short_max": "简短版的最长等待天数（sms.short_max_days）",
    "standard_max": "标准版的最长等待天数（sms.standard_max_days）",
    "bands": "等待天数分段：lo、hi、count",
    "long_wait": "「等待过长」的天数界限（render.long_wait_days）",
    "parts_list": "按配件汇总：part、part_no、quantity、urgent、tiers、eta_date、eta_days、longest_wait、"
                  "longest_at_eta、over_at_eta、customers",
    "over_at_eta": "到货时等待将超过 long_wait 天的人数",
    "longest_wait": "目前最长等待天数",
    "longest_at_eta": "到货时最长等待天数",
    "mean_wait": "平均等待天数",
    "p0": "P0 客户列表",
    "high_risk": "P0 + P1 客户列表",
    "high_share": "P0 + P1 占比（Decimal）",
    "expected_high": "P0 + P1 的常见占比（下限, 上限）",
    "ride_hailing": "网约车/出租车司机客户",
    "legal": "沟通记录提到律师/起诉/12315 的客户",
    "complained": "已投诉或发帖的客户",
    "costs": "成本测算：loaner、subsidy、compensation、package（资源分配方案的方案，name）、legal、ltv（每项 count、"
             "days、unit、rate、amount、keys）、subtotals、total、source、planned（按方案）、loaner_tiers（没有方案时按"
             "每人一辆代步车测算的分级）",
    "respond_hours": "请求回复时限（小时）",
    "respond_by": "请求回复截止时间",
    "decide_hours": "请求决策时限（小时）",
    "decide_by": "请求决策截止时间",
    "to": "收件人", "cc": "抄送",
    "manager_email": "服务经理邮箱（可为空）",
    "fallback": "次选请求（可为空）",
    "commitments": "我的承诺（可为空）",
    "attachment": "附件（评估表）文件名",
    "call_tiers": "需要打电话的分级",
    "loaner": "各分级是否提供代步车 {P0: true, …}",
    "next_call_date": "下次通话日期",
    "next_call_time": "下次通话时间（calls.next_call_time）",
    "needed_hours": "调拨需要在多少小时内", "needed_by": "调拨截止时间",
    "hq_status": "已向总部申请的情况（可为空）",
    "plan": "今天的资源分配方案（tierctl allocate；没有时为空）：days、loaners/premium/regular/budget（used、available）、"
            "covered、uncovered、tiers（name、covered、total）、packages、marginal.loaners/budget（step、"
            "gain_customers、plain = 对外的说法；gain_weighted_signed、note 是给服务经理看的优化数字）、shortfall（total、"
            "covered、uncovered_count、no_package_count、extra_loaners、extra_premium_loaners、extra_budget …）",
}


BASE_VARIABLES = ("as_of", "now", "lang", "model", "centre", "config", "progress", "parts", "offer", "offer_for",
                  "request", "transfer", "measures", "crisis", "tiers", "counts", "total", "top_tiers", "config_file",
                  "plan")
# what each packaged template receives on top of BASE_VARIABLES (keep in step with render_texts)
RECEIVES: dict[str, tuple[str, ...]] = {
    "email_subject.txt.j2": ("EMAIL",),
    "email.md.j2": ("EMAIL",),
    "email.html.j2": ("EMAIL",),
    "sms.txt.j2": ("c", "band"),
    "sms_short.txt.j2": ("c", "band", "fit"),
    "sms.md.j2": ("messages", "short_max", "standard_max"),
    "call_scripts.md.j2": ("customers", "call_tiers", "loaner", "next_call_date", "next_call_time"),
    "transfer_request.md.j2": ("parts_list", "requested", "high_risk", "complained", "needed_hours", "needed_by",
                               "hq_status", "long_wait"),
}
EMAIL_VARIABLES = ("customers", "bands", "long_wait", "parts_list", "over_at_eta", "longest_wait", "longest_at_eta",
                   "mean_wait", "p0", "high_risk", "high_share", "expected_high", "ride_hailing", "legal",
                   "complained", "costs", "respond_hours", "respond_by", "decide_hours", "decide_by", "to", "cc",
                   "manager_email", "fallback", "commitments", "attachment")


def receives(name: str) -> list[str]:
    """Every variable a template named like a packaged one is given ([] if unknown)."""
    extra = RECEIVES.get(name.split("/", 1)[-1])
    if extra is None:
        return []
    out = list(BASE_VARIABLES)
    for x in extra:
        out += EMAIL_VARIABLES if x == "EMAIL" else (x,)
    return out


@dataclass
class TemplateInfo:
    name: str
    source: str  # "内置" or the user's file
    path: Path
    variables: list[str]  # the variables the template uses
    overrides: bool
    receives: list[str]  # every variable it is given (empty for a template tierctl does not render)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "path": str(self.path), "overrides": self.overrides,
                "variables": {v: VARIABLES.get(v, "") for v in self.variables},
                "receives": {v: VARIABLES.get(v, "") for v in self.receives}}


def list_templates(user_dir: Path | None = None, lang: str | None = None) -> list[TemplateInfo]:
    """Every template that exists (packaged, and the user's folder), with the
    variables each one uses."""
    from jinja2 import meta

    env = make_environment(lang or "zh", user_dir)
    packaged = packaged_templates_dir()
    names: list[str] = []
    for lg in ([lang] if lang else list(LANGS)):
        names += [f"{lg}/{t}" for t in TEMPLATE_NAMES]  # the daily documents first, then the others
        names += sorted(f"{lg}/{p.name}" for p in (packaged / lg).glob("*.j2") if p.name not in TEMPLATE_NAMES)
    user_names: list[str] = []
    if user_dir is not None:
        for p in sorted(Path(user_dir).expanduser().rglob("*")):
            if p.is_file() and not p.name.startswith("."):
                rel = p.relative_to(Path(user_dir).expanduser()).as_posix()
                if lang is None or rel.startswith(f"{lang}/"):
                    user_names.append(rel)
    out = []
    for name in dict.fromkeys([*names, *user_names]):
        user_path = Path(user_dir).expanduser() / name if user_dir is not None else None
        if user_path is not None and user_path.is_file():
            path, source = user_path, "用户模板"
        elif (packaged / name).is_file():
            path, source = packaged / name, "内置"
        else:
            continue
        try:
            src = path.read_text(encoding="utf-8")
            used = sorted(_used_variables(env, src, meta))
        except Exception as exc:  # a broken user template is listed with its problem
            used = [f"（无法解析：{exc}）"]
        out.append(TemplateInfo(name, source, path, used, overrides=source == "用户模板" and (packaged / name).is_file(),
                                receives=receives(name)))
    return out


def _used_variables(env: Any, src: str, meta: Any, seen: set[str] | None = None) -> set[str]:
    """Top-level variables a template uses, including those of the templates it
    extends or includes (followed through the loader)."""
    seen = seen if seen is not None else set()
    from jinja2 import nodes

    ast = env.parse(src)
    # names the template assigns itself ({% set %}, loop variables, macros) are not inputs,
    # even where a block reads them (Jinja analyses each block as its own scope)
    own = {n.name for node in ast.find_all((nodes.Assign, nodes.For, nodes.AssignBlock))
           for n in node.find_all(nodes.Name) if n.ctx == "store"}
    own |= {m.name for m in ast.find_all(nodes.Macro)}
    used = set(meta.find_undeclared_variables(ast)) - set(env.globals) - {"lang"} - own
    for ref in meta.find_referenced_templates(ast):
        if ref and ref not in seen:
            seen.add(ref)
            with contextlib.suppress(Exception):
                source, _fn, _up = env.loader.get_source(env, ref)
                used |= _used_variables(env, source, meta, seen)
    return used


def read_draft(path: Path) -> str:
    """A text file in UTF-8 (with or without BOM) or GB18030, as Chinese Windows writes."""
    data = Path(path).read_bytes()
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise RenderError(f"{path} 不是文本文件（无法按 UTF-8 或 GB18030 读取）")


def lint_file(path: Path, config: Any) -> list[docs.TabooHit]:
    path = Path(path)
    if not path.is_file():
        raise RenderError(f"文件 {path} 不存在")
    if path.suffix.lower() in (".xlsx", ".xls", ".docx", ".pdf"):
        raise RenderError(f"{path.name} 不是纯文本文件", hint="把草稿另存为 .txt 或 .md 再检查")
    return docs.find_taboo(read_draft(path), docs.taboo_phrases(config), str(path))


__all__ = [
    "ConfigView", "FILES", "RenderReport", "WorkbookSection", "build_eml", "list_templates", "lint_file",
    "make_environment", "packaged_templates_dir", "prepare", "render_documents", "render_template",
    "write_evaluation_sheet",
]
