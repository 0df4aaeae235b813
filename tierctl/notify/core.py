"""``deliver``: escalate what nobody acknowledged, read the morning digest from the store,
and tell every configured robot what it has not been told yet.

Per robot and message: the items the message carries are recorded ``pending`` (committed)
before the request and ``sent`` once the platform accepts it; a message the platform
refuses, or that fails on every attempt, is forgotten again and goes out with the next
run.  A message on its way when the process was killed stays ``pending``: it is not sent
a second time unless ``resend_unconfirmed`` (it may well have arrived).  A robot that
fails stops there (its later messages would arrive out of order); the others go on.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tierctl.notify import compose, dingtalk, feishu, wecom
from tierctl.notify.config import NotifyConfig, Robot, mask_url, redact
from tierctl.notify.digest import morning_digest
from tierctl.notify.escalation import escalate
from tierctl.notify.message import pack
from tierctl.notify.transport import Post, Sender, SendFailed, urllib_post
from tierctl.store.core import Store

MODULES: dict[str, Any] = {"wecom": wecom, "dingtalk": dingtalk, "feishu": feishu}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _renderer(robot: Robot, ncfg: NotifyConfig, lang: str) -> Any:
    mod = MODULES[robot.platform]
    plat = ncfg.platforms[robot.platform]

    def people(name: str, alt: str | None) -> Any:
        return ncfg.person(name) or ncfg.person(alt)

    if robot.platform == "feishu":
        return mod.Renderer(plat, people, lang, robot.msg_type)
    return mod.Renderer(plat, people, lang)


def _image_path(robot: Robot, image: Path | None, image_dir: Path | None, day: str) -> Path | None:
    if robot.platform != "wecom":
        return None
    if image is not None:
        return image
    if not robot.image:
        return None
    text = robot.image.replace("{date}", day)
    if text.lower().endswith(IMAGE_SUFFIXES) or "/" in text or "\\" in text:
        return Path(text).expanduser()
    return (image_dir or Path("out")) / day / f"{text}.png"


def _preview(robot: Robot, body: dict[str, Any], secret_set: bool) -> dict[str, Any]:
    """What a dry run prints: the body as it would go, the address and signature masked."""
    b = dict(body)
    if robot.platform == "feishu" and secret_set:
        b = {"timestamp": "***", "sign": "***", **b}
    if robot.webhook_env:
        url = f"${robot.webhook_env}"
    else:
        url = mask_url(robot.webhook or "")
    if robot.platform == "dingtalk" and secret_set:
        url += "&timestamp=***&sign=***"
    return {"url": url, "body": b}


def deliver(store: Store, ncfg: NotifyConfig, day: dt.date, now: dt.datetime, *, lang: str = "zh",
            working_days: bool = False, centre: str | None = None, image_dir: Path | None = None,
            image: Path | None = None, dry_run: bool = False, robots: list[str] | None = None,
            resend_unconfirmed: bool = False, post: Post = urllib_post,
            sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
            wall: Callable[[], float] = time.time) -> dict[str, Any]:
    """Send the morning message of ``day`` to the robots (all, or those named).  With
    ``dry_run`` nothing is sent or stored: the result holds every payload instead.
    ``post``/``sleep``/``clock``/``wall``: the network and the time (tests pass fakes)."""
    from tierctl.errors import ConfigError
    from tierctl.store import notify as sn

    chosen = [ncfg.robot(n) for n in robots] if robots else list(ncfg.robots)
    if not chosen:
        raise ConfigError("还没有配置群机器人", path=ncfg.path, key="notify.robots",
                          hint="在 tierctl.toml 中添加 [[notify.robots]]（见 README「通知 / Notify」）")
    esc = escalate(store, ncfg.escalation, day, now, dry_run=dry_run)
    digest = morning_digest(store, day, now, ncfg, lang=lang, working_days=working_days, centre=centre,
                            escalated=esc["escalated"] if dry_run else None)
    secrets = list(ncfg.secrets)
    warnings = list(esc["warnings"])
    out_robots: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    for robot in chosen:
        plat = ncfg.platforms[robot.platform]
        mod = MODULES[robot.platform]
        rep: dict[str, Any] = {"name": robot.name, "platform": robot.platform, "label": plat.name(lang),
                               "messages": [], "items_sent": 0, "already_sent": 0, "unconfirmed": [],
                               "resent_unconfirmed": [], "image": None, "error": None, "waits": []}
        out_robots.append(rep)
        unconf = sn.unconfirmed(store, robot.name)
        if unconf and resend_unconfirmed and not dry_run:
            sn.drop_unconfirmed(store, robot.name)
            rep["resent_unconfirmed"], unconf = unconf, []
        rep["unconfirmed"] = unconf
        everything = compose.plan(digest, robot, ncfg, lambda _i: False)
        img = _image_path(robot, image, image_dir, digest["date"])
        img_item = f"image:{digest['date']}:{img.name}" if img is not None else None
        status = sn.sent_status(store, robot.name, [*everything.items, *([img_item] if img_item else [])])
        if resend_unconfirmed and dry_run:
            status = {k: v for k, v in status.items() if v != "pending"}
        rep["already_sent"] = sum(1 for i in everything.items if i in status)
        p = compose.plan(digest, robot, ncfg, status.__contains__)
        renderer = _renderer(robot, ncfg, lang)
        messages = pack(p.blocks, renderer, limit=plat.max_bytes, max_messages=ncfg.max_messages,
                        title=p.title_for(lang), overflow=p.overflow(lang)) if p.blocks else []
        url = secret = None
        if not dry_run and (messages or (img_item and img_item not in status)):
            url = robot.url(ncfg.path)
            secret = robot.secret_value(ncfg.path)
            secrets += [url, *([secret] if secret else [])]
        sender = Sender(plat, mod.outcome, timeout=ncfg.timeout, attempts=ncfg.attempts, backoff=ncfg.backoff,
                        backoff_max=ncfg.backoff_max, rate_wait=ncfg.rate_wait, post=post, sleep=sleep, clock=clock,
                        per_second=plat.per_second)
        failed = _send_messages(store, robot, mod, renderer, messages, p.color, sender, url, secret, wall,
                                secrets, failures, rep, now, dry_run)
        if img is not None and img_item is not None and not failed:
            rep["image"] = _send_image(store, robot, img, img_item, status, sender, url, plat.image_max_bytes,
                                       now, dry_run, wall, secrets, failures)
        rep["waits"] = [{"why": w, "seconds": round(s, 3)} for w, s in sender.waits]
    return {"date": digest["date"], "as_of": digest["as_of"], "dry_run": dry_run, "escalated": esc["escalated"],
            "digest": digest, "robots": out_robots, "failures": failures,
            "warnings": warnings + list(digest.get("warnings", []))}


def _send_messages(store: Store, robot: Robot, mod: Any, renderer: Any, messages: list[Any], color: Any,
                   sender: Sender, url: str | None, secret: str | None, wall: Callable[[], float],
                   secrets: list[str], failures: list[dict[str, Any]], rep: dict[str, Any], now: dt.datetime,
                   dry_run: bool) -> bool:
    """Send (or with ``dry_run`` preview) one robot's messages in order, each claimed
    before it goes out and confirmed when the platform took it; True when one failed
    (the rest wait for the next run)."""
    from tierctl.store import notify as sn

    for k, msg in enumerate(messages, 1):
        bodies = renderer.bodies(msg.title, msg.lines, color)
        entry: dict[str, Any] = {"no": k, "title": msg.title, "items": msg.items,
                                 "bytes": renderer.size(msg.title, msg.lines)}
        rep["messages"].append(entry)
        if dry_run:
            entry["status"] = "preview"
            entry["payloads"] = [_preview(robot, b, bool(robot.secret or robot.secret_env)) for b in bodies]
            continue
        assert url is not None
        sn.claim(store, robot.name, robot.platform, msg.items, k, now)
        done = 0
        try:
            for body in bodies:
                sender.send(functools.partial(mod.prepare, url, body, secret, wall))
                done += 1
        except SendFailed as f:
            if done == 0:  # the message itself did not arrive: it goes out with the next run
                sn.release(store, robot.name, msg.items)
            else:  # it arrived; only the mention after it did not
                sn.confirm(store, robot.name, msg.items, now)
                rep["items_sent"] += len(msg.items)
            entry["status"] = "failed" if done == 0 else "sent"
            reason = redact(f.reason, secrets)
            rep["error"] = f"第 {k} 条消息发送失败：{reason}"
            failures.append({"robot": robot.name, "platform": robot.platform, "message": k, "reason": reason,
                             "definite": f.definite})
            return True
        sn.confirm(store, robot.name, msg.items, now)
        entry["status"] = "sent"
        rep["items_sent"] += len(msg.items)
    return False


def _send_image(store: Store, robot: Robot, path: Path, item: str, status: dict[str, str], sender: Sender,
                url: str | None, limit: int | None, now: dt.datetime, dry_run: bool, wall: Callable[[], float],
                secrets: list[str], failures: list[dict[str, Any]]) -> dict[str, Any]:
    from tierctl.store import notify as sn

    info: dict[str, Any] = {"path": str(path), "item": item}
    if item in status:
        return {**info, "status": "already_sent"}
    if not path.is_file():
        return {**info, "status": "missing"}
    data = path.read_bytes()
    if limit is not None and len(data) > limit:
        return {**info, "status": "too_large", "bytes": len(data), "limit": limit}
    body = wecom.image_body(data)
    if dry_run:
        preview = _preview(robot, body, False)
        preview["body"] = {"msgtype": "image", "image": {"base64": f"<{len(body['image']['base64'])} 个字符>",
                                                          "md5": body["image"]["md5"]}}
        return {**info, "status": "preview", "bytes": len(data), "payload": preview}
    assert url is not None
    sn.claim(store, robot.name, robot.platform, [item], 0, now)
    try:
        sender.send(functools.partial(wecom.prepare, url, body, None, wall))
    except SendFailed as f:
        sn.release(store, robot.name, [item])
        reason = redact(f.reason, secrets)
        failures.append({"robot": robot.name, "platform": robot.platform, "message": "image", "reason": reason,
                         "definite": f.definite})
        return {**info, "status": "failed", "reason": reason}
    sn.confirm(store, robot.name, [item], now)
    return {**info, "status": "sent", "bytes": len(data)}


__all__ = ["MODULES", "deliver"]
