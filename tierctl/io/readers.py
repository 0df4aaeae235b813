"""Read a CRM export (.csv in UTF-8/BOM/GBK/GB18030, .xlsx/.xls) into a frame of text.

Everything is read as text so that ids and phone numbers keep their leading zeros;
typing happens in :mod:`tierctl.io.ingest`, where a bad value can be reported with the
row number the user sees in Excel.  The header row is found among the first rows (CRM
exports often carry a title line or two above it).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tierctl.errors import InputError, UsageError

HEADER_SCAN_ROWS = 15
# An .xlsx is a zip of XML: refuse archives that expand beyond this (zip bombs).
MAX_XLSX_UNCOMPRESSED = 1024 * 1024 * 1024
MAX_XLSX_RATIO = 200


@dataclass
class RawSheet:
    """The export as text: ``frame`` has the file's own headers; ``first_row`` is the
    Excel row number of the frame's first record (so record *i* is row ``first_row + i``)."""

    path: Path
    frame: pd.DataFrame
    header_row: int
    first_row: int
    sheet: str | None
    encoding: str | None
    warnings: list[str]
    # every header of the file, when ``frame`` holds only the columns asked for (``select``)
    all_headers: list[str] | None = None


def sniff_kind(path: Path) -> str:
    """'xlsx', 'xls' or 'text' from the file's first bytes, not its name: CRMs often
    export tab-separated text or CSV under an .xls name."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "xls"
    return "text"


def read_sheet(
    path: Path | str,
    *,
    header_score: Callable[[list[str]], int],
    sheet: str | int | None = None,
    encoding: str | None = None,
    select: Callable[[list[str]], list[str] | None] | None = None,
    native: Callable[[list[str]], dict[str, str]] | None = None,
) -> RawSheet:
    """Read ``path`` into a :class:`RawSheet`.

    ``header_score`` rates a candidate header row (how many cells are known column
    names); the best-rated row among the first rows is the header.  ``select`` (given
    the header) may name the only columns the caller will use; a large CSV is then read
    without the others (less time and memory), and ``all_headers`` lists the file's.
    ``native`` (given the header) may ask the CSV reader to type some columns itself,
    ``{header: "date" | "number" | "category"}``: see :func:`_native_types`.  Only a
    UTF-8 CSV read by Arrow honours it; a column it cannot type exactly stays text.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("文件不存在", path=path, hint="检查文件名和路径")
    if path.is_dir():
        raise InputError("这是一个文件夹，不是导出文件", path=path)
    if path.stat().st_size == 0:
        raise InputError("文件是空的（0 字节）", path=path, hint="请重新从系统导出")
    kind = sniff_kind(path)
    suffix = path.suffix.lower()
    if suffix == ".xlsx" and kind != "xlsx":
        raise InputError("文件扩展名是 .xlsx，但内容不是 Excel 工作簿", path=path,
                         hint="用 Excel 打开后另存为 .xlsx，或导出为 .csv")
    if kind in ("xlsx", "xls"):
        if encoding:
            raise UsageError("--encoding 只适用于 CSV 文件")
        return _read_excel(path, kind, header_score, sheet)
    if sheet is not None:
        raise UsageError("--sheet 只适用于 Excel 文件（.xlsx）")
    return _read_text(path, header_score, encoding, select, native)


# -- text ------------------------------------------------------------------------------
def detect_encoding(path: Path, sample_bytes: int = 1 << 20) -> str:
    """UTF-8 (with or without BOM) if the first megabyte decodes as UTF-8, else GB18030
    (a superset of GBK, which is what Chinese Excel writes)."""
    with open(path, "rb") as fh:
        sample = fh.read(sample_bytes)
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        return "gb18030"


def _read_text(path: Path, header_score: Callable[[list[str]], int], encoding: str | None,
               select: Callable[[list[str]], list[str] | None] | None = None,
               native: Callable[[list[str]], dict[str, str]] | None = None) -> RawSheet:
    warnings: list[str] = []
    enc = encoding or detect_encoding(path)
    try:
        codecs.lookup(enc)
    except LookupError as exc:
        raise UsageError(f"不认识的编码「{enc}」", hint="常用：utf-8、utf-8-sig、gbk、gb18030") from exc
    try:
        with open(path, encoding=enc, newline="") as fh:
            head_text = fh.read(256 * 1024)
    except UnicodeDecodeError as exc:
        raise InputError(f"无法按 {enc} 编码读取", path=path,
                         hint="用 --encoding 指定编码（如 gbk 或 utf-8）") from exc
    delimiter = _sniff_delimiter(head_text)
    # header detection only: a bare CR inside an unquoted cell would stop the csv module
    sniff_text = head_text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        head_rows = list(csv.reader(io.StringIO(sniff_text), delimiter=delimiter))[:HEADER_SCAN_ROWS]
    except csv.Error as exc:
        raise InputError(f"CSV 格式错误：{exc}", path=path,
                         hint="检查开头几行的引号是否成对，或在 Excel 中打开后另存为 CSV") from exc
    if not any(any(c.strip() for c in r) for r in head_rows):
        raise InputError("文件里没有任何内容", path=path, hint="请重新从系统导出")
    h = _best_header(head_rows, header_score)
    header = head_rows[h] if h < len(head_rows) else []
    kinds = _native_types(native, header, head_rows[h + 1:]) if native is not None else {}
    frame = _read_csv_arrow(path, enc, delimiter, h, header, select, kinds) if kinds else None
    if frame is None:  # (no typed column, or one could not be typed exactly: all text)
        frame = _read_csv_arrow(path, enc, delimiter, h, header, select)
    if frame is None:
        frame = _read_csv_pandas(path, enc, delimiter, h, encoding, header_score)
        if isinstance(frame, RawSheet):
            return frame
    all_headers = frame.attrs.pop("all_headers", None)  # set when only some columns were read
    frame.columns = [str(c) for c in frame.columns]
    return RawSheet(path, frame, header_row=h + 1, first_row=h + 2, sheet=None, encoding=enc,
                    warnings=warnings, all_headers=all_headers)


def _read_csv_arrow(path: Path, enc: str, delimiter: str, h: int, header: list[str],
                    select: Callable[[list[str]], list[str] | None] | None = None,
                    kinds: dict[str, str] | None = None) -> pd.DataFrame | None:
    """The fast path: pyarrow's multithreaded reader, every column as text, blank lines
    kept as empty rows so that record *i* is still Excel row ``h + 2 + i``.  Returns
    None when the file needs the slower, more forgiving reader (duplicate headers,
    ragged rows, odd encodings); that one then reports any real error."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = [c.strip() for c in header]
    if not names or len(set(names)) != len(names) or any(not c for c in names):
        return None
    arrow_enc = {"utf-8": "utf8", "utf-8-sig": "utf8"}.get(enc.lower(), None)
    if arrow_enc is None:
        return None  # let pandas decode GB18030 (pyarrow would transcode in Python anyway)
    wanted = select(names) if select is not None else None
    include = [raw for raw, name in zip(header, names, strict=True) if name in set(wanted)] if wanted else []
    types: dict[str, pa.DataType] = {c: pa.large_string() for c in header}
    for raw, name in zip(header, names, strict=True):
        if kinds and name in kinds and (not include or raw in include):
            types[raw] = {"date": pa.date32(), "number": pa.float64(),
                          "category": pa.dictionary(pa.int32(), pa.large_string())}[kinds[name]]
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(skip_rows=h, encoding=arrow_enc, block_size=1 << 24),
            # a newline can only sit inside a value if the file quotes values; the reader
            # splits the file between threads much faster when it may not
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=_has_quotes(path),
                                             ignore_empty_lines=False),
            # large_string: what pandas' Arrow-backed text keeps, so no copy when converting
            # a typed column: only an empty cell is missing ("NA", "null" … are errors)
            convert_options=pacsv.ConvertOptions(column_types=types, include_columns=include, null_values=[""],
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None
    if table.column_names != (include or header):
        return None
    if kinds:
        table = _typed_exactly(table, header[0])
        if table is None:
            return None
    frame = table.to_pandas(types_mapper={pa.large_string(): pd.StringDtype("pyarrow", na_value=float("nan"))}.get)
    for c in frame.columns:  # a number typed by the reader: what typing its text gives (NaN → NA)
        if frame[c].dtype == np.float64:
            frame[c] = frame[c].astype("Float64")
    frame.columns = [n for raw, n in zip(header, names, strict=True) if not include or raw in include]
    if include:
        frame.attrs["all_headers"] = names
    return frame


_PLAIN = {"date": re.compile(r"\s*\d{4}-\d{2}-\d{2}\s*"),
          "number": re.compile(r"\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*")}


def _native_types(native: Callable[[list[str]], dict[str, str]], header: list[str],
                  sample: list[list[str]]) -> dict[str, str]:
    """The columns the caller asked to have typed by the reader (by stripped header),
    less the file's first column (a 合计 or 备注 row says so there, as text) and any
    column whose first rows hold a value other than a plain ``2026-11-24`` date or
    plain number (then the text is typed, with each odd cell explained, by the caller)."""
    names = [c.strip() for c in header]
    asked = native(names)
    out = {}
    for i, name in enumerate(names):
        kind = asked.get(name)
        if kind is None or i == 0:
            continue
        pattern = _PLAIN.get(kind)
        cells = [r[i] for r in sample if i < len(r) and r[i] != ""]
        if pattern is None or all(pattern.fullmatch(c) for c in cells):
            out[name] = kind
    return out


def _typed_exactly(table, first: str):
    """``table`` with its date columns as ``timestamp[ns]``, or None when a typed column
    would not give exactly what typing its text gives: a date outside pandas' range
    (reported as a bad cell on the text path), an endless number, or a value in a row whose first column is
    empty (a note under the data is told by its first non-empty cell's text)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    typed = [i for i, f in enumerate(table.schema) if not pa.types.is_large_string(f.type)
             and not pa.types.is_dictionary(f.type)]
    empty_first = pc.equal(table.column(first), "") if first in table.column_names else None
    # well inside pandas' nanosecond range (1677-09-21 … 2262-04-11); beyond it, the text path
    lo, hi = pa.scalar(_day(1678, 1, 1), pa.int32()), pa.scalar(_day(2261, 12, 31), pa.int32())
    for i in typed:
        col = table.column(i)
        if empty_first is not None and pc.any(pc.and_(empty_first, pc.is_valid(col))).as_py():
            return None
        if pa.types.is_date32(col.type):
            days = col.cast(pa.int32())
            if pc.any(pc.or_(pc.less(days, lo), pc.greater(days, hi))).as_py():
                return None
            table = table.set_column(i, table.field(i).name, col.cast(pa.timestamp("ns")))
        elif pa.types.is_floating(col.type) and pc.any(pc.is_inf(col)).as_py():
            return None  # "inf": an amount is never endless, the text path names the cell
    return table


def _day(y: int, m: int, d: int) -> int:
    return (dt.date(y, m, d) - dt.date(1970, 1, 1)).days


def _has_quotes(path: Path) -> bool:
    """Whether the file contains a double quote anywhere (a memchr over a memory map)."""
    import mmap

    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        return mm.find(b'"') >= 0


def _read_csv_pandas(path: Path, enc: str, delimiter: str, h: int, encoding: str | None,
                     header_score: Callable[[list[str]], int]) -> pd.DataFrame | RawSheet:
    try:
        return pd.read_csv(
            path, encoding=enc, sep=delimiter, skiprows=h, header=0, dtype=str,
            keep_default_na=False, na_filter=False, skip_blank_lines=False, engine="c",
        )
    except UnicodeDecodeError as exc:
        if encoding is None and enc.startswith("utf-8"):
            # the first megabyte was UTF-8 but a later row is not: a GBK file after all
            return _read_text(path, header_score, "gb18030")
        raise InputError(f"无法按 {enc} 编码读取（文件中有非 {enc} 字符）", path=path,
                         hint="用 --encoding 指定编码（如 gbk 或 utf-8）") from exc
    except pd.errors.ParserError as exc:
        raise InputError(f"CSV 格式错误：{exc}", path=path,
                         hint="检查该行的逗号和引号是否成对，或在 Excel 中打开后另存为 CSV") from exc
    except pd.errors.EmptyDataError as exc:
        raise InputError("文件里没有表头和数据", path=path) from exc


def _sniff_delimiter(text: str) -> str:
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    counts = {d: first.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _best_header(rows: list[list], header_score: Callable[[list[str]], int]) -> int:
    best, best_score = 0, -1
    for i, row in enumerate(rows):
        cells = [str(c).strip() for c in row if c is not None and str(c).strip()]
        if not cells:
            continue
        score = header_score(cells)
        if score > best_score:
            best, best_score = i, score
    if best_score <= 0:
        # nothing recognisable: the first non-empty row is the header
        for i, row in enumerate(rows):
            if any(str(c).strip() for c in row if c is not None):
                return i
    return best


# -- excel -----------------------------------------------------------------------------
def check_xlsx_safe(path: Path) -> None:
    """Refuse zip bombs and XML entity declarations before any parser sees the file."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            total = sum(i.file_size for i in infos)
            if total > MAX_XLSX_UNCOMPRESSED:
                raise InputError(f"工作簿解压后超过 {MAX_XLSX_UNCOMPRESSED // 2**20} MB，拒绝读取（疑似压缩炸弹）",
                                 path=path, hint="请另存为 CSV 后再试")
            for info in infos:
                if info.compress_size and info.file_size / max(info.compress_size, 1) > MAX_XLSX_RATIO \
                        and info.file_size > 50 * 2**20:
                    raise InputError(f"工作簿中的「{info.filename}」压缩比异常，拒绝读取（疑似压缩炸弹）", path=path)
                if info.filename.endswith((".xml", ".rels")):
                    with zf.open(info) as fh:
                        prolog = fh.read(4096)
                    if b"<!DOCTYPE" in prolog or b"<!ENTITY" in prolog:
                        raise InputError(f"工作簿中的「{info.filename}」含有 XML 实体声明，出于安全原因拒绝读取",
                                         path=path, hint="用 Excel 打开后重新另存为 .xlsx")
            if "xl/workbook.xml" not in {i.filename for i in infos}:
                raise InputError("文件是 zip 压缩包，但不是 Excel 工作簿", path=path,
                                 hint="请提供 .xlsx 或 .csv 导出文件")
    except zipfile.BadZipFile as exc:
        raise InputError("文件已损坏或不是有效的 .xlsx 工作簿", path=path,
                         hint="用 Excel 打开后另存为 .xlsx，或导出为 .csv") from exc


def _cell_text(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "是" if v else "否"
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e16:
            return str(int(v))
        return repr(v)
    if isinstance(v, dt.datetime):
        if v.hour == v.minute == v.second == 0:
            return v.date().isoformat()
        return v.isoformat(sep=" ")
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return str(v.days)
    return str(v)


def _read_excel(path: Path, kind: str, header_score: Callable[[list[str]], int],
                sheet: str | int | None) -> RawSheet:
    import python_calamine as pc  # heavy-ish native module: import only when needed

    if kind == "xlsx":
        check_xlsx_safe(path)
    try:
        wb = pc.CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises its own error types
        raise InputError(f"无法读取工作簿：{exc}", path=path,
                         hint="用 Excel 打开后另存为 .xlsx，或导出为 .csv") from exc
    names = list(wb.sheet_names)
    if not names:
        raise InputError("工作簿里没有工作表", path=path)
    warnings: list[str] = []
    if sheet is None:
        name = _best_sheet(wb, names, header_score)
        if name != names[0]:
            warnings.append(f"第一个工作表「{names[0]}」没有可识别的表头，已改用工作表「{name}」（可用 --sheet 指定）")
    elif isinstance(sheet, int) or (isinstance(sheet, str) and sheet.isdigit() and sheet not in names):
        idx = int(sheet)
        # users count sheets from 1 as Excel shows them
        if not 1 <= idx <= len(names):
            raise UsageError(f"工作簿只有 {len(names)} 个工作表，没有第 {idx} 个",
                             hint=f"工作表：{', '.join(names)}")
        name = names[idx - 1]
    else:
        if sheet not in names:
            raise UsageError(f"{path}: 没有名为「{sheet}」的工作表", hint=f"工作表：{', '.join(names)}")
        name = str(sheet)
    try:
        rows = wb.get_sheet_by_name(name).to_python(skip_empty_area=False)
    except Exception as exc:
        raise InputError(f"无法读取工作表「{name}」：{exc}", path=path) from exc
    if not rows or not any(any(str(c).strip() for c in r) for r in rows):
        raise InputError(f"工作表「{name}」是空的", path=path,
                         hint="用 --sheet 选择有数据的工作表" if len(names) > 1 else "请重新从系统导出")
    head = [[_cell_text(c) for c in r] for r in rows[:HEADER_SCAN_ROWS]]
    h = _best_header(head, header_score)
    header = [c.strip() for c in head[h]]
    # blank header cells beyond the data are dropped; blank ones inside get a placeholder
    width = max((i + 1 for i, c in enumerate(header) if c), default=0)
    header = [c or f"(第{i + 1}列)" for i, c in enumerate(header[:width])]
    body = rows[h + 1:]
    cols = list(zip(*[(list(r) + [""] * width)[:width] for r in body], strict=False)) if body else [()] * width
    data = {}
    seen: dict[str, int] = {}
    for name_i, col in zip(header, cols, strict=False):
        key = name_i
        if key in seen:
            seen[key] += 1
            key = f"{name_i}.{seen[name_i]}"
        else:
            seen[key] = 0
        # most cells are already text: convert only the others
        data[key] = pd.Series([c if type(c) is str else _cell_text(c) for c in col], dtype=str) if col \
            else pd.Series([], dtype=str)
    frame = pd.DataFrame(data)
    if not len(body):
        frame = pd.DataFrame({k: pd.Series([], dtype=str) for k in header})
    return RawSheet(path, frame, header_row=h + 1, first_row=h + 2, sheet=name, encoding=None, warnings=warnings)


def _best_sheet(wb, names: list[str], header_score: Callable[[list[str]], int]) -> str:
    """The first sheet whose top rows hold a recognisable header (≥ 2 known columns);
    workbooks from CRMs often open with a cover or notes sheet."""
    import itertools

    best, best_score = names[0], -1
    for name in names:
        try:
            head = list(itertools.islice(wb.get_sheet_by_name(name).iter_rows(), HEADER_SCAN_ROWS))
        except Exception:
            continue
        score = max((header_score([_cell_text(c).strip() for c in r if _cell_text(c).strip()]) for r in head),
                    default=0)
        if score >= 2:
            return name
        if score > best_score:
            best, best_score = name, score
    return best
