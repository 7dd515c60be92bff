"""``mlinfra platform``: which platform this is, why, and where its outputs and backups go."""

from __future__ import annotations

from pathlib import Path

import click

from mlinfra.cli.common import handle_errors, project_options
from mlinfra.config import Project
from mlinfra.errors import ConfigError

__all__ = ["platform"]


@click.command()
@project_options
@handle_errors
def platform(project: Path | None, config_dir: Path | None) -> None:
    """Show the detected platform, the variables that decided it, and its folders."""
    import os

    from mlinfra.core.platforms import PLATFORM_ENV, SIGNALS, explain_platform

    environ = dict(os.environ)
    try:
        found = explain_platform(environ)
    except ValueError as exc:
        raise ConfigError(f"{exc}; or unset {PLATFORM_ENV}", key=PLATFORM_ENV) from None
    click.echo(f"platform: {found.platform}")
    click.echo(f"why: {found.reason}")
    click.echo("signals:")
    for name, variables in SIGNALS:
        set_ = [v for v in variables if environ.get(v)]
        click.echo(f"  {name}: {', '.join(set_) + ' set' if set_ else 'none set'}")
    try:
        proj = Project.discover(project=project, config_dir=config_dir, environ=environ)
    except ConfigError as exc:
        click.echo(f"project: none ({exc.reason})")
        return
    from mlinfra.platform import get_platform_adapter

    adapter = get_platform_adapter(project=proj, environ=environ)
    click.echo(f"project: {proj.root}")
    click.echo(f"outputs root: {adapter.outputs_root()}")
    drive = proj.paths.drive
    if drive is None:
        click.echo("drive backup root: none (no drive: section in paths.yaml)")
    else:
        my_drive = Path(drive.mount_point) / "MyDrive"
        state = "mounted" if my_drive.is_dir() else "not mounted"
        click.echo(f"drive backup root: {my_drive / drive.backup_base_dir} ({state})")
    click.echo(f"platform job: {'yes' if adapter.is_platform_job() else 'no'}")
