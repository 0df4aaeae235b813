"""Setup where managers are (issue 17): the user's config folder is searched from any
folder (after --config, TIERCTL_CONFIG and ./tierctl.toml), `tierctl init --user` writes
there, a run names the config file it used, and the PNG hint covers Windows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import cli

from tierctl import config as config_mod
from tierctl.config import Config, user_config_path

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "shortage.xlsx"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh home, config folders and working folder; Linux unless a test says otherwise."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("TIERCTL_CONFIG", raising=False)
    monkeypatch.delenv("APPDATA", raising=False)
    monkeypatch.setenv("TIERCTL_DB", str(tmp_path / "store.db"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(config_mod, "on_windows", lambda: False)
    return tmp_path


def put(path: Path, name: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'[centre]\nname = "{name}"\n', encoding="utf-8")
    return path


def test_user_config_paths_per_platform(home, monkeypatch):
    assert user_config_path() == home / "home" / ".config" / "tierctl" / "tierctl.toml"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "xdg"))
    assert user_config_path() == home / "xdg" / "tierctl" / "tierctl.toml"
    monkeypatch.setattr(config_mod, "on_windows", lambda: True)
    monkeypatch.setenv("APPDATA", str(home / "AppData" / "Roaming"))
    assert user_config_path() == home / "AppData" / "Roaming" / "tierctl" / "tierctl.toml"


def test_precedence_explicit_env_cwd_user_defaults(home, monkeypatch):
    assert Config.load().path is None and Config.load().get("centre.name") == ""  # packaged defaults
    user = put(user_config_path(), "用户配置")
    cfg = Config.load()
    assert cfg.path == user and cfg.get("centre.name") == "用户配置"  # found from any folder
    local = put(Path.cwd() / "tierctl.toml", "当前文件夹")
    assert Config.load().path == local
    env = put(home / "env.toml", "环境变量")
    monkeypatch.setenv("TIERCTL_CONFIG", str(env))
    assert Config.load().path == env
    explicit = put(home / "explicit.toml", "命令行")
    assert Config.load(explicit).get("centre.name") == "命令行"


def test_windows_appdata_config_is_used(home, monkeypatch):
    monkeypatch.setattr(config_mod, "on_windows", lambda: True)
    monkeypatch.setenv("APPDATA", str(home / "Roaming"))
    win = put(home / "Roaming" / "tierctl" / "tierctl.toml", "浦东服务中心")
    cfg = Config.load()
    assert cfg.path == win and cfg.get("centre.name") == "浦东服务中心"


def test_relative_paths_in_a_user_config_are_from_its_folder(home):
    cfg_path = user_config_path()
    cfg_path.parent.mkdir(parents=True)
    cfg_path.write_text('[store]\ndb = "history/tierctl.db"\n', encoding="utf-8")
    assert Config.load().path_of("store.db") == cfg_path.parent / "history" / "tierctl.db"


def test_init_user_writes_the_user_config_and_a_run_from_elsewhere_uses_it(home, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "xdg"))
    code, _, err = cli(capsys, "init", "--user")
    target = home / "xdg" / "tierctl" / "tierctl.toml"
    assert code == 0, err
    assert target.is_file() and str(target) in err
    assert "[centre]" in target.read_text(encoding="utf-8")
    assert cli(capsys, "init", "--user")[0] == 1  # kept unless --force
    assert cli(capsys, "init", "--user", "--force")[0] == 0
    assert cli(capsys, "init", "--user", "x.toml")[0] == 2
    elsewhere = home / "somewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, out, err = cli(capsys, "config", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["config"] == str(target)
    assert [o["source"] for o in doc["search_order"]] == ["--config", "TIERCTL_CONFIG", "当前文件夹", "用户配置"]
    assert [o["used"] for o in doc["search_order"]] == [False, False, False, True]


def test_a_logged_run_names_its_config_file(home, capsys, monkeypatch):
    """stderr is not a terminal here, as in a scheduled run's log: the run says which file
    it used, or that it found none and used the packaged defaults."""
    code, _, err = cli(capsys, "score", str(SAMPLE), "--dry-run", "-f", "json")
    assert code == 0 and "配置文件：未找到" in err and "内置默认值" in err and "init --user" in err
    user = put(user_config_path(), "x")
    code, _, err = cli(capsys, "score", str(SAMPLE), "--dry-run", "-f", "json")
    assert code == 0 and f"配置文件：{user}" in err.replace("\n", "")
    code, out, _ = cli(capsys, "config")
    assert code == 0 and str(user) in out.replace("\n", "") and "← 使用中" in out


def test_debug_names_the_config_file_on_a_terminal_too(home, capsys, monkeypatch):
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    code, _, err = cli(capsys, "score", str(SAMPLE), "--dry-run", "-f", "json")
    assert code == 0 and "配置文件" not in err  # an interactive run is not told
    code, _, err = cli(capsys, "--debug", "score", str(SAMPLE), "--dry-run", "-f", "json")
    assert code == 0 and "配置文件：未找到" in err


def test_png_hint_says_what_to_do_on_windows(monkeypatch):
    import builtins

    from tierctl.errors import RenderError
    from tierctl.render import dashboard

    real = builtins.__import__

    def no_cairo(name, *a, **k):
        if name == "cairosvg":
            raise OSError("no library called \"cairo-2\" was found")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_cairo)
    with pytest.raises(RenderError) as ei:
        dashboard._cairosvg()
    msg = str(ei.value)
    assert "Windows" in msg and "GTK" in msg and "PATH" in msg and "--png" in msg
    assert "apt-get install libcairo2" in msg and "brew install cairo" in msg
