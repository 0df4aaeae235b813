"""The `tierctl score` command: exit codes, messages, JSON equal to the library result,
CSV safe for Excel, and help text on every command."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import AS_OF, NOW, CliResult, run_cli

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "shortage.xlsx"


def run(*args: str, env: dict | None = None, cwd: Path | None = None) -> CliResult:
    return run_cli(*args, cwd=cwd, env={"TIERCTL_DB": os.environ.get("TIERCTL_TEST_DB") or None, **(env or {})})


@pytest.fixture(autouse=True)
def _isolated_db(tmp_path, monkeypatch):
    monkeypatch.setenv("TIERCTL_TEST_DB", str(tmp_path / "t.db"))
    monkeypatch.setenv("TIERCTL_DB", str(tmp_path / "t.db"))


def test_json_equals_library_result(tmp_path):
    from tierctl.io.ingest import read_export
    from tierctl.shortage import load_model, score

    p = run("score", str(SAMPLE), "--as-of", AS_OF.isoformat(), "--now", NOW.isoformat(), "-f", "json", "--dry-run")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    model = load_model("rite")
    ex = read_export(SAMPLE, model.columns)
    lib = score(ex.frame, model, AS_OF, NOW, headers=ex.headers).to_json()
    assert doc["customers"] == lib["customers"]
    assert doc["as_of"] == "2026-11-24" and doc["model"] == "rite"
    assert doc["crisis"]["level"] in (1, 2, 3, 4)
    first = doc["customers"][0]
    for key in ("customer_id", "name", "wait_days", "dims", "score", "model_tier", "tier", "reasons", "owner",
                "respond_by"):
        assert key in first
    seeds = {c["name"]: c for c in doc["customers"] if c["name"] in ("张先生", "王女士", "李先生", "赵先生")}
    assert {n: (c["score"], c["tier"]) for n, c in seeds.items()} == {
        "张先生": (8.6, "P0"), "王女士": (4.55, "P2"), "李先生": (4.85, "P1"), "赵先生": (2.15, "P3")}


def test_table_output_shows_tiers_and_masks_phones():
    p = run("score", str(SAMPLE), "--as-of", AS_OF.isoformat(), "--dry-run")
    assert p.returncode == 0, p.stderr
    assert "P0" in p.stdout and "张先生" in p.stdout and "危机等级" in p.stdout
    assert "13812340001" not in p.stdout and "138****0001" in p.stdout
    assert "合计" in p.stdout


def test_csv_output_is_injection_safe(tmp_path):
    src = tmp_path / "evil.csv"
    src.write_text("客户姓名,等待天数,沟通记录\n\"=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",3,@SUM(1)\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    p = run("score", str(src), "-f", "csv", "-o", str(out))
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8-sig")))
    assert rows[0]["name"].startswith("'=HYPERLINK")
    again = run("score", str(src), "-f", "csv", "-o", str(out))
    assert again.returncode == 1 and "--force" in again.stderr
    assert run("score", str(src), "-f", "csv", "-o", str(out), "--force").returncode == 0


@pytest.mark.parametrize("args,code,words", [
    (["score", "nope.xlsx"], 1, ["nope.xlsx", "不存在"]),
    (["score", "{sample}", "-f", "xml"], 2, ["--format", "xml"]),
    (["score", "{sample}", "--as-of", "2026-13-45"], 2, ["--as-of", "2026-13-45"]),
    (["score", "{sample}", "--model", "nosuch"], 1, ["nosuch", "rite"]),
    (["score", "{sample}", "--sheet", "9"], 2, ["9", "工作表"]),
    (["score"], 2, ["缺少参数", "file"]),
])
def test_exit_codes_and_messages(args, code, words):
    p = run(*[a.replace("{sample}", str(SAMPLE)) for a in args])
    assert p.returncode == code, (p.stdout, p.stderr)
    for w in words:
        assert w in p.stderr
    assert "Traceback" not in p.stderr


def test_bad_value_message_names_row_column_value(tmp_path):
    src = tmp_path / "bad.csv"
    src.write_text("客户姓名,等待天数\na,3\nb,很久\n", encoding="gbk")
    p = run("score", str(src))
    assert p.returncode == 1
    for w in ("bad.csv", "第 3 行", "等待天数", "很久"):
        assert w in p.stderr
    assert "Traceback" not in p.stderr


def test_debug_shows_traceback(tmp_path):
    p = run("--debug", "score", str(tmp_path / "nope.csv"))
    assert p.returncode == 1 and "Traceback" in p.stderr


def test_unknown_usage_warning_listed_after_table(tmp_path):
    src = tmp_path / "u.csv"
    src.write_text("客户姓名,等待天数,用车场景\n孙八,3,\n", encoding="utf-8")
    p = run("score", str(src), "--dry-run")
    assert p.returncode == 0 and "孙八" in p.stderr and "用车" in p.stderr


def test_every_command_has_help():
    from typer.main import get_command

    from tierctl.cli import app

    root = get_command(app)

    def walk(cmd, path):
        yield path, cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, [*path, name])

    for path, cmd in walk(root, []):
        assert (cmd.help or "").strip(), f"no help text for tierctl {' '.join(path)}"
        if path:
            p = run(*path, "--help")
            assert p.returncode == 0, path


def test_input_untouched_by_cli(tmp_path):
    copy = tmp_path / "s.xlsx"
    copy.write_bytes(SAMPLE.read_bytes())
    before = copy.read_bytes()
    assert run("score", str(copy), "--dry-run").returncode == 0
    assert copy.read_bytes() == before


def test_the_program_returns_with_its_store_closed_and_the_log_folded_in(tmp_path):
    """The program leaves without tearing the interpreter down, and the store it wrote is
    closed on a thread while the table prints: it must wait for that close before it
    leaves.  Here the close is made slow (and leaves a mark when done): the mark is there
    when the process has returned, and so is the snapshot, with the log folded in."""
    import sqlite3

    db, mark = tmp_path / "fold.db", tmp_path / "closed"
    code = textwrap.dedent("""
        import pathlib, sys, time
        import sqlalchemy as sa
        dispose, mark = sa.Engine.dispose, pathlib.Path(sys.argv[1])
        def slow(self, *a, **k):
            time.sleep(0.5)
            dispose(self, *a, **k)
            mark.write_text("closed")
        sa.Engine.dispose = slow
        sys.argv = ["tierctl", *sys.argv[2:]]
        from tierctl.cli import entry
        entry()
    """)
    e = {**os.environ, "COLUMNS": "200"}
    e.pop("TIERCTL_DB", None)
    p = subprocess.run([sys.executable, "-c", code, str(mark), "score", str(SAMPLE), "--as-of", AS_OF.isoformat(),
                        "--db", str(db)], capture_output=True, text=True, env=e, timeout=120)
    assert p.returncode == 0, p.stderr
    assert mark.exists()
    assert db.exists() and not Path(f"{db}-wal").exists() and not Path(f"{db}-shm").exists()
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT count(*) FROM snapshots WHERE kind = 'shortage'").fetchone() == (1,)
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        con.close()


def test_a_failed_run_still_closes_its_store(tmp_path):
    """A run that fails after opening the store (a red list that cannot be read) exits 1
    and leaves no write-ahead log behind."""
    db = tmp_path / "fail.db"
    assert run("score", str(SAMPLE), "--as-of", AS_OF.isoformat(), "--db", str(db)).returncode == 0
    bad = tmp_path / "red.xlsx"
    bad.write_bytes(b"not a workbook")
    p = run("score", str(SAMPLE), "--as-of", AS_OF.isoformat(), "--db", str(db), "--red-list", str(bad))
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert not Path(f"{db}-wal").exists() and not Path(f"{db}-shm").exists()
