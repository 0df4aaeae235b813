"""``tierctl region report`` (issue 18): every centre of one database side by side —
crisis level, tier counts and trend, open/overdue alerts by recipient, the region's
longest waits, transfer candidates, RFM type shares; HTML and xlsx."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from conftest import run_cli

from tierctl.errors import ConfigError
from tierctl.region.output import write_html, write_workbook
from tierctl.region.report import gather, load_params
from tierctl.store import Store

TZ = dt.timezone(dt.timedelta(hours=8))
D0, D1, D2 = dt.date(2026, 11, 22), dt.date(2026, 11, 23), dt.date(2026, 11, 24)
ROOT = Path(__file__).resolve().parents[1]


def shortage(store: Store, day: dt.date, level: int, label: str, data: list[tuple]) -> None:
    f = pd.DataFrame(data, columns=["customer_key", "name", "label", "part", "wait_days", "notes"])
    counts = f["label"].value_counts().to_dict()
    store.save_snapshot("shortage", day, "rite", "x.xlsx", "h", f,
                        {"crisis": {"level": level, "label": label}, "counts": counts})


def alert(store: Store, key: str, who: str, day: dt.date) -> None:
    store.insert_alerts("shortage", pd.DataFrame({"customer_key": [key], "customer_id": [key], "name": [key],
                                                  "rule_id": ["wait21"], "recipient": [who], "reason": ["x"]}),
                        day, dt.datetime.combine(day, dt.time(9), tzinfo=TZ))


@pytest.fixture
def region(tmp_path) -> Path:
    db = tmp_path / "region.db"
    with Store.open(db, centre="SH01") as s:
        a, b, c = s, s.for_centre("SH02"), s.for_centre("SZ01")
        shortage(a, D1, 2, "较大", [("a1", "张", "P0", "前保险杠", 20, ""), ("a2", "李", "P1", "门", 9, ""),
                                    ("a3", "钱", "P1", "尾灯", 3, "")])
        shortage(a, D2, 3, "重大", [("a1", "张", "P0", "前保险杠", 21, ""), ("a2", "李", "P0", "门", 10, "")])
        shortage(b, D2, 1, "一般", [("b1", "王", "P2", "尾灯", 30, "厂家说已订货，周五到"),
                                    ("b2", "赵", "P3", "门", 2, "")])
        shortage(c, D0, 4, "极度", [("c1", "周", "P0", "前保险杠", 40, "")])  # older than the trend window
        alert(a, "a1", "服务经理", D0)   # open 2 days on D2: overdue
        alert(a, "a2", "服务经理", D2)
        alert(b, "b1", "站长", D2)
        c.save_snapshot("rfm", D2, "rfm", "v.csv", "h",
                        pd.DataFrame({"customer_key": ["r1", "r2", "r3", "r4"], "label": ["A", "A", "B", "C"]}))
    return db


def test_the_region_side_by_side(region, tmp_path):
    params = load_params()
    with Store.open(region, readonly=True) as s:
        r = gather(s, D2, params)
    by = {c["centre"]: c for c in r["centres"]}
    assert list(by) == ["SH01", "SH02", "SZ01"]
    assert (by["SH01"]["crisis_label"], by["SH01"]["counts"]) == ("重大", {"P0": 2})
    assert [d["counts"].get("P0", 0) for d in by["SH01"]["trend"]] == [1, 2]
    assert by["SZ01"]["rfm_shares"] == {"A": 0.5, "B": 0.25, "C": 0.25}
    assert (by["SH02"]["crisis_level"], by["SZ01"]["crisis_level"]) == (1, 4)  # SZ01's D0 run is within 30 days
    assert r["alerts"] == [
        {"centre": "SH01", "kind": "shortage", "recipient": "服务经理", "open": 2, "overdue": 1},
        {"centre": "SH02", "kind": "shortage", "recipient": "站长", "open": 1, "overdue": 0}]
    assert [(w["centre"], w["name"], w["wait_days"]) for w in r["worst"][:3]] == [
        ("SZ01", "周", 40), ("SH02", "王", 30), ("SH01", "张", 21)]
    # SH01's 尾灯 customer left its list (the part came); SH02 has 尾灯 on order:
    # SH02 waits for 尾灯 which SH01 received; SH01 waits for nothing SH02 requested but 尾灯
    assert [(t["part"], t["waiting_centre"], t["from_centre"], t["status"]) for t in r["transfers"]] == [
        ("尾灯", "SH02", "SH01", "received")]
    html = tmp_path / "r.html"
    write_html(r, html, "zh")
    text = html.read_text(encoding="utf-8")
    assert "区域汇总" in text and "重大" in text and "已到货" in text
    xlsx = tmp_path / "r.xlsx"
    write_workbook(r, xlsx, "en")
    wb = openpyxl.load_workbook(xlsx)
    assert wb.sheetnames[0] == "Centres"
    first = [[c.value for c in row] for row in wb["Centres"].iter_rows(max_row=2)]
    assert first[0][0] == "Centre" and first[1][0] == "SH01"


def test_a_short_trend_window_leaves_old_runs_out(region, tmp_path):
    p = tmp_path / "region.toml"
    text = (ROOT / "tierctl" / "data" / "region.toml").read_text(encoding="utf-8")
    p.write_text(text.replace("trend_days = 30", "trend_days = 2"), encoding="utf-8")
    with Store.open(region, readonly=True) as s:
        r = gather(s, D2, load_params(p))
    by = {c["centre"]: c for c in r["centres"]}
    assert by["SZ01"]["crisis_level"] is None and len(by["SH01"]["trend"]) == 2


def test_bad_parameters_name_the_key(tmp_path):
    p = tmp_path / "region.toml"
    text = (ROOT / "tierctl" / "data" / "region.toml").read_text(encoding="utf-8")
    p.write_text(text.replace("trend_days = 30", "trend_days = 0"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"region\.trend_days.*不小于"):
        load_params(p)


def test_the_command_writes_html_and_xlsx(region, tmp_path):
    out = run_cli("region", "report", "--db", region, "--date", "2026-11-24", "-o", tmp_path / "r.html",
                  "--xlsx", tmp_path / "r.xlsx", "--lang", "en", "-f", "json", cwd=ROOT,
                  env={"TIERCTL_DB": None, "TIERCTL_CENTRE": None, "TIERCTL_CONFIG": None})
    assert out.returncode == 0, out.stderr
    assert [c["centre"] for c in json.loads(out.stdout)["centres"]] == ["SH01", "SH02", "SZ01"]
    assert "Region roll-up" in (tmp_path / "r.html").read_text(encoding="utf-8")
    assert (tmp_path / "r.xlsx").stat().st_size > 0
