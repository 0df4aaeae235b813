"""Moved to :mod:`tierctl.render.sms_platform`."""
# moved: shim for the parallel redesign, removed at merge
from tierctl.render.sms_platform import *  # noqa: F403
