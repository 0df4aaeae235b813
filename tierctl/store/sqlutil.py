"""SQL helpers shared by the store's modules: key lists as conditions, bulk inserts
compiled once, raw fetches into frames.  Work on SQLite and PostgreSQL alike (each picks
the faster form for the dialect)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from tierctl.errors import StoreError
from tierctl.store.payload import json_key

GENERIC = ("customer_key", "customer_id", "name", "phone", "label", "score")


def _key_chunks(conn: sa.Connection, column: Any, keys: list[str]) -> list[Any]:
    """``column IN keys`` as conditions for one statement each: on SQLite a single one
    (the keys as one JSON array, unpacked by ``json_each``: no parameter limit and one
    compiled statement however many keys), elsewhere chunks of 500."""
    if not keys:
        return [sa.false()]
    if conn.dialect.name == "sqlite":
        values = sa.select(sa.column("value", sa.String)).select_from(
            sa.func.json_each(sa.literal(json.dumps(keys, ensure_ascii=False), sa.String)))
        return [column.in_(values)]
    if conn.dialect.name == "postgresql":  # one array parameter: `= ANY(...)` uses the index
        from sqlalchemy.dialects import postgresql

        return [column == sa.any_(sa.literal(keys, type_=postgresql.ARRAY(sa.String)))]
    return [column.in_(keys[i:i + 500]) for i in range(0, len(keys), 500)]


def _generic_frame(rows: pd.DataFrame) -> pd.DataFrame:
    f = rows.reset_index(drop=True)
    ren = {}
    if "customer_key" not in f and "key" in f:
        ren["key"] = "customer_key"
    if "label" not in f and "tier" in f:
        ren["tier"] = "label"
    if ren:
        f = f.rename(columns=ren)
    if "customer_key" not in f:
        raise StoreError("快照缺少 customer_key 列")
    for c in GENERIC:
        if c not in f:
            f[c] = None
    return f


def _arrow_text(s: pd.Series) -> pa.Array:
    """A column as Arrow text (missing → null; numbers and other values as their text)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    if pd.api.types.is_string_dtype(s.dtype) and s.dtype != np.dtype(object):
        arr = pa.array(s, type=pa.string(), from_pandas=True)
    else:
        vals = s.to_numpy(dtype=object)
        try:  # the common case, all text or missing: converted in C
            arr = pa.array(vals, type=pa.string(), from_pandas=True)
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            miss = pd.isna(vals)
            arr = pa.array([None if m else (v if isinstance(v, str) else str(v))
                            for v, m in zip(vals.tolist(), miss.tolist(), strict=True)], type=pa.string())
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _pylist(s: pd.Series, *, number: bool = False) -> list[Any]:
    """Plain Python values for the driver (None for missing)."""
    if number:
        arr = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        out = arr.tolist()
        if np.isnan(arr).any():
            out = [None if x != x else x for x in out]
        return out
    if isinstance(s.dtype, pd.StringDtype):  # text already: only the missing values to replace
        return s.to_numpy(dtype=object, na_value=None).tolist()
    vals = s.astype(object).to_numpy(dtype=object)
    missing = pd.isna(vals)
    if missing.any():
        vals = vals.copy()
        vals[missing] = None
    return [v if v is None or isinstance(v, str) else str(v) for v in vals.tolist()] \
        if vals.dtype == object else vals.tolist()


def _utc(t: dt.datetime) -> str:
    if t.tzinfo is None:
        raise ValueError("tierctl stores only timezone-aware timestamps")
    return t.astimezone(dt.UTC).isoformat()


def _sql_literal(v: int | str, *, percent: bool = False) -> sa.ColumnElement:
    """``v`` written into a statement (``percent``: the driver's paramstyle reads ``%``
    as a placeholder, so a literal one is doubled)."""
    if isinstance(v, int):
        return sa.literal_column(str(int(v)))
    text = str(v).replace("'", "''")
    return sa.literal_column("'" + (text.replace("%", "%%") if percent else text) + "'")


def _executemany(conn: sa.Connection, table: sa.Table, columns: dict[str, list[Any]],
                 fixed: dict[str, int | str] | None = None) -> None:
    """Insert many rows with one statement compiled for this database's dialect and the
    DBAPI's executemany (values must already be in their stored form).  ``fixed``
    values, the same on every row, are written into the statement (fewer parameters).
    On PostgreSQL the rows go in by ``COPY`` (one stream instead of a round trip each)."""
    if conn.dialect.name == "postgresql":
        _copy_rows(conn, table, columns, fixed or {})
        return
    names = list(columns)
    stmt = sa.insert(table)
    if fixed:
        percent = conn.dialect.paramstyle in ("format", "pyformat")
        stmt = stmt.values({k: _sql_literal(v, percent=percent) for k, v in fixed.items()})
    compiled = stmt.compile(dialect=conn.dialect, column_keys=names)
    sql = str(compiled)
    if compiled.positional:
        order = [columns[k] for k in compiled.positiontup or names]
        params: Iterable[Any] = zip(*order, strict=True)
    else:
        params = ({k: v for k, v in zip(names, vals, strict=True)} for vals in zip(*columns.values(), strict=True))
    cur = conn.connection.cursor()
    try:
        cur.executemany(sql, params)  # type: ignore[arg-type]  # any iterable serves
    finally:
        cur.close()


def _copy_rows(conn: sa.Connection, table: sa.Table, columns: dict[str, list[Any]],
               fixed: dict[str, int | str]) -> None:
    n = len(next(iter(columns.values()))) if columns else 0
    data = {**{k: [v] * n for k, v in fixed.items()}, **columns}
    names = ", ".join('"' + k.replace('"', '""') + '"' for k in data)
    cur = conn.connection.cursor()
    try:
        with cur.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for row in zip(*data.values(), strict=True):
                copy.write_row(row)
    finally:
        cur.close()


def _fetch_raw(conn: sa.Connection, stmt: sa.Select) -> list[tuple]:
    """All rows of ``stmt`` as plain tuples.  The selected columns need no result
    processing (text, numbers, JSON values extracted as text/numbers), so the DBAPI
    cursor's own tuples are used — a million rows without building Row objects."""
    result = conn.execute(stmt)
    try:
        return list(result.cursor.fetchall()) if result.cursor is not None else []
    finally:
        result.close()


def _fetch_text_columns(conn: sa.Connection, stmt: sa.Select) -> list[list[str | None]]:
    """The rows of ``stmt`` column by column, for columns of text (or NULL).  On SQLite
    each column comes back as one JSON array built by ``json_group_array`` in C, which
    for a hundred thousand rows takes half the time of fetching them as tuples; elsewhere
    the rows are fetched and transposed.  (Text only: SQLite writes reals into JSON with
    15 significant digits.)"""
    names = list(stmt.selected_columns.keys())
    if conn.dialect.name == "sqlite":
        sub = stmt.subquery()
        row = _fetch_raw(conn, sa.select(*[sa.func.json_group_array(sub.c[n]) for n in names]))[0]
        return [json.loads(x) for x in row]
    rows = _fetch_raw(conn, stmt)
    return [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in names]


def _frame_raw(conn: sa.Connection, stmt: sa.Select) -> pd.DataFrame:
    """``stmt``'s rows as a frame of plain values (no per-row result processing: stored
    timestamps stay UTC ISO text, dates ISO text)."""
    names = [c.key for c in stmt.selected_columns]
    rows = _fetch_raw(conn, stmt)
    if not rows:
        return pd.DataFrame({n: pd.Series(dtype=object) for n in names})
    frame = pd.DataFrame(rows, columns=names, dtype=object)
    if conn.dialect.name != "sqlite":  # a server returns date objects: ISO text, as SQLite stores them
        for c in stmt.selected_columns:
            if isinstance(c.type, sa.Date):
                frame[c.key] = [v.isoformat() if isinstance(v, dt.date) else v for v in frame[c.key]]
    return frame


def _json_field(payload: Any, name: str, col: dict | None) -> Any:
    """One payload field, extracted inside the database."""
    item = payload[json_key(col) if col is not None else name]
    t = "json" if col is None else ("int" if "dict" in col else col["type"])
    if t == "int":
        return item.as_integer()
    if t == "float":
        return item.as_float()
    if t == "bool":
        return item.as_boolean()
    if t == "json":
        return item  # deserialised by the JSON type
    return item.as_string()


def _plain(v: Any) -> Any:
    """A pandas/numpy scalar as the plain Python value (missing → None)."""
    if _is_missing(v):
        return None
    return v.item() if isinstance(v, np.generic) else v


def _is_missing(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):  # lists, dicts
        return False


def _generic_result(rows: Sequence[Any]) -> pd.DataFrame:
    cols = list(GENERIC)
    data = {c: [r[i] for r in rows] for i, c in enumerate(cols)}
    f = pd.DataFrame({c: pd.Series(data[c], dtype=object) for c in cols})
    f["score"] = pd.to_numeric(f["score"], errors="coerce").astype(float)
    return f


def _frame(result: sa.CursorResult) -> pd.DataFrame:
    keys = list(result.keys())
    rows = result.all()
    return pd.DataFrame({k: pd.Series([r[i] for r in rows], dtype=object) for i, k in enumerate(keys)})


def _rows_of(table: sa.Table) -> list[sa.Column]:
    """A table's columns without ``centre`` (a store reads its own centre's rows: the
    frames it returns look as they did before there were centres)."""
    return [c for c in table.columns if c.name != "centre"]
