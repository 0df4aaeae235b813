"""The templates' catalogue (tierctl templates list: what each template uses and receives)
and the taboo lint of drafts (tierctl lint)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tierctl.errors import RenderError
from tierctl.render.environment import (
    LANGS,
    compile_settings,
    make_environment,
    packaged_templates_dir,
)
from tierctl.render.figures import TabooHit, find_taboo, taboo_phrases
from tierctl.render.registry import RECEIVES, TEMPLATE_NAMES

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
    undeclared, refs = _analyse(env, src, meta)
    used = set(undeclared) - set(env.globals) - {"lang"}
    for ref in refs:
        if ref and ref not in seen:
            seen.add(ref)
            with contextlib.suppress(Exception):
                source, _fn, _up = env.loader.get_source(env, ref)
                used |= _used_variables(env, source, meta, seen)
    return used


def _analyse(env: Any, src: str, meta: Any) -> tuple[frozenset[str], tuple[str | None, ...]]:
    """The names a template's source reads but does not set itself, and the templates it
    refers to; kept per source text and the settings the parse depends on."""
    key = (src, *compile_settings(env))
    hit = _ANALYSED.get(key)
    if hit is None:
        if len(_ANALYSED) >= 256:
            _ANALYSED.clear()
        hit = _ANALYSED[key] = _analyse_source(env, src, meta)
    return hit


_ANALYSED: dict[tuple[Any, ...], tuple[frozenset[str], tuple[str | None, ...]]] = {}


def _analyse_source(env: Any, src: str, meta: Any) -> tuple[frozenset[str], tuple[str | None, ...]]:
    from jinja2 import nodes

    ast = env.parse(src)
    # names the template assigns itself ({% set %}, loop variables, macros) are not inputs,
    # even where a block reads them (Jinja analyses each block as its own scope)
    own = {n.name for node in ast.find_all((nodes.Assign, nodes.For, nodes.AssignBlock))
           for n in node.find_all(nodes.Name) if n.ctx == "store"}
    own |= {m.name for m in ast.find_all(nodes.Macro)}
    return frozenset(set(meta.find_undeclared_variables(ast)) - own), tuple(meta.find_referenced_templates(ast))


def read_draft(path: Path) -> str:
    """A text file in UTF-8 (with or without BOM) or GB18030, as Chinese Windows writes."""
    data = Path(path).read_bytes()
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise RenderError(f"{path} 不是文本文件（无法按 UTF-8 或 GB18030 读取）")


def lint_file(path: Path, config: Any) -> list[TabooHit]:
    path = Path(path)
    if not path.is_file():
        raise RenderError(f"文件 {path} 不存在")
    if path.suffix.lower() in (".xlsx", ".xls", ".docx", ".pdf"):
        raise RenderError(f"{path.name} 不是纯文本文件", hint="把草稿另存为 .txt 或 .md 再检查")
    return find_taboo(read_draft(path), taboo_phrases(config), str(path))
