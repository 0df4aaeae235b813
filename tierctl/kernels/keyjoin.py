"""Key joins on text key columns (Arrow hash joins): which row of one frame each key of another is."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def _arrow_keys(s: pd.Series) -> Any:
    """A key column as one Arrow ``large_string`` array (no copy for Arrow-backed text)."""
    import pyarrow as pa

    a = getattr(s.array, "_pa_array", None)  # arrow-backed text: no conversion at all
    if a is None or not pa.types.is_large_string(a.type):
        a = pa.array(s.to_numpy(dtype=object) if s.dtype == np.dtype(object) else s.astype("str"),
                     type=pa.large_string(), from_pandas=True)
    return a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a


def key_positions(keys: pd.Series, among: pd.Series) -> np.ndarray:
    """For each of ``keys``, its position in ``among`` (−1 when absent; the first one
    when ``among`` holds a key twice): an Arrow hash join, several times faster than
    pandas' on a million text keys."""
    import pyarrow.compute as pc

    if not len(keys):
        return np.zeros(0, dtype=np.int64)
    if not len(among):
        return np.full(len(keys), -1, dtype=np.int64)
    pos = pc.index_in(_arrow_keys(keys), value_set=_arrow_keys(among))
    return np.asarray(pc.fill_null(pos, -1).to_numpy(zero_copy_only=False), dtype=np.int64)


def same_keys(a: pd.Series, b: pd.Series) -> bool:
    """Whether two key columns hold the same keys in the same order (missing keys
    compare equal): one pass in Arrow, a few hundredths of a second for a million."""
    import pyarrow.compute as pc

    if len(a) != len(b):
        return False
    if not len(a):
        return True
    x, y = _arrow_keys(a), _arrow_keys(b)
    eq = pc.fill_null(pc.equal(x, y), False)
    if x.null_count or y.null_count:
        eq = pc.or_(eq, pc.and_(pc.is_null(x), pc.is_null(y)))
    return bool(pc.all(eq).as_py())


def key_positions_both(keys: pd.Series, a: pd.Series | None, b: pd.Series | None,
                       ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``key_positions(keys, a)`` and ``key_positions(keys, b)`` (None for a missing
    side), the two joins side by side: the first on a thread (Arrow lets go of Python's
    lock), the second here."""
    from tierctl.kernels import background

    job = background.start(key_positions, keys, a, name="tierctl-join") if a is not None else None
    pb = key_positions(keys, b) if b is not None else None
    return (job() if job is not None else None), pb
