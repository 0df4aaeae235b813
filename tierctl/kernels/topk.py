"""The rows a table shows, in order, without sorting every row: highest ``key`` first,
ties by id; with ``limit`` only the rows at or above the ``limit``-th key are sorted
(``np.partition`` finds that key in linear time), every tie at the cut kept.

:func:`top_order_plain` sorts everything and cuts afterwards (the reference the property
test compares with).
"""

from __future__ import annotations

import numpy as np


def top_order(key: np.ndarray, ids: np.ndarray, limit: int | None = None) -> np.ndarray:
    """Row positions: ``key`` descending, then ``ids`` (as text) ascending."""
    n = len(key)
    pick = np.arange(n)
    if limit and n > limit:
        kth = np.partition(key, n - limit)[n - limit]
        pick = np.flatnonzero(key >= kth)
    sub = ids[pick]
    return pick[np.lexsort((sub.astype(str), -key[pick]))]


def top_order_plain(key: np.ndarray, ids: np.ndarray, limit: int | None = None) -> np.ndarray:
    order = np.lexsort((ids.astype(str), -key))
    if limit and len(key) > limit:
        kth = key[order[limit - 1]]
        order = order[key[order] >= kth]
    return order
