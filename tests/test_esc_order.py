"""Issue 14, item 2: escalation rules apply in the order the model file lists them, each
to the tier the rules before it left — a P3 customer waiting 22 days is raised by A4.1
to P2 and then by A4.2 to P1 (SPEC A4.1 then A4.2); over 28 days at least P1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import score_rows

from tierctl.shortage import escalate, load_model

MODELS = Path(__file__).resolve().parents[1] / "tierctl" / "models"


def by_name(res):
    return {r["name"]: r for r in res.records()}


@pytest.mark.parametrize("model_name", ["rite", "rite100"])
def test_p3_waiting_22_days_ends_at_p1(model_name, tmp_path):
    model = load_model(model_name)
    # lowest scores everywhere but the wait: the model tier stays P3
    lo = {d.key: d.lo for d in model.dimensions if d.key != "T"}
    rows = [{"客户姓名": "a", "等待天数": 22, **lo}, {"客户姓名": "b", "等待天数": 15, **lo},
            {"客户姓名": "c", "等待天数": 29, **lo}]
    res = by_name(score_rows(rows, model, tmp_path))
    a = res["a"]
    assert (a["model_tier"], a["tier"]) == ("P3", "P1")
    assert [e.split(":")[0] for e in a["escalations"]] == ["A4.1", "A4.2"]
    assert (res["b"]["model_tier"], res["b"]["tier"]) == ("P3", "P2")  # > 14 days only: A4.1 alone
    c = res["c"]
    assert c["tier"] == "P1" and [e.split(":")[0] for e in c["escalations"]] == ["A4.1", "A4.2", "A4.3"]


def test_the_order_of_the_model_file_is_the_order_applied(tmp_path):
    """Listing A4.2 before A4.1 in a copy of the model: A4.2 sees the model tier P3 and
    does not fire, so the customer ends at P2 — the file's order, not the code's."""
    text = (MODELS / "rite.toml").read_text(encoding="utf-8")
    a41 = text.index('[[escalation]]\nid = "A4.1"')
    a42 = text.index('[[escalation]]\nid = "A4.2"')
    a43 = text.index('[[escalation]]\nid = "A4.3"')
    swapped = text[:a41] + text[a42:a43] + text[a41:a42] + text[a43:]
    path = tmp_path / "swapped.toml"
    path.write_text(swapped, encoding="utf-8")
    model = load_model(path)
    assert [e.id for e in model.escalation][:3] == ["A4.2", "A4.1", "A4.3"]
    f = pd.DataFrame({"wait_days": [22], "key": ["k"]})
    final, text_ = escalate(f, np.array([3]), model)
    assert model.tier_names[int(final[0])] == "P2" and "A4.2" not in text_[0]
    final, _ = escalate(f, np.array([3]), load_model("rite"))
    assert load_model("rite").tier_names[int(final[0])] == "P1"


@pytest.mark.parametrize("model_name", ["rite", "rite100"])
def test_the_model_file_states_the_order(model_name):
    text = (MODELS / f"{model_name}.toml").read_text(encoding="utf-8")
    head = text[text.index("# 动态调整（SPEC A4）"):text.index('[[escalation]]\nid = "A4.1"')]
    assert "按本文件列出的顺序" in head and "A4.1 先升为 P2" in head and "A4.2 再升为 P1" in head
