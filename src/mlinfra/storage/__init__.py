"""Storage: durable copies of outputs on Google Drive, mounted folders and fsspec targets.

:class:`BackupStore` is the interface (its docstring states the guarantees);
:class:`DriveBackupStore` writes to a mounted folder such as ``/content/drive/MyDrive/<project>``,
:class:`FsspecBackupStore` to an fsspec URL. The specification's helpers
(:func:`immediate_backup_if_needed`, :func:`create_incremental_backup_callback`,
:func:`create_study_db_backup_callback`, :func:`backup_hpo_study_to_drive`,
:func:`create_colab_store`, :func:`mount_colab_drive`) are here too. SQLite databases are copied
through :func:`snapshot_sqlite` and checked with :func:`verify_sqlite`.
"""

from __future__ import annotations

from mlinfra.storage.backup import (
    IncrementalBackupCallback,
    backup_hpo_study_to_drive,
    create_incremental_backup_callback,
    create_study_db_backup_callback,
    immediate_backup_if_needed,
)
from mlinfra.storage.base import BackupCallback, BackupStore
from mlinfra.storage.drive import DriveBackupStore, create_colab_store, mount_colab_drive
from mlinfra.storage.paths import DRIVE_MOUNT_POINT, is_drive_path
from mlinfra.storage.remote import FsspecBackupStore
from mlinfra.storage.result import BackupAction, BackupResult, Expect
from mlinfra.storage.sqlite import is_sqlite_file, snapshot_sqlite, verify_sqlite

__all__ = [
    "DRIVE_MOUNT_POINT",
    "BackupAction",
    "BackupCallback",
    "BackupResult",
    "BackupStore",
    "DriveBackupStore",
    "Expect",
    "FsspecBackupStore",
    "IncrementalBackupCallback",
    "backup_hpo_study_to_drive",
    "create_colab_store",
    "create_incremental_backup_callback",
    "create_study_db_backup_callback",
    "immediate_backup_if_needed",
    "is_drive_path",
    "is_sqlite_file",
    "mount_colab_drive",
    "snapshot_sqlite",
    "verify_sqlite",
]
