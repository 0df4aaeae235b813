"""Moved: job A's daily loop on the store lives in :mod:`tierctl.daily` (the store imports
no job) — :mod:`tierctl.daily.history` (a morning run recorded), :mod:`tierctl.daily.reading`,
:mod:`tierctl.daily.reports`, :mod:`tierctl.daily.actions`; the file hash in
:mod:`tierctl.kernels.file_hash`.
"""

# moved: shim for the parallel redesign, removed at merge
# ruff: noqa: F401
from tierctl.daily.actions import (
    EXPORT_COLUMNS,
    clear_override,
    contacts_record,
    log_contact,
    set_override,
)
from tierctl.daily.history import (
    PREV_FIELDS,
    _alert_records,
    _alerts_known,
    _not_listed,
    _plain_records,
    _prev_rows,
    _severity_order,
    _supersede,
    alert_severity,
    encode_snapshot,
    previous_frames,
    record_run,
)
from tierctl.daily.reading import (
    NOT_LISTED,
    _crisis_response,
    _dims,
    _last_contact_of,
    _local,
    _model_for,
    _policy,
    _tiers,
    _who,
    apply_late_overrides,
    last_contacts,
    load_result,
    resolve_customer,
    task_rows,
)
from tierctl.daily.reports import (
    FACT_KEYS,
    _contact_policy,
    _fact,
    _with_escalations,
    ack_alerts,
    alerts_report,
    crisis_note,
    history_report,
    ordered_tasks,
    tasks_report,
    why_report,
)
from tierctl.daily.values import KIND
from tierctl.kernels.file_hash import sha256_file, sha256_in_background

__all__ = ["NOT_LISTED", "ack_alerts", "alerts_report", "clear_override", "contacts_record", "history_report",
           "load_result", "log_contact", "previous_frames", "record_run", "resolve_customer", "set_override",
           "sha256_file", "sha256_in_background", "tasks_report", "why_report"]
