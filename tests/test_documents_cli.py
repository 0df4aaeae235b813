"""The document commands: `render`, `init`, `templates list`, `lint` — exit codes, the key
words of their messages, nothing written on failure, and JSON equal to the library."""

from __future__ import annotations

import email
import json
import tomllib
from email import policy
from pathlib import Path

import pytest
from conftest import CliResult, run_cli

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "shortage.xlsx"
CONFIG = ROOT / "tests" / "golden" / "render" / "tierctl.toml"
CLOCK = ["--as-of", "2026-11-24", "--now", "2026-11-24T09:00+08:00"]


def run(*args: str, cwd: Path, env: dict | None = None) -> CliResult:
    return run_cli(*args, cwd=cwd, env={"TIERCTL_CONFIG": None, **(env or {})})


@pytest.fixture(autouse=True)
def _isolated_db(tmp_path, monkeypatch):
    monkeypatch.setenv("TIERCTL_DB", str(tmp_path / "t.db"))


def test_render_writes_every_document(tmp_path):
    p = run("--config", str(CONFIG), "render", str(SAMPLE), *CLOCK, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    day = tmp_path / "out" / "2026-11-24"
    names = sorted(x.name for x in day.iterdir())
    assert names == sorted(["spec_email.eml", "spec_email.md", "evaluation_sheet.xlsx", "sms.csv", "sms.md",
                            "call_scripts.md", "transfer_request.md", "sms_aliyun.xlsx", "sms_tencent.xlsx",
                            "sms_check.xlsx"])
    assert [Path(line).name for line in p.stdout.split()] == [
        "spec_email.eml", "spec_email.md", "evaluation_sheet.xlsx", "sms.csv", "sms.md", "call_scripts.md",
        "transfer_request.md", "sms_aliyun.xlsx", "sms_tencent.xlsx", "sms_check.xlsx"]
    assert "已生成" in p.stderr and "危机等级 4" in p.stderr
    golden = ROOT / "tests" / "golden" / "render"
    for f in ("spec_email.md", "sms.csv", "sms.md", "call_scripts.md", "transfer_request.md"):
        assert (day / f).read_bytes() == (golden / f).read_bytes(), f
    msg = email.message_from_bytes((day / "spec_email.eml").read_bytes(), policy=policy.default)
    assert msg["Subject"] == "【紧急】上海浦东服务中心配件短缺危机 - 申请加急支援(高舆情风险)"


def test_render_refuses_to_overwrite_then_force(tmp_path):
    args = ["--config", str(CONFIG), "render", str(SAMPLE), *CLOCK, "--out", "docs"]
    assert run(*args, cwd=tmp_path).returncode == 0
    before = (tmp_path / "docs" / "2026-11-24" / "sms.md").stat().st_mtime_ns
    again = run(*args, cwd=tmp_path)
    assert again.returncode == 1 and "--force" in again.stderr and "未覆盖" in again.stderr
    assert (tmp_path / "docs" / "2026-11-24" / "sms.md").stat().st_mtime_ns == before
    assert run(*args, "--force", cwd=tmp_path).returncode == 0


def test_render_english(tmp_path):
    p = run("--config", str(CONFIG), "render", str(SAMPLE), *CLOCK, "--lang", "en", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    md = (tmp_path / "out" / "2026-11-24" / "spec_email.md").read_text(encoding="utf-8")
    assert md.startswith("# [URGENT]") and "[3. Effect]" in md


def test_render_without_file_needs_the_history(tmp_path):
    p = run("--config", str(CONFIG), "render", *CLOCK, cwd=tmp_path)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert not (tmp_path / "out").exists()


def test_render_from_todays_snapshot_equals_render_from_file(tmp_path):
    assert run("score", str(SAMPLE), *CLOCK, cwd=tmp_path).returncode == 0  # stores the run
    p = run("--config", str(CONFIG), "render", *CLOCK, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    golden = ROOT / "tests" / "golden" / "render"
    for f in ("spec_email.md", "sms.csv", "call_scripts.md", "transfer_request.md"):
        assert (tmp_path / "out" / "2026-11-24" / f).read_bytes() == (golden / f).read_bytes(), f


def test_render_without_config_names_the_missing_keys(tmp_path):
    p = run("render", str(SAMPLE), *CLOCK, cwd=tmp_path)
    assert p.returncode == 1
    for key in ("centre.name", "progress.today", "costs.lifetime_value", "parts.eta_date"):
        assert key in p.stderr
    assert not (tmp_path / "out").exists()


def test_render_taboo_fails_then_allowed(tmp_path):
    cfg = tmp_path / "tierctl.toml"
    cfg.write_text(CONFIG.read_text(encoding="utf-8").replace("跟进总部排产答复", "跟进总部排产答复，大家都在等"),
                   encoding="utf-8")
    p = run("render", str(SAMPLE), *CLOCK, cwd=tmp_path)  # ./tierctl.toml is found by itself
    assert p.returncode == 1 and "大家都在等" in p.stderr and "sms.md" in p.stderr and "--allow-taboo" in p.stderr
    assert not (tmp_path / "out").exists()
    p = run("render", str(SAMPLE), *CLOCK, "--allow-taboo", cwd=tmp_path)
    assert p.returncode == 0 and "禁忌用语" in p.stderr


def test_render_user_templates_from_option_and_config(tmp_path):
    tpl = tmp_path / "mytpl" / "zh"
    tpl.mkdir(parents=True)
    (tpl / "transfer_request.md.j2").write_text('{% extends "default:zh/transfer_request.md.j2" %}', encoding="utf-8")
    (tpl / "sms.txt.j2").write_text("{{ c.name }}：{{ ''.__class__ }}", encoding="utf-8")
    p = run("--config", str(CONFIG), "render", str(SAMPLE), *CLOCK, "--templates", str(tmp_path / "mytpl"), cwd=tmp_path)
    assert p.returncode == 1 and "sms.txt.j2" in p.stderr and "Traceback" not in p.stderr
    cfg = tmp_path / "tierctl.toml"
    cfg.write_text(CONFIG.read_text(encoding="utf-8") + '\n[render]\ntemplates = "mytpl"\n', encoding="utf-8")
    (tpl / "sms.txt.j2").write_text('{% extends "default:zh/sms.txt.j2" %}{% block short %}短：{{ c.name }}{% endblock %}',
                                    encoding="utf-8")
    p = run("render", str(SAMPLE), *CLOCK, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "短：梁丽" in (tmp_path / "out" / "2026-11-24" / "sms.md").read_text(encoding="utf-8")


def test_init_writes_starter_never_overwrites(tmp_path):
    p = run("init", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    written = (tmp_path / "tierctl.toml").read_text(encoding="utf-8")
    assert written == (ROOT / "tierctl" / "data" / "init.toml").read_text(encoding="utf-8")
    tomllib.loads(written)
    (tmp_path / "tierctl.toml").write_text("# mine\n", encoding="utf-8")
    p = run("init", cwd=tmp_path)
    assert p.returncode == 1 and "--force" in p.stderr
    assert (tmp_path / "tierctl.toml").read_text(encoding="utf-8") == "# mine\n"
    assert run("init", "--force", cwd=tmp_path).returncode == 0
    assert (tmp_path / "tierctl.toml").read_text(encoding="utf-8") == written
    assert run("init", "sub/other.toml", cwd=tmp_path).returncode == 0
    assert (tmp_path / "sub" / "other.toml").is_file()


def test_lint_exit_codes_and_locations(tmp_path):
    bad = tmp_path / "draft.txt"
    bad.write_text("张先生您好：\n配件的事我们也没办法，\n会 尽快 给您答复。\n", encoding="gbk")
    good = tmp_path / "ok.md"
    good.write_text("张先生您好：配件预计 12 月 15 日到店。\n", encoding="utf-8")
    p = run("lint", str(bad), str(good), cwd=tmp_path)
    assert p.returncode == 1
    assert f"{bad}:2: 禁忌用语「我们也没办法」" in p.stdout and f"{bad}:3: 禁忌用语「会尽快」" in p.stdout
    assert "ok.md" not in p.stdout
    p = run("lint", str(good), cwd=tmp_path)
    assert p.returncode == 0 and p.stdout == "" and "未发现" in p.stderr
    p = run("lint", str(bad), "--format", "json", cwd=tmp_path)
    assert p.returncode == 1
    from tierctl.config import Config
    from tierctl.render import lint_file

    lib = [{"file": h.file, "line": h.line, "phrase": h.phrase, "text": h.text} for h in lint_file(bad, Config.load())]
    assert json.loads(p.stdout) == lib
    p = run("lint", str(tmp_path / "nope.txt"), cwd=tmp_path)
    assert p.returncode == 1 and "不存在" in p.stderr


def test_lint_uses_the_users_extra_phrases(tmp_path):
    (tmp_path / "tierctl.toml").write_text('[taboo]\nextra = ["您再等等"]\n', encoding="utf-8")
    d = tmp_path / "d.txt"
    d.write_text("您再等等吧\n", encoding="utf-8")
    p = run("lint", str(d), cwd=tmp_path)
    assert p.returncode == 1 and "您再等等" in p.stdout


def test_templates_list_json_equals_library(tmp_path):
    p = run("templates", "list", "--format", "json", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    from tierctl.render import list_templates

    assert json.loads(p.stdout) == [i.to_json() for i in list_templates()]
    p = run("templates", "list", "--lang", "zh", cwd=tmp_path)
    assert p.returncode == 0 and "zh/sms.txt.j2" in p.stdout and "en/sms.txt.j2" not in p.stdout
    assert "offer_for" in p.stdout
    p = run("templates", "list", "--lang", "fr", cwd=tmp_path)
    assert p.returncode == 2


def test_document_commands_have_chinese_help(tmp_path):
    for args in (["render"], ["init"], ["templates"], ["templates", "list"], ["lint"]):
        p = run(*args, "--help", cwd=tmp_path)
        assert p.returncode == 0, args
        assert any("\u4e00" <= ch <= "\u9fff" for ch in p.stdout), args
