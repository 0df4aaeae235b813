"""Rows of a boolean matrix as integer codes, and as lists built once per distinct row.

A customer's churn reasons are a row of a (customers × reasons) boolean matrix.  Most
rows repeat (few reasons, many customers), so :func:`row_codes` folds each row into one
integer (bit ``j`` = column ``j``) and :func:`mask_lists` builds the list of keys once
per distinct code: 100,000 customers cost a few dozen small lists, not 100,000 loops.
:func:`mask_lists_plain` is the row-by-row version the property test compares with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd


def row_codes(mask: np.ndarray) -> np.ndarray:
    """``sum(mask[i, j] << j)`` per row (int64; at most 62 columns)."""
    if mask.shape[1] > 62:
        raise ValueError("row_codes takes at most 62 columns")
    if mask.shape[1] == 0:
        return np.zeros(mask.shape[0], dtype=np.int64)
    return mask.astype(np.int64) @ (1 << np.arange(mask.shape[1], dtype=np.int64))


def mask_lists(mask: np.ndarray, keys: Sequence[Any] | np.ndarray) -> pd.Series:
    """Per row, the keys whose column is true (object Series of lists, in key order)."""
    if mask.shape[1] == 0:
        return pd.Series([[] for _ in range(mask.shape[0])], dtype=object)
    uniq, inv = np.unique(row_codes(mask), return_inverse=True)
    lists = [[k for j, k in enumerate(keys) if u >> j & 1] for u in uniq]
    return pd.Series([lists[i] for i in inv], dtype=object)


def mask_lists_plain(mask: np.ndarray, keys: Sequence[Any] | np.ndarray) -> list[list[Any]]:
    """The plain version: one comprehension per row."""
    return [[k for j, k in enumerate(keys) if row[j]] for row in mask.tolist()]
