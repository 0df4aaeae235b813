"""Turn a raw export into a typed frame with canonical column names.

The columns a job reads are declared in its model file (``[columns.<name>]`` with
``kind``, ``aliases`` and ``required``); a user mapping file (``--mapping``) names any
header the aliases do not know.  Every bad value is reported with the Excel row number,
the header as the file spells it, the value and what was expected.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tierctl.errors import InputError, ModelError, Problem
from tierctl.io.readers import RawSheet, read_sheet
from tierctl.io.rowchecks import MAX_PROBLEMS, duplicate_problems, footer_rows  # noqa: F401 - duplicate_problems: imported from here
from tierctl.io.values import (  # noqa: F401 - the typing of one column; these names were imported from here
    FALSE_WORDS,
    TRUE_WORDS,
    _arrow_text,
    _parse_one_date,
    convert,
    is_empty_text,
    parse_dates,
    parse_numbers,
)
from tierctl.kernels.parallel_map import thread_map
from tierctl.models.loader import Section, load_toml

KINDS = ("text", "int", "number", "date", "bool")
PARALLEL_ROWS = 50_000  # below this the columns are typed one after another (threads cost more)



@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: str
    aliases: tuple[str, ...]
    required: bool = False
    unique: bool = False
    min: float | None = None
    max: float | None = None
    label: str = ""

    @property
    def display(self) -> str:
        return self.label or (self.aliases[0] if self.aliases else self.name)


SHARED_COLUMNS = Path(__file__).resolve().parent.parent / "data" / "columns.toml"


@dataclass(frozen=True)
class SharedColumns:
    """What every job's ingest shares (``tierctl/data/columns.toml``): the identity
    headers (customer id, name, phone, VIN, plate) and the footer and notes rows to skip."""

    path: Path
    identity: dict[str, tuple[str, ...]]
    summary: tuple[str, ...]
    count_units: tuple[str, ...]
    notes: tuple[str, ...]

    @functools.cached_property
    def summary_re(self) -> str:
        words = "|".join(r"\s*".join(re.escape(ch) for ch in w) for w in sorted(self.summary, key=len, reverse=True))
        units = "|".join(re.escape(u) for u in sorted(self.count_units, key=len, reverse=True))
        alts = [rf"(?:{words})\s*(?:[:：(（\d].*)?"]
        if units:
            alts.append(rf"共\s*\d+\s*(?:{units})\s*")
        return rf"(?is)^\s*(?:{'|'.join(alts)})$"

    @functools.cached_property
    def notes_re(self) -> re.Pattern[str]:
        # a word of two or more Chinese characters starts a note as it is ("说明本表…"); a
        # single character or a Latin word needs a colon, a number or a space after it ("注1：")
        long = [w for w in self.notes if len(w) >= 2 and not w.isascii()]
        short = [w for w in self.notes if w not in long]
        alts = []
        if long:
            alts.append("(?:" + "|".join(map(re.escape, sorted(long, key=len, reverse=True))) + ")")
        if short:
            alts.append("(?:" + "|".join(map(re.escape, sorted(short, key=len, reverse=True)))
                        + r")(?:\s*\d*\s*[:：]|\s|$)")
        return re.compile(r"(?i)^\s*(?:" + "|".join(alts) + ")") if alts else re.compile(r"(?!)")


@functools.lru_cache(maxsize=4)
def shared_columns(path: Path | None = None) -> SharedColumns:
    """Load and check the shared table (packaged ``tierctl/data/columns.toml``)."""
    p = path or SHARED_COLUMNS
    sec = Section(load_toml(p), p)
    ident = sec.section("identity")
    identity = {name: tuple(ident.section(name).list("aliases", of=str)) for name in ident.keys()}
    foot = sec.section("footer")
    return SharedColumns(path=p, identity=identity, summary=tuple(foot.list("summary", of=str)),
                         count_units=tuple(foot.list("count_units", [], of=str)),
                         notes=tuple(foot.list("notes", of=str)))


@dataclass
class ColumnSet:
    """The columns a job reads.  An identity column (``customer_id``, ``name``, ``phone``,
    ``vin``, ``plate``) also knows every header of the shared table, after the job's own
    aliases — so an export one job reads, every job reads; a header the model gives to
    another of its columns stays with that column."""

    specs: dict[str, ColumnSpec]
    require_one_of: list[tuple[str, ...]] = field(default_factory=list)

    def __post_init__(self) -> None:
        table = shared_columns().identity
        if not any(name in table for name in self.specs):
            return
        used = {normalise_header(a) for spec in self.specs.values() for a in spec.aliases}
        specs = {}
        for name, spec in self.specs.items():
            extra = []
            for a in table.get(name, ()):
                na = normalise_header(a)
                if na not in used:
                    used.add(na)
                    extra.append(a)
            specs[name] = replace(spec, aliases=(*spec.aliases, *extra)) if extra else spec
        self.specs = specs

    @classmethod
    def from_model(cls, model: Section) -> ColumnSet:
        cols = model.section("columns")
        specs: dict[str, ColumnSpec] = {}
        for name in cols.keys():
            s = cols.section(name)
            aliases = tuple(s.list("aliases", [], of=str))
            specs[name] = ColumnSpec(
                name=name,
                kind=s.choice("kind", KINDS, "text"),
                aliases=(name, *aliases) if name not in aliases else aliases,
                required=s.bool("required", False),
                unique=s.bool("unique", False),
                min=s.number("min", None),
                max=s.number("max", None),
                label=s.str("label", aliases[0] if aliases else name),
            )
        groups = []
        inp = model.section("input", {})
        for i, g in enumerate(inp.list("require_one_of", []) if inp else []):
            if not isinstance(g, list) or not all(isinstance(x, str) and x in specs for x in g):
                raise ModelError("应为已声明列名的列表", path=model.path, key=f"input.require_one_of[{i}]")
            groups.append(tuple(g))
        return cls(specs, groups)

    def header_score(self, cells: list[str]) -> int:
        known = self._alias_index()
        return sum(1 for c in cells if normalise_header(c) in known)

    def _alias_index(self) -> dict[str, str]:
        # keyed on the names and aliases themselves, so replacing or changing specs is seen
        return _alias_index_of(tuple((spec.name, spec.aliases) for spec in self.specs.values()))


@functools.lru_cache(maxsize=256)
def _alias_index_of(specs: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, str]:
    """Each folded alias -> its column (the first column that names it); read only."""
    idx: dict[str, str] = {}
    for name, aliases in specs:
        for a in aliases:
            idx.setdefault(normalise_header(a), name)
    return idx


@dataclass
class Export:
    """A typed export: canonical columns plus ``_row`` (the Excel row number)."""

    path: Path
    frame: pd.DataFrame
    headers: dict[str, str]  # canonical name -> header as in the file
    sheet: str | None
    encoding: str | None
    warnings: list[str]
    ignored_columns: list[str]
    # rows read but not records: 合计/小计 rows and the notes under the data (Excel rows)
    skipped: list[Problem] = field(default_factory=list)

    def header(self, name: str) -> str:
        return self.headers.get(name, name)


_PAREN = re.compile(r"[（(【\[].*?[)）】\]]$")


def fold_header(text: str) -> str:
    """Fold full-width forms, case, spaces and a BOM (but keep a unit in brackets)."""
    return _fold(str(text))


def normalise_header(text: str) -> str:
    """Fold the ways one header is spelt: full-width forms, case, spaces, a trailing
    unit in brackets ("等待天数（天）"), BOM."""
    return _normalise(str(text))


# pure str -> str, called millions of times on the same few hundred headers: memoised on
# the str value (the str() above keeps 1, 1.0 and True apart)
@functools.lru_cache(maxsize=8192)
def _fold(text: str) -> str:
    t = unicodedata.normalize("NFKC", text).replace("\ufeff", "").strip().lower()
    return re.sub(r"\s+", "", t)


@functools.lru_cache(maxsize=8192)
def _normalise(text: str) -> str:
    t = _fold(text)
    stripped = _PAREN.sub("", t)
    return stripped or t


def load_mapping(path: Path | str | None) -> dict[str, list[str]]:
    """A mapping file: ``[columns]`` canonical name = header in the export (or a list)."""
    if path is None:
        return {}
    p = Path(path)
    sec = Section(load_toml(p), p)
    cols = sec.section("columns", None)
    if cols is None:
        raise ModelError("映射文件缺少 [columns] 表", path=p,
                         hint='例如：\n[columns]\ncustomer_id = "会员卡号"')
    out: dict[str, list[str]] = {}
    for k, v in cols.items():
        if isinstance(v, str):
            out[k] = [v]
        elif isinstance(v, list) and all(isinstance(x, str) for x in v):
            out[k] = list(v)
        else:
            raise ModelError("应为表头文字或文字列表", path=p, key=f"columns.{k}")
    return out


def read_export(
    path: Path | str,
    columns: ColumnSet,
    *,
    sheet: str | int | None = None,
    encoding: str | None = None,
    mapping: dict[str, list[str]] | None = None,
    mapping_path: Path | str | None = None,
    native: bool = False,
    unused: frozenset[str] = frozenset(),
) -> Export:
    """Read, map and type an export.  Raises :class:`InputError` listing every bad cell.

    ``native``: the CSV reader may type plain dates and numbers itself (when every cell
    is one; otherwise they are typed here as usual, with the same result).  ``unused``:
    columns the job never reads — still found, still counted when telling a blank row,
    but read as codes, not typed and not in ``Export.frame``."""
    mapping = mapping or {}

    def select(headers: list[str]) -> list[str] | None:
        # only the columns the job reads (a large CSV is then read without the rest);
        # anything unusual → read everything and let type_export report it
        try:
            chosen = choose_columns(headers, columns, mapping, mapping_path, path)
        except (InputError, ModelError):
            return None
        missing = [s for s in columns.specs.values() if s.required and s.name not in chosen]
        if not chosen or missing:
            return None
        # the file's first column too: a 合计 or 备注 row says so there
        return list(dict.fromkeys([*chosen.values(), headers[0]]))

    def native_kinds(headers: list[str]) -> dict[str, str]:
        try:
            chosen = choose_columns(headers, columns, mapping, mapping_path, path)
        except (InputError, ModelError):
            return {}
        specs = columns.specs
        return {h: "category" if c in unused else specs[c].kind for c, h in chosen.items()
                if c in unused or (native and specs[c].kind == "date")
                or (native and specs[c].kind == "number" and specs[c].min is None and specs[c].max is None
                    and not specs[c].unique)}

    from tierctl.kernels.memory import give_back

    raw = read_sheet(path, header_score=columns.header_score, sheet=sheet, encoding=encoding, select=select,
                     native=native_kinds if native or unused else None)
    export = type_export(raw, columns, mapping=mapping, mapping_path=mapping_path, unused=unused)
    del raw
    give_back()  # the reader's buffers and the typing's temporaries
    return export


def choose_columns(headers: list[str], columns: ColumnSet, mapping: dict[str, list[str]],
                   mapping_path: Path | str | None, path: Path | str | None) -> dict[str, str]:
    """Canonical name → the file's header: the user's mapping first, then the aliases in
    the order the model lists them."""
    norm = {h: normalise_header(h) for h in headers}
    chosen: dict[str, str] = {}
    # 1. the user's mapping wins
    for canon, wanted in mapping.items():
        if canon not in columns.specs:
            known = "、".join(columns.specs)
            raise ModelError(f"未知的字段名「{canon}」", path=mapping_path, key=f"columns.{canon}",
                             hint=f"可映射的字段：{known}")
        hit = next((h for w in wanted for h in headers if h == w or norm[h] == normalise_header(w)), None)
        if hit is None:
            raise InputError(f"映射文件把「{canon}」指向表头「{'/'.join(wanted)}」，但文件里没有这一列",
                             path=path, hint=f"文件中的表头：{'、'.join(headers)}")
        chosen[canon] = hit
    # 2. aliases, in the order the model lists them: first a header spelt as an alias
    # (width, case and spaces aside), then one that differs only by a unit in brackets —
    # so "等待时长" is the T score column and "等待时长（天）" the wait in days
    taken = set(chosen.values())
    folded = {h: fold_header(h) for h in headers}
    for fold, keys in ((fold_header, folded), (normalise_header, norm)):
        for spec in columns.specs.values():
            if spec.name in chosen:
                continue
            for alias in spec.aliases:
                na = fold(alias)
                hits = [h for h in headers if keys[h] == na and h not in taken]
                if hits:
                    chosen[spec.name] = hits[0]
                    taken.add(hits[0])
                    break
    return chosen


def contested_headers(chosen: dict[str, str], columns: ColumnSet) -> list[tuple[str, str]]:
    """(text column, number column) pairs where the header chosen for a text column is
    also spelt as an alias of a number column that took no header ("情绪": the mood label,
    or the E score); :func:`type_export` decides by the values."""
    out = []
    for canon, header in chosen.items():
        if columns.specs[canon].kind != "text":
            continue
        fh = fold_header(header)
        for spec in columns.specs.values():
            if spec.kind in ("int", "number") and spec.name not in chosen \
                    and any(fold_header(a) == fh for a in spec.aliases):
                out.append((canon, spec.name))
                break
    return out


def _all_numbers(col: pd.Series) -> bool:
    """Whether every non-empty cell of a text column reads as a number."""
    stripped = col.astype("str").str.strip()
    empty = (stripped == "") | stripped.isna()
    if empty.all():
        return False
    vals, errs = parse_numbers(stripped, empty, ColumnSpec("_", "number", ()))
    return not errs and not (vals.isna() & ~empty).any()


def type_export(raw: RawSheet, columns: ColumnSet, *, mapping: dict[str, list[str]],
                mapping_path: Path | str | None = None, unused: frozenset[str] = frozenset()) -> Export:
    path = raw.path
    frame = raw.frame
    # every header of the file (the frame may hold only the columns the job reads)
    headers = list(raw.all_headers) if raw.all_headers is not None else list(frame.columns)
    chosen = choose_columns(headers, columns, mapping, mapping_path, path)
    for text_col, number_col in contested_headers(chosen, columns):
        if text_col not in mapping and _all_numbers(frame[chosen[text_col]]):
            chosen[number_col] = chosen.pop(text_col)
    problems: list[str] = []
    for spec in columns.specs.values():
        if spec.required and spec.name not in chosen:
            problems.append(f"缺少必需的列「{spec.display}」（可用表头：{'、'.join(spec.aliases[:6])}）")
    for group in columns.require_one_of:
        if not any(g in chosen for g in group):
            names = " 或 ".join(f"「{columns.specs[g].display}」" for g in group)
            problems.append(f"至少需要 {names} 其中一列")
    if problems:
        raise InputError("缺少必需的列：\n  - " + "\n  - ".join(problems), path=path,
                         hint=f"文件中的表头：{'、'.join(headers)}。若表头名称不同，用 --mapping 指定映射文件")

    n = len(frame)
    rows = np.arange(raw.first_row, raw.first_row + n, dtype=np.int64)
    # drop records with nothing in any column the job reads (Excel's empty rows, the
    # ",,,," lines it leaves at the end of a CSV)
    if n:
        blank = np.ones(n, dtype=bool)
        for h in (list(chosen.values()) or headers):
            col = frame[h]  # (a column the reader typed: missing = empty)
            blank &= is_empty_text(col) if _textual(col) else col.isna().to_numpy(dtype=bool, na_value=True)
            if not blank.any():
                break
        if blank.any():
            frame = frame.loc[~blank]
            rows = rows[~blank]
    skip, skipped, notes = footer_rows(frame, rows, shared_columns())
    if skip.any():
        frame = frame.loc[~skip]
        rows = rows[~skip]
    frame = frame.reset_index(drop=True)
    out: dict[str, pd.Series] = {}
    bad: list[Problem] = []
    total_bad = 0
    index = pd.RangeIndex(len(frame))

    def typed_column(item: tuple[str, str]) -> tuple[pd.Series, list[tuple[int, Any, str]]]:
        col = frame[item[1]]
        if _typed_as(col, columns.specs[item[0]].kind):  # typed by the reader, every cell good
            return col, []
        if not pd.api.types.is_string_dtype(col.dtype) or col.dtype == object:
            col = col.astype("str")
        return convert(col, columns.specs[item[0]])

    # the columns are typed side by side: the Arrow steps (trim, casts) let go of Python's
    # lock, so a second core halves the time on a large export; results keep column order
    items = [(c, h) for c, h in chosen.items() if c not in unused]
    if len(frame) >= PARALLEL_ROWS and len(items) > 1:
        converted = thread_map(typed_column, items)
    else:
        converted = [typed_column(it) for it in items]
    for (canon, header), (typed, errs) in zip(items, converted, strict=True):
        total_bad += len(errs)
        for i, val, msg in errs[: max(0, MAX_PROBLEMS - len(bad))]:
            bad.append(Problem(int(rows[i]), header, val, msg))
        out[canon] = typed
    if total_bad:
        raise InputError("有无法识别的值", path=path, problems=bad, total=total_bad,
                         hint="在 Excel 中按行号找到这些单元格并改正后重新导出，或清空它们")
    typed_frame = pd.DataFrame(out, index=index)
    typed_frame["_row"] = rows
    for spec in columns.specs.values():
        if spec.unique and spec.name in typed_frame:
            dup_problems, ndup = duplicate_problems(typed_frame, spec.name, chosen[spec.name])
            if ndup:
                raise InputError(f"「{chosen[spec.name]}」有重复值（同一客户出现多次，不会自动合并）",
                                 path=path, problems=dup_problems, total=ndup,
                                 hint="删除或合并重复的行后重新运行")
    ignored = [h for h in headers if h not in set(chosen.values())]
    return Export(path=path, frame=typed_frame, headers=chosen, sheet=raw.sheet, encoding=raw.encoding,
                  warnings=[*raw.warnings, *notes], ignored_columns=ignored, skipped=skipped)


def _textual(col: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(col.dtype) or isinstance(col.dtype, pd.CategoricalDtype)


def _typed_as(col: pd.Series, kind: str) -> bool:
    """Whether the reader typed ``col`` as ``kind`` already (see ``read_sheet(native=)``)."""
    if kind == "date":
        return col.dtype == "datetime64[ns]"
    return kind == "number" and isinstance(col.dtype, pd.Float64Dtype)
