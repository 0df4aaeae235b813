"""The per-unit work of RFM: group the checked visit rows by unit, with numpy on integer codes.

:func:`aggregate` gets the checked visit columns (one entry per row of the export, and
``keep``, the rows that count) and returns, per unit with at least one non-refund visit:
the latest visit day, the net spend in fen, the distinct visits (F), the latest non-empty
name / phone / owner and the KOL mark; and what the quality notes need (units with only
refunds, order numbers shared by customers, rows without an order number, ids with
several names).  The rules are those of :mod:`tierctl.rfm.score`; the plain pandas
version this is tested against is in tests/test_rfm_engine.py.

Every text column is turned into integer codes once, and all per-unit work is numpy on
those codes over the full row range (rows that do not count carry code -1), so no column
of millions of strings is copied or compared twice.  (DuckDB over Arrow was measured for
this step and was slower: 1.3 s against 0.4 s of CPU on a million visits; see README.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# "latest" = latest date, then highest Excel row: the day shifted above any row number
_ROW_SPAN = np.int64(1 << 40)


@dataclass
class Units:
    """Per scored unit (same order in every array) and the notes' raw material."""

    ids: pd.Index
    last_day: np.ndarray
    net_cents: np.ndarray
    frequency: np.ndarray
    kol: np.ndarray
    latest: dict[str, Any]
    basis: str  # order_id | visit_date
    refund_only: list[str] = field(default_factory=list)
    shared_orders: list[tuple[str, int]] = field(default_factory=list)
    name_conflicts: list[tuple[str, list[str]]] = field(default_factory=list)
    missing_order_rows: int = 0
    first_missing_order_row: int | None = None


def aggregate(text: dict[str, pd.Series], day: np.ndarray, cents: np.ndarray, rows: np.ndarray,
              keep: np.ndarray, kol: np.ndarray | None, *, name_conflicts: bool) -> Units:
    """``text``: ``u`` (the unit key) and, when present, ``oid``, ``name``, ``phone``,
    ``cid`` (the owner, when the unit is the vehicle).  ``day`` whole days (any value on
    rows not kept), ``cents`` integer fen (refunds negative), ``rows`` Excel rows (-1
    unknown)."""
    raw_code, uniques = _factorize(text["u"])
    n_rows = len(raw_code)
    keep = keep & (raw_code >= 0)
    refund = keep & (cents < 0)
    visit = keep & ~refund
    n_all = len(uniques)
    has_visit = np.bincount(raw_code[visit], minlength=n_all) > 0
    lonely = np.flatnonzero((np.bincount(raw_code[refund], minlength=n_all) > 0) & ~has_visit)
    remap = np.full(n_all, -1, dtype=np.int64)
    remap[has_visit] = np.arange(int(has_visit.sum()))
    code = np.full(n_rows, -1, dtype=np.int64)  # unit 0..n-1 for rows that count, else -1
    code[keep] = remap[raw_code[keep]]
    del raw_code
    counted = code >= 0  # in-window visits and refunds of scored units
    ids = uniques[has_visit]
    n = len(ids)
    # (the days of rows that do not count are never read: every step below selects the
    # visit or counted rows first)

    last_day = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(last_day, code[visit], day[visit])
    net_cents = np.zeros(n, dtype=np.int64)
    np.add.at(net_cents, code[counted], cents[counted])
    out = Units(ids=ids, last_day=last_day, net_cents=net_cents, frequency=np.zeros(n, np.int64),
                kol=np.zeros(n, dtype=bool), latest={}, basis="visit_date",
                refund_only=sorted(str(u) for u in uniques[lonely]))
    day_off = day - (int(day[visit].min()) if visit.any() else 0)
    _frequency(out, text.get("oid"), visit, code, day_off, rows)

    order_key = day * _ROW_SPAN  # in place from here: one array of millions, not three
    order_key += np.maximum(rows, 0)
    shared: dict[str, np.ndarray] = {}  # the latest counted row per unit, found once
    for col, name in (("cid", "customer_id"), ("name", "name"), ("phone", "phone")):
        if col in text:
            out.latest[name] = _latest_value(text[col], code, order_key, n, shared)
    if name_conflicts and "name" in text:
        out.name_conflicts = _name_conflicts(text["name"], out.latest["name"], code, ids)
    if kol is not None:
        sel = kol & counted
        out.kol = np.bincount(code[sel], minlength=n) > 0
    return out


def _frequency(out: Units, order_s: pd.Series | None, visit: np.ndarray, code: np.ndarray,
               day_off: np.ndarray, rows: np.ndarray) -> None:
    """Distinct visits per unit (``out.frequency``) and the basis used (``out.basis``).

    Distinct (unit, visit) pairs are counted by sorting integer keys, far cheaper than
    hashing millions of pairs.  Each array of the visit rows is made when it is needed
    and dropped after: on millions of rows every one is tens of MB."""
    n = len(out.ids)
    vcode = code[visit]

    def distinct_per_unit(unit: np.ndarray, sub: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
        keys = unit * np.int64(width)
        keys += sub
        uniq = _sorted_unique(keys, in_place=True)
        return np.bincount(uniq // width, minlength=n), uniq

    has_id = order_s.notna().to_numpy()[visit] if order_s is not None else None
    if has_id is None or not has_id.any():
        vday = day_off[visit]
        freq, _ = distinct_per_unit(vcode, vday, int(vday.max()) + 1 if len(vday) else 1)
        out.frequency = freq.astype(np.int64)
        return
    out.basis = "order_id"
    # codes for the whole column, then the visit rows' codes: taking millions of strings
    # out of the column first would copy them all
    all_codes, ouniq = _factorize_runs(order_s)
    ocode = all_codes[visit]
    del all_codes
    every = bool(has_id.all())
    n_orders = max(len(ouniq), 1)
    freq, pairs = distinct_per_unit(vcode if every else vcode[has_id], ocode if every else ocode[has_id], n_orders)
    del ocode
    # The same order number under two customers is an export error worth showing.
    per_order = np.bincount(pairs % n_orders, minlength=n_orders)
    del pairs
    out.shared_orders = [(str(ouniq[i]), int(per_order[i])) for i in np.flatnonzero(per_order > 1)]
    if not every:
        # Rows without a number: a visit per distinct date, unless that unit has a
        # numbered order the same day (then they are lines of that order).
        vday = day_off[visit]
        width_day = int(vday.max()) + 1 if len(vday) else 1
        no_id = ~has_id
        numbered_days = _sorted_unique(vcode[has_id] * np.int64(width_day) + vday[has_id], in_place=True)
        cand = vcode[no_id] * np.int64(width_day) + vday[no_id]
        pos = np.minimum(np.searchsorted(numbered_days, cand), max(len(numbered_days) - 1, 0))
        extra = (numbered_days[pos] != cand) if len(numbered_days) else np.ones(len(cand), bool)
        f_extra, _ = distinct_per_unit(vcode[no_id][extra], vday[no_id][extra], width_day)
        freq = freq + f_extra
        first = rows[visit][no_id]
        first = first[first >= 0]
        out.missing_order_rows = int(no_id.sum())
        out.first_missing_order_row = int(first.min()) if len(first) else None
    out.frequency = freq.astype(np.int64)


def _factorize(s: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """``pd.factorize`` with int64 codes (-1 for missing).  For Arrow-backed text it is
    one Arrow hash pass; called on the Arrow array itself, which skips pandas' chunk
    handling around it (a third of the time on millions of ids)."""
    arr = getattr(s.array, "_pa_array", None)
    if arr is not None:
        flat = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
        enc = pc.dictionary_encode(flat)  # nulls stay null: code -1, as pd.factorize gives
        codes = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        return codes, pd.Index(pd.array(enc.dictionary, dtype=s.dtype))
    codes, uniq = pd.factorize(s)
    return codes.astype(np.int64, copy=False), pd.Index(uniq)


def _factorize_runs(s: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """:func:`_factorize` for a column that is often sorted (order numbers: exports are
    sorted by them, or by date with numbers that start with the date).  When the
    non-missing values never decrease, equal values sit next to each other and a new
    code starts at each change: one comparison pass instead of hashing millions of
    strings.  Otherwise, or for non-Arrow text, it hashes.  Codes then follow sorted
    order rather than first appearance; callers use them only as labels."""
    arr = getattr(s.array, "_pa_array", None)
    if arr is None or len(s) < 2:
        return _factorize(s)
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    present = pc.drop_null(arr)
    if len(present) < 2:
        return _factorize(s)
    prev, nxt = present.slice(0, len(present) - 1), present.slice(1)
    if not pc.all(pc.less_equal(prev, nxt)).as_py():
        return _factorize(s)
    starts = np.empty(len(present), dtype=bool)
    starts[0] = True
    starts[1:] = pc.not_equal(prev, nxt).to_numpy(zero_copy_only=False)
    present_codes = np.cumsum(starts, dtype=np.int64) - 1
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    codes = np.full(len(arr), -1, dtype=np.int64)
    codes[valid] = present_codes
    uniq = present.filter(pa.array(starts))
    return codes, pd.Index(pd.array(uniq, dtype=s.dtype))


def _sorted_unique(keys: np.ndarray, *, in_place: bool = False) -> np.ndarray:
    """Sorted distinct values of an int64 array (``in_place``: ``keys`` is a temporary
    of the caller's and may be sorted where it is, saving a copy).

    ``np.unique`` takes a hashing path for plain integer arrays that is ~50× slower than
    sorting (numpy 2.x: 5 s against 0.1 s on 5 million keys), so sort and compare.
    """
    if in_place:
        keys.sort()
    else:
        keys = np.sort(keys)
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    return keys[first]


def _latest_value(col: pd.Series, code: np.ndarray, order_key: np.ndarray, n: int,
                  shared: dict[str, np.ndarray] | None = None) -> pd.api.extensions.ExtensionArray:
    """Per unit, the value on its latest counted row where the value is not empty.

    ``shared`` caches the latest counted row of every unit: a column with a value on
    each counted row (names and phones usually) is then a single take."""
    present = col.notna().to_numpy()
    counted = code >= 0
    if shared is not None and present[counted].all():
        if "rows" not in shared:
            shared["rows"] = _latest_rows(code, order_key, n, np.flatnonzero(counted))
        return col.array.take(shared["rows"], allow_fill=True)
    return col.array.take(_latest_rows(code, order_key, n, np.flatnonzero(present & counted)),
                          allow_fill=True)


def _latest_rows(code: np.ndarray, order_key: np.ndarray, n: int, pos: np.ndarray) -> np.ndarray:
    """Per unit, the row (among ``pos``) with the highest ``order_key``; -1 if none."""
    best = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(best, code[pos], order_key[pos])
    winners = pos[order_key[pos] == best[code[pos]]]
    take = np.full(n, -1, dtype=np.int64)  # -1 → NA for units that never had a value
    take[code[winners]] = winners  # ties (same date, no row numbers): one of the equals
    return take


def _name_conflicts(names: pd.Series, latest: Any, code: np.ndarray, unit_ids: pd.Index) -> list[tuple[str, list[str]]]:
    """Units whose rows carry more than one name, with the names sorted.  Comparing each
    row with its unit's latest name finds them without hashing every name."""
    named = names.notna().to_numpy() & (code >= 0)
    # full-length comparison: taking from the small per-unit array is cheap, taking
    # millions of rows out of the (chunked) names column is not
    expected = latest.take(np.where(named, code, -1), allow_fill=True)
    cmp = names.array != expected
    cmp = cmp.to_numpy(dtype=bool, na_value=False) if hasattr(cmp, "to_numpy") else np.asarray(cmp)
    sel = np.flatnonzero(named)
    differs = cmp[sel]
    if not differs.any():
        return []
    bad_units = _sorted_unique(code[sel[differs]])
    rows_of_bad = sel[np.isin(code[sel], bad_units)]
    frame = pd.DataFrame({"u": code[rows_of_bad], "name": names.iloc[rows_of_bad].to_numpy()})
    listed = frame.drop_duplicates().groupby("u")["name"].agg(lambda s: sorted(s))
    return [(str(unit_ids[u]), list(v)) for u, v in zip(listed.index, listed.to_numpy(), strict=True)]
