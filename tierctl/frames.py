"""Moved to :mod:`tierctl.kernels.keyjoin`."""

# moved: shim for the parallel redesign, removed at merge
from tierctl.kernels.keyjoin import *  # noqa: F403
from tierctl.kernels.keyjoin import _arrow_keys, key_positions, same_keys  # noqa: F401
