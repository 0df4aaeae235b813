"""DingTalk (钉钉) group robots.

* ``{"msgtype": "markdown", "markdown": {"title", "text"}, "at": {"atMobiles",
  "atUserIds", "isAtAll": false}}`` — a person is mentioned when the text holds
  ``@<mobile>`` (or ``@<userId>``) *and* the number is in ``at.atMobiles``.
* 加签: ``timestamp`` in milliseconds, ``sign = urlencode(base64(HMAC-SHA256(key=secret,
  msg=f"{timestamp}\\n{secret}")))``, both appended to the webhook address.
* Answer ``{"errcode": 0, "errmsg": "ok"}``; 130101 and the like = sent too often
  (20 messages a minute per robot).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
from collections.abc import Callable
from typing import Any

from tierctl.notify.config import Person, Platform
from tierctl.notify.message import Line, Outcome, clean_md, json_outcome


class Renderer:
    def __init__(self, platform: Platform, people: Callable[[str, str | None], Person | None],
                 lang: str = "zh") -> None:
        self.platform = platform
        self.people = people
        self.lang = lang

    def _line(self, line: Line, mobiles: list[str], users: list[str]) -> str:
        out = []
        for s in line.segs:
            if s.kind == "bold":
                out.append(f"**{clean_md(s.text)}**")
            elif s.kind == "at":
                p = self.people(s.text, s.alt)
                if p is not None and p.mobile:
                    out.append(f" @{p.mobile}")
                    mobiles.append(p.mobile)
                elif p is not None and p.dingtalk:
                    out.append(f" @{p.dingtalk}")
                    users.append(p.dingtalk)
            else:
                out.append(clean_md(s.text))
        return "".join(out).rstrip()

    def text(self, title: str, lines: list[Line]) -> tuple[str, list[str], list[str]]:
        mobiles: list[str] = []
        users: list[str] = []
        body = "\n\n".join([f"## {clean_md(title)}", *(self._line(ln, mobiles, users) for ln in lines)])
        return body, list(dict.fromkeys(mobiles)), list(dict.fromkeys(users))

    def size(self, title: str, lines: list[Line]) -> int:
        return len(self.text(title, lines)[0].encode("utf-8"))

    def bodies(self, title: str, lines: list[Line], color: str | None = None) -> list[dict[str, Any]]:
        text, mobiles, users = self.text(title, lines)
        return [{"msgtype": "markdown", "markdown": {"title": clean_md(title), "text": text},
                 "at": {"atMobiles": mobiles, "atUserIds": users, "isAtAll": False}}]


def sign(secret: str, timestamp_ms: int) -> str:
    """The 加签 signature, URL-encoded as it goes into the address."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode("ascii"))


def prepare(url: str, body: dict[str, Any], secret: str | None, wall: Callable[[], float]) -> tuple[str, bytes]:
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    if not secret:
        return url, data
    ts = int(round(wall() * 1000))
    return f"{url}{'&' if '?' in url else '?'}timestamp={ts}&sign={sign(secret, ts)}", data


def outcome(platform: Platform, body: bytes) -> Outcome:
    return json_outcome(body, platform.rate_limited)
