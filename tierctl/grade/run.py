"""The whole grading run (job D): ingest → grade → compare → letters → store → result.

Takes the configuration, the clock (a callable giving the as-of date and now) and the
store (a callable opening it, ``None`` for a dry run without a database; opened only
once the export has been read, closed at the end) as parameters; shows nothing and parses no options
(the CLI does both).  Order matters for "nothing half-written": every check (input,
overrides, templates, taboo phrases, letters already on disk) runs before anything is
stored or written; the letters are written into a temporary folder, the snapshot is
stored, then the letters move into place.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tierctl.grade import history, report
from tierctl.grade.changes import GradeChanges, compare
from tierctl.grade.ingest import read_grading_export, read_overrides_file
from tierctl.grade.model import GradeModel
from tierctl.grade.score import grade_customers


def _quiet(_text: str) -> contextlib.AbstractContextManager[Any]:
    return contextlib.nullcontext()


def run_grade(file: Path, model: GradeModel, *, config: Any, clock: Callable[[], tuple[dt.date, dt.datetime]],
              open_store: Callable[[], Any],
              overrides: Path | None = None, sheet: str | None = None, encoding: str | None = None,
              mapping: Path | None = None, dry_run: bool = False, out: Path | None = None, force: bool = False,
              lang: str | Callable[[], str] = "zh", templates: Path | None = None, allow_taboo: bool = False,
              progress: Callable[[str], contextlib.AbstractContextManager[Any]] = _quiet) -> dict[str, Any]:
    """Grade ``file`` and keep the run; returns ``model``, ``export``, ``result``,
    ``changes``, ``previous``, ``letters``, ``snapshot``, ``db``, ``warnings``, ``dry_run``.
    ``lang`` (the letters' language) may be a callable, asked only when there are letters;
    ``progress`` wraps the slow steps (the CLI's spinner)."""
    with progress(f"读取 {file.name} …"):
        export = read_grading_export(file, model, sheet=sheet, encoding=encoding, mapping=mapping)
    as_of, now = clock()
    from_file = read_overrides_file(overrides) if overrides is not None else None
    warnings: list[str] = list(export.warnings)
    store = open_store()
    try:
        return _graded(export, model, config, as_of, now, store, from_file, warnings, overrides=overrides,
                       dry_run=dry_run, out=out, force=force, lang=lang, templates=templates,
                       allow_taboo=allow_taboo, progress=progress)
    finally:
        if store is not None:
            store.close()


def _graded(export: Any, model: GradeModel, config: Any, as_of: dt.date, now: dt.datetime, store: Any,
            from_file: Any, warnings: list[str], *, overrides: Path | None, dry_run: bool, out: Path | None,
            force: bool, lang: str | Callable[[], str], templates: Path | None, allow_taboo: bool,
            progress: Callable[[str], contextlib.AbstractContextManager[Any]]) -> dict[str, Any]:
    tz = now.tzinfo
    assert tz is not None  # the clock always gives an aware time
    stored = history.stored_overrides(store, tz) if store is not None else None
    ov, ov_warnings = history.combine_overrides(from_file, stored)
    with progress(f"给 {len(export.frame):,} 位客户分级 …"):
        result = grade_customers(export.frame, model, as_of, overrides=ov, path=export.path,
                                 overrides_path=overrides, headers=export.headers)
    warnings += ov_warnings + result.warnings
    prev = history.previous_grading(store, as_of) if store is not None else None
    changes: GradeChanges | None = None
    previous = None
    if prev is not None:
        previous, prev_rows = prev
        changes = compare(prev_rows, result)
        warnings += changes.warnings
        if previous.model_name != model.name or previous.meta.get("normalise", model.normalise) != model.normalise:
            warnings.append(f"上次分级（{previous.as_of}）用的是模型 {previous.model_name}"
                            f"（{previous.meta.get('normalise', '?')}），本次是 {model.name}（{model.normalise}）："
                            "部分升降级可能来自评分方式的变化")
    letters = None
    if changes is not None:
        out_root = out or Path(config.get("render.out") or "out")
        letters = report.render_letters(changes, result, config, out_root, lang=lang() if callable(lang) else lang,
                                        templates=templates, allow_taboo=allow_taboo)
        warnings += letters.warnings
        if not dry_run:
            report.check_letters_writable(letters, force)
        elif letters.clash or letters.stale:
            warnings.append(f"{letters.folder} 中已有这一天的说明函（正式运行时需要 --force 才会替换）")
    info = None
    if not dry_run:
        assert store is not None
        meta = history.snapshot_meta(result, changes, previous)
        staged = report.staged_letters(letters) if letters is not None else contextlib.nullcontext()
        with staged:
            info = history.save_grading(store, result, export.path, meta, now)
    return {"model": model, "export": export, "result": result, "changes": changes, "previous": previous,
            "letters": letters, "snapshot": info, "db": None if store is None else store.path,
            "warnings": warnings, "dry_run": dry_run}
