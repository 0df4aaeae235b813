"""Moved to :mod:`tierctl.daily.calendar`."""

# moved: shim for the parallel redesign, removed at merge
from tierctl.daily.calendar import HolidayYear, load_holiday_file, load_holiday_files  # noqa: F401
