"""Map a function over a few items on threads, keeping the items' order.

Worth it for steps that run in C with the interpreter released (Arrow trims and casts).
pandas enters ``warnings.catch_warnings()`` inside such steps, which swaps process-wide
state and is not thread-safe: whatever the threads leave behind is put back here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TypeVar

A = TypeVar("A")
R = TypeVar("R")

MAX_THREADS = 4


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def thread_map(fn: Callable[[A], R], items: Iterable[A], *, threads: int | None = None) -> list[R]:
    """``[fn(x) for x in items]`` on up to ``threads`` threads (default: the cores, at
    most four); the first exception raised is raised here."""
    import warnings
    from concurrent.futures import ThreadPoolExecutor

    work = list(items)
    if not work:
        return []
    n = max(1, min(len(work), threads if threads is not None else min(cores(), MAX_THREADS)))
    with warnings.catch_warnings(), ThreadPoolExecutor(n) as pool:
        return list(pool.map(fn, work))
