"""Posting to a robot's webhook: the platform's rate limit, retries with backoff, and the
platform's answer.

Standard library only (``urllib``).  Every wait goes through ``sleep`` and every
reading of the time through ``clock`` (monotonic) and ``wall`` (for signatures), all
injectable, so tests run at once and never wait for real.  Nothing here ever puts a
webhook address or a secret into a message: errors say what the platform answered.
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tierctl.notify.config import Platform
from tierctl.notify.message import Outcome


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


Post = Callable[[str, bytes, float], Response]


def urllib_post(url: str, data: bytes, timeout: float) -> Response:
    """POST JSON with urllib (proxies from the environment, as urllib does)."""
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "application/json; charset=utf-8",
                                          "User-Agent": "tierctl-notify"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 - https (or this machine) only
            return Response(int(r.status), r.read(), {k.lower(): v for k, v in r.headers.items()})
    except urllib.error.HTTPError as e:
        try:
            body = e.read()
        except OSError:
            body = b""
        return Response(int(e.code), body, {k.lower(): v for k, v in (e.headers or {}).items()})


class SendFailed(Exception):
    """A message that did not get through.  ``definite``: the platform said no (it did
    not post it); otherwise every attempt failed without an answer."""

    def __init__(self, reason: str, *, definite: bool, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.definite = definite
        self.code = code


def _is_timeout(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError | socket.timeout):
        return True
    return isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, TimeoutError | socket.timeout)


@dataclass
class Sender:
    """One robot's connection: at most ``per_minute`` requests in any 60 seconds (and
    ``per_second`` in any second, where the platform says so), retries as configured."""

    platform: Platform
    outcome: Callable[[Platform, bytes], Outcome]
    timeout: float = 10.0
    attempts: int = 4
    backoff: float = 2.0
    backoff_max: float = 60.0
    rate_wait: float = 60.0
    post: Post = urllib_post
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    per_second: int | None = None
    sent: deque[float] = field(default_factory=deque)
    waits: list[tuple[str, float]] = field(default_factory=list)  # (why, seconds): what the run waited for

    def _pace(self) -> None:
        now = self.clock()
        while self.sent and now - self.sent[0] >= 60.0:
            self.sent.popleft()
        if len(self.sent) >= self.platform.per_minute:
            wait = 60.0 - (now - self.sent[0])
            if wait > 0:
                self._sleep("rate", wait)
            now = self.clock()
            while self.sent and now - self.sent[0] >= 60.0:
                self.sent.popleft()
        if self.per_second and len(self.sent) >= self.per_second:
            recent = self.sent[-self.per_second]
            if now - recent < 1.0:
                self._sleep("rate", 1.0 - (now - recent))

    def _sleep(self, why: str, seconds: float) -> None:
        self.waits.append((why, seconds))
        self.sleep(seconds)

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff * (2 ** (attempt - 1)), self.backoff_max)

    def send(self, prepare: Callable[[], tuple[str, bytes]]) -> Outcome:
        """Post one message (``prepare`` gives the address and body afresh for each
        attempt: a signature holds the time).  Returns the platform's answer or raises
        :class:`SendFailed`."""
        last = ""
        for attempt in range(1, self.attempts + 1):
            self._pace()
            url, data = prepare()
            self.sent.append(self.clock())
            wait = self._backoff(attempt)
            try:
                resp = self.post(url, data, self.timeout)
            except Exception as exc:  # noqa: BLE001 - every network failure is retried the same way
                if _is_timeout(exc):
                    last = f"等待答复超过 {self.timeout:g} 秒"
                elif isinstance(exc, urllib.error.URLError | OSError):
                    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
                    last = f"无法连接：{type(reason).__name__}"
                    if isinstance(reason, OSError) and reason.strerror:
                        last += f"（{reason.strerror}）"
                else:
                    raise
            else:
                if resp.status == 429:
                    last = "HTTP 429（发送太频繁）"
                    wait = _retry_after(resp.headers) or self.rate_wait
                elif resp.status >= 500:
                    last = f"HTTP {resp.status}"
                elif resp.status >= 400:
                    o = self.outcome(self.platform, resp.body)
                    detail = f"：{o.message}" if o.message else ""
                    raise SendFailed(f"HTTP {resp.status}{detail}", definite=True, code=o.code)
                else:
                    o = self.outcome(self.platform, resp.body)
                    if o.ok:
                        return o
                    if not o.rate_limited:
                        raise SendFailed(f"错误码 {o.code}：{o.message}" if o.code is not None else o.message,
                                         definite=True, code=o.code)
                    last = f"错误码 {o.code}（发送太频繁）：{o.message}"
                    wait = _retry_after(resp.headers) or self.rate_wait
            if attempt < self.attempts:
                self._sleep("retry", wait)
        raise SendFailed(f"尝试 {self.attempts} 次都没有成功，最后一次：{last}", definite=False)


def _retry_after(headers: dict[str, Any]) -> float | None:
    v = headers.get("retry-after")
    try:
        return max(0.0, float(v)) if v is not None else None
    except (TypeError, ValueError):
        return None


__all__ = ["Post", "Response", "SendFailed", "Sender", "urllib_post"]
