"""The closed loop of job B, now in :mod:`tierctl.churn` (history, report, workbook, touches)."""
# moved: shim for the parallel redesign, removed at merge

from tierctl.churn.history import *  # noqa: F403
from tierctl.churn.history import (  # noqa: F401
    FOLLOWUP_COLUMNS,
    KIND,
    TASK_KIND,
    _resolve,
    at_risk_meta,
    followup_records,
    followups_due,
    latest_customers,
    log_intervention,
    save_result,
    snapshot_frame,
    snapshot_meta,
)
from tierctl.churn.report import *  # noqa: F403
from tierctl.churn.report import (  # noqa: F401
    SEED_TABLE,
    TABLE_COLUMNS,
    LoopReport,
    loop_report,
    read_table,
    seed_report,
    table_report,
)
from tierctl.churn.touches import *  # noqa: F403
from tierctl.churn.touches import (  # noqa: F401
    TOUCH_LABELS,
    TOUCH_LABELS_EN,
    DraftedTouches,
    draft_touches,
    touch_template,
    touches_json,
)
from tierctl.churn.workbook import *  # noqa: F403
from tierctl.churn.workbook import EFFECT_TEXT, STATUS_TEXT, WINBACK_TEXT, write_report_xlsx  # noqa: F401
