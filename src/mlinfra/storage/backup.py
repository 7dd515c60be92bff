"""Backup helpers for workflows: back up now, and Optuna callbacks that back up as trials finish.

Each helper takes ``backup_to_drive``: a :class:`~mlinfra.storage.base.BackupStore` (its
:meth:`~mlinfra.storage.base.BackupStore.backup` is called, and a failure carries the store's
reason), or any ``callback(path, is_directory=bool) -> bool`` such as
:meth:`~mlinfra.storage.base.BackupStore.as_backup_callback`.

A failed backup raises :class:`~mlinfra.errors.BackupError` by default (``on_error="raise"``);
``on_error="warn"`` turns it into a :class:`~mlinfra.errors.BackupWarning` and lets the work go
on. Nothing is swallowed silently.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from mlinfra.errors import BackupError, BackupWarning, MlinfraError
from mlinfra.storage.base import BackupCallback, BackupStore
from mlinfra.storage.paths import is_drive_path, is_inside

__all__ = [
    "IncrementalBackupCallback",
    "backup_hpo_study_to_drive",
    "create_incremental_backup_callback",
    "create_study_db_backup_callback",
    "immediate_backup_if_needed",
]

logger = logging.getLogger(__name__)

OnError = Literal["raise", "warn"]
#: The finished-trial states that count toward ``every_n_trials`` by default.
FINISHED_STATES = ("COMPLETE", "PRUNED", "FAIL")


def _fail(error: MlinfraError, on_error: OnError) -> bool:
    if on_error == "raise":
        raise error
    warnings.warn(f"{error}; the previous backup is untouched", BackupWarning, stacklevel=4)
    return False


def _run(
    path: Path, backup_to_drive: BackupStore | BackupCallback, is_directory: bool, on_error: OnError
) -> bool:
    if isinstance(backup_to_drive, BackupStore):
        result = backup_to_drive.backup(path, expect="dir" if is_directory else "file")
        if result.ok:
            logger.info("backup: %s", result)
            return True
        error: MlinfraError = result.error or BackupError(result.reason, path=path)
        return _fail(error, on_error)
    try:
        ok = backup_to_drive(path, is_directory=is_directory)
    except (MlinfraError, OSError) as exc:
        if on_error == "raise":
            raise
        return _fail(BackupError(f"backup failed: {exc}", path=path), on_error)
    if ok:
        return True
    return _fail(BackupError("the backup callback reported a failure", path=path), on_error)


def immediate_backup_if_needed(
    target: str | os.PathLike[str],
    backup_to_drive: BackupStore | BackupCallback | None,
    backup_enabled: bool = True,
    is_directory: bool = False,
    *,
    on_error: OnError = "raise",
) -> bool:
    """Back up ``target`` now, unless there is nothing to do.

    Nothing is done (``False``, with a log line) when backups are disabled or no store is given,
    when ``target`` is on Google Drive already, or when it does not exist yet.

    Args:
        target: The file or folder.
        backup_to_drive: A store, or a ``callback(path, is_directory=bool) -> bool``.
        backup_enabled: ``False`` turns the helper into a no-op (Colab only, typically).
        is_directory: Whether ``target`` is a folder (a file otherwise).
        on_error: ``"raise"`` a failed backup, or ``"warn"`` and return ``False``.

    Returns:
        ``True`` when a backup was made (or was already up to date).

    Raises:
        BackupError: the backup failed (``on_error="raise"``).
        BackupPathError: the store refuses the path (outside the project, ...).
    """
    if backup_to_drive is None or not backup_enabled:
        logger.debug("backup of %s skipped: backups are disabled", target)
        return False
    path = Path(target)
    if is_drive_path(path):
        logger.info("backup of %s skipped: it is on Google Drive already", path)
        return False
    if not path.exists():
        logger.info("backup of %s skipped: it does not exist yet", path)
        return False
    return _run(path, backup_to_drive, is_directory, on_error)


class IncrementalBackupCallback:
    """An Optuna callback that backs up a path every ``every_n_trials`` finished trials.

    Each worker process counts the trials it finished itself. The trials after the last multiple
    of ``every_n_trials`` are backed up by :meth:`backup_now` (call it after ``optimize``).

    Attributes:
        finished: Trials this callback has seen finish in a counted state.
        backups: Backups made.
    """

    def __init__(
        self,
        target: str | os.PathLike[str],
        backup_to_drive: BackupStore | BackupCallback | None,
        backup_enabled: bool = True,
        is_directory: bool = False,
        *,
        every_n_trials: int = 1,
        states: Iterable[str] = FINISHED_STATES,
        on_error: OnError = "raise",
    ) -> None:
        if every_n_trials < 1:
            raise ValueError(f"every_n_trials must be at least 1, got {every_n_trials}")
        if on_error not in ("raise", "warn"):
            raise ValueError(f"on_error must be 'raise' or 'warn', got {on_error!r}")
        self.target = Path(target)
        self.backup_to_drive = backup_to_drive
        self.backup_enabled = backup_enabled
        self.is_directory = is_directory
        self.every_n_trials = every_n_trials
        self.states = frozenset(states)
        self.on_error: OnError = on_error
        self.finished = 0
        self.backups = 0

    def __call__(self, study: Any, trial: Any) -> None:
        """Count ``trial`` if it finished in a counted state; back up on every n-th one.

        Raises:
            BackupError: the backup failed (``on_error="raise"``); Optuna stops the study
                after recording the trial.
        """
        state = getattr(trial.state, "name", str(trial.state))
        if state not in self.states:
            return
        self.finished += 1
        if self.finished % self.every_n_trials == 0:
            self.backup_now()

    def backup_now(self) -> bool:
        """Back up the target now; ``True`` when a backup was made.

        Raises:
            BackupError: the backup failed (``on_error="raise"``).
        """
        done = immediate_backup_if_needed(
            self.target,
            self.backup_to_drive,
            self.backup_enabled,
            self.is_directory,
            on_error=self.on_error,
        )
        self.backups += int(done)
        return done


def create_incremental_backup_callback(
    target: str | os.PathLike[str],
    backup_to_drive: BackupStore | BackupCallback | None,
    backup_enabled: bool = True,
    is_directory: bool = False,
    *,
    every_n_trials: int = 1,
    on_error: OnError = "raise",
) -> IncrementalBackupCallback:
    """An Optuna callback backing up ``target`` every ``every_n_trials`` finished trials.

    Finished means completed, pruned or failed: each changes the study's storage.

    Raises:
        ValueError: ``every_n_trials`` is below 1, or ``on_error`` is unknown.
    """
    return IncrementalBackupCallback(
        target,
        backup_to_drive,
        backup_enabled,
        is_directory,
        every_n_trials=every_n_trials,
        on_error=on_error,
    )


def create_study_db_backup_callback(
    target: str | os.PathLike[str],
    backup_to_drive: BackupStore | BackupCallback | None,
    enabled: bool = True,
    *,
    every_n_trials: int = 1,
    on_error: OnError = "raise",
) -> IncrementalBackupCallback:
    """An Optuna callback backing up the study database ``target`` (a SQLite ``study.db``, copied
    as a consistent snapshot) every ``every_n_trials`` finished trials.

    Raises:
        ValueError: ``every_n_trials`` is below 1, or ``on_error`` is unknown.
    """
    return create_incremental_backup_callback(
        target, backup_to_drive, enabled, False, every_n_trials=every_n_trials, on_error=on_error
    )


def backup_hpo_study_to_drive(
    study_dir: str | os.PathLike[str],
    backup_to_drive: BackupStore | BackupCallback | None,
    enabled: bool = True,
    *,
    study_db: str | os.PathLike[str] | None = None,
    on_error: OnError = "raise",
) -> bool:
    """Back up an HPO study: its database and its folder (trials, checkpoints, metadata).

    The database is snapshotted as part of the folder when it lies inside it (the default
    ``<study_dir>/study.db``), and on its own before the folder otherwise. A study folder that is
    on Google Drive already is left alone.

    Args:
        study_dir: The study folder.
        backup_to_drive: A store, or a ``callback(path, is_directory=bool) -> bool``.
        enabled: ``False`` turns the helper into a no-op.
        study_db: The study database when it is not ``<study_dir>/study.db``.
        on_error: ``"raise"`` a failed backup, or ``"warn"`` and return ``False``.

    Returns:
        ``True`` when everything was backed up.

    Raises:
        BackupError: the study folder or the given database is missing, or a backup failed
            (``on_error="raise"``).
    """
    if backup_to_drive is None or not enabled:
        return False
    folder = Path(study_dir)
    if is_drive_path(folder):
        logger.info("backup of study %s skipped: it is on Google Drive already", folder)
        return False
    if not folder.is_dir():
        return _fail(
            BackupError("the study folder does not exist; nothing was backed up", path=folder),
            on_error,
        )
    ok = True
    if study_db is not None:
        db = Path(study_db)
        if not db.is_file():
            return _fail(
                BackupError("the study database does not exist; nothing was backed up", path=db),
                on_error,
            )
        if not is_inside(Path(os.path.abspath(db)), Path(os.path.abspath(folder))):
            ok = _run(db, backup_to_drive, False, on_error)
    return _run(folder, backup_to_drive, True, on_error) and ok
