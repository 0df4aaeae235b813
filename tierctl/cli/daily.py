"""Moved: the daily loop's commands are in :mod:`tierctl.cli.history` (history, why,
override), :mod:`tierctl.cli.tasks`, :mod:`tierctl.cli.contact` (contact, contacts export),
:mod:`tierctl.cli.alerts`; the hooks ``tierctl score`` calls in :mod:`tierctl.cli.morning`;
what they share in :mod:`tierctl.cli.loop_common` and :mod:`tierctl.cli.options`.
"""

# moved: shim for the parallel redesign, removed at merge
# ruff: noqa: F401
from tierctl.cli.alerts import ALERT_CSV_COLUMNS, ALERT_STATUS, alerts_ack, alerts_app, alerts_main
from tierctl.cli.contact import (
    _contact_segment,
    contact,
    contacts_app,
    contacts_export,
    write_record_xlsx,
)
from tierctl.cli.history import EVENT_LABEL, history, override, why
from tierctl.cli.loop_common import (
    LIST_LIMIT,
    TIER_STYLE,
    _due_text,
    _e,
    _open,
    _parse_at,
    _short,
    _show_warnings,
    _tier,
    _who,
    work_calendar,
)
from tierctl.cli.morning import (
    after_score,
    alerts_text,
    changes_text,
    open_for_score,
    previous_for,
    result_from_store,
)
from tierctl.cli.options import ByOpt, CustomerArg, DateOpt, HolidaysOpt
from tierctl.cli.tasks import (
    CHURN_KIND,
    VIEWS,
    _show_churn_followups,
    _with_churn_followups,
    crisis_text,
    tasks,
    tasks_frame,
)
