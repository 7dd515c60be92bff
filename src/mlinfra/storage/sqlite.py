"""Consistent copies of SQLite databases, and proof that a copy can be read.

A database that a process may be writing (an Optuna ``study.db``, the run registry, a local MLflow
database) is never copied byte by byte: a byte copy taken during a write mixes pages from before
and after it, in rollback-journal and WAL mode alike. :func:`snapshot_sqlite` copies it through
SQLite's online backup API, which holds a read transaction for the whole copy, so the snapshot is
the database as one committed transaction left it, including what is still in its ``-wal`` file.

``PRAGMA integrity_check`` checks the b-tree structure only: a copy stitched from two moments can
pass it. :func:`verify_sqlite` also reads every row of every table back, and for an Optuna study
loads each study through Optuna and checks that it sees every trial the table holds.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from mlinfra.core.imports import require
from mlinfra.errors import BackupError

__all__ = [
    "SQLITE_HEADER",
    "SQLITE_SIDECARS",
    "is_sqlite_file",
    "snapshot_sqlite",
    "verify_sqlite",
]

#: The first 16 bytes of every SQLite 3 database file.
SQLITE_HEADER = b"SQLite format 3\x00"
#: Files SQLite keeps next to a database ``<db>``: they belong to it and are never copied alone.
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")
_OPTUNA_TABLES = {"studies", "trials", "version_info"}


def is_sqlite_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a SQLite database (by its header, whatever its name)."""
    try:
        with Path(path).open("rb") as handle:
            return handle.read(16) == SQLITE_HEADER
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return False


def _read_only_uri(path: Path) -> str:
    return f"{path.resolve().as_uri()}?mode=ro"


def snapshot_sqlite(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Write a consistent copy of the database ``src`` to the new file ``dst``.

    The copy goes through SQLite's online backup API while other processes may keep writing
    ``src``; it is one committed state of the database, and is left in rollback-journal mode so
    that opening it never creates ``-wal``/``-shm`` files next to it. ``dst`` should be on local
    disk: SQLite must not write to a network or FUSE mount.

    Raises:
        BackupError: ``src`` is not a readable database, or ``dst`` already exists.
    """
    source_path, target_path = Path(src), Path(dst)
    if target_path.exists():
        raise BackupError("the snapshot target already exists; pick a new name", path=target_path)
    try:
        source = sqlite3.connect(_read_only_uri(source_path), uri=True, timeout=60.0)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open the database: {exc}", path=source_path) from exc
    try:
        target = sqlite3.connect(target_path)
        try:
            source.backup(target)  # one step: the read transaction spans the whole copy
            target.execute("PRAGMA journal_mode=DELETE").fetchall()
            target.commit()
        finally:
            target.close()
    except sqlite3.Error as exc:
        target_path.unlink(missing_ok=True)
        raise BackupError(f"cannot snapshot the database: {exc}", path=source_path) from exc
    finally:
        source.close()


def verify_sqlite(path: str | os.PathLike[str]) -> str:
    """Check that the database at ``path`` is whole and readable; return what it holds.

    Runs ``PRAGMA integrity_check``, reads every row of every table, and, when the database is an
    Optuna study storage, loads every study through Optuna and compares its trial count with the
    ``trials`` table. Only open files on local disk with it (a snapshot or a restored copy).

    Returns:
        A short summary such as ``"optuna: 1 study, 12 trials"`` or ``"3 tables, 120 rows"``.

    Raises:
        BackupError: the file is not a database, fails the integrity check, cannot be read
            back, or Optuna sees a different number of trials.
    """
    target = Path(path)
    try:
        conn = sqlite3.connect(_read_only_uri(target), uri=True)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open the database copy: {exc}", path=target) from exc
    try:
        problems = [row[0] for row in conn.execute("PRAGMA integrity_check").fetchall()]
        if problems != ["ok"]:
            raise BackupError(
                f"the database copy fails PRAGMA integrity_check: {'; '.join(problems[:5])}",
                path=target,
            )
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        rows = {}
        for table in tables:
            quoted = table.replace('"', '""')
            rows[table] = sum(1 for _ in conn.execute(f'SELECT * FROM "{quoted}"'))
    except sqlite3.Error as exc:
        raise BackupError(f"cannot read the database copy back: {exc}", path=target) from exc
    finally:
        conn.close()
    if set(tables) >= _OPTUNA_TABLES:
        return _verify_optuna(target, rows["trials"], rows["studies"])
    return f"{len(tables)} tables, {sum(rows.values())} rows"


def _verify_optuna(path: Path, trial_rows: int, study_rows: int) -> str:
    optuna = require("optuna", feature="verifying an Optuna study copy")
    try:
        # the schema-version check is skipped: it reads Optuna's migration scripts (tens of ms)
        # and says nothing about this copy that loading every trial does not
        storage = optuna.storages.RDBStorage(
            f"sqlite:///{path.resolve()}", skip_compatibility_check=True, skip_table_creation=True
        )
    except Exception as exc:  # Optuna wraps SQLAlchemy errors in several types
        raise BackupError(f"Optuna cannot open the study copy: {exc}", path=path) from exc
    try:
        studies = storage.get_all_studies()
        seen = sum(
            len(storage.get_all_trials(study._study_id, deepcopy=False)) for study in studies
        )
    except Exception as exc:
        raise BackupError(f"Optuna cannot load the study copy: {exc}", path=path) from exc
    finally:
        storage.remove_session()
        storage.engine.dispose()
    if len(studies) != study_rows or seen != trial_rows:
        raise BackupError(
            f"Optuna loads {len(studies)} studies and {seen} trials from the copy, but its "
            f"tables hold {study_rows} and {trial_rows}",
            path=path,
        )
    noun = "study" if len(studies) == 1 else "studies"
    return f"optuna: {len(studies)} {noun}, {seen} trials"
