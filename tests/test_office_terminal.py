"""The terminal (issue 17): the score table at 80 columns and in a pipe wraps or drops
columns instead of cutting a text; --version, -h, Chinese framework texts in help and
usage errors; a closed pipe exits 0 quietly, a full disk says so; progress on stderr
only for a terminal."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli
from rich.cells import cell_len
from rich.console import Console
from typer.testing import CliRunner

from tierctl.cli import app
from tierctl.cli.terminal import Progress, Wrapped, longest_piece, wrap

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data" / "shortage.xlsx"
AS_OF, NOW = "2026-11-24", "2026-11-24T09:00:00+08:00"


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TIERCTL_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("TIERCTL_DB", str(tmp_path / "store.db"))
    return tmp_path


def expected_reasons() -> tuple[list[str], list[str]]:
    """The main reason and R·I·T·E of every customer, most urgent first (the library's)."""
    from conftest import NOW as now

    from tierctl.cli.score import main_reason
    from tierctl.io.ingest import read_export
    from tierctl.shortage import load_model, score

    model = load_model("rite")
    ex = read_export(SAMPLE, model.columns)
    res = score(ex.frame, model, now.date(), now, headers=ex.headers)
    rows = res.customers.to_dict("records")
    return [main_reason(r, model) for r in rows], ["·".join(str(r[k]) for k in model.dim_keys) for r in rows]


def table_cells(out: str, header: str) -> list[str]:
    """The text of column ``header`` per table row, its wrapped lines joined (spaces
    dropped: a wrap at a space loses it)."""
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if header in line and "级别" in line or header in line and "Tier" in line)
    start = cell_len(lines[head][:lines[head].index(header)])
    cells: list[str] = []
    for line in lines[head + 2:]:
        if not line.strip() or line.startswith(("合计", "Total", "…")):
            break
        col, piece = 0, []
        for ch in line:
            if col >= start:
                piece.append(ch)
            col += cell_len(ch)
        text = "".join(piece).strip()
        if line[:4].strip():  # the tier column is filled: a new row
            cells.append(text)
        else:
            cells[-1] += text
    return [re.sub(r"\s+", "", c) for c in cells]


@pytest.mark.parametrize("lang,header", [("zh", "主要原因"), ("en", "Main reason")])
def test_score_table_at_80_columns_wraps_every_reason_whole(env, capsys, monkeypatch, lang, header):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = cli(capsys, "score", str(SAMPLE), "--as-of", AS_OF, "--now", NOW, "--dry-run", "--limit", "0",
                         "--lang", lang)
    assert code == 0, err
    table = out[out.index(header) - 40:]
    assert "…" not in table.split("\n合计")[0].split("\nTotal")[0]  # nothing cut with an ellipsis
    assert max(cell_len(line) for line in out.splitlines()) <= 80
    reasons, _ = expected_reasons()
    assert table_cells(out, header) == [re.sub(r"\s+", "", r) for r in reasons]
    assert "R·I·T·E" not in out  # dropped first at 80 columns; who, by when and why stay
    for word in (("负责人", "时限") if lang == "zh" else ("Owner", "Respond by")):
        assert word in out


def test_score_table_in_a_pipe_is_80_columns_and_cuts_nothing(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env["TIERCTL_DB"] = str(tmp_path / "s.db")
    p = subprocess.run([sys.executable, "-m", "tierctl", "score", str(SAMPLE), "--as-of", AS_OF, "--now", NOW,
                        "--dry-run", "--limit", "0"], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert max(cell_len(line) for line in p.stdout.splitlines()) <= 80
    reasons, _ = expected_reasons()
    assert table_cells(p.stdout, "主要原因") == [re.sub(r"\s+", "", r) for r in reasons]


def test_rite_column_is_whole_where_it_fits(env, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    code, out, _ = cli(capsys, "score", str(SAMPLE), "--as-of", AS_OF, "--now", NOW, "--dry-run", "--limit", "0")
    assert code == 0
    _, dims = expected_reasons()
    assert "R·I·T·E" in out and "…" not in out.split("\n合计")[0]
    assert table_cells(out, "R·I·T·E")[:len(dims)] != []
    shown = [c[:len(d)] for c, d in zip(table_cells(out, "R·I·T·E"), dims, strict=True)]
    assert shown == dims


def test_wrap_breaks_only_where_chinese_text_may_break():
    text = "A4.4: 最新沟通记录新出现「投诉」，升一级"
    assert longest_piece(text) == cell_len("「投诉」，")
    for width in range(longest_piece(text), 40):  # (narrower than a piece: folding is all that is left)
        lines = wrap(text, width)
        assert all(cell_len(line) <= width for line in lines)
        assert "".join(lines).replace(" ", "") == text.replace(" ", "")
        assert not any(line.startswith(("，", "」")) for line in lines)  # no closing mark opens a line
        assert all("「投诉」" in line or "投" not in line for line in lines)  # a quoted term stays whole
        assert any(line.startswith("A4.4:") for line in lines)  # a rule code is never split
    assert wrap("R=10: 粉丝 230000 ≥ 100000", 12) == ["R=10: 粉丝", "230000 ≥", "100000"]
    con = Console(file=io.StringIO(), width=12)
    assert con.measure(Wrapped("R=10: 粉丝 230000")).minimum == 6  # its longest piece


def test_version_and_short_help(capsys):
    from tierctl import __version__

    code, out, _ = cli(capsys, "--version")
    assert code == 0 and out.strip() == f"tierctl {__version__}"
    for args in (["-h"], ["score", "-h"], ["churn", "-h"], ["tasks", "-h"], ["alerts", "-h"]):
        code, out, err = cli(capsys, *args)
        assert code == 0, (args, err)
        assert "用法：" in out and "显示此帮助并退出" in out


def test_help_speaks_chinese_by_default_and_english_when_asked(env, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    code, out, _ = cli(capsys, "--help")
    assert code == 0
    for zh in ("用法：tierctl [选项] 命令 [参数]...", "选项", "命令", "显示此帮助并退出", "--install-completion",
               "--show-completion", "--version"):
        assert zh in out, zh
    assert "Show this message and exit." not in out and "Usage:" not in out
    code, out, _ = cli(capsys, "score", "--help")
    assert "参数" in out and "[必填]" in out and "[默认：table]" in out
    code, out, _ = cli(capsys, "score", "--lang", "en", "--help")
    assert "Usage:" in out and "Show this message and exit." in out and "Arguments" in out
    # the language of the config in use, when the command line does not say
    (env / "tierctl.toml").write_text('[centre]\nlang = "en"\n', encoding="utf-8")
    code, out, _ = cli(capsys, "tasks", "--help")
    assert "Show this message and exit." in out
    res = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "120"})  # the app called directly too
    assert res.exit_code == 0


def test_usage_errors_in_chinese(env, capsys):
    code, _, err = cli(capsys, "score")
    assert code == 2 and "缺少参数" in err and "tierctl score -h" in err and "Traceback" not in err
    code, _, err = cli(capsys, "score", "x.csv", "--lmit", "3")
    assert code == 2 and "没有这个选项：--lmit" in err and "--limit" in err
    code, _, err = cli(capsys, "score", "x.csv", "--limit", "abc")
    assert code == 2 and "--limit 的值「abc」不是整数" in err
    code, _, err = cli(capsys, "scor")
    assert code == 2 and "没有这个命令：scor" in err
    code, _, err = cli(capsys, "--lang", "en", "score")
    assert code == 2 and "Missing argument" in err


def _shell(cmd: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TIERCTL_DB": str(tmp_path / "s.db"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    env.pop("COLUMNS", None)
    return subprocess.run(["bash", "-c", f"set -o pipefail; {cmd}"], capture_output=True, text=True, env=env,
                          timeout=120, cwd=tmp_path)


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "help"])
def test_closed_pipe_exits_zero_quietly(tmp_path, fmt):
    tierctl = f"{sys.executable} -m tierctl"
    cmd = (f"{tierctl} --help" if fmt == "help" else
           f"{tierctl} score {SAMPLE} --as-of {AS_OF} --dry-run --limit 0 -f {fmt}")
    for reader in ("head -1", "true"):  # true: the pipe is closed before the first write
        p = _shell(f"{cmd} | {reader}", tmp_path)
        assert p.returncode == 0, (reader, p.stderr)
        for bad in ("Traceback", "Broken pipe", "BrokenPipe", "Exception ignored", "内部错误"):
            assert bad not in p.stderr, (reader, p.stderr)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
@pytest.mark.parametrize("args", [["score", str(SAMPLE), "--dry-run"], ["score", str(SAMPLE), "--dry-run", "-f", "csv"],
                                  ["--help"]])
def test_full_disk_is_said_plainly(tmp_path, args):
    p = _shell(f"{sys.executable} -m tierctl {' '.join(args)} > /dev/full", tmp_path)
    assert p.returncode == 1, p.stderr
    assert "磁盘已满" in p.stderr and "Traceback" not in p.stderr and "内部错误" not in p.stderr


def test_progress_shows_on_a_terminal_only_and_only_for_long_work():
    shown = io.StringIO()
    p = Progress(Console(file=shown, force_terminal=True, width=60), after=0)
    p.step("读取 shortage.xlsx …")
    p.start()
    p.step("打分 …")
    p.stop()
    assert "打分" in shown.getvalue() or "读取" in shown.getvalue()
    quiet = io.StringIO()
    p = Progress(Console(file=quiet, force_terminal=False), after=0)  # a log file or a pipe
    p.start()
    p.step("打分 …")
    p.stop()
    assert quiet.getvalue() == ""
    short = io.StringIO()
    p = Progress(Console(file=short, force_terminal=True), after=30)  # done before it was due
    p.start()
    p.stop()
    assert short.getvalue() == ""


def test_score_run_has_no_progress_in_a_pipe(env, capsys):
    code, _, err = cli(capsys, "score", str(SAMPLE), "--as-of", AS_OF, "--dry-run", "-f", "json")
    assert code == 0 and "打分 …" not in err and "读取" not in err


def test_shell_completion_is_offered_and_completes(tmp_path):
    # the shell named, not detected: under `make test` the nearest shell up the process tree is sh,
    # which Typer does not complete for (a manager asks in bash, zsh, fish or PowerShell)
    env = {**os.environ, "SHELL": "/bin/bash", "TIERCTL_DB": str(tmp_path / "s.db"),
           "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    p = subprocess.run([sys.executable, "-m", "tierctl", "--show-completion", "bash"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert p.returncode == 0 and "_TIERCTL_COMPLETE" in p.stdout
    comp = subprocess.run([sys.executable, "-m", "tierctl"], capture_output=True, text=True, timeout=120,
                          env={**env, "_TIERCTL_COMPLETE": "complete_bash", "COMP_WORDS": "tierctl score --fo",
                               "COMP_CWORD": "2"})
    assert comp.returncode == 0 and "--format" in comp.stdout.split()
