"""Three mornings of a service centre, end to end through the command line (issue 16):

- Monday: the morning run scores the export and tells the group robots (a local server
  that speaks WeChat Work, DingTalk and Feishu); the advisors' execution-record sheet
  comes back filled and is imported; the manager acknowledges one alert.
- Tuesday: the alerts nobody acknowledged escalate to the next recipient, once, and the
  robots hear of it; a second notify that morning adds nothing.
- Wednesday: nothing escalates a second time; the escalation e-mail goes out over SMTP to
  a local server, and what arrives parses with Python's ``email`` package.
"""

from __future__ import annotations

import email
import json
from email import policy
from pathlib import Path

import notify_robots as nr
import openpyxl
import pytest
from conftest import run_cli

aiosmtpd = pytest.importorskip("aiosmtpd")
from local_smtp import LocalController  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GOLDEN_CONFIG = ROOT / "tests" / "golden" / "render" / "tierctl.toml"
robots = nr.robots  # the local robot server (a fixture)
MON, TUE, WED = "2026-11-23", "2026-11-24", "2026-11-25"


def at(day: str, hm: str = "09:00") -> str:
    return f"{day}T{hm}:00+08:00"


class Recorder:
    def __init__(self) -> None:
        self.envelopes: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.envelopes.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp():
    rec = Recorder()
    c = LocalController(rec)
    c.start()
    yield rec, c.port
    c.stop()


@pytest.fixture
def centre(tmp_path, robots, smtp):
    """The centre's folder: tierctl.toml (robots, people, mail), the export, the database."""
    _, port = smtp
    # the centre's document settings (those of the golden render tests), then robots, people, mail
    robots_cfg = nr.config_text({k: robots.url(k) for k in nr.PLATFORMS}, extra=(
        '"李娜" = { mobile = "13800000011", wecom = "li.na", feishu = "ou_lina" }\n'
        '\n[mail]\nhost = "127.0.0.1"\n'
        f'port = {port}\nsecurity = "none"\nfrom = "陈明 <chen.ming@example.com>"\n'
        'to = ["供应链 王总 <wang@example.com>"]\n'))
    robots_cfg = robots_cfg.split('[[notify.robots]]', 1)[1]
    cfg = GOLDEN_CONFIG.read_text(encoding="utf-8") + "\n[[notify.robots]]" + robots_cfg
    (tmp_path / "tierctl.toml").write_text(cfg, encoding="utf-8")
    nr.write(tmp_path / "export.csv", nr.ROWS)
    return tmp_path


def tierctl(centre: Path, *args: str):
    return run_cli(*args, cwd=centre, env={"TIERCTL_DB": str(centre / "store.db"), "TIERCTL_CONFIG": None,
                                           "TIERCTL_DEBUG": None})


def tierctl_json(centre: Path, *args: str) -> dict:
    r = tierctl(centre, *args, "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_three_mornings(centre, robots, smtp):
    # -- Monday: score, tell the groups ----------------------------------------------------
    mon = tierctl_json(centre, "score", "export.csv", "--as-of", MON, "--now", at(MON), "--notify")
    assert mon["counts"] == {"P0": 0, "P1": 2, "P2": 1, "P3": 1}
    assert [r["items_sent"] for r in mon["notify"]["robots"]] == [4, 4, 4]  # the summary and 3 alerts
    text = robots.texts("wecom")[-1]
    assert "危机等级 **4 级 极度**" in text and "P1 2 位" in text
    assert "<@zhou.sa>" in text and "张先生（C001）" in text  # the SA supervisor is mentioned by user id
    alerts = {a["customer_id"]: a for a in tierctl_json(centre, "alerts")["alerts"]}
    assert {c: a["recipient"] for c, a in alerts.items()} == {"C001": "SA 主管", "C002": "服务经理", "C003": "区域总监"}

    # the advisors' execution-record sheet: exported, filled in during the day, imported
    r = tierctl(centre, "contacts", "export", "--out", str(centre / "执行记录.xlsx"))
    assert r.returncode == 0, r.stderr
    wb = openpyxl.load_workbook(centre / "执行记录.xlsx")
    ws = wb.active
    ws.append(["张先生（C001）", None, None, "李娜", "2026/11/23 10:30", "已接通", "理解，等通知", "每 3 天回电", "", "电话"])
    ws.append(["赵先生", None, None, "陈晨", "2026年11月23日 11:00", "已发短信", "", "", "", "SMS"])
    wb.save(centre / "执行记录-已填.xlsx")
    imp = tierctl_json(centre, "contacts", "import", str(centre / "执行记录-已填.xlsx"), "--now", at(MON, "18:00"))
    assert (imp["rows"], imp["imported"], imp["duplicates"]) == (2, 2, 0)
    again = tierctl_json(centre, "contacts", "import", str(centre / "执行记录-已填.xlsx"), "--now", at(MON, "18:05"))
    assert again["imported"] == 0 and again["duplicates"] == 2  # the same sheet twice adds nothing
    # 李娜's list: C002 never reached (overdue first contact); C001 reached at 10:30, next call
    # 12 hours on (crisis level 4: twice a day); 陈晨's C004 is not on her list
    tasks = tierctl_json(centre, "tasks", "--owner", "李娜", "--now", at(MON, "18:10"))
    due = {t["customer_id"]: t for g in tasks["groups"] for t in g["tasks"]}
    assert set(due) == {"C001", "C002"}
    assert due["C002"]["due_kind"] == "first" and due["C002"]["overdue"]
    assert due["C001"]["due_kind"] == "cadence" and not due["C001"]["overdue"]
    assert due["C001"]["last_contact"] == at(MON, "10:30") and due["C001"]["due"] == at(MON, "22:30")
    # the manager takes C002's alert himself; C001's stays unacknowledged
    r = tierctl(centre, "alerts", "ack", str(alerts["C002"]["id"]), "--by", "王经理", "--note", "已致电客户",
                "--now", at(MON, "15:00"))
    assert r.returncode == 0, r.stderr

    # -- Tuesday: what nobody acknowledged escalates, once --------------------------------------
    tue = tierctl_json(centre, "score", "export.csv", "--as-of", TUE, "--now", at(TUE), "--notify")
    esc = [(e["from_recipient"], e["to_recipient"]) for e in tue["notify"]["escalated"]]
    assert esc == [("SA 主管", "服务经理")]  # C001's 14-day alert; C002's was acknowledged; C003's has no one above
    text = robots.texts("wecom")[-1]
    assert "超时未确认，已升级 1 条" in text and "张先生（C001）" in text
    sent_before = len(robots.accepted())
    r = tierctl(centre, "notify", "--date", TUE, "--now", at(TUE, "09:30"))
    assert r.returncode == 0, r.stderr
    assert "没有新内容" in r.stderr and len(robots.accepted()) == sent_before  # nothing sent twice

    # -- Wednesday: no second escalation; the e-mail goes out ---------------------------------
    wed = tierctl_json(centre, "score", "export.csv", "--as-of", WED, "--now", at(WED), "--notify")
    assert wed["notify"]["escalated"] == []
    state = {a["customer_id"]: a for a in tierctl_json(centre, "alerts", "--all")["alerts"]}
    assert state["C001"]["escalated_to"] == "服务经理" and state["C001"]["status"] == "open"
    assert state["C002"]["status"] == "acked" and state["C002"]["escalated_to"] is None

    rec, _ = smtp
    cfg = centre / "tierctl.toml"  # the manager writes down today's progress first
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("date = 2026-11-24", f"date = {WED}"), encoding="utf-8")
    r = tierctl(centre, "render", "export.csv", "--as-of", WED, "--now", at(WED, "09:10"), "--send")
    assert r.returncode == 0, r.stderr
    assert len(rec.envelopes) == 1 and sorted(rec.envelopes[0].rcpt_tos) == ["li@example.com", "wang@example.com"]  # [email] to + cc
    msg = email.message_from_bytes(rec.envelopes[0].content, policy=policy.default)
    assert "配件短缺" in msg["Subject"] and msg["From"].addresses[0].addr_spec == "chen.ming@example.com"
    assert msg.get_content_type() == "multipart/mixed"
    plain = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "4 位客户" in plain and "危机等级已到 4 级" in plain and "<table" in html and "费用测算" in html
    files = [a.get_filename() for a in msg.iter_attachments()]
    assert files == ["客户分层评估表-2026-11-25.xlsx"]
