"""The I/O edge of customer grading, now in the :mod:`tierctl.grade` package
(``history``: the store; ``report``: the 降级说明函; ``ingest``: the overrides file)."""
# moved: shim for the parallel redesign, removed at merge
from tierctl.grade.history import *  # noqa: F403
from tierctl.grade.history import (  # noqa: F401
    KIND,
    _active_for,
    _iso,
    _local_text,
    _num,
    _plain,
    _plain_override,
    add_override,
    clear_override,
    combine_overrides,
    file_hash,
    grade_history,
    last_grading,
    override_grade,
    overrides_table,
    previous_grading,
    save_grading,
    snapshot_frame,
    snapshot_meta,
    stored_overrides,
)
from tierctl.grade.ingest import OVERRIDE_COLUMNS, _one_time, _times_as_text, read_overrides_file  # noqa: F401
from tierctl.grade.report import (  # noqa: F401
    LETTER_TEMPLATE,
    LETTERS_DIR,
    UNIT_EN,
    Letters,
    _check_folder,
    _num_text,
    _score,
    check_letters_writable,
    letter_context,
    letter_file_name,
    render_letters,
    staged_letters,
)
