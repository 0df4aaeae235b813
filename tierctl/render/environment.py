"""The Jinja environment of the documents: strict (a missing value is an error, never a blank
in a customer's SMS), a user's template folder before the packaged one, ``default:`` for the
packaged templates, the sandbox as soon as a user folder is in play; configuration seen
through :class:`ConfigView` (a missing key raises ConfigError naming the key and the file)."""

from __future__ import annotations

import datetime as dt
import functools
import re
import traceback
from decimal import Decimal
from pathlib import Path
from typing import Any

from tierctl.errors import ConfigError, RenderError, TierctlError
from tierctl.render.values import _empty, _missing, fmt_money, fmt_pct, fmt_wan, toml_key

LANGS = ("zh", "en")


def packaged_templates_dir() -> Path:
    """The packaged ``templates/`` folder: inside the installed package (wheel), or at
    the top of a source checkout (editable install)."""
    here = Path(__file__).resolve().parent.parent  # tierctl/
    for cand in (here / "templates", here.parent / "templates"):
        if (cand / "zh").is_dir():
            return cand
    raise RenderError("找不到内置模板文件夹 templates/", hint="重新安装 tierctl")


# -- configuration as seen by templates -------------------------------------------------------
class ConfigView:
    """Read-only, strict view of (a part of) the configuration for templates.

    ``{{ centre.name }}`` returns the value; a key that is absent or empty raises
    ConfigError naming ``centre.name`` and the configuration file.  It has no public
    methods, so a configuration key can never be shadowed by one (``request.items``)."""

    __slots__ = ("_cfg", "_data", "_key")

    def __init__(self, cfg: Any, key: str = "", data: Any = None) -> None:
        self._cfg = cfg
        self._key = key
        self._data = cfg.get(key) if data is None and key else (cfg.data if data is None else data)

    def _sub(self, name: str) -> str:
        return f"{self._key}.{toml_key(name)}" if self._key else toml_key(name)

    def _wrap(self, v: Any, key: str) -> Any:
        if isinstance(v, dict):
            return ConfigView(self._cfg, key, v)
        if isinstance(v, list):
            return [self._wrap(x, f"{key}[{i}]") for i, x in enumerate(v)]
        return v

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: Any) -> Any:
        key = self._sub(str(name))
        if not isinstance(self._data, dict) or name not in self._data or _empty(self._data[name]):
            raise _missing(self._cfg, key)
        return self._wrap(self._data[name], key)

    def __contains__(self, name: object) -> bool:
        return isinstance(self._data, dict) and name in self._data and not _empty(self._data[name])

    def __iter__(self):  # noqa: ANN204 - iterate keys like a dict
        return iter(self._data if isinstance(self._data, dict) else ())

    def __len__(self) -> int:
        return len(self._data) if isinstance(self._data, dict | list) else 0

    def __bool__(self) -> bool:
        return not _empty(self._data)

    def __str__(self) -> str:
        raise _missing(self._cfg, self._key, hint=f"「{self._key}」是一个表，模板应取其中的某一项")

    def __repr__(self) -> str:
        return f"ConfigView({self._key!r})"


# -- the environment -----------------------------------------------------------------------
def _fmt_date(lang: str):
    def f(d: dt.date | dt.datetime | None) -> str:
        if d is None:
            return ""
        if lang == "zh":
            return f"{d.month}月{d.day}日"
        return f"{d.day} {d.strftime('%b')} {d.year}"
    return f


def _fmt_datetime(lang: str):
    def f(d: dt.datetime | None) -> str:
        if d is None:
            return ""
        if lang == "zh":
            return f"{d.month}月{d.day}日 {d:%H:%M}"
        return f"{d.day} {d.strftime('%b')} {d:%H:%M}"
    return f


def _weekday(lang: str):
    zh = "一二三四五六日"

    def f(d: dt.date) -> str:
        return f"周{zh[d.weekday()]}" if lang == "zh" else d.strftime("%a")
    return f


def _number(x: Any) -> str:
    """12000 -> '12,000' (integers only; anything else as written)."""
    if isinstance(x, int) and not isinstance(x, bool):
        return f"{x:,}"
    if isinstance(x, float | Decimal) and x == int(x):
        return f"{int(x):,}"
    return str(x)


def compile_settings(e: Any) -> tuple[Any, ...]:
    """What a template's parse and compilation depend on, besides its source: the
    environment's class (the sandbox), autoescape, whitespace control, delimiters and
    extensions.  A key for anything kept per template source."""
    return (type(e).__module__, type(e).__qualname__, repr(e.autoescape), e.trim_blocks, e.lstrip_blocks,
            e.keep_trailing_newline, e.newline_sequence, e.optimized, e.is_async, e.block_start_string,
            e.block_end_string, e.variable_start_string, e.variable_end_string,
            e.comment_start_string, e.comment_end_string, e.line_statement_prefix,
            e.line_comment_prefix, tuple(sorted(e.extensions)))


@functools.cache
def _compiled() -> Any:
    """Jinja's compiled templates kept in memory for every environment (a run renders
    each template again in a new environment: compiling was most of the time).  A
    template is found by its name, its file and the settings it was compiled under (the
    sandbox, autoescape of an overlay …), and used only while its source is the same
    (Jinja compares the source's checksum)."""
    from jinja2.bccache import Bucket, BytecodeCache

    class _Memory(BytecodeCache):
        def __init__(self) -> None:
            self.data: dict[str, bytes] = {}

        def get_bucket(self, environment: Any, name: str, filename: str | None, source: str) -> Bucket:
            e = environment
            bucket = Bucket(e, f"{self.get_cache_key(name, filename)}:{compile_settings(e)!r}",
                            self.get_source_checksum(source))
            self.load_bytecode(bucket)
            return bucket

        def load_bytecode(self, bucket: Bucket) -> None:
            raw = self.data.get(bucket.key)
            if raw is not None:
                bucket.bytecode_from_string(raw)

        def dump_bytecode(self, bucket: Bucket) -> None:
            self.data[bucket.key] = bucket.bytecode_to_string()

    return _Memory()  # one per process (functools.cache)


def make_environment(lang: str = "zh", user_dir: Path | None = None):
    """The strict Jinja environment: user folder first, then the packaged templates,
    and ``default:`` for the packaged ones.  Sandboxed when a user folder is given."""
    from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader, StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    packaged = FileSystemLoader(str(packaged_templates_dir()), encoding="utf-8")
    loaders: list[Any] = [PrefixLoader({"default": packaged}, delimiter=":")]
    if user_dir is not None:
        user_dir = Path(user_dir).expanduser()
        if not user_dir.is_dir():
            raise RenderError(f"模板文件夹 {user_dir} 不存在", hint="检查 --templates 或配置 render.templates")
        loaders.append(FileSystemLoader(str(user_dir), encoding="utf-8"))
    loaders.append(packaged)
    cls = SandboxedEnvironment if user_dir is not None else Environment
    env = cls(loader=ChoiceLoader(loaders), undefined=StrictUndefined, autoescape=False,
              trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
              bytecode_cache=_compiled())
    env.filters.update({
        "money": fmt_money, "wan": fmt_wan, "pct": fmt_pct, "date": _fmt_date(lang),
        "datetime": _fmt_datetime(lang), "weekday": _weekday(lang), "number": _number,
    })
    env.globals["lang"] = lang
    return env


def _template_location(exc: BaseException) -> tuple[str | None, int | None]:
    """The template file and line an exception was raised at (Jinja rewrites the
    traceback so template frames carry the template's file name and line)."""
    found: tuple[str | None, int | None] = (None, None)
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        fn = frame.f_code.co_filename
        if fn.endswith(".j2") or fn.endswith(".jinja") or "<template>" in fn:
            found = (fn, lineno)
    return found


def _short(path: str | None) -> str:
    if not path:
        return "模板"
    p = Path(path)
    try:
        return str(p.relative_to(packaged_templates_dir())) + "（内置）"
    except ValueError:
        return str(p)


def render_template(env: Any, name: str, context: dict[str, Any]) -> str:
    """Render one template; every failure becomes a RenderError/ConfigError that names
    the template, the line and what is missing."""
    from jinja2 import TemplateNotFound, TemplateSyntaxError, UndefinedError
    from jinja2.exceptions import SecurityError

    try:
        return env.get_template(name).render(context)
    except ConfigError as exc:
        fn, line = _template_location(exc)
        where = f"{_short(fn)} 第 {line} 行" if fn else name
        exc.hint = (exc.hint or "") + f"\n（{where} 需要这一项）"
        raise
    except TierctlError:
        raise
    except TemplateNotFound as exc:
        raise RenderError(f"找不到模板 {exc.name}",
                          hint="用 tierctl templates list 查看有哪些模板；覆盖内置模板时文件名要相同（如 zh/sms.txt.j2）") from exc
    except TemplateSyntaxError as exc:
        raise RenderError(f"模板语法错误：{_short(exc.filename) if exc.filename else exc.name} 第 {exc.lineno} 行："
                          f"{exc.message}") from exc
    except SecurityError as exc:
        fn, line = _template_location(exc)
        raise RenderError(f"模板 {_short(fn) if fn else name}{f' 第 {line} 行' if line else ''} 试图访问不允许的内容："
                          f"{exc}", hint="用户模板在沙箱中运行，只能使用模板变量，不能访问 Python 内部属性") from exc
    except UndefinedError as exc:
        fn, line = _template_location(exc)
        raise RenderError(f"模板 {_short(fn) if fn else name}{f' 第 {line} 行' if line else ''} 用到了没有的变量："
                          f"{exc.message}", hint="用 tierctl templates list 查看每个模板能用的变量") from exc
    except Exception as exc:  # a template can raise anything (division by zero, bad filter argument)
        fn, line = _template_location(exc)
        raise RenderError(f"模板 {_short(fn) if fn else name}{f' 第 {line} 行' if line else ''} 渲染失败："
                          f"{type(exc).__name__}: {exc}") from exc



def _text(s: str) -> str:
    """Tidy a rendered document: no trailing spaces, at most one blank line in a row,
    exactly one final newline."""
    lines = [ln.rstrip() for ln in s.replace("\r\n", "\n").split("\n")]
    out = "\n".join(lines)
    out = re.sub(r"\n{3,}", "\n\n", out).strip("\n")
    return out + "\n"

