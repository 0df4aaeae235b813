"""Moved to :mod:`tierctl.daily.cadence`."""

# moved: shim for the parallel redesign, removed at merge
from tierctl.daily.cadence import *  # noqa: F403
from tierctl.daily.cadence import ContactPolicy, CrisisResponse, days_text, effective, load_policy  # noqa: F401
