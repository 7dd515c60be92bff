"""``mlinfra paths``: the folder a category or a stage run writes to, and the reverse."""

from __future__ import annotations

from pathlib import Path

import click

from mlinfra.cli.common import handle_errors, parse_assignments, platform_option, project_options
from mlinfra.config import Project
from mlinfra.errors import ConfigError

__all__ = ["paths"]

_INT_FIELDS = ("variant", "trial_number", "fold_idx")


@click.group()
def paths() -> None:
    """Resolve output folders from paths.yaml patterns."""


@paths.command("resolve")
@click.argument("category")
@click.argument("placeholders", nargs=-1)
@click.option("--subcategory", help="A cache sub-folder (with CATEGORY 'cache').")
@platform_option
@project_options
@handle_errors
def resolve(
    category: str,
    placeholders: tuple[str, ...],
    subcategory: str | None,
    platform: str,
    project: Path | None,
    config_dir: Path | None,
) -> None:
    """Print the folder of CATEGORY, with its pattern filled from KEY=VALUE placeholders.

    Example: mlinfra paths resolve hpo backbone=distilbert study_hash=abc123
    """
    from mlinfra.paths import resolve_output_path

    proj = Project.discover(project=project, config_dir=config_dir)
    values: dict[str, object] = dict(parse_assignments(placeholders))
    reserved = sorted({"storage_env", "subcategory", "paths", "environ"} & set(values))
    if reserved:
        raise ConfigError(f"{reserved[0]} is an option, not a placeholder; use --platform")
    positional = sorted({"category", "root_dir", "config_dir"} & set(values))
    if positional:
        raise ConfigError(
            f"{positional[0]} is not a placeholder: give the category as the first argument "
            "and the project with --project or --config-dir"
        )
    path = resolve_output_path(
        proj.root,
        proj.config_dir,
        category,
        storage_env=platform,
        subcategory=subcategory,
        environ=proj.environ,
        **values,  # type: ignore[arg-type]  # reserved names are refused above
    )
    click.echo(str(path))


@paths.command("build")
@click.argument("process")
@click.argument("fields", nargs=-1)
@platform_option
@project_options
@handle_errors
def build(
    process: str,
    fields: tuple[str, ...],
    platform: str,
    project: Path | None,
    config_dir: Path | None,
) -> None:
    """Print the hash-based folder of a stage run of PROCESS (hpo, benchmarking, ...).

    FIELDS are naming-context fields as KEY=VALUE, for example model=distilbert
    study_key_hash=350a79aa... trial_key_hash=747428f2...
    """
    from mlinfra.naming import create_naming_context
    from mlinfra.paths import build_output_path

    proj = Project.discover(project=project, config_dir=config_dir)
    values: dict[str, object] = dict(parse_assignments(fields))
    for key in sorted({"process_type", "environment", "storage_env"} & set(values)):
        raise ConfigError(
            f"{key} is not a field here: give the process as the first argument and the "
            "platform with --platform"
        )
    for key in _INT_FIELDS:
        if key in values:
            try:
                values[key] = int(str(values[key]))
            except ValueError:
                raise ConfigError(
                    f"{key} must be an integer, got {values[key]!r}", key=key
                ) from None
    context = create_naming_context(process, environment=platform, **values)  # type: ignore[arg-type]
    click.echo(
        str(build_output_path(proj.root, context, config_dir=proj.config_dir, environ=proj.environ))
    )


@paths.command("parse")
@click.argument("path", type=click.Path(path_type=Path))
@project_options
@handle_errors
def parse(path: Path, project: Path | None, config_dir: Path | None) -> None:
    """Print what an output folder says about its run (kind, category, components)."""
    from mlinfra.paths import load_paths_config, parse_output_path

    proj = Project.discover(project=project, config_dir=config_dir)
    found = parse_output_path(
        path, load_paths_config(proj.config_dir, environ=proj.environ), root_dir=proj.root
    )
    if found is None:
        raise ConfigError(f"{path} is not an output folder of this project's paths.yaml layouts")
    click.echo(f"kind: {found.kind}")
    click.echo(f"category: {found.category}")
    for key, value in found.components.items():
        click.echo(f"{key}: {value}")
