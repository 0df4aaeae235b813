"""The current schema, as SQLAlchemy Core tables (what queries are written against).

Migrations (:mod:`tierctl.store.migrations`) create and alter these tables step by step;
this module only describes the result.  Everything is Core, no ORM and no SQLite-only
types: the same tables live in an embedded SQLite file or on a PostgreSQL server.

v10 (issue 18): every table a centre writes has a ``centre`` column (the centre id of
the :class:`~tierctl.store.core.Store` that wrote the row; an insert through these tables
that leaves it out gets the writing store's centre).  Rows of a snapshot
(``snapshot_data``, ``snapshot_rows``) belong to their snapshot's centre.

Timestamps are stored as ISO 8601 text in UTC (``2026-11-24T01:00:00+00:00``): they sort
as text, and reading one gives back a timezone-aware ``datetime``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa


class AwareDateTime(sa.types.TypeDecorator):
    """A timezone-aware datetime stored as UTC ISO text; naive values are refused."""

    impl = sa.String(40)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("tierctl stores only timezone-aware timestamps")
        return value.astimezone(dt.UTC).isoformat()

    def process_result_value(self, value: Any, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return dt.datetime.fromisoformat(value)


def utc_text(value: dt.datetime) -> str:
    """The stored text of an aware datetime (for comparisons written by hand)."""
    return AwareDateTime().process_bind_param(value, None) or ""


def writing_centre(context: Any) -> str | None:
    """The centre of the store whose connection runs the insert (see Store._begin_write)."""
    return context.connection.info.get("tierctl_centre")


def centre_column() -> sa.Column:
    return sa.Column("centre", sa.String(64), nullable=False, default=writing_centre, server_default="")


metadata = sa.MetaData()

schema_migrations = sa.Table(
    "schema_migrations", metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("applied_at", AwareDateTime, nullable=False),
)

# One row per (job kind, as-of date): re-running a day replaces its rows.
snapshots = sa.Table(
    "snapshots", metadata,
    centre_column(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("model_name", sa.String(200)),
    sa.Column("source_name", sa.String(500)),
    sa.Column("source_hash", sa.String(128)),
    sa.Column("created_at", AwareDateTime, nullable=False),
    sa.Column("row_count", sa.Integer, nullable=False, default=0),
    sa.Column("meta", sa.JSON),
    # v2: the payload layout ([{"name", "type", "dtype", "dict"?}]) and how often the day was re-run
    sa.Column("columns", sa.JSON),
    sa.Column("replaced", sa.Integer, nullable=False, server_default="0"),
    # v4: "arrow" — the rows are one compressed Arrow IPC file in snapshot_data;
    # "rows" — one snapshot_rows row per customer (snapshots written before v4)
    sa.Column("storage", sa.String(16), nullable=False, server_default="rows"),
    sa.UniqueConstraint("centre", "kind", "as_of", name="uq_snapshots_centre_kind_as_of"),  # v10
)

# v4: a snapshot's rows, column-wise (see tierctl.store.columnar), in blob parts
snapshot_data = sa.Table(
    "snapshot_data", metadata,
    sa.Column("snapshot_id", sa.Integer, sa.ForeignKey("snapshots.id", ondelete="CASCADE"), primary_key=True,
              autoincrement=False),
    sa.Column("part", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

# Snapshots written before v4: one generic row per customer (read, no longer written).
snapshot_rows = sa.Table(
    "snapshot_rows", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("snapshot_id", sa.Integer, sa.ForeignKey("snapshots.id", ondelete="CASCADE"), nullable=False),
    sa.Column("customer_key", sa.String(200), nullable=False),
    sa.Column("customer_id", sa.String(200)),
    sa.Column("name", sa.String(200)),
    sa.Column("phone", sa.String(64)),
    sa.Column("label", sa.String(64)),
    sa.Column("score", sa.Float),
    sa.Column("payload", sa.JSON),
    # v2: the row's position in the saved frame.  Rows are inserted sorted by customer
    # key (so the one index below grows at its end: a million rows store in seconds);
    # ``seq`` gives the job's own order back.
    sa.Column("seq", sa.Integer),
    # also serves "one customer across snapshots": snapshots are few, so a lookup per
    # snapshot beats keeping a second index on every row
    sa.Index("ix_snapshot_rows_snapshot_key", "snapshot_id", "customer_key", unique=True),
)

alerts = sa.Table(
    "alerts", metadata,
    centre_column(),
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
    sa.Column("status", sa.String(16), nullable=False),  # open | acked | resolved
    sa.Column("closed_at", AwareDateTime),
    sa.Column("closed_by", sa.String(200)),
    sa.Column("note", sa.Text),
    sa.Index("ix_alerts_centre_kind_status", "centre", "kind", "status"),
    sa.Index("ix_alerts_centre_kind_key", "centre", "kind", "customer_key"),
)

contacts = sa.Table(
    "contacts", metadata,
    centre_column(),
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
    # v3: what was done and what it cost (churn interventions)
    sa.Column("action", sa.Text),
    sa.Column("cost", sa.Float),
    # v8: how the customer was reached (a key of the contacts model's channels: phone, sms …)
    sa.Column("channel", sa.String(40)),
    sa.Index("ix_contacts_centre_kind_key_at", "centre", "kind", "customer_key", "at"),
)

# v5: each customer's latest contact, kept with every contact logged (the task list reads
# this instead of grouping the whole log each morning)
contact_latest = sa.Table(
    "contact_latest", metadata,
    sa.Column("centre", sa.String(64), primary_key=True, default=writing_centre, server_default=""),  # v10
    sa.Column("kind", sa.String(40), primary_key=True),
    sa.Column("customer_key", sa.String(200), primary_key=True),
    sa.Column("last_at", AwareDateTime, nullable=False),
    sa.Column("last_result", sa.Text),  # v9
)

overrides = sa.Table(
    "overrides", metadata,
    centre_column(),
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
    sa.Column("status", sa.String(16), nullable=False),  # active | cleared | ended
    sa.Column("ended_at", AwareDateTime),
    sa.Column("ended_by", sa.String(200)),
    sa.Column("end_reason", sa.Text),
    sa.Index("ix_overrides_centre_kind_status", "centre", "kind", "status"),
    sa.Index("ix_overrides_centre_kind_key", "centre", "kind", "customer_key"),
)

# v3: follow-ups scheduled after an intervention; a later contact closes them.
followups = sa.Table(
    "followups", metadata,
    centre_column(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("customer_key", sa.String(200), nullable=False),
    sa.Column("customer_id", sa.String(200)),
    sa.Column("name", sa.String(200)),
    sa.Column("contact_id", sa.Integer),  # the contact that scheduled it
    sa.Column("level", sa.String(64)),
    sa.Column("step_days", sa.Integer, nullable=False),
    sa.Column("due", sa.Date, nullable=False),
    sa.Column("owner", sa.String(200)),
    sa.Column("channel", sa.String(200)),
    sa.Column("detail", sa.Text),
    sa.Column("status", sa.String(16), nullable=False),  # open | done | superseded
    sa.Column("created_at", AwareDateTime, nullable=False),
    sa.Column("closed_at", AwareDateTime),
    sa.Column("closed_by_contact", sa.Integer),
    sa.Index("ix_followups_centre_kind_status_due", "centre", "kind", "status", "due"),
    sa.Index("ix_followups_centre_kind_key", "centre", "kind", "customer_key"),
)

# v8: named owners — the person a customer is assigned to (``tierctl assign``), which
# overrides the export's advisor column until changed or cleared
assignments = sa.Table(
    "assignments", metadata,
    centre_column(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("customer_key", sa.String(200), nullable=False),
    sa.Column("customer_id", sa.String(200)),
    sa.Column("name", sa.String(200)),
    sa.Column("person", sa.String(200), nullable=False),
    sa.Column("previous_person", sa.String(200)),
    sa.Column("by", sa.String(200)),
    sa.Column("created_at", AwareDateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # active | replaced | cleared
    sa.Column("ended_at", AwareDateTime),
    sa.Column("ended_by", sa.String(200)),
    sa.Index("ix_assignments_centre_kind_status", "centre", "kind", "status"),
    sa.Index("ix_assignments_centre_kind_key", "centre", "kind", "customer_key"),
)

# v7: what the group robots were told, and which alerts escalated (see :mod:`tierctl.store.notify`)
notify_sent = sa.Table(
    "notify_sent", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    centre_column(),  # v10
    sa.Column("robot", sa.String(200), nullable=False),
    sa.Column("platform", sa.String(20), nullable=False),
    sa.Column("item", sa.String(400), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending | sent
    sa.Column("message_no", sa.Integer),
    sa.Column("claimed_at", AwareDateTime, nullable=False),
    sa.Column("sent_at", AwareDateTime),
    sa.UniqueConstraint("centre", "robot", "item", name="uq_notify_sent_centre_robot_item"),
)

alert_escalations = sa.Table(
    "alert_escalations", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    centre_column(),  # v10
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
    sa.Index("ix_alert_escalations_centre_kind", "centre", "kind"),
)
