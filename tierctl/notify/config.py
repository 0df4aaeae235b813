"""The ``[notify]`` part of the configuration: robots, people, limits, escalation.

Defaults (platform limits, retry figures, the escalation chain) live in
``tierctl/data/notify.toml``; the user's ``tierctl.toml`` adds ``[[notify.robots]]`` and
``[notify.people]`` and may change any default under ``[notify]``.  Everything is checked
when the configuration loads (:meth:`tierctl.config.Config.load` calls :func:`parse`), and
an error names the file and the key — never a webhook address or a secret.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tierctl.errors import ConfigError, ModelError
from tierctl.models.loader import Section, load_toml, merge_tables

NOTIFY_DEFAULTS = Path(__file__).resolve().parent.parent / "data" / "notify.toml"
PLATFORMS = ("wecom", "dingtalk", "feishu")
SECTIONS = ("summary", "alerts", "escalations", "overdue")
FEISHU_TYPES = ("post", "interactive")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
PERSON_IDS = ("mobile", "wecom", "dingtalk", "feishu")


def norm(name: str) -> str:
    """A name as compared: without whitespace, case-folded («SA 主管» = «SA主管»)."""
    return re.sub(r"\s+", "", str(name)).casefold()


@dataclass(frozen=True)
class Platform:
    key: str
    label: str
    label_en: str
    max_bytes: int
    per_minute: int
    rate_limited: frozenset[int]
    image_max_bytes: int | None = None
    per_second: int | None = None

    def name(self, lang: str = "zh") -> str:
        return self.label_en if lang == "en" and self.label_en else self.label


@dataclass(frozen=True)
class Person:
    """Whom a name (a person, or a role such as 服务经理) mentions on each platform."""

    name: str
    mobile: str | None = None
    wecom: str | None = None
    dingtalk: str | None = None
    feishu: str | None = None


@dataclass(frozen=True)
class EscalationRule:
    """An alert for ``source`` not acknowledged within ``after_days`` goes to ``target``."""

    source: str
    target: str
    after_days: int
    working_days: bool = True
    rules: tuple[str, ...] = ()

    def applies(self, recipient: str, rule_id: str) -> bool:
        return norm(recipient) == norm(self.source) and (not self.rules or rule_id in self.rules)


@dataclass(frozen=True)
class Robot:
    name: str
    platform: str
    key: str  # where it is configured (notify.robots[i]), for messages
    webhook: str | None = None
    webhook_env: str | None = None
    secret: str | None = None
    secret_env: str | None = None
    recipients: tuple[str, ...] = ()  # alert recipients this robot is told about; empty = all
    sections: tuple[str, ...] = SECTIONS
    msg_type: str = "markdown"
    image: str = ""

    def url(self, path: Path | None) -> str:
        """The webhook address (from the environment variable when configured so)."""
        if self.webhook_env:
            v = os.environ.get(self.webhook_env, "").strip()
            if not v:
                raise ConfigError(f"环境变量 {self.webhook_env} 没有设置（机器人「{self.name}」的 webhook 地址）",
                                  path=path, key=f"{self.key}.webhook_env",
                                  hint=f"export {self.webhook_env}=机器人的 webhook 地址")
            _check_url(v, path, f"{self.key}.webhook_env")
            return v
        assert self.webhook is not None
        return self.webhook

    def secret_value(self, path: Path | None) -> str | None:
        if self.secret_env:
            v = os.environ.get(self.secret_env, "").strip()
            if not v:
                raise ConfigError(f"环境变量 {self.secret_env} 没有设置（机器人「{self.name}」的加签密钥）",
                                  path=path, key=f"{self.key}.secret_env")
            return v
        return self.secret or None

    def covers(self, recipient: str) -> bool:
        return not self.recipients or norm(recipient) in self.recipients


@dataclass
class NotifyConfig:
    robots: list[Robot]
    people: dict[str, Person]  # by norm(name)
    platforms: dict[str, Platform]
    escalation: list[EscalationRule]
    path: Path | None = None  # the user's file (for messages)
    timeout: float = 10.0
    attempts: int = 4
    backoff: float = 2.0
    backoff_max: float = 60.0
    rate_wait: float = 60.0
    max_messages: int = 5
    list_per_recipient: int = 20
    overdue_names: int = 5
    named_owner_field: str = "advisor"
    named_owner_roles: tuple[str, ...] = ("sa",)
    secrets: list[str] = field(default_factory=list)

    def person(self, name: str | None) -> Person | None:
        return self.people.get(norm(name)) if name else None

    def robot(self, name: str) -> Robot:
        for r in self.robots:
            if norm(r.name) == norm(name):
                return r
        from tierctl.errors import UsageError

        raise UsageError(f"没有名为「{name}」的机器人", hint="可选：" + "、".join(r.name for r in self.robots)
                         if self.robots else "在 tierctl.toml 中添加 [[notify.robots]]")


def _check_url(url: str, path: Path | None, key: str) -> None:
    """https only (plain http for this machine: a local test server); the address
    itself never appears in the message — it holds the robot's key."""
    try:
        u = urllib.parse.urlsplit(url)
    except ValueError:
        u = None
    if u is None or not u.netloc or u.scheme not in ("https", "http") or (
            u.scheme == "http" and (u.hostname or "") not in LOOPBACK):
        raise ConfigError("webhook 地址无效：应为 https:// 开头的完整地址（在机器人设置中复制）", path=path, key=key)


def _opt_str(sec: Section, name: str) -> str | None:
    v = sec.str(name, None)
    return v.strip() or None if isinstance(v, str) else None


def _person(sec: Section, name: str) -> Person:
    known = set(PERSON_IDS)
    for k in sec.keys():
        if k not in known:
            raise sec.error(k, f"未知的项「{k}」", hint="可写：" + "、".join(PERSON_IDS))
    vals = {k: _opt_str(sec, k) for k in PERSON_IDS}
    if not any(vals.values()):
        raise sec.error(None, "至少要写一项：mobile（手机号）、wecom（企业微信 userid）、dingtalk（钉钉 userId）或 "
                              "feishu（飞书 open_id / user_id）")
    if vals["mobile"]:
        m = re.sub(r"[\s-]", "", vals["mobile"])
        if not re.fullmatch(r"\+?\d{5,15}", m):
            raise sec.error("mobile", f"手机号「{vals['mobile']}」无效", hint="写成 13812345678")
        vals["mobile"] = m
    for k in ("wecom", "dingtalk", "feishu"):
        if vals[k] and not re.fullmatch(r"[A-Za-z0-9_.@\-]+", vals[k] or ""):
            raise sec.error(k, f"账号「{vals[k]}」只能含字母、数字和 _ . @ -", hint="在平台的通讯录中复制该成员的账号（userid / open_id）")
    return Person(name=name, **vals)


def parse(user: Any, path: Path | None = None) -> NotifyConfig:
    """Check and read the ``[notify]`` table of a configuration (``user``: the merged
    table, or None) over the packaged defaults.  Errors are :class:`ConfigError` naming
    the user's file (``path``) and the key."""
    try:
        return _parse(user, path)
    except ConfigError:
        raise
    except ModelError as exc:  # a Section check: the same message, as a configuration error
        err = ConfigError(exc.message, hint=exc.hint)
        err.message, err.path, err.key = exc.message, exc.path, exc.key
        err.args = (exc.message,)
        raise err from None


def _robot(r: Any, where: Path, seen: set[str], secrets: list[str]) -> Robot:
    """One ``[[notify.robots]]`` entry checked (names seen so far in ``seen``; its webhook
    and secret added to ``secrets``, so that no message shows them)."""
    key = r.prefix
    name = r.str("name", "").strip()
    if not name:
        raise r.error("name", "每个机器人都要有名称（name），用来记录发过什么", hint='例如 name = "售后服务群"')
    if norm(name) in seen:
        raise r.error("name", f"机器人名称「{name}」重复")
    seen.add(norm(name))
    platform = r.choice("platform", PLATFORMS)
    webhook = _opt_str(r, "webhook")
    webhook_env = _opt_str(r, "webhook_env")
    if bool(webhook) == bool(webhook_env):
        raise r.error("webhook", "webhook（地址）和 webhook_env（放地址的环境变量名）二选一，必须写一个")
    if webhook:
        _check_url(webhook, where, f"{key}.webhook")
        secrets.append(webhook)
    secret = _opt_str(r, "secret")
    secret_env = _opt_str(r, "secret_env")
    if secret and secret_env:
        raise r.error("secret", "secret 和 secret_env 只写一个")
    if (secret or secret_env) and platform == "wecom":
        raise r.error("secret", "企业微信群机器人没有加签密钥，请删除这一项")
    if secret:
        secrets.append(secret)
    recipients = tuple(norm(x) for x in r.list("recipients", [], of=str) if x.strip())
    sections = tuple(r.list("sections", list(SECTIONS), of=str))
    for j, s in enumerate(sections):
        if s not in SECTIONS:
            raise r.error(f"sections[{j}]", f"未知的内容「{s}」", hint="可选：" + "、".join(SECTIONS))
    if platform == "feishu":
        msg_type = r.choice("msg_type", FEISHU_TYPES, "post")
    else:
        msg_type = r.choice("msg_type", ("markdown",), "markdown")
    image = r.str("image", "trend" if platform == "wecom" else "").strip()
    if image and platform != "wecom":
        raise r.error("image", "只有企业微信机器人能直接发图片（钉钉、飞书需要先上传图片），请删除这一项")
    known = {"name", "platform", "webhook", "webhook_env", "secret", "secret_env", "recipients", "sections",
             "msg_type", "image"}
    for k in r.keys():
        if k not in known:
            raise r.error(k, f"未知的项「{k}」", hint="可写：" + "、".join(sorted(known)))
    return Robot(name, platform, key, webhook, webhook_env, secret, secret_env, recipients, sections,
                 msg_type, image)


def _parse(user: Any, path: Path | None) -> NotifyConfig:
    if user is not None and not isinstance(user, dict):
        raise ConfigError("应为一个表（[notify]）", path=path, key="notify")
    merged = merge_tables(load_toml(NOTIFY_DEFAULTS), user or {})
    where = (path or Path("tierctl.toml")) if user else NOTIFY_DEFAULTS
    sec = Section(merged, where or NOTIFY_DEFAULTS, "notify")
    plat_sec = sec.section("platforms")
    platforms: dict[str, Platform] = {}
    for key in PLATFORMS:
        p = plat_sec.section(key)
        rl = p.list("rate_limited", [], of=int)
        platforms[key] = Platform(key, p.str("label", key), p.str("label_en", key), p.int("max_bytes", min=200),
                                  p.int("per_minute", min=1), frozenset(int(x) for x in rl),
                                  p.int("image_max_bytes", min=1) if "image_max_bytes" in p else None,
                                  p.int("per_second", min=1) if "per_second" in p else None)

    people: dict[str, Person] = {}
    if "people" in sec:
        ps = sec.section("people")
        for name, _ in ps.items():
            if not str(name).strip():
                raise ps.error(None, "人员名称不能为空")
            people[norm(name)] = _person(ps.section(name), str(name).strip())

    robots: list[Robot] = []
    secrets: list[str] = []
    seen: set[str] = set()
    for r in sec.sections("robots", []):
        robots.append(_robot(r, where, seen, secrets))

    escalation = []
    for e in sec.sections("escalation", []):
        rule = EscalationRule(e.str("from").strip(), e.str("to").strip(), e.int("after_days", min=0),
                              e.bool("working_days", True), tuple(e.list("rules", [], of=str)))
        if not rule.source or not rule.target:
            raise e.error("from", "from 和 to 都要写接收人（与模型文件 [[alerts]] 的 recipient 相同）")
        if norm(rule.source) == norm(rule.target):
            raise e.error("to", "升级对象不能与原接收人相同")
        escalation.append(rule)

    roles = sec.list("named_owner_roles", of=str)
    return NotifyConfig(
        robots=robots, people=people, platforms=platforms, escalation=escalation, path=path,
        timeout=float(sec.number("timeout_seconds", min=0.1)), attempts=sec.int("attempts", min=1, max=20),
        backoff=float(sec.number("backoff_seconds", min=0)), backoff_max=float(sec.number("backoff_max_seconds", min=0)),
        rate_wait=float(sec.number("rate_limit_wait_seconds", min=0)), max_messages=sec.int("max_messages", min=1),
        list_per_recipient=sec.int("list_per_recipient", min=1), overdue_names=sec.int("overdue_names", min=0),
        named_owner_field=sec.str("named_owner_field", ""), named_owner_roles=tuple(roles), secrets=secrets)


def from_config(cfg: Any) -> NotifyConfig:
    """The notify settings of a loaded :class:`tierctl.config.Config`."""
    return parse(cfg.get("notify"), cfg.path)


# -- keeping secrets out of what is printed ------------------------------------------------------
def mask_url(url: str) -> str:
    """``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…`` → the scheme and host
    only: the path and query of a robot's address are its key."""
    try:
        u = urllib.parse.urlsplit(url)
    except ValueError:
        return "***"
    return f"{u.scheme}://{u.netloc}/***" if u.netloc else "***"


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every secret (and every query value and path of a secret URL) masked."""
    out = text
    parts: list[str] = []
    for s in secrets:
        if not s:
            continue
        parts.append(s)
        try:
            u = urllib.parse.urlsplit(s)
        except ValueError:
            continue
        if u.path and len(u.path) > 1:
            parts.append(u.path)
        for _, v in urllib.parse.parse_qsl(u.query):
            if v:
                parts.append(v)
    for p in sorted(set(parts), key=len, reverse=True):
        if len(p) >= 4:
            out = out.replace(p, "***")
    return out


__all__ = ["NOTIFY_DEFAULTS", "PLATFORMS", "EscalationRule", "NotifyConfig", "Person", "Platform", "Robot",
           "from_config", "mask_url", "norm", "parse", "redact"]
