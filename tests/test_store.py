"""The history store: schema and migrations, the snapshot API every job uses, payload
round trips, transactions (rollback, kill -9) and two processes at once."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tierctl.errors import NotFoundError, StoreError
from tierctl.store import CURRENT_VERSION, Store, migrations
from tierctl.store.schema import AwareDateTime

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store_engines import ENGINES, pg_schema_url  # noqa: E402

TZ = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 11, 24, 9, 0, tzinfo=TZ)
D1 = dt.date(2026, 11, 23)
D2 = dt.date(2026, 11, 24)
PY = sys.executable
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=ENGINES)
def store(request):
    """The store API's tests run on both engines (tests/store_engines.py)."""
    if request.param == "sqlite":
        s = Store.open(":memory:")
        yield s
        s.close()
        return
    with pg_schema_url() as url:
        s = Store.open(url)
        yield s
        s.close()


def frame(n: int = 3, *, label: str = "P1") -> pd.DataFrame:
    ids = [f"{i:05d}" for i in range(n)]  # leading zeros: text, never numbers
    return pd.DataFrame({
        "customer_key": ids,
        "customer_id": ids,
        "name": [f"客户{i}" for i in range(n)],
        "phone": [f"0138{i:07d}" for i in range(n)],
        "label": [label] * n,
        "score": [round(5 + i / 10, 2) for i in range(n)],
        "notes": pd.Series(["要\"投诉\"\n第二行", None, "=1+1"] * (n // 3) + ["x"] * (n % 3), dtype="str"),
        "wait_days": np.arange(n, dtype=np.int64),
        "contacts_7d": pd.array([1, None, 3] * (n // 3) + [0] * (n % 3), dtype="Int64"),
        "flag": pd.array([True, None, False] * (n // 3) + [True] * (n % 3), dtype="boolean"),
        "start": pd.to_datetime(["2026-10-01", None, "2026-11-01"] * (n // 3) + ["2026-01-01"] * (n % 3)),
        "due": pd.Series([pd.Timestamp("2026-11-24 11:00", tz=TZ)] * n),
        "extra": [{"a": [1, 2]}, None, ["x"]] * (n // 3) + [{}] * (n % 3),
    })


def table_counts(path: Path) -> dict[str, int]:
    con = sqlite3.connect(path)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("snapshots", "snapshot_data", "alerts", "contacts", "overrides")}
    finally:
        con.close()


def integrity(path: Path) -> str:
    con = sqlite3.connect(path)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


# -- schema and migrations -----------------------------------------------------------------
def test_memory_store_is_migrated_and_records_its_migrations(store):
    assert store.schema_version() == CURRENT_VERSION == migrations.MIGRATIONS[-1].version
    with store.reading() as conn:
        rows = conn.execute(sa.text("SELECT version, name, applied_at FROM schema_migrations ORDER BY version")).all()
    assert [r[0] for r in rows] == [m.version for m in migrations.MIGRATIONS]
    applied = dt.datetime.fromisoformat(rows[0][2])
    assert applied.tzinfo is not None and applied.utcoffset() == dt.timedelta(0)


def test_migrating_an_empty_file_creates_every_table(tmp_path):
    path = tmp_path / "deep" / "folder" / "tierctl.db"
    with Store.open(path) as s:
        assert s.schema_version() == CURRENT_VERSION
    con = sqlite3.connect(path)
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
    assert {"snapshots", "snapshot_rows", "snapshot_data", "alerts", "contacts", "contact_latest", "overrides",
            "followups", "schema_migrations", "ix_snapshot_rows_snapshot_key"} <= names
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


def _schema(path: Path) -> tuple[list[tuple], list[tuple]]:
    con = sqlite3.connect(path)
    try:
        master = con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()
        ledger = con.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
        return master, ledger
    finally:
        con.close()


def test_a_new_store_made_from_the_remembered_schema_equals_one_migrated_step_by_step(tmp_path, monkeypatch):
    from tierctl.store import fresh

    monkeypatch.setattr(fresh, "_SCHEMAS", {})  # nothing remembered yet in this process
    replays: list[bool] = []
    real = fresh.replay
    monkeypatch.setattr(fresh, "replay", lambda conn, k: replays.append(real(conn, k)) or replays[-1])
    Store.open(tmp_path / "steps.db").close()
    assert replays == []  # the first one is migrated step by step (and remembered)
    with Store.open(tmp_path / "one.db") as s:
        assert s.schema_version() == CURRENT_VERSION
        s.add_contact("shortage", customer_key="001", at=NOW, result="已接通", logged_at=NOW)
        s.save_snapshot("shortage", D2, "rite", "b.xlsx", "h2", frame(3), {})
    assert replays == [True]
    assert _schema(tmp_path / "one.db") == _schema(tmp_path / "steps.db")
    assert integrity(tmp_path / "one.db") == "ok"
    with Store.open(tmp_path / "one.db") as s:  # holding data: opened as it is
        assert s.latest_snapshot("shortage") is not None
    # a database that is not empty, or a partial target, never gets the remembered schema
    Store.open(tmp_path / "v1.db", target_version=1).close()
    with Store.open(tmp_path / "v1.db") as s:
        assert s.schema_version() == CURRENT_VERSION
    assert replays == [True, False]
    assert _schema(tmp_path / "v1.db")[0] == _schema(tmp_path / "steps.db")[0]
    # other migrations: migrated step by step again
    extra = migrations.Migration(CURRENT_VERSION + 1, "a test table",
                                 lambda conn: conn.execute(sa.text("CREATE TABLE extra (x INTEGER)")))
    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, extra])
    monkeypatch.setattr(migrations, "CURRENT_VERSION", extra.version)
    Store.open(tmp_path / "extra.db").close()
    assert replays == [True, False]
    master, ledger = _schema(tmp_path / "extra.db")
    assert ("table", "extra", "extra", "CREATE TABLE extra (x INTEGER)") in master
    assert ledger[-1] == (extra.version, "a test table")


def test_migrating_a_version_1_database_keeps_its_data(tmp_path):
    path = tmp_path / "v1.db"
    # the previous schema, as version 1 of tierctl left it, with one snapshot in it
    Store.open(path, target_version=1).close()
    con = sqlite3.connect(path)
    assert {r[0] for r in con.execute("SELECT version FROM schema_migrations")} == {1}
    cols = {r[1] for r in con.execute("PRAGMA table_info(snapshot_rows)")}
    assert "seq" not in cols
    con.execute("INSERT INTO snapshots (id, kind, as_of, model_name, source_name, source_hash, created_at, "
                "row_count, meta) VALUES (1, 'shortage', '2026-11-23', 'rite', 'a.xlsx', 'h', "
                "'2026-11-23T01:00:00+00:00', 2, '{\"k\": 1}')")
    con.executemany("INSERT INTO snapshot_rows (snapshot_id, customer_key, customer_id, name, phone, label, score, "
                    "payload) VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
                    [("002", "002", "乙", None, "P2", 4.5, json.dumps({"notes": "要投诉", "wait_days": 9})),
                     ("001", "001", "甲", "0139", "P0", 8.6, json.dumps({"notes": None, "wait_days": 30}))])
    con.commit()
    con.close()

    with Store.open(path) as s:
        assert s.schema_version() == CURRENT_VERSION
        info = s.latest_snapshot("shortage")
        assert info is not None and info.layout is None and info.replaced == 0 and info.meta == {"k": 1}
        rows = s.snapshot_rows(info.id)
        # v1 rows come back in insertion order, payload columns inferred
        assert rows["customer_key"].tolist() == ["002", "001"]
        assert rows["wait_days"].tolist() == [9, 30]
        assert rows["notes"].tolist()[0] == "要投诉"
        part = s.snapshot_rows(info.id, fields=["notes"], generic=("customer_key",))
        assert part["notes"].tolist() == ["要投诉", None]
        # the new tables work, and a new snapshot is stored the v2 way
        s.add_contact("shortage", customer_key="001", at=NOW, result="已接通", logged_at=NOW)
        sid = s.save_snapshot("shortage", D2, "rite", "b.xlsx", "h2", frame(3), {})
        assert s.snapshot_rows(sid)["customer_key"].tolist() == ["00000", "00001", "00002"]
    con = sqlite3.connect(path)
    assert {r[0] for r in con.execute("SELECT version FROM schema_migrations")} == \
        {m.version for m in migrations.MIGRATIONS}
    idx = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "ix_snapshot_rows_key" not in idx  # dropped by migration 2
    con.close()


def test_migration_5_fills_the_latest_contact_of_each_customer_from_the_log(tmp_path):
    path = tmp_path / "v4.db"
    Store.open(path, target_version=4).close()
    con = sqlite3.connect(path)
    con.executemany("INSERT INTO contacts (kind, customer_key, at, result, logged_at) VALUES (?, ?, ?, 'x', ?)",
                    [(k, c, at, at) for k, c, at in [
                        ("shortage", "001", "2026-11-20T02:00:00+00:00"),
                        ("shortage", "001", "2026-11-22T02:00:00+00:00"),
                        ("shortage", "001", "2026-11-21T02:00:00+00:00"),
                        ("shortage", "002", "2026-11-19T02:00:00+00:00"),
                        ("churn", "001", "2026-11-23T02:00:00+00:00")]])
    con.commit()
    con.close()
    with Store.open(path) as s:
        last = s.last_contacts("shortage").set_index("customer_key")["last_at"]
        assert last.to_dict() == {"001": pd.Timestamp("2026-11-22T02:00:00Z"),
                                  "002": pd.Timestamp("2026-11-19T02:00:00Z")}
        assert s.last_contacts("churn")["customer_key"].tolist() == ["001"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["shortage", "churn"]), st.sampled_from(["A", "B", "C", "00D"]),
                          st.integers(0, 48), st.booleans()), max_size=25))
def test_the_latest_contact_kept_with_the_log_equals_grouping_the_log(log):
    """Contacts logged one by one or in bulk, in any time order: each customer's latest
    contact is the greatest time logged for them (per job kind)."""
    with Store.open(":memory:") as s:
        bulk: dict[str, dict[str, list]] = {}
        for kind, key, hours, one_by_one in log:
            at = NOW - dt.timedelta(hours=hours)
            if one_by_one:
                s.add_contact(kind, customer_key=key, at=at, result="x", logged_at=NOW)
            else:
                b = bulk.setdefault(kind, {"customer_key": [], "at": [], "result": [], "logged_at": []})
                # stamps as datetimes or as ISO text in another zone: stored as UTC either way
                when = at if hours % 2 else at.astimezone(dt.timezone(dt.timedelta(hours=8))).isoformat()
                for col, v in (("customer_key", key), ("at", when), ("result", "x"), ("logged_at", NOW)):
                    b[col].append(v)
        for kind, cols in bulk.items():
            assert s.add_contacts(kind, cols) == len(cols["customer_key"])
        for kind in ("shortage", "churn"):
            want: dict[str, pd.Timestamp] = {}
            for k, key, hours, _ in log:
                if k == kind:
                    t = pd.Timestamp(NOW - dt.timedelta(hours=hours)).tz_convert("UTC")
                    want[key] = max(want.get(key, t), t)
            got = s.last_contacts(kind)
            assert dict(zip(got["customer_key"], got["last_at"], strict=True)) == want


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=12), st.one_of(st.none(), st.text(max_size=12))), max_size=20))
def test_text_columns_read_in_one_json_array_equal_the_rows_fetched(rows):
    """On SQLite ``last_contacts`` reads each text column as one ``json_group_array``;
    any text (quotes, backslashes, control characters, CJK, NULL) comes back exactly as
    the plain fetch used on other databases returns it, in the same order."""
    from tierctl.store.core import _fetch_text_columns

    engine = sa.create_engine("sqlite://")
    t = sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), sa.Column("a", sa.String),
                 sa.Column("b", sa.String))
    t.metadata.create_all(engine)
    with engine.begin() as conn:
        if rows:
            conn.execute(sa.insert(t), [{"a": a, "b": b} for a, b in rows])
        stmt = sa.select(t.c.a, t.c.b).order_by(t.c.id)
        fast = _fetch_text_columns(conn, stmt)
        conn.dialect.name = "other"  # the path every other database takes
        try:
            plain = _fetch_text_columns(conn, stmt)
        finally:
            del conn.dialect.name
    assert fast == plain == [[a for a, _ in rows], [b for _, b in rows]]


def test_a_version_3_snapshot_with_compact_payloads_is_still_read(tmp_path):
    """Before v4 large snapshots were stored as one row per customer with one-letter
    payload keys and dictionary codes; such a database keeps working after migrating."""
    path = tmp_path / "v3.db"
    Store.open(path, target_version=3).close()
    layout = [{"name": "notes", "type": "str", "dtype": "str", "key": "a"},
              {"name": "wait_days", "type": "int", "dtype": "int64", "key": "b"},
              {"name": "reason_T", "type": "str", "dtype": "str", "key": "c", "dict": ["T=10: 满 28 天", "T=4"]},
              {"name": "due", "type": "datetime", "dtype": "datetime64[ns, UTC+08:00]", "key": "d"}]
    con = sqlite3.connect(path)
    con.execute("INSERT INTO snapshots (id, kind, as_of, model_name, source_name, source_hash, created_at, "
                "row_count, meta, columns, replaced) VALUES (1, 'shortage', '2026-11-23', 'rite', 'a.xlsx', 'h', "
                "'2026-11-23T01:00:00+00:00', 2, '{}', ?, 0)", (json.dumps(layout),))
    con.executemany("INSERT INTO snapshot_rows (snapshot_id, customer_key, customer_id, name, phone, label, score, "
                    "payload, seq) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [("001", "001", "甲", "0139", "P0", 8.6,
                      json.dumps({"a": "要投诉", "b": 30, "c": 0, "d": "2026-11-23T11:00:00+08:00"}), 1),
                     ("002", "002", "乙", None, "P2", 4.5,
                      json.dumps({"a": None, "b": 9, "c": 1, "d": "2026-11-23T11:00:00+08:00"}), 0)])
    con.commit()
    con.close()
    with Store.open(path) as s:
        info = s.latest_snapshot("shortage")
        assert s.schema_version() == CURRENT_VERSION and info.storage == "rows"
        rows = s.snapshot_rows(info.id)
        assert rows["customer_key"].tolist() == ["002", "001"]  # the saved order (seq)
        assert rows["reason_T"].tolist() == ["T=4", "T=10: 满 28 天"] and rows["wait_days"].tolist() == [9, 30]
        assert rows["due"].iloc[0] == pd.Timestamp("2026-11-23 11:00", tz=TZ)
        assert s.snapshot_rows(info.id, fields=["notes"], keys=["001"])["notes"].tolist() == ["要投诉"]
        assert s.find_customers(info.id, "乙")["customer_key"].tolist() == ["002"]
        sid = s.save_snapshot("shortage", D2, "rite", "b.xlsx", "h2",
                              frame(3).assign(customer_key=["001", "x", "y"]), {}, now=NOW)
        assert s.snapshot(sid).storage == "arrow"
        hist = s.customer_rows("shortage", "001")  # one customer across both storages, oldest first
        assert hist["as_of"].tolist() == [D1, D2] and hist["label"].tolist() == ["P0", "P1"]
        assert hist["reason_T"].iloc[0] == "T=10: 满 28 天" and s.known_key("shortage", "002")


def test_a_database_from_a_newer_tierctl_is_refused(tmp_path):
    path = tmp_path / "new.db"
    Store.open(path).close()
    con = sqlite3.connect(path)
    con.execute("INSERT INTO schema_migrations VALUES (99, 'future', '2030-01-01T00:00:00+00:00')")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="更新版本"):
        Store.open(path)


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    bad = tmp_path / "notes.db"
    bad.write_text("this is not sqlite " * 100)
    with pytest.raises(StoreError, match="notes.db"):
        Store.open(bad)


def test_timestamps_are_timezone_aware_and_naive_ones_refused():
    t = AwareDateTime()
    assert t.process_bind_param(NOW, None) == "2026-11-24T01:00:00+00:00"
    back = t.process_result_value("2026-11-24T01:00:00+00:00", None)
    assert back == NOW and back.tzinfo is not None
    with pytest.raises(ValueError):
        t.process_bind_param(dt.datetime(2026, 11, 24, 9), None)  # noqa: DTZ001 - the point


# -- the snapshot API ------------------------------------------------------------------------
def test_save_and_read_back_keeps_order_types_and_text(store):
    f = frame(6)
    f = f.iloc[[3, 0, 5, 1, 4, 2]].reset_index(drop=True)  # not in key order
    sid = store.save_snapshot("shortage", D1, "rite", "a.xlsx", "abc", f, {"m": 1}, now=NOW)
    info = store.snapshot_on("shortage", D1)
    assert info.id == sid and info.row_count == 6 and info.meta == {"m": 1}
    assert info.created_at == NOW and info.source_hash == "abc" and info.model_name == "rite"
    back = store.snapshot_rows(sid)
    assert back["customer_key"].tolist() == f["customer_key"].tolist()  # the saved order
    assert back["customer_id"].tolist()[0] == "00003"
    assert back["phone"].tolist()[0].startswith("0138")
    for col in ("notes", "wait_days", "contacts_7d", "flag", "start", "due"):
        pd.testing.assert_series_equal(back[col], f[col], check_names=False)
    assert back["extra"].tolist() == f["extra"].tolist()
    assert back["score"].tolist() == f["score"].tolist()


def test_rows_of_chosen_fields_and_customers_only(store):
    f = frame(6)
    sid = store.save_snapshot("shortage", D1, "rite", "a.xlsx", "abc", f, {}, now=NOW)
    part = store.snapshot_rows(sid, fields=["notes", "contacts_7d", "flag", "due", "extra", "unknown"],
                               keys=["00003", "00001"], generic=("customer_key", "label"))
    assert list(part.columns) == ["customer_key", "label", "notes", "contacts_7d", "flag", "due", "extra"]
    assert part["customer_key"].tolist() == ["00001", "00003"]  # saved order, not the order asked
    assert part["contacts_7d"].iloc[0] is pd.NA and part["contacts_7d"].iloc[1] == 1
    assert part["flag"].iloc[0] is pd.NA and bool(part["flag"].iloc[1]) is True
    assert str(part["flag"].dtype) == "boolean" and str(part["contacts_7d"].dtype) == "Int64"
    assert part["due"].iloc[0] == pd.Timestamp("2026-11-24 11:00", tz=TZ)
    assert part["extra"].tolist() == [None, {"a": [1, 2]}]
    assert part["notes"].iloc[1] == '要"投诉"\n第二行'


def test_same_kind_and_date_replaces_never_duplicates(store):
    first = store.save_snapshot("shortage", D1, "rite", "a.xlsx", "h1", frame(6), {}, now=NOW)
    again = store.save_snapshot("shortage", D1, "rite", "a.xlsx", "h2", frame(3, label="P0"), {},
                                now=NOW + dt.timedelta(hours=1))
    assert again == first
    snaps = store.list_snapshots("shortage")
    assert len(snaps) == 1 and snaps[0].replaced == 1 and snaps[0].source_hash == "h2"
    back = store.snapshot_rows(first)
    assert len(back) == 3 and set(back["label"]) == {"P0"}
    with store.reading() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM snapshot_rows")).scalar() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM snapshot_data")).scalar() == 1  # the old one gone


def test_kinds_are_independent_and_dates_ordered(store):
    store.save_snapshot("shortage", D2, "rite", "a", "h", frame(3), {}, now=NOW)
    store.save_snapshot("shortage", D1, "rite", "a", "h", frame(3), {}, now=NOW)
    store.save_snapshot("rfm", D2, "rfm", "v.csv", "h", frame(3, label="重要价值"), {}, now=NOW)
    assert [s.as_of for s in store.list_snapshots("shortage")] == [D1, D2]
    assert store.latest_snapshot("shortage").as_of == D2
    assert store.latest_snapshot("shortage", before=D2).as_of == D1
    assert store.latest_snapshot("shortage", before=D1) is None
    assert store.snapshot_on("shortage", dt.date(2026, 1, 1)) is None
    rfm = store.latest_snapshot("rfm")
    assert set(store.snapshot_rows(rfm.id)["label"]) == {"重要价值"}
    assert store.list_snapshots("churn") == []
    with pytest.raises(NotFoundError):
        store.snapshot(999)


def test_generic_columns_are_optional_and_key_or_tier_accepted(store):
    f = pd.DataFrame({"key": ["a", "b"], "tier": ["P1", "P2"], "x": [1, 2]})
    sid = store.save_snapshot("grade", D1, "grade", None, None, f, None, now=NOW)
    back = store.snapshot_rows(sid)
    assert back["customer_key"].tolist() == ["a", "b"] and back["label"].tolist() == ["P1", "P2"]
    assert back["name"].isna().all() and back["x"].tolist() == [1, 2]


def test_duplicate_or_missing_keys_are_refused(store):
    with pytest.raises(StoreError, match="出现了多次"):
        store.save_snapshot("shortage", D1, "rite", None, None, pd.DataFrame({"customer_key": ["a", "a"]}), {})
    with pytest.raises(StoreError, match="客户 1 出现了多次"):  # the same key once as a number, once as text
        store.save_snapshot("shortage", D1, "rite", None, None, pd.DataFrame({"customer_key": [1, "1"]}), {})
    with pytest.raises(StoreError, match="customer_key"):
        store.save_snapshot("shortage", D1, "rite", None, None, pd.DataFrame({"id": ["a"]}), {})
    assert store.list_snapshots("shortage") == []


def test_large_snapshot_is_column_wise_in_parts_and_reads_back_the_same(store, monkeypatch):
    from tierctl.store import columnar

    monkeypatch.setattr(columnar, "PART_BYTES", 4096)  # force several blob parts
    monkeypatch.setattr(columnar, "BATCH_ROWS", 1000)  # and several record batches
    f = frame(6000)
    f["tier_reason"] = pd.Categorical(["T=10: 等待 ≥ 28 天", "T=4: 等待 7–13 天"] * 3000)
    sid = store.save_snapshot("shortage", D1, "rite", "a", "h", f, {}, now=NOW)
    info = store.snapshot(sid)
    assert info.storage == "arrow" and {c["name"] for c in info.layout} >= {"notes", "extra", "tier_reason"}
    with store.reading() as conn:
        parts = conn.execute(sa.text("SELECT count(*) FROM snapshot_data WHERE snapshot_id = :s"), {"s": sid}).scalar()
    assert parts > 1
    back = store.snapshot_rows(sid)
    for col in ("notes", "wait_days", "contacts_7d", "flag", "start", "due"):
        pd.testing.assert_series_equal(back[col], f[col], check_names=False)
    assert back["tier_reason"].tolist() == f["tier_reason"].astype(str).tolist()
    assert back["extra"].tolist()[:3] == [{"a": [1, 2]}, None, ["x"]]
    part = store.snapshot_rows(sid, fields=["notes", "due"], keys=["00002", "05999"])
    assert part["notes"].tolist() == ["=1+1", "=1+1"] and part["due"].iloc[0] == f["due"].iloc[2]
    # one customer across snapshots: found in a later record batch, every field decoded
    store.save_snapshot("shortage", D2, "rite", "a", "h", f.iloc[::-1].reset_index(drop=True), {}, now=NOW)
    row = store.customer_rows("shortage", "04500")
    assert row["as_of"].tolist() == [D1, D2] and row["wait_days"].tolist() == [4500, 4500]
    assert row["notes"].tolist() == ['要"投诉"\n第二行'] * 2 and row["contacts_7d"].tolist() == [1, 1]
    assert store.known_key("shortage", "05999") and not store.known_key("shortage", "06000")
    assert not store.known_key("shortage", 17) and len(store.find_customers(sid, 17)) == 0  # not text: no match
    hits = store.find_customers(sid, "客户17")
    assert hits["customer_key"].tolist() == ["00017"] and hits["phone"].tolist() == ["01380000017"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.one_of(st.none(), st.text()), min_size=1, max_size=12))
def test_any_text_survives_a_snapshot(texts):
    with Store.open(":memory:") as s:
        keys = [f"k{i}" for i in range(len(texts))]
        f = pd.DataFrame({"customer_key": keys, "name": pd.Series(texts, dtype="str"),
                          "t": pd.Series(texts, dtype="str"), "o": pd.Series(texts, dtype=object)})
        sid = s.save_snapshot("shortage", D1, "rite", None, None, f, {}, now=NOW)
        back = s.snapshot_rows(sid)
        pd.testing.assert_series_equal(back["t"], f["t"], check_names=False)
        assert back["o"].tolist() == texts
        assert [None if pd.isna(v) else v for v in back["name"]] == texts


# -- transactions ----------------------------------------------------------------------------
def test_a_transaction_that_fails_midway_leaves_nothing(tmp_path):
    path = tmp_path / "t.db"
    with Store.open(path) as s:
        s.save_snapshot("shortage", D1, "rite", "a", "h", frame(3), {}, now=NOW)
    before = table_counts(path)
    with Store.open(path) as s, pytest.raises(RuntimeError), s.transaction():
        s.save_snapshot("shortage", D2, "rite", "a", "h", frame(6), {}, now=NOW)
        s.save_snapshot("shortage", D1, "rite", "a", "h", frame(6), {}, now=NOW)  # replaces D1 …
        s.add_contact("shortage", customer_key="00001", at=NOW, result="x", logged_at=NOW)
        raise RuntimeError("power cut")  # … and then the run dies
    assert table_counts(path) == before
    with Store.open(path) as s:
        assert len(s.snapshot_rows(s.snapshot_on("shortage", D1).id)) == 3


def test_readonly_open_reads_without_touching_the_file(tmp_path):
    path = tmp_path / "r.db"
    with Store.open(path) as s:
        s.save_snapshot("shortage", D1, "rite", "a", "h", frame(3), {}, now=NOW)
    stamp = (path.stat().st_mtime_ns, path.read_bytes())
    with Store.open(path, readonly=True) as s:
        assert len(s.snapshot_rows(s.latest_snapshot("shortage").id)) == 3
        with pytest.raises(StoreError, match="只读"), s.transaction():
            pass
    assert (path.stat().st_mtime_ns, path.read_bytes()) == stamp
    assert not Path(f"{path}-wal").exists() and not Path(f"{path}-shm").exists()
    with pytest.raises(NotFoundError):
        Store.open(tmp_path / "missing.db", readonly=True)


KILL_SCRIPT = textwrap.dedent("""
    import datetime as dt, sys, time
    from pathlib import Path
    import pandas as pd
    from tierctl.store import core
    original = core.Store._write_snapshot_data
    def slow(self, *args, **kw):
        original(self, *args, **kw)          # the rows are written (uncommitted) …
        Path(sys.argv[2]).write_text("in")   # … tell the test, and hang until killed
        time.sleep(120)
    core.Store._write_snapshot_data = slow
    s = core.Store.open(sys.argv[1])
    n = 5000
    f = pd.DataFrame({"customer_key": [f"K{i}" for i in range(n)], "label": ["P0"] * n, "x": range(n)})
    now = dt.datetime(2026, 11, 24, 9, tzinfo=dt.timezone.utc)
    with s.transaction():
        s.add_contact("shortage", customer_key="K1", at=now, result="x", logged_at=now)
        s.save_snapshot("shortage", dt.date(2026, 11, 23), "rite", "a", "h", f, {}, now=now)  # replaces
        s.save_snapshot("shortage", dt.date(2026, 11, 24), "rite", "a", "h", f, {}, now=now)
""")


def test_kill_9_in_the_middle_of_a_write_leaves_the_state_before(tmp_path):
    path = tmp_path / "k.db"
    with Store.open(path) as s:
        s.save_snapshot("shortage", D1, "rite", "a", "h", frame(3), {}, now=NOW)
    before = table_counts(path)
    marker = tmp_path / "marker"
    script = tmp_path / "victim.py"
    script.write_text(KILL_SCRIPT)
    proc = subprocess.Popen([PY, str(script), str(path), str(marker)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, "the writer ended before reaching the middle of its transaction"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert integrity(path) == "ok"
    assert table_counts(path) == before
    with Store.open(path) as s:  # and the store keeps working
        assert [x.as_of for x in s.list_snapshots("shortage")] == [D1]
        assert len(s.snapshot_rows(s.latest_snapshot("shortage").id)) == 3
        s.save_snapshot("shortage", D2, "rite", "a", "h", frame(3), {}, now=NOW)


WRITER_SCRIPT = textwrap.dedent("""
    import datetime as dt, sys
    import pandas as pd
    from tierctl.store import Store
    who, start = sys.argv[2], int(sys.argv[3])
    f = pd.DataFrame({"customer_key": [f"{who}{i}" for i in range(1000)], "label": ["P1"] * 1000,
                      "notes": ["x" * 50] * 1000})
    now = dt.datetime(2026, 11, 24, 9, tzinfo=dt.timezone.utc)
    for i in range(8):
        s = Store.open(sys.argv[1])
        with s.transaction():
            s.save_snapshot("shortage", dt.date(2026, 1, 1) + dt.timedelta(days=start + i), "rite", who, "h", f, {},
                            now=now)
            s.add_contact("shortage", customer_key=f"{who}1", at=now, result=who, logged_at=now)
        s.save_snapshot("shared", dt.date(2026, 6, 1), "rite", who, "h", f, {}, now=now)  # both replace one day
        s.close()
""")


def test_two_processes_writing_at_once_do_not_corrupt_the_store(tmp_path):
    path = tmp_path / "c.db"
    Store.open(path).close()
    script = tmp_path / "writer.py"
    script.write_text(WRITER_SCRIPT)
    procs = [subprocess.Popen([PY, str(script), str(path), who, str(start)], cwd=ROOT, stderr=subprocess.PIPE)
             for who, start in (("A", 0), ("B", 100))]
    errs = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert integrity(path) == "ok"
    with Store.open(path) as s:
        snaps = s.list_snapshots("shortage")
        assert len(snaps) == 16 and all(x.row_count == 1000 for x in snaps)
        for x in snaps:
            keys = s.snapshot_rows(x.id, fields=[], generic=("customer_key",))["customer_key"]
            assert len(keys) == 1000 and keys.str[0].nunique() == 1 and keys.str[0].iloc[0] == x.source_name
        shared = s.list_snapshots("shared")
        assert len(shared) == 1 and shared[0].replaced == 15
        assert len(s.snapshot_rows(shared[0].id)) == 1000
        assert len(s.contacts_list("shortage")) == 16
