"""``tierctl notify`` and ``tierctl score --notify`` on the command line, against the local
robot server: exit codes, the dry run's payloads (addresses masked, nothing written),
"nothing new" on a re-run, failures without secrets, the configuration checked when it
loads, escalations in ``tierctl alerts``, and a ``notify`` process killed mid-run whose
re-run sends only what was not sent."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import notify_robots as nr
import pytest
from conftest import cli, isolate

from tierctl.store import Store
from tierctl.store import notify as sn

robots = nr.robots  # the local robot server (a fixture)
TIERCTL = str(Path(sys.executable).parent / "tierctl")
NOW1 = "2026-11-23T09:30:00+08:00"
NOW2 = "2026-11-24T09:30:00+08:00"


@pytest.fixture
def env(tmp_path, monkeypatch, robots):
    """A working folder whose tierctl.toml points at the local robots; the database by TIERCTL_DB."""
    isolate(monkeypatch, tmp_path, columns="200")
    (tmp_path / "tierctl.toml").write_text(nr.config_text({k: robots.url(k) for k in nr.PLATFORMS}), encoding="utf-8")
    nr.write(tmp_path / "export.csv", nr.ROWS)
    return tmp_path


def score(capsys, day: str, now: str, *extra: str) -> tuple[int, str, str]:
    return cli(capsys, "score", "export.csv", "--as-of", day, "--now", now, "--format", "json", *extra)


def no_secret(*texts: str) -> bool:
    return not any(s in t for t in texts for s in nr.SECRETS)


def test_help_texts(capsys):
    code, out, _ = cli(capsys, "notify", "--help")
    assert code == 0 and "群机器人" in out and "--dry-run" in out and "--resend-unconfirmed" in out
    code, out, _ = cli(capsys, "score", "--help")
    assert code == 0 and "--notify" in out


def test_dry_run_prints_the_payloads_masked_and_writes_nothing(env, capsys, robots):
    assert score(capsys, "2026-11-23", "2026-11-23T09:00:00+08:00")[0] == 0
    code, out, err = cli(capsys, "notify", "--date", "2026-11-23", "--now", NOW1, "--dry-run")
    assert code == 0, err
    assert robots.requests == []
    assert f"# 售后群 · 第 1/1 条 · 693 字节 · POST http://127.0.0.1:{robots.port}/***\n" in out
    assert re.search(rf"# 钉钉群 · 第 1/1 条 · \d+ 字节 · POST http://127\.0\.0\.1:{robots.port}/\*\*\*&timestamp=\*\*\*&sign=\*\*\*\n",
                     out)
    first = out.split("\n", 1)[1].split("\n# ", 1)[0]
    assert json.loads(first)["markdown"]["content"].startswith("## 浦东中心 配件短缺晨报 2026-11-23\n危机等级 **4 级 极度**")
    assert "售后群（企业微信）：预览 1 条消息（--dry-run：不发送、不记录）" in err
    assert no_secret(out, err)
    with Store.open(env / "store.db") as s:
        assert len(sn.sent_log(s)) == 0


def test_notify_sends_and_a_rerun_has_nothing_new(env, capsys, robots):
    assert score(capsys, "2026-11-23", "2026-11-23T09:00:00+08:00")[0] == 0
    code, out, err = cli(capsys, "notify", "--date", "2026-11-23", "--now", NOW1)
    assert code == 0, err
    assert out == ""
    for line in ("售后群（企业微信）：已发送 1 条消息（4 项）", "钉钉群（钉钉）：已发送 1 条消息（4 项）",
                 "飞书群（飞书）：已发送 1 条消息（4 项）"):
        assert line in err
    assert len(robots.accepted()) == 4
    code, out, err = cli(capsys, "notify", "--date", "2026-11-23", "--now", NOW1, "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert [r["already_sent"] for r in doc["robots"]] == [4, 4, 4] and len(robots.accepted()) == 4
    assert no_secret(out)
    code, _, err = cli(capsys, "notify", "--date", "2026-11-23", "--now", NOW1, "--robot", "钉钉群")
    assert code == 0 and "钉钉群（钉钉）：没有新内容（今天的 4 项都已发送过）" in err and "售后群" not in err


def test_a_refusing_platform_exits_1_naming_the_robot_without_secrets(env, capsys, robots):
    assert score(capsys, "2026-11-23", "2026-11-23T09:00:00+08:00")[0] == 0
    robots.script["wecom"].append(("code", 93000, f"invalid webhook url [key={nr.WECOM_KEY}]", False))
    code, out, err = cli(capsys, "notify", "--date", "2026-11-23", "--now", NOW1)
    assert code == 1
    assert "售后群（企业微信）：第 1 条消息发送失败：错误码 93000：invalid webhook url [key=***]" in err
    assert "有机器人没有发送成功：售后群" in err and "钉钉群（钉钉）：已发送 1 条消息" in err
    assert no_secret(out, err)
    code, _, err = cli(capsys, "notify", "--date", "2026-11-23", "--now", NOW1)
    assert code == 0 and "售后群（企业微信）：已发送 1 条消息（4 项）" in err and "钉钉群（钉钉）：没有新内容" in err


def test_score_notify_tells_the_robots_about_the_run_just_stored(env, capsys, robots):
    code, out, err = score(capsys, "2026-11-23", "2026-11-23T09:00:00+08:00", "--notify")
    assert code == 0, err
    doc = json.loads(out)
    assert [r["items_sent"] for r in doc["notify"]["robots"]] == [4, 4, 4]
    assert len(robots.accepted("wecom")) == 2 and no_secret(out, err)
    code, _, err = cli(capsys, "score", "export.csv", "--as-of", "2026-11-23", "--dry-run", "--notify")
    assert code == 2 and "tierctl notify --dry-run" in err


def test_escalations_show_in_alerts_and_in_the_message(env, capsys, robots):
    assert score(capsys, "2026-11-23", "2026-11-23T09:00:00+08:00", "--notify")[0] == 0
    assert score(capsys, "2026-11-24", "2026-11-24T09:00:00+08:00")[0] == 0
    code, _, err = cli(capsys, "notify", "--date", "2026-11-24", "--now", NOW2, "--robot", "售后群")
    assert code == 0, err
    assert "已升级预警 #1：SA 主管 → 服务经理（1 个工作日内未确认）" in err
    assert "**超时未确认，已升级 2 条**" in robots.texts("wecom")[-1]
    code, out, _ = cli(capsys, "alerts")
    assert code == 0 and "超时升级" in out and "→ 服务经理（11-24 09:30）" in out and "→ 区域总监" in out
    code, out, _ = cli(capsys, "alerts", "--format", "json")
    esc = {a["id"]: a["escalated_to"] for a in json.loads(out)["alerts"]}
    assert esc == {1: "服务经理", 2: "区域总监", 3: None}


@pytest.mark.parametrize(("robot", "key", "words"), [
    ('name = "群"\nplatform = "wecom"\nwebhook = "http://example.com/cgi-bin/webhook/send?key=TOPSECRET"',
     "notify.robots[0].webhook", "https://"),
    ('name = "群"\nplatform = "wechat"\nwebhook = "https://qyapi.weixin.qq.com/x?key=TOPSECRET"',
     "notify.robots[0].platform", "wecom, dingtalk, feishu"),
    ('name = "群"\nplatform = "wecom"\nwebhook = "https://qyapi.weixin.qq.com/x?key=TOPSECRET"\nsecret = "TOPSECRET2"',
     "notify.robots[0].secret", "没有加签密钥"),
    ('platform = "feishu"\nwebhook = "https://open.feishu.cn/open-apis/bot/v2/hook/TOPSECRET"',
     "notify.robots[0].name", "名称"),
    ('name = "群"\nplatform = "dingtalk"', "notify.robots[0].webhook", "二选一"),
])
def test_a_bad_robot_fails_every_command_at_load_naming_file_and_key(tmp_path, monkeypatch, capsys, robot, key, words):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TIERCTL_CONFIG", raising=False)
    monkeypatch.setenv("TIERCTL_DB", str(tmp_path / "store.db"))
    (tmp_path / "tierctl.toml").write_text(f"[[notify.robots]]\n{robot}\n", encoding="utf-8")
    code, out, err = cli(capsys, "tasks")
    assert code == 1
    flat = re.sub(r"\s*│\s*", "", err)  # the message as one line (rich draws it in a box)
    assert "tierctl.toml" in flat and f"[{key}]" in flat and words in flat
    assert "TOPSECRET" not in err + out


def test_a_bad_person_is_named_too(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TIERCTL_CONFIG", raising=False)
    (tmp_path / "tierctl.toml").write_text('[notify.people]\n"张三" = { mobile = "138-abc" }\n', encoding="utf-8")
    code, _, err = cli(capsys, "tasks")
    flat = re.sub(r"\s*│\s*", "", err)
    assert code == 1 and "[notify.people.张三.mobile]" in flat and "手机号「138-abc」无效" in flat


@pytest.mark.slow
def test_a_killed_notify_is_resumed_without_sending_anything_twice(env, capsys, robots):
    """The process is killed (SIGKILL) while its second message waits for the platform's
    answer.  The re-run sends the third message on, not the first again; the second —
    which may have arrived — only on request."""
    rows = [[f"C{i:03d}", f"客户{i:03d}", f"139{i:08d}", "2026-11-05", "通勤", ""] for i in range(30)]
    nr.write(env / "export.csv", rows)
    with open(env / "tierctl.toml", "a", encoding="utf-8") as fh:
        fh.write("\n[notify.platforms.wecom]\nmax_bytes = 600\n[notify]\nmax_messages = 50\nlist_per_recipient = 100\n")
    assert score(capsys, "2026-11-23", "2026-11-23T09:00:00+08:00")[0] == 0
    robots.script["wecom"] += [("ok",), ("hold",)]
    proc_env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost"}
    for v in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        proc_env.pop(v, None)
    proc = subprocess.Popen([TIERCTL, "notify", "--date", "2026-11-23", "--now", NOW1, "--robot", "售后群"],
                            cwd=env, env=proc_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert robots.held.wait(120), "the second message never arrived"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        robots.release.set()
    first, second = robots.requests[0].body, robots.requests[1].body
    with Store.open(env / "store.db") as s:
        log = sn.sent_log(s, "售后群")
        assert dict(zip(log["message_no"], log["status"], strict=False)) == {1: "sent", 2: "pending"}
    code, out, err = cli(capsys, "notify", "--date", "2026-11-23", "--now", NOW1, "--robot", "售后群", "--format", "json")
    assert code == 0, err
    rerun = json.loads(out)["robots"][0]
    again = [r.body for r in robots.requests[2:]]
    assert again and first not in again and second not in again

    def ids(body: dict) -> list[str]:
        return re.findall(r" #(\d+)$", body["markdown"]["content"], flags=re.M)

    posted = [x for b in [first, second, *again] for x in ids(b)]
    assert sorted(posted, key=int) == [str(i) for i in range(1, 31)]  # 30 alerts, each posted once
    assert sorted(rerun["unconfirmed"]) == sorted(f"alert:{i}" for i in ids(second))
    n = len(robots.requests)
    code, _, err = cli(capsys, "notify", "--date", "2026-11-23", "--now", NOW1, "--robot", "售后群")
    assert code == 0 and "可能已送达，本次不再重发" in err and len(robots.requests) == n
    code, _, err = cli(capsys, "notify", "--date", "2026-11-23", "--now", NOW1, "--robot", "售后群",
                       "--resend-unconfirmed")
    assert code == 0, err
    assert [x for r in robots.requests[n:] for x in ids(r.body)] == ids(second)
