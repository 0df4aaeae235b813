"""The churn job as a package (issue 15): signals in the one registry, the shared
ColumnSpec, the job's run taking clock and store as parameters, the folder rules."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from tierctl.churn import load_churn_model, score_churn
from tierctl.io.ingest import ColumnSpec
from tierctl.models.loader import PACKAGED_DIR
from tierctl.models.registry import Registry
from tierctl.store import Store

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "tierctl" / "churn"
SAMPLE = ROOT / "sample_data" / "churn.csv"
TZ = dt.timezone(dt.timedelta(hours=8))
AS_OF = dt.date(2026, 11, 24)
NOW = dt.datetime(2026, 11, 24, 9, 0, tzinfo=TZ)


def test_signals_are_built_from_the_one_registry():
    from tierctl.churn.signals import SIGNALS, OverdueSignal

    assert isinstance(SIGNALS, Registry)
    assert SIGNALS["overdue"] is OverdueSignal
    assert set(SIGNALS.names()) == {"overdue", "days_since", "band", "drop", "pct_drop", "keywords", "flag"}
    model = load_churn_model()
    assert all(SIGNALS[s.type] is type(s) for s in model.signals)


def test_a_new_signal_is_one_class_and_one_block_in_the_model_file(tmp_path):
    from tierctl.churn.signals import SIGNALS, Signal, _Ctx

    @SIGNALS.register
    class ManyCalls(Signal):
        """Unanswered calls, a point per call (a signal a manager might add)."""

        type = "per_call"
        fields: ClassVar[tuple[str, ...]] = ("value", "at")

        def __init__(self, sec, columns):
            super().__init__(sec, columns)
            self.col = self.column("column", ("number", "int"))

        def needs(self):
            return (self.col,)

        def evaluate(self, ctx: _Ctx):
            v = ctx.numbers[self.col]
            met = [~np.isnan(v) & (v >= float(b.at)) for b in self.bands]
            pts, idx = self._pick(met)
            return pts, self._render(pts, idx, {"value": v}, ctx.n)

    try:
        text = (PACKAGED_DIR / "churn.toml").read_text(encoding="utf-8")
        text += ('\n[[signals]]\nkey = "calls"\nlabel = "多次未接"\ntype = "per_call"\ncolumn = "calls_unanswered"\n'
                 'bands = [{ at = 5, points = 7 }]\nreason = "未接 {value} 次 ≥ {at}"\n')
        p = tmp_path / "my_churn.toml"
        p.write_text(text, encoding="utf-8")
        model = load_churn_model(p)
        f = pd.DataFrame({"customer_id": pd.array(["A", "B"], dtype="string"),
                          "calls_unanswered": [6.0, 1.0], "_row": [2, 3]})
        res = score_churn(f, model, AS_OF, NOW).customers
        assert any("未接 6 次 ≥ 5: +7" == r for r in res.loc[0, "reasons"])
        assert not any("未接" in r and "≥ 5" in r for r in res.loc[1, "reasons"])
    finally:
        SIGNALS._classes.pop("per_call", None)


def test_an_unknown_signal_type_still_names_file_key_and_choices(tmp_path):
    from tierctl.errors import ModelError

    text = (PACKAGED_DIR / "churn.toml").read_text(encoding="utf-8").replace('type = "overdue"', 'type = "nope"', 1)
    p = tmp_path / "bad.toml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ModelError) as e:
        load_churn_model(p)
    msg = str(e.value)
    assert "bad.toml" in msg and "nope" in msg and "days_since" in msg


def test_the_model_columns_are_the_shared_column_spec():
    model = load_churn_model()
    spec = model.columns["customer_id"]
    assert type(spec) is ColumnSpec
    assert spec.kind == "text" and spec.required and spec.display == "客户编号"


def _clock():
    return AS_OF, NOW


def test_the_run_scores_and_stores_with_the_clock_and_store_given():
    from tierctl.churn import run as job
    from tierctl.churn.history import KIND

    model = load_churn_model()
    with Store.open(":memory:") as store:
        r = job.score(SAMPLE, model, _clock, store)
        assert r.snapshot["stored"] and r.snapshot["as_of"] == "2026-11-24"
        info = store.latest_snapshot(KIND)
        assert info is not None and info.as_of == AS_OF
        assert len(store.snapshot_rows(info.id)) == len(r.result.customers)
    assert r.result.as_of == AS_OF and r.result.now == NOW


def test_a_dry_run_never_opens_the_store():
    from tierctl.churn import run as job

    def opener():  # pragma: no cover - must not be called
        raise AssertionError("a dry run opened the store")

    r = job.score(SAMPLE, load_churn_model(), _clock, None)
    assert r.snapshot == {"stored": False} and len(r.result.customers) > 0
    rep = job.report(load_churn_model(), _clock, opener, seed_table=True)
    assert rep.report.roi.intervened == 1350 and rep.stem == "churn_report_seed" and rep.workbook is None


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("name", ["model", "signals", "score", "plans", "prepare", "effect", "roi"])
def test_the_pure_modules_import_no_store_renderer_or_cli(name):
    bad = ("tierctl.store", "tierctl.render", "tierctl.cli", "typer", "rich", "sqlalchemy")
    found = {m for m in _imports(PKG / f"{name}.py") if m.startswith(bad)}
    assert not found, found


def test_no_module_over_500_lines_and_no_function_over_80():
    files = [*PKG.glob("*.py"), ROOT / "tierctl" / "cli" / "churn.py"]
    assert len(files) > 10
    for f in files:
        text = f.read_text(encoding="utf-8")
        assert len(text.splitlines()) <= 500, f
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef):
                assert node.end_lineno - node.lineno + 1 <= 80, (f.name, node.name)
