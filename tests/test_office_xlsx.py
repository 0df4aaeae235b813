"""Excel-native tables (issue 17): ``-f xlsx -o FILE`` for score, churn, grade, tasks
and alerts — Chinese headers (English with --lang en), ids and phones as text, local
times as Excel date-times, the tier cell filled, header frozen and filtered — and the
CSV's ``--headers zh`` and stdout BOM rule."""

from __future__ import annotations

import csv
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest
from conftest import cli

from tierctl.errors import ModelError

ROOT = Path(__file__).resolve().parents[1]
NOW = "2026-11-24T09:00:00+08:00"
HEAD = ["客户编号", "客户姓名", "手机号", "登记日期", "用车场景", "沟通记录", "身份/职业"]
ROWS = [
    ["00000104", "张先生", "13912345678", "2026-10-31", "网约车", "觉得我们在忽悠他", "自媒体"],
    ["00000105", "=HYPERLINK(\"http://x\",\"y\")", "13812340002", "2026-11-08", "通勤", "-不急", ""],
    ["007", "赵先生", "13612340004", "2026-11-14", "周末", "", ""],
]


def write(path: Path, rows: list[list[object]] = ROWS) -> Path:
    with open(path, "w", newline="", encoding="utf-8-sig") as fh:
        w = csv.writer(fh)
        w.writerow(HEAD)
        w.writerows(rows)
    return path


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TIERCTL_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))  # no user config either
    monkeypatch.setenv("TIERCTL_DB", str(tmp_path / "store.db"))
    monkeypatch.setenv("COLUMNS", "160")
    return tmp_path


def sheet(path: Path):
    wb = openpyxl.load_workbook(path)
    return wb.active


def by_header(ws) -> dict[str, int]:
    return {c.value: c.column for c in ws[1]}


def row_of(ws, col: int, value: str) -> int:
    for r in range(2, ws.max_row + 1):
        if ws.cell(r, col).value == value:
            return r
    raise AssertionError(f"{value} not in column {col}")


def test_score_xlsx_types_headers_fill_freeze_filter(env, capsys):
    src = write(env / "export.csv")
    out = env / "today.xlsx"
    code, _, err = cli(capsys, "score", str(src), "--as-of", "2026-11-24", "--now", NOW, "-f", "xlsx", "-o", str(out))
    assert code == 0, err
    assert "已写入" in err
    ws = sheet(out)
    h = by_header(ws)
    for head in ("客户编号", "客户姓名", "手机号", "等待天数", "R 舆情风险", "总分", "等级", "负责人", "响应时限", "评分依据"):
        assert head in h, head
    r = row_of(ws, h["客户编号"], "00000104")
    cid = ws.cell(r, h["客户编号"])
    assert isinstance(cid.value, str) and cid.value == "00000104" and cid.number_format == "@"
    phone = ws.cell(r, h["手机号"])
    assert phone.value == "13912345678" and isinstance(phone.value, str) and phone.number_format == "@"
    due = ws.cell(r, h["响应时限"])
    assert isinstance(due.value, dt.datetime) and due.value.tzinfo is None
    assert (due.value.date(), due.value.time()) == (dt.date(2026, 11, 24), dt.time(11, 0))  # 09:00 + 2 h, local
    wait = ws.cell(r, h["等待天数"])
    assert wait.value == 24 and isinstance(wait.value, int)
    score = ws.cell(r, h["总分"])
    assert isinstance(score.value, float | int) and score.number_format == "0.00"
    tier = ws.cell(r, h["等级"])
    assert tier.value == "P0"
    assert tier.fill.fgColor.rgb.upper().endswith("F8696B")  # red
    p3 = ws.cell(row_of(ws, h["客户编号"], "007"), h["等级"])
    assert p3.value == "P3" and p3.fill.fgColor.rgb.upper().endswith("D9D9D9")  # grey
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref and ws.auto_filter.ref.startswith("A1:")
    assert ws.column_dimensions["A"].width >= 8  # fitted, not Excel's default 8.43 for every column
    # formula-safe: the name stays text, with Excel's hidden quote prefix
    evil = ws.cell(row_of(ws, h["客户编号"], "00000105"), h["客户姓名"])
    assert evil.data_type == "s" and evil.value.startswith("=HYPERLINK") and evil.quotePrefix


def test_score_xlsx_english_headers_and_refuses_to_overwrite(env, capsys):
    src = write(env / "export.csv")
    out = env / "today.xlsx"
    code, _, err = cli(capsys, "score", str(src), "--as-of", "2026-11-24", "--now", NOW, "--no-store",
                       "-f", "xlsx", "-o", str(out), "--lang", "en")
    assert code == 0, err
    h = by_header(sheet(out))
    assert {"Customer ID", "Phone", "Tier", "Respond by", "R Public-opinion risk"} <= set(h)
    code, _, err = cli(capsys, "score", str(src), "--no-store", "-f", "xlsx", "-o", str(out))
    assert code == 1 and "--force" in err


@pytest.mark.parametrize("args,words", [
    (["-f", "xlsx"], ["-o"]),
    (["-f", "xlsx", "-o", "x.csv"], [".xlsx"]),
    (["-f", "xlsx", "-o", "x.xlsx", "--dry-run"], ["--dry-run"]),
    (["-f", "csv", "--headers", "fr"], ["--headers", "fr"]),
])
def test_xlsx_usage_errors(env, capsys, args, words):
    src = write(env / "export.csv")
    code, _, err = cli(capsys, "score", str(src), "--no-store", *args)
    assert code == 2, err
    for w in words:
        assert w in err
    assert not (env / "x.xlsx").exists()


def test_csv_headers_zh_are_the_xlsx_headers(env, capsys):
    src = write(env / "export.csv")
    csv_out, xlsx_out = env / "t.csv", env / "t.xlsx"
    assert cli(capsys, "score", str(src), "--no-store", "-f", "csv", "--headers", "zh", "-o", str(csv_out))[0] == 0
    assert cli(capsys, "score", str(src), "--no-store", "-f", "xlsx", "-o", str(xlsx_out))[0] == 0
    with open(csv_out, encoding="utf-8-sig", newline="") as fh:
        csv_head = next(csv.reader(fh))
    assert csv_head == [c.value for c in sheet(xlsx_out)[1]]
    assert csv_head[0] == "客户编号"
    # without --headers the CSV keeps the field names scripts rely on
    code, out, _ = cli(capsys, "score", str(src), "--no-store", "-f", "csv")
    assert out.lstrip("\ufeff").startswith("customer_id,name,phone")


def test_churn_grade_tasks_alerts_xlsx(env, capsys):
    churn = env / "churn.xlsx"
    code, _, err = cli(capsys, "churn", str(ROOT / "sample_data" / "churn.csv"), "--now", NOW, "-f", "xlsx",
                       "-o", str(churn))
    assert code == 0, err
    ws = sheet(churn)
    h = by_header(ws)
    assert {"客户编号", "流失风险分", "风险等级", "响应时限"} <= set(h)
    cid = ws.cell(2, h["客户编号"])
    assert isinstance(cid.value, str) and cid.number_format == "@" and cid.value.startswith("0")
    assert isinstance(ws.cell(2, h["响应时限"]).value, dt.datetime)
    assert ws.cell(2, h["风险等级"]).fill.fgColor.rgb.upper().endswith("F8696B")  # 极高 first

    grade = env / "grade.xlsx"
    code, _, err = cli(capsys, "grade", str(ROOT / "sample_data" / "grading.csv"), "--now", NOW,
                       "-f", "xlsx", "-o", str(grade), "--out", str(env / "letters"))
    assert code == 0, err
    ws = sheet(grade)
    h = by_header(ws)
    assert {"客户编号", "等级", "综合分", "近12个月消费得分", "人工调整"} <= set(h)
    assert ws.cell(2, h["客户编号"]).number_format == "@"
    assert isinstance(ws.cell(2, h["综合分"]).value, float)
    assert ws.cell(2, h["人工调整"]).value in ("是", "否")

    src = write(env / "export.csv")
    assert cli(capsys, "score", str(src), "--as-of", "2026-11-24", "--now", NOW)[0] == 0
    tasks = env / "tasks.xlsx"
    code, _, err = cli(capsys, "tasks", "--now", NOW, "-f", "xlsx", "-o", str(tasks))
    assert code == 0, err
    ws = sheet(tasks)
    h = by_header(ws)
    assert {"负责人", "等级", "客户编号", "期限", "逾期"} <= set(h)
    r = row_of(ws, h["客户编号"], "00000104")
    assert ws.cell(r, h["手机号"]).value == "13912345678"
    assert isinstance(ws.cell(r, h["期限"]).value, dt.datetime)
    assert ws.cell(r, h["等级"]).fill.fgColor.rgb.upper().endswith("F8696B")

    alerts = env / "alerts.xlsx"
    code, _, err = cli(capsys, "alerts", "-f", "xlsx", "-o", str(alerts))
    assert code == 0, err
    ws = sheet(alerts)
    h = by_header(ws)
    assert {"编号", "接收人", "客户编号", "原因", "起始时间", "状态"} <= set(h)
    assert isinstance(ws.cell(2, h["编号"]).value, int)
    assert isinstance(ws.cell(2, h["起始时间"]).value, dt.datetime)
    assert ws.cell(2, h["状态"]).value == "未处理"
    code, out, _ = cli(capsys, "alerts", "-f", "csv")
    assert code == 0 and out.startswith("id,recipient") and ",open," in out  # scripts keep the codes


def _run(args: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "TIERCTL_DB": str(cwd / "store.db"), "XDG_CONFIG_HOME": str(cwd / "xdg")}
    env.pop("TIERCTL_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "tierctl", *args], cwd=cwd, env=env, timeout=120, **kw)


def test_csv_to_stdout_bom_only_into_a_regular_file(tmp_path):
    src = write(tmp_path / "export.csv")
    args = ["score", str(src), "--no-store", "-f", "csv"]
    target = tmp_path / "redirected.csv"
    with open(target, "wb") as fh:  # tierctl … -f csv > redirected.csv
        p = _run(args, tmp_path, stdout=fh, stderr=subprocess.PIPE)
    assert p.returncode == 0, p.stderr
    data = target.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfcustomer_id,")
    assert "张先生".encode() in data  # UTF-8 whatever the locale
    with open(target, "ab") as fh:  # >> onto a file that holds something: no BOM in the middle
        p = _run(args, tmp_path, stdout=fh, stderr=subprocess.PIPE)
    assert data.count(b"\xef\xbb\xbf") == 1 and target.read_bytes().count(b"\xef\xbb\xbf") == 1
    piped = _run(args, tmp_path, capture_output=True)  # a pipe to another program
    assert piped.returncode == 0 and piped.stdout.startswith(b"customer_id,")


def test_table_spec_is_checked_when_it_loads(tmp_path):
    from tierctl.io.tables import table_spec

    bad = tmp_path / "tables.toml"
    bad.write_text('[fills]\nP0 = "red"\n[score]\nsheet = { zh = "a", en = "b" }\ncolumns = []\n', encoding="utf-8")
    with pytest.raises(ModelError, match=r"tables\.toml \[fills\.P0\].*#RRGGBB"):
        table_spec("score", bad)
    bad.write_text('[score]\nsheet = { zh = "a", en = "b" }\n'
                   'columns = [{ key = "x", zh = "甲", en = "x", type = "money" }]\n', encoding="utf-8")
    with pytest.raises(ModelError, match=r"\[score\.columns\[0\]\.type\].*money"):
        table_spec("score", bad)
    spec = table_spec("score")
    assert [c.header for c in spec.columns("zh")][:3] == ["客户编号", "客户姓名", "手机号"]


def test_a_workbook_open_in_excel_is_said_plainly(env, capsys, monkeypatch):
    """Windows refuses to replace a file Excel holds open: one message saying so, exit 1."""
    from tierctl.io import writers

    src = write(env / "export.csv")
    out = env / "today.xlsx"

    def locked(src_path, dst_path):
        raise PermissionError(13, "Permission denied", str(src_path), None, str(dst_path))

    monkeypatch.setattr(writers.os, "replace", locked)
    code, _, err = cli(capsys, "score", str(src), "--no-store", "-f", "xlsx", "-o", str(out), "--force")
    assert code == 1 and "文件被占用" in err and str(out) in err.replace("\n", "").replace("│", "").replace(" ", "")
    assert "Traceback" not in err and "内部错误" not in err
    assert not out.exists() and not list(env.glob(".today.xlsx.*"))  # nothing half-written left behind
