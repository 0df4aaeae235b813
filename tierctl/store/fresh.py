"""A new SQLite store in one step: the schema the migrations leave behind, remembered.

Migrating an empty SQLite database runs every numbered migration (:mod:`.migrations`)
in its own transaction, building SQLAlchemy tables and a rebuild of the parent tables on
the way: about 35 ms.  A process that creates many stores (the test suite, a region
report over many files) pays that each time.  The first store a process migrates from
empty is looked at once it is done: its CREATE statements (``sqlite_master``, in the
order SQLite keeps them) are the schema every empty database ends up with under the
same migrations.  Later empty databases get those statements in one transaction, with
the same ledger rows (``schema_migrations``).

The remembered schema is keyed by the migrations themselves (version, name and the
function that applies each), so a changed list is migrated step by step again; a
database that held anything when it was opened, a server, or a partial target is always
migrated step by step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

_SCHEMAS: dict[tuple[Any, ...], list[str]] = {}  # migrations' key -> the CREATE statements
_ORDER = {"table": 0, "index": 1, "view": 2, "trigger": 3}


def key(migrations: Sequence[Any]) -> tuple[Any, ...]:
    return tuple((m.version, m.name, m.apply, m.rebuilds) for m in migrations)


def known(k: tuple[Any, ...]) -> bool:
    return k in _SCHEMAS


def is_empty(conn: sa.Connection) -> bool:
    """An SQLite database with nothing in it (no table, index, view or trigger)."""
    if conn.dialect.name != "sqlite":
        return False
    return conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar() == 0


def _statements(conn: sa.Connection) -> list[str] | None:
    """The CREATE statements of the database, tables first (then indexes, views,
    triggers; each kind in the order they were made); None when a table other than the
    ledger holds a row (then the migrations do more than make a schema)."""
    rows = conn.exec_driver_sql("SELECT type, name, sql FROM sqlite_master ORDER BY rowid").all()
    for kind, name, _ in rows:
        if kind == "table" and name != "schema_migrations":
            quoted = '"' + str(name).replace('"', '""') + '"'
            if conn.exec_driver_sql(f"SELECT 1 FROM {quoted} LIMIT 1").first() is not None:
                return None
    made = [(_ORDER.get(kind, 9), i, sql) for i, (kind, name, sql) in enumerate(rows)
            if sql is not None and not str(name).startswith("sqlite_")]
    return [sql for _, _, sql in sorted(made)]


def remember(conn: sa.Connection, k: tuple[Any, ...]) -> None:
    """Keep the schema of ``conn``'s database (just migrated from empty) for ``k``."""
    script = _statements(conn)
    if script is not None:
        _SCHEMAS[k] = script


def replay(conn: sa.Connection, k: tuple[Any, ...]) -> bool:
    """Make the remembered schema in ``conn``'s database if it is an empty SQLite one:
    True when done (the caller adds the ledger rows in the same transaction)."""
    script = _SCHEMAS.get(k)
    if script is None or not is_empty(conn):
        return False
    for sql in script:
        conn.exec_driver_sql(sql)
    return True
