"""A PostgreSQL URL's password is never shown (issue 18, noticed): wherever tierctl
prints a database's location — `tierctl config`, `db status`, a run's summary, an error —
it prints postgresql://user:***@host/db.  No server is needed: port 1 refuses."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import AS_OF, isolate, run_cli

SECRET = "s3cr3t-pw"
URL = f"postgresql://tier:{SECRET}@127.0.0.1:1/tierctl"
SHOWN = "postgresql://tier:***@127.0.0.1:1/tierctl"
SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "shortage.xlsx"


def _said(r) -> str:  # noqa: ANN001 - conftest's CliResult
    return r.stdout + r.stderr


def test_config_shows_the_url_without_its_password(tmp_path, monkeypatch):
    isolate(monkeypatch, tmp_path)
    monkeypatch.setenv("TIERCTL_DB", URL)
    table = run_cli("config")
    assert table.returncode == 0, table
    assert SECRET not in _said(table) and f"历史数据库：{SHOWN}" in table.stdout
    doc = run_cli("config", "-f", "json")
    assert doc.returncode == 0 and json.loads(doc.stdout)["db"] == SHOWN


def test_a_password_in_the_query_is_masked_too(tmp_path, monkeypatch):
    isolate(monkeypatch, tmp_path)
    monkeypatch.setenv("TIERCTL_DB", f"postgresql://tier@127.0.0.1:1/tierctl?password={SECRET}&sslmode=disable")
    doc = run_cli("config", "-f", "json")
    assert doc.returncode == 0 and SECRET not in doc.stdout
    assert json.loads(doc.stdout)["db"] == "postgresql://tier@127.0.0.1:1/tierctl?password=***&sslmode=disable"


def test_a_dry_run_against_an_unreachable_server_names_it_without_the_password(tmp_path, monkeypatch):
    isolate(monkeypatch, tmp_path)
    r = run_cli("score", SAMPLE, "--as-of", AS_OF.isoformat(), "--dry-run", "--db", URL, "-f", "json")
    assert r.returncode == 0, r
    assert SECRET not in _said(r)
    assert json.loads(r.stdout)["snapshot"]["path"] == SHOWN


def test_errors_about_the_server_name_it_without_the_password(tmp_path, monkeypatch):
    isolate(monkeypatch, tmp_path)
    for args in (["db", "status", "--db", URL], ["db", "migrate", "--db", URL], ["alerts", "--db", URL],
                 ["db", "status", "--db", f"postgresql+nosuch://tier:{SECRET}@127.0.0.1:1/tierctl"]):
        r = run_cli(*args)
        assert r.returncode != 0, (args, r)
        assert SECRET not in _said(r), (args, r)
        assert "tier:***@127.0.0.1:1/tierctl" in " ".join(r.stderr.split()).replace("│ ", ""), (args, r)
