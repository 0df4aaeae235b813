"""Issue 15 for allocation: the run and the stored plan in the library (tierctl.allocate.run,
tierctl.allocate.history), taking config and store as parameters; shared CLI options."""

from __future__ import annotations

import ast
from decimal import Decimal
from pathlib import Path

from conftest import AS_OF, NOW

from tierctl.config import Config

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data" / "shortage.xlsx"


def _result():
    from tierctl.io.ingest import read_export
    from tierctl.shortage import load_model as load_shortage
    from tierctl.shortage import score

    model = load_shortage("rite")
    ex = read_export(SAMPLE, model.columns)
    return score(ex.frame, model, AS_OF, NOW, headers=ex.headers, path=SAMPLE)


def test_the_run_stores_through_the_store_it_is_given(tmp_path):
    from tierctl.allocate import load_model
    from tierctl.allocate.history import stored_plan
    from tierctl.allocate.run import run_allocate
    from tierctl.store import Store

    result = _result()
    opened = []

    def open_store():
        opened.append(1)
        return Store.open(tmp_path / "a.db")

    run = run_allocate(result, load_model(), config=Config({}, None), loaners=4, premium_loaners=1,
                       budget=Decimal(20000), days_to_eta=14, warnings=["w"], open_store=open_store)
    assert opened == [1]
    assert run["days_source"] == "命令行 --days-to-eta" and run["resources"]["days_to_eta"] == 14
    assert run["warnings"][0] == "w" and run["stored"]["as_of"] == result.as_of.isoformat()
    with Store.open(tmp_path / "a.db", readonly=True) as store:
        back = stored_plan(store, result.as_of)
    assert back is not None
    assert [r["customer_id"] for r in back["plan"]] == [r.customer_id for r in run["allocation"].plan]
    assert back["resources"]["budget"] == 20000


def test_no_store_means_nothing_is_opened():
    from tierctl.allocate import load_model
    from tierctl.allocate.run import run_allocate

    run = run_allocate(_result(), load_model(), config=Config({}, None), loaners=2, premium_loaners=0,
                       budget=Decimal(0), days_to_eta=None, warnings=[])
    assert run["stored"] is None and run["days_source"].startswith("分配模型 allocate")


def test_configured_model_is_relative_to_the_config_file(tmp_path):
    from tierctl.allocate import configured_model

    cfg = Config({"allocate": {"model": "centre/allocate.toml"}}, tmp_path / "tierctl.toml")
    assert configured_model(cfg) == str(tmp_path / "centre" / "allocate.toml")
    assert configured_model(Config({}, None)) is None
    assert configured_model(Config({"allocate": {"model": "allocate"}}, None)) == "allocate"


def test_allocation_options_live_in_cli_options():
    from tierctl.cli import allocate as cli_allocate
    from tierctl.cli import options

    for name in ("LoanersOpt", "PremiumOpt", "BudgetOpt", "DaysOpt", "AllocModelOpt", "ScoreModelOpt",
                 "AllocFormatOpt", "NoStoreOpt"):
        assert getattr(cli_allocate, name) is getattr(options, name)


def _imports(path: Path) -> set[str]:
    mods = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            mods.add(node.module)
        elif isinstance(node, ast.Import):
            mods.update(a.name for a in node.names)
    return mods


def test_job_packages_keep_the_folder_rules():
    """model.py/score.py import no store, renderer, CLI, typer or rich; nothing imports the CLI."""
    banned_pure = ("tierctl.store", "tierctl.render", "tierctl.documents", "tierctl.cli", "typer", "rich")
    for pkg in ("grade", "allocate"):
        files = sorted((ROOT / "tierctl" / pkg).glob("*.py"))
        assert {"model.py", "score.py", "report.py", "history.py", "run.py"} <= {f.name for f in files}, pkg
        for f in files:
            mods = _imports(f)
            assert not any(m == "tierctl.cli" or m.startswith("tierctl.cli.") for m in mods), f
            assert not {"typer", "rich"} & {m.split(".")[0] for m in mods}, f
            if f.stem in ("model", "score", "indicators", "inputs", "problem", "solve", "result", "changes"):
                assert not any(m.startswith(b) for m in mods for b in banned_pure), f


def test_no_module_or_function_too_long():
    files = [*sorted((ROOT / "tierctl" / "grade").glob("*.py")), *sorted((ROOT / "tierctl" / "allocate").glob("*.py")),
             ROOT / "tierctl" / "cli" / "allocate.py", ROOT / "tierctl" / "cli" / "grade.py"]
    for f in files:
        text = f.read_text(encoding="utf-8")
        assert text.count("\n") <= 500, f
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno - node.lineno + 1 <= 80, f"{f.name}:{node.name}"
