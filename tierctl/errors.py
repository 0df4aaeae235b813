"""One exception hierarchy for everything a user can get wrong.

Messages are written for the service manager: they name the file, the row as Excel
numbers it, the column, the value and what to do.  The CLI catches
:class:`TierctlError` in one place, prints ``str(err)`` and exits with ``exit_code``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One located problem in an input file (used for lists of bad cells)."""

    row: int | None  # the row number as Excel shows it (header row = 1 for a plain export)
    column: str | None  # the column header as it appears in the file
    value: object
    message: str

    def describe(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"第 {self.row} 行")
        if self.column:
            where.append(f"列「{self.column}」")
        loc = "，".join(where)
        val = "" if self.value is None else f"，值「{self.value}」"
        return f"{loc}{val}：{self.message}" if loc else f"{self.message}{val}"


class TierctlError(Exception):
    """Base class: a problem the user can fix.  ``exit_code`` 1 unless stated."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n→ {self.hint}"


class UsageError(TierctlError):
    """Wrong options or arguments on the command line (exit code 2)."""

    exit_code = 2


class InputError(TierctlError):
    """A customer export that cannot be read or has bad values."""

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        problems: list[Problem] | None = None,
        hint: str | None = None,
        total: int | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.problems = list(problems or [])
        self.total = total if total is not None else len(self.problems)
        head = f"{self.path}: {message}" if self.path else message
        if self.problems:
            lines = [f"  - {p.describe()}" for p in self.problems[:20]]
            if self.total > len(lines):
                lines.append(f"  … 另有 {self.total - len(lines)} 处同类问题")
            head = head + "\n" + "\n".join(lines)
        super().__init__(head, hint=hint)


class ModelError(TierctlError):
    """A model or configuration file that is malformed (names the file and key)."""

    def __init__(self, message: str, *, path: Path | str | None = None, key: str | None = None,
                 hint: str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.key = key
        where = str(self.path) if self.path else "模型文件"
        if key:
            where += f" [{key}]"
        super().__init__(f"{where}: {message}", hint=hint)


class ConfigError(ModelError):
    """A tierctl.toml configuration problem, e.g. a key a template needs is missing."""


class StoreError(TierctlError):
    """The history database cannot be opened, migrated or written."""


class RenderError(TierctlError):
    """A document could not be rendered (template error, taboo phrase, existing output)."""


class NotFoundError(TierctlError):
    """A customer, snapshot or alert the user asked for does not exist."""


class MailError(TierctlError):
    """An e-mail could not be sent (connection, authentication, TLS, refused recipients)."""


class NotifyError(TierctlError):
    """A group robot could not be told (the platform refused, or every attempt failed)."""
