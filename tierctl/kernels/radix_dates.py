"""Due dates worked out once per distinct (start day, days, mode), found through one
mixed-radix integer code per row.

Plain version: ``add(EPOCH + start[i] days, n[i], mode[i])`` for each row ``i``.  A
working-day ``add`` walks the calendar day by day; ninety thousand customers share a few
hundred combinations.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd

EPOCH = dt.date(1970, 1, 1)
MODES = 3  # a mode is 0, 1 or 2


def dates_by_distinct(start: np.ndarray, n: np.ndarray, mode: np.ndarray,
                      add: Callable[[dt.date, int, int], dt.date]) -> np.ndarray:
    """``add(day, n, mode)`` of each row as ``datetime64[D]``: ``start`` in days since
    1970-01-01 (any sign), ``n`` ≥ 0, ``mode`` in 0..2."""
    start, n, mode = (np.asarray(x, dtype=np.int64) for x in (start, n, mode))
    if not len(start):
        return np.zeros(0, dtype="datetime64[D]")
    radix = int(n.max()) + 1
    codes, uniq = pd.factorize((start * radix + n) * MODES + mode)
    table = np.array([np.datetime64(add(EPOCH + dt.timedelta(days=int(u) // MODES // radix),
                                        int(u) // MODES % radix, int(u) % MODES), "D") for u in uniq],
                     dtype="datetime64[D]")
    return table[codes]
