"""The store on a real PostgreSQL server (issue 18): the same numbered migrations as
SQLite, centres writing side by side (20 processes, two of them the same centre), a
centre's write waiting for its own centre only.  Skips without a server (outside CI)."""

from __future__ import annotations

import datetime as dt
import sys
import textwrap
import threading
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from tierctl.errors import StoreError
from tierctl.store import CURRENT_VERSION, Store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from forked import run_forked  # noqa: E402
from store_engines import ENGINES, database_url, pg_schema_url  # noqa: E402

TZ = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 11, 24, 9, 0, tzinfo=TZ)
D1 = dt.date(2026, 11, 24)
ROOT = Path(__file__).resolve().parents[1]


def _layout(store: Store) -> dict[str, set[str]]:
    insp = sa.inspect(store.engine)
    return {t: {c["name"] for c in insp.get_columns(t)} for t in insp.get_table_names()}


def test_the_same_migrations_give_the_same_tables_on_both_engines(tmp_path):
    with pg_schema_url() as url, Store.open(url) as pg, Store.open(tmp_path / "h.db") as lite:
        assert pg.schema_version() == lite.schema_version() == CURRENT_VERSION
        assert _layout(pg) == _layout(lite)
        assert all("centre" in cols for t, cols in _layout(pg).items()
                   if t not in ("schema_migrations", "snapshot_data", "snapshot_rows"))


WRITER = textwrap.dedent("""
    import datetime as dt, sys
    import pandas as pd
    from tierctl.store import Store
    url, centre, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    now = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.timezone.utc)
    keys = [f"{centre}-{i:04d}" for i in range(n)]
    rows = pd.DataFrame({"customer_key": keys, "label": ["P1"] * n, "score": [1.0] * n, "part": ["门"] * n})
    with Store.open(url, centre=centre, timeout=120) as s, s.transaction():
        s.save_snapshot("shortage", dt.date(2026, 11, 24), "m", "f.xlsx", "h", rows, {"by": centre})
        s.insert_alerts("shortage", pd.DataFrame({"customer_key": keys, "customer_id": keys, "name": keys,
                        "rule_id": ["r"] * n, "recipient": ["经理"] * n, "reason": ["x"] * n}),
                        dt.date(2026, 11, 24), now)
        s.add_contacts("shortage", {"customer_key": keys, "at": [now] * n, "result": ["好"] * n,
                       "logged_at": [now] * n})
""")


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_twenty_centres_and_two_runs_of_one_centre_at_once(engine, tmp_path):
    with database_url(engine, tmp_path) as url:
        Store.open(url).close()  # migrated once; the runs below find it ready
        script = tmp_path / "writer.py"
        script.write_text(WRITER)
        centres = [f"C{i:02d}" for i in range(20)] + ["C00"]  # C00 twice: 21 processes, 22 runs with the next
        jobs = [[url, c, "200"] for c in [*centres, "C01"]]
        assert run_forked(script, jobs, cwd=ROOT) == [0] * len(jobs)  # 22 processes at once
        with Store.open(url) as s:
            assert [c["centre"] for c in s.centres()] == [f"C{i:02d}" for i in range(20)]
            for i in range(20):
                v = s.for_centre(f"C{i:02d}")
                info = v.latest_snapshot("shortage")
                assert info is not None and info.row_count == 200 and info.meta == {"by": v.centre}
                assert info.replaced == (1 if i in (0, 1) else 0)  # the second run replaced the day
                twice = 2 if i in (0, 1) else 1
                assert len(v.active_alerts("shortage")) == 200 * twice
                assert len(v.contacts_list("shortage")) == 200 * twice
                last = v.last_contacts("shortage")
                assert sorted(last["customer_key"]) == [f"{v.centre}-{k:04d}" for k in range(200)]
                assert set(v.snapshot_rows(info.id)["customer_key"].str[:3]) == {v.centre}


def test_a_centre_writing_waits_only_for_its_own_centre():
    with pg_schema_url() as url:
        a = Store.open(url, centre="A")
        b = Store.open(url, centre="B", timeout=5)
        a2 = Store.open(url, centre="A", timeout=0.5)
        held, done = threading.Event(), threading.Event()

        def hold() -> None:
            with a.transaction():
                a.add_override("shortage", customer_key="k", label="P0", reason="r", created_at=NOW)
                held.set()
                done.wait(30)

        t = threading.Thread(target=hold)
        t.start()
        try:
            assert held.wait(30)
            b.add_override("shortage", customer_key="k", label="P1", reason="r", created_at=NOW)  # not blocked
            with pytest.raises(StoreError, match="占用"):
                a2.add_override("shortage", customer_key="k2", label="P1", reason="r", created_at=NOW)
        finally:
            done.set()
            t.join()
        assert list(b.active_overrides("shortage")["label"]) == ["P1"]
        assert list(a.active_overrides("shortage")["label"]) == ["P0"]
        for s in (a, b, a2):
            s.close()


def test_a_run_is_one_transaction_on_the_server():
    with pg_schema_url() as url, Store.open(url, centre="A") as s:
        rows = pd.DataFrame({"customer_key": ["k1", "k2"], "label": ["P0", "P1"]})
        with pytest.raises(RuntimeError), s.transaction():
            s.save_snapshot("shortage", D1, "m", "f", "h", rows)
            s.add_override("shortage", customer_key="k1", label="P0", reason="r", created_at=NOW)
            raise RuntimeError("killed half-way")
        assert s.latest_snapshot("shortage") is None and not len(s.active_overrides("shortage"))
