# moved: shim for the parallel redesign, removed at merge
from tierctl.rfm.report import *  # noqa: F403
from tierctl.rfm.report import BASIS_TEXT, QUALITY_LABELS, STREAM_ABOVE  # noqa: F401
from tierctl.rfm.report_migration import write_migration  # noqa: F401
