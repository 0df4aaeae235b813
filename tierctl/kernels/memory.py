"""Giving freed memory back to the system during a large run (issue 19).

Two allocators keep what a step has freed.  Arrow's default pool (mimalloc) holds the
reader's and the casts' buffers for reuse; and glibc's malloc, once a large numpy
temporary has been freed, raises its mmap threshold so that later ones come from a heap
it seldom trims.  On a million-row export each holds some 0.1–0.2 GB the next step never
reuses, and the peak of the run is that much higher.

:func:`lean_allocation` (once per process, for the runs that read a large export): blocks
of a megabyte or more are mapped on their own (unmapped as soon as they are freed), and
Arrow allocates through malloc too.  :func:`give_back`: both return what they hold free.
Neither changes any value; the plain version is not calling them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
MAPPED_FROM = 1 << 20


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    # (not glibc: no mallopt or malloc_trim, and nothing to do)
    return libc if libc is not None and hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


@functools.cache
def lean_allocation() -> bool:
    """Large blocks mapped on their own, and Arrow through malloc; False where the C
    library is not glibc (then nothing changes)."""
    libc = _libc()
    if libc is None or not libc.mallopt(M_MMAP_THRESHOLD, MAPPED_FROM):
        return False
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())
    return True


def give_back() -> None:
    """Return the memory Arrow's pool and malloc hold free to the system."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
