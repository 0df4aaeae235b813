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
