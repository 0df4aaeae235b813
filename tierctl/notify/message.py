"""Platform-neutral message lines, and packing them into messages that fit a platform's
size limit.

A line is a list of segments — text, bold text, a mention of a person or role — and the
items it tells about (``alert:12`` …: what is recorded as sent once the message carrying
the line is accepted).  Lines come in blocks (a recipient and their alerts): a block's
heading goes with its first line and is repeated, marked as continued, when the block
runs on into the next message.  Each platform module renders lines and measures the
rendered message exactly as it counts against its limit (:class:`Renderer`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Seg:
    kind: str  # "text" | "bold" | "at"
    text: str
    alt: str | None = None  # "at": who to mention when ``text`` has no entry in the people table


def T(text: str) -> Seg:  # noqa: N802 - read as markup
    return Seg("text", text)


def B(text: str) -> Seg:  # noqa: N802
    return Seg("bold", text)


def AT(name: str, alt: str | None = None) -> Seg:  # noqa: N802
    return Seg("at", name, alt)


@dataclass
class Line:
    segs: list[Seg]
    items: tuple[str, ...] = ()
    heading: bool = False

    def plain(self) -> str:
        return "".join(s.text for s in self.segs if s.kind != "at")


@dataclass
class Block:
    lines: list[Line]
    heading: list[Line] = field(default_factory=list)
    cont: list[Line] = field(default_factory=list)  # the heading when the block runs on


@dataclass
class Message:
    title: str
    lines: list[Line]

    @property
    def items(self) -> list[str]:
        return list(dict.fromkeys(i for ln in self.lines for i in ln.items))


class Renderer(Protocol):
    def size(self, title: str, lines: list[Line]) -> int: ...

    def bodies(self, title: str, lines: list[Line], color: str | None = None) -> list[dict[str, Any]]: ...


def _shorten(line: Line, fits: Callable[[list[Line]], bool], head: list[Line]) -> Line:
    """``line`` with its longest text cut (marked …) until it fits in a message of its
    own; mentions go last."""
    segs = list(line.segs)
    for _ in range(200):
        cand = Line(segs, line.items, line.heading)
        if fits([*head, cand]):
            return cand
        long = [i for i, s in enumerate(segs) if s.kind != "at" and len(s.text.rstrip("…")) > 1]
        if long:
            i = max(long, key=lambda j: len(segs[j].text))
            base = segs[i].text.rstrip("…")
            segs[i] = Seg(segs[i].kind, base[: len(base) // 2] + "…", segs[i].alt)
        elif any(s.kind == "at" for s in segs):
            segs = [s for s in segs if s.kind != "at"]
        else:
            break
    return Line([T("…")], line.items, line.heading)


def pack(blocks: list[Block], renderer: Renderer, *, limit: int, max_messages: int,
         title: Callable[[int, int], str], overflow: Callable[[list[str]], Line]) -> list[Message]:
    """Lines of ``blocks`` in messages of at most ``limit`` (as ``renderer`` measures),
    at most ``max_messages`` of them: what does not fit then is summed up in one last
    line (``overflow(items)``), which carries those items."""
    widest = title(99, 99)

    def fits(lines: list[Line]) -> bool:
        return renderer.size(widest, lines) <= limit

    msgs: list[list[Line]] = []
    cur: list[Line] = []
    for b in blocks:
        placed = False  # this block has lines in ``cur``
        for i, line in enumerate(b.lines):
            head = [] if placed else (b.heading if i == 0 else b.cont)
            if fits([*cur, *head, line]):
                cur += [*head, line]
                placed = True
                continue
            if cur:
                msgs.append(cur)
            head = b.heading if i == 0 else b.cont
            if not fits([*head, line]):
                line = _shorten(line, fits, head)
            cur = [*head, line]
            placed = True
    if cur:
        msgs.append(cur)
    if len(msgs) > max_messages:
        rest = [ln for m in msgs[max_messages:] for ln in m]
        last = list(msgs[max_messages - 1])
        while last:
            spill = [*(i for ln in rest for i in ln.items)]
            cand = [*last, overflow(list(dict.fromkeys(spill)))]
            if fits(cand):
                break
            rest.insert(0, last.pop())
            while last and last[-1].heading:
                rest.insert(0, last.pop())
        spill = list(dict.fromkeys(i for ln in rest for i in ln.items))
        msgs = [*msgs[:max_messages - 1], [*last, overflow(spill)]]
    n = len(msgs)
    return [Message(title(k + 1, n), m) for k, m in enumerate(msgs)]


__all__ = ["AT", "B", "Block", "Line", "Message", "Renderer", "Seg", "T", "pack"]


# -- shared by the platform modules ----------------------------------------------------------------
_MD = str.maketrans({"*": "＊", "`": "｀", "[": "［", "]": "］", "<": "＜", ">": "＞", "~": "～",
                     "\n": " ", "\r": " ", "\t": " "})


def clean_md(text: str) -> str:
    """Data (a customer's name, a reason) as plain text in a markdown message: the
    characters that would format it, link it or mention someone (``<@…>``, ``<at …>``)
    become their full-width look-alikes, line breaks spaces."""
    return str(text).translate(_MD)


def clean_text(text: str) -> str:
    """Data in a structured (non-markdown) element: one line."""
    return str(text).replace("\r", " ").replace("\n", " ")


@dataclass(frozen=True)
class Outcome:
    ok: bool
    rate_limited: bool = False
    code: int | None = None
    message: str = ""


def json_outcome(body: bytes, rate_codes: frozenset[int], code_keys: tuple[str, ...] = ("errcode",),
                 msg_keys: tuple[str, ...] = ("errmsg",)) -> Outcome:
    """The platform's answer: ``{"errcode": 0, "errmsg": "ok"}`` and the like."""
    import json

    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return Outcome(False, code=None, message="答复不是 JSON：" + body[:120].decode("utf-8", "replace"))
    if not isinstance(doc, dict):
        return Outcome(False, message="答复无法识别")
    code = next((doc[k] for k in code_keys if k in doc), None)
    msg = next((str(doc[k]) for k in msg_keys if k in doc), "")
    try:
        n = int(code) if code is not None else None
    except (TypeError, ValueError):
        n = None
    if n == 0:
        return Outcome(True, code=0, message=msg)
    if n is None:
        return Outcome(False, message="答复中没有结果代码：" + body[:120].decode("utf-8", "replace"))
    return Outcome(False, rate_limited=n in rate_codes, code=n, message=msg)
