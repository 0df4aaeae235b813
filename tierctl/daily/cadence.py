"""How often each customer must be contacted, and by whom, once the whole shortage has a
crisis level; which contact results did not reach the customer.  Pure: the model file's
data in, plain values out (the task list in :mod:`tierctl.daily` applies them).

The rules (SPEC A5–A7; the numbers live in the model file):

* A crisis level sets ``contact_max_days``, the longest a customer may go between two
  contacts at that level.  It caps each tier's own cadence and never loosens it: the
  interval is ``min(tier cadence, contact_max_days)``.  A capped interval counts calendar
  time (a crisis takes no holidays): whole days from the date of the last contact, a
  fraction of a day (0.5 = twice a day) on the clock from its time.
* A crisis level may hand the tasks of some tiers to another owner (``owners``: tier →
  owner), e.g. the regional manager steps in for P0 at level 3.  Tiers not named keep
  their own owner.
* A tier with ``calendar_cap = true`` (P0) counted in working days is never due later
  than its cadence in calendar days.
* A contact whose result contains one of ``[contacts] not_reached`` (未接通, 关机 …)
  did not reach the customer: it does not reset the cadence, and the customer is due
  again ``retry_days`` (working) days after the attempt, unless the cadence comes later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tierctl.models.loader import Section

NOT_REACHED_DEFAULT = ("未接通", "没接通", "无人接听", "没人接", "关机", "停机", "占线", "拒接", "空号", "忙音",
                       "no answer", "not reached", "unreachable", "busy", "declined")


@dataclass(frozen=True)
class CrisisResponse:
    """What one crisis level asks of people (see the module docstring)."""

    level: int
    label: str = ""
    contact_max_days: Decimal | None = None
    contact_note: str = ""
    contact_note_en: str = ""
    owners: dict[str, str] = field(default_factory=dict)
    owners_en: dict[str, str] = field(default_factory=dict)

    def caps(self, cadence_days: float) -> bool:
        """Does this level tighten a cadence of ``cadence_days``?"""
        return self.contact_max_days is not None and float(self.contact_max_days) < float(cadence_days)

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level, "label": self.label,
                "contact_max_days": None if self.contact_max_days is None else str(self.contact_max_days),
                "contact_note": self.contact_note, "contact_note_en": self.contact_note_en,
                "owners": dict(self.owners), "owners_en": dict(self.owners_en)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CrisisResponse:
        cap = d.get("contact_max_days")
        return cls(level=int(d["level"]), label=str(d.get("label", "")),
                   contact_max_days=None if cap in (None, "") else Decimal(str(cap)),
                   contact_note=str(d.get("contact_note", "")), contact_note_en=str(d.get("contact_note_en", "")),
                   owners=dict(d.get("owners") or {}), owners_en=dict(d.get("owners_en") or {}))


@dataclass(frozen=True)
class ContactPolicy:
    responses: dict[int, CrisisResponse] = field(default_factory=dict)
    not_reached: tuple[str, ...] = NOT_REACHED_DEFAULT
    retry_days: int = 1
    calendar_cap: frozenset[str] = frozenset()  # tiers never due later than their cadence in calendar days

    def response(self, level: int | None) -> CrisisResponse | None:
        return self.responses.get(int(level)) if level is not None else None

    def is_reached(self, result: Any) -> bool:
        """False when the result says the customer was not reached (未接通, 关机 …)."""
        text = str(result or "").lower()
        return not any(w.lower() in text for w in self.not_reached)

    def to_json(self) -> dict[str, Any]:
        return {"responses": [r.to_json() for r in self.responses.values()], "not_reached": list(self.not_reached),
                "retry_days": self.retry_days, "calendar_cap": sorted(self.calendar_cap)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ContactPolicy:
        rs = [CrisisResponse.from_json(x) for x in d.get("responses", [])]
        return cls(responses={r.level: r for r in rs}, not_reached=tuple(d.get("not_reached", NOT_REACHED_DEFAULT)),
                   retry_days=int(d.get("retry_days", 1)), calendar_cap=frozenset(d.get("calendar_cap", [])))


def load_policy(sec: Any, tier_names: list[str]) -> ContactPolicy:
    """The contact policy of a shortage model (a :class:`tierctl.models.loader.Section`
    of the whole file), validated: each error names the file and key."""
    responses: dict[int, CrisisResponse] = {}
    crisis = sec.section("crisis", None)
    if crisis is not None:
        for i, lv in enumerate(crisis.list("levels", [], of=dict)):
            s = Section(lv, sec.path, f"crisis.levels[{i}]")
            level = s.int("level", min=1)
            cap = s.decimal("contact_max_days", None, min=0) if "contact_max_days" in s else None
            if cap is not None and cap <= 0:
                raise s.error("contact_max_days", "应大于 0（天；0.5 = 每日两次）")
            if cap is not None and cap >= 1 and cap != cap.to_integral_value():
                raise s.error("contact_max_days", f"取值 {cap} 无效：1 天以上写整数天，1 天以内写小数（0.5 = 每 12 小时）")
            owners = _owners(s, "owners", tier_names)
            owners_en = _owners(s, "owners_en", tier_names)
            responses[level] = CrisisResponse(
                level=level, label=s.str("label", ""), contact_max_days=cap,
                contact_note=s.str("contact_note", ""), contact_note_en=s.str("contact_note_en", ""),
                owners=owners, owners_en=owners_en)
    contacts = sec.section("contacts", None)
    not_reached: tuple[str, ...] = NOT_REACHED_DEFAULT
    retry = 1
    if contacts is not None:
        not_reached = tuple(w for w in contacts.list("not_reached", list(NOT_REACHED_DEFAULT), of=str) if w.strip())
        if not not_reached:
            raise contacts.error("not_reached", "至少写一个表示「没联系上」的结果，如「未接通」")
        retry = contacts.int("retry_days", 1, min=1)
    caps = set()
    for t in sec.sections("tiers", []):
        if "calendar_cap" in t and t.bool("calendar_cap"):
            caps.add(t.str("name"))
    return ContactPolicy(responses=responses, not_reached=not_reached, retry_days=retry, calendar_cap=frozenset(caps))


def _owners(s: Any, key: str, tier_names: list[str]) -> dict[str, str]:
    if key not in s:
        return {}
    o = s.section(key)
    out = {}
    for tier, who in o.items():
        if tier not in tier_names:
            raise o.error(tier, f"未知的分级「{tier}」", hint=f"模型中的分级：{', '.join(tier_names)}")
        if not isinstance(who, str) or not who.strip():
            raise o.error(tier, f"应为负责人名称（文字），实际是 {who!r}")
        out[tier] = who.strip()
    return out


def effective(tier: dict[str, Any], response: CrisisResponse | None, lang: str = "zh") -> dict[str, Any]:
    """One tier's contact policy under a crisis level: ``cadence_days`` (a float: 0.5 =
    twice a day), ``capped`` (the crisis tightened it), ``note`` (what the task list
    says), ``owner`` (short) and ``owner_changed``."""
    own = float(tier["cadence_days"])
    capped = response is not None and response.caps(own)
    note_own = tier.get("cadence_note") or (f"每 {tier['cadence_days']} 天联系" if lang == "zh"
                                            else f"contact every {tier['cadence_days']} days")
    if capped:
        assert response is not None and response.contact_max_days is not None
        base = (response.contact_note if lang == "zh" else response.contact_note_en or response.contact_note) \
            or days_text(response.contact_max_days, lang)
        note = f"{base}（危机 {response.level} 级）" if lang == "zh" else f"{base} (crisis level {response.level})"
        days = float(response.contact_max_days)
    else:
        note, days = note_own, own
    owners = (response.owners if lang == "zh" else (response.owners_en or response.owners)) if response else {}
    default_owner = tier.get("owner_short") or tier.get("owner") if lang == "zh" \
        else tier.get("owner_short_en") or tier.get("owner_short") or tier.get("owner")
    owner = owners.get(tier["name"], default_owner)
    return {"cadence_days": days, "capped": capped, "note": note, "owner": owner,
            "owner_changed": tier["name"] in owners}


def days_text(days: Decimal | float, lang: str = "zh") -> str:
    d = Decimal(str(days))
    if d < 1:
        per_day = Decimal(1) / d
        n = int(per_day) if per_day == per_day.to_integral_value() else None
        hours = d * 24
        h = f"{hours.normalize():f}"
        if lang == "zh":
            return f"每日 {n} 次联系" if n else f"每 {h} 小时联系"
        return f"contact {n} times a day" if n else f"contact every {h} hours"
    n = int(d)
    if lang == "zh":
        return "每日联系" if n == 1 else f"每 {n} 天联系"
    return "daily contact" if n == 1 else f"contact every {n} days"
