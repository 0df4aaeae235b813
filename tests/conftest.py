"""Shared fixtures: write small exports the way a CRM would, read them back through
the real ingest, and a fixed clock so results are deterministic."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "sample_data"))

TZ = dt.timezone(dt.timedelta(hours=8))
AS_OF = dt.date(2026, 11, 24)
NOW = dt.datetime(2026, 11, 24, 9, 0, tzinfo=TZ)


@pytest.fixture
def write_csv(tmp_path: Path):
    """write_csv(rows: list[dict], name="x.csv", encoding="utf-8") -> Path"""

    def _write(rows: list[dict], name: str = "export.csv", encoding: str = "utf-8") -> Path:
        p = tmp_path / name
        pd.DataFrame(rows).to_csv(p, index=False, encoding=encoding)
        return p

    return _write


@pytest.fixture(scope="session")
def rite():
    from tierctl.shortage import load_model

    return load_model("rite")


@pytest.fixture(scope="session")
def rite100():
    from tierctl.shortage import load_model

    return load_model("rite100")


def score_rows(rows: list[dict], model, tmp_path: Path, **kw):
    """Score rows through the real ingest (CSV on disk) and return the result."""
    from tierctl.io.ingest import read_export
    from tierctl.shortage import score

    p = tmp_path / f"rows_{len(list(tmp_path.iterdir()))}.csv"
    pd.DataFrame(rows).to_csv(p, index=False)
    ex = read_export(p, model.columns)
    return score(ex.frame, model, kw.pop("as_of", AS_OF), kw.pop("now", NOW), headers=ex.headers, path=p, **kw)


# -- running the command line in this process -------------------------------------------
# Most CLI tests used to start `python -m tierctl` for every call: half a second of
# interpreter start and imports each, most of the suite's time.  `run_cli` runs the same
# entry point (`tierctl.cli.main`) in this process, with the environment, the working
# folder and the standard streams of one run, and returns what a process would have: an
# exit code and the text of stdout and stderr.  Tests of what only a real process shows
# (a closed pipe, a full disk, a killed run, the process exit itself) keep subprocesses.

class CliResult:
    """What one run gave: ``returncode``, ``stdout``, ``stderr`` (as subprocess's)."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr

    def __repr__(self) -> str:  # shown by pytest when an assertion on it fails
        return f"CliResult(returncode={self.returncode}, stdout={self.stdout[-800:]!r}, stderr={self.stderr[-800:]!r})"


class _Sink(__import__("io").BytesIO):
    """A byte buffer that keeps its bytes when the stream wrapped round it is closed."""

    def close(self) -> None:
        pass


def _text(raw: bytes) -> str:
    # as subprocess's text mode reads a pipe: UTF-8, universal newlines
    return raw.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")


def run_cli(*args: object, env: dict[str, str | None] | None = None, cwd: Path | None = None,
            stdin: str | None = None) -> CliResult:
    """Run ``tierctl ARGS`` in this process.  ``env`` overrides variables for the run
    (None removes one); COLUMNS is 200 unless given, as the process tests had it."""
    import io
    import os

    from tierctl.cli import main

    overrides: dict[str, str | None] = {"COLUMNS": "200", **(env or {})}
    saved_env = {k: os.environ.get(k) for k in overrides}
    saved_cwd = os.getcwd()
    saved_streams = sys.stdin, sys.stdout, sys.stderr
    out, err = _Sink(), _Sink()
    sys.stdout = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    sys.stderr = io.TextIOWrapper(err, encoding="utf-8", newline="", write_through=True)
    sys.stdin = io.TextIOWrapper(io.BytesIO((stdin or "").encode("utf-8")), encoding="utf-8")
    code: object = 0
    try:
        for k, v in overrides.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = str(v)
        if cwd is not None:
            os.chdir(cwd)
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code
        for s in (sys.stdout, sys.stderr):
            s.flush()
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved_streams
        os.chdir(saved_cwd)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    if isinstance(code, str):  # sys.exit("text")
        err.write(code.encode("utf-8") + b"\n")
        code = 1
    status = code if isinstance(code, int) else (0 if code is None else 1)
    return CliResult(status, _text(out.getvalue()), _text(err.getvalue()))


@pytest.fixture
def memory_store():
    """A migrated store in memory: what the library's store-using functions take."""
    from tierctl.store import Store

    with Store.open(":memory:") as s:
        yield s


def cli(capsys, *args: object) -> tuple[int, str, str]:
    """Run ``tierctl ARGS`` in this process under pytest's capsys: (exit code, stdout,
    stderr).  For tests that already hold capsys; :func:`run_cli` needs no fixture."""
    from tierctl.cli import main

    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return (code if isinstance(code, int) else (0 if code is None else 1)), out.out, out.err


def isolate(monkeypatch, folder: Path, *, columns: str = "200", db: str = "store.db") -> Path:
    """Run the test's commands in ``folder`` as a fresh centre would: no config file found
    through TIERCTL_CONFIG, no debug output, the database ``folder/db``, a fixed width."""
    monkeypatch.chdir(folder)
    monkeypatch.delenv("TIERCTL_CONFIG", raising=False)
    monkeypatch.delenv("TIERCTL_DEBUG", raising=False)
    monkeypatch.setenv("TIERCTL_DB", str(folder / db))
    monkeypatch.setenv("COLUMNS", columns)
    return folder


def write_table(path: Path, head: list[str], rows: list[list[object]]) -> Path:
    """A CRM export as CSV: UTF-8 with a BOM (as Excel saves it), one header row."""
    import csv

    with open(path, "w", newline="", encoding="utf-8-sig") as fh:
        w = csv.writer(fh)
        w.writerow(head)
        w.writerows(rows)
    return path
