"""Moved to :mod:`tierctl.kernels.background`."""

# moved: shim for the parallel redesign, removed at merge
from tierctl.kernels.background import *  # noqa: F403
from tierctl.kernels.background import start  # noqa: F401
