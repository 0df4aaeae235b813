"""The churn job's whole runs — what ``tierctl churn``, ``churn report`` and ``touches`` do.

Each run takes what it depends on as parameters: the ``config`` (a
:class:`tierctl.config.Config` or anything with ``.get(key, default)``), a ``clock``
(a zero-argument callable giving ``(as_of, now)``; called once the input is read, so a
bad file is reported before a bad ``--now``) and the ``store`` — a
:class:`tierctl.store.Store`, or a zero-argument opener that the run calls only when it
needs the store (a dry run never creates a database) and closes again.  The CLI parses
options into these, calls a run and displays the result; nothing here prints.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from tierctl.churn.model import ChurnModel, load_churn_model
from tierctl.churn.score import ChurnResult, score_churn
from tierctl.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tierctl.churn.report import LoopReport
    from tierctl.churn.touches import DraftedTouches
    from tierctl.io.ingest import Export
    from tierctl.store import Store

Clock = Callable[[], tuple[dt.date, dt.datetime]]
Step = Callable[[str], None]


def model_for(config: Any, name: str | None = None) -> ChurnModel:
    """The churn model a run uses: ``name`` (packaged name or path), else the config's
    ``churn.model``, else the packaged ``churn``."""
    return load_churn_model(name or config.get("churn.model", "churn") or "churn")


@contextmanager
def _opened(store: Any) -> Iterator[Store]:
    """The store itself, or the one an opener gives (closed again afterwards)."""
    from tierctl.store import Store

    if isinstance(store, Store):
        yield store
        return
    s = store()
    try:
        yield s
    finally:
        s.close()


def _read(file: Path, model: ChurnModel, *, sheet: str | None, encoding: str | None,
          mapping: Path | None) -> Export:
    from tierctl.io.ingest import load_mapping, read_export

    return read_export(file, model.ingest_columns, sheet=sheet, encoding=encoding,
                       mapping=load_mapping(mapping), mapping_path=mapping)


# =====================================================================================
# tierctl churn FILE: ingest -> score -> store -> result
# =====================================================================================

@dataclass
class ScoreRun:
    model: ChurnModel
    export: Export
    result: ChurnResult
    snapshot: dict[str, Any]  # {"stored": False} on a dry run, else what save_result says

    @property
    def warnings(self) -> list[str]:
        """Everything to tell the user after the output: the ingest's warnings, the
        signals that could not be evaluated, the scoring's warnings."""
        return (list(self.export.warnings) + [f"无法评估的信号：{s}" for s in self.result.unavailable_signals]
                + list(self.result.warnings))


def score(file: Path, model: ChurnModel, clock: Clock, store: Any = None, *, sheet: str | None = None,
          encoding: str | None = None, mapping: Path | None = None, step: Step | None = None) -> ScoreRun:
    """Read an export through the shared ingest, score it and, unless ``store`` is None
    (a dry run), keep it as the ``churn`` snapshot of its as-of day."""
    export = _read(file, model, sheet=sheet, encoding=encoding, mapping=mapping)
    as_of, now = clock()
    if step is not None:
        step(f"给 {len(export.frame):,} 位客户打分 …")
    result = score_churn(export.frame, model, as_of, now, headers=export.headers, path=export.path)
    snapshot: dict[str, Any] = {"stored": False}
    if store is not None:
        from tierctl.churn.history import save_result
        from tierctl.kernels.file_hash import sha256_file

        source = {"path": str(export.path), "sheet": export.sheet, "encoding": export.encoding,
                  "headers": dict(export.headers)}
        with _opened(store) as s:
            snapshot = save_result(s, result, model, source_name=Path(export.path).name,
                                   source_hash=sha256_file(export.path), source=source)
            snapshot["path"] = str(s.path)
    return ScoreRun(model, export, result, snapshot)


# =====================================================================================
# tierctl churn report
# =====================================================================================

@dataclass
class ReportRun:
    report: LoopReport
    stem: str  # the workbook's file name without .xlsx
    workbook: Path | None = None


def report(model: ChurnModel, clock: Clock, store: Any = None, *, seed_table: bool = False,
           table: Path | None = None, visits: Path | None = None, start: dt.date | None = None,
           end: dt.date | None = None, sheet: str | None = None, encoding: str | None = None,
           out: Path | None = None, force: bool = False) -> ReportRun:
    """The period report: the seed's table, a figures file (``table``) or the store's
    history (``start``…``end``, win-back also from ``visits``); written as a workbook
    into the folder ``out`` when given."""
    from tierctl.churn import report as rp

    if seed_table:
        run = ReportRun(rp.seed_report(model), "churn_report_seed")
    elif table is not None:
        rep = rp.table_report(rp.read_table(table, sheet=sheet, encoding=encoding), model,
                              title=f"{table.name} 流失挽回效果")
        run = ReportRun(rep, f"churn_report_{table.stem}")
    else:
        _, now = clock()
        vis = None
        if visits is not None:
            from tierctl.io.ingest import read_export

            vis = read_export(visits, model.visit_columns, sheet=sheet, encoding=encoding).frame
        with _opened(store) as s:
            rep = rp.loop_report(s, model, start=start, end=end, now=now, visits=vis)
        run = ReportRun(rep, f"churn_report_{rep.start}_{rep.end}")
    if out is not None:
        from tierctl.churn.workbook import write_report_xlsx

        if out.exists() and not out.is_dir():
            raise UsageError(f"--out 应为文件夹，而 {out} 是一个文件")
        run.workbook = write_report_xlsx(run.report, out / f"{run.stem}.xlsx", force=force)
    return run


# =====================================================================================
# tierctl touches
# =====================================================================================

@dataclass
class TouchesRun:
    drafted: DraftedTouches
    start: dt.date
    days: int
    source: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    sms_files: list[Path] = field(default_factory=list)
    sms_rows: int = 0
    sms_segments: int = 0

    def to_json(self) -> dict[str, Any]:
        from tierctl.churn.touches import touches_json

        return touches_json(self.drafted, self.start, self.days, self.source)


def touches(model: ChurnModel, config: Any, clock: Clock, store: Any = None, *, file: Path | None = None,
            days: int = 7, all_levels: bool = False, sheet: str | None = None, encoding: str | None = None,
            mapping: Path | None = None, templates: Path | None = None, allow_taboo: bool = False,
            lang: str = "zh", sms_out: Path | None = None, force: bool = False) -> TouchesRun:
    """The upkeep touches of ``days`` days from the clock's as-of date, for the customers
    of ``file`` (scored on the spot) or of the latest churn snapshot in the store, each
    with a drafted message; with ``sms_out`` also the SMS platform's bulk files."""
    from tierctl.churn.festivals import touches as upkeep
    from tierctl.churn.touches import draft_touches

    start, now = clock()
    customers, source, warnings = _touch_customers(model, start, now, store, file=file, sheet=sheet,
                                                   encoding=encoding, mapping=mapping)
    tt = upkeep(customers, start, days, model, only_low=not all_levels)
    tpl = templates or (Path(config.get("render.templates")).expanduser()
                        if config.get("render.templates") else None)
    drafted = draft_touches(tt, customers, model, config, lang=lang, templates=tpl, allow_taboo=allow_taboo)
    if drafted.taboo:
        warnings.append(f"{len(drafted.taboo)} 处禁忌用语（--allow-taboo 已放行）：" + "；".join(
            f"{h.file}「{h.phrase}」" for h in drafted.taboo[:5]))
    run = TouchesRun(drafted, start, days, source, warnings)
    if sms_out is not None:
        from tierctl.render import sms_platform

        msgs = [sms_platform.Message(phone=r["phone"], name=r["name"], text=r["message"], customer_id=r["customer_id"])
                for r in drafted.touches.to_dict("records")]
        prep = sms_platform.prepare(msgs, config, marketing=True)  # upkeep touches are marketing
        run.sms_files = list(sms_platform.write_files(prep, sms_out, lang=lang, force=force))
        run.sms_rows, run.sms_segments = len(prep.rows), prep.segments
        warnings += prep.warnings
    return run


def _touch_customers(model: ChurnModel, start: dt.date, now: dt.datetime, store: Any, *, file: Path | None,
                     sheet: str | None, encoding: str | None,
                     mapping: Path | None) -> tuple[pd.DataFrame, dict[str, Any], list[str]]:
    """(customers, where they came from, warnings): a file scored now, or the store's
    latest churn snapshot on or before ``start``."""
    if file is not None:
        ex = _read(file, model, sheet=sheet, encoding=encoding, mapping=mapping)
        customers = score_churn(ex.frame, model, start, now, headers=ex.headers, path=ex.path).customers
        return customers, {"file": str(file)}, list(ex.warnings)
    from tierctl.churn.history import latest_customers

    with _opened(store) as s:
        info, customers = latest_customers(s, start, fields=["level_key", "birthday", "mileage_since_service"])
    warnings = []
    if (start - info.as_of).days > 7:
        warnings.append(f"最近一次流失风险评分是 {info.as_of}：等级和里程可能已过时，请先运行 tierctl churn")
    return customers, {"snapshot": info.as_of.isoformat()}, warnings
