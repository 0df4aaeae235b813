"""Numbered schema migrations, recorded in the database (``schema_migrations``).

Each migration describes its own tables as they were at that version (never the current
:mod:`tierctl.store.schema`, which keeps moving), runs in one write transaction together
with the row that records it, and is applied at most once even when two processes open a
fresh database at the same moment: the applied versions are re-read inside the
transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from tierctl.errors import StoreError
from tierctl.store import fresh
from tierctl.store.schema import AwareDateTime


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[sa.Connection], None]
    rebuilds: bool = False  # rebuilds a parent table: SQLite's foreign keys off meanwhile


def _v1_snapshots(conn: sa.Connection) -> None:
    """Snapshots of every job kind, and the generic per-customer rows."""
    md = sa.MetaData()
    sa.Table(
        "snapshots", md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("model_name", sa.String(200)),
        sa.Column("source_name", sa.String(500)),
        sa.Column("source_hash", sa.String(128)),
        sa.Column("created_at", AwareDateTime, nullable=False),
        sa.Column("row_count", sa.Integer, nullable=False),
        sa.Column("meta", sa.JSON),
        sa.UniqueConstraint("kind", "as_of", name="uq_snapshots_kind_as_of"),
    )
    sa.Table(
        "snapshot_rows", md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("snapshot_id", sa.Integer, sa.ForeignKey("snapshots.id", ondelete="CASCADE"), nullable=False),
        sa.Column("customer_key", sa.String(200), nullable=False),
        sa.Column("customer_id", sa.String(200)),
        sa.Column("name", sa.String(200)),
        sa.Column("phone", sa.String(64)),
        sa.Column("label", sa.String(64)),
        sa.Column("score", sa.Float),
        sa.Column("payload", sa.JSON),
        sa.Index("ix_snapshot_rows_snapshot_key", "snapshot_id", "customer_key", unique=True),
        sa.Index("ix_snapshot_rows_key", "customer_key"),
    )
    md.create_all(conn)


def _v2_daily_loop(conn: sa.Connection) -> None:
    """The daily loop: alerts, the contact log, manual overrides.  Snapshots record their
    payload layout (so text stays text on reading) and how often a day was re-run; rows
    keep their position (``seq``) and are stored in key order, which makes the index on
    the customer key alone redundant (dropped: it halved the bulk-insert speed)."""
    conn.execute(sa.text("ALTER TABLE snapshots ADD COLUMN columns JSON"))
    conn.execute(sa.text("ALTER TABLE snapshots ADD COLUMN replaced INTEGER NOT NULL DEFAULT 0"))
    conn.execute(sa.text("ALTER TABLE snapshot_rows ADD COLUMN seq INTEGER"))
    conn.execute(sa.text("DROP INDEX IF EXISTS ix_snapshot_rows_key"))
    md = sa.MetaData()
    sa.Table(
        "alerts", md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("customer_key", sa.String(200), nullable=False),
        sa.Column("customer_id", sa.String(200)),
        sa.Column("name", sa.String(200)),
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("recipient", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("fired_on", sa.Date, nullable=False),
        sa.Column("fired_at", AwareDateTime, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("closed_at", AwareDateTime),
        sa.Column("closed_by", sa.String(200)),
        sa.Column("note", sa.Text),
        sa.Index("ix_alerts_kind_status", "kind", "status"),
        sa.Index("ix_alerts_kind_key", "kind", "customer_key"),
    )
    sa.Table(
        "contacts", md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("customer_key", sa.String(200), nullable=False),
        sa.Column("customer_id", sa.String(200)),
        sa.Column("name", sa.String(200)),
        sa.Column("at", AwareDateTime, nullable=False),
        sa.Column("result", sa.Text, nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("plan", sa.Text),
        sa.Column("done_at", AwareDateTime),
        sa.Column("by", sa.String(200)),
        sa.Column("score", sa.Float),
        sa.Column("label", sa.String(64)),
        sa.Column("owner", sa.String(200)),
        sa.Column("logged_at", AwareDateTime, nullable=False),
        sa.Index("ix_contacts_kind_key_at", "kind", "customer_key", "at"),
    )
    sa.Table(
        "overrides", md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("customer_key", sa.String(200), nullable=False),
        sa.Column("customer_id", sa.String(200)),
        sa.Column("name", sa.String(200)),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("previous_label", sa.String(64)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("by", sa.String(200)),
        sa.Column("created_at", AwareDateTime, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("ended_at", AwareDateTime),
        sa.Column("ended_by", sa.String(200)),
        sa.Column("end_reason", sa.Text),
        sa.Index("ix_overrides_kind_status", "kind", "status"),
        sa.Index("ix_overrides_kind_key", "kind", "customer_key"),
    )
    md.create_all(conn)


def _v3_followups(conn: sa.Connection) -> None:
    """Interventions and their follow-ups (churn job B, reusable by any kind): a contact
    records what was done and what it cost; ``followups`` holds the scheduled call-backs
    until a later contact closes them."""
    conn.execute(sa.text("ALTER TABLE contacts ADD COLUMN action TEXT"))
    conn.execute(sa.text("ALTER TABLE contacts ADD COLUMN cost FLOAT"))
    md = sa.MetaData()
    sa.Table(
        "followups", md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("customer_key", sa.String(200), nullable=False),
        sa.Column("customer_id", sa.String(200)),
        sa.Column("name", sa.String(200)),
        sa.Column("contact_id", sa.Integer),
        sa.Column("level", sa.String(64)),
        sa.Column("step_days", sa.Integer, nullable=False),
        sa.Column("due", sa.Date, nullable=False),
        sa.Column("owner", sa.String(200)),
        sa.Column("channel", sa.String(200)),
        sa.Column("detail", sa.Text),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", AwareDateTime, nullable=False),
        sa.Column("closed_at", AwareDateTime),
        sa.Column("closed_by_contact", sa.Integer),
        sa.Index("ix_followups_kind_status_due", "kind", "status", "due"),
        sa.Index("ix_followups_kind_key", "kind", "customer_key"),
    )
    md.create_all(conn)


def _v4_columnar_snapshots(conn: sa.Connection) -> None:
    """Snapshots stored column-wise: one compressed Arrow IPC file per snapshot, in blob
    parts (a million customers store in under a second instead of six).  Older
    snapshots keep their per-customer rows and are still read."""
    conn.execute(sa.text("ALTER TABLE snapshots ADD COLUMN storage VARCHAR(16) NOT NULL DEFAULT 'rows'"))
    md = sa.MetaData()
    sa.Table("snapshots", md, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table(
        "snapshot_data", md,
        sa.Column("snapshot_id", sa.Integer, sa.ForeignKey("snapshots.id", ondelete="CASCADE"),
                  primary_key=True, autoincrement=False),
        sa.Column("part", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    md.tables["snapshot_data"].create(conn)


def _v5_contact_latest(conn: sa.Connection) -> None:
    """Each customer's latest contact in a table of its own, filled from the log: the task
    list reads one row per customer instead of grouping every contact ever logged."""
    md = sa.MetaData()
    log = sa.Table("contacts", md, sa.Column("kind", sa.String(40)), sa.Column("customer_key", sa.String(200)),
                   sa.Column("at", sa.String(40)))
    latest = sa.Table(
        "contact_latest", md,
        sa.Column("kind", sa.String(40), primary_key=True),
        sa.Column("customer_key", sa.String(200), primary_key=True),
        sa.Column("last_at", sa.String(40), nullable=False),
    )
    latest.create(conn)
    # stored times are UTC ISO text: the greatest text is the latest time
    conn.execute(sa.insert(latest).from_select(
        ["kind", "customer_key", "last_at"],
        sa.select(log.c.kind, log.c.customer_key, sa.func.max(log.c.at)).group_by(log.c.kind, log.c.customer_key)))


def _v7_notify(conn: sa.Connection) -> None:
    """What the group robots were told (per robot and item, pending until the platform
    accepts it) and the alerts that escalated for want of an acknowledgement, at most once
    each; see :mod:`tierctl.store.notify`."""
    md = sa.MetaData()
    sa.Table(
        "notify_sent", md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("robot", sa.String(200), nullable=False),
        sa.Column("platform", sa.String(20), nullable=False),
        sa.Column("item", sa.String(400), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message_no", sa.Integer),
        sa.Column("claimed_at", AwareDateTime, nullable=False),
        sa.Column("sent_at", AwareDateTime),
        sa.UniqueConstraint("robot", "item", name="uq_notify_sent_robot_item"),
    )
    sa.Table(
        "alert_escalations", md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("alert_id", sa.Integer, nullable=False),
        sa.Column("customer_key", sa.String(200), nullable=False),
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("from_recipient", sa.String(200), nullable=False),
        sa.Column("to_recipient", sa.String(200), nullable=False),
        sa.Column("after_days", sa.Integer, nullable=False),
        sa.Column("working_days", sa.Boolean, nullable=False),
        sa.Column("due_on", sa.Date, nullable=False),
        sa.Column("escalated_at", AwareDateTime, nullable=False),
        sa.UniqueConstraint("alert_id", name="uq_alert_escalations_alert"),
        sa.Index("ix_alert_escalations_kind", "kind"),
    )
    md.create_all(conn)


def _v8_channels_and_assignments(conn: sa.Connection) -> None:
    """The channel of a contact (电话/短信/微信 …: bulk marks and imported execution
    records say how the customer was reached), and named owners: ``assignments`` holds
    the person a customer is assigned to with ``tierctl assign`` (it overrides the
    export's advisor column until changed or cleared)."""
    conn.execute(sa.text("ALTER TABLE contacts ADD COLUMN channel VARCHAR(40)"))
    md = sa.MetaData()
    sa.Table(
        "assignments", md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("customer_key", sa.String(200), nullable=False),
        sa.Column("customer_id", sa.String(200)),
        sa.Column("name", sa.String(200)),
        sa.Column("person", sa.String(200), nullable=False),
        sa.Column("previous_person", sa.String(200)),
        sa.Column("by", sa.String(200)),
        sa.Column("created_at", AwareDateTime, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("ended_at", AwareDateTime),
        sa.Column("ended_by", sa.String(200)),
        sa.Index("ix_assignments_kind_status", "kind", "status"),
        sa.Index("ix_assignments_kind_key", "kind", "customer_key"),
    )
    md.create_all(conn)


def _v9_contact_latest_result(conn: sa.Connection) -> None:
    """The latest contact's result beside its time: the task list tells a contact that did
    not reach the customer (未接通 …) from one that did without reading the whole log."""
    conn.execute(sa.text("ALTER TABLE contact_latest ADD COLUMN last_result TEXT"))
    conn.execute(sa.text(
        "UPDATE contact_latest SET last_result = (SELECT c.result FROM contacts c WHERE c.kind = contact_latest.kind"
        " AND c.customer_key = contact_latest.customer_key AND c.at = contact_latest.last_at"
        " ORDER BY c.id DESC LIMIT 1)"))


# v10: the tables a centre writes, and the indexes that lead with the job kind (they lead
# with the centre from v10 on: one centre's rows are found without reading the others')
_CENTRE_TABLES = ("snapshots", "alerts", "contacts", "contact_latest", "overrides", "followups", "assignments",
                  "notify_sent", "alert_escalations")
_V10_INDEXES: list[tuple[str, str, tuple[str, ...]]] = [
    ("alerts", "ix_alerts_kind_status", ("kind", "status")),
    ("alerts", "ix_alerts_kind_key", ("kind", "customer_key")),
    ("contacts", "ix_contacts_kind_key_at", ("kind", "customer_key", "at")),
    ("overrides", "ix_overrides_kind_status", ("kind", "status")),
    ("overrides", "ix_overrides_kind_key", ("kind", "customer_key")),
    ("followups", "ix_followups_kind_status_due", ("kind", "status", "due")),
    ("followups", "ix_followups_kind_key", ("kind", "customer_key")),
    ("assignments", "ix_assignments_kind_status", ("kind", "status")),
    ("assignments", "ix_assignments_kind_key", ("kind", "customer_key")),
    ("alert_escalations", "ix_alert_escalations_kind", ("kind",)),
]


def _v10_unique_tables(md: sa.MetaData, prefix: str) -> list[sa.Table]:
    """The three tables whose unique key gains the centre, as at v10."""
    def centre() -> sa.Column:
        return sa.Column("centre", sa.String(64), nullable=False, server_default="")

    return [
        sa.Table(
            f"{prefix}snapshots", md,
            sa.Column("id", sa.Integer, primary_key=True), centre(),
            sa.Column("kind", sa.String(40), nullable=False),
            sa.Column("as_of", sa.Date, nullable=False),
            sa.Column("model_name", sa.String(200)),
            sa.Column("source_name", sa.String(500)),
            sa.Column("source_hash", sa.String(128)),
            sa.Column("created_at", AwareDateTime, nullable=False),
            sa.Column("row_count", sa.Integer, nullable=False),
            sa.Column("meta", sa.JSON),
            sa.Column("columns", sa.JSON),
            sa.Column("replaced", sa.Integer, nullable=False, server_default="0"),
            sa.Column("storage", sa.String(16), nullable=False, server_default="rows"),
            sa.UniqueConstraint("centre", "kind", "as_of", name="uq_snapshots_centre_kind_as_of"),
        ),
        sa.Table(
            f"{prefix}contact_latest", md,
            sa.Column("centre", sa.String(64), primary_key=True, server_default=""),
            sa.Column("kind", sa.String(40), primary_key=True),
            sa.Column("customer_key", sa.String(200), primary_key=True),
            sa.Column("last_at", sa.String(40), nullable=False),
            sa.Column("last_result", sa.Text),
        ),
        sa.Table(
            f"{prefix}notify_sent", md,
            sa.Column("id", sa.Integer, primary_key=True), centre(),
            sa.Column("robot", sa.String(200), nullable=False),
            sa.Column("platform", sa.String(20), nullable=False),
            sa.Column("item", sa.String(400), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("message_no", sa.Integer),
            sa.Column("claimed_at", AwareDateTime, nullable=False),
            sa.Column("sent_at", AwareDateTime),
            sa.UniqueConstraint("centre", "robot", "item", name="uq_notify_sent_centre_robot_item"),
        ),
    ]


def _v10_centre(conn: sa.Connection) -> None:
    """A centre in every row (issue 18).  The rows already stored belong to the centre
    of the store that upgrades the database (``centre.id`` / ``--centre``: a database
    was one centre's until now); a unique key that held per job kind holds per centre
    and kind.  SQLite cannot change a table's unique key in place: those three tables
    are rebuilt (the snapshots' metadata only; their rows, in other tables, stay)."""
    centre = str(conn.info.get("tierctl_centre") or "default")
    rebuilt = ("snapshots", "contact_latest", "notify_sent")
    if conn.dialect.name == "sqlite":
        for new in _v10_unique_tables(sa.MetaData(), "_v10_"):
            old = new.name.removeprefix("_v10_")
            new.create(conn)
            cols = [c.name for c in new.columns if c.name != "centre"]
            names = ", ".join(f'"{c}"' for c in cols)
            conn.execute(sa.text(f'INSERT INTO {new.name} (centre, {names}) SELECT :c, {names} FROM {old}'),
                         {"c": centre})
            conn.execute(sa.text(f"DROP TABLE {old}"))
            conn.execute(sa.text(f"ALTER TABLE {new.name} RENAME TO {old}"))
        bad = conn.execute(sa.text("PRAGMA foreign_key_check")).first()
        if bad is not None:
            raise StoreError(f"升级到结构版本 10 时发现损坏的引用（表 {bad[0]}）", hint="请从备份恢复后重试")
    else:
        for t in rebuilt:
            conn.execute(sa.text(f"ALTER TABLE {t} ADD COLUMN centre VARCHAR(64) NOT NULL DEFAULT ''"))
        conn.execute(sa.text("ALTER TABLE snapshots DROP CONSTRAINT uq_snapshots_kind_as_of, ADD CONSTRAINT"
                             " uq_snapshots_centre_kind_as_of UNIQUE (centre, kind, as_of)"))
        conn.execute(sa.text("ALTER TABLE contact_latest DROP CONSTRAINT contact_latest_pkey,"
                             " ADD PRIMARY KEY (centre, kind, customer_key)"))
        conn.execute(sa.text("ALTER TABLE notify_sent DROP CONSTRAINT uq_notify_sent_robot_item, ADD CONSTRAINT"
                             " uq_notify_sent_centre_robot_item UNIQUE (centre, robot, item)"))
        for t in rebuilt:
            conn.execute(sa.text(f"UPDATE {t} SET centre = :c"), {"c": centre})
    for t in _CENTRE_TABLES:
        if t not in rebuilt:
            conn.execute(sa.text(f"ALTER TABLE {t} ADD COLUMN centre VARCHAR(64) NOT NULL DEFAULT ''"))
            conn.execute(sa.text(f"UPDATE {t} SET centre = :c"), {"c": centre})
    for table, name, on in _V10_INDEXES:
        conn.execute(sa.text(f"DROP INDEX IF EXISTS {name}"))
        conn.execute(sa.text(f"CREATE INDEX {name.replace('_kind', '_centre_kind', 1)} ON {table}"
                             f" (centre, {', '.join(on)})"))


MIGRATIONS: list[Migration] = [
    Migration(1, "snapshots and per-customer rows", _v1_snapshots),
    Migration(2, "alerts, contacts, overrides; payload layout", _v2_daily_loop),
    Migration(3, "contact action and cost; scheduled follow-ups", _v3_followups),
    Migration(4, "snapshots stored column-wise (Arrow IPC blobs)", _v4_columnar_snapshots),
    Migration(5, "each customer's latest contact", _v5_contact_latest),
    Migration(7, "robot notifications sent; alert escalations", _v7_notify),
    Migration(8, "contact channel; named owners (assignments)", _v8_channels_and_assignments),
    Migration(9, "the latest contact's result", _v9_contact_latest_result),
    Migration(10, "a centre in every row (regions on one database)", _v10_centre, rebuilds=True),
]
CURRENT_VERSION = MIGRATIONS[-1].version

_LEDGER = sa.Table(
    "schema_migrations", sa.MetaData(),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("applied_at", AwareDateTime, nullable=False),
)


def applied_versions(conn: sa.Connection) -> set[int]:
    if not sa.inspect(conn).has_table("schema_migrations"):
        return set()
    return {int(v) for v in conn.execute(sa.select(_LEDGER.c.version)).scalars()}


def schema_version(conn: sa.Connection) -> int:
    v = applied_versions(conn)
    return max(v) if v else 0


def _refuse_newer(have: set[int], path: str) -> None:
    if have and max(have) > CURRENT_VERSION:
        raise StoreError(f"历史数据库 {path} 由更新版本的 tierctl 创建（结构版本 {max(have)}，"
                         f"本程序只认识到 {CURRENT_VERSION}）",
                         hint="请升级 tierctl，或用 --db 指定另一个数据库")


def pending(have: set[int], target: int | None = None) -> list[Migration]:
    target = CURRENT_VERSION if target is None else target
    return [m for m in MIGRATIONS if m.version <= target and m.version not in have]


def migrate(begin_write: Callable[..., object], *, target: int | None = None,
            now: Callable[[], dt.datetime] | None = None, path: str = "",
            begin_read: Callable[[], object] | None = None) -> list[int]:
    """Apply every pending migration up to ``target`` (default: all).  ``begin_write``
    (called with ``migration=``) returns a context manager yielding a connection inside
    a write transaction — on a server one that holds the migrations' lock, so two
    centres opening a fresh database at once apply each step once.  With
    ``begin_read``, an up-to-date database is recognised without a write transaction.
    Returns the versions applied."""
    clock = now or (lambda: dt.datetime.now(dt.UTC))
    if begin_read is not None:
        with begin_read() as conn:  # type: ignore[attr-defined]
            have = applied_versions(conn)
        _refuse_newer(have, path)
        if not pending(have, target):
            return []
    every = target is None or target >= CURRENT_VERSION
    k = fresh.key(MIGRATIONS)
    if every and fresh.known(k):  # an empty SQLite database: the remembered schema in one step
        with begin_write(migration=MIGRATIONS[0]) as conn:  # type: ignore[attr-defined]
            if fresh.replay(conn, k):
                conn.execute(sa.insert(_LEDGER), [{"version": m.version, "name": m.name, "applied_at": clock()}
                                                  for m in MIGRATIONS])
                return [m.version for m in MIGRATIONS]
    done: list[int] = []
    from_empty = False
    for m in MIGRATIONS:
        if m.version > (CURRENT_VERSION if target is None else target):
            break
        with begin_write(migration=m) as conn:  # type: ignore[attr-defined]
            if m is MIGRATIONS[0]:
                from_empty = every and not fresh.known(k) and fresh.is_empty(conn)
            _LEDGER.create(conn, checkfirst=True)
            have = applied_versions(conn)
            _refuse_newer(have, path)
            if m.version in have:
                continue
            m.apply(conn)
            conn.execute(sa.insert(_LEDGER).values(version=m.version, name=m.name, applied_at=clock()))
            done.append(m.version)
            if from_empty and m is MIGRATIONS[-1] and len(done) == len(MIGRATIONS):
                fresh.remember(conn, k)  # every step made here, from nothing: the schema to replay
    return done
