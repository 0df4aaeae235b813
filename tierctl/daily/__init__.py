"""The daily loop of job A (parts shortage): what changed since the previous run, which
alerts fire, who is due for contact, working-day deadlines, named owners, contacts back
in bulk, and what the loop stores and reads back.

Pure parts (frames and plain values in and out, no database, no clock, no files):
:mod:`~tierctl.daily.values`, :mod:`~tierctl.daily.snapshot`, :mod:`~tierctl.daily.changes`,
:mod:`~tierctl.daily.alerts`, :mod:`~tierctl.daily.tasks`, :mod:`~tierctl.daily.cadence`,
:mod:`~tierctl.daily.calendar`, :mod:`~tierctl.daily.owners`.  On the store:
:mod:`~tierctl.daily.history` (a morning run recorded), :mod:`~tierctl.daily.reading`,
:mod:`~tierctl.daily.reports`, :mod:`~tierctl.daily.actions`, :mod:`~tierctl.daily.contacts`.

The names the former module ``tierctl.daily`` offered are re-exported here, on first use:
the job's scorer imports :mod:`tierctl.daily.cadence`, which must not load the parts that
import the scorer back.
"""

# ruff: noqa: F401 - the TYPE_CHECKING imports tell type checkers what the lazy re-exports are
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tierctl.daily.alerts import (
        alert_in_english,
        alert_recipients_in_english,
        alerts_to_fire,
        superseded,
    )
    from tierctl.daily.calendar import WorkCalendar
    from tierctl.daily.changes import (
        _listing_causes,
        _ranks,
        change_causes,
        diff_snapshots,
        explain,
        first_n,
        pick_week_ago,
        tier_events,
        tier_moves,
    )
    from tierctl.daily.snapshot import (
        _NAT,
        _utc_ns,
        apply_overrides,
        attach_policy,
        carry_forward,
        model_meta,
        override_line,
        result_from_rows,
        snapshot_frame,
    )
    from tierctl.daily.tasks import (
        TASK_FIELDS,
        TASK_WORK,
        _fmt_delta,
        _iso_each,
        _utc_series,
        compute_tasks,
        describe_tasks,
        order_tasks,
        task_records,
    )
    from tierctl.daily.values import (
        CALL_TIERS,
        EVENING_MIN_DAYS,
        KIND,
        OVERRIDE_ID,
        POLICY_COLUMNS,
        _after_colon,
        _isna,
        _lines,
        _plain,
        _records,
        _rule_id,
        _who,
    )
    from tierctl.kernels.keyjoin import key_positions

_WHERE = {
    "CALL_TIERS": "tierctl.daily.values",
    "EVENING_MIN_DAYS": "tierctl.daily.values",
    "KIND": "tierctl.daily.values",
    "OVERRIDE_ID": "tierctl.daily.values",
    "POLICY_COLUMNS": "tierctl.daily.values",
    "TASK_FIELDS": "tierctl.daily.tasks",
    "TASK_WORK": "tierctl.daily.tasks",
    "WorkCalendar": "tierctl.daily.calendar",
    "_NAT": "tierctl.daily.snapshot",
    "_after_colon": "tierctl.daily.values",
    "_fmt_delta": "tierctl.daily.tasks",
    "_isna": "tierctl.daily.values",
    "_iso_each": "tierctl.daily.tasks",
    "_lines": "tierctl.daily.values",
    "_listing_causes": "tierctl.daily.changes",
    "_plain": "tierctl.daily.values",
    "_ranks": "tierctl.daily.changes",
    "_records": "tierctl.daily.values",
    "_rule_id": "tierctl.daily.values",
    "_utc_ns": "tierctl.daily.snapshot",
    "_utc_series": "tierctl.daily.tasks",
    "_who": "tierctl.daily.values",
    "alert_in_english": "tierctl.daily.alerts",
    "alert_recipients_in_english": "tierctl.daily.alerts",
    "alerts_to_fire": "tierctl.daily.alerts",
    "apply_overrides": "tierctl.daily.snapshot",
    "attach_policy": "tierctl.daily.snapshot",
    "carry_forward": "tierctl.daily.snapshot",
    "change_causes": "tierctl.daily.changes",
    "compute_tasks": "tierctl.daily.tasks",
    "describe_tasks": "tierctl.daily.tasks",
    "diff_snapshots": "tierctl.daily.changes",
    "explain": "tierctl.daily.changes",
    "first_n": "tierctl.daily.changes",
    "key_positions": "tierctl.kernels.keyjoin",
    "model_meta": "tierctl.daily.snapshot",
    "order_tasks": "tierctl.daily.tasks",
    "override_line": "tierctl.daily.snapshot",
    "pick_week_ago": "tierctl.daily.changes",
    "result_from_rows": "tierctl.daily.snapshot",
    "snapshot_frame": "tierctl.daily.snapshot",
    "superseded": "tierctl.daily.alerts",
    "task_records": "tierctl.daily.tasks",
    "tier_events": "tierctl.daily.changes",
    "tier_moves": "tierctl.daily.changes",
}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'tierctl.daily' has no attribute {name!r}")
    value = getattr(importlib.import_module(where), name)
    globals()[name] = value
    return value


__all__ = sorted(n for n in _WHERE if not n.startswith("_"))
