"""The house rules of the package layout (issue 15), checked on the source itself:

- a job's model.py and score.py import no store, renderer, CLI, typer or rich;
- store/ imports no job; nothing below cli/ imports cli/;
- no import cycles between tierctl's modules (imports inside functions count: a cycle
  postponed to call time is still a cycle);
- no module over about 500 lines, no function over about 80.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

# one worker runs this file: the import graph is parsed once, not once per worker
pytestmark = pytest.mark.xdist_group("architecture")

PKG = Path(__file__).resolve().parent.parent / "tierctl"
JOBS = ("shortage", "churn", "rfm", "grade", "allocate", "daily")
MAX_MODULE_LINES = 550  # "about 500"
MAX_FUNCTION_LINES = 90  # "about 80"


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        rel = p.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = p
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """tierctl modules (and typer/rich) that ``name`` imports, anywhere in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If) and _is_type_checking(block.test)
                   for stmt in block.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in typing_only:  # `if TYPE_CHECKING:` imports are for the type checker only
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            for a in node.names:  # `from tierctl.store import loop` imports the module tierctl.store.loop
                if f"{mod}.{a.name}" in MODULES:
                    found.add(f"{mod}.{a.name}")
    return {m for m in found if m.split(".")[0] in ("tierctl", "typer", "rich")}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


@functools.cache
def _graph() -> dict[str, set[str]]:
    """Module -> what it imports; parsed on first use, not at collection (every pytest-xdist
    worker collects this file, one of them runs it)."""
    return {n: _imports(n, p) for n, p in MODULES.items()}


def _resolve(mod: str) -> str | None:
    while mod and mod not in MODULES:
        mod = mod.rpartition(".")[0]
    return mod or None


def test_job_models_and_scores_are_pure():
    bad = []
    for n, deps in _graph().items():
        parts = n.split(".")
        if len(parts) == 3 and parts[1] in JOBS and parts[2] in ("model", "score"):
            for d in deps:
                if d.split(".")[0] in ("typer", "rich") or d.startswith(("tierctl.store", "tierctl.render", "tierctl.cli")):
                    bad.append(f"{n} imports {d}")
    assert not bad, "\n".join(sorted(bad))


def test_store_imports_no_job():
    bad = [f"{n} imports {d}" for n, deps in _graph().items() if n.startswith("tierctl.store")
           for d in deps if d.split(".")[1:2] and d.split(".")[1] in JOBS]
    assert not bad, "\n".join(sorted(bad))


def test_nothing_below_the_cli_imports_the_cli():
    bad = [f"{n} imports {d}" for n, deps in _graph().items() if not n.startswith(("tierctl.cli", "tierctl.__main__"))
           for d in deps if d.startswith("tierctl.cli")]
    assert not bad, "\n".join(sorted(bad))


def _cycles() -> list[list[str]]:
    edges = {n: sorted({r for d in deps if d.startswith("tierctl") and (r := _resolve(d)) and r != n})
             for n, deps in _graph().items()}
    # a package's __init__ re-exporting its own submodules is no cycle of design
    for n in edges:
        edges[n] = [d for d in edges[n] if not (d.startswith(n + ".") or n.startswith(d + "."))]
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    cycles = _cycles()
    assert not cycles, "\n".join(" ↔ ".join(c) for c in cycles)


def test_modules_and_functions_are_small():
    long_modules = [f"{n}: {len(p.read_text(encoding='utf-8').splitlines())} lines" for n, p in MODULES.items()
                    if len(p.read_text(encoding="utf-8").splitlines()) > MAX_MODULE_LINES]
    long_functions = []
    for n, p in MODULES.items():
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(f"{n}.{node.name}: {length} lines")
    assert not long_modules and not long_functions, "\n".join(long_modules + long_functions)


@pytest.mark.parametrize("rule", [test_store_imports_no_job, test_nothing_below_the_cli_imports_the_cli])
def test_the_rules_see_a_violation(rule, monkeypatch):
    """The checks above can fail: a made-up import in the graph is caught."""
    monkeypatch.setitem(_graph(), "tierctl.store.fake", {"tierctl.shortage", "tierctl.cli.common"})
    with pytest.raises(AssertionError):
        rule()
