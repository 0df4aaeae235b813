"""Giving freed memory back to the system between the steps of a large run (issue 19).

Two allocators keep what a step has freed: Arrow's default pool (mimalloc) holds the
reader's and the casts' buffers for reuse, and glibc's malloc keeps freed numpy
temporaries in a heap it seldom trims.  On a million-row export that is some 0.1–0.2 GB
the next step never reuses.  :func:`give_back` asks both to return it.  It changes no
value; the plain version is not calling it.

:func:`return_at_once` goes further for a run that reads and writes a large table:
Arrow's buffers then come from jemalloc with freed pages returned at once (decay 0)
instead of kept for reuse — on the million-customer score run 0.1 GB less at the peak.

:func:`reusing_pool` is the other side: for a step that allocates and frees the same
few blocks over and over (the CSV writer, a slice of rows at a time), a pool that keeps
them for the next slice instead of faulting fresh pages in every time.

(Tried and not kept: mapping every block of a megabyte or more on its own and Arrow
through malloc took the score run's peak from 0.75 to 0.56 GB but cost 1.5 s of page
faults on a million rows.)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None  # (not glibc: nothing to do)


def give_back() -> None:
    """Return the memory Arrow's pool and malloc hold free to the system."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def return_at_once() -> None:
    """Arrow's default pool from here on: jemalloc returning freed pages to the system at
    once, where this pyarrow is built with jemalloc (Linux and macOS wheels); otherwise
    nothing changes.  Buffers allocated before stay with their own pool."""
    import pyarrow as pa

    try:
        pool = pa.jemalloc_memory_pool()
        pa.jemalloc_set_decay_ms(0)
    except (NotImplementedError, pa.ArrowNotImplementedError):
        return
    pa.set_memory_pool(pool)


def reusing_pool():
    """A pool that keeps what is freed for the next allocation (mimalloc), for a step that
    takes and frees blocks of the same size again and again — with the default pool
    returning pages at once (:func:`return_at_once`), each would be faulted in afresh
    (on the million-customer CSV some 145,000 page faults).  None where this pyarrow has
    no mimalloc (the default pool is used then).  :func:`release` gives its memory back."""
    import pyarrow as pa

    try:
        return pa.mimalloc_memory_pool()
    except (NotImplementedError, pa.ArrowNotImplementedError):
        return None


def release(pool) -> None:
    """Return what ``pool`` (from :func:`reusing_pool`; None: nothing) holds free."""
    if pool is not None:
        pool.release_unused()
