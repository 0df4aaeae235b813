"""A function worked out once per distinct value of a column, not once per row.

Plain version: ``[missing if pd.isna(v) else fn(v) for v in values]``.  The task list
and the changes call this on columns of a hundred thousand rows holding a handful of
tiers, labels or timestamps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd


def map_distinct(values: Any, fn: Callable[[Any], Any], missing: Any = None, dtype: Any = object) -> np.ndarray:
    """``fn`` of each value (``missing`` for a missing one), as an array of ``dtype``."""
    codes, uniq = pd.factorize(values)
    table = np.array([fn(u) for u in uniq] + [missing], dtype=dtype)
    return table[np.where(codes < 0, len(uniq), codes)]
