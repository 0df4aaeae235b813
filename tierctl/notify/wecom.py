"""WeChat Work (企业微信) group robots.

* ``{"msgtype": "markdown", "markdown": {"content": …}}`` — the content at most 4096
  bytes of UTF-8 (``platforms.wecom.max_bytes``); a person is mentioned as
  ``<@userid>``.
* Markdown cannot mention by mobile number: people known only by their mobile are
  mentioned in a short ``text`` message right after (``mentioned_mobile_list``).
* ``{"msgtype": "image", "image": {"base64": …, "md5": …}}`` — the picture at most 2 MB
  before encoding, the MD5 of its bytes (hex).
* Answer ``{"errcode": 0, "errmsg": "ok"}``; 45009 = sent too often.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any

from tierctl.notify.config import Person, Platform
from tierctl.notify.message import Line, Outcome, clean_md, json_outcome

MENTION_NOTE = {"zh": "请以上负责人查看", "en": "Please have a look"}


class Renderer:
    def __init__(self, platform: Platform, people: Callable[[str, str | None], Person | None],
                 lang: str = "zh") -> None:
        self.platform = platform
        self.people = people
        self.lang = lang

    def _line(self, line: Line, mobiles: list[str]) -> str:
        out = []
        for s in line.segs:
            if s.kind == "bold":
                out.append(f"**{clean_md(s.text)}**")
            elif s.kind == "at":
                p = self.people(s.text, s.alt)
                if p is not None and p.wecom:
                    out.append(f" <@{p.wecom}>")
                elif p is not None and p.mobile:
                    out.append(f" @{clean_md(p.name)}")
                    mobiles.append(p.mobile)
            else:
                out.append(clean_md(s.text))
        return "".join(out).rstrip()

    def content(self, title: str, lines: list[Line]) -> tuple[str, list[str]]:
        mobiles: list[str] = []
        text = "\n".join([f"## {clean_md(title)}", *(self._line(ln, mobiles) for ln in lines)])
        return text, list(dict.fromkeys(mobiles))

    def size(self, title: str, lines: list[Line]) -> int:
        return len(self.content(title, lines)[0].encode("utf-8"))

    def bodies(self, title: str, lines: list[Line], color: str | None = None) -> list[dict[str, Any]]:
        text, mobiles = self.content(title, lines)
        out: list[dict[str, Any]] = [{"msgtype": "markdown", "markdown": {"content": text}}]
        if mobiles:
            out.append({"msgtype": "text", "text": {"content": MENTION_NOTE.get(self.lang, MENTION_NOTE["zh"]),
                                                     "mentioned_mobile_list": mobiles}})
        return out


def image_body(data: bytes) -> dict[str, Any]:
    return {"msgtype": "image", "image": {"base64": base64.b64encode(data).decode("ascii"),
                                          "md5": hashlib.md5(data).hexdigest()}}  # noqa: S324 - the platform's checksum


def prepare(url: str, body: dict[str, Any], secret: str | None, wall: Callable[[], float]) -> tuple[str, bytes]:
    """WeChat Work robots are not signed: the key is in the address."""
    return url, json.dumps(body, ensure_ascii=False).encode("utf-8")


def outcome(platform: Platform, body: bytes) -> Outcome:
    return json_outcome(body, platform.rate_limited)
