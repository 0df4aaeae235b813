"""Feishu (飞书) group robots.

* ``msg_type = "post"`` (rich text: a title and paragraphs of ``text`` / ``at`` elements,
  ``{"tag": "at", "user_id": "ou_…"}``) or ``"interactive"`` (a card whose ``lark_md``
  text mentions as ``<at id=ou_…></at>``).  The whole request body at most 20 KB.
* Signature when the robot has a secret: ``timestamp`` in seconds, ``sign =
  base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b""))``, both in the body.
* Answer ``{"code": 0, "msg": "success"}`` (older robots: ``StatusCode``); 11232 =
  sent too often.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

from tierctl.notify.config import Person, Platform
from tierctl.notify.message import Line, Outcome, clean_md, clean_text, json_outcome

SIGN_RESERVE = 120  # bytes the timestamp and signature add to a body
TEMPLATES = {"green": "green", "yellow": "yellow", "orange": "orange", "red": "red"}


class Renderer:
    def __init__(self, platform: Platform, people: Callable[[str, str | None], Person | None],
                 lang: str = "zh", msg_type: str = "post") -> None:
        self.platform = platform
        self.people = people
        self.lang = lang
        self.msg_type = msg_type

    def _post_line(self, line: Line) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for s in line.segs:
            if s.kind == "at":
                p = self.people(s.text, s.alt)
                if p is not None and p.feishu:
                    out.append({"tag": "at", "user_id": p.feishu})
            elif s.text:
                el: dict[str, Any] = {"tag": "text", "text": clean_text(s.text)}
                if s.kind == "bold":
                    el["style"] = ["bold"]
                out.append(el)
        return out or [{"tag": "text", "text": ""}]

    def _md_line(self, line: Line) -> str:
        out = []
        for s in line.segs:
            if s.kind == "bold":
                out.append(f"**{clean_md(s.text)}**")
            elif s.kind == "at":
                p = self.people(s.text, s.alt)
                if p is not None and p.feishu:
                    out.append(f" <at id={p.feishu}></at>")
            else:
                out.append(clean_md(s.text))
        return "".join(out).rstrip()

    def body(self, title: str, lines: list[Line], color: str | None = None) -> dict[str, Any]:
        if self.msg_type == "interactive":
            return {"msg_type": "interactive", "card": {
                "config": {"wide_screen_mode": True},
                "header": {"title": {"tag": "plain_text", "content": clean_text(title)},
                           "template": TEMPLATES.get(color or "", "blue")},
                "elements": [{"tag": "div", "text": {"tag": "lark_md",
                                                     "content": "\n".join(self._md_line(ln) for ln in lines)}}]}}
        key = "en_us" if self.lang == "en" else "zh_cn"
        return {"msg_type": "post", "content": {"post": {key: {
            "title": clean_text(title), "content": [self._post_line(ln) for ln in lines]}}}}

    def size(self, title: str, lines: list[Line]) -> int:
        return len(json.dumps(self.body(title, lines, "orange"), ensure_ascii=False).encode("utf-8")) + SIGN_RESERVE

    def bodies(self, title: str, lines: list[Line], color: str | None = None) -> list[dict[str, Any]]:
        return [self.body(title, lines, color)]


def sign(secret: str, timestamp_s: int) -> str:
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode("ascii")


def prepare(url: str, body: dict[str, Any], secret: str | None, wall: Callable[[], float]) -> tuple[str, bytes]:
    if secret:
        ts = int(wall())
        body = {"timestamp": str(ts), "sign": sign(secret, ts), **body}
    return url, json.dumps(body, ensure_ascii=False).encode("utf-8")


def outcome(platform: Platform, body: bytes) -> Outcome:
    return json_outcome(body, platform.rate_limited, code_keys=("code", "StatusCode"),
                        msg_keys=("msg", "StatusMessage"))
