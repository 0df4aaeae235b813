"""Issue 15 for grading: indicator classes in the one registry, one ColumnSpec, the run
in the library (tierctl.grade.run) with clock and store as parameters."""

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from tierctl.errors import ModelError
from tierctl.models.registry import Registry

PACKAGED = Path(__file__).resolve().parents[1] / "tierctl" / "models" / "grade.toml"
RATIO_LINE = 'derive = { type = "ratio", numerator = "spend_12m", denominator = "visits_12m" }'


def _frame() -> pd.DataFrame:
    n = 30
    return pd.DataFrame({
        "customer_id": [f"C{i:03d}" for i in range(n)],
        "spend_12m": [1000.0 + 100 * i for i in range(n)],
        "visits_12m": [1 + i % 5 for i in range(n)],
        "first_visit": pd.to_datetime(["2020-01-15"] * n),
        "satisfaction": [float(1 + i % 10) for i in range(n)],
        "potential": [float(i * 3 % 100) for i in range(n)],
    })


def test_grade_indicator_rules_are_in_the_one_registry():
    from tierctl.grade.indicators import DERIVES, NORMALISERS

    assert isinstance(DERIVES, Registry) and isinstance(NORMALISERS, Registry)
    assert set(DERIVES.names()) == {"ratio", "years_since"}
    assert set(NORMALISERS.names()) == {"percentile", "thresholds"}


def test_a_new_derive_is_one_class_and_one_line(tmp_path):
    from tierctl.grade import grade_customers, load_grade_model
    from tierctl.grade.indicators import DERIVES, Ratio

    @DERIVES.register
    @dataclass(frozen=True)
    class HalfRatio(Ratio):
        type: ClassVar[str] = "half_ratio_test"

        def values(self, model, frame, as_of, rows, problems):
            return super().values(model, frame, as_of, rows, problems) / 2

    try:
        text = PACKAGED.read_text(encoding="utf-8")
        assert RATIO_LINE in text
        path = tmp_path / "grade.toml"
        path.write_text(text.replace(RATIO_LINE, RATIO_LINE.replace('"ratio"', '"half_ratio_test"')),
                        encoding="utf-8")
        model = load_grade_model(path)
        assert type(model.indicator("ticket").derive) is HalfRatio
        res = grade_customers(_frame(), model, date(2026, 11, 24))
        f = _frame()
        assert np.allclose(res.customers["ticket_value"], f["spend_12m"] / f["visits_12m"] / 2)
    finally:
        DERIVES._classes.pop("half_ratio_test", None)


def test_an_unknown_derive_type_names_the_registered_ones(tmp_path):
    from tierctl.grade import load_grade_model

    path = tmp_path / "grade.toml"
    path.write_text(PACKAGED.read_text(encoding="utf-8").replace(RATIO_LINE, RATIO_LINE.replace('"ratio"', '"ratoi"')),
                    encoding="utf-8")
    with pytest.raises(ModelError) as exc:
        load_grade_model(path)
    assert "ratoi" in str(exc.value.message) and "ratio" in str(exc.value.hint) and "years_since" in exc.value.hint


def test_grading_uses_the_ingest_column_spec():
    from tierctl.grade import load_grade_model
    from tierctl.io.ingest import ColumnSpec

    model = load_grade_model()
    assert all(type(spec) is ColumnSpec for spec in model.columns.values())
    # bounds as the file writes them: messages say 不能小于 0, not 0.0
    assert str(model.columns["visits_12m"].min) == "0"


def test_the_run_takes_config_clock_and_store(tmp_path):
    from tierctl.config import Config
    from tierctl.grade import load_grade_model
    from tierctl.grade.run import run_grade

    f = tmp_path / "export.csv"
    _frame().rename(columns={"customer_id": "客户编号"}).to_csv(f, index=False)
    asked = []

    def clock():
        asked.append("clock")
        return date(2026, 11, 24), datetime(2026, 11, 24, 9, tzinfo=UTC)

    def no_store():
        asked.append("store")
        return None

    r = run_grade(f, load_grade_model(), config=Config({}, None),
                  clock=clock, open_store=no_store, dry_run=True)
    assert asked == ["clock", "store"]
    assert r["result"].as_of == date(2026, 11, 24) and len(r["result"].customers) == 30
    assert r["snapshot"] is None and r["changes"] is None and r["db"] is None
