"""The exported tables' columns: headers in Chinese and English, a type per column and
the tier fills, read from ``tierctl/data/tables.toml`` and checked when it loads (file
and key named in the error).  The CSV (``--headers zh|en``) and the Excel writer
(:func:`tierctl.io.writers.write_xlsx`) take their header labels from here, so both
say the same."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tierctl.models.loader import Section, load_toml

TABLES = Path(__file__).parent.parent / "data" / "tables.toml"
TYPES = ("text", "int", "number", "datetime", "date", "tier", "bool")
PLACEHOLDERS = ("@dimensions", "@indicators")
_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")


@dataclass(frozen=True)
class Column:
    """One exported column: the field, its header, how Excel should hold it."""

    key: str
    header: str
    type: str = "text"
    format: str | None = None  # Excel number format (number columns)
    max_width: float = 50


@dataclass(frozen=True)
class TableSpec:
    name: str
    sheet: dict[str, str]
    entries: tuple[dict[str, object], ...]  # placeholders kept, expanded by columns()
    fills: dict[str, str]

    def columns(self, lang: str = "zh", *, dynamic: dict[str, Sequence[dict[str, object]]] | None = None,
                formats: dict[str, str] | None = None) -> list[Column]:
        """The columns in order, headers in ``lang``.  A placeholder (``@dimensions``)
        becomes the entries ``dynamic`` gives for it (none when not given): dicts with
        ``key``, ``zh``, ``en`` and ``type`` like the file's own.  ``formats`` sets the
        number format of a column by key (the model's decimals)."""
        out: list[Column] = []
        for e in self.entries:
            key = str(e["key"])
            group = (dynamic or {}).get(key, ()) if key in PLACEHOLDERS else (e,)
            for d in group:
                k = str(d["key"])
                fmt = (formats or {}).get(k, d.get("format"))
                head = d.get("en" if lang == "en" else "zh") or d.get("zh") or k
                width = d.get("max_width", 50)
                out.append(Column(k, str(head), str(d.get("type", "text")), str(fmt) if fmt else None,
                                  float(width) if isinstance(width, int | float) else 50.0))
        return out

    def sheet_name(self, lang: str = "zh") -> str:
        return self.sheet.get(lang) or self.sheet["zh"]


@functools.cache
def _load(path: Path) -> dict[str, TableSpec]:
    root = Section(load_toml(path), path)
    fills_sec = root.section("fills", {})
    fills: dict[str, str] = {}
    if isinstance(fills_sec, Section):
        for value, _colour in fills_sec.items():
            colour = fills_sec.str(value)
            if not _COLOUR.match(colour):
                raise fills_sec.error(value, f"颜色「{colour}」应写成 #RRGGBB", hint='例如 P0 = "#F8696B"')
            fills[value] = colour
    specs: dict[str, TableSpec] = {}
    for name in root.keys():
        if name == "fills":
            continue
        sec = root.section(name)
        sheet = sec.section("sheet")
        sheet_names = {lg: sheet.str(lg) for lg in ("zh", "en")}
        for lg, text in sheet_names.items():
            if not text or len(text) > 31 or re.search(r"[\[\]:*?/\\]", text):
                raise sheet.error(lg, f"工作表名「{text}」无效：1–31 个字，不含 [ ] : * ? / \\")
        entries: list[dict[str, object]] = []
        seen: set[str] = set()
        for col in sec.sections("columns"):
            key = col.str("key")
            if key in seen:
                raise col.error("key", f"列「{key}」重复")
            seen.add(key)
            if key.startswith("@"):
                if key not in PLACEHOLDERS:
                    raise col.error("key", f"未知的占位列「{key}」", hint=f"可选：{', '.join(PLACEHOLDERS)}")
                entries.append({"key": key})
                continue
            entry: dict[str, object] = {"key": key, "zh": col.str("zh"), "en": col.str("en"),
                                        "type": col.choice("type", TYPES, "text")}
            if "format" in col:
                entry["format"] = col.str("format")
            if "max_width" in col:
                entry["max_width"] = col.number("max_width", min=4, max=255)
            entries.append(entry)
        specs[name] = TableSpec(name, sheet_names, tuple(entries), fills)
    return specs


def table_spec(name: str, path: Path | None = None) -> TableSpec:
    """The packaged spec of table ``name`` (score, churn, grade, tasks, alerts)."""
    specs = _load(Path(path or TABLES))
    if name not in specs:
        from tierctl.errors import ModelError

        raise ModelError(f"没有表格「{name}」的列定义", path=path or TABLES, key=name)
    return specs[name]


def header_map(columns: Sequence[Column]) -> dict[str, str]:
    """field → header, for renaming a frame's columns (CSV with ``--headers``)."""
    return {c.key: c.header for c in columns}
