"""The raw layout of one Arrow text array, for checks that only need a cell's first or
last bytes: each cell's start and end in the data bytes, and the bytes themselves —
read from the array's own buffers, without a copy of the text or a pass of a regex."""

from __future__ import annotations

from typing import Any

import numpy as np


def text_bytes(chunk: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(start, end, data)`` of one (not chunked) Arrow string or large-string array:
    int64 start and end of every cell in ``data`` (uint8; empty when no cell holds
    text).  None for any other type: the caller takes its general path."""
    import pyarrow as pa

    if pa.types.is_large_string(chunk.type):
        width: type = np.int64
    elif pa.types.is_string(chunk.type):
        width = np.int32
    else:
        return None
    n = len(chunk)
    bufs = chunk.buffers()
    if n == 0 or bufs[2] is None or bufs[2].size == 0:  # (no text in any cell)
        zero = np.zeros(n, dtype=np.int64)
        return zero, zero, np.zeros(0, dtype=np.uint8)
    off: np.ndarray = np.frombuffer(bufs[1], dtype=width, count=n + 1, offset=chunk.offset * np.dtype(width).itemsize)
    return off[:-1].astype(np.int64), off[1:].astype(np.int64), np.frombuffer(bufs[2], dtype=np.uint8)
