"""``mlinfra index``: look up, list, clean, import, export and repair the run registry."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from mlinfra.cli.common import handle_errors, project_options
from mlinfra.config import Project
from mlinfra.errors import RegistryError

if TYPE_CHECKING:
    from mlinfra.registry import SqlRegistry

__all__ = ["index"]

F = TypeVar("F", bound=Callable[..., Any])


def _open(project: Path | None, config_dir: Path | None, url: str | None) -> SqlRegistry:
    from mlinfra.registry import open_registry

    if url:
        return open_registry(url=url)
    proj = Project.discover(project=project, config_dir=config_dir)
    return open_registry(proj.root, proj.config_dir, environ=proj.environ)


def _registry_options(func: F) -> F:
    func = click.option(
        "--url",
        help="Registry database URL (default: $MLINFRA_REGISTRY_URL, mlflow.yaml, "
        "or outputs/cache/mlinfra_registry.db).",
    )(func)
    return project_options(func)


@click.group()
def index() -> None:
    """Look up, list, clean, import, export and repair the run registry."""


@index.command("find")
@click.argument("run_key_hash")
@click.option("--tracking-uri", help="Only this tracking server's entry.")
@_registry_options
@handle_errors
def find(
    run_key_hash: str,
    tracking_uri: str | None,
    url: str | None,
    project: Path | None,
    config_dir: Path | None,
) -> None:
    """Print the MLflow run a run key hash resolves to (exit 1 when there is none)."""
    with _open(project, config_dir, url) as registry:
        if tracking_uri:
            found = registry.find_run(run_key_hash, tracking_uri)
            entries = [found] if found else []
        else:
            entries = [e for e in registry.list_runs() if e.run_key_hash == run_key_hash]
    if not entries:
        raise RegistryError(f"no run with key hash {run_key_hash} in the registry")
    for entry in entries:
        click.echo(json.dumps(entry.as_dict(), sort_keys=True))


@index.command("list")
@click.option("--stage", help="Only runs of this stage.")
@click.option("--tracking-uri", help="Only runs of this tracking server.")
@_registry_options
@handle_errors
def list_(
    stage: str | None,
    tracking_uri: str | None,
    url: str | None,
    project: Path | None,
    config_dir: Path | None,
) -> None:
    """List indexed runs, newest first: key hash (short), run id, stage, name, tracking URI."""
    with _open(project, config_dir, url) as registry:
        entries = registry.list_runs(stage=stage, tracking_uri=tracking_uri)
    for e in entries:
        click.echo(
            f"{e.run_key_hash[:12]}  {e.run_id}  {e.stage or '-'}  {e.run_name or '-'}  "
            f"{e.tracking_uri}"
        )
    click.echo(f"{len(entries)} run(s)", err=True)


@index.command("cleanup")
@click.option("--stale-minutes", type=float, help="Also expire reservations older than this.")
@_registry_options
@handle_errors
def cleanup(
    stale_minutes: float | None, url: str | None, project: Path | None, config_dir: Path | None
) -> None:
    """Expire reservations whose lease has passed (their numbers are never reused)."""
    from mlinfra.core.timeutil import utc_now

    with _open(project, config_dir, url) as registry:
        count = registry.expire_stale()
        if stale_minutes is not None:
            import datetime as dt

            count += registry.expire_reserved_before(
                utc_now() - dt.timedelta(minutes=stale_minutes)
            )
    click.echo(f"expired {count} reservation(s)")


@index.command("import")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@_registry_options
@handle_errors
def import_(
    files: tuple[Path, ...], url: str | None, project: Path | None, config_dir: Path | None
) -> None:
    """Import mlflow_index.json, run_name_counter.json or registry exports."""
    from mlinfra.registry.maintenance import import_file

    with _open(project, config_dir, url) as registry:
        for file in files:
            report = import_file(registry, file)
            click.echo(f"{file}: {report.runs} run(s), {report.allocations} allocation(s)")
            for skipped in report.skipped:
                click.echo(f"  skipped: {skipped}", err=True)


@index.command("export")
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file."
)
@_registry_options
@handle_errors
def export(
    output: Path | None, url: str | None, project: Path | None, config_dir: Path | None
) -> None:
    """Export every run, allocation and counter as JSON (stdout, or --output atomically)."""
    from mlinfra.registry.maintenance import export_registry

    with _open(project, config_dir, url) as registry:
        data = export_registry(registry, output)
    if output is None:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        click.echo(
            f"wrote {output}: {len(data['runs'])} run(s), {len(data['allocations'])} allocation(s)"
        )


@index.command("repair")
@click.option(
    "--path",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The damaged SQLite registry file (default: the project's).",
)
@project_options
@handle_errors
def repair(path: Path | None, project: Path | None, config_dir: Path | None) -> None:
    """Move a damaged SQLite registry aside and rebuild it from every row that can be read."""
    from mlinfra.registry import registry_path
    from mlinfra.registry.maintenance import repair_sqlite

    if path is None:
        proj = Project.discover(project=project, config_dir=config_dir)
        path = registry_path(proj.root, proj.config_dir, environ=proj.environ)
    aside, report = repair_sqlite(path)
    click.echo(f"moved the damaged file to {aside}")
    click.echo(f"salvaged {report.runs} run(s) and {report.allocations} allocation(s) into {path}")
    for skipped in report.skipped:
        click.echo(f"  could not read: {skipped}", err=True)
