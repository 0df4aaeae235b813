"""Load model and configuration files (TOML) with errors that name file and key.

Every job's model (``rite.toml``, ``rite100.toml``, ``churn.toml``, ``rfm.toml``,
``grade.toml`` …) is found the same way: a packaged name, or a path to a user's copy.
Values are read through :class:`Section`, which checks types and ranges at load time so
that a bad model file fails before any customer is scored, naming the file and the key.
"""

from __future__ import annotations

import builtins
import pickle
import tomllib
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from tierctl.errors import ModelError

PACKAGED_DIR = Path(__file__).parent

_MISSING = object()


def packaged_models(kind: str | None = None) -> list[str]:
    """Names of the packaged model files (optionally only those of one ``kind``)."""
    names = []
    for p in sorted(PACKAGED_DIR.glob("*.toml")):
        if kind is None or load_toml(p).get("kind") == kind:
            names.append(p.stem)
    return names


def resolve_model_path(name_or_path: str | Path) -> Path:
    """A packaged model name (``rite``) or a path to a model file."""
    text = str(name_or_path)
    candidate = Path(text).expanduser()
    if candidate.suffix.lower() == ".toml" or candidate.exists() or "/" in text or "\\" in text:
        if not candidate.is_file():
            raise ModelError("找不到模型文件", path=candidate,
                             hint="检查路径，或用内置模型名（如 rite、rite100）")
        return candidate
    packaged = PACKAGED_DIR / f"{text}.toml"
    if not packaged.is_file():
        known = ", ".join(p.stem for p in sorted(PACKAGED_DIR.glob("*.toml")))
        raise ModelError(f"没有名为「{text}」的内置模型", hint=f"可用的内置模型：{known}；或给出模型文件路径")
    return packaged


_PARSED: dict[bytes, bytes] = {}  # a file's bytes -> what they parse to, pickled
_PARSED_MAX = 64


def load_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file, turning syntax errors into :class:`ModelError`.

    The same bytes read again (a model is loaded by every job of a run, and again by the
    next run in the same process) are not parsed again: each call gets its own copy of
    what they parsed to (unpickled: a tenth of parsing), so a caller may change it."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
        hit = _PARSED.get(raw)
        if hit is not None:
            return pickle.loads(hit)  # noqa: S301 - our own pickle of a parsed TOML file
        data = tomllib.loads(raw.decode("utf-8"))
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.pop(next(iter(_PARSED)))
        _PARSED[raw] = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
        return data
    except FileNotFoundError as exc:
        raise ModelError("文件不存在", path=path) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(f"TOML 格式错误：{exc}", path=path,
                         hint="用文本编辑器打开检查引号、括号和等号") from exc
    except UnicodeDecodeError as exc:
        raise ModelError("文件不是 UTF-8 编码", path=path, hint="请另存为 UTF-8") from exc


class Section:
    """A typed view of one table of a TOML file; every error names file and key."""

    def __init__(self, data: dict[str, Any], path: Path, prefix: builtins.str = "") -> None:
        if not isinstance(data, dict):
            raise ModelError("应为一个表（[section]）", path=path, key=prefix or None)
        self.data = data
        self.path = path
        self.prefix = prefix

    @classmethod
    def load(cls, name_or_path: builtins.str | Path, kind: builtins.str | None = None) -> Section:
        """Load a packaged model by name or a user's file by path; check its ``kind``."""
        path = resolve_model_path(name_or_path)
        sec = cls(load_toml(path), path)
        if kind is not None:
            got = sec.data.get("kind")
            if got != kind:
                raise ModelError(f"这不是 {kind} 类型的模型（kind = {got!r}）", path=path, key="kind",
                                 hint=f"在文件开头写 kind = \"{kind}\"，或换用正确的模型文件")
        return sec

    # -- helpers -------------------------------------------------------------------
    def key(self, name: builtins.str) -> builtins.str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def error(self, name: builtins.str | None, message: builtins.str, hint: builtins.str | None = None) -> ModelError:
        return ModelError(message, path=self.path, key=self.key(name) if name else (self.prefix or None),
                          hint=hint)

    def __contains__(self, name: builtins.str) -> bool:
        return name in self.data

    def keys(self) -> builtins.list[builtins.str]:
        return list(self.data)

    def _get(self, name: builtins.str, default: Any) -> Any:
        if name in self.data:
            return self.data[name]
        if default is _MISSING:
            raise self.error(name, "缺少必填项")
        return default

    def str(self, name: builtins.str, default: Any = _MISSING) -> builtins.str:
        v = self._get(name, default)
        if v is not default and not isinstance(v, str):
            raise self.error(name, f"应为文字，实际是 {v!r}")
        return v

    def bool(self, name: builtins.str, default: Any = _MISSING) -> bool:
        v = self._get(name, default)
        if v is not default and not isinstance(v, bool):
            raise self.error(name, f"应为 true 或 false，实际是 {v!r}")
        return v

    def int(self, name: builtins.str, default: Any = _MISSING, *, min: int | None = None,
            max: int | None = None) -> int:
        v = self._get(name, default)
        if v is default:
            return v
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.error(name, f"应为整数，实际是 {v!r}")
        self._check_range(name, v, min, max)
        return v

    def number(self, name: builtins.str, default: Any = _MISSING, *, min: float | None = None,
               max: float | None = None) -> float:
        v = self._get(name, default)
        if v is default:
            return v
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise self.error(name, f"应为数字，实际是 {v!r}")
        self._check_range(name, v, min, max)
        return v

    def decimal(self, name: builtins.str, default: Any = _MISSING, *, min: float | None = None,
                max: float | None = None) -> Decimal:
        """An exact decimal: write weights as ``"0.35"`` or ``0.35`` (read via its text)."""
        v = self._get(name, default)
        if v is default:
            return v
        if isinstance(v, bool) or not isinstance(v, int | float | str):
            raise self.error(name, f"应为数字，实际是 {v!r}")
        try:
            d = Decimal(str(v))
        except InvalidOperation as exc:
            raise self.error(name, f"应为数字，实际是 {v!r}") from exc
        if not d.is_finite():
            raise self.error(name, f"应为有限的数字，实际是 {v!r}")
        self._check_range(name, d, min, max)
        return d

    def list(self, name: builtins.str, default: Any = _MISSING, *, of: type | tuple[type, ...] | None = None) -> builtins.list:
        v = self._get(name, default)
        if v is default:
            return v
        if not isinstance(v, list):
            raise self.error(name, f"应为列表 [...]，实际是 {v!r}")
        if of is not None:
            for i, item in enumerate(v):
                if isinstance(item, bool) and bool not in (of if isinstance(of, tuple) else (of,)):
                    raise self.error(f"{name}[{i}]", f"类型不对：{item!r}")
                if not isinstance(item, of):
                    raise self.error(f"{name}[{i}]", f"类型不对：{item!r}")
        return v

    def section(self, name: builtins.str, default: Any = _MISSING) -> Section:
        v = self._get(name, default)
        if v is default and not isinstance(v, dict):
            return v
        return Section(v, self.path, self.key(name))

    def sections(self, name: builtins.str, default: Any = _MISSING) -> builtins.list[Section]:
        """An array of tables (``[[name]]``)."""
        v = self._get(name, default)
        if v is default and not isinstance(v, list):
            return v
        if not isinstance(v, list):
            raise self.error(name, "应为表数组（[[...]]）")
        return [Section(item, self.path, f"{self.key(name)}[{i}]") for i, item in enumerate(v)]

    def items(self) -> Iterator[tuple[builtins.str, Any]]:
        return iter(self.data.items())

    def choice(self, name: builtins.str, options: builtins.list[builtins.str] | tuple[builtins.str, ...],
               default: Any = _MISSING) -> builtins.str:
        v = self.str(name, default)
        if v not in options:
            raise self.error(name, f"取值「{v}」无效", hint=f"可选：{', '.join(options)}")
        return v

    def _check_range(self, name: builtins.str, v: Any, lo: Any, hi: Any) -> None:
        if lo is not None and v < lo:
            raise self.error(name, f"取值 {v} 小于允许的最小值 {lo}")
        if hi is not None and v > hi:
            raise self.error(name, f"取值 {v} 大于允许的最大值 {hi}")


def merge_tables(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` laid on ``base`` table by table (a user's file over the packaged defaults)."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge_tables(out[k], v)
        else:
            out[k] = v
    return out
