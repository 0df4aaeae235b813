"""Numbers → short text for a whole column at once (Arrow's cast instead of a Python
loop): at most 2 decimals, no trailing zeros, null for NaN.

Arrow prints the shortest text that round-trips, so rounding first gives "2.5" and
"3000" rather than "2.50" or "0.30000000000000004".  :func:`numbers_as_text_plain` is
the same thing one value at a time (the reference the property test compares with).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def numbers_as_text(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(np.round(values, 2), from_pandas=True), pa.string())


def numbers_as_text_plain(values: np.ndarray) -> list[str | None]:
    out: list[str | None] = []
    for v in np.round(np.asarray(values, dtype=float), 2).tolist():
        if v != v:
            out.append(None)
            continue
        t = repr(v)
        out.append(t[:-2] if t.endswith(".0") else t)
    return out
