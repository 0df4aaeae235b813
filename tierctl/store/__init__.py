"""The history store shared by every job: snapshots, alerts, contacts, overrides.

    from tierctl.store import Store
    with Store.open(path) as store:            # or Store.open(":memory:") in tests
        sid = store.save_snapshot("rfm", as_of, "rfm", "visits.xlsx", sha256, rows, meta)
        prev = store.latest_snapshot("rfm", before=as_of)
        frame = store.snapshot_rows(prev.id)

See :class:`tierctl.store.core.Store` for the whole API.
"""

from tierctl.store.core import GENERIC, SnapshotInfo, Store
from tierctl.store.migrations import CURRENT_VERSION, MIGRATIONS

__all__ = ["CURRENT_VERSION", "GENERIC", "MIGRATIONS", "SnapshotInfo", "Store"]
