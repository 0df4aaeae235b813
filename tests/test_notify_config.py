"""``[notify]`` in tierctl.toml: the packaged defaults, robots and people checked when the
configuration loads (file and key named, never the webhook), names compared without
spaces, and what a robot is told (``recipients``, ``sections``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tierctl.config import Config
from tierctl.errors import ConfigError
from tierctl.notify import compose, parse
from tierctl.notify.config import mask_url, redact

HOOK = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc-SECRET-123"


def test_packaged_defaults_hold_the_platform_limits_and_the_escalation_chain():
    n = parse(None)
    assert n.robots == [] and n.people == {}
    w, d, f = n.platforms["wecom"], n.platforms["dingtalk"], n.platforms["feishu"]
    assert (w.max_bytes, w.per_minute, w.image_max_bytes, 45009 in w.rate_limited) == (4096, 20, 2 * 1024 * 1024, True)
    assert (d.per_minute, 130101 in d.rate_limited) == (20, True)
    assert (f.max_bytes, f.per_minute, f.per_second) == (20 * 1024, 100, 5)
    assert [(e.source, e.target, e.after_days, e.working_days) for e in n.escalation] == [
        ("SA 主管", "服务经理", 1, True), ("服务经理", "区域总监", 1, True)]
    assert (n.attempts, n.backoff, n.timeout) == (4, 2.0, 10.0)


def test_the_user_file_overrides_defaults_and_is_checked_by_config_load(tmp_path):
    p = tmp_path / "tierctl.toml"
    p.write_text(f'''
[notify]
max_messages = 3
[notify.platforms.dingtalk]
max_bytes = 18000
[[notify.robots]]
name = "售后群"
platform = "wecom"
webhook = "{HOOK}"
recipients = ["SA主管", "服务经理"]
[notify.people]
"SA 主管" = {{ mobile = "138 0000 0001", wecom = "zhou.sa" }}
''', encoding="utf-8")
    cfg = Config.load(p)
    from tierctl.notify import from_config

    n = from_config(cfg)
    assert n.max_messages == 3 and n.platforms["dingtalk"].max_bytes == 18000 and n.platforms["wecom"].max_bytes == 4096
    [r] = n.robots
    assert r.url(p) == HOOK and r.image == "trend" and r.covers("SA 主管") and not r.covers("区域总监")
    assert n.person("SA主管").mobile == "13800000001" and n.person("sa 主管").wecom == "zhou.sa"
    p.write_text('[[notify.robots]]\nname = "x"\nplatform = "wecom"\nwebhok = "typo"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        Config.load(p)
    assert str(p) in str(e.value) and "[notify.robots[0].webhook]" in str(e.value)


@pytest.mark.parametrize(("robot", "key", "words"), [
    ({"platform": "wecom", "webhook": HOOK.replace("https", "http")}, "webhook", "https://"),
    ({"platform": "wecom", "webhook": "not a url SECRET"}, "webhook", "https://"),
    ({"platform": "wecom", "webhook": HOOK, "colour": "red"}, "colour", "未知的项"),
    ({"platform": "feishu", "webhook": HOOK, "msg_type": "text"}, "msg_type", "post, interactive"),
    ({"platform": "dingtalk", "webhook": HOOK, "image": "trend"}, "image", "只有企业微信"),
    ({"platform": "wecom", "webhook": HOOK, "sections": ["alerts", "weather"]}, "sections[1]", "weather"),
    ({"platform": "dingtalk", "webhook": HOOK, "secret": "a", "secret_env": "B"}, "secret", "只写一个"),
])
def test_bad_robots_are_named_by_key_without_their_address(robot, key, words):
    with pytest.raises(ConfigError) as e:
        parse({"robots": [{"name": "群", **robot}]}, Path("tierctl.toml"))
    msg = str(e.value)
    assert f"tierctl.toml [notify.robots[0].{key}]" in msg and words in msg
    assert "SECRET" not in msg


def test_robot_names_are_unique_and_people_need_an_id():
    with pytest.raises(ConfigError, match=r"\[notify\.robots\[1\]\.name\].*重复"):
        parse({"robots": [{"name": "群", "platform": "wecom", "webhook": HOOK},
                          {"name": " 群", "platform": "wecom", "webhook": HOOK}]}, Path("t.toml"))
    with pytest.raises(ConfigError, match=r"\[notify\.people\.张三\].*至少要写一项"):
        parse({"people": {"张三": {}}}, Path("t.toml"))
    with pytest.raises(ConfigError, match=r"\[notify\.people\.张三\.wecom\]"):
        parse({"people": {"张三": {"wecom": "<@all>"}}}, Path("t.toml"))
    with pytest.raises(ConfigError, match=r"\[notify\.people\.张三\.phone\].*未知的项"):
        parse({"people": {"张三": {"phone": "138"}}}, Path("t.toml"))
    # loopback http is fine (a local test server); so is a webhook kept in an environment variable
    n = parse({"robots": [{"name": "a", "platform": "wecom", "webhook": "http://127.0.0.1:8080/x?key=1"},
                          {"name": "b", "platform": "dingtalk", "webhook_env": "DING_URL", "secret_env": "DING_SECRET"}]})
    assert [r.name for r in n.robots] == ["a", "b"]


def test_masking_keeps_only_scheme_and_host():
    assert mask_url(HOOK) == "https://qyapi.weixin.qq.com/***"
    assert mask_url("https://open.feishu.cn/open-apis/bot/v2/hook/tok-123") == "https://open.feishu.cn/***"
    text = f"failed: {HOOK} and key=abc-SECRET-123 and /open-apis/bot/v2/hook/tok-123"
    out = redact(text, [HOOK, "https://open.feishu.cn/open-apis/bot/v2/hook/tok-123"])
    assert "SECRET" not in out and "tok-123" not in out and out.startswith("failed: ***")


def digest() -> dict:
    alerts = [{"id": i, "customer_key": f"K{i}", "customer_id": f"C{i}", "name": f"客户{i}", "rule_id": r,
               "recipient": who, "reason": "等待已满", "fired_on": "2026-11-24", "since": None}
              for i, (r, who) in enumerate([("wait14", "SA 主管"), ("wait21", "服务经理"), ("wait28", "区域总监")], 1)]
    return {"date": "2026-11-24", "as_of": "2026-11-24", "lang": "zh", "centre": None, "crisis": None,
            "tiers": ["P0"], "counts": {"P0": 3}, "customers": 3, "previous": None, "alerts": alerts, "alerts_open": 3,
            "escalations": [{"id": 1, "alert_id": 1, "from": "SA 主管", "to": "服务经理", "after_days": 1,
                             "working_days": True, "customer_id": "C1", "name": "客户1", "reason": "等待已满"}],
            "overdue": [{"owner": "服务经理", "role": "服务经理", "count": 1, "more": 0,
                         "customers": [{"customer_id": "C1", "name": "客户1", "tier": "P0", "status": "逾期 1 小时"}]}],
            "warnings": []}


def test_a_robot_is_told_its_recipients_and_sections_only():
    n = parse({"robots": [
        {"name": "总监群", "platform": "wecom", "webhook": HOOK, "recipients": ["区域总监"],
         "sections": ["alerts", "escalations"]},
        {"name": "全部", "platform": "wecom", "webhook": HOOK}]})
    director, everyone = n.robots
    p = compose.plan(digest(), director, n, lambda _i: False)
    assert p.items == ["alert:3"]  # no summary, not the others' alerts, the escalation went to 服务经理, no tasks
    p = compose.plan(digest(), everyone, n, lambda _i: False)
    assert p.items == ["summary:2026-11-24", "alert:1", "alert:2", "alert:3", "escalation:1",
                       "overdue:2026-11-24:服务经理"]
    p = compose.plan(digest(), everyone, n, lambda i: i != "alert:2")
    assert p.items == ["alert:2"] and p.title == "配件短缺晨报 2026-11-24（补充）"
