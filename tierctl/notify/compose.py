"""The morning message for one robot: the digest's parts that robot is told about and
has not been told yet, as blocks of lines (:mod:`tierctl.notify.message`).

Item keys — what is recorded per robot once a message carrying them is accepted:
``summary:<run date>``, ``alert:<id>``, ``escalation:<alert id>``,
``overdue:<date>:<owner>``.  A re-run leaves out every item recorded already.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tierctl.notify.config import NotifyConfig, Robot
from tierctl.notify.digest import who
from tierctl.notify.message import AT, B, Block, Line, T

TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "title": "配件短缺晨报 {date}", "title_centre": "{centre} 配件短缺晨报 {date}", "more_title": "（补充）",
        "part": "（{i}/{n}）", "crisis": "危机等级 ", "crisis_level": "{level} 级 {label}", "response": "：{response}",
        "count": "{tier} {n} 位{delta}", "delta": "（{sign}{n}）", "total": "共 {n} 位", "since": "（较 {date}）", "first": "（首次评分）",
        "open": "未处理预警共 {n} 条（tierctl alerts 查看，tierctl alerts ack 编号 确认）",
        "alerts": "新预警 {n} 条", "people": "（{n} 位）", "cont": "（续）",
        "alert": "- {who}：{reason} {ids}", "more": "- … 另有 {n} 位（tierctl alerts 查看）",
        "escalations": "超时未确认，已升级 {n} 条", "esc_count": "（{n} 条）",
        "escalation": "- {who}：{reason} #{id}，{source} {days} 个{unit}内未确认",
        "workday": "工作日", "day": "自然日",
        "overdue": "逾期任务 {n} 项", "overdue_line": "：{n} 项 — {names}", "overdue_more": " 等 {n} 位",
        "task": "{who}（{tier}，{status}）", "sep": "、",
        "overflow": "… 另有 {n} 项未列出（tierctl alerts、tierctl tasks 查看）",
    },
    "en": {
        "title": "Parts-shortage morning report {date}", "title_centre": "{centre} parts-shortage morning report {date}",
        "more_title": " (update)", "part": " ({i}/{n})", "crisis": "Crisis level ", "crisis_level": "{level} {label}",
        "response": ": {response}", "count": "{tier} {n}{delta}", "delta": " ({sign}{n})", "total": "{n} in all", "since": " (vs {date})",
        "first": " (first run)",
        "open": "{n} open alerts (tierctl alerts lists them; tierctl alerts ack ID acknowledges)",
        "alerts": "{n} new alerts", "people": " ({n})", "cont": " (cont.)",
        "alert": "- {who}: {reason} {ids}", "more": "- … {n} more (tierctl alerts)",
        "escalations": "{n} alerts escalated (not acknowledged in time)", "esc_count": " ({n})",
        "escalation": "- {who}: {reason} #{id}; not acknowledged by {source} within {days} {unit}",
        "workday": "working day(s)", "day": "day(s)",
        "overdue": "{n} overdue tasks", "overdue_line": ": {n} — {names}", "overdue_more": " and {n} more",
        "task": "{who} ({tier}, {status})", "sep": ", ",
        "overflow": "… {n} more not listed (tierctl alerts, tierctl tasks)",
    },
}


def text(lang: str) -> dict[str, str]:
    return TEXT.get(lang, TEXT["zh"])


@dataclass
class Plan:
    """What one robot is to be told: ``blocks`` of lines; ``items`` every item they carry."""

    title: str
    blocks: list[Block]
    color: str | None = None
    items: list[str] = field(default_factory=list)

    def title_for(self, lang: str) -> Callable[[int, int], str]:
        tx = text(lang)
        return lambda i, n: self.title if n <= 1 else self.title + tx["part"].format(i=i, n=n)

    def overflow(self, lang: str) -> Callable[[list[str]], Line]:
        tx = text(lang)

        def line(items: list[str]) -> Line:
            n = sum(1 for i in items if not i.startswith("summary:"))
            return Line([T(tx["overflow"].format(n=n))], tuple(items))
        return line


def _delta(tx: dict[str, str], now: int, before: int | None) -> str:
    if before is None or now == before:
        return ""
    d = now - before
    return tx["delta"].format(sign="+" if d > 0 else "−", n=abs(d))


def summary_item(digest: dict[str, Any]) -> str:
    return f"summary:{digest['as_of']}"


def plan(digest: dict[str, Any], robot: Robot, ncfg: NotifyConfig, done: Callable[[str], bool]) -> Plan:
    """The blocks for ``robot``, leaving out every item ``done`` says was sent."""
    tx = text(digest.get("lang", "zh"))
    crisis = digest.get("crisis") or {}
    s_item = summary_item(digest)
    with_summary = "summary" in robot.sections and not done(s_item)
    parts = [_summary(digest, tx, crisis, s_item)] if with_summary else []
    if "alerts" in robot.sections:
        parts.append(_alert_blocks(digest, robot, ncfg, done, tx))
    if "escalations" in robot.sections:
        parts.append(_escalation_blocks(digest, robot, done, tx))
    if "overdue" in robot.sections:
        parts.append(_overdue_blocks(digest, done, tx))
    blocks = [b for bs, _ in parts for b in bs]
    items = [i for _, its in parts for i in its]
    centre = digest.get("centre")
    title = (tx["title_centre"].format(centre=centre, date=digest["date"]) if centre
             else tx["title"].format(date=digest["date"]))
    if not with_summary and blocks:
        title += tx["more_title"]
    return Plan(title, blocks, crisis.get("color"), items)


def _summary(digest: dict[str, Any], tx: dict[str, str], crisis: dict[str, Any], s_item: str
             ) -> tuple[list[Block], list[str]]:
    """The summary: crisis level, counts and their change, open alerts."""
    lines = []
    if crisis:
        lines.append(Line([T(tx["crisis"]), B(tx["crisis_level"].format(level=crisis["level"], label=crisis["label"])),
                           T(tx["response"].format(response=crisis["response"]) if crisis.get("response") else "")]))
    prev = (digest.get("previous") or {}).get("counts") or {}
    parts = [tx["count"].format(tier=t, n=digest["counts"].get(t, 0),
                                delta=_delta(tx, digest["counts"].get(t, 0), prev.get(t) if digest.get("previous") else None))
             for t in digest["tiers"]]
    total = tx["total"].format(n=digest["customers"])
    since = tx["since"].format(date=digest["previous"]["as_of"]) if digest.get("previous") else tx["first"]
    lines.append(Line([T(" · ".join([*parts, total]) + since)]))
    for w in digest.get("warnings", [])[:3]:
        lines.append(Line([T(f"⚠ {w}")]))
    lines.append(Line([T(tx["open"].format(n=digest.get("alerts_open", 0)))]))
    lines[-1].items = (s_item,)
    return [Block(lines)], [s_item]


def _alert_blocks(digest: dict[str, Any], robot: Robot, ncfg: NotifyConfig, done: Callable[[str], bool],
                  tx: dict[str, str]) -> tuple[list[Block], list[str]]:
    """New alerts, per recipient, one line per customer."""
    blocks: list[Block] = []
    items: list[str] = []
    per: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for a in digest.get("alerts", []):
        if robot.covers(a["recipient"]) and not done(f"alert:{a['id']}"):
            per.setdefault(a["recipient"], {}).setdefault(a["customer_key"], []).append(a)
    n_alerts = sum(len(x) for c in per.values() for x in c.values())
    first = True
    for recipient, customers in per.items():
        head = Line([B(recipient), AT(recipient), T(tx["people"].format(n=len(customers)))], heading=True)
        lines = []
        shown = list(customers.values())
        for group in shown[:ncfg.list_per_recipient]:
            ids = " ".join(f"#{a['id']}" for a in group)
            reason = "；".join(dict.fromkeys(a["reason"] for a in group))
            lines.append(Line([T(tx["alert"].format(who=who(group[0]), reason=reason, ids=ids))],
                              tuple(f"alert:{a['id']}" for a in group)))
        rest = shown[ncfg.list_per_recipient:]
        if rest:
            lines.append(Line([T(tx["more"].format(n=len(rest)))],
                              tuple(f"alert:{a['id']}" for g in rest for a in g)))
        heading = [Line([B(tx["alerts"].format(n=n_alerts))], heading=True), head] if first else [head]
        cont = [Line([B(recipient), T(tx["cont"])], heading=True)]
        blocks.append(Block(lines, heading, cont))
        items += [i for ln in lines for i in ln.items]
        first = False
    return blocks, items


def _escalation_blocks(digest: dict[str, Any], robot: Robot, done: Callable[[str], bool], tx: dict[str, str]
                       ) -> tuple[list[Block], list[str]]:
    """Escalations, per new recipient."""
    blocks: list[Block] = []
    items: list[str] = []
    per_e: dict[str, list[dict[str, Any]]] = {}
    for e in digest.get("escalations", []):
        if robot.covers(e["to"]) and not done(f"escalation:{e['alert_id']}"):
            per_e.setdefault(e["to"], []).append(e)
    n_esc = sum(len(v) for v in per_e.values())
    first = True
    for to, group in per_e.items():
        head = Line([B(to), AT(to), T(tx["esc_count"].format(n=len(group)))], heading=True)
        lines = [Line([T(tx["escalation"].format(
            who=who(e), reason=e["reason"], id=e["alert_id"], source=e["from"], days=e["after_days"],
            unit=tx["workday"] if e["working_days"] else tx["day"]))], (f"escalation:{e['alert_id']}",))
            for e in group]
        heading = [Line([B(tx["escalations"].format(n=n_esc))], heading=True), head] if first else [head]
        blocks.append(Block(lines, heading, [Line([B(to), T(tx["cont"])], heading=True)]))
        items += [i for ln in lines for i in ln.items]
        first = False
    return blocks, items


def _overdue_blocks(digest: dict[str, Any], done: Callable[[str], bool], tx: dict[str, str]
                    ) -> tuple[list[Block], list[str]]:
    """Overdue tasks, one line per owner."""
    lines = []
    for o in digest.get("overdue", []):
        item = f"overdue:{digest['date']}:{o['owner']}"
        if done(item):
            continue
        names = tx["sep"].join(tx["task"].format(who=who(c), tier=c["tier"], status=c["status"])
                               for c in o["customers"])
        more = tx["overdue_more"].format(n=o["count"]) if o["more"] else ""
        lines.append(Line([B(o["owner"]), AT(o["owner"], o.get("role")),
                           T(tx["overdue_line"].format(n=o["count"], names=names) + more)], (item,)))
    if not lines:
        return [], []
    n = sum(o["count"] for o in digest.get("overdue", []) if f"overdue:{digest['date']}:{o['owner']}"
            in {i for ln in lines for i in ln.items})
    block = Block(lines, [Line([B(tx["overdue"].format(n=n))], heading=True)],
                  [Line([B(tx["overdue"].format(n=n) + tx["cont"])], heading=True)])
    return [block], [i for ln in lines for i in ln.items]

__all__ = ["TEXT", "Plan", "plan", "summary_item", "text"]
