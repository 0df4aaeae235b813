"""Writing outputs: atomically, never over an existing file without ``force``, and
with every text cell that Excel would execute (= + - @, tab, CR) kept as text."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from tierctl.errors import RenderError

DANGEROUS_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> object:
    """A text that Excel would run as a formula, prefixed with an apostrophe."""
    if isinstance(value, str) and value.startswith(DANGEROUS_PREFIXES):
        return "'" + value
    return value


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Copy of ``frame`` with every dangerous text cell neutralised (numbers untouched).
    Categorical columns are fixed in their categories, text columns vectorised."""
    out = frame.copy(deep=False)
    for col in out.columns:
        s = out[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            cats = s.cat.categories
            if (cats.dtype == object or pd.api.types.is_string_dtype(cats.dtype)) and len(cats) \
                    and _dangerous(pd.Series(cats)).any():  # one vectorised look first
                out[col] = _neutral_categories(s, [neutralise(c) for c in cats])
        elif s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            mask = _dangerous(s)
            if mask.any():
                vals = s.to_numpy(dtype=object).copy()
                vals[mask] = np.array(["'" + str(v) for v in vals[mask]], dtype=object)
                out[col] = pd.Series(vals, index=s.index, dtype=object)
    return out


_DANGER_RE = r"^[=+\-@\t\r]"


def _neutral_categories(s: pd.Series, new: list[object]) -> pd.Series:
    """``s`` with its categories replaced by ``new``; where two of them become one text
    ("=" becomes "'=", which may be a category already) their codes are merged."""
    if len(set(new)) == len(new):
        return s.cat.rename_categories(new)
    uniq = pd.Index(new, dtype=object).unique()
    remap = uniq.get_indexer(new)
    codes = s.cat.codes.to_numpy()
    merged = np.where(codes >= 0, remap[np.maximum(codes, 0)], -1)
    return pd.Series(pd.Categorical.from_codes(merged, categories=uniq, ordered=s.cat.ordered),
                     index=s.index, name=s.name)


def _dangerous(s: pd.Series) -> np.ndarray:
    """Per cell: a text Excel would run (on Arrow text its first bytes, no copy of it)."""
    arr = getattr(s.array, "_pa_array", None)
    if arr is not None:
        import pyarrow.compute as pc

        if arr.null_count:
            return s.str.match(_DANGER_RE).to_numpy(dtype=bool, na_value=False)
        first = _starts_with_byte(arr, _DANGER_BYTES)
        return first if first is not None else \
            pc.match_substring_regex(arr, _DANGER_RE).to_numpy(zero_copy_only=False).astype(bool)
    if s.isna().all():  # (an empty column, such as owner_person without advisors)
        return np.zeros(len(s), dtype=bool)
    return s.astype("str").str.match(_DANGER_RE).to_numpy(dtype=bool, na_value=False)


_DANGER_BYTES = np.frombuffer(b"=+-@\t\r", dtype=np.uint8)  # what _DANGER_RE's first character may be


def _starts_with_byte(arr, first: np.ndarray) -> np.ndarray | None:
    """Per cell of Arrow text (a chunked array): its first byte is one of ``first`` (ASCII
    bytes, so the first character is that one; an empty cell: False) — what a regex
    ``^[…]`` gives, from the offsets and the bytes without a pass of the regex engine.
    None for a type other than (large) string."""
    import pyarrow as pa

    from tierctl.kernels.arrow_text import text_bytes

    lookup = np.zeros(256, dtype=bool)
    lookup[first] = True
    out = []
    for chunk in arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]:
        layout = text_bytes(chunk)
        if layout is None:
            return None
        start, end, data = layout
        if not data.size:
            out.append(np.zeros(len(chunk), dtype=bool))
            continue
        # an empty cell at the very end starts past the text: its neighbour's byte is read instead
        out.append(lookup[data[np.minimum(start, data.size - 1)]] & (end > start))
    return np.concatenate(out) if out else np.zeros(0, dtype=bool)


def check_writable(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise RenderError(f"{path} 已存在，未覆盖", hint="换一个输出位置，或加 --force 覆盖")


@contextlib.contextmanager
def atomic_path(path: Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one
    step, on failure it is removed, so a reader never sees a half-written file."""
    path = Path(path)
    check_writable(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600; give the output the permissions a normal file would get
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_text(path: Path, text: str, *, force: bool = False, encoding: str = "utf-8") -> Path:
    with atomic_path(path, force=force) as tmp:
        tmp.write_text(text, encoding=encoding)
    return path


def write_csv(frame: pd.DataFrame, path: Path | None, *, force: bool = False, bom: bool = True,
              order: np.ndarray | None = None) -> str | None:
    """Injection-safe CSV.  With ``bom`` (default for files) Excel opens the UTF-8
    Chinese text correctly; to stdout (``path`` None) the text is returned.  Files are
    written with pyarrow's CSV writer (a million rows in about a second).

    ``order``: the rows are written in this order (positions in ``frame``) — a file is
    written a slice of rows at a time through it, so no sorted copy of the whole table
    is ever built."""
    safe = neutralise_frame(frame)
    if path is None:
        if order is not None:
            safe = safe.take(order).reset_index(drop=True)
        return safe.to_csv(index=False, lineterminator="\n")
    import pyarrow as pa

    # categorical columns stay dictionary-encoded: the writer expands them itself,
    # which is much faster than casting them to plain strings first
    table = pa.Table.from_pandas(safe, preserve_index=False)
    del safe
    from tierctl.kernels.memory import give_back

    give_back()  # what shaping the table freed, before the writers take their buffers
    with atomic_path(path, force=force) as tmp:
        with open(tmp, "wb") as fh:
            if bom:
                fh.write("\ufeff".encode())
        _write_table_csv(table, tmp, order=order)
    return None


ORDER_CHUNK = 1 << 14  # rows taken through ``order`` and written at a time (the buffers a slice needs are kept)


def _write_table_csv(table, path: Path, parallel_from: int = 200_000, order: np.ndarray | None = None) -> None:
    """Append ``table`` (its rows in ``order`` when given) as CSV to ``path``.  pyarrow's
    writer formats on one core; a large table is cut in one part per core, each written
    by its own thread (the writer releases the GIL) to its own file, and the parts are
    then joined in order by the kernel (``copy_file_range``) — about half the time on two
    cores."""
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    from tierctl.kernels.memory import release, reusing_pool

    # the slices taken through ``order`` and the writer's text buffers are the same size
    # every time: kept for reuse, not faulted in afresh for each slice
    mem = reusing_pool()
    workers = min(os.cpu_count() or 1, 4)
    if table.num_rows < parallel_from or workers < 2:
        workers = 1
    step = -(-table.num_rows // workers) if table.num_rows else 0
    parts = [path] + [path.with_name(f"{path.name}.{i}") for i in range(1, workers)]

    def write(i: int) -> None:
        lo, hi = i * step, min((i + 1) * step, table.num_rows)
        opts = pacsv.WriteOptions(quoting_style="needed", include_header=i == 0)
        with open(parts[i], "ab" if i == 0 else "wb") as fh:
            if order is None:
                pacsv.write_csv(table.slice(lo, hi - lo), fh, write_options=opts, memory_pool=mem)
                return
            with pacsv.CSVWriter(fh, table.schema, write_options=opts, memory_pool=mem) as out:
                for a in range(lo, hi, ORDER_CHUNK):
                    out.write_table(pc.take(table, order[a:min(a + ORDER_CHUNK, hi)], memory_pool=mem))

    try:
        if workers == 1:
            write(0)
            return
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(write, range(workers)))
        with open(path, "r+b") as out:  # not "ab": copy_file_range refuses an O_APPEND target
            out.seek(0, os.SEEK_END)
            for part in parts[1:]:
                with open(part, "rb") as src:
                    _append(src, out)
    finally:
        release(mem)
        for part in parts[1:]:
            with contextlib.suppress(FileNotFoundError):
                part.unlink()


def _append(src, out) -> None:
    """Copy one open file to the end of another, in the kernel where it can."""
    import shutil

    size = os.fstat(src.fileno()).st_size
    out.flush()
    done = 0
    with contextlib.suppress(AttributeError, OSError):  # no copy_file_range here: copy in Python
        while done < size:
            n = os.copy_file_range(src.fileno(), out.fileno(), size - done)
            if n == 0:
                break
            done += n
    if done < size:
        src.seek(done)
        out.seek(0, os.SEEK_END)
        shutil.copyfileobj(src, out, 1 << 20)


# -- Excel workbooks ----------------------------------------------------------------------
def xlsx_workbook(path: Path | str, options: dict | None = None, *, lang: str = "zh"):
    """The one way tierctl opens an Excel workbook: an xlsxwriter ``Workbook`` (same
    ``options``) whose every sheet is set up for print when it closes — A4, fit to width,
    header repeated, wrapped rows with heights, charts inside, one font, never below the
    minimum printed size (rules: ``tierctl/data/print.toml``; code:
    :mod:`tierctl.io.printsetup`)."""
    from tierctl.io.printsetup import PrintWorkbook

    return PrintWorkbook(str(path), options or {}, lang=lang)


# -- Excel tables ----------------------------------------------------------------------------
EXCEL_MAX_ROWS = 1_048_576  # rows per sheet, the header included
TEXT_FORMAT = "@"


def _display_width(text: str) -> float:
    """Excel column width a text needs: CJK characters take two."""
    return sum(2.0 if ord(ch) > 0x2E80 else 1.0 for ch in text)


def _local_naive(value: object, tz) -> object:
    """An aware time (or ISO text) in ``tz`` without its zone (Excel has none); a plain
    date stays a date; anything empty is None."""
    import datetime as dt

    if value is None or value is pd.NaT or (isinstance(value, float) and value != value) or value == "":
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return dt.date.fromisoformat(text)
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            return text  # not a time after all: kept as the text it is
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None and tz is not None:
            value = value.astimezone(tz)
        return value.replace(tzinfo=None)
    return value


def write_xlsx(frame: pd.DataFrame, path: Path, columns, *, sheet: str = "Sheet1", fills: dict[str, str] | None = None,
               tz=None, force: bool = False, yes_no: tuple[str, str] = ("是", "否")) -> Path:
    """One table as an Excel workbook that opens ready to use: the header frozen and
    filtered, widths fitted to the content, ids and phone numbers as text (number
    format ``@``, so 00000104 stays 00000104), local times as Excel date-times
    (``tz``: the centre's timezone; Excel has none), numbers as numbers, and the tier
    cell filled with its colour from ``fills``.

    ``columns`` are :class:`tierctl.io.tables.Column` (key, header, type, format,
    max_width), in order; a key missing from ``frame`` gives an empty column.  Safe
    like the CSV: every text is written as text (never a formula or link), and a text
    that Excel would run once edited (= + - @, tab, CR) carries Excel's hidden quote
    prefix, as if typed with a leading apostrophe.  Written atomically; an existing
    file is kept unless ``force``."""
    n = len(frame)
    if n + 1 > EXCEL_MAX_ROWS:
        raise RenderError(f"{n:,} 行超过 Excel 一个工作表的上限（{EXCEL_MAX_ROWS - 1:,} 行数据）",
                          hint="用 -f csv 导出全部，或先筛选")
    fills = fills or {}
    values: list[list[object]] = []
    for c in columns:
        if c.key not in frame:
            values.append([None] * n)
            continue
        s = frame[c.key]
        obj = s.astype(object)
        values.append(obj.where(s.notna(), None).tolist())
    with atomic_path(path, force=force) as tmp:
        wb = xlsx_workbook(tmp, {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
                                 "strings_to_numbers": False}, lang="en" if yes_no[0].lower().startswith("y") else "zh")
        try:
            wb.set_properties({"title": sheet, "author": "tierctl"})
            base = {"valign": "top"}
            header_fmt = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True,
                                        "valign": "vcenter"})
            text_fmt = wb.add_format({**base, "num_format": TEXT_FORMAT})
            quoted_fmt = wb.add_format({**base, "num_format": TEXT_FORMAT, "quote_prefix": True})
            int_fmt = wb.add_format({**base, "num_format": "0"})
            dt_fmt = wb.add_format({**base, "num_format": "yyyy-mm-dd hh:mm"})
            date_fmt = wb.add_format({**base, "num_format": "yyyy-mm-dd"})
            tier_fmts = {v: wb.add_format({**base, "num_format": TEXT_FORMAT, "bg_color": colour, "bold": True,
                                           "align": "center"}) for v, colour in fills.items()}
            tier_plain = wb.add_format({**base, "num_format": TEXT_FORMAT, "align": "center"})
            number_fmts: dict[str | None, object] = {}
            ws = wb.add_worksheet(sheet)
            for j, c in enumerate(columns):
                sample = [v for v in values[j][:1000] if v is not None]
                shown = [_cell_text(v, c.type, yes_no) for v in sample]
                width = max([_display_width(c.header) + 2, *(_display_width(s) + 2 for s in shown)])
                ws.set_column(j, j, min(max(width, 6.0), c.max_width),
                              text_fmt if c.type in ("text", "tier") else None)
                if c.type == "number" and c.format not in number_fmts:
                    number_fmts[c.format] = wb.add_format({**base, "num_format": c.format}) if c.format else None
            ws.set_row(0, 30)
            for j, c in enumerate(columns):
                ws.write_string(0, j, c.header, header_fmt)
            ws.freeze_panes(1, 0)
            ws.autofilter(0, 0, max(n, 1), max(len(columns) - 1, 0))
            kinds = [c.type for c in columns]
            num_fmt = [number_fmts.get(c.format) for c in columns]
            fmts = {"text": text_fmt, "quoted": quoted_fmt, "int": int_fmt, "datetime": dt_fmt, "date": date_fmt,
                    "tiers": tier_fmts, "tier": tier_plain}
            for i in range(n):
                for j, kind in enumerate(kinds):
                    v = values[j][i]
                    if v is not None:
                        _write_cell(ws, i + 1, j, kind, v, fmts, num_fmt[j], tz, yes_no)
        finally:
            wb.close()
    return Path(path)


def _write_cell(ws, r: int, j: int, kind: str, v: object, fmts: dict, num_fmt, tz, yes_no: tuple[str, str]) -> None:
    """One cell of :func:`write_xlsx`, written as its column's type says."""
    import datetime as dt
    import math

    text_fmt = fmts["text"]
    if kind in ("int", "number"):
        if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
            try:
                v = float(str(v))
            except ValueError:
                ws.write_string(r, j, str(v), text_fmt)
                return
        x = float(v)  # type: ignore[arg-type]
        if not (math.isnan(x) or math.isinf(x)):
            ws.write_number(r, j, x, fmts["int"] if kind == "int" else num_fmt)
    elif kind in ("datetime", "date"):
        t = _local_naive(v, tz)
        if t is None:
            return
        if isinstance(t, str):
            ws.write_string(r, j, t, text_fmt)
        else:
            plain_date = not isinstance(t, dt.datetime)
            ws.write_datetime(r, j, t if not plain_date else dt.datetime.combine(t, dt.time()),  # type: ignore[arg-type]
                              fmts["date"] if plain_date or kind == "date" else fmts["datetime"])
    elif kind == "bool":
        ws.write_string(r, j, yes_no[0] if bool(v) else yes_no[1], text_fmt)
    else:
        text = str(v)
        if kind == "tier":
            ws.write_string(r, j, text, fmts["tiers"].get(text, fmts["tier"]))
        else:
            ws.write_string(r, j, text, fmts["quoted"] if text.startswith(DANGEROUS_PREFIXES) else text_fmt)


def _cell_text(v: object, kind: str, yes_no: tuple[str, str]) -> str:
    if kind == "datetime":
        return "2026-11-24 09:00"
    if kind == "date":
        return "2026-11-24"
    if kind == "bool":
        return yes_no[0]
    if kind == "number" and isinstance(v, float):
        return f"{v:.2f}"
    return str(v)
