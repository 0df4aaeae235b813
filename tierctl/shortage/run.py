"""The shortage job's morning run: ingest → score → crisis level → store → result.

``run(file, config=…, clock=…, store=…)`` is the whole run of ``tierctl score`` (and of
``render`` and ``allocate``, which score first).  The configuration, the clock and the
store are parameters, so a test runs a morning against an in-memory store at a fixed
time; the CLI only parses options, calls it and displays the result.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tierctl.shortage.crisis import Crisis, crisis_level
from tierctl.shortage.model import ShortageModel, load_model
from tierctl.shortage.report import ShortageResult
from tierctl.shortage.score import score

if TYPE_CHECKING:
    from tierctl.io.ingest import Export
    from tierctl.store.core import Store

Clock = Callable[[], tuple[dt.date, dt.datetime]]  # the as-of date and the run's time


class Config(Protocol):
    def get(self, dotted: str, default: Any = None) -> Any: ...

    def path_of(self, dotted: str) -> Path | None: ...


@dataclass
class ScoreRun:
    """What a morning run gives: the model, the typed export, the scored result, the
    crisis level (re-computed when manual overrides changed tiers) and, when stored, the
    record of the run (``changes``, ``alerts_fired``, ``snapshot``)."""

    model: ShortageModel
    export: Export
    result: ShortageResult
    crisis: Crisis
    record: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The mapping ``cli.score.run_score`` has always returned."""
        out: dict[str, Any] = {"model": self.model, "export": self.export, "result": self.result,
                               "crisis": self.crisis}
        if self.record is not None:
            out.update(changes=self.record["changes"], alerts_fired=self.record["alerts_fired"],
                       snapshot=self.record["snapshot"])
        return out


def load_inputs(file: Path, model_name: str | None, sheet: str | None, encoding: str | None,
                mapping: Path | None, config: Config) -> tuple[ShortageModel, Export]:
    """Model + typed export: shared by every command that scores a shortage export."""
    from tierctl.io.ingest import load_mapping, read_export
    from tierctl.io.values import one_chunk_each

    model = load_model(model_name or config.get("score.model", "rite") or "rite")
    export = read_export(file, model.columns, sheet=sheet, encoding=encoding,
                         mapping=load_mapping(mapping), mapping_path=mapping)
    one_chunk_each(export.frame)  # (the rows are taken in urgency order, a slice at a time, later)
    return model, export


def red_list(opt: Path | None, config: Config) -> set[str] | None:
    """The red list (``--red-list``, else ``score.red_list`` of the configuration)."""
    from tierctl.io.lists import read_id_list

    path = opt or config.path_of("score.red_list")
    return read_id_list(path) if path else None


def _no_step(_text: str) -> None:
    return None


def run(file: Path, *, config: Config, clock: Clock, store: Store | Callable[[], Store] | None = None,
        close_store: bool = False, model_name: str | None = None, sheet: str | None = None,
        encoding: str | None = None, mapping: Path | None = None, red: Path | None = None,
        eta_weeks: float | None = None, dry_run: bool = False, detail_limit: int | None = None,
        progress: Callable[[str], None] = _no_step) -> ScoreRun:
    """Ingest, score, (store) one shortage export.

    ``clock`` gives (as-of date, run time); it is read after the export.  ``store``: the
    store to read the history from and record the run in (None: no history), or a call
    that opens it — made after the export is read, so a bad file is reported before a bad
    database.  ``close_store``: close it when done (in the background after a recorded
    run, while the caller prints).  ``detail_limit``: the changes and alerts of the day are
    worked out for the first so many customers of each kind (None: all)."""
    from tierctl.kernels.memory import give_back, return_at_once

    return_at_once()  # a large export's buffers go back as soon as each step is done with them
    digest = None
    if store is not None and not dry_run:  # hashed beside ingest and scoring, on the second core
        from tierctl.kernels.file_hash import sha256_in_background

        digest = sha256_in_background(file)
    model, export = load_inputs(file, model_name, sheet, encoding, mapping, config)
    as_of, now = clock()
    db = store() if callable(store) else store
    try:
        result, crisis = _score(db, model, export, as_of, now, config, red, eta_weeks, progress)
        give_back()  # the crisis level's temporaries
    except BaseException:
        if db is not None and close_store:
            db.close()
        raise
    if db is None:
        return ScoreRun(model, export, result, crisis)
    progress("保存到历史数据库 …")
    try:
        rec = _record(db, result, export, crisis, dry_run, detail_limit, digest)
    finally:
        if close_store:
            db.close(background=True)  # the checkpoint runs while the morning output is printed
    return ScoreRun(model, export, result, rec["crisis"], rec)


def _score(db: Store | None, model: ShortageModel, export: Export, as_of: dt.date, now: dt.datetime,
           config: Config, red: Path | None, eta_weeks: float | None, progress: Callable[[str], None],
           ) -> tuple[ShortageResult, Crisis]:
    previous = week_ago = None
    if db is not None:
        from tierctl.daily import history as daily_history

        progress("读取历史 …")
        previous, week_ago = daily_history.previous_frames(db, model, as_of)
    progress(f"给 {len(export.frame):,} 位客户打分 …")
    result = score(export.frame, model, as_of, now, previous=previous, week_ago=week_ago,
                   red_list=red_list(red, config), headers=export.headers, path=export.path)
    from tierctl.kernels.memory import give_back

    give_back()  # scoring's temporaries
    from tierctl.render.values import crisis_eta_weeks

    # the parts ETA as render reads it (parts.by_part / parts.eta_date / parts.eta_weeks); --eta-weeks wins
    eta, eta_warnings = crisis_eta_weeks(result, config, eta_weeks)
    result.warnings.extend(eta_warnings)
    return result, crisis_level(result, eta)


def _record(db: Store, result: ShortageResult, export: Export, crisis: Crisis, dry_run: bool,
            detail_limit: int | None, digest: Callable[[], str | None] | None) -> dict[str, Any]:
    """Store the run (a dry run stores nothing) and return its record."""
    from tierctl.daily import history as daily_history
    from tierctl.daily import values as daily_values
    from tierctl.kernels import file_hash as kernels_file_hash

    source = {"path": str(export.path), "sheet": export.sheet, "encoding": export.encoding,
              "headers": dict(export.headers)}
    rec = daily_history.record_run(db, result, crisis, source_name=Path(export.path).name,
                          source_hash=digest() if digest else kernels_file_hash.sha256_file(export.path),
                          dry_run=dry_run, extra_meta={"source": source}, detail_limit=detail_limit)
    rec["snapshot"]["path"] = getattr(db, "display_path", db.path)
    if not dry_run:
        rec["snapshot"]["alerts_open"] = db.count_alerts(daily_values.KIND)
    return rec
