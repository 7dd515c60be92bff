"""``mlinfra backup PATH...`` and ``mlinfra restore PATH...``: durable copies of outputs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click

from mlinfra.cli.common import handle_errors, project_options
from mlinfra.config import Project
from mlinfra.errors import BackupError, ConfigError

if TYPE_CHECKING:
    from mlinfra.storage import BackupResult, BackupStore

__all__ = ["backup", "restore"]


def _store_options(func: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--backup-root",
                help="A folder, or an fsspec URL (s3://..., memory://...), to back up to "
                "(default: <drive.mount_point>/MyDrive/<drive.backup_base_dir> from paths.yaml).",
            ),
            click.option(
                "--expect",
                type=click.Choice(["any", "file", "dir"]),
                default="any",
                show_default=True,
                help="Refuse a PATH that is not a file (file) or a folder (dir).",
            ),
            click.option("--dry-run", is_flag=True, help="Say what would be done; write nothing."),
            click.option(
                "--platform",
                type=click.Choice(["local", "colab", "kaggle", "azureml"]),
                help="The platform whose outputs folder (paths.yaml env_overrides) is mirrored "
                "(default: detected).",
            ),
            click.option(
                "--all-files",
                is_flag=True,
                help="Allow project files outside the outputs folder.",
            ),
        ]
    ):
        func = option(func)
    return func


def _make_store(
    project: Path | None,
    config_dir: Path | None,
    backup_root: str | None,
    platform: str | None,
    dry_run: bool,
    all_files: bool,
    compare: Literal["mtime", "hash"] = "mtime",
) -> BackupStore:
    from mlinfra.core.platforms import detect_platform
    from mlinfra.paths import apply_env_overrides, outputs_root
    from mlinfra.storage import DriveBackupStore, FsspecBackupStore

    proj = Project.discover(project=project, config_dir=config_dir)
    try:
        where = platform or detect_platform(proj.environ)
    except ValueError as exc:
        raise ConfigError(str(exc), key="MLINFRA_PLATFORM") from None
    outputs = outputs_root(proj.root, apply_env_overrides(proj.paths, where))
    common: dict[str, Any] = {
        "only_outputs": not all_files,
        "dry_run": dry_run,
        "outputs_dir": outputs,
        "compare": compare,
    }
    if backup_root is not None and "://" in backup_root:
        return FsspecBackupStore(proj.root, backup_root, **common)
    if backup_root is None:
        drive = proj.paths.drive
        if drive is None:
            raise ConfigError(
                "no backup root: pass --backup-root, or add a drive: section (mount_point, "
                "backup_base_dir) to paths.yaml",
                file=proj.config_dir / "paths.yaml",
            )
        my_drive = Path(drive.mount_point) / "MyDrive"
        if not my_drive.is_dir():
            raise BackupError(
                "Google Drive is not mounted here; on Colab run "
                "mlinfra.storage.mount_colab_drive() first, elsewhere pass --backup-root",
                path=my_drive,
            )
        backup_root = str(my_drive / drive.backup_base_dir)
    return DriveBackupStore(proj.root, backup_root, **common)


def _report(results: list[BackupResult]) -> None:
    failed = 0
    for result in results:
        if result.ok:
            verb = "would copy" if result.dry_run else result.action.value
            click.echo(f"{verb}: {result.src} -> {result.dst} ({result.reason})")
            for line in result.verified:
                click.echo(f"  verified {line}")
        else:
            failed += 1
            click.secho(f"error: {result.error or result.reason}", fg="red", err=True)
    if failed:
        click.secho(
            f"{failed} of {len(results)} path(s) failed; previous copies are untouched",
            fg="red",
            err=True,
        )
        raise SystemExit(1)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@_store_options
@click.option(
    "--hash", "use_hash", is_flag=True, help="Compare content hashes instead of size and mtime."
)
@project_options
@handle_errors
def backup(
    paths: tuple[Path, ...],
    backup_root: str | None,
    expect: Literal["any", "file", "dir"],
    dry_run: bool,
    platform: str | None,
    all_files: bool,
    use_hash: bool,
    project: Path | None,
    config_dir: Path | None,
) -> None:
    """Back up each PATH (a file or folder under the outputs folder); only changes are copied.

    SQLite databases (study.db, the registry, an MLflow database) are copied as consistent
    snapshots and read back. Exit status 1 when any PATH fails.
    """
    store = _make_store(
        project,
        config_dir,
        backup_root,
        platform,
        dry_run,
        all_files,
        "hash" if use_hash else "mtime",
    )
    _report([store.backup(path, expect=expect) for path in paths])


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@_store_options
@click.option(
    "--if-needed",
    is_flag=True,
    help="Restore only a PATH that is missing or older than its backup.",
)
@project_options
@handle_errors
def restore(
    paths: tuple[Path, ...],
    backup_root: str | None,
    expect: Literal["any", "file", "dir"],
    dry_run: bool,
    platform: str | None,
    all_files: bool,
    if_needed: bool,
    project: Path | None,
    config_dir: Path | None,
) -> None:
    """Restore each PATH from its backup, verified before the local copy is replaced.

    Exit status 1 when any PATH fails (or has no backup, without --if-needed).
    """
    store = _make_store(project, config_dir, backup_root, platform, dry_run, all_files)
    run = store.ensure_local if if_needed else store.restore
    _report([run(path, expect=expect) for path in paths])
