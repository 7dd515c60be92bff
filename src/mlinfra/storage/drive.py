"""Backups to a mounted folder: Google Drive on Colab (``/content/drive/MyDrive/<project>``), or
any local or mounted directory.

SQLite never runs on the mount: databases are snapshotted and verified on local disk, and only
the finished bytes are copied to the mount.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from mlinfra.core.atomic import atomic_write_bytes, fsync_dir
from mlinfra.core.platforms import detect_platform
from mlinfra.errors import BackupError, BackupPathError, ConfigError
from mlinfra.storage.base import BackupStore
from mlinfra.storage.paths import DRIVE_MOUNT_POINT, is_inside
from mlinfra.storage.scan import copy_hashing, hash_file, is_internal_name

__all__ = ["DriveBackupStore", "create_colab_store", "mount_colab_drive"]

logger = logging.getLogger(__name__)


class DriveBackupStore(BackupStore):
    """A :class:`~mlinfra.storage.base.BackupStore` writing to a mounted folder.

    ``DriveBackupStore(root_dir, backup_root)`` mirrors ``<root_dir>/outputs/x`` to
    ``<backup_root>/outputs/x``. Files are written under a temporary name, fsynced and renamed.

    Args:
        root_dir: The project root; it must exist.
        backup_root: The folder backups go to, such as ``/content/drive/MyDrive/<project>``
            (created on the first backup). It must not lie inside what is backed up.
        only_outputs: Back up only paths under the outputs folder.
        dry_run: Report what would be done; write nothing.
        outputs_dir: The outputs folder (default ``<root_dir>/outputs``).
        compare: ``"mtime"`` or ``"hash"``, how unchanged files are recognised.
        lock_timeout: Seconds to wait for another process backing up the same path.

    Raises:
        BackupPathError: ``root_dir`` does not exist, or ``backup_root`` lies inside the outputs
            folder (or inside the project with ``only_outputs=False``), so each backup would copy
            the previous ones.
    """

    def __init__(
        self,
        root_dir: str | os.PathLike[str],
        backup_root: str | os.PathLike[str],
        only_outputs: bool = True,
        dry_run: bool = False,
        *,
        outputs_dir: str | os.PathLike[str] | None = None,
        compare: Literal["mtime", "hash"] = "mtime",
        lock_timeout: float = 600.0,
    ) -> None:
        super().__init__(
            root_dir,
            outputs_dir=outputs_dir,
            only_outputs=only_outputs,
            dry_run=dry_run,
            compare=compare,
            lock_timeout=lock_timeout,
        )
        self.backup_root = Path(os.path.abspath(backup_root))
        source = self.outputs_dir if only_outputs else self.root_dir
        if is_inside(self.backup_root, source, follow_links=True):
            raise BackupPathError(
                f"the backup root lies inside {source}, which is what gets backed up: every "
                "backup would copy the previous ones; pick a folder outside it",
                path=self.backup_root,
            )

    def __repr__(self) -> str:
        return f"DriveBackupStore(root_dir={self.root_dir!r}, backup_root={self.backup_root!r})"

    def drive_path_for(self, local_path: str | os.PathLike[str]) -> Path:
        """The path below the backup root that mirrors ``local_path``.

        Raises:
            BackupPathError: (a ``ValueError``) the path is already on Drive or inside the
                backup root, outside the project, or not under the outputs folder.
        """
        return self.backup_root / self.key_for(local_path)

    # ---- primitives ------------------------------------------------------------------------

    def _loc(self, key: str) -> str:
        return str(self.backup_root / key) if key else str(self.backup_root)

    def _display(self, loc: str) -> Path:
        return Path(loc)

    def _kind(self, loc: str) -> Literal["file", "dir"] | None:
        try:
            mode = Path(loc).stat().st_mode
        except FileNotFoundError:
            return None
        if stat.S_ISDIR(mode):
            return "dir"
        return "file" if stat.S_ISREG(mode) else None

    def _read_bytes(self, loc: str) -> bytes | None:
        try:
            return Path(loc).read_bytes()
        except FileNotFoundError:
            return None

    def _write_bytes(self, loc: str, data: bytes) -> None:
        Path(loc).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(loc, data)

    def _upload(self, local: Path, loc: str) -> tuple[str, str, int]:
        Path(loc).parent.mkdir(parents=True, exist_ok=True)
        sent, size = copy_hashing(local, loc)
        return sent, hash_file(loc), size

    def _download(self, loc: str, local: Path) -> str:
        copy_hashing(loc, local)
        return hash_file(local)

    def _move(self, src: str, dst: str) -> None:
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        Path(src).replace(dst)

    def _flush(self, locs: list[str]) -> None:
        for folder in sorted({str(Path(loc).parent) for loc in locs}):
            fsync_dir(Path(folder))

    def _remove(self, loc: str) -> None:
        path = Path(loc)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)

    def _list_files(self, loc: str) -> list[str]:
        base = Path(loc)
        out: list[str] = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not is_internal_name(d)]
            here = Path(dirpath)
            out.extend(
                (here / f).relative_to(base).as_posix()
                for f in filenames
                if not is_internal_name(f)
            )
        return sorted(out)

    def _make_dirs(self, loc: str) -> None:
        Path(loc).mkdir(parents=True, exist_ok=True)

    def _contains(self, path: Path) -> bool:
        return is_inside(path, self.backup_root, follow_links=True)


def mount_colab_drive(
    mount_point: str | os.PathLike[str] = DRIVE_MOUNT_POINT,
    *,
    force_remount: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Path | None:
    """Mount Google Drive on Colab; return ``<mount_point>/MyDrive``.

    When ``MyDrive`` is already there (mounted earlier, or a folder standing in for Drive), it is
    returned as it is. Off Colab nothing is done: a message says so and ``None`` is returned.

    Args:
        mount_point: Where to mount Drive.
        force_remount: Remount even when Drive is mounted.
        environ: The environment to detect the platform from (default: ``os.environ``).

    Raises:
        BackupError: Colab's mount did not produce ``<mount_point>/MyDrive``.
    """
    my_drive = Path(mount_point) / "MyDrive"
    if my_drive.is_dir() and not force_remount:
        return my_drive
    platform = detect_platform(environ)
    if platform != "colab":
        logger.warning(
            "not mounting Google Drive: this is not Colab (platform: %s) and %s does not exist; "
            "back up to a folder of your choice with DriveBackupStore(root_dir, backup_root)",
            platform,
            my_drive,
        )
        return None
    from google.colab import drive  # type: ignore[import-not-found,import-untyped,unused-ignore]

    drive.mount(os.fspath(mount_point), force_remount=force_remount)
    if not my_drive.is_dir():
        raise BackupError(
            "Google Drive was mounted but MyDrive is missing; remount with "
            "mount_colab_drive(force_remount=True)",
            path=my_drive,
        )
    return my_drive


def create_colab_store(
    root: str | os.PathLike[str] | None = None,
    config_dir: str | os.PathLike[str] | None = None,
    mount_point: str | os.PathLike[str] | None = None,
    *,
    dry_run: bool = False,
    environ: Mapping[str, str] | None = None,
) -> DriveBackupStore:
    """The Drive backup store of a project: mounts Drive, then returns a store writing to
    ``<mount_point>/MyDrive/<drive.backup_base_dir>`` (``paths.yaml``; default: the project
    name).

    The outputs folder is the one ``paths.yaml`` gives for the detected platform (on Colab, its
    ``env_overrides.colab``), mirrored as ``outputs`` below the backup root.

    Args:
        root: The project root (default: discovered from the working directory).
        config_dir: The config folder (default: ``<root>/config``).
        mount_point: Where Drive is mounted (default: ``drive.mount_point`` of ``paths.yaml``,
            else ``/content/drive``). Off Colab, a folder holding a ``MyDrive`` folder.
        dry_run: Make a store that only reports.
        environ: The environment for platform detection and ``${VAR}`` expressions.

    Raises:
        ConfigError: no project was found, or its ``paths.yaml`` is invalid.
        BackupError: Drive is not mounted and cannot be (off Colab, with no ``MyDrive`` folder
            at the mount point).
    """
    from mlinfra.config import Project
    from mlinfra.paths import apply_env_overrides, outputs_root

    env = dict(os.environ) if environ is None else dict(environ)
    project = Project.discover(
        project=None if root is None else Path(root),
        config_dir=None if config_dir is None else Path(config_dir),
        environ=env,
    )
    paths = project.paths
    point = mount_point or (paths.drive.mount_point if paths.drive else DRIVE_MOUNT_POINT)
    my_drive = mount_colab_drive(point, environ=env)
    if my_drive is None:
        raise BackupError(
            f"Google Drive is not mounted ({Path(point) / 'MyDrive'} does not exist) and this is "
            "not Colab; pass mount_point= a folder holding MyDrive/, or make a "
            "DriveBackupStore(root_dir, backup_root) with a folder of your choice",
            path=Path(point) / "MyDrive",
        )
    base = paths.drive.backup_base_dir if paths.drive else paths.project.name
    try:
        storage_env = detect_platform(env)
    except ValueError as exc:
        raise ConfigError(str(exc), key="MLINFRA_PLATFORM") from None
    outputs = outputs_root(project.root, apply_env_overrides(paths, storage_env))
    backup_root = my_drive / base
    backup_root.mkdir(parents=True, exist_ok=True)
    return DriveBackupStore(project.root, backup_root, dry_run=dry_run, outputs_dir=outputs)
