"""The hooks ``tierctl score`` calls to store its result, compare it with the previous run and
fire alerts, and the stored result ``render``/``allocate`` run on without an export."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tierctl.cli.common import (
    db_path,
    open_store,
    shown_db,
    warn,
)
from tierctl.cli.loop_common import (
    LIST_LIMIT,
    _e,
    _open,
    _who,
)
from tierctl.errors import NotFoundError, StoreError
from tierctl.kernels import file_hash

if TYPE_CHECKING:
    from tierctl.shortage import ShortageResult
    from tierctl.store import Store


# -- the hooks tierctl score calls ------------------------------------------------------------
def open_for_score(db: Path | None, dry_run: bool) -> Store:
    """The store a morning run reads its history from and writes its snapshot to.  A
    dry run never creates or changes a file: it reads an existing database read-only,
    or works against an empty in-memory one."""
    path = db_path(db)
    if dry_run:
        if not path.exists():
            store = open_store(":memory:")
        else:
            try:
                store = open_store(path, readonly=True)
            except StoreError as err:
                warn([f"预览模式无法读取历史数据库，按没有历史处理：{err.message}"])
                store = open_store(":memory:")
    else:
        store = open_store(path)
    store.display_path = shown_db(path)
    return store


def previous_for(store: Store, model: Any, as_of: dt.date):
    """(previous snapshot's notes, the week-ago snapshot's contact counts) for A4.4/A4.5."""
    from tierctl.daily import history

    return history.previous_frames(store, model, as_of)


def after_score(store: Store, result: ShortageResult, export: Any, crisis: Any, *, dry_run: bool = False,
                detail_limit: int | None = None, source_hash: Callable[[], str | None] | None = None
                ) -> dict[str, Any]:
    """Store the run (unless ``dry_run``) and return what the morning output shows:
    ``changes``, ``alerts_fired``, ``snapshot`` (into the JSON), ``crisis`` (re-computed
    when manual overrides changed tiers), and ``changes_text``/``alerts_text`` (printed
    under the table).  ``detail_limit``: see :func:`tierctl.store.history.record_run` (the
    text needs a screenful, the JSON everyone).  ``source_hash``: the call that gives the
    export's SHA-256 when it was started earlier (:func:`loop.sha256_in_background`)."""
    from tierctl.daily import history, values

    source = {"path": str(export.path), "sheet": export.sheet, "encoding": export.encoding,
              "headers": dict(export.headers)}
    try:
        rec = history.record_run(store, result, crisis, source_name=Path(export.path).name,
                              source_hash=source_hash() if source_hash else file_hash.sha256_file(export.path),
                              dry_run=dry_run,
                              extra_meta={"source": source}, detail_limit=detail_limit)
        rec["snapshot"]["path"] = getattr(store, "display_path", store.path)
        if not dry_run:
            rec["snapshot"]["alerts_open"] = store.count_alerts(values.KIND)
    finally:
        store.close(background=True)  # the checkpoint runs while the morning output is printed
    return {"changes": rec["changes"], "alerts_fired": rec["alerts_fired"], "snapshot": rec["snapshot"],
            "crisis": rec["crisis"], "changes_text": changes_text(rec["changes"], rec["snapshot"]),
            "alerts_text": alerts_text(rec["alerts_fired"], rec["snapshot"])}


def changes_text(ch: dict[str, Any], snap: dict[str, Any]) -> str:
    """The changes since the previous run as rich markup."""
    lines = []
    c = ch.get("counts", {})
    if ch.get("previous_as_of"):
        lines.append(f"[bold]与上次（{ch['previous_as_of']}）相比[/bold]：新增 {c.get('new', 0)} 位 · "
                     f"升级 {c.get('upgraded', 0)} 位 · 降级 {c.get('downgraded', 0)} 位 · "
                     f"离开名单 {c.get('resolved', 0)} 位")
    else:
        lines.append(f"[bold]历史中没有更早的评分[/bold]：{c.get('new', 0)} 位客户都记为新增")

    def total(key: str) -> int:  # the lists may hold only the first few (see record_run)
        return max(int(c.get(key, 0)), len(ch.get(key, [])))

    def block(key: str, mark: str, style: str) -> None:
        items = ch.get(key, [])
        for it in items[:LIST_LIMIT]:
            why = "；".join(it.get("why", []))
            lines.append(f"  [{style}]{mark}[/{style}] {_e(_who(it))} {it['from']}→{it['to']}：{_e(why)}")
        shown = min(len(items), LIST_LIMIT)
        if total(key) > shown:
            lines.append(f"  [dim]… 另有 {total(key) - shown} 位（--format json 查看全部）[/dim]")

    block("upgraded", "↑", "red")
    block("downgraded", "↓", "green")
    if ch.get("previous_as_of"):
        for key, label in (("new", "新增"), ("resolved", "离开名单")):
            items = ch.get(key, [])
            if items:
                names = "、".join(f"{_e(_who(i))}({i['tier']})" for i in items[:LIST_LIMIT])
                more = f" … 等 {total(key)} 位" if total(key) > min(len(items), LIST_LIMIT) else ""
                lines.append(f"  [dim]{label}：[/dim]{names}{more}")
    if not snap.get("stored"):
        lines.append("[yellow]预览模式（--dry-run）：没有保存快照、没有触发或关闭预警[/yellow]")
    elif snap.get("replaced"):
        lines.append(f"[dim]已替换 {snap['as_of']} 之前保存的评分（同一天只保留最后一次）[/dim]")
    if snap.get("stored") and not snap.get("latest"):
        lines.append(f"[yellow]{snap['as_of']} 早于已保存的最新评分：只补存快照，不触发或关闭预警[/yellow]")
    if snap.get("overrides_applied"):
        lines.append(f"[magenta]{snap['overrides_applied']} 位客户按人工调整的分级处理（tierctl history 查看原因）[/magenta]")
    return "\n".join(lines)


def alerts_text(fired: list[dict[str, Any]], snap: dict[str, Any], lang: str = "zh",
                meta: dict[str, Any] | None = None) -> str:
    """Today's alerts as rich markup, one line per customer: each alert's recipient with
    its reason — a wait alert is the highest threshold reached (empty when none fired
    and none are open).  ``lang="en"`` takes the English texts of the rules in ``meta``
    (:func:`tierctl.daily.model_meta`)."""
    from tierctl.daily import alert_in_english

    en = lang == "en"
    if not fired:
        n = snap.get("alerts_open")
        if not n:
            return ""
        return f"[dim]No new alerts today; {n} open (tierctl alerts lists them)[/dim]" if en else \
            f"[dim]今天没有新触发的预警；未处理预警 {n} 条（tierctl alerts 查看）[/dim]"
    n_fired = max(int(snap.get("alerts_fired") or 0), len(fired))
    if en:
        lines = [f"[bold red]Alerts fired today: {n_fired}[/bold red]"
                 + (f" ({snap['alerts_open']} open: tierctl alerts lists them, tierctl alerts ack ID acknowledges)"
                    if snap.get("alerts_open") is not None else "")]
    else:
        lines = [f"[bold red]今天触发的预警 {n_fired} 条[/bold red]"
                 + (f"（未处理共 {snap['alerts_open']} 条：tierctl alerts 查看，tierctl alerts ack 编号 确认）"
                    if snap.get("alerts_open") is not None else "")]
    per: dict[str, list[dict[str, Any]]] = {}
    for a in fired:  # most severe first (see loop.alert_severity)
        per.setdefault(a["customer_key"], []).append(a)
    n_customers = max(int(snap.get("alerts_fired_customers") or 0), len(per))
    shown = 0
    for _, items in per.items():
        if shown >= LIST_LIMIT * 2:
            break
        shown += 1
        ids = " ".join(f"#{a['id']}" for a in items if a.get("id"))
        texts = [alert_in_english(a, meta or {}) if en else (a["recipient"], a["reason"]) for a in items]
        first, rest = texts[0], texts[1:]
        more = "".join(f"；[bold]{_e(to)}[/bold]：{_e(why)}" for to, why in rest)
        lines.append(f"  → [bold]{_e(first[0])}[/bold]：{_e(_who(items[0]))} {_e(first[1])}{more}"
                     + (f" [dim]{ids}[/dim]" if ids else ""))
    if n_customers > shown:
        lines.append(f"  [dim]… {n_customers - shown} more customers (tierctl alerts lists them all)[/dim]" if en
                     else f"  [dim]… 另有 {n_customers - shown} 位客户（tierctl alerts 查看全部）[/dim]")
    return "\n".join(lines)


def result_from_store(db: Path | None, as_of: dt.date | None) -> ShortageResult:
    """Today's (or the latest on or before ``as_of``) stored shortage result, so that
    ``render``/``allocate`` can run without an export file."""
    from tierctl.daily import reading

    path = db_path(db)
    if not path.exists():
        raise NotFoundError(f"历史数据库 {path} 不存在：还没有保存过评分",
                            hint="先运行 tierctl score 导出文件.xlsx（不加 --dry-run），或在命令中直接给出导出文件")
    store = _open(db)
    try:
        return reading.load_result(store, as_of)
    finally:
        store.close()
