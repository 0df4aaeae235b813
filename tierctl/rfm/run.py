"""The whole RFM run, library side (issue 15): ingest → score → store → result.

:func:`run_weekly` (``tierctl rfm run``) and :func:`run_migrate` (``tierctl rfm migrate``)
take what the CLI resolved — the model, the as-of date (the clock), a store opener and
the options — and return what the display needs.  No typer, no rich, no terminal.

``open_store(read_only)`` returns an open :class:`~tierctl.store.Store`: read-only runs
never create a database file.  A snapshot is named by a date or by :data:`LATEST`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tierctl.errors import NotFoundError, UsageError
from tierctl.rfm.model import Edges, RfmModel

if TYPE_CHECKING:
    import pandas as pd

    from tierctl.io.ingest import Export
    from tierctl.store import SnapshotInfo, Store

KIND = "rfm"
LATEST = "latest"
OpenStore = Callable[[bool], "Store"]
SnapshotRef = dt.date | str  # a date, or LATEST


def _dates(store: Store) -> str:
    dates = [s.as_of.isoformat() for s in store.list_snapshots(KIND)]
    return "、".join(dates[-12:]) if dates else "（无）"


def _where(store: Store) -> str:
    return str(getattr(store, "display_path", store.path))


def _snapshot_for(store: Store, ref: SnapshotRef, before: dt.date | None) -> SnapshotInfo:
    """The stored RFM snapshot a user names: a date, or :data:`LATEST`."""
    if not isinstance(ref, dt.date):
        info = store.latest_snapshot(KIND, before=before)
        if info is None:
            raise NotFoundError(f"历史数据库 {_where(store)} 中没有{'评估日 ' + before.isoformat() + ' 之前的' if before else ''}"
                                "RFM 快照", hint="先运行 tierctl rfm 导出文件（不加 --dry-run）保存一次")
        return info
    found = store.snapshot_on(KIND, ref)
    if found is None:
        raise NotFoundError(f"历史数据库 {_where(store)} 中没有 {ref.isoformat()} 的 RFM 快照",
                            hint=f"已保存的评估日期：{_dates(store)}")
    return found


def _edges_of(info: SnapshotInfo) -> Edges:

    data = info.meta.get("edges")
    if not data:
        raise UsageError(f"{info.as_of.isoformat()} 的 RFM 快照没有保存分箱边界，不能冻结")
    return Edges.from_dict(data)


def _check_unit(model: RfmModel, info: SnapshotInfo) -> None:
    unit = info.meta.get("unit", "owner")
    if unit != model.unit:
        raise UsageError(f"{info.as_of.isoformat()} 的快照按{_unit_zh(unit)}统计，本次按{_unit_zh(model.unit)}",
                         hint=f"加 --unit {unit}，两次才可比较")


def _unit_zh(unit: str) -> str:
    return "车辆（VIN）" if unit == "vin" else "车主"



def read_visits(file: Path, model: RfmModel, *, sheet: str | None = None, encoding: str | None = None,
                mapping: Path | None = None) -> Export:
    """The visits export, read for RFM: plain dates and amounts typed by the CSV reader
    itself, and the VIN column (found, but not needed when counting per owner) kept as
    codes only — less time and memory on millions of rows, the same frame and the same
    messages for every bad cell (see :func:`tierctl.io.ingest.read_export`)."""
    from tierctl.io.ingest import load_mapping, read_export

    unused = frozenset() if model.unit == "vin" else frozenset({"vin"})
    export = read_export(file, model.columns, sheet=sheet, encoding=encoding, mapping=load_mapping(mapping),
                         mapping_path=mapping, native=True, unused=unused)
    return export  # (read_export has given the reader's freed blocks back to the system)


def run_weekly(file: Path, model: RfmModel, as_of: dt.date, *, open_store: OpenStore,
               freeze: SnapshotRef | None = None, sheet: str | None = None, encoding: str | None = None,
               mapping: Path | None = None, dry_run: bool = False, out: Path | None = None,
               force: bool = False) -> dict[str, Any]:
    """Ingest, score, store the snapshot (unless ``dry_run``), write the workbook (with
    ``out``); returns what the display needs."""
    from tierctl.io.writers import check_writable
    from tierctl.rfm.history import snapshot_meta, snapshot_rows
    from tierctl.rfm.report import weekly_path, write_weekly
    from tierctl.rfm.score import compute_rfm

    workbook = weekly_path(out, as_of) if out is not None else None
    if workbook is not None and not dry_run:
        check_writable(workbook, force)  # before any work: nothing half-done
    edges = frozen_from = None
    if freeze is not None:
        store = open_store(True)
        try:
            info = _snapshot_for(store, freeze, as_of)
        finally:
            store.close()
        _check_unit(model, info)
        edges, frozen_from = _edges_of(info), info.as_of
    digest = None
    if not dry_run:  # a visit history runs to hundreds of MB: hashed beside ingest, on the second core
        from tierctl.kernels.file_hash import sha256_in_background

        digest = sha256_in_background(file)
    export = read_visits(file, model, sheet=sheet, encoding=encoding, mapping=mapping)
    result = compute_rfm(export.frame, model, as_of, edges=edges)
    run: dict[str, Any] = {"model": model, "export": export, "result": result, "frozen_from": frozen_from,
                           "snapshot": None, "workbook": None}
    if dry_run:
        return run
    source = {"path": str(export.path), "sheet": export.sheet, "encoding": export.encoding,
              "headers": dict(export.headers)}
    meta = snapshot_meta(result, source=source, frozen_from=frozen_from.isoformat() if frozen_from else None)
    store = open_store(False)
    try:
        replaced = store.snapshot_on(KIND, as_of) is not None
        sid = store.save_snapshot(KIND, as_of, model.name, Path(export.path).name,
                                  digest() if digest else None, snapshot_rows(result), meta)
        run["snapshot"] = {"id": sid, "as_of": as_of.isoformat(), "customers": len(result.customers),
                           "replaced": replaced, "path": _where(store)}
    finally:
        store.close()
    if workbook is not None:
        run["workbook"] = write_weekly(result, model, workbook, force=force, source=Path(export.path).name,
                                       frozen_from=frozen_from)
    return run


@dataclass
class Side:
    """One side of a migration: a stored snapshot or an export scored now."""

    as_of: dt.date
    customers: pd.DataFrame
    edges: Edges | None
    unit: str
    monetary_basis: str
    source: str  # how to say where it came from


def _side_from_store(store: Store, info: SnapshotInfo, label: str) -> Side:
    from tierctl.rfm.history import customers_from_snapshot

    meta = info.meta or {}
    unit = meta.get("unit", "owner")
    rows = store.snapshot_rows(info.id)
    edges = Edges.from_dict(meta["edges"]) if meta.get("edges") else None
    return Side(info.as_of, customers_from_snapshot(rows, unit), edges, unit, meta.get("monetary_basis", "sum"),
                f"{label}：已保存的快照 {info.as_of.isoformat()}（{info.source_name or '来源未知'}）")


def _side_from_file(path: Path, model: RfmModel, as_of: dt.date, edges: Edges | None, label: str,
                    sheet: str | None, encoding: str | None, mapping: Path | None) -> tuple[Side, list[str]]:
    from tierctl.rfm.score import compute_rfm

    export = read_visits(path, model, sheet=sheet, encoding=encoding, mapping=mapping)
    result = compute_rfm(export.frame, model, as_of, edges=edges)
    how = "（按上期边界评分）" if edges is not None else ""
    return (Side(as_of, result.customers, result.edges, result.unit, result.monetary_basis,
                 f"{label}：文件 {Path(path).name}，评估日 {as_of.isoformat()}{how}"),
            [f"{Path(path).name}：{w}" for w in export.warnings])




@dataclass
class MigrateRequest:
    """What ``tierctl rfm migrate`` asked for.  ``from_ref``/``to_ref``: stored snapshots
    (a date or :data:`LATEST`; ``None`` = the default side); with ``from_file`` /
    ``to_file`` they are the files' as-of dates instead (``to_ref`` then a date)."""

    from_ref: SnapshotRef | None = None
    to_ref: SnapshotRef | None = None
    from_file: Path | None = None
    to_file: Path | None = None
    freeze: bool = False
    unit: str | None = None
    sheet: str | None = None
    encoding: str | None = None
    mapping: Path | None = None


def run_migrate(req: MigrateRequest, model: RfmModel, *, open_store: OpenStore) -> dict[str, Any]:
    """Resolve both sides (stored snapshots or exports), re-score the later one on the
    earlier one's edges with ``freeze``, and compare them."""
    from tierctl.rfm.history import flow_customers, migrate

    warnings: list[str] = []
    store = open_store(True) if req.from_file is None or req.to_file is None else None
    try:
        curr_info, to_d = _later_side(store, req)
        prev = _earlier_side(store, req, model, to_d, warnings)
        if req.freeze and prev.edges is None:
            raise UsageError(f"上期（{prev.as_of.isoformat()}）没有保存分箱边界，不能冻结")
        curr = _current(store, req, model, curr_info, to_d, prev, warnings)
    finally:
        if store is not None:
            store.close()
    if prev.unit != curr.unit:
        raise UsageError(f"上期按{_unit_zh(prev.unit)}统计，本期按{_unit_zh(curr.unit)}，不能比较迁移")
    if req.unit and req.unit.lower() != curr.unit:
        raise UsageError(f"快照按{_unit_zh(curr.unit)}统计，与 --unit {req.unit} 不符")
    key = "vin" if curr.unit == "vin" else "customer_id"
    mig = migrate(prev.customers, curr.customers, model, key=key, prev_edges=prev.edges, curr_edges=curr.edges,
                  prev_as_of=prev.as_of, curr_as_of=curr.as_of)
    flows = flow_customers(mig, prev.customers, curr.customers, key)
    return {"model": model, "migration": mig, "flows": flows, "prev": prev, "curr": curr, "unit": curr.unit,
            "warnings": warnings}


def _later_side(store: Store | None, req: MigrateRequest) -> tuple[SnapshotInfo | None, dt.date]:
    # the later side's date first: "latest before it" is the default earlier side
    if req.to_file is not None:
        assert isinstance(req.to_ref, dt.date)
        return None, req.to_ref
    assert store is not None
    if req.to_ref is not None:
        info = _snapshot_for(store, req.to_ref, None)
    else:
        found = store.latest_snapshot(KIND)
        if found is None:
            raise NotFoundError(f"历史数据库 {_where(store)} 中还没有 RFM 快照",
                                hint="先运行 tierctl rfm 导出文件（不加 --dry-run）保存快照；"
                                     "或用 --from-file / --to-file 直接比较两个导出文件")
        info = found
    return info, info.as_of


def _earlier_side(store: Store | None, req: MigrateRequest, model: RfmModel, to_d: dt.date,
                  warnings: list[str]) -> Side:
    if req.from_file is not None:
        if not isinstance(req.from_ref, dt.date):
            raise UsageError("用 --from-file 时需要用 --from 给出它的评估日期", hint="例如 --from 2026-10-24")
        if req.from_ref >= to_d:
            raise UsageError(f"--from {req.from_ref.isoformat()} 应早于本期 {to_d.isoformat()}")
        prev, w = _side_from_file(req.from_file, model, req.from_ref, None, "上期", req.sheet, req.encoding,
                                  req.mapping)
        warnings += w
        return prev
    assert store is not None
    if req.from_ref is not None:
        info = _snapshot_for(store, req.from_ref, None)
    else:
        found = store.latest_snapshot(KIND, before=to_d)
        if found is None:
            raise NotFoundError(f"历史数据库 {_where(store)} 中没有 {to_d.isoformat()} 之前的 RFM 快照，"
                                "无法比较", hint=f"已保存的评估日期：{_dates(store)}")
        info = found
    if info.as_of >= to_d:
        raise UsageError(f"上期 {info.as_of.isoformat()} 应早于本期 {to_d.isoformat()}",
                         hint="--from 写较早的日期，--to 写较晚的日期")
    return _side_from_store(store, info, "上期")


def _current(store: Store | None, req: MigrateRequest, model: RfmModel, info: SnapshotInfo | None,
             to_d: dt.date, prev: Side, warnings: list[str]) -> Side:
    from tierctl.rfm.history import rescore

    frozen = prev.edges if req.freeze else None
    if req.to_file is not None:
        if prev.unit != model.unit:
            raise UsageError(f"上期按{_unit_zh(prev.unit)}统计，本期按{_unit_zh(model.unit)}",
                             hint=f"加 --unit {prev.unit}")
        curr, w = _side_from_file(req.to_file, model, to_d, frozen, "本期", req.sheet, req.encoding, req.mapping)
        warnings += w
        return curr
    assert store is not None and info is not None
    curr = _side_from_store(store, info, "本期")
    if frozen is not None:
        curr.customers = rescore(curr.customers, model, frozen, monetary_basis=curr.monetary_basis)
        curr.edges = frozen
        curr.source += "，按上期边界重新评分"
    return curr
