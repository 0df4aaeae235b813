"""A local stand-in for the three group-robot platforms (used by tests/test_notify_*.py).

One threading ``http.server`` on 127.0.0.1 that answers as WeChat Work, DingTalk and
Feishu robots do: the request formats, the ``errcode``/``code`` bodies, the size limits
(an over-long WeChat Work markdown is refused with 40058), the signatures (DingTalk's
加签 in the address, Feishu's in the body: a wrong one is refused as the platforms refuse
it), and on request: HTTP 5xx, rate-limit answers, slow answers (a client timeout), or
holding a request until the test lets it go.  Nothing leaves the machine.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import write_table

WECOM_KEY = "wk-3f9a1c2e-secret-key"
DING_TOKEN = "dt-7c1d0e-access-token"
DING_SECRET = "SECd1n9-s3cr3t-value"
FEISHU_HOOK = "fs-b0c4-hook-token"
FEISHU_SECRET = "fs-s1gn-secret"
SECRETS = (WECOM_KEY, DING_TOKEN, DING_SECRET, FEISHU_HOOK, FEISHU_SECRET)

# -- a small shortage scenario, stored as `tierctl score` stores it -------------------------------
TZ = dt.timezone(dt.timedelta(hours=8))
D1, D2 = dt.date(2026, 11, 23), dt.date(2026, 11, 24)  # Monday, Tuesday
HEAD = ["客户编号", "客户姓名", "手机号", "登记日期", "用车场景", "服务顾问"]
ROWS = [["C001", "张先生", "13812340001", "2026-11-08", "通勤", "李娜"],
        ["C002", "李女士", "13812340002", "2026-11-01", "网约车", "李娜"],
        ["C003", "王先生", "13812340003", "2026-10-20", "通勤", ""],
        ["C004", "赵先生", "13812340004", "2026-11-20", "周末", "陈晨"]]
PLATFORMS = ("wecom", "dingtalk", "feishu")


def at(day: dt.date, hour: int = 9, minute: int = 30) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=TZ)


def write(path: Path, rows: list[list[object]]) -> Path:
    return write_table(path, HEAD, rows)


def run_day(store: Any, path: Path, day: dt.date) -> None:
    """What ``tierctl score`` stores, at library level (the run at 09:00)."""
    from tierctl import shortage
    from tierctl.daily import history as loop
    from tierctl.io.ingest import read_export

    model = shortage.load_model("rite")
    export = read_export(path, model.columns)
    prev, week = loop.previous_frames(store, model, day)
    result = shortage.score(export.frame, model, day, at(day, 9, 0), previous=prev, week_ago=week,
                            headers=export.headers, path=export.path)
    loop.record_run(store, result, shortage.crisis_level(result), source_name=path.name, source_hash="h")



@dataclass
class Request:
    platform: str
    path: str
    query: dict[str, str]
    body: dict[str, Any]
    raw: bytes
    answered: str = ""  # what the server answered: ok | error | rate | 5xx | slow | held


@dataclass
class Robots:
    """The server's state: every request, and the answers to give next (per platform, a
    list of actions taken in order; when empty, requests succeed)."""

    port: int = 0
    requests: list[Request] = field(default_factory=list)
    script: dict[str, list[Any]] = field(default_factory=lambda: {"wecom": [], "dingtalk": [], "feishu": []})
    fail_after: dict[str, int] = field(default_factory=dict)  # platform → accept this many, then answer 502
    held: threading.Event = field(default_factory=threading.Event)  # set: a held request arrived
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, platform: str) -> str:
        base = f"http://127.0.0.1:{self.port}"
        return {"wecom": f"{base}/cgi-bin/webhook/send?key={WECOM_KEY}",
                "dingtalk": f"{base}/robot/send?access_token={DING_TOKEN}",
                "feishu": f"{base}/open-apis/bot/v2/hook/{FEISHU_HOOK}"}[platform]

    def accepted(self, platform: str | None = None) -> list[dict[str, Any]]:
        """The bodies the platform accepted (posted in the group), in order."""
        return [r.body for r in self.requests if r.answered == "ok" and (platform is None or r.platform == platform)]

    def texts(self, platform: str = "wecom") -> list[str]:
        out = []
        for b in self.accepted(platform):
            if platform == "wecom" and b.get("msgtype") == "markdown":
                out.append(b["markdown"]["content"])
            elif platform == "dingtalk":
                out.append(b["markdown"]["text"])
            elif platform == "feishu":
                out.append(json.dumps(b, ensure_ascii=False))
        return out


def dingtalk_sign(secret: str, ts: str) -> str:
    mac = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def feishu_sign(secret: str, ts: str) -> str:
    mac = hmac.new(f"{ts}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def make_handler(state: Robots) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _answer(self, status: int, doc: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(doc).encode() if not isinstance(doc, bytes) else doc
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client gave up (timeout, killed)
                pass

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            u = urllib.parse.urlsplit(self.path)
            q = dict(urllib.parse.parse_qsl(u.query))
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            platform = ("wecom" if u.path.startswith("/cgi-bin/") else "dingtalk" if u.path.startswith("/robot/")
                        else "feishu" if u.path.startswith("/open-apis/") else "?")
            try:
                body = json.loads(raw.decode("utf-8"))
            except ValueError:
                body = {}
            req = Request(platform, u.path, q, body, raw)
            with state.lock:
                state.requests.append(req)
                action = state.script[platform].pop(0) if state.script.get(platform) else None
                ok_before = sum(1 for r in state.requests if r.platform == platform and r.answered == "ok")
            if self.headers.get("Content-Type", "").split(";")[0] != "application/json":
                req.answered = "error"
                return self._answer(400, {"errcode": 40001, "errmsg": "bad content type"})
            if platform in state.fail_after and ok_before >= state.fail_after[platform]:
                req.answered = "5xx"
                return self._answer(502, b"<html>bad gateway</html>")
            if action is not None and action[0] != "ok":  # ("ok",): answer as the platform would
                kind = action[0]
                if kind == "status":
                    req.answered = "5xx"
                    return self._answer(action[1], b"<html>server error</html>")
                if kind == "slow":
                    req.answered = "slow"
                    threading.Event().wait(action[1])
                    return self._answer(200, {"errcode": 0, "errmsg": "ok"})
                if kind == "hold":
                    req.answered = "held"
                    state.held.set()
                    state.release.wait(30)
                    return self._answer(200, {"errcode": 0, "errmsg": "ok"})
                if kind == "http429":
                    req.answered = "rate"
                    return self._answer(429, {"code": 9499, "msg": "Too Many Requests"}, {"Retry-After": str(action[1])})
                if kind == "code":  # an answer with this result code
                    req.answered = "rate" if action[3] else "error"
                    key, msg = ("code", "msg") if platform == "feishu" else ("errcode", "errmsg")
                    return self._answer(200, {key: action[1], msg: action[2]})
            problem = self._check(platform, u.path, q, body)
            if problem is not None:
                req.answered = "error"
                return self._answer(200, problem)
            req.answered = "ok"
            if platform == "feishu":
                return self._answer(200, {"code": 0, "msg": "success", "data": {}})
            return self._answer(200, {"errcode": 0, "errmsg": "ok"})

        def _check(self, platform: str, path: str, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any] | None:
            """What the real platform would refuse."""
            if platform == "wecom":
                if q.get("key") != WECOM_KEY:
                    return {"errcode": 93000, "errmsg": "invalid webhook url"}
                t = body.get("msgtype")
                if t == "markdown":
                    if len(body["markdown"]["content"].encode()) > 4096:
                        return {"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"}
                elif t == "text":
                    if not isinstance(body["text"].get("content"), str):
                        return {"errcode": 44004, "errmsg": "empty content"}
                elif t == "image":
                    data = base64.b64decode(body["image"]["base64"])
                    if hashlib.md5(data).hexdigest() != body["image"]["md5"]:  # noqa: S324
                        return {"errcode": 301019, "errmsg": "media md5 not match"}
                    if len(data) > 2 * 1024 * 1024:
                        return {"errcode": 40009, "errmsg": "invalid image size"}
                else:
                    return {"errcode": 40008, "errmsg": "invalid message type"}
                return None
            if platform == "dingtalk":
                if q.get("access_token") != DING_TOKEN:
                    return {"errcode": 300001, "errmsg": "token is not exist"}
                ts, sign = q.get("timestamp"), q.get("sign")
                if not ts or not sign or len(ts) != 13 or sign != dingtalk_sign(DING_SECRET, ts):
                    return {"errcode": 310000, "errmsg": "sign not match"}
                if body.get("msgtype") != "markdown" or not body["markdown"].get("title"):
                    return {"errcode": 40035, "errmsg": "missing markdown"}
                return None
            if platform == "feishu":
                if not path.endswith(FEISHU_HOOK):
                    return {"code": 19001, "msg": "param invalid: incoming webhook access token invalid"}
                ts, sign = body.get("timestamp"), body.get("sign")
                if not ts or len(str(ts)) != 10 or sign != feishu_sign(FEISHU_SECRET, str(ts)):
                    return {"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"}
                if len(json.dumps(body, ensure_ascii=False).encode()) > 20 * 1024:
                    return {"code": 9499, "msg": "request body too large"}
                if body.get("msg_type") not in ("post", "interactive"):
                    return {"code": 19002, "msg": "params error, msg_type need"}
                return None
            return {"errcode": 404, "errmsg": "no such robot"}

    return Handler


def start() -> tuple[Robots, ThreadingHTTPServer]:
    state = Robots()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    server.daemon_threads = True
    state.port = server.server_address[1]
    # a short poll: shutdown() at the end of each test waits for it (0.5 s by default)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-robots",
                     daemon=True).start()
    return state, server


class FakeTime:
    """``clock``/``sleep``/``wall`` that never wait: sleeping moves the clock on."""

    def __init__(self, start: float = 1_795_000_000.0) -> None:
        self.t = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.t

    def wall(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.t += s


def config_text(port_urls: dict[str, str], *, extra: str = "", wecom_image: str | None = None) -> str:
    """A tierctl.toml with one robot per platform pointing at the local server."""
    img = f'image = "{wecom_image}"\n' if wecom_image is not None else ""
    return f'''
[centre]
name = "浦东中心"

[[notify.robots]]
name = "售后群"
platform = "wecom"
webhook = "{port_urls['wecom']}"
{img}
[[notify.robots]]
name = "钉钉群"
platform = "dingtalk"
webhook = "{port_urls['dingtalk']}"
secret = "{DING_SECRET}"

[[notify.robots]]
name = "飞书群"
platform = "feishu"
webhook = "{port_urls['feishu']}"
secret = "{FEISHU_SECRET}"

[notify.people]
"SA主管" = {{ mobile = "13800000001", wecom = "zhou.sa", feishu = "ou_sa01" }}
"服务经理" = {{ mobile = "13800000002", wecom = "wang.m", feishu = "ou_mgr02" }}
"区域总监" = {{ mobile = "13800000003", feishu = "ou_dir03" }}
{extra}
'''


@pytest.fixture
def robots(monkeypatch):
    """The local robot server, started for one test (proxies off: 127.0.0.1 only)."""
    for v in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    state, server = start()
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()
