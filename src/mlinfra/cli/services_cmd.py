"""``mlinfra services up|down|status``: PostgreSQL and an ``mlflow server`` on this machine, for
trying multi-worker sweeps (``mlinfra hpo --workers N`` or several ``mlinfra hpo``) locally."""

from __future__ import annotations

import os
from pathlib import Path

import click

from mlinfra.cli.common import handle_errors
from mlinfra.core.redact import hide_password

__all__ = ["services"]


def _root(project: Path | None) -> Path:
    """The project root (the state goes to ``<root>/.mlinfra/services``): ``--project``, the
    discovered project, or the working directory outside any project."""
    from mlinfra.config import Project
    from mlinfra.errors import ConfigError

    if project is not None:
        return project
    try:
        return Project.discover().root
    except ConfigError:
        return Path.cwd()


_project = click.option(
    "--project",
    type=click.Path(file_okay=False, path_type=Path),
    help="Project root (default: discovered, else the working directory).",
)
_admin = click.option(
    "--admin-url",
    default=lambda: os.environ.get("MLINFRA_SERVICES_ADMIN_URL") or None,
    help="A PostgreSQL URL allowed to create databases "
    "[default: $MLINFRA_SERVICES_ADMIN_URL, else postgresql://postgres@127.0.0.1:5432/postgres].",
)
_database = click.option(
    "--database",
    default="mlinfra",
    show_default=True,
    help="Database of the studies and the registry (the server uses DATABASE_mlflow).",
)


@click.group("services")
def services() -> None:
    """PostgreSQL and an MLflow server on this machine, for multi-worker sweeps."""


@services.command("up")
@_project
@_admin
@_database
@click.option("--port", type=int, default=0, show_default=True, help="Server port (0: a free one).")
@click.option("--workers", type=int, default=2, show_default=True, help="Server worker processes.")
@handle_errors
def up(project: Path | None, admin_url: str | None, database: str, port: int, workers: int) -> None:
    """Start what is missing (idempotent) and print the export lines for every worker.

    Ensures the system PostgreSQL answers (starting its cluster when stopped), creates DATABASE
    and DATABASE_mlflow if missing, and starts `mlflow server` on 127.0.0.1 in the background
    (pid and log in .mlinfra/services/). Standard output holds only the export lines.
    """
    from mlinfra.services import DEFAULT_ADMIN_URL, services_up, state_dir

    root = _root(project)
    status = services_up(
        root,
        admin_url=admin_url or DEFAULT_ADMIN_URL,
        database=database,
        port=port,
        workers=workers,
    )
    for line in status.actions:
        click.echo(line, err=True)
    for line in status.exports():
        click.echo(line)
    click.echo(f"# or: . {state_dir(root) / 'env.sh'}", err=True)


@services.command("status")
@_project
@_admin
@_database
@handle_errors
def status(project: Path | None, admin_url: str | None, database: str) -> None:
    """Say what answers: the shared database and the MLflow server. Exit 1 if one does not."""
    from mlinfra.services import DEFAULT_ADMIN_URL, services_status

    state = services_status(
        _root(project), admin_url=admin_url or DEFAULT_ADMIN_URL, database=database
    )
    shown = hide_password(state.database_url)
    if state.database_error is None:
        click.echo(f"database       {shown} answers")
    else:
        click.secho(f"database       {shown} does not answer: {state.database_error}", fg="red")
    if state.server is None:
        click.secho("mlflow server  not running (mlinfra services up)", fg="red")
    elif state.server_healthy:
        click.echo(f"mlflow server  {state.server.url} answers (pid {state.server.pid})")
    else:
        click.secho(
            f"mlflow server  pid {state.server.pid} runs but {state.server.url}/health does not "
            f"answer; see {state.server.log}",
            fg="red",
        )
    if state.database_error is not None or not state.server_healthy:
        raise SystemExit(1)


@services.command("down")
@_project
@handle_errors
def down(project: Path | None) -> None:
    """Stop the MLflow server (SIGTERM, then SIGKILL, to its process group); keep the
    databases. Nothing to stop is not an error."""
    from mlinfra.services import services_down

    state = services_down(_root(project))
    if state is None:
        click.echo("mlflow server: not running")
    else:
        click.echo(f"mlflow server: stopped (pid {state.pid}, {state.url})")
