"""Issue 14, item 4: ``tierctl score`` takes the parts ETA for the crisis level (SPEC A7)
from the configuration as ``tierctl render`` does — ``parts.eta_date`` (and
``[parts.by_part]``), else ``parts.eta_weeks`` — and ``--eta-weeks`` still overrides."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tierctl.cli import main

AS_OF = dt.date(2026, 11, 24)


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TIERCTL_CONFIG", raising=False)
    monkeypatch.delenv("TIERCTL_DEBUG", raising=False)
    monkeypatch.setenv("TIERCTL_DB", str(tmp_path / "store.db"))
    (tmp_path / "x.csv").write_text("客户编号,客户姓名,等待天数,缺件名称\nC1,甲,3,大灯总成\nC2,乙,4,前机盖\n",
                                    encoding="utf-8")
    return tmp_path


def config(env: Path, text: str) -> None:
    (env / "tierctl.toml").write_text(text, encoding="utf-8")


def eta_criterion(capsys, *extra: str) -> dict | None:
    with pytest.raises(SystemExit) as exc:
        main(["score", "x.csv", "--as-of", AS_OF.isoformat(), "--format", "json", "--dry-run", *extra])
    out = capsys.readouterr()
    assert exc.value.code in (0, None), out.err
    doc = json.loads(out.out)
    crit = {c["name"]: c for c in doc["crisis"]["criteria"]}
    return crit.get("eta_weeks"), doc


def test_eta_date_five_weeks_after_as_of_is_level_4(env, capsys):
    config(env, f'[parts]\neta_date = "{(AS_OF + dt.timedelta(weeks=5)).isoformat()}"\n')
    crit, doc = eta_criterion(capsys)
    assert crit is not None and crit["value"] == 5 and crit["level"] == 4
    assert doc["crisis"]["level"] == 4


def test_eta_weeks_option_still_overrides_the_date(env, capsys):
    config(env, f'[parts]\neta_date = "{(AS_OF + dt.timedelta(weeks=5)).isoformat()}"\n')
    crit, _ = eta_criterion(capsys, "--eta-weeks", "1.5")
    assert crit["value"] == 1.5 and crit["level"] == 1


def test_eta_weeks_in_the_config_when_there_is_no_date(env, capsys):
    config(env, "[parts]\neta_weeks = 3.5\n")
    crit, _ = eta_criterion(capsys)
    assert crit["value"] == 3.5 and crit["level"] == 3


def test_a_part_arriving_later_decides_as_in_render(env, capsys):
    """The latest ETA of any waiting customer's part, as ``render`` computes it."""
    config(env, f'[parts]\neta_date = "{(AS_OF + dt.timedelta(days=7)).isoformat()}"\n'
                f'[parts.by_part]\n"前机盖" = "{(AS_OF + dt.timedelta(days=35)).isoformat()}"\n')
    crit, _ = eta_criterion(capsys)
    assert crit["value"] == 5 and crit["level"] == 4


def test_a_stale_eta_date_is_left_out_with_a_warning(env, capsys):
    config(env, '[parts]\neta_date = "2026-11-01"\n')
    crit, doc = eta_criterion(capsys)
    assert crit is None
    assert any("parts.eta_date" in w and "2026-11-01" in w for w in doc["warnings"])


def test_no_eta_anywhere_no_criterion(env, capsys):
    crit, _ = eta_criterion(capsys)
    assert crit is None
