"""Sending the escalation e-mail over SMTP (``tierctl render --send``).

The message sent is the draft ``render`` wrote (``spec_email.eml``: plain text and HTML,
the evaluation sheet attached), with the sender and recipients of ``[mail]`` and without
the draft marker.  Settings come from the configuration's ``[mail]`` table; the password
never does: ``password_env`` names the environment variable that holds it, and a
``password`` key in the file is an error saying so.

A send that fails (connection refused, authentication, timeout, TLS, a refused recipient)
raises :class:`~tierctl.errors.MailError` saying why and where the draft is: the draft and
the .md stay in the output folder, ready to send by hand.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import email.utils
import os
import smtplib
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tierctl.errors import ConfigError, MailError

SECURITY = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class MailSettings:
    host: str
    port: int
    security: str
    user: str | None
    password: str | None
    sender: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    timeout: float
    ca_file: str | None
    password_env: str | None = None

    def recipients(self) -> list[str]:
        return [email.utils.parseaddr(a)[1] for a in (*self.to, *self.cc)]


def _cfg_path(config: Any) -> Path:
    return config.path or Path("tierctl.toml")


def settings(config: Any, environ: dict[str, str] | None = None) -> MailSettings:
    """``[mail]`` checked: every mistake names the file and the key (the password's
    variable is looked up in ``environ``, default the process environment)."""
    from tierctl.render.context import _addresses

    env = os.environ if environ is None else environ
    m = config.get("mail") or {}
    path = _cfg_path(config)
    if not isinstance(m, dict):
        raise ConfigError("应为一个表 [mail]", path=path, key="mail")
    if "password" in m:
        raise ConfigError("密码不能写在配置文件里（文件会被复制、发给别人、提交到版本库）", path=path, key="mail.password",
                          hint='删除 password 这一行，改写 password_env = "TIERCTL_SMTP_PASSWORD"，'
                               "再在运行 tierctl 的环境里设置这个环境变量")

    def text(key: str, default: str = "") -> str:
        v = m.get(key, default)
        if v is None:
            return default
        if not isinstance(v, str):
            raise ConfigError(f"应为文字，实际是 {v!r}", path=path, key=f"mail.{key}")
        return v.strip()

    host = text("host")
    if not host:
        raise ConfigError("缺少配置项：发送邮件需要 SMTP 服务器", path=path, key="mail.host",
                          hint='在 tierctl.toml 的 [mail] 中写 host = "smtp.example.com"（tierctl init 生成的模板里有说明）')
    security = text("security", "starttls").lower()
    if security not in SECURITY:
        raise ConfigError(f"不支持「{security}」", path=path, key="mail.security", hint="可选：starttls | ssl | none")
    port = m.get("port", 0) or 0
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"应为 1–65535 的端口号，实际是 {port!r}", path=path, key="mail.port")
    timeout = m.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError(f"应为大于 0 的秒数，实际是 {timeout!r}", path=path, key="mail.timeout")
    user = text("user") or None
    var = text("password_env") or None
    password = None
    if user:
        if not var:
            raise ConfigError("写了 user 就要写 password_env（保存密码的环境变量名）", path=path, key="mail.password_env",
                              hint='例如 password_env = "TIERCTL_SMTP_PASSWORD"')
        password = env.get(var)
        if not password:
            raise ConfigError(f"环境变量 {var} 没有设置：SMTP 密码从这里读取", path=path, key="mail.password_env",
                              hint=f"运行前设置，例如 export {var}='…'（Windows：set {var}=…）")
    sender = text("from") or str(config.get("centre.manager_email") or "").strip()
    if not sender or "@" not in email.utils.parseaddr(sender)[1]:
        raise ConfigError("缺少发件人邮箱" if not sender else f"「{sender}」不是邮箱地址", path=path, key="mail.from",
                          hint='写成 from = "陈明 <chen.ming@example.com>"（或填写 centre.manager_email）')
    to_key = "mail.to" if m.get("to") else "email.to"
    cc_key = "mail.cc" if m.get("cc") else "email.cc"
    to = _addresses(config, to_key, required=True)
    cc = _addresses(config, cc_key, required=False)
    ca = text("ca_file") or None
    if ca:
        p = Path(ca).expanduser()
        if not p.is_absolute() and config.path is not None:
            p = config.path.parent / p
        if not p.is_file():
            raise ConfigError(f"找不到证书文件 {p}", path=path, key="mail.ca_file")
        ca = str(p)
    return MailSettings(host=host, port=port or DEFAULT_PORTS[security], security=security, user=user,
                        password=password, sender=sender, to=tuple(to), cc=tuple(cc), timeout=float(timeout),
                        ca_file=ca, password_env=var)


def prepare(raw: bytes, s: MailSettings, *, now: dt.datetime | None = None, draft: bool = False
            ) -> email.message.EmailMessage:
    """The draft as it is sent: sender and recipients from the settings, a Message-ID and
    date, and (unless ``draft``) without the unsent marker."""
    msg = email.message_from_bytes(raw, policy=email.policy.SMTP)
    assert isinstance(msg, email.message.EmailMessage)
    for h in ("From", "To", "Cc", "Date", "Message-ID", "X-Unsent"):
        del msg[h]
    msg["From"] = s.sender
    msg["To"] = ", ".join(s.to)
    if s.cc:
        msg["Cc"] = ", ".join(s.cc)
    if now is not None:
        msg["Date"] = email.utils.format_datetime(now)
    domain = email.utils.parseaddr(s.sender)[1].rsplit("@", 1)[-1] or None
    msg["Message-ID"] = email.utils.make_msgid("tierctl", domain=domain)
    if draft:
        msg["X-Unsent"] = "1"
    return msg


def send(msg: email.message.EmailMessage, s: MailSettings) -> list[str]:
    """Deliver ``msg`` to every recipient; the addresses accepted.  Any failure raises
    :class:`MailError` naming the server and the reason."""
    where = f"{s.host}:{s.port}"
    rcpt = s.recipients()
    ctx = ssl.create_default_context(cafile=s.ca_file) if s.security != "none" else None
    try:
        if s.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=ctx)
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        with smtp:
            smtp.ehlo()
            if s.security == "starttls":
                smtp.starttls(context=ctx)
                smtp.ehlo()
            if s.user:
                smtp.login(s.user, s.password or "")
            refused = smtp.send_message(msg, from_addr=email.utils.parseaddr(s.sender)[1], to_addrs=rcpt)
    except smtplib.SMTPAuthenticationError as exc:
        raise MailError(f"SMTP 登录失败（{where}，用户 {s.user}）：{_reply(exc)}",
                        hint=f"检查 [mail] user 和环境变量 {s.password_env} 中的密码（有的邮箱要用授权码）") from exc
    except smtplib.SMTPNotSupportedError as exc:
        what = "STARTTLS" if s.security == "starttls" else "登录（AUTH）"
        raise MailError(f"SMTP 服务器 {where} 不支持 {what}",
                        hint="改 [mail] security（starttls | ssl | none）或端口；不加密时通常无法登录") from exc
    except smtplib.SMTPRecipientsRefused as exc:
        who = "、".join(f"{a}（{_reply_pair(v)}）" for a, v in exc.recipients.items())
        raise MailError(f"收件人全部被 {where} 拒绝：{who}", hint="检查 [mail] to / cc 的地址") from exc
    except smtplib.SMTPSenderRefused as exc:
        raise MailError(f"发件人 {s.sender} 被 {where} 拒绝：{_reply_pair((exc.smtp_code, exc.smtp_error))}",
                        hint="[mail] from 应是登录账号本身的地址") from exc
    except ssl.SSLCertVerificationError as exc:
        raise MailError(f"SMTP 服务器 {where} 的证书校验失败：{exc.verify_message or exc}",
                        hint="检查 host 是否写对；自签名证书用 [mail] ca_file 指定") from exc
    except ssl.SSLError as exc:
        raise MailError(f"与 SMTP 服务器 {where} 建立加密连接失败：{exc}",
                        hint="security = ssl 常用 465 端口，starttls 常用 587 端口") from exc
    except ConnectionRefusedError as exc:
        raise MailError(f"SMTP 服务器 {where} 拒绝连接", hint="检查 [mail] host、port，以及网络/防火墙") from exc
    except TimeoutError as exc:
        raise MailError(f"连接 SMTP 服务器 {where} 超时（{s.timeout:g} 秒）",
                        hint="检查网络，或加大 [mail] timeout") from exc
    except smtplib.SMTPServerDisconnected as exc:
        if "timed out" in str(exc):  # smtplib reports a read timeout as a lost connection
            raise MailError(f"SMTP 服务器 {where} 在 {s.timeout:g} 秒内没有应答（超时）",
                            hint="检查端口与 security 是否匹配、网络是否通畅，或加大 [mail] timeout") from exc
        raise MailError(f"SMTP 服务器 {where} 断开了连接：{exc}", hint="检查端口与 security 是否匹配") from exc
    except smtplib.SMTPException as exc:
        raise MailError(f"SMTP 服务器 {where} 没有接受邮件：{_reply(exc)}") from exc
    except UnicodeEncodeError as exc:  # smtplib sends the login as ASCII
        raise MailError(f"SMTP 登录失败（{where}）：用户名或密码含中文等非 ASCII 字符，无法发送",
                        hint=f"邮箱的授权码/密码只能是英文字母、数字和符号；检查环境变量 {s.password_env}") from exc
    except OSError as exc:  # DNS, unreachable network
        raise MailError(f"无法连接 SMTP 服务器 {where}：{exc.strerror or exc}",
                        hint="检查 [mail] host 和网络") from exc
    return [a for a in rcpt if a not in refused]


def _reply(exc: Exception) -> str:
    code = getattr(exc, "smtp_code", None)
    err = getattr(exc, "smtp_error", None)
    return _reply_pair((code, err)) if code else str(exc)


def _reply_pair(v: Any) -> str:
    code, err = v if isinstance(v, tuple) else (None, v)
    text = err.decode("utf-8", "replace") if isinstance(err, bytes) else str(err or "")
    return f"{code} {text}".strip()


def send_draft(eml: Path, s: MailSettings, *, now: dt.datetime) -> dict[str, Any]:
    """Send the draft at ``eml``.  The draft is first rewritten with the sender and
    recipients it goes to (so a failure leaves exactly what was to be sent); once the
    server has accepted it, the file holds the message as sent (no unsent marker)."""
    from tierctl.io.writers import atomic_path

    raw = eml.read_bytes()

    def keep(msg: email.message.EmailMessage) -> None:
        with atomic_path(eml, force=True) as tmp:
            tmp.write_bytes(msg.as_bytes())

    draft = prepare(raw, s, now=now, draft=True)
    keep(draft)
    msg = prepare(raw, s, now=now)
    msg.replace_header("Message-ID", draft["Message-ID"])
    try:
        accepted = send(msg, s)
    except MailError as err:
        err.message = f"邮件没有发出：{err.message}\n草稿已保存：{eml}（Outlook/Foxmail 可打开后手动发送）及同名 .md"
        raise
    keep(msg)
    return {"sent": True, "to": list(s.to), "cc": list(s.cc), "accepted": accepted, "server": f"{s.host}:{s.port}",
            "message_id": str(msg["Message-ID"]), "subject": str(msg["Subject"]), "eml": str(eml)}
