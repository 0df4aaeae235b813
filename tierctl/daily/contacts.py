"""The execution record back in bulk: ``tierctl contacts import`` (shortage contacts) and
``tierctl churn log --import`` (churn interventions) read the sheet advisors fill — the
columns ``tierctl contacts export`` writes, any alias the contacts model lists — and
store every row in one transaction, or none.

* Every row is checked before anything is written: a bad date, an unknown customer, an
  unknown channel or result is one error listing file, Excel row, column and value.
* Importing the same sheet twice adds nothing.  A row's natural key is the customer, the
  contact time to the minute and the channel: a stored contact with the same customer
  and minute is the same contact when the channels agree or either has none (a contact
  logged with ``tierctl contact`` has none).  The export writes times to the minute, so
  an exported sheet imported back adds nothing.
* Channels (电话/短信/微信/邮件/面谈) and the shortage results are data
  (``tierctl/models/contacts.toml``); churn results are the churn model's outcomes.

Library only: the command line parses options, calls :func:`import_contacts` or
:func:`import_interventions` and prints what they return.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy as sa

from tierctl.daily.contacts_model import (  # noqa: F401 - re-exported: the import's callers know them here
    FUTURE_SLACK,
    MAX_PROBLEMS,
    Channel,
    ContactsModel,
    load_contacts_model,
    minute_key,
    parse_when,
)
from tierctl.errors import InputError, NotFoundError, Problem, UsageError
from tierctl.io.ingest import Export, load_mapping, read_export

if TYPE_CHECKING:
    from tierctl.churn import ChurnModel
    from tierctl.store import SnapshotInfo, Store


# -- who a row is ---------------------------------------------------------------------------------
_PAREN = re.compile(r"^(.*?)\s*[（(]\s*([^（()）]+?)\s*[)）]\s*$")


def _text(v: Any) -> str | None:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    s = str(v).strip()
    return s or None


class Resolver:
    """Customers of one snapshot found by key, id, name or phone; ids missing from it are
    looked for across the job's history (a contact of a customer who has left the list)."""

    def __init__(self, store: Store, kind: str, info: SnapshotInfo, fields: Iterable[str] = ()) -> None:
        self.store, self.kind, self.info = store, kind, info
        rows = store.snapshot_rows(info.id, fields=list(fields))
        self.rows = rows.reset_index(drop=True)
        self.by: dict[str, dict[str, list[int]]] = {c: {} for c in ("customer_key", "customer_id", "name", "phone")}
        for col, idx in self.by.items():
            if col not in rows:
                continue
            for i, v in enumerate(rows[col].tolist()):
                t = _text(v)
                if t is not None:
                    idx.setdefault(t, []).append(i)
        self._history: set[str] | None = None

    def _one(self, col: str, text: str) -> tuple[int | None, str | None]:
        hits = sorted(set(self.by[col].get(text, [])))
        if len(hits) == 1:
            return hits[0], None
        if len(hits) > 1:
            return None, f"对应 {len(hits)} 位客户，请写客户编号"
        return None, None

    def find(self, *, ident: str | None = None, name: str | None = None, phone: str | None = None
             ) -> tuple[dict[str, Any] | None, str | None]:
        """(the customer's row as a dict, None) or (None, why not)."""
        if ident:
            for col in ("customer_key", "customer_id"):
                i, why = self._one(col, ident)
                if i is not None:
                    return self.row(i), None
                if why:
                    return None, why
        for col, text in (("name", name), ("phone", phone)):
            if text:
                i, why = self._one(col, text)
                if i is not None:
                    return self.row(i), None
                if why:
                    return None, why
        if ident and self.in_history(ident):
            return {"customer_key": ident, "customer_id": ident, "name": name, "label": None, "score": None,
                    "listed": False}, None
        return None, f"不在 {self.info.as_of} 的名单中，历史记录里也没有这位客户"

    def row(self, i: int) -> dict[str, Any]:
        r = {k: _plain(v) for k, v in self.rows.iloc[i].to_dict().items()}
        r["listed"] = True
        return r

    def in_history(self, key: str) -> bool:
        if self._history is None:
            keys: set[str] = set()
            for s in self.store.list_snapshots(self.kind):
                if s.id != self.info.id:
                    keys.update(str(k) for k in self.store.snapshot_rows(s.id, fields=[], generic=("customer_key",))
                                ["customer_key"].tolist())
            self._history = keys
        return key in self._history


def _plain(v: Any) -> Any:
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    return v.item() if hasattr(v, "item") and not isinstance(v, str | dt.datetime) else v


def customer_of(res: Resolver, row: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None, str]:
    """The customer a sheet row names: (row, None, column) or (None, why, column)."""
    cid, cust, name, phone = (_text(row.get(k)) for k in ("customer_id", "customer", "name", "phone"))
    col = "customer_id" if cid else ("customer" if cust else ("name" if name else "phone"))
    if cid:
        return (*res.find(ident=cid, name=name, phone=phone), col)
    if cust:
        m = _PAREN.match(cust)
        if m and m.group(2):  # 姓名（客户编号）, as the export writes it
            c, why = res.find(ident=m.group(2).strip(), name=m.group(1).strip() or None)
            if c is not None:
                return c, None, col
        c, why = res.find(ident=cust, name=cust, phone=phone)
        return c, why, col
    return (*res.find(name=name, phone=phone), col)


# -- reading the sheet -----------------------------------------------------------------------------
@dataclass
class SheetRow:
    row: int
    customer: dict[str, Any]
    at: dt.datetime
    result: str
    channel: str | None
    values: dict[str, Any]
    done_at: dt.datetime | None = None
    outcome: Any = None


def read_record(path: Path | str, model: ContactsModel, *, sheet: str | int | None = None,
                encoding: str | None = None, mapping: Path | str | None = None) -> Export:
    """The filled sheet through the shared ingest (aliases, Excel rows, encodings)."""
    return read_export(path, model.columns, sheet=sheet, encoding=encoding, mapping=load_mapping(mapping),
                       mapping_path=mapping)


def _check_rows(export: Export, model: ContactsModel, now: dt.datetime, resolve: Any, check_result: Any,
                extra: Any = None) -> list[SheetRow]:
    """Every row typed and checked; all problems raised together (nothing is imported)."""
    tz = now.tzinfo
    problems: list[Problem] = []
    out: list[SheetRow] = []
    h = export.header
    for rec in export.frame.to_dict("records"):
        r = int(rec["_row"])
        before = len(problems)
        cust, why, ccol = resolve(rec)
        if cust is None:
            problems.append(Problem(r, h(ccol), _text(rec.get(ccol)) or "", why or "找不到这位客户"))
        raw_at = _text(rec.get("at"))
        at = parse_when(raw_at, tz) if raw_at else None
        if raw_at is None:
            problems.append(Problem(r, h("at"), "", "请填写联系时间"))
        elif at is None:
            problems.append(Problem(r, h("at"), raw_at, "不是可识别的时间（写成 2026-11-24 10:30）"))
        elif at > now + FUTURE_SLACK:
            problems.append(Problem(r, h("at"), raw_at, "晚于现在：请写实际联系的时间"))
        raw_done = _text(rec.get("done_at"))
        done = parse_when(raw_done, tz) if raw_done else None
        if raw_done and done is None:
            problems.append(Problem(r, h("done_at"), raw_done, "不是可识别的时间（写成 2026-11-24 10:30）"))
        raw_ch = _text(rec.get("channel"))
        ch = model.channel(raw_ch) if raw_ch else None
        if raw_ch and ch is None:
            problems.append(Problem(r, h("channel"), raw_ch, f"不认识的联系渠道（可用：{model.channel_hint()}）"))
        raw_res = _text(rec.get("result"))
        result, outcome, msg = check_result(raw_res)
        if msg:
            problems.append(Problem(r, h("result"), raw_res or "", msg))
        if extra is not None:
            problems += extra(rec, r, h)
        if len(problems) == before:
            assert cust is not None and at is not None and result is not None
            out.append(SheetRow(r, cust, at, result, ch.key if ch else None, rec, done, outcome))
    if problems:
        raise InputError(f"执行记录中有 {len(problems)} 处问题，没有导入任何记录", path=export.path,
                         problems=problems[:MAX_PROBLEMS], total=len(problems),
                         hint="在 Excel 中按行号改正后重新导入（同一张表导入两次不会重复记录）")
    return out


# -- what is stored already -----------------------------------------------------------------------
def _stored(store: Store, kind: str, keys: list[str]) -> dict[tuple[str, str], list[tuple[str | None, str]]]:
    """(customer key, minute) → [(channel, result)] of the stored contacts of ``keys``."""
    from tierctl.store.core import _key_chunks
    from tierctl.store.schema import contacts

    c = contacts.c
    out: dict[tuple[str, str], list[tuple[str | None, str]]] = {}
    with store.reading() as conn:
        for cond in _key_chunks(conn, c.customer_key, keys):
            for k, at, ch, res in conn.execute(sa.select(c.customer_key, c.at, c.channel, c.result)
                                               .where(store.centre_is(contacts), c.kind == kind, cond)):
                out.setdefault((str(k), minute_key(at)), []).append((ch, res))
    return out


def _split(rows: list[SheetRow], stored: dict[tuple[str, str], list[tuple[str | None, str]]]
           ) -> tuple[list[SheetRow], list[dict[str, Any]], list[str]]:
    """(new rows, duplicate rows, warnings): a row is a duplicate when a stored (or earlier
    imported) contact has its customer and minute and the channels agree or one is blank."""
    new: list[SheetRow] = []
    dups: list[dict[str, Any]] = []
    warnings: list[str] = []
    seen = {k: list(v) for k, v in stored.items()}
    for r in rows:
        k = (str(r.customer["customer_key"]), minute_key(r.at))
        same = [(ch, res) for ch, res in seen.get(k, []) if ch is None or r.channel is None or ch == r.channel]
        if same:
            dups.append({"row": r.row, "customer_key": k[0], "at": r.at.isoformat()})
            if all(res != r.result for _, res in same):
                warnings.append(f"第 {r.row} 行：{k[0]} 在 {r.at:%Y-%m-%d %H:%M} 已有一条结果为「{same[0][1]}」的联系记录，"
                                f"表中写的是「{r.result}」，没有导入（同一客户同一分钟同一渠道只记一次）")
            continue
        seen.setdefault(k, []).append((r.channel, r.result))
        new.append(r)
    return new, dups, warnings


def _report(export: Export, rows: list[SheetRow], new: list[SheetRow], dups: list[dict[str, Any]],
            warnings: list[str], dry_run: bool, **extra: Any) -> dict[str, Any]:
    return {"file": str(export.path), "sheet": export.sheet, "rows": len(rows), "imported": 0 if dry_run else len(new),
            "would_import": len(new), "duplicates": len(dups), "duplicate_rows": [d["row"] for d in dups],
            "dry_run": dry_run, "ignored_columns": list(export.ignored_columns),
            "warnings": list(export.warnings) + warnings, **extra}


# -- shortage contacts -----------------------------------------------------------------------------
def import_contacts(store: Store, path: Path | str, *, now: dt.datetime, model: ContactsModel | None = None,
                    sheet: str | int | None = None, encoding: str | None = None, mapping: Path | str | None = None,
                    dry_run: bool = False) -> dict[str, Any]:
    """Import a filled execution record of shortage contacts (one transaction)."""
    from tierctl.daily.reading import _tiers
    from tierctl.daily.values import KIND

    model = model or load_contacts_model()
    export = read_record(path, model, sheet=sheet, encoding=encoding, mapping=mapping)
    info = store.latest_snapshot(KIND)
    if info is None:
        raise NotFoundError(f"历史数据库 {store.path} 中还没有配件短缺评分，无法对应客户",
                            hint="先运行 tierctl score 导出文件.xlsx（不加 --dry-run）")
    res = Resolver(store, KIND, info)
    tiers = {t["name"]: t for t in _tiers(info)}
    ovr = store.active_overrides(KIND)
    override = ovr.drop_duplicates("customer_key", keep="last").set_index("customer_key")["label"].to_dict() \
        if len(ovr) else {}
    allowed = model.results.get(KIND, ())

    def check_result(text: str | None) -> tuple[str | None, Any, str | None]:
        if not text:
            return None, None, "请填写联系结果"
        r = model.result(KIND, text)
        if r is None:
            return None, None, f"不认识的联系结果（可用：{'、'.join(allowed)}；在 {model.path.name} 的 [results] 中可增改）"
        return r, None, None

    rows = _check_rows(export, model, now, lambda rec: customer_of(res, rec), check_result)
    keys = sorted({str(r.customer["customer_key"]) for r in rows})
    new, dups, warnings = _split(rows, _stored(store, KIND, keys))
    if new and not dry_run:
        cols: dict[str, list[Any]] = {k: [] for k in ("customer_key", "customer_id", "name", "at", "result", "note",
                                                       "plan", "done_at", "by", "score", "label", "owner",
                                                       "logged_at", "channel")}
        for r in new:
            c = r.customer
            label = override.get(c["customer_key"], c.get("label"))
            by = _text(r.values.get("owner"))
            tier = tiers.get(label or "", {})
            for k, v in (("customer_key", c["customer_key"]), ("customer_id", c.get("customer_id")),
                         ("name", c.get("name")), ("at", r.at), ("result", r.result),
                         ("note", _text(r.values.get("note"))), ("plan", _text(r.values.get("plan"))),
                         ("done_at", r.done_at), ("by", by), ("score", c.get("score")), ("label", label),
                         ("owner", by or tier.get("owner_short") or tier.get("owner")), ("logged_at", now),
                         ("channel", r.channel)):
                cols[k].append(v)
        with store.transaction():
            store.add_contacts(KIND, cols)
    return _report(export, rows, new, dups, warnings, dry_run, snapshot_as_of=info.as_of.isoformat())


# -- churn interventions -------------------------------------------------------------------------------
def import_interventions(store: Store, churn_model: ChurnModel, path: Path | str, *, now: dt.datetime,
                         model: ContactsModel | None = None, sheet: str | int | None = None,
                         encoding: str | None = None, mapping: Path | str | None = None,
                         dry_run: bool = False) -> dict[str, Any]:
    """Import a filled execution record of churn interventions: each new row is logged as
    :func:`tierctl.churn_loop.log_intervention` logs one (follow-ups scheduled), all in one
    transaction.  The customer is looked up in the latest churn snapshot on or before the
    contact's day."""
    from tierctl.churn import history as churn_loop

    model = model or load_contacts_model()
    export = read_record(path, model, sheet=sheet, encoding=encoding, mapping=mapping)
    if store.latest_snapshot(churn_loop.KIND) is None:
        raise NotFoundError(f"历史数据库 {store.path} 中还没有流失风险评分，无法对应客户",
                            hint="先运行 tierctl churn 导出文件.xlsx（不加 --dry-run）")
    resolvers: dict[int, Resolver] = {}
    tz = now.tzinfo

    def resolve(rec: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None, str]:
        at = parse_when(_text(rec.get("at")), tz) if _text(rec.get("at")) else None
        day = (at or now).astimezone(tz).date()
        info = store.latest_snapshot(churn_loop.KIND, before=day + dt.timedelta(days=1))
        col = next((k for k in ("customer_id", "customer", "name", "phone") if _text(rec.get(k))), "customer_id")
        if info is None:
            return None, f"{day} 或更早没有流失风险评分", col
        if info.id not in resolvers:
            resolvers[info.id] = Resolver(store, churn_loop.KIND, info, fields=["level_key", "owner"])
        c, why, col = customer_of(resolvers[info.id], rec)
        if c is not None:
            if not c.get("listed"):
                return None, f"不在 {info.as_of} 的流失风险评分中（干预记录按联系当天最近一次评分对应客户）", col
            c["snapshot"] = info
        return c, why, col

    def check_result(text: str | None) -> tuple[str | None, Any, str | None]:
        if not text:
            return None, None, "请填写联系结果"
        try:
            o = churn_model.outcome(text)
        except UsageError as err:
            return None, None, f"不认识的联系结果（{err.hint}）"
        return o.label, o, None

    def extra(rec: Mapping[str, Any], r: int, h: Any) -> list[Problem]:
        if "action" not in export.headers:
            return []
        return [] if _text(rec.get("action")) else [Problem(r, h("action"), "", "请填写干预措施（做了什么）")]

    if "action" not in export.headers:
        raise InputError("缺少「干预措施」列：流失干预要写做了什么", path=export.path,
                         hint=f"可用表头：{'、'.join(model.columns.specs['action'].aliases[:5])}")
    rows = _check_rows(export, model, now, resolve, check_result, extra)
    keys = sorted({str(r.customer["customer_key"]) for r in rows})
    new, dups, warnings = _split(rows, _stored(store, churn_loop.KIND, keys))
    logged: list[dict[str, Any]] = []
    if new and not dry_run:
        with store.transaction():
            for r in sorted(new, key=lambda x: (x.at, x.row)):  # follow-ups follow the order things happened
                cost = r.values.get("cost")
                cost = None if cost is None or cost is pd.NA or (isinstance(cost, float) and math.isnan(cost)) \
                    else float(cost)
                by = _text(r.values.get("owner"))
                logged.append(churn_loop.log_intervention(
                    store, churn_model, str(r.customer["customer_key"]), action=str(_text(r.values.get("action"))),
                    result=r.result, at=r.at, now=now, feedback=_text(r.values.get("note")),
                    next_plan=_text(r.values.get("plan")), cost=cost, by=by, done_at=r.done_at,
                    customer=r.customer, channel=r.channel))
    scheduled = sum(len(x["followups_scheduled"]) for x in logged)
    closed = sum(len(x["followups_closed"]) for x in logged)
    return _report(export, rows, new, dups, warnings, dry_run, followups_scheduled=scheduled,
                   followups_closed=closed)


# -- bulk marks -------------------------------------------------------------------------------------
def mark_segment(store: Store, day: dt.date, *, now: dt.datetime, result: str, channel: str | None = None,
                 tiers: Iterable[str] = (), owner: str | None = None, at: dt.datetime | None = None,
                 note: str | None = None, by: str | None = None, model: ContactsModel | None = None
                 ) -> dict[str, Any]:
    """``tierctl contact --tier P3 --channel sms --result 已发送``: one contact for every
    customer of a segment of the stored run of ``day`` (the latest on or before it) —
    those of the given tiers (as they stand now: manual overrides count) and/or of one
    owner (a person, or a role such as 服务经理).  One transaction; a customer already
    holding a contact at that minute on that channel is not marked twice."""
    from tierctl.daily import owners
    from tierctl.daily.reading import _tiers, task_rows
    from tierctl.daily.values import KIND

    model = model or load_contacts_model()
    tiers = [t.strip().upper() for t in tiers if t.strip()]
    if not tiers and not owner:
        raise UsageError("批量记录要指定客户范围：--tier 和/或 --owner", hint="例如 --tier P3 --channel sms --result 已发送")
    r = model.result(KIND, result)
    if r is None:
        raise UsageError(f"联系结果「{result}」不在可选范围内",
                         hint=f"可选：{'、'.join(model.results.get(KIND, ()))}（{model.path.name} 的 [results] 可增改）")
    ch = None
    if channel:
        ch = model.channel(channel)
        if ch is None:
            raise UsageError(f"不认识的联系渠道「{channel}」", hint=f"可选：{model.channel_hint()}")
    info = store.latest_snapshot(KIND, before=day + dt.timedelta(days=1))
    if info is None:
        raise NotFoundError(f"历史数据库 {store.path} 中没有 {day} 或更早的评分",
                            hint="先运行 tierctl score 导出文件.xlsx（不加 --dry-run）")
    policy = _tiers(info)
    names = [t["name"] for t in policy]
    unknown = [t for t in tiers if t not in names]
    if unknown:
        raise UsageError(f"未知的分级「{'、'.join(unknown)}」", hint=f"可选：{'、'.join(names)}")
    rows, stale = task_rows(store, info, day)
    import numpy as np

    keep = np.ones(len(rows), dtype=bool)
    if tiers:
        keep &= rows["label"].isin(tiers).to_numpy(dtype=bool)
    if owner:
        keep &= owners.owner_mask(rows["label"], rows.get(owners.PERSON), owner, policy)
    seg = rows[keep].reset_index(drop=True)
    when = at or now
    warnings = []
    if stale > 0:
        warnings.append(f"最近一次评分是 {info.as_of}（{stale} 天前）：按那天的名单记录")
    keys = seg["customer_key"].astype(str).tolist()
    minute = minute_key(when)
    taken: set[str] = set()
    if keys:
        for (k, m), items in _stored(store, KIND, keys).items():
            if m == minute and any(c is None or ch is None or c == ch.key for c, _ in items):
                taken.add(k)
    todo = seg[~seg["customer_key"].astype(str).isin(taken)].reset_index(drop=True)
    by_tier = {t["name"]: t for t in policy}
    n = len(todo)
    if n:
        labels = todo["label"].astype(str).tolist()
        persons = [_text(v) for v in todo[owners.PERSON].tolist()] if owners.PERSON in todo else [None] * n
        cols: dict[str, list[Any]] = {
            "customer_key": todo["customer_key"].astype(str).tolist(),
            "customer_id": [_text(v) for v in todo["customer_id"].tolist()] if "customer_id" in todo else [None] * n,
            "name": [_text(v) for v in todo["name"].tolist()] if "name" in todo else [None] * n,
            "at": [when] * n, "result": [r] * n, "note": [note] * n, "by": [by] * n,
            "score": [_plain(v) for v in todo["score"].tolist()] if "score" in todo else [None] * n,
            "label": labels,
            "owner": [by or p or by_tier.get(lb, {}).get("owner_short") or by_tier.get(lb, {}).get("owner")
                      for lb, p in zip(labels, persons, strict=True)],
            "logged_at": [now] * n, "channel": [ch.key if ch else None] * n,
        }
        with store.transaction():
            store.add_contacts(KIND, cols)
    counts = todo["label"].astype(str).value_counts().to_dict() if n else {}
    return {"marked": n, "already": len(seg) - n, "segment": len(seg), "tiers": tiers, "owner": owner,
            "channel": ch.key if ch else None, "result": r, "at": when.isoformat(),
            "snapshot_as_of": info.as_of.isoformat(), "by_tier": {k: int(v) for k, v in counts.items()},
            "warnings": warnings}
