"""``tierctl.notify.deliver`` against a local stand-in for the three robot platforms
(tests/notify_robots.py, 127.0.0.1 only): the exact payloads each platform receives,
signatures the server checks, retries with backoff on 5xx and timeouts, the platforms'
rate-limit answers, errors with the platform's errmsg, the 20-a-minute pace, the
no-duplicate rule across re-runs and after a failure part-way, dry runs, and no secret in
anything returned."""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from pathlib import Path

import notify_robots as nr
import pytest

from tierctl.notify import parse
from tierctl.notify.core import deliver
from tierctl.store import Store
from tierctl.store import notify as sn

D1, D2, ROWS, PLATFORMS, at, run_day, write = nr.D1, nr.D2, nr.ROWS, nr.PLATFORMS, nr.at, nr.run_day, nr.write
robots = nr.robots  # the local robot server (a fixture)


@pytest.fixture
def store(tmp_path):
    s = Store.open(":memory:")
    run_day(s, write(tmp_path / "export.csv", ROWS), D1)
    yield s
    s.close()


def ncfg_for(state: nr.Robots, extra: str = "", **over):
    cfg = tomllib.loads(nr.config_text({k: state.url(k) for k in PLATFORMS}, extra=extra))
    n = parse(cfg["notify"], Path("tierctl.toml"))
    return dataclasses.replace(n, **over) if over else n


def send(store, ncfg, day=D1, now=None, ft=None, **kw):
    ft = ft or nr.FakeTime()
    rep = deliver(store, ncfg, day, now or at(day), centre="浦东中心", sleep=ft.sleep, clock=ft.clock, wall=ft.wall,
                  image_dir=Path("/nonexistent-out"), **kw)
    return rep, ft


# -- the exact payloads -------------------------------------------------------------------------
WECOM_D1 = """## 浦东中心 配件短缺晨报 2026-11-23
危机等级 **4 级 极度**：总部危机小组接管；开通 24 小时热线；最高资源与补偿权限；启动公关；法务待命
P0 0 位 · P1 2 位 · P2 1 位 · P3 1 位 · 共 4 位（首次评分）
未处理预警共 3 条（tierctl alerts 查看，tierctl alerts ack 编号 确认）
**新预警 3 条**
**区域总监** @区域总监（1 位）
- 王先生（C003）：等待已满 28 天（已等待 34 天） #3
**服务经理** <@wang.m>（1 位）
- 李女士（C002）：等待已满 21 天（已等待 22 天） #2
**SA 主管** <@zhou.sa>（1 位）
- 张先生（C001）：等待已满 14 天（已等待 15 天） #1"""


def test_first_run_posts_the_exact_payloads_each_platform_accepts(robots, store):
    rep, ft = send(store, ncfg_for(robots))
    assert rep["failures"] == [] and ft.sleeps == []
    assert [r.answered for r in robots.requests] == ["ok"] * 4  # wecom markdown + mention, dingtalk, feishu
    wecom = robots.accepted("wecom")
    # markdown cannot mention by mobile: 区域总监 (mobile only) is mentioned in a text message after it
    assert wecom == [{"msgtype": "markdown", "markdown": {"content": WECOM_D1}},
                     {"msgtype": "text", "text": {"content": "请以上负责人查看", "mentioned_mobile_list": ["13800000003"]}}]
    [ding] = robots.accepted("dingtalk")
    assert ding["msgtype"] == "markdown" and ding["markdown"]["title"] == "浦东中心 配件短缺晨报 2026-11-23"
    assert ding["markdown"]["text"] == WECOM_D1.replace("\n", "\n\n").replace(" <@wang.m>", " @13800000002").replace(
        " <@zhou.sa>", " @13800000001").replace(" @区域总监", " @13800000003")
    assert ding["at"] == {"atMobiles": ["13800000003", "13800000002", "13800000001"], "atUserIds": [],
                          "isAtAll": False}
    [req] = [r for r in robots.requests if r.platform == "dingtalk"]
    assert req.query["timestamp"] == str(int(ft.t * 1000)) and req.query["sign"] == nr.dingtalk_sign(nr.DING_SECRET,
                                                                                                     req.query["timestamp"])
    [fs] = robots.accepted("feishu")
    assert fs["timestamp"] == str(int(ft.t)) and fs["sign"] == nr.feishu_sign(nr.FEISHU_SECRET, fs["timestamp"])
    post = fs["content"]["post"]["zh_cn"]
    assert fs["msg_type"] == "post" and post["title"] == "浦东中心 配件短缺晨报 2026-11-23"
    assert post["content"][0] == [{"tag": "text", "text": "危机等级 "},
                                  {"tag": "text", "text": "4 级 极度", "style": ["bold"]},
                                  {"tag": "text", "text": "：总部危机小组接管；开通 24 小时热线；最高资源与补偿权限；启动公关；法务待命"}]
    assert post["content"][4] == [{"tag": "text", "text": "区域总监", "style": ["bold"]},
                                  {"tag": "at", "user_id": "ou_dir03"}, {"tag": "text", "text": "（1 位）"}]
    assert post["content"][-1] == [{"tag": "text", "text": "- 张先生（C001）：等待已满 14 天（已等待 15 天） #1"}]
    # each robot's record: the summary and the six alerts
    for r in ("售后群", "钉钉群", "飞书群"):
        log = sn.sent_log(store, r)
        assert sorted(log["item"]) == sorted(["summary:2026-11-23", *(f"alert:{i}" for i in range(1, 4))])
        assert set(log["status"]) == {"sent"}


def test_a_rerun_sends_nothing_and_the_next_day_only_what_is_new(robots, store, tmp_path):
    ncfg = ncfg_for(robots)
    send(store, ncfg)
    n = len(robots.requests)
    rep, _ = send(store, ncfg)
    assert len(robots.requests) == n  # nothing new: nothing sent
    assert all(r["messages"] == [] and r["already_sent"] == 4 for r in rep["robots"])
    # next day: a new customer past 14 days; yesterday's alerts unacknowledged → escalate; P1 first contacts overdue
    run_day(store, write(tmp_path / "d2.csv", [*ROWS, ["C005", "孙女士", "13812340005", "2026-11-10", "通勤", ""]]), D2)
    rep, _ = send(store, ncfg, D2)
    [new] = [a for a in rep["digest"]["alerts"]]
    assert new["customer_id"] == "C005" and new["recipient"] == "SA 主管"
    text = robots.texts("wecom")[-1]
    assert text.startswith("## 浦东中心 配件短缺晨报 2026-11-24\n")
    assert f"**新预警 1 条**\n**SA 主管** <@zhou.sa>（1 位）\n- 孙女士（C005）：等待已满 14 天（已等待 14 天） #{new['id']}" in text
    assert "#1\n" not in text and "#3\n" not in text.split("**超时未确认")[0]  # yesterday's alerts are not new again
    assert "**超时未确认，已升级 2 条**\n**服务经理** <@wang.m>（1 条）\n" in text
    assert "- 张先生（C001）：等待已满 14 天（已等待 15 天） #1，SA 主管 1 个工作日内未确认" in text
    assert ("**区域总监** @区域总监（1 条）\n- 李女士（C002）：等待已满 21 天（已等待 22 天） #2，服务经理 1 个工作日内未确认\n"
            "**逾期任务 3 项**") in text
    # overdue tasks per owner: the P2 customer's task goes to the advisor named in the export
    assert "**逾期任务 " in text and "**SA主管** <@zhou.sa>：2 项 — 李女士（C002）（P1，逾期 20 小时）、王先生（C003）（P1，逾期 20 小时）" in text
    assert "**李娜**：1 项 — 张先生（C001）（P2，逾期 0 小时）" in text
    again, _ = send(store, ncfg, D2)
    assert all(r["messages"] == [] for r in again["robots"])


# -- retries, rate limits, errors -----------------------------------------------------------------
def test_5xx_is_retried_with_backoff_through_the_injected_sleep(robots, store):
    robots.script["wecom"] += [("status", 500), ("status", 503)]
    rep, ft = send(store, ncfg_for(robots), robots=["售后群"])
    assert rep["failures"] == []
    assert [r.answered for r in robots.requests] == ["5xx", "5xx", "ok", "ok"]
    assert ft.sleeps == [2.0, 4.0]  # backoff_seconds × 2^(n-1)
    assert robots.texts("wecom") == [WECOM_D1]


@pytest.mark.parametrize(("platform", "robot", "answer", "wait"), [
    ("wecom", "售后群", ("code", 45009, "api freq out of limit", True), 60.0),
    ("dingtalk", "钉钉群", ("code", 130101, "send too fast, exceed 20 times per minute", True), 60.0),
    ("feishu", "飞书群", ("code", 11232, "frequency limited psm", True), 60.0),
    ("feishu", "飞书群", ("http429", 7), 7.0),
])
def test_a_rate_limited_answer_waits_then_retries(robots, store, platform, robot, answer, wait):
    robots.script[platform].append(answer)
    rep, ft = send(store, ncfg_for(robots), robots=[robot])
    assert rep["failures"] == []
    assert [r.answered for r in robots.requests if r.platform == platform][:2] == ["rate", "ok"]
    assert ft.sleeps == [wait]
    assert rep["robots"][0]["waits"] == [{"why": "retry", "seconds": wait}]


def test_an_error_code_fails_with_the_platforms_errmsg_without_retrying_and_is_sent_next_time(robots, store):
    robots.script["dingtalk"].append(("code", 310000, "keywords not in content", False))
    ncfg = ncfg_for(robots)
    rep, ft = send(store, ncfg)
    assert [r.answered for r in robots.requests if r.platform == "dingtalk"] == ["error"]
    assert ft.sleeps == []
    [f] = rep["failures"]
    assert f["robot"] == "钉钉群" and f["reason"] == "错误码 310000：keywords not in content" and f["definite"]
    assert [r["error"] for r in rep["robots"]] == [None, "第 1 条消息发送失败：错误码 310000：keywords not in content", None]
    assert len(sn.sent_log(store, "钉钉群")) == 0  # the refused message is not recorded
    rep, _ = send(store, ncfg)
    assert rep["failures"] == [] and len(robots.accepted("dingtalk")) == 1
    assert [len(r["messages"]) for r in rep["robots"]] == [0, 1, 0]


def test_a_slow_answer_times_out_and_is_retried(robots, store):
    robots.script["wecom"].append(("slow", 2.0))
    rep, ft = send(store, ncfg_for(robots, timeout=0.2), robots=["售后群"])
    assert rep["failures"] == []
    assert [r.answered for r in robots.requests][:2] == ["slow", "ok"]
    assert ft.sleeps == [2.0]
    assert robots.texts("wecom") == [WECOM_D1]


def test_attempts_are_bounded_and_the_message_goes_out_with_the_next_run(robots, store):
    robots.fail_after["wecom"] = 0
    ncfg = ncfg_for(robots)
    rep, ft = send(store, ncfg, robots=["售后群"])
    assert len(robots.requests) == 4 and ft.sleeps == [2.0, 4.0, 8.0]
    [f] = rep["failures"]
    assert f["reason"] == "尝试 4 次都没有成功，最后一次：HTTP 502" and not f["definite"]
    assert len(sn.sent_log(store, "售后群")) == 0
    del robots.fail_after["wecom"]
    rep, _ = send(store, ncfg, robots=["售后群"])
    assert rep["failures"] == [] and robots.texts("wecom") == [WECOM_D1]


def big_day(store: Store, tmp_path: Path, n: int = 60) -> None:
    rows = [[f"C{i:03d}", f"客户{i:03d}", f"139{i:08d}", "2026-11-05", "通勤", ""] for i in range(n)]
    run_day(store, write(tmp_path / "big.csv", rows), D1)


def test_at_most_20_messages_a_minute_per_robot(robots, tmp_path):
    store = Store.open(":memory:")
    big_day(store, tmp_path)
    ncfg = ncfg_for(robots, max_messages=50, list_per_recipient=100)
    ncfg.platforms["wecom"] = dataclasses.replace(ncfg.platforms["wecom"], max_bytes=300)
    rep, ft = send(store, ncfg, robots=["售后群"])
    sent = [r for r in robots.requests if r.answered == "ok"]
    assert rep["failures"] == [] and len(sent) > 20
    # the fake clock stands still between requests: the 21st waits out the minute, once
    assert ft.sleeps == [60.0] and rep["robots"][0]["waits"] == [{"why": "rate", "seconds": 60.0}]
    assert all(len(t.encode()) <= 300 for t in robots.texts("wecom"))


def test_the_server_failing_after_the_first_message_a_rerun_sends_only_the_rest(robots, tmp_path):
    store = Store.open(":memory:")
    big_day(store, tmp_path, 30)
    ncfg = ncfg_for(robots, max_messages=50, list_per_recipient=100)
    ncfg.platforms["dingtalk"] = dataclasses.replace(ncfg.platforms["dingtalk"], max_bytes=900)
    robots.fail_after["dingtalk"] = 1
    first, _ = send(store, ncfg, robots=["钉钉群"])
    msgs = first["robots"][0]["messages"]
    assert [m["status"] for m in msgs] == ["sent", "failed"] and first["failures"]
    del robots.fail_after["dingtalk"]
    second, _ = send(store, ncfg, robots=["钉钉群"])
    again = second["robots"][0]["messages"]
    assert again and all(m["status"] == "sent" for m in again)
    got = [i for m in [msgs[0], *again] for i in m["items"]]
    everything = ["summary:2026-11-23", *(f"alert:{a['id']}" for a in first["digest"]["alerts"])]
    assert sorted(got) == sorted(everything)  # every item once, none twice
    texts = robots.texts("dingtalk")
    assert len(texts) == 1 + len(again)
    ids = [m for t in texts for m in re.findall(r"#(\d+)", t)]
    assert sorted(ids, key=int) == [str(a["id"]) for a in sorted(first["digest"]["alerts"], key=lambda a: a["id"])]
    assert second["robots"][0]["already_sent"] == len(msgs[0]["items"])


# -- dry run, secrets ------------------------------------------------------------------------------
def test_dry_run_sends_and_stores_nothing_and_shows_masked_payloads(robots, store, tmp_path):
    run_day(store, write(tmp_path / "d2.csv", ROWS), D2)
    rep, _ = send(store, ncfg_for(robots), D2, dry_run=True)
    assert robots.requests == []
    assert len(sn.sent_log(store)) == 0 and len(sn.escalations(store, "shortage")) == 0
    assert len(rep["escalated"]) == 2 and all(e["id"] is None for e in rep["escalated"])
    wecom = rep["robots"][0]["messages"][0]
    assert wecom["status"] == "preview" and wecom["payloads"][0]["url"] == f"http://127.0.0.1:{robots.port}/***"
    assert "**超时未确认，已升级 2 条**" in wecom["payloads"][0]["body"]["markdown"]["content"]
    ding = rep["robots"][1]["messages"][0]["payloads"][0]
    assert ding["url"] == f"http://127.0.0.1:{robots.port}/***&timestamp=***&sign=***"
    fs = rep["robots"][2]["messages"][0]["payloads"][0]["body"]
    assert fs["timestamp"] == "***" and fs["sign"] == "***"
    dumped = json.dumps(rep, ensure_ascii=False, default=str)
    assert not any(s in dumped for s in nr.SECRETS)


def test_no_secret_in_errors_even_when_the_platform_echoes_it(robots, store):
    robots.script["wecom"].append(("code", 93000, f"invalid webhook url, hint: [key={nr.WECOM_KEY}]", False))
    rep, _ = send(store, ncfg_for(robots))
    [f] = rep["failures"]
    assert f["reason"] == "错误码 93000：invalid webhook url, hint: [key=***]"
    dumped = json.dumps(rep, ensure_ascii=False, default=str)
    assert not any(s in dumped for s in nr.SECRETS)


def test_webhook_from_an_environment_variable(robots, store, monkeypatch):
    extra = '''
[[notify.robots]]
name = "环境变量群"
platform = "wecom"
webhook_env = "TIERCTL_TEST_WECOM"
'''
    ncfg = ncfg_for(robots, extra=extra)
    from tierctl.errors import ConfigError

    monkeypatch.delenv("TIERCTL_TEST_WECOM", raising=False)
    with pytest.raises(ConfigError, match="TIERCTL_TEST_WECOM"):
        send(store, ncfg, robots=["环境变量群"])
    monkeypatch.setenv("TIERCTL_TEST_WECOM", robots.url("wecom"))
    rep, _ = send(store, ncfg, robots=["环境变量群"])
    assert rep["failures"] == [] and robots.texts("wecom") == [WECOM_D1]
    assert nr.WECOM_KEY not in json.dumps(rep, ensure_ascii=False, default=str)


def test_the_dashboard_png_goes_to_wecom_as_an_image_once(robots, store, tmp_path):
    import base64
    import hashlib

    png = tmp_path / "out" / "2026-11-23" / "trend.png"
    png.parent.mkdir(parents=True)
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40)
    ncfg = ncfg_for(robots)
    ft = nr.FakeTime()
    kw = dict(centre="浦东中心", sleep=ft.sleep, clock=ft.clock, wall=ft.wall, image_dir=tmp_path / "out",
              robots=["售后群"])
    rep = deliver(store, ncfg, D1, at(D1), **kw)
    assert rep["robots"][0]["image"]["status"] == "sent"
    img = robots.accepted("wecom")[-1]
    assert img == {"msgtype": "image", "image": {"base64": base64.b64encode(png.read_bytes()).decode(),
                                                  "md5": hashlib.md5(png.read_bytes()).hexdigest()}}  # noqa: S324
    n = len(robots.requests)
    rep = deliver(store, ncfg, D1, at(D1), **kw)
    assert len(robots.requests) == n and rep["robots"][0]["image"]["status"] == "already_sent"
    # over the platform's 2 MB: not sent, said so
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + b"0" * (2 * 1024 * 1024 + 1))
    rep = deliver(store, ncfg, D1, at(D1), image=big, **kw)
    assert rep["robots"][0]["image"]["status"] == "too_large" and len(robots.requests) == n


def test_pacing_per_second_and_per_minute_on_the_injected_clock():
    """Feishu: at most 5 requests in any second (and 100 a minute); the clock is fake."""
    from tierctl.notify import feishu
    from tierctl.notify.transport import Response, Sender

    plat = parse(None).platforms["feishu"]
    ft = nr.FakeTime()
    at_: list[float] = []

    def post(url, data, timeout):
        at_.append(ft.t)
        ft.t += 0.01  # each request takes 10 ms
        return Response(200, b'{"code":0,"msg":"success"}')

    s = Sender(plat, feishu.outcome, post=post, sleep=ft.sleep, clock=ft.clock, per_second=plat.per_second)
    for _ in range(12):
        s.send(lambda: ("http://127.0.0.1/x", b"{}"))
    assert all(at_[i + 5] - at_[i] >= 1.0 for i in range(len(at_) - 5))
    assert len(ft.sleeps) == 2 and all(w == "rate" for w, _ in s.waits)
