"""Issue 15, the shortage job: one package, escalation rules as typed classes in one
registry, and the morning run in the library (config, clock and store as parameters)."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import AS_OF, NOW, score_rows

from tierctl.config import Config
from tierctl.errors import ModelError
from tierctl.models.loader import Section
from tierctl.shortage import ESCALATION_RULES, Escalation, EscalationView, load_model
from tierctl.store import Store

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "tierctl" / "models"


@ESCALATION_RULES.register
class VipWait(Escalation):
    """A rule a manager's copy of the model could name: a red-list customer waiting
    more than ``over_days`` goes up ``steps``.  One class, and one block in the model."""

    type = "test_vip_wait"

    def read(self, sec: Section) -> None:
        self.over_days = sec.int("over_days", min=0)
        self.steps = sec.int("steps", 1, min=1)

    def today(self, view: EscalationView) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return view.waits > self.over_days, {}


def _model_with(tmp_path: Path, block: str, name: str = "m.toml"):
    text = (MODELS / "rite.toml").read_text(encoding="utf-8")
    at = text.index('[[escalation]]\nid = "A4.1"')
    path = tmp_path / name
    path.write_text(text[:at] + block + "\n" + text[at:], encoding="utf-8")
    return path


def test_the_four_packaged_kinds_are_registered_classes():
    assert {"wait_floor", "new_keywords", "contact_spike", "flag_to"} <= set(ESCALATION_RULES.names())
    kinds = {type(r).__name__: r.type for r in load_model("rite").escalation}
    assert kinds == {"WaitFloor": "wait_floor", "NewKeywords": "new_keywords", "ContactSpike": "contact_spike",
                     "FlagTo": "flag_to"}


def test_a_new_rule_is_one_class_and_one_block_in_the_model(tmp_path):
    block = '[[escalation]]\nid = "X1"\ntype = "test_vip_wait"\nover_days = 5\nreason = "等待 {value} 天，升一级"\n'
    model = load_model(_model_with(tmp_path, block))
    assert [r.id for r in model.escalation][0] == "X1"  # the model file's order
    lo = {d.key: d.lo for d in model.dimensions if d.key != "T"}
    rec = score_rows([{"客户姓名": "a", "等待天数": 6, **lo}, {"客户姓名": "b", "等待天数": 3, **lo}], model,
                     tmp_path).records()
    by = {r["name"]: r for r in rec}
    assert by["a"]["model_tier"] == "P3" and by["a"]["tier"] == "P2"
    assert by["a"]["escalations"] == ["X1: 等待 6 天，升一级"]
    assert by["b"]["tier"] == "P3" and by["b"]["escalations"] == []
    assert by["a"]["holds"][0]["rule"] == "X1"  # a rule holds unless its class says otherwise


def test_an_unknown_escalation_type_names_the_file_the_key_and_the_types(tmp_path):
    path = _model_with(tmp_path, '[[escalation]]\nid = "X2"\ntype = "nope"\n')
    with pytest.raises(ModelError) as e:
        load_model(path)
    text = str(e.value)
    assert "m.toml" in text and "nope" in text and "wait_floor" in text and "escalation" in text


def test_a_rule_still_checks_its_own_keys_at_load(tmp_path):
    path = _model_with(tmp_path, '[[escalation]]\nid = "X3"\ntype = "flag_to"\nfield = "negative_post"\nto = "P9"\n')
    with pytest.raises(ModelError, match="P9"):
        load_model(path)


def test_the_model_says_which_history_columns_its_rules_compare_with():
    model = load_model("rite")
    assert model.previous_fields() == ["notes"]
    assert model.week_ago_fields() == ["contacts_7d"]


ROWS = [{"客户编号": "C1", "客户姓名": "张先生", "等待天数": 24, "沟通记录": "客户很着急"},
        {"客户编号": "C2", "客户姓名": "李女士", "等待天数": 3, "沟通记录": ""}]


def _clock(day: dt.date):
    return lambda: (day, dt.datetime.combine(day, dt.time(9), tzinfo=NOW.tzinfo))


def test_the_morning_run_takes_config_clock_and_store(tmp_path, monkeypatch):
    from tierctl.shortage.run import run

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TIERCTL_CONFIG", raising=False)
    config = Config.load(cwd=tmp_path)
    store = Store.open(":memory:")
    p = tmp_path / "day1.csv"
    pd.DataFrame(ROWS).to_csv(p, index=False)
    first = run(p, config=config, clock=_clock(AS_OF), store=store)
    assert first.result.as_of == AS_OF and first.record is not None
    assert first.record["snapshot"]["as_of"] == AS_OF.isoformat()
    # the next morning a complaint word is new: A4.4 compares with the stored run
    rows = [dict(ROWS[0], 沟通记录="客户说要投诉"), ROWS[1]]
    p2 = tmp_path / "day2.csv"
    pd.DataFrame(rows).to_csv(p2, index=False)
    second = run(p2, config=config, clock=_clock(AS_OF + dt.timedelta(days=1)), store=store)
    c1 = next(r for r in second.result.records() if r["customer_id"] == "C1")
    assert any(e.startswith("A4.4") for e in c1["escalations"])
    # a third morning with the same note: not new any more, the raise holds from day 2
    p3 = tmp_path / "day3.csv"
    pd.DataFrame(rows).to_csv(p3, index=False)
    third = run(p3, config=config, clock=_clock(AS_OF + dt.timedelta(days=2)), store=store)
    c1 = next(r for r in third.result.records() if r["customer_id"] == "C1")
    day2 = (AS_OF + dt.timedelta(days=1)).isoformat()
    assert any(e.startswith("A4.4") and day2 in e for e in c1["escalations"])
    assert set(second.as_dict()) >= {"model", "export", "result", "crisis", "changes", "alerts_fired", "snapshot"}
    # no store: no history, no record
    alone = run(p2, config=config, clock=_clock(AS_OF + dt.timedelta(days=1)))
    assert alone.record is None
    c1 = next(r for r in alone.result.records() if r["customer_id"] == "C1")
    assert any(e.startswith("A4.4") for e in c1["escalations"])  # nothing earlier: the word is new
    store.close()


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", ["model", "score", "escalation", "report", "crisis"])
def test_the_pure_parts_import_no_store_renderer_cli_typer_or_rich(module):
    names = _imports(ROOT / "tierctl" / "shortage" / f"{module}.py")
    bad = [n for n in names if n.split(".")[0] in ("typer", "rich")
           or n.startswith(("tierctl.store", "tierctl.cli", "tierctl.render", "tierctl.documents"))]
    assert bad == []


def test_nothing_of_the_shortage_job_imports_the_cli():
    for path in [*(ROOT / "tierctl" / "shortage").glob("*.py"), *(ROOT / "tierctl" / "kernels").glob("*.py")]:
        assert not [n for n in _imports(path) if n.startswith("tierctl.cli")], path


def test_shared_options_live_in_cli_options_and_score_re_exports_them():
    from tierctl.cli import options, score

    assert (score.EtaOpt, score.ModelOpt, score.RedListOpt) == (options.EtaOpt, options.ModelOpt, options.RedListOpt)


def test_the_shortage_files_stay_small():
    for path in [*(ROOT / "tierctl" / "shortage").glob("*.py"), *(ROOT / "tierctl" / "kernels").glob("*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assert len(path.read_text(encoding="utf-8").splitlines()) <= 500, path
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                assert node.end_lineno - node.lineno < 80, (path, node.name)
