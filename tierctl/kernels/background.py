"""Work started on a thread now and collected later.

The machine a service centre runs tierctl on has a few cores, and the heavy steps of a
morning run (hashing the export, Arrow hash joins, compressing a snapshot, SQLite reads
and writes) run in C with the interpreter released.  Starting one of them on a thread and
collecting it when it is needed lets two of them overlap instead of adding up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def start(fn: Callable[..., T], *args: Any, name: str = "tierctl-background", **kwargs: Any) -> Callable[[], T]:
    """Run ``fn(*args, **kwargs)`` on a thread now; the returned call waits for it and
    gives its result, or raises the exception it raised (in the caller's thread, so
    errors reach the one place that reports them).  Daemon: a thread nobody collects
    (its caller failed first) never keeps the process alive."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller on collection
            box["error"] = exc

    t = threading.Thread(target=work, name=name, daemon=True)
    t.start()

    def result() -> T:
        t.join()
        if "error" in box:
            raise box["error"]
        return box["value"]

    return result
