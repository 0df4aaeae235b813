"""Per-customer JSON payloads, encoded and decoded column-wise.

A snapshot of a million customers must store in a few seconds, so the payload of every
row is built with vectorised Arrow string kernels (one pass per column) instead of a
``json.dumps`` per row, and read back with Arrow's JSON reader.

Each snapshot records its payload *layout*: a list of ``{"name", "type", "dtype"}`` (and
``"dict"``), so a read gives back the same pandas types — text stays text, an id with a
leading zero never becomes a number.  In large snapshots a text column with few distinct
values (reasons, tiers, owners) is stored as a small integer code into the layout's
``dict`` list: the rows shrink by half and store twice as fast.  Small snapshots keep
plain text, readable with any SQLite browser.
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

# type tags recorded per payload column
STR, INT, FLOAT, BOOL, DATE, DATETIME, JSON = "str", "int", "float", "bool", "date", "datetime", "json"

DICT_MIN_ROWS = 10_000  # below this, never dictionary-code (keep the JSON readable)
_SPECIAL = '[\\\\"\\x00-\\x1f\\x7f]'


def column_type(s: pd.Series) -> str:
    """The payload type tag of a column."""
    dt = s.dtype
    if pd.api.types.is_bool_dtype(dt):
        return BOOL
    if pd.api.types.is_integer_dtype(dt):
        return INT
    if pd.api.types.is_float_dtype(dt):
        return FLOAT
    if isinstance(dt, pd.DatetimeTZDtype):
        return DATETIME
    if pd.api.types.is_datetime64_dtype(dt):
        return DATE if _all_midnight(s) else DATETIME
    if pd.api.types.is_string_dtype(dt) and dt != np.dtype(object):
        return STR
    if isinstance(dt, pd.CategoricalDtype):
        cats = dt.categories
        return STR if pd.api.types.is_string_dtype(cats.dtype) or (cats.dtype == object and all(
            isinstance(x, str) for x in cats)) else JSON
    vals = s.dropna()
    if not len(vals) or bool(vals.map(type).eq(str).all()):
        return STR
    return JSON


def _all_midnight(s: pd.Series) -> bool:
    v = s.dropna()
    return not len(v) or bool((v.dt.normalize() == v).all())


def _quote_each(arr: pa.Array) -> pa.Array:
    return pa.array([None if v is None else json.dumps(v, ensure_ascii=False) for v in arr.to_pylist()],
                    type=pa.string())


def _quote(arr: pa.Array) -> pa.Array:
    """JSON string literals for a text array (nulls stay null): one kernel wraps the
    quotes; only the rare rows holding a quote, backslash or control character go
    through the json module."""
    if len(arr) == 0:
        return pa.array([], type=pa.string())
    special = pc.fill_null(pc.match_substring_regex(arr, _SPECIAL), False)
    quoted = pc.binary_join_element_wise('"', arr, '"', "")
    if pc.any(special).as_py():
        idx = np.flatnonzero(special.to_numpy(zero_copy_only=False))
        fixed = _quote_each(pc.take(arr, pa.array(idx))).to_pylist()
        vals = quoted.to_pylist()
        for i, v in zip(idx.tolist(), fixed, strict=True):
            vals[i] = v
        quoted = pa.array(vals, type=pa.string())
    return quoted


def _text_array(s: pd.Series) -> pa.Array:
    if isinstance(s.dtype, pd.CategoricalDtype):
        arr = pa.array(s, from_pandas=True)  # dictionary array: decode in C
        return pc.cast(arr, pa.string()) if not pa.types.is_string(arr.type) else arr
    if pd.api.types.is_string_dtype(s.dtype) and s.dtype != object:
        arr = pa.array(s, type=pa.string(), from_pandas=True)
    else:
        arr = pa.array(s.astype(object).where(s.notna(), None).to_numpy(dtype=object), type=pa.string())
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _missing(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, float) and math.isnan(v)


def _iso(s: pd.Series, tag: str, dictionary: bool = False) -> tuple[pa.Array, list[str] | None]:
    """Quoted ISO text of a datetime column, formatted once per distinct value (or, with
    ``dictionary`` and few distinct values, integer codes into the ISO texts)."""
    codes, uniques = pd.factorize(s)
    texts = [(u.date().isoformat() if tag == DATE else u.isoformat()) for u in uniques]
    idx = pa.array(codes, mask=codes < 0)
    if dictionary and len(texts) * 4 <= len(s):
        return pc.cast(idx, pa.string()), texts
    lit = pa.array(['"' + t + '"' for t in texts], type=pa.string())
    return pc.take(lit, idx), None


def encode_column(s: pd.Series, tag: str, *, dictionary: bool = False) -> tuple[pa.Array, list[str] | None]:
    """Each value of ``s`` as a JSON literal (``null`` when missing); with
    ``dictionary`` a text column becomes integer codes and its distinct values."""
    n = len(s)
    codes: list[str] | None = None
    if tag == STR:
        arr = _text_array(s)
        if dictionary:
            enc = pc.dictionary_encode(arr)
            if len(enc.dictionary) * 4 <= n:
                codes = enc.dictionary.to_pylist()
                out = pc.cast(enc.indices, pa.string())
            else:
                out = _quote(arr)
        else:
            out = _quote(arr)
    elif tag == INT:
        out = pc.cast(pa.array(s, type=pa.int64(), from_pandas=True), pa.string())
    elif tag == FLOAT:
        f = s.to_numpy(dtype=float, na_value=np.nan)
        bad = ~np.isfinite(f)
        out = pc.cast(pa.array(np.where(bad, 0.0, f), type=pa.float64(), mask=bad), pa.string())
    elif tag == BOOL:
        out = pc.if_else(pa.array(s, type=pa.bool_(), from_pandas=True), "true", "false")
    elif tag in (DATE, DATETIME):
        out, codes = _iso(s, tag, dictionary)
    else:
        out = pa.array([None if _missing(v) else json.dumps(v, ensure_ascii=False, default=str)
                        for v in s.to_numpy(dtype=object)], type=pa.string())
    if isinstance(out, pa.ChunkedArray):
        out = out.combine_chunks()
    return (pc.fill_null(out, "null") if n else out), codes


_KEY_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def short_key(i: int) -> str:
    """a, b, … Z, ba, bb, …: the payload keys of a compact snapshot."""
    out = _KEY_CHARS[i % len(_KEY_CHARS)]
    i //= len(_KEY_CHARS)
    while i:
        out = _KEY_CHARS[i % len(_KEY_CHARS)] + out
        i //= len(_KEY_CHARS)
    return out


def json_key(col: dict) -> str:
    """The key a layout column is stored under in the payload objects."""
    return col.get("key", col["name"])


def encode_payloads(frame: pd.DataFrame, *, dict_min_rows: int | None = None,
                    order: np.ndarray | None = None) -> tuple[list[str], list[dict]]:
    """One JSON object text per row (in ``order`` when given), and the layout of its
    columns.  A large frame (≥ ``dict_min_rows``) is stored compactly: one-letter keys
    (the layout maps them to the column names) and dictionary codes."""
    layout: list[dict] = []
    args: list[Any] = []
    compact = len(frame) >= (DICT_MIN_ROWS if dict_min_rows is None else dict_min_rows)
    for i, name in enumerate(frame.columns):
        s = frame[name]
        tag = column_type(s)
        lit, codes = encode_column(s, tag, dictionary=compact)
        col: dict[str, Any] = {"name": str(name), "type": tag, "dtype": str(s.dtype)}
        if compact:
            col["key"] = short_key(i)
        if codes is not None:
            col["dict"] = codes
        layout.append(col)
        args.append(("{" if i == 0 else ",") + json.dumps(json_key(col), ensure_ascii=False) + ":")
        args.append(lit)
    if not args:
        return ["{}"] * len(frame), layout
    whole = pc.binary_join_element_wise(*args, "}", "")
    if order is not None:
        whole = pc.take(whole, pa.array(order))
    return whole.to_pylist(), layout


_ARROW = {STR: pa.string(), INT: pa.int64(), FLOAT: pa.float64(), BOOL: pa.bool_(),
          DATE: pa.string(), DATETIME: pa.string()}


def arrow_type(col: dict) -> pa.DataType:
    return pa.int64() if "dict" in col else _ARROW[col["type"]]


def decode_payloads(texts: list[str | None], layout: list[dict] | None) -> pd.DataFrame:
    """The payload columns of ``texts`` as a frame with the recorded dtypes.
    ``layout`` None (a snapshot written before layouts were recorded) infers them."""
    n = len(texts)
    if layout is None:
        rows = [json.loads(t) if t else {} for t in texts]
        return pd.DataFrame.from_records(rows) if rows else pd.DataFrame(index=range(0))
    out: dict[str, pd.Series] = {}
    simple = [c for c in layout if c["type"] in _ARROW]
    if n and simple:
        schema = pa.schema([(json_key(c), arrow_type(c)) for c in simple])
        data = ("\n".join(t or "{}" for t in texts)).encode("utf-8")
        table = pa_json.read_json(
            io.BytesIO(data),
            read_options=pa_json.ReadOptions(block_size=1 << 24, use_threads=True),
            parse_options=pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
        )
        for c in simple:
            out[c["name"]] = restore(table.column(json_key(c)), c)
    for c in layout:
        if c["type"] == JSON:
            out[c["name"]] = pd.Series([json.loads(t).get(json_key(c)) if t else None for t in texts], dtype=object)
        elif c["name"] not in out:
            out[c["name"]] = restore(pa.chunked_array([], type=arrow_type(c)), c)
    return pd.DataFrame({c["name"]: out[c["name"]] for c in layout}, index=range(n))


def restore(col: pa.ChunkedArray | pa.Array, c: dict) -> pd.Series:
    """One decoded payload column (Arrow) as the pandas dtype it was saved from."""
    tag, dtype = c["type"], c["dtype"]
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks else pa.array([], type=col.type)
    if "dict" in c:
        col = pc.take(pa.array(c["dict"], type=pa.string()), col)
    if tag == STR:
        if dtype == "object":
            s = pd.Series(col.to_pandas(), dtype=object)
            return s.where(s.notna(), None)
        return pd.Series(pd.array(col, dtype="str"))
    if tag == INT:
        if col.null_count == 0 and dtype in ("int64", "int32", "int16", "int8"):
            return pd.Series(col.to_numpy(zero_copy_only=False), dtype=dtype)
        return pd.Series(col.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get), dtype="Int64")
    if tag == FLOAT:
        s = pd.Series(col.to_numpy(zero_copy_only=False), dtype="float64")
        return s.astype("Float64") if dtype == "Float64" else s
    if tag == BOOL:
        if col.null_count == 0 and dtype == "bool":
            return pd.Series(col.to_numpy(zero_copy_only=False), dtype=bool)
        return pd.Series(col.to_pandas(types_mapper={pa.bool_(): pd.BooleanDtype()}.get), dtype="boolean")
    # dates and datetimes were stored as ISO text: parse each distinct text once
    codes, uniques = pd.factorize(pd.Series(pd.array(col, dtype="str")))
    try:
        parsed = pd.to_datetime(pd.Series(uniques, dtype=object), format="ISO8601")
    except (TypeError, ValueError):  # mixed offsets
        parsed = pd.to_datetime(pd.Series(uniques, dtype=object), format="ISO8601", utc=True)
    if tag == DATE and dtype.startswith("datetime64") and "," not in dtype:
        try:
            parsed = parsed.astype(dtype)
        except (TypeError, ValueError):
            pass
    if not len(parsed):  # every value missing
        return pd.Series(pd.NaT, index=range(len(codes)), dtype="datetime64[ns]")
    out = parsed.take(np.where(codes < 0, 0, codes)).reset_index(drop=True)
    out[codes < 0] = pd.NaT
    return out


def decode_values(values: list[Any], c: dict) -> pd.Series:
    """Values of one payload field fetched by SQL (``json_extract``), restored."""
    if c["type"] == JSON:  # extracted as JSON text
        return pd.Series([json.loads(v) if isinstance(v, str) else v for v in values], dtype=object)
    t = arrow_type(c)
    if t == pa.bool_():
        values = [None if v is None else bool(v) for v in values]
    elif t == pa.float64():
        values = [None if v is None else float(v) for v in values]
    return restore(pa.array(values, type=t), c)
