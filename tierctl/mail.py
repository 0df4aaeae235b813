"""Moved to :mod:`tierctl.render.mail`."""
# moved: shim for the parallel redesign, removed at merge
from tierctl.render.mail import *  # noqa: F403
