"""A file's SHA-256, and the same started on a thread (the plain version is
:func:`sha256_file`; :func:`sha256_in_background` only moves it off the caller's thread).

``hashlib`` lets go of the interpreter while it reads and hashes a megabyte, so the hash
of a large export runs beside ingest and scoring on the second core instead of adding its
time to the run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from tierctl.kernels import background

CHUNK = 1 << 20


def sha256_file(path: Any) -> str | None:
    """The SHA-256 of a file (hex), None when it cannot be read."""
    try:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(CHUNK), b""):
                h.update(chunk)
        return h.hexdigest()
    except OSError:
        return None


def sha256_in_background(path: Any) -> Callable[[], str | None]:
    """Start :func:`sha256_file` on a thread and return the call that waits for it."""
    return background.start(sha256_file, path, name="tierctl-sha256")
