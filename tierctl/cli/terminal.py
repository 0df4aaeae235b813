"""What the terminal needs beyond rich: Chinese-aware wrapping of table cells, tables
that drop their least needed columns before they cut a text, progress on stderr for
long work, and a console that takes a closed pipe as the reader being done.

Nothing here knows a job; the command modules decide which columns matter most."""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.text import Text

# -- wrapping -------------------------------------------------------------------------------------
# A line may not start with a closing mark nor end with an opening one (the usual rule
# for Chinese text); Latin words, numbers and rule codes (R=10:, A4.4:, 230000) are
# never split, nor is a short quoted term.  Breaks fall between CJK characters and at spaces.
_CLOSING = set("，。、；：！？）」』》】〉”’…%‰·,.;:!?)]}")
_OPENING = set("（「『《【〈“‘([{")
# a short quoted term (a keyword: 「网约车」) stays whole too
_ATOM = re.compile(r"\s+|「[^「」\n]{1,12}」|[A-Za-z0-9_=+\-*/<>≥≤.,:;'\"!?#&@%$^~|\\]+|.", re.S)


def _atoms(text: str) -> list[str]:
    """The text cut into pieces that never break inside: spaces (break points), runs
    of Latin letters/digits/symbols, and single CJK characters with the punctuation
    that must stay beside them glued on."""
    raw = _ATOM.findall(text)
    out: list[str] = []
    glue_next = False
    for piece in raw:
        if piece.isspace():
            out.append(piece)
            glue_next = False
            continue
        if out and not out[-1].isspace() and (glue_next or piece[0] in _CLOSING):
            out[-1] += piece
        else:
            out.append(piece)
        glue_next = piece[-1] in _OPENING
    return out


def wrap(text: str, width: int) -> list[str]:
    """``text`` in lines at most ``width`` cells wide, broken only where Chinese text
    may break (see above); a single piece wider than a line is the only thing folded."""
    width = max(1, width)
    lines: list[str] = []
    for para in text.split("\n"):
        line = ""
        for atom in _atoms(para):
            if atom.isspace():
                if line and cell_len(line) + 1 <= width:
                    line += " "
                continue
            if cell_len(line.rstrip()) + cell_len(atom) <= width or not line.strip():
                line = line + atom if line.strip() else atom
            else:
                lines.append(line.rstrip())
                line = atom
            while cell_len(line) > width:  # one unbreakable piece wider than the column
                cut = _fit(line, width)
                lines.append(line[:cut])
                line = line[cut:]
        lines.append(line.rstrip())
    return lines


def _fit(text: str, width: int) -> int:
    n = 0
    for i, ch in enumerate(text):
        n += cell_len(ch)
        if n > width:
            return max(i, 1)
    return len(text)


def longest_piece(text: str) -> int:
    return max((cell_len(a) for a in _atoms(text) if not a.isspace()), default=0)


class Wrapped:
    """A table cell whose text wraps where Chinese text may break, never cut with an
    ellipsis: its narrowest width is its longest unbreakable piece."""

    def __init__(self, text: str, style: str = "", *, min_width: int = 1) -> None:
        self.text = text
        self.style = style
        self.min_width = min_width

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        longest = max((cell_len(line) for line in self.text.split("\n")), default=0)
        return Measurement(min(max(longest_piece(self.text), self.min_width), longest, options.max_width),
                           min(longest, options.max_width))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines = wrap(self.text, options.max_width)
        yield Text("\n".join(lines), style=self.style, no_wrap=True, overflow="ignore", end="")

    def __str__(self) -> str:
        return self.text


# -- tables that drop columns instead of cutting text ---------------------------------------------
@dataclass
class Col:
    """A column of a table that fits itself to the terminal.  ``drop``: the order in
    which optional columns go when the screen is narrow (1 first); None: always shown."""

    key: str
    header: str
    cells: list[Any]
    drop: int | None = None
    options: dict[str, Any] = field(default_factory=dict)


def fit_columns(console: Console, cols: Sequence[Col], flexible: str, min_flexible: int,
                build: Callable[[Sequence[Col]], Any]) -> list[Col]:
    """The columns to show at the console's width: optional ones are dropped in their
    ``drop`` order until the ``flexible`` column (the one that wraps) gets at least
    ``min_flexible`` cells, or nothing optional is left."""
    kept = list(cols)
    order = sorted((c for c in cols if c.drop is not None), key=lambda c: c.drop or 0)
    for victim in [None, *order]:
        if victim is not None:
            kept = [c for c in kept if c is not victim]
        others = [c for c in kept if c.key != flexible]
        used = console.measure(build(others)).maximum if others else 0
        room = console.width - used - 2  # the flexible column's own gap
        if room >= min_flexible:
            return kept
    return kept


# -- consoles -------------------------------------------------------------------------------------
class PipeConsole(Console):
    """A console for which a closed pipe (``tierctl … | head``) is the reader having
    read all it wanted: stdout goes to the null device and :class:`BrokenPipeError`
    reaches the program's handler, which exits 0 (rich's own default exits 1)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        silence_stdout()
        raise BrokenPipeError


def silence_stdout() -> None:
    """Point stdout at the null device, so that the final flush has nowhere to fail."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


# -- progress -------------------------------------------------------------------------------------
PROGRESS_AFTER = 2.0  # seconds of work before a progress line appears


class Progress:
    """A spinner with the current step on stderr, shown only once the work has taken
    ``after`` seconds and only when stderr is a terminal (never in a log or a pipe).
    Transient: it leaves nothing behind when the work is done."""

    def __init__(self, console: Console, after: float = PROGRESS_AFTER) -> None:
        self.console = console
        self.after = after
        self.text = ""
        self._status: Any = None
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._done = False

    @property
    def enabled(self) -> bool:
        return self.console.is_terminal

    def step(self, text: str) -> None:
        with self._lock:
            self.text = text
            if self._status is not None:
                self._spinner.update(text=text)

    def _show(self) -> None:
        from rich.live import Live
        from rich.spinner import Spinner

        with self._lock:
            if self._done:
                return
            # never redirect stdout: the data the command prints must not pass through stderr
            self._spinner = Spinner("dots", self.text)
            self._status = Live(self._spinner, console=self.console, transient=True, refresh_per_second=8,
                                redirect_stdout=False, redirect_stderr=False)
            self._status.start()

    def start(self) -> None:
        if not self.enabled:
            return
        if self.after <= 0:
            self._show()
            return
        self._timer = threading.Timer(self.after, self._show)
        self._timer.daemon = True
        self._timer.start()

    def stop(self) -> None:
        with self._lock:
            self._done = True
            if self._timer is not None:
                self._timer.cancel()
            if self._status is not None:
                self._status.stop()
                self._status = None


@contextmanager
def progress(first: str, console: Console | None = None, after: float = PROGRESS_AFTER) -> Iterator[Progress]:
    """``with progress("读取导出文件…") as p: …; p.step("打分…")``."""
    p = Progress(console or PipeConsole(stderr=True, highlight=False), after)
    p.step(first)
    p.start()
    try:
        yield p
    finally:
        p.stop()
