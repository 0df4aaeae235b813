"""Reasons in plain words for the people the documents go to (issue 14).

A scored customer carries its reasons as the scoring rules wrote them —
``R=8: 粉丝 52000 ≥ 10000``, ``A4.6: 社交媒体出现负面发帖，立即升为 P0`` — which is
what the manager checks the arithmetic with (the evaluation sheet's 评分依据 column,
``tierctl why``, the JSON).  A customer, a regional director or a peer centre should
read 「粉丝 52,000 人」「已在网上发帖投诉」 instead.

The mapping is data (``tierctl/data/plain_reasons.toml``, or the manager's copy named by
``render.plain_reasons``): each entry names a rule by the ``reason`` text of the scoring
model (placeholders and all) or by an escalation rule's id, and gives the plain phrase in
Chinese and English.  A reason line is matched against the templates of *its* dimension
or escalation rule in the model that scored it, so the placeholders' values
(``{keyword}``, ``{value}`` …) are recovered exactly.  A reason the mapping does not know
is shown without its code, never with it.

Pure: no I/O beyond reading the mapping file once.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from tierctl.errors import ConfigError

PACKAGED = Path(__file__).parent.parent / "data" / "plain_reasons.toml"
CONFIG_KEY = "render.plain_reasons"
OVERRIDE_ID = "人工调整"  # tierctl.daily.OVERRIDE_ID (kept here so that rendering does not import the loop)
GIVEN_TEMPLATE = "取自导出表「{label}」列"  # what shortage._dimension writes for a score the export carried
PLACEHOLDERS = frozenset({"keyword", "value", "min", "previous", "field", "label", "identity", "usage",
                          "wait_days", "to", "from", "reason"})
TONES = ("trusting",)
_ENTRY_KEYS = {"match", "id", "zh", "en", "by_keyword", "by_keyword_en", "tone"}
_CODE = re.compile(r"^\s*([A-Za-z][\w.]*)\s*=\s*-?[\d.]+\s*:\s*(.*)$", re.S)


@dataclass(frozen=True)
class Entry:
    zh: str
    en: str
    by_keyword: dict[str, str] = field(default_factory=dict)
    by_keyword_en: dict[str, str] = field(default_factory=dict)
    tone: str = ""

    def phrase(self, lang: str, fields: dict[str, str]) -> str:
        table = self.by_keyword if lang == "zh" else self.by_keyword_en
        text = table.get(fields.get("keyword", ""), self.zh if lang == "zh" else self.en)
        return text.format_map(_Fields(fields)).strip()


class _Fields(dict):
    def __missing__(self, key: str) -> str:  # validated at load; a template without the value says nothing
        return ""


@dataclass(frozen=True)
class Phrase:
    text: str
    tone: str = ""
    source: str = ""  # the reason line it came from (kept for tests and for a manager's debugging)


@dataclass(frozen=True)
class PlainReasons:
    """The mapping, by reason template and by escalation id."""

    by_match: dict[str, Entry]
    by_id: dict[str, Entry]
    path: Path

    # -- one customer -------------------------------------------------------------------
    def phrases(self, row: dict[str, Any], model: Any, lang: str = "zh") -> list[Phrase]:
        """The customer's reasons as plain phrases, dimensions first (most weighted
        first), then the escalations, duplicates said once; empty phrases dropped."""
        facts = {"identity": _s(row.get("identity")), "usage": _s(row.get("usage")),
                 "wait_days": _s(row.get("wait_days"))}
        out: list[Phrase] = []
        seen: set[str] = set()

        def add(p: Phrase | None) -> None:
            if p is not None and p.text and p.text not in seen:
                seen.add(p.text)
                out.append(p)

        dims = sorted(zip(model.dimensions, model.weights_scaled or [1] * len(model.dimensions), strict=True),
                      key=lambda dw: -int(row[dw[0].key]) * dw[1])
        for d, _w in dims:
            for line in str(row.get(f"reason_{d.key}") or "").split("\n"):
                add(self.dimension_phrase(strip_negation_notes(line, model), d, facts, lang))
        esc = row.get("escalations")
        for line in (esc.split("\n") if isinstance(esc, str) and esc else []):
            add(self.escalation_phrase(line, model, facts, lang))
        return out

    def dimension_phrase(self, line: str, d: Any, facts: dict[str, str], lang: str) -> Phrase | None:
        if not line.strip():
            return None
        m = _CODE.match(line)
        body = m.group(2).strip() if m else line.strip()
        templates = [r.reason for r in d.rules if getattr(r, "reason", "")] + [d.default_reason, GIVEN_TEMPLATE]
        for t in templates:
            fields = match_template(t, body)
            if fields is None:
                continue
            entry = self.by_match.get(t)
            if entry is None:
                break
            return Phrase(entry.phrase(lang, {**facts, **_numbers(fields)}), entry.tone, line)
        return Phrase(strip_codes(body), "", line)

    def escalation_phrase(self, line: str, model: Any, facts: dict[str, str], lang: str) -> Phrase | None:
        if not line.strip():
            return None
        rid, sep, body = line.partition(":")
        rid, body = rid.strip(), body.strip()
        if not sep:
            return Phrase(strip_codes(line), "", line)
        if rid == OVERRIDE_ID:
            fields = parse_override(body)
            entry = self.by_id.get(OVERRIDE_ID)
            if fields is not None and entry is not None:
                return Phrase(entry.phrase(lang, {**facts, **fields}), entry.tone, line)
            return Phrase(strip_codes(body), "", line)
        rule = next((e for e in model.escalation if e.id == rid), None)
        fields = match_template(rule.reason, body) if rule is not None and rule.reason else None
        entry = self.by_id.get(rid) or (self.by_match.get(rule.reason) if rule is not None else None)
        if entry is not None and (fields is not None or rule is None or not rule.reason):
            return Phrase(entry.phrase(lang, {**facts, **_numbers(fields or {})}), entry.tone, line)
        return Phrase(strip_codes(body), "", line)


def _s(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    try:
        import pandas as pd

        if v is pd.NA:
            return ""
    except ImportError:  # pragma: no cover
        pass
    return str(v).strip()


def _numbers(fields: dict[str, str]) -> dict[str, str]:
    """52000 -> 52,000 for the numbers people read (followers, counts)."""
    out = dict(fields)
    for k in ("value", "min", "previous"):
        v = out.get(k)
        if v is not None and re.fullmatch(r"\d{4,}", v):
            out[k] = f"{int(v):,}"
    return out


def strip_negation_notes(line: str, model: Any) -> str:
    """A reason line without the bracketed notes on keywords a negation word cancelled
    ("…（「骗」前有否定词「不是」，未计入）"): that is for the manager's ``why``, not for a
    customer's script, and left in it would hide the reason's own template."""
    note = getattr(model, "negation_note", "")
    if not note or "（" not in line:
        return line
    one = re.escape(note).replace(re.escape("{keyword}"), ".+?").replace(re.escape("{negation}"), ".+?")
    return re.sub(f"（{one}(?:；{one})*）$", "", line)


def strip_codes(text: str) -> str:
    """A reason without its rule code (``R=8: …``, ``A4.4: …``)."""
    m = _CODE.match(text)
    if m:
        return m.group(2).strip()
    return re.sub(r"^\s*[A-Z]\d+(?:\.\d+)*\s*:\s*", "", text).strip()


@lru_cache(maxsize=256)
def _template_regex(template: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    parts = []
    names: list[str] = []
    for literal, name, _spec, _conv in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if name is None:
            continue
        if name in names:
            parts.append(f"(?P={name})")
        else:
            names.append(name)
            parts.append(f"(?P<{name}>.+?)")
    return re.compile("^" + "".join(parts) + "$", re.S), tuple(names)


def match_template(template: str, text: str) -> dict[str, str] | None:
    """The placeholder values when ``text`` is ``template`` filled in, else None."""
    try:
        rx, _names = _template_regex(template)
    except (ValueError, re.error):
        return None
    m = rx.match(text)
    return None if m is None else {k: v for k, v in m.groupdict().items() if v is not None}


_OVERRIDE = re.compile(r"^(?:(?P<from>\S+?)→(?P<to>\S+?)|维持\s*(?P<kept>\S+?))（(?P<rest>.*)）$", re.S)


def parse_override(body: str) -> dict[str, str] | None:
    """``P1→P0（客户已上门投诉；王经理 11-24 10:00）`` -> from, to, reason."""
    m = _OVERRIDE.match(body.strip())
    if m is None:
        return None
    rest = m.group("rest")
    reason = rest.rpartition("；")[0] if "；" in rest else rest
    to = m.group("to") or m.group("kept") or ""
    return {"from": m.group("from") or to, "to": to, "reason": reason.strip()}


# -- loading --------------------------------------------------------------------------------
def load(path: Path | str | None = None) -> PlainReasons:
    """The packaged mapping, or the manager's copy; every problem names the file and
    the entry (``reason[3].zh``)."""
    p = Path(path) if path is not None else PACKAGED
    return _load(p.resolve(), p.stat().st_mtime_ns if p.exists() else 0)


def for_config(config: Any) -> PlainReasons:
    """The mapping the configuration asks for (``render.plain_reasons``, relative to the
    configuration file), else the packaged one."""
    v = config.get(CONFIG_KEY) or ""
    if not v:
        return load()
    p = Path(str(v)).expanduser()
    if not p.is_absolute() and getattr(config, "path", None) is not None:
        p = Path(config.path).parent / p
    if not p.is_file():
        raise ConfigError(f"理由对照文件 {p} 不存在", path=config.path or Path("tierctl.toml"), key=CONFIG_KEY,
                          hint="写文件路径（相对于配置文件），或删掉这一项使用内置的对照表")
    return load(p)


@lru_cache(maxsize=8)
def _load(path: Path, _mtime: int) -> PlainReasons:
    from tierctl.models.loader import load_toml

    data = load_toml(path)
    items = data.get("reason")
    extra = set(data) - {"reason"}
    if extra:
        raise ConfigError(f"不认识的项：{'、'.join(sorted(extra))}", path=path, key=sorted(extra)[0],
                          hint="每条对照写成 [[reason]]")
    if not isinstance(items, list) or not items:
        raise ConfigError("没有任何 [[reason]] 对照", path=path, key="reason")
    by_match: dict[str, Entry] = {}
    by_id: dict[str, Entry] = {}
    for i, it in enumerate(items):
        key = f"reason[{i}]"
        if not isinstance(it, dict):
            raise ConfigError("应为一个表", path=path, key=key)
        unknown = set(it) - _ENTRY_KEYS
        if unknown:
            raise ConfigError(f"不认识的项：{'、'.join(sorted(unknown))}", path=path, key=f"{key}.{sorted(unknown)[0]}",
                              hint="可用：match 或 id、zh、en、by_keyword、by_keyword_en、tone")
        has_match, has_id = isinstance(it.get("match"), str) and it["match"], isinstance(it.get("id"), str) and it["id"]
        if bool(has_match) == bool(has_id):
            raise ConfigError("要写 match（规则理由原文）或 id（动态调整规则编号）之一", path=path, key=key)
        texts = {}
        for lang in ("zh", "en"):
            t = it.get(lang)
            if not isinstance(t, str):
                raise ConfigError("应为文字（对外不提时写空字符串 \"\"）", path=path, key=f"{key}.{lang}")
            texts[lang] = _checked(t, path, f"{key}.{lang}")
        tables = {}
        for name in ("by_keyword", "by_keyword_en"):
            tb = it.get(name, {})
            if not isinstance(tb, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tb.items()):
                raise ConfigError('应为一个表：关键词 = "说法"', path=path, key=f"{key}.{name}")
            tables[name] = {k: _checked(v, path, f"{key}.{name}.{k}") for k, v in tb.items()}
        tone = it.get("tone", "")
        if tone and tone not in TONES:
            raise ConfigError(f"tone 只能是 {' / '.join(TONES)}", path=path, key=f"{key}.tone")
        entry = Entry(texts["zh"], texts["en"], tables["by_keyword"], tables["by_keyword_en"], tone)
        target, name = (by_match, it["match"]) if has_match else (by_id, it["id"])
        if name in target:
            raise ConfigError(f"「{name}」写了两次", path=path, key=key)
        target[name] = entry
    return PlainReasons(by_match, by_id, path)


def _checked(text: str, path: Path, key: str) -> str:
    try:
        names = {n for _l, n, _s, _c in string.Formatter().parse(text) if n is not None}
    except ValueError as exc:
        raise ConfigError(f"占位符写法有误：{exc}", path=path, key=key, hint="占位符写成 {keyword}；要写花括号本身请写 {{ }}") from exc
    bad = names - PLACEHOLDERS
    if bad:
        raise ConfigError(f"不认识的占位符：{'、'.join('{' + b + '}' for b in sorted(bad))}", path=path, key=key,
                          hint="可用：" + "、".join("{" + p + "}" for p in sorted(PLACEHOLDERS)))
    return text


__all__ = ["OVERRIDE_ID", "Phrase", "PlainReasons", "for_config", "load", "match_template", "parse_override",
           "strip_codes"]
