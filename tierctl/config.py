"""Configuration precedence, owned in one place.

``--config PATH`` > ``$TIERCTL_CONFIG`` > ``./tierctl.toml`` > the packaged defaults.
Values are looked up by dotted key; a missing key a document needs is a
:class:`ConfigError` that names the file the user should edit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tierctl.errors import ConfigError
from tierctl.models.loader import load_toml

DEFAULTS = Path(__file__).parent / "data" / "defaults.toml"


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


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
            candidate = (cwd or Path.cwd()) / "tierctl.toml"
            if candidate.is_file():
                path = candidate
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
