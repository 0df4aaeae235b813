"""SMS ready for a platform: the batch-send upload files of Aliyun (阿里云) and Tencent
Cloud (腾讯云), a check sheet, and the numbers that cannot be sent.

* The platform puts the signature 【中心名】 before every message and bills it: lengths and
  segments here count it (70 characters for one Chinese SMS, 67 per part beyond that —
  ``[sms] segment_chars`` / ``concat_segment_chars``).
* Marketing messages (the churn/RFM upkeep touches, not the service notices about a
  customer's car) end with the platform's opt-out text (拒收请回复R / 回T退订).
* Only mainland mobile numbers are sent (11 digits, 1[3-9]…, an optional +86 / 0086 in
  front); landlines and malformed numbers are listed apart, never put in an upload file.
* Upload files are .xlsx with the phone column stored as text, one column per variable
  of the approved template (``[sms.platforms.<key>] variables``), nothing else.

Pure apart from :func:`write_files`; the platforms, signature and opt-out texts are
configuration (``tierctl/data/defaults.toml`` ``[sms]``), checked when read.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tierctl.errors import ConfigError
from tierctl.render.figures import sms_length
from tierctl.render.values import int_value

FIELDS = ("name", "message", "short", "customer_id")
CHECK_FILE = "sms_check.xlsx"
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}\d{7,8}$|^[2-9]\d{6,7}$|^400\d{7}$")


@dataclass(frozen=True)
class Platform:
    key: str
    label: str
    file: str
    phone_header: str
    variables: tuple[tuple[str, str], ...]  # (header, field)
    optout: str


@dataclass
class Message:
    phone: str | None
    name: str | None
    text: str
    customer_id: str | None = None
    short: str | None = None


def _cfg_path(config: Any) -> Path:
    return config.path or Path("tierctl.toml")


def platforms(config: Any) -> list[Platform]:
    """The platforms of ``[sms.platforms]``, each checked (file, key named on a mistake)."""
    table = config.get("sms.platforms") or {}
    path = _cfg_path(config)
    if not isinstance(table, dict):
        raise ConfigError("应为表 [sms.platforms.<平台>]", path=path, key="sms.platforms")
    out = []
    for key, p in table.items():
        k = f"sms.platforms.{key}"
        if not isinstance(p, dict):
            raise ConfigError("应为一个表", path=path, key=k)
        if not re.fullmatch(r"[A-Za-z0-9_]+", str(key)):
            raise ConfigError("平台名只能用英文字母、数字和下划线（文件名 sms_<平台名>.xlsx）", path=path, key=k)
        for need in ("label", "phone_header"):
            if not isinstance(p.get(need), str) or not p[need].strip():
                raise ConfigError("缺少配置项（文字）", path=path, key=f"{k}.{need}")
        variables = p.get("variables")
        if not isinstance(variables, list) or not variables:
            raise ConfigError("应为模板变量列表，如 [{ header = \"name\", field = \"name\" }]", path=path,
                              key=f"{k}.variables")
        vs = []
        for i, v in enumerate(variables):
            if not isinstance(v, dict) or not isinstance(v.get("header"), str) or v.get("field") not in FIELDS:
                raise ConfigError(f"每一项要有 header（列名）和 field（{' | '.join(FIELDS)}）", path=path,
                                  key=f"{k}.variables[{i}]")
            vs.append((v["header"], v["field"]))
        optout = p.get("optout", "")
        if not isinstance(optout, str):
            raise ConfigError("应为文字", path=path, key=f"{k}.optout")
        out.append(Platform(key=key, label=p["label"], file=f"sms_{key}.xlsx", phone_header=p["phone_header"],
                            variables=tuple(vs), optout=optout.strip()))
    return out


def signature(config: Any) -> str:
    """【中心名】: ``[sms] signature``, else the centre's name (brackets added when missing)."""
    s = str(config.get("sms.signature") or "").strip() or str(config.get("centre.name") or "").strip()
    if not s:
        raise ConfigError("缺少短信签名", path=_cfg_path(config), key="sms.signature",
                          hint="填写 [sms] signature，或 [centre] name（签名即【中心名】）")
    return s if s.startswith("【") and s.endswith("】") else f"【{s.strip('【】')}】"


def limits(config: Any) -> tuple[int, int]:
    return (int_value(config, "sms.segment_chars", lo=1), int_value(config, "sms.concat_segment_chars", lo=1))


def normalise_phone(text: Any) -> tuple[str | None, str | None]:
    """(the 11-digit mobile, None) or (None, why it cannot be sent)."""
    if text is None or not str(text).strip():
        return None, "没有手机号"
    t = unicodedata.normalize("NFKC", str(text)).strip()
    digits = re.sub(r"[\s\-()（）.]", "", t)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if _MOBILE.match(digits):
        return digits, None
    if digits.isdigit() and _LANDLINE.match(digits):
        return None, "固定电话，不能收短信"
    return None, "不是有效的手机号"


def signed(text: str, sig: str, optout: str = "") -> str:
    """The message as the phone shows it: signature, text, and (marketing) the opt-out."""
    body = text.strip()
    if optout and optout not in body:
        body = f"{body}{optout}"
    return f"{sig}{body}"


@dataclass
class Prepared:
    rows: list[dict[str, Any]]  # sendable: phone, name, customer_id, message, short, and counts
    rejected: list[dict[str, Any]]  # phone, name, customer_id, reason
    platforms: list[Platform]
    signature: str
    marketing: bool
    warnings: list[str]

    @property
    def segments(self) -> int:
        return sum(r["segments"] for r in self.rows)


def prepare(messages: Sequence[Message], config: Any, *, marketing: bool) -> Prepared:
    """Phones checked, lengths counted with the signature (and opt-out when marketing)."""
    sig = signature(config)
    plats = platforms(config)
    single, multi = limits(config)
    rows, rejected, warnings = [], [], []
    # the opt-out counted is the longest of the platforms' (each file carries its own)
    optout = max((p.optout for p in plats), key=len, default="") if marketing else ""
    for m in messages:
        phone, why = normalise_phone(m.phone)
        if phone is None:
            rejected.append({"phone": m.phone, "name": m.name, "customer_id": m.customer_id, "reason": why})
            continue
        full = signed(m.text, sig, optout)
        chars, segs = sms_length(full, single, multi)
        r = {"phone": phone, "name": m.name, "customer_id": m.customer_id, "message": m.text.strip(),
             "signed": full, "chars": chars, "segments": segs, "short": m.short}
        if m.short is not None:
            s_full = signed(m.short, sig, optout)
            r["short_signed"] = s_full
            r["short_chars"], r["short_segments"] = sms_length(s_full, single, multi)
        rows.append(r)
    bad = [r for r in rejected if r["reason"] != "没有手机号"]
    if bad:
        names = "、".join(f"{r['name'] or r['customer_id'] or ''}({r['phone']})" for r in bad[:10])
        warnings.append(f"{len(bad)} 个号码不是手机号，没有写入短信平台文件（见 {CHECK_FILE} 的「不能发送」）：{names}"
                        + (" …" if len(bad) > 10 else ""))
    long_short = [r for r in rows if int(r.get("short_segments") or 1) > 1]
    if long_short:
        warnings.append(f"{len(long_short)} 位客户的短版短信连同签名仍超过 {single} 字（姓名或配件名太长）："
                        + "、".join(str(r["name"] or r["customer_id"]) for r in long_short[:10]))
    return Prepared(rows, rejected, plats, sig, marketing, warnings)


def platform_values(p: Platform, r: Mapping[str, Any], marketing: bool) -> list[str]:
    out = []
    for _header, f in p.variables:
        v = r.get(f)
        text = "" if v is None else str(v)
        if f in ("message", "short") and marketing and p.optout and p.optout not in text:
            text = f"{text}{p.optout}"
        out.append(text)
    return out


def write_files(prep: Prepared, folder: Path, *, lang: str = "zh", force: bool = True) -> list[Path]:
    """One upload file per platform and the check sheet, into ``folder`` (each written
    atomically; an existing file is replaced only with ``force``)."""
    import xlsxwriter

    from tierctl.io.writers import atomic_path

    written = []
    opts = {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
    for p in prep.platforms:
        target = folder / p.file
        with atomic_path(target, force=force) as tmp:
            wb = xlsxwriter.Workbook(str(tmp), opts)
            ws = wb.add_worksheet("Sheet1")
            text = wb.add_format({"num_format": "@"})
            head = [p.phone_header, *(h for h, _ in p.variables)]
            for j, h in enumerate(head):
                ws.write_string(0, j, h)
                ws.set_column(j, j, 14 if j == 0 else (60 if p.variables[j - 1][1] in ("message", "short") else 12),
                              text)
            for i, r in enumerate(prep.rows, start=1):
                ws.write_string(i, 0, r["phone"], text)
                for j, v in enumerate(platform_values(p, r, prep.marketing), start=1):
                    ws.write_string(i, j, v, text)
            wb.close()
        written.append(target)
    written.append(write_check(prep, folder / CHECK_FILE, lang=lang, force=force))
    return written


CHECK_LABELS = {
    "zh": {"ok": "可发送", "bad": "不能发送", "phone": "手机号", "name": "客户", "id": "客户编号",
           "signed": "发出的全文（含签名）", "chars": "字数（含签名）", "segments": "条数", "short": "短版（含签名）",
           "short_chars": "短版字数", "reason": "原因", "sig": "签名", "kind": "类型", "marketing": "营销（已加退订说明）",
           "service": "服务通知（不加退订说明）"},
    "en": {"ok": "Sendable", "bad": "Not sendable", "phone": "Phone", "name": "Customer", "id": "Customer ID",
           "signed": "Full text (with signature)", "chars": "Characters (with signature)", "segments": "Segments",
           "short": "Short form (with signature)", "short_chars": "Short characters", "reason": "Reason",
           "sig": "Signature", "kind": "Kind", "marketing": "marketing (opt-out added)",
           "service": "service notice (no opt-out)"},
}


def write_check(prep: Prepared, path: Path, *, lang: str = "zh", force: bool = True) -> Path:
    """The check sheet: every sendable message as the phone shows it with its length and
    segments, the short form, and the numbers that cannot be sent with the reason."""
    import xlsxwriter

    from tierctl.io.writers import atomic_path

    L = CHECK_LABELS["en" if lang == "en" else "zh"]
    with atomic_path(path, force=force) as tmp:
        wb = xlsxwriter.Workbook(str(tmp), {"strings_to_formulas": False, "strings_to_urls": False,
                                            "strings_to_numbers": False})
        text = wb.add_format({"num_format": "@", "text_wrap": True, "valign": "top"})
        bold = wb.add_format({"bold": True, "bg_color": "#D9E1F2", "border": 1})
        ws = wb.add_worksheet(L["ok"])
        heads = [L["phone"], L["name"], L["id"], L["signed"], L["chars"], L["segments"], L["short"], L["short_chars"]]
        for j, (h, w) in enumerate(zip(heads, (14, 10, 12, 60, 8, 6, 40, 8), strict=True)):
            ws.write_string(0, j, h, bold)
            ws.set_column(j, j, w)
        for i, r in enumerate(prep.rows, start=1):
            ws.write_string(i, 0, r["phone"], text)
            ws.write_string(i, 1, str(r["name"] or ""), text)
            ws.write_string(i, 2, str(r["customer_id"] or ""), text)
            ws.write_string(i, 3, r["signed"], text)
            ws.write_number(i, 4, r["chars"])
            ws.write_number(i, 5, r["segments"])
            ws.write_string(i, 6, r.get("short_signed") or "", text)
            if r.get("short_chars") is not None:
                ws.write_number(i, 7, r["short_chars"])
        ws.freeze_panes(1, 0)
        n = len(prep.rows) + 2
        ws.write_string(n, 0, L["sig"], bold)
        ws.write_string(n, 1, prep.signature)
        ws.write_string(n + 1, 0, L["kind"], bold)
        ws.write_string(n + 1, 1, L["marketing" if prep.marketing else "service"])
        bad = wb.add_worksheet(L["bad"])
        for j, (h, w) in enumerate(zip((L["phone"], L["name"], L["id"], L["reason"]), (16, 10, 12, 24), strict=True)):
            bad.write_string(0, j, h, bold)
            bad.set_column(j, j, w)
        for i, r in enumerate(prep.rejected, start=1):
            for j, k in enumerate(("phone", "name", "customer_id", "reason")):
                bad.write_string(i, j, "" if r.get(k) is None else str(r[k]), text)
        wb.close()
    return path


def file_names(config: Any) -> list[str]:
    return [p.file for p in platforms(config)] + [CHECK_FILE]
