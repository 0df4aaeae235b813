"""Low-risk upkeep touches, now :mod:`tierctl.churn.festivals`."""
# moved: shim for the parallel redesign, removed at merge

from tierctl.churn.festivals import *  # noqa: F403
from tierctl.churn.festivals import (  # noqa: F401
    CALENDARS,
    FEB29_POLICIES,
    TOUCH_COLUMNS,
    TOUCH_KINDS,
    Festival,
    UpkeepRules,
    birthday_in_year,
    check_fields,
    festival_dates,
    touches,
)
