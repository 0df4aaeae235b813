"""Small helpers on frames shared by the jobs."""

from __future__ import annotations

import numpy as np
import pandas as pd


def key_positions(keys: pd.Series, among: pd.Series) -> np.ndarray:
    """For each of ``keys``, its position in ``among`` (−1 when absent; the first one
    when ``among`` holds a key twice): an Arrow hash join, several times faster than
    pandas' on a million text keys."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def arr(s: pd.Series) -> pa.Array:
        a = getattr(s.array, "_pa_array", None)  # arrow-backed text: no conversion at all
        if a is None or not pa.types.is_large_string(a.type):
            a = pa.array(s.to_numpy(dtype=object) if s.dtype == np.dtype(object) else s.astype("str"),
                         type=pa.large_string(), from_pandas=True)
        return a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a

    if not len(keys):
        return np.zeros(0, dtype=np.int64)
    if not len(among):
        return np.full(len(keys), -1, dtype=np.int64)
    pos = pc.index_in(arr(keys), value_set=arr(among))
    return np.asarray(pc.fill_null(pos, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
