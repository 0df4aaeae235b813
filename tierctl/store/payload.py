"""Column type tags, and the reader of the per-customer JSON payloads of snapshots
written before schema v4.

Every snapshot records its *layout*: a list of ``{"name", "type", "dtype"}``, so a read
gives back the same pandas types — text stays text, an id with a leading zero never
becomes a number.  Since v4 snapshots are stored column-wise
(:mod:`tierctl.store.columnar`); those of v1–v3 kept one ``snapshot_rows`` row per
customer with a JSON payload (large ones compactly: one-letter keys that the layout maps
back to names, and low-cardinality text as integer codes into the layout's ``dict``
list).  Those are still read here, with Arrow's JSON reader.
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


def _missing(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, float) and math.isnan(v)


def json_key(col: dict) -> str:
    """The key a layout column is stored under in the payload objects."""
    return col.get("key", col["name"])


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
