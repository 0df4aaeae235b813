"""Kernel: JSON text of long columns built column by column with Arrow compute
(``json.loads`` of the output equals the plain ``json.dumps`` of the same records).

Property test: tests/test_rfm_engine.py::test_json_records_matches_json_dumps."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


class Verbatim:
    """Pre-rendered JSON list items, inserted as they are by :func:`json_document_bytes`."""

    def __init__(self, items: pa.Array) -> None:
        self.items = items


def json_document_bytes(doc: dict[str, Any]) -> bytes:
    """``doc`` as UTF-8 JSON: top-level keys on their own lines, list items one per line.
    Values go through the C encoder; :class:`Verbatim` lists are inserted as given."""

    def enc(v: Any) -> bytes:
        return json.dumps(v, ensure_ascii=False).encode("utf-8")

    # the pieces are joined once at the end: a long list is a view of Arrow's buffer
    # until then, so ~100 MB of customers are copied once, not at every concatenation
    parts: list[Any] = [b"{\n"]
    for i, (k, v) in enumerate(doc.items()):
        parts += [b",\n" if i else b"", b"  ", enc(k), b": "]
        if isinstance(v, Verbatim):
            parts += [b"[]"] if len(v.items) == 0 else [b"[\n    ", _join_large(v.items, ",\n    "), b"\n  ]"]
        elif isinstance(v, list) and v:
            parts += [b"[\n    ", b",\n    ".join(map(enc, v)), b"\n  ]"]
        else:
            parts.append(enc(v))
    parts.append(b"\n}\n")
    return b"".join(parts)


def json_document(doc: dict[str, Any]) -> str:
    """:func:`json_document_bytes` as text."""
    return json_document_bytes(doc).decode("utf-8")


def _join_large(items: pa.Array, sep: str) -> memoryview:
    """The items joined by ``sep``, as a view of one Arrow buffer: the separator is
    appended to every item, and the items of a string array lie one after the other."""
    sep_b = sep.encode("utf-8")
    joined = pc.binary_join_element_wise(items.cast(pa.large_string()), pa.scalar(sep, pa.large_string()),
                                         pa.scalar("", pa.large_string()))
    if isinstance(joined, pa.ChunkedArray):
        joined = joined.combine_chunks()
    _, offsets, data = joined.buffers()
    offs = np.frombuffer(offsets, dtype=np.int64)[joined.offset: joined.offset + len(joined) + 1]
    start, end = int(offs[0]), int(offs[-1]) - len(sep_b)
    return memoryview(data)[start:end] if data is not None else memoryview(b"")


def json_records(columns: dict[str, pd.Series]) -> pa.Array:
    """One JSON object text per row (``{"key": value, ...}``, the spacing of
    ``json.dumps``), built column by column with Arrow compute.  Text is escaped as JSON
    requires (quotes, backslashes, control characters); floats use the shortest text
    that reads back as the same number (``.0`` kept on whole numbers, as Python does);
    missing values are ``null``."""

    import pyarrow.compute as pc

    pieces: list[Any] = []
    for i, (key, s) in enumerate(columns.items()):
        lead = ("{" if i == 0 else ", ") + json.dumps(key, ensure_ascii=False) + ": "
        pieces += [pa.scalar(lead, pa.large_string()), _json_column(s)]
    pieces.append(pa.scalar("}", pa.large_string()))
    if not columns:
        return pa.array([], pa.large_string())
    return pc.binary_join_element_wise(*pieces, pa.scalar("", pa.large_string()))


def _json_column(s: pd.Series) -> pa.Array:

    import pyarrow.compute as pc

    null = pa.scalar("null", pa.large_string())
    dtype = s.dtype
    if pd.api.types.is_bool_dtype(dtype):
        arr = pa.array(s.to_numpy(dtype=object if s.hasnans else bool), type=pa.bool_(), from_pandas=True)
        out = pc.if_else(arr, pa.scalar("true", pa.large_string()), pa.scalar("false", pa.large_string()))
    elif pd.api.types.is_integer_dtype(dtype):
        out = pc.cast(pa.array(s, from_pandas=True), pa.large_string())
    elif pd.api.types.is_float_dtype(dtype):
        vals = s.to_numpy(dtype=np.float64, na_value=np.nan)
        arr = pa.array(vals, from_pandas=True)  # NaN → null
        txt = pc.cast(arr, pa.large_string())
        whole = pc.match_substring_regex(txt, r"^-?\d+$")
        txt = pc.if_else(whole, pc.binary_join_element_wise(txt, pa.scalar(".0", pa.large_string()),
                                                            pa.scalar("", pa.large_string())), txt)
        finite = pa.array(np.isfinite(vals))
        out = pc.if_else(finite, txt, null)
    else:
        arr = pa.array(s.astype("str").array if not isinstance(dtype, pd.StringDtype) else s.array,
                       type=pa.large_string(), from_pandas=True)
        if pc.any(pc.match_substring_regex(arr, r"[\x00-\x1f]")).as_py():
            # control characters are rare: let the json module spell them
            out = pa.array([None if v is None else json.dumps(v, ensure_ascii=False)
                            for v in arr.to_pylist()], type=pa.large_string())
        else:
            esc = pc.replace_substring(pc.replace_substring(arr, "\\", "\\\\"), '"', '\\"')
            q = pa.scalar('"', pa.large_string())
            out = pc.binary_join_element_wise(q, esc, q, pa.scalar("", pa.large_string()))
    return pc.fill_null(out.cast(pa.large_string()), null)
