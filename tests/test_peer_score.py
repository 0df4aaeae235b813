"""The DuckDB peer of `tierctl score` (bench/peers/score_duckdb.py, issue 19) computes the same
thing: on a 2,000-customer generated export its dimensions, totals, tiers, escalation rules and
order equal those of `tierctl score -f csv -o FILE --no-store`."""

from __future__ import annotations

import csv
import importlib.util
import re
import sys
from pathlib import Path

import pytest
from conftest import AS_OF, run_cli

ROOT = Path(__file__).resolve().parent.parent

duckdb = pytest.importorskip("duckdb")


def _peer():
    spec = importlib.util.spec_from_file_location("score_duckdb", ROOT / "bench" / "peers" / "score_duckdb.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def test_peer_equals_tierctl_on_a_small_export(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "sample_data"))
    from generate import big_frame

    monkeypatch.setenv("TIERCTL_DB", str(tmp_path / "t.db"))
    export = tmp_path / "shortage.csv"
    big_frame(2000).to_csv(export, index=False)
    ours, theirs = tmp_path / "tierctl.csv", tmp_path / "peer.csv"
    p = run_cli("score", export, "--as-of", AS_OF.isoformat(), "-f", "csv", "-o", ours, "--no-store")
    assert p.returncode == 0, p.stderr
    duckdb.sql(_peer().query(str(export), str(theirs), AS_OF.isoformat()))
    a, b = _rows(ours), _rows(theirs)
    assert len(a) == len(b) == 2000
    assert [r["customer_id"] for r in a] == [r["customer_id"] for r in b]  # the same order
    for col in ("wait_days", "R", "I", "T", "E", "model_tier", "tier"):
        assert [r[col] for r in a] == [r[col] for r in b], col
    assert [float(r["score"]) for r in a] == [float(r["score"]) for r in b]
    assert [";".join(re.findall(r"A4\.\d", r["escalations"])) for r in a] == [r["escalations"] for r in b]
    # the export exercises what the comparison is about: every tier, raises, negated keywords
    assert {r["tier"] for r in a} == {"P0", "P1", "P2", "P3"}
    assert any(r["model_tier"] != r["tier"] for r in a)
