"""The three platforms' message formats, without a network: size limits and splitting
(WeChat Work's 4096 bytes of UTF-8, Feishu's 20 KB body), "另有 N 位" trimming and the
cap on messages, signatures (DingTalk 加签, Feishu), mentions, and customer data that
cannot format a message or mention anyone."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import re
import urllib.parse
from pathlib import Path

import pytest

from tierctl.notify import compose, dingtalk, feishu, parse, wecom
from tierctl.notify.message import AT, B, Line, T, pack

PEOPLE = {"people": {"SA主管": {"mobile": "13800000001", "wecom": "zhou.sa", "dingtalk": "ding01", "feishu": "ou_sa01"},
                     "服务经理": {"mobile": "13800000002"},
                     "李娜": {"wecom": "li.na", "feishu": "ou_lina"}}}


def cfg(**over):
    n = parse({**PEOPLE, "robots": [
        {"name": "w", "platform": "wecom", "webhook": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"},
        {"name": "d", "platform": "dingtalk", "webhook": "https://oapi.dingtalk.com/robot/send?access_token=t",
         "secret": "SECx"},
        {"name": "f", "platform": "feishu", "webhook": "https://open.feishu.cn/open-apis/bot/v2/hook/h"},
        {"name": "fi", "platform": "feishu", "msg_type": "interactive",
         "webhook": "https://open.feishu.cn/open-apis/bot/v2/hook/h2"}]}, Path("tierctl.toml"))
    return dataclasses.replace(n, **over) if over else n


def digest(n_alerts: int, *, name: str = "客户", reason: str = "等待已满 14 天（已等待 15 天）") -> dict:
    return {"date": "2026-11-24", "as_of": "2026-11-24", "lang": "zh", "centre": None,
            "crisis": {"level": 3, "color": "orange", "label": "高度", "response": "区域经理介入"},
            "tiers": ["P0", "P1", "P2", "P3"], "counts": {"P0": 2, "P1": 5, "P2": 3, "P3": 0}, "customers": 10,
            "previous": {"as_of": "2026-11-23", "counts": {"P0": 1, "P1": 6, "P2": 3, "P3": 0}},
            "alerts": [{"id": i + 1, "customer_key": f"K{i}", "customer_id": f"C{i:04d}", "name": f"{name}{i}",
                        "rule_id": "wait14", "recipient": "SA 主管", "reason": reason, "fired_on": "2026-11-24",
                        "since": None} for i in range(n_alerts)],
            "alerts_open": n_alerts, "escalations": [], "overdue": [], "warnings": []}


def renderer(platform: str, n, name: str | None = None):
    from tierctl.notify.core import _renderer

    robot = next(r for r in n.robots if r.name == (name or platform[0]))
    return _renderer(robot, n, "zh")


def messages(d: dict, n, robot_name: str):
    robot = next(r for r in n.robots if r.name == robot_name)
    p = compose.plan(d, robot, n, lambda _i: False)
    r = renderer(robot.platform, n, robot_name)
    plat = n.platforms[robot.platform]
    return p, r, pack(p.blocks, r, limit=plat.max_bytes, max_messages=n.max_messages, title=p.title_for("zh"),
                      overflow=p.overflow("zh"))


def test_wecom_splits_at_4096_bytes_of_utf8_repeating_the_recipient_as_continued():
    n = cfg(list_per_recipient=10_000, max_messages=1000)
    d = digest(300, name="欧阳娜娜" * 3)
    p, r, msgs = messages(d, n, "w")
    assert len(msgs) > 3
    contents = [r.bodies(m.title, m.lines)[0]["markdown"]["content"] for m in msgs]
    assert all(len(c.encode("utf-8")) <= 4096 for c in contents)
    assert max(len(c.encode("utf-8")) for c in contents) > 3800  # filled, not split early
    # every alert exactly once, in order
    ids = [int(x) for c in contents for x in re.findall(r" #(\d+)$", c, flags=re.M)]
    assert ids == list(range(1, 301))
    assert contents[0].startswith(f"## 配件短缺晨报 2026-11-24（1/{len(msgs)}）\n危机等级 **3 级 高度**：区域经理介入\n"
                                  "P0 2 位（+1） · P1 5 位（−1） · P2 3 位 · P3 0 位 · 共 10 位（较 2026-11-23）\n")
    assert "**新预警 300 条**\n**SA 主管** <@zhou.sa>（300 位）\n- " in contents[0]
    for i, c in enumerate(contents[1:], 2):
        assert c.startswith(f"## 配件短缺晨报 2026-11-24（{i}/{len(msgs)}）\n**SA 主管**（续）\n- ")
    # what is recorded per message: the items it carries, together every item once
    items = [i for m in msgs for i in m.items]
    assert sorted(items) == sorted(p.items) and len(items) == len(set(items)) == 301


def test_the_list_is_trimmed_with_another_n_and_the_messages_capped():
    n = cfg(list_per_recipient=20)
    p, r, msgs = messages(digest(300), n, "w")
    [m] = msgs
    text = r.bodies(m.title, m.lines)[0]["markdown"]["content"]
    assert text.endswith("\n- … 另有 280 位（tierctl alerts 查看）")
    assert len(re.findall(r" #\d+$", text, flags=re.M)) == 20
    assert sorted(m.items) == sorted(p.items)  # the 280 are told as a count: recorded as sent with it
    # at most max_messages: the rest summed up in the last one
    n = cfg(list_per_recipient=10_000, max_messages=2)
    p, r, msgs = messages(digest(300), n, "w")
    assert len(msgs) == 2
    last = r.bodies(msgs[-1].title, msgs[-1].lines)[0]["markdown"]["content"]
    shown = len(re.findall(r" #\d+$", "\n".join(r.bodies(m.title, m.lines)[0]["markdown"]["content"] for m in msgs),
                           flags=re.M))
    assert last.endswith(f"… 另有 {300 - shown} 项未列出（tierctl alerts、tierctl tasks 查看）")
    assert len(last.encode()) <= 4096
    assert sorted(i for m in msgs for i in m.items) == sorted(p.items)


def test_a_single_overlong_line_is_cut_to_fit():
    n = cfg()
    n.platforms["wecom"] = dataclasses.replace(n.platforms["wecom"], max_bytes=300)
    p, r, msgs = messages(digest(1, reason="等" * 500), n, "w")
    assert all(r.size(m.title, m.lines) <= 300 for m in msgs)
    assert "…" in r.bodies(msgs[-1].title, msgs[-1].lines)[0]["markdown"]["content"]
    assert sorted(i for m in msgs for i in m.items) == sorted(p.items)


def test_feishu_bodies_stay_under_20_kb_with_the_signature():
    n = cfg(list_per_recipient=10_000, max_messages=1000)
    p, r, msgs = messages(digest(400, name="欧阳娜娜" * 3), n, "f")
    assert len(msgs) > 1
    for m in msgs:
        [body] = r.bodies(m.title, m.lines, p.color)
        _, data = feishu.prepare("https://x", body, "secret", lambda: 1_795_000_000.0)
        assert len(data) <= 20 * 1024
        assert json.loads(data)["msg_type"] == "post"


def test_dingtalk_signature_is_the_documented_scheme():
    secret, ts = "SEC0123456789abcdef", 1_795_000_000_123
    expected = urllib.parse.quote_plus(base64.b64encode(
        hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()).decode())
    assert dingtalk.sign(secret, ts) == expected
    url, data = dingtalk.prepare("https://oapi.dingtalk.com/robot/send?access_token=abc", {"msgtype": "markdown"},
                                 secret, lambda: ts / 1000)
    assert url == f"https://oapi.dingtalk.com/robot/send?access_token=abc&timestamp={ts}&sign={expected}"
    assert json.loads(data) == {"msgtype": "markdown"}
    # without a secret the address is used as it is
    assert dingtalk.prepare("https://h/robot/send?access_token=abc", {}, None, lambda: 1.0)[0] == \
        "https://h/robot/send?access_token=abc"


def test_feishu_signature_is_its_own_scheme():
    secret, ts = "fs-secret", 1_795_000_000
    expected = base64.b64encode(hmac.new(f"{ts}\n{secret}".encode(), b"", hashlib.sha256).digest()).decode()
    assert feishu.sign(secret, ts) == expected
    url, data = feishu.prepare("https://open.feishu.cn/open-apis/bot/v2/hook/h", {"msg_type": "post"}, secret,
                               lambda: ts + 0.7)
    assert json.loads(data) == {"timestamp": str(ts), "sign": expected, "msg_type": "post"}
    assert "sign" not in json.loads(feishu.prepare("u", {"msg_type": "post"}, None, lambda: 1.0)[1])


def test_mentions_on_each_platform():
    line = [Line([B("SA 主管"), AT("SA 主管"), T("（1 位）")]), Line([B("服务经理"), AT("服务经理")]),
            Line([B("张三"), AT("张三", "李娜")])]  # 张三 is unknown: their role's entry
    n = cfg()
    w = renderer("wecom", n)
    body, mention = w.bodies("t", line)
    assert body["markdown"]["content"] == "## t\n**SA 主管** <@zhou.sa>（1 位）\n**服务经理** @服务经理\n**张三** <@li.na>"
    assert mention == {"msgtype": "text", "text": {"content": "请以上负责人查看", "mentioned_mobile_list": ["13800000002"]}}
    [d] = renderer("dingtalk", n).bodies("t", line)
    assert d["markdown"]["text"] == "## t\n\n**SA 主管** @13800000001（1 位）\n\n**服务经理** @13800000002\n\n**张三**"
    assert d["at"] == {"atMobiles": ["13800000001", "13800000002"], "atUserIds": [], "isAtAll": False}
    [f] = renderer("feishu", n).bodies("t", line)
    assert f["content"]["post"]["zh_cn"]["content"] == [
        [{"tag": "text", "text": "SA 主管", "style": ["bold"]}, {"tag": "at", "user_id": "ou_sa01"},
         {"tag": "text", "text": "（1 位）"}],
        [{"tag": "text", "text": "服务经理", "style": ["bold"]}],
        [{"tag": "text", "text": "张三", "style": ["bold"]}, {"tag": "at", "user_id": "ou_lina"}]]
    [fi] = renderer("feishu", n, "fi").bodies("t", line, "red")
    assert fi["card"]["header"] == {"title": {"tag": "plain_text", "content": "t"}, "template": "red"}
    assert fi["card"]["elements"][0]["text"]["content"] == (
        "**SA 主管** <at id=ou_sa01></at>（1 位）\n**服务经理**\n**张三** <at id=ou_lina></at>")


@pytest.mark.parametrize("platform", ["wecom", "dingtalk", "fi"])
def test_customer_data_cannot_format_the_message_or_mention_anyone(platform):
    evil = "<@all>**粗**[链接](http://x)\n## 标题 <at id=all></at> `code`"
    d = digest(1, name=evil)
    n = cfg()
    name = {"wecom": "w", "dingtalk": "d", "fi": "fi"}[platform]
    _, r, [m] = messages(d, n, name)
    [body, *_] = r.bodies(m.title, m.lines, "red")
    text = json.dumps(body, ensure_ascii=False)
    for bad in ("<@all>", "<at id=all>", "**粗**", "[链接]", "`code`", "\\n## 标题"):
        assert bad not in text
    assert "＜@all＞＊＊粗＊＊［链接］(http://x) ## 标题 ＜at id=all＞＜/at＞ ｀code｀0" in text
    if platform == "dingtalk":
        assert body["at"]["isAtAll"] is False


def test_feishu_post_keeps_customer_text_as_plain_text_elements():
    d = digest(1, name="<at user_id=\"all\">所有人</at>")
    _, r, [m] = messages(d, cfg(), "f")
    [body] = r.bodies(m.title, m.lines)
    paras = body["content"]["post"]["zh_cn"]["content"]
    assert paras[-1] == [{"tag": "text", "text": "- <at user_id=\"all\">所有人</at>0（C0000）：等待已满 14 天（已等待 15 天） #1"}]
    assert not any(el.get("tag") == "at" and el.get("user_id") == "all" for p in paras for el in p)


def test_wecom_image_message_carries_base64_and_md5():
    data = b"\x89PNG\r\n\x1a\n" + b"x" * 100
    assert wecom.image_body(data) == {"msgtype": "image", "image": {
        "base64": base64.b64encode(data).decode(), "md5": hashlib.md5(data).hexdigest()}}  # noqa: S324


def test_outcomes_read_each_platforms_answer():
    n = cfg()
    w, f = n.platforms["wecom"], n.platforms["feishu"]
    assert wecom.outcome(w, b'{"errcode":0,"errmsg":"ok"}').ok
    o = wecom.outcome(w, b'{"errcode":45009,"errmsg":"api freq out of limit"}')
    assert not o.ok and o.rate_limited and o.code == 45009 and o.message == "api freq out of limit"
    o = dingtalk.outcome(n.platforms["dingtalk"], b'{"errcode":130101,"errmsg":"send too fast"}')
    assert o.rate_limited
    assert feishu.outcome(f, b'{"code":0,"msg":"success","data":{}}').ok
    assert feishu.outcome(f, b'{"StatusCode":0,"StatusMessage":"success"}').ok
    o = feishu.outcome(f, b'{"code":19021,"msg":"sign match fail"}')
    assert not o.ok and not o.rate_limited and o.code == 19021
    assert not wecom.outcome(w, b"<html>gateway</html>").ok


def test_the_message_in_english():
    d = {**digest(2), "lang": "en", "centre": "Pudong"}
    d["crisis"] = {**d["crisis"], "label": "high", "response": "Regional manager steps in"}
    n = cfg()
    robot = next(r for r in n.robots if r.name == "w")
    p = compose.plan(d, robot, n, lambda _i: False)
    from tierctl.notify.core import _renderer

    r = _renderer(robot, n, "en")
    [m] = pack(p.blocks, r, limit=4096, max_messages=5, title=p.title_for("en"), overflow=p.overflow("en"))
    body, *_ = r.bodies(m.title, m.lines)
    assert body["markdown"]["content"] == (
        "## Pudong parts-shortage morning report 2026-11-24\n"
        "Crisis level **3 high**: Regional manager steps in\n"
        "P0 2 (+1) · P1 5 (−1) · P2 3 · P3 0 · 10 in all (vs 2026-11-23)\n"
        "2 open alerts (tierctl alerts lists them; tierctl alerts ack ID acknowledges)\n"
        "**2 new alerts**\n"
        "**SA 主管** <@zhou.sa> (2)\n"
        "- 客户0（C0000）: 等待已满 14 天（已等待 15 天） #1\n"
        "- 客户1（C0001）: 等待已满 14 天（已等待 15 天） #2")
