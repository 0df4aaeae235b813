"""The daily loop's redesign (issue 15): ``history --kind grade`` honours ``--output``,
the store imports no job, nothing below the command line imports it."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "grading.csv"
CONFIG = '[centre]\nname = "上海浦东服务中心"\nmanager = "王经理"\nmanager_phone = "021-5888 0000"\n'
JOBS = ("daily", "shortage", "background", "cadence", "owners", "churn", "rfm", "grade", "allocate",
        "contacts_import", "holidays", "churn_loop", "grade_store")
SHIM = "# moved: shim for the parallel redesign, removed at merge"


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("TIERCTL_DB", str(tmp_path / "t.db"))
    cfg = tmp_path / "tierctl.toml"
    cfg.write_text(CONFIG, encoding="utf-8")
    monkeypatch.setenv("TIERCTL_CONFIG", str(cfg))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def cli(capsys, *args: str) -> tuple[int, str, str]:
    from tierctl.cli import main

    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_history_of_the_grade_kind_writes_its_json_to_the_output_file(env, capsys):
    code, _, err = cli(capsys, "grade", SAMPLE, "--as-of", "2026-11-24", "--out", env / "letters")
    assert code == 0, err
    code, expected, err = cli(capsys, "grade", "history", "000007", "-f", "json")
    assert code == 0, err
    target = env / "h.json"
    code, out, err = cli(capsys, "history", "000007", "--kind", "grade", "-f", "json", "--output", target)
    assert code == 0, err
    assert out == ""  # the JSON went to the file, not to the terminal
    assert json.loads(target.read_text(encoding="utf-8")) == json.loads(expected)
    # an existing file is kept unless --force, as for the shortage history
    code, _, err = cli(capsys, "history", "000007", "--kind", "grade", "-f", "json", "--output", target)
    assert code != 0 and "--force" in err
    code, _, err = cli(capsys, "history", "000007", "--kind", "grade", "-f", "json", "--output", target, "--force")
    assert code == 0, err


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_the_store_imports_no_job():
    for path in sorted((ROOT / "tierctl" / "store").glob("*.py")):
        if SHIM in path.read_text(encoding="utf-8"):
            continue  # the old module path kept for the other branches until the merge
        bad = sorted(n for n in _imports(path) if n.startswith("tierctl.")
                     and n.split(".")[1] in JOBS)
        assert not bad, (path.name, bad)


def test_nothing_below_the_command_line_imports_it():
    for path in sorted((ROOT / "tierctl").rglob("*.py")):
        rel = path.relative_to(ROOT / "tierctl")
        if rel.parts[0] in ("cli", "__main__.py") or SHIM in path.read_text(encoding="utf-8"):
            continue
        bad = sorted(n for n in _imports(path) if n == "tierctl.cli" or n.startswith("tierctl.cli."))
        assert not bad, (str(rel), bad)


def test_the_loop_command_modules_stay_below_500_lines():
    for name in ("history", "tasks", "contact", "alerts", "morning", "loop_common", "collect", "notify"):
        n = len((ROOT / "tierctl" / "cli" / f"{name}.py").read_text(encoding="utf-8").splitlines())
        assert n <= 500, (name, n)
