"""What a backup or a restore did: :class:`BackupResult`."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mlinfra.errors import BackupError, BackupPathError, MlinfraError

__all__ = ["BackupAction", "BackupResult", "Expect"]

#: What the caller expects the local path to be: a file, a folder, or either.
Expect = Literal["any", "file", "dir"]


class BackupAction(str, enum.Enum):
    """The action a backup or restore took."""

    COPIED = "copied"
    SKIPPED = "skipped"
    MISSING = "missing"
    ERROR = "error"


@dataclass(frozen=True)
class BackupResult:
    """What a :meth:`BackupStore.backup` or :meth:`BackupStore.restore` call did.

    Attributes:
        ok: ``True`` when the call did what was asked (a copy, or nothing because nothing changed
            or it was a dry run).
        action: ``copied``, ``skipped``, ``missing`` or ``error``.
        src: Where the data was read from (the local path for a backup, the backup for a restore).
        dst: Where it was (or, in a dry run, would be) written.
        reason: One sentence for people: what was done or why not.
        error: The error when ``ok`` is false (a :class:`~mlinfra.errors.BackupError` or
            :class:`~mlinfra.errors.BackupPathError`).
        copied: Files written (for a dry run: files that would be written).
        skipped: Files left as they were because they had not changed.
        deleted: Files removed from the backup because the local folder no longer has them.
        bytes_copied: Bytes written.
        verified: What the verification read back (``"optuna: 1 study, 12 trials"``), per
            database, when SQLite files were copied.
        dry_run: Nothing was written.
    """

    ok: bool
    action: BackupAction
    src: Path | str
    dst: Path | str
    reason: str
    error: MlinfraError | None = None
    copied: int = 0
    skipped: int = 0
    deleted: int = 0
    bytes_copied: int = 0
    verified: tuple[str, ...] = field(default_factory=tuple)
    dry_run: bool = False

    def __str__(self) -> str:
        mark = "✓" if self.ok else "✗"
        src = self.src.name if isinstance(self.src, Path) else str(self.src).rsplit("/", 1)[-1]
        dst = self.dst.name if isinstance(self.dst, Path) else str(self.dst).rsplit("/", 1)[-1]
        return f"{mark} [{self.action.value.upper()}] {src} -> {dst} ({self.reason})"

    def raise_for_error(self) -> BackupResult:
        """Return ``self`` when ``ok``; otherwise raise the error it carries.

        Raises:
            BackupError: the backup or restore failed, or the path was missing.
            BackupPathError: the path cannot be backed up where it is.
        """
        if self.ok:
            return self
        if self.error is not None:
            raise self.error
        raise BackupError(self.reason, path=str(self.src))


def failure(
    src: Path | str, dst: Path | str, error: BackupError | BackupPathError, *, missing: bool = False
) -> BackupResult:
    """A failed result carrying ``error`` (``missing``: the path did not exist)."""
    action = BackupAction.MISSING if missing else BackupAction.ERROR
    return BackupResult(False, action, src, dst, error.reason, error=error)
