"""Configuration precedence, owned in one place.

``--config PATH`` > ``$TIERCTL_CONFIG`` > ``./tierctl.toml`` > the user's config file
(:func:`user_config_path`: ``~/.config/tierctl/tierctl.toml``, ``$XDG_CONFIG_HOME/tierctl/``
or ``%APPDATA%\\tierctl\\tierctl.toml`` on Windows — found from any folder, so a scheduled
run started elsewhere uses it too) > the packaged defaults.  Values are looked up by dotted
key; a missing key a document needs is a :class:`ConfigError` that names the file the
user should edit.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tierctl.errors import ConfigError
from tierctl.models.loader import load_toml, merge_tables

DEFAULTS = Path(__file__).parent / "data" / "defaults.toml"
CONFIG_NAME = "tierctl.toml"


def on_windows() -> bool:
    return sys.platform == "win32"


def user_config_dir() -> Path:
    """Where a user's own configuration lives: ``%APPDATA%\\tierctl`` on Windows,
    else ``$XDG_CONFIG_HOME/tierctl`` or ``~/.config/tierctl``."""
    if on_windows():
        base = os.environ.get("APPDATA") or str(Path.home() / "AppData" / "Roaming")
    else:
        base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "tierctl"


def user_config_path() -> Path:
    return user_config_dir() / CONFIG_NAME


def search_order(explicit: Path | str | None = None, *, cwd: Path | None = None) -> list[tuple[str, Path | None]]:
    """Every place looked at, in order: (what it is, the path; None when not set)."""
    env = os.environ.get("TIERCTL_CONFIG")
    return [("--config", Path(explicit) if explicit else None),
            ("TIERCTL_CONFIG", Path(env) if env else None),
            ("当前文件夹", (cwd or Path.cwd()) / CONFIG_NAME),
            ("用户配置", user_config_path())]


_merge = merge_tables


@dataclass
class Config:
    data: dict[str, Any]
    path: Path | None  # the user's file, if any

    @classmethod
    def load(cls, explicit: Path | str | None = None, *, cwd: Path | None = None) -> Config:
        data = load_toml(DEFAULTS)
        path: Path | None = None
        if explicit:
            path = Path(explicit)
            if not path.is_file():
                raise ConfigError("配置文件不存在", path=path, hint="用 tierctl init 生成一份")
        elif os.environ.get("TIERCTL_CONFIG"):
            path = Path(os.environ["TIERCTL_CONFIG"])
            if not path.is_file():
                raise ConfigError("环境变量 TIERCTL_CONFIG 指向的配置文件不存在", path=path)
        else:
            for candidate in ((cwd or Path.cwd()) / CONFIG_NAME, user_config_path()):
                if candidate.is_file():
                    path = candidate
                    break
        if path is not None:
            data = _merge(data, load_toml(path))
            if "notify" in data:  # robots and people are checked now, naming the key (tierctl.notify.config)
                from tierctl.notify.config import parse as check_notify

                check_notify(data["notify"], path)
        return cls(data, path)

    def get(self, dotted: str, default: Any = None) -> Any:
        cur: Any = self.data
        for part in dotted.split("."):
            if not isinstance(cur, dict) or part not in cur:
                return default
            cur = cur[part]
        return cur

    def require(self, dotted: str) -> Any:
        v = self.get(dotted)
        if v is None or v == "":
            raise ConfigError("缺少配置项", path=self.path or Path("tierctl.toml"), key=dotted,
                              hint="在 tierctl.toml 中填写这一项（tierctl init 可生成带注释的模板）")
        return v

    @property
    def source(self) -> str:
        return str(self.path) if self.path else "内置默认配置"

    def path_of(self, dotted: str) -> Path | None:
        """A path the configuration names (``store.db``, ``score.red_list``), ``~``
        expanded and, when relative, taken from the folder of the config file, so that a
        user config found from another folder means the same file; None when empty."""
        v = self.get(dotted)
        if not v:
            return None
        p = Path(str(v)).expanduser()
        if not p.is_absolute() and self.path is not None:
            p = self.path.parent / p
        return p

    def centre_id(self) -> str | None:
        """``centre.id``: the centre this installation is (every stored row carries it;
        a region's centres share one database apart by it).  None when not set."""
        v = self.get("centre.id")
        if v is None or v == "":
            return None
        text = str(v) if isinstance(v, (str, int)) else None
        if text is None or text != text.strip() or len(text) > 64 or any(ord(ch) < 32 for ch in text):
            raise ConfigError(f"服务中心编号「{v}」无效", path=self.path or Path("tierctl.toml"), key="centre.id",
                              hint="用 1–64 个字符、前后无空格，例如 id = \"SH-PD01\"")
        return text

    def describe(self) -> str:
        """One line for a log: which file this run's settings come from."""
        if self.path is not None:
            return f"配置文件：{self.path}"
        return (f"配置文件：未找到（当前文件夹、{user_config_path()} 都没有 {CONFIG_NAME}），使用内置默认值；"
                "tierctl init --user 可生成")
