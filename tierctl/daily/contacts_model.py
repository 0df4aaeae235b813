"""The contacts model (``tierctl/models/contacts.toml``): the execution-record columns and
their aliases, the shortage results and the channels; and the times a sheet may hold."""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tierctl.errors import ModelError
from tierctl.io.ingest import ColumnSet
from tierctl.models.loader import Section

if TYPE_CHECKING:
    pass

MAX_PROBLEMS = 20
FUTURE_SLACK = dt.timedelta(minutes=5)



# -- the model: columns, results, channels ---------------------------------------------------
@dataclass(frozen=True)
class Channel:
    key: str
    label: str
    label_en: str
    aliases: tuple[str, ...]


@dataclass
class ContactsModel:
    path: Path
    columns: ColumnSet
    results: dict[str, tuple[str, ...]]
    channels: list[Channel] = field(default_factory=list)

    def channel(self, text: Any) -> Channel | None:
        """The channel a text names (key, label or alias; case and width folded)."""
        t = _fold(text)
        for c in self.channels:
            if t in {_fold(c.key), _fold(c.label), _fold(c.label_en), *(_fold(a) for a in c.aliases)}:
                return c
        return None

    def channel_hint(self) -> str:
        return "、".join(f"{c.label}（{c.key}）" for c in self.channels)

    def result(self, kind: str, text: Any) -> str | None:
        """The result as the model spells it, None when it is not one of the job's results."""
        t = _fold(text)
        for r in self.results.get(kind, ()):
            if _fold(r) == t:
                return r
        return None

    def label_of(self, key: str | None, lang: str = "zh") -> str:
        for c in self.channels:
            if c.key == key:
                return c.label if lang == "zh" else c.label_en
        return key or ""


def _fold(text: Any) -> str:
    return unicodedata.normalize("NFKC", str(text)).strip().casefold().replace(" ", "") if text is not None else ""


def load_contacts_model(name_or_path: str | Path | None = None) -> ContactsModel:
    """The contacts model (packaged ``contacts`` unless a path is given), checked at load."""
    sec = Section.load(name_or_path or "contacts", kind="contacts")
    cols = ColumnSet.from_model(sec)
    for need in ("at", "result"):
        if need not in cols.specs:
            raise ModelError(f"缺少列「{need}」的定义", path=sec.path, key=f"columns.{need}")
    res = sec.section("results")
    results = {k: tuple(res.list(k, of=str)) for k in res.keys()}
    channels = []
    chs = sec.section("channels")
    for key in chs.keys():
        c = chs.section(key)
        channels.append(Channel(key=key, label=c.str("label"), label_en=c.str("label_en", key),
                                aliases=tuple(c.list("aliases", [], of=str))))
    if not channels:
        raise ModelError("至少要有一个联系渠道", path=sec.path, key="channels")
    return ContactsModel(path=sec.path, columns=cols, results=results, channels=channels)


# -- times ----------------------------------------------------------------------------------------
_WHEN = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[T ]?(\d{1,2})[:：时](\d{1,2})"
                   r"(?:[:：分](\d{1,2})(?:\.\d+)?秒?)?分?)?$")
_SERIAL_MIN, _SERIAL_MAX = 20000, 80000


def parse_when(text: Any, tz: dt.tzinfo | None) -> dt.datetime | None:
    """A contact time as a sheet holds it: ``2026-11-24 10:30``, ``2026/11/24 10:30:00``,
    ``2026年11月24日 10:30``, an Excel date-time serial, or a date alone (noon, as
    ``tierctl contact --at 2026-11-24`` takes it).  None when unreadable.  A time without
    a zone is in the centre's timezone."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return None
    t = unicodedata.normalize("NFKC", str(text)).strip()
    t = re.sub(r"\s+", " ", t)
    m = _WHEN.match(t.replace(" ", "")) or _WHEN.match(t)
    try:
        if m:
            y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
            if m.group(4) is None:
                return dt.datetime(y, mo, d, 12, 0, tzinfo=tz)
            return dt.datetime(y, mo, d, int(m.group(4)), int(m.group(5)), int(m.group(6) or 0), tzinfo=tz)
        v = dt.datetime.fromisoformat(t)
        return v.replace(tzinfo=tz) if v.tzinfo is None else v
    except ValueError:
        pass
    try:
        f = float(t)
    except ValueError:
        return None
    if _SERIAL_MIN <= f <= _SERIAL_MAX:  # an Excel serial: days since 1899-12-30, the fraction the time
        base = dt.datetime(1899, 12, 30, tzinfo=tz) + dt.timedelta(days=f)
        return base.replace(second=0, microsecond=0) + dt.timedelta(minutes=round(base.second / 60))
    return None


def minute_key(at: dt.datetime) -> str:
    """The contact time as the natural key holds it: UTC, to the minute."""
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M")
