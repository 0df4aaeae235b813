"""The fixed clock the tests use, without importing pytest fixtures."""

import datetime as dt

TZ = dt.timezone(dt.timedelta(hours=8))
AS_OF = dt.date(2026, 11, 24)
NOW = dt.datetime(2026, 11, 24, 9, 0, tzinfo=TZ)
