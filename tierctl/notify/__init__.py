"""Telling people: the morning summary, new alerts, escalations and overdue tasks posted
to group robots — WeChat Work (企业微信), DingTalk (钉钉) and Feishu (飞书).

    from tierctl.notify import deliver, from_config
    report = deliver(store, from_config(cfg), day, now)

* :mod:`tierctl.notify.config` — ``[[notify.robots]]``, ``[notify.people]`` and the
  limits, checked when the configuration loads;
* :mod:`tierctl.notify.digest` — what the message says, read from the store;
* :mod:`tierctl.notify.escalation` — alerts not acknowledged in time go to the next
  recipient, once;
* :mod:`tierctl.notify.compose` and :mod:`tierctl.notify.message` — the lines for one
  robot and their packing into messages that fit the platform's limit;
* :mod:`tierctl.notify.wecom`, :mod:`~tierctl.notify.dingtalk`,
  :mod:`~tierctl.notify.feishu` — each platform's payload, signature and answer;
* :mod:`tierctl.notify.transport` — rate limit, retries, urllib;
* :mod:`tierctl.notify.core` — :func:`deliver`, which records per robot what was sent
  (:mod:`tierctl.store.notify`) so that a re-run sends only the rest.

No command-line code here: ``tierctl notify`` (:mod:`tierctl.cli.notify`) parses its
options, calls :func:`deliver` and prints what comes back.
"""

from __future__ import annotations

from typing import Any

from tierctl.notify.config import NotifyConfig, from_config, parse

__all__ = ["NotifyConfig", "deliver", "from_config", "parse"]


def __getattr__(name: str) -> Any:
    # the configuration check runs on every command: the store and pandas load only when sending
    if name == "deliver":
        from tierctl.notify.core import deliver

        return deliver
    raise AttributeError(name)
