"""Moved to :mod:`tierctl.render.plain_reasons`."""
# moved: shim for the parallel redesign, removed at merge
from tierctl.render.plain_reasons import *  # noqa: F403
