"""Moved to :mod:`tierctl.render.values`, :mod:`tierctl.render.views` and :mod:`tierctl.render.figures`."""
# moved: shim for the parallel redesign, removed at merge
from tierctl.render.figures import *  # noqa: F403
from tierctl.render.values import *  # noqa: F403
from tierctl.render.values import _empty, _missing  # noqa: F401
from tierctl.render.views import *  # noqa: F403
