"""``mlinfra init``: scaffold a new project that validates and runs as made."""

from __future__ import annotations

import os
from pathlib import Path

import click

from mlinfra.cli.common import handle_errors

__all__ = ["init"]


@click.command("init")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option(
    "--name",
    "-n",
    help="The project name (default: the folder's name); its package is the name with '-' "
    "turned into '_'.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Add the project to a folder that is not empty (no file is ever overwritten).",
)
@handle_errors
def init(directory: Path, name: str | None, force: bool) -> None:
    """Make a new project in DIRECTORY: a config tree, an objective stub and a tiny dataset.

    The project passes `mlinfra config validate` and `mlinfra hpo -s smoke` runs a 3-trial
    sweep of the stub objective as soon as it is made. An existing file is never overwritten.
    """
    from mlinfra.scaffold import scaffold_project

    result = scaffold_project(directory, name, force=force)
    click.echo(
        f"Created project {result.name!r} in {result.root} "
        f"(package {result.package}, experiment {result.experiment}):"
    )
    for rel in result.created:
        click.echo(f"  {rel}")
    for rel in result.kept:
        click.echo(f"  {rel} (already there, kept)")
    shown = os.path.relpath(result.root) if not directory.is_absolute() else str(result.root)
    click.echo("\nNext:")
    for line in (
        f"cd {shown}",
        "mlinfra config validate",
        "mlinfra hpo -s smoke",
        "mlinfra report -s smoke",
    ):
        click.echo(f"  {line}")
