"""``mlinfra config``: show the composed configuration, explain where each value came from, and
validate a whole config folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from mlinfra.cli.common import handle_errors, pick_experiment, project_options
from mlinfra.config import (
    Project,
    Source,
    compose_experiment,
    list_experiments,
    validate_config_dir,
)
from mlinfra.config.tree import thaw
from mlinfra.core.redact import redact, redact_mapping

__all__ = ["config"]


def _source_text(src: Source | None) -> str:
    return str(src) if src is not None else "<unknown>"


def _shown(key: str, value: Any, source: str, show_secrets: bool) -> tuple[Any, str]:
    """The value and source to print: a credential redacted in both (an override's source
    quotes the value as given)."""
    if show_secrets:
        return value, source
    hidden = redact(key, value)
    if hidden != value and isinstance(value, str) and value:
        source = source.replace(value, str(hidden))
    return hidden, source


@click.group()
def config() -> None:
    """Show, explain and validate configuration."""


@config.command("show")
@click.option("--experiment", "-e", help="Experiment name (a file in config/experiment/).")
@click.option("--stage", "-s", help="Apply this stage of the experiment file.")
@click.option(
    "--explain", is_flag=True, help="List every value with the file:line or override that set it."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--show-secrets",
    is_flag=True,
    help="Print credentials as written (by default values of keys such as password, token or "
    "secret print as ***, and URL passwords are hidden).",
)
@click.argument("overrides", nargs=-1)
@project_options
@handle_errors
def show(
    experiment: str | None,
    stage: str | None,
    explain: bool,
    fmt: str,
    show_secrets: bool,
    overrides: tuple[str, ...],
    project: Path | None,
    config_dir: Path | None,
) -> None:
    """Print the composed configuration of an experiment (credentials as ***).

    OVERRIDES are KEY=VALUE (change a key), +KEY=VALUE (add one), ~KEY (delete one) or
    DOMAIN=NAME (use another file, for example model=deberta).
    """
    proj = Project.discover(project=project, config_dir=config_dir)
    name = pick_experiment(proj.config_dir, experiment)
    resolved = compose_experiment(
        proj.config_dir, name, stage=stage, overrides=overrides, environ=proj.environ
    )
    if explain:
        rows = [(k, *_shown(k, v, _source_text(s), show_secrets)) for k, v, s in resolved.explain()]
        if fmt == "json":
            click.echo(
                json.dumps(
                    [{"key": k, "value": v, "source": s} for k, v, s in rows],
                    indent=2,
                    ensure_ascii=False,
                )
            )
            return
        width = max((len(k) for k, _, _ in rows), default=0)
        for key, value, source in rows:
            shown = json.dumps(value, ensure_ascii=False)
            click.echo(f"{key.ljust(width)} = {shown}  # {source}")
        return
    data = resolved.to_dict()
    if not show_secrets:
        data = redact_mapping(data)
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        import yaml

        click.echo(yaml.safe_dump(thaw(data), sort_keys=False, allow_unicode=True).rstrip())


@config.command("validate")
@click.option("--experiment", "-e", help="Check only this experiment (files are all checked).")
@project_options
@handle_errors
def validate(experiment: str | None, project: Path | None, config_dir: Path | None) -> None:
    """Check every YAML file and every experiment; list every problem found.

    Exits 0 when the configuration is valid, 1 otherwise.
    """
    proj = Project.discover(project=project, config_dir=config_dir)
    problems = validate_config_dir(proj.config_dir, experiment=experiment, environ=proj.environ)
    files = len([*proj.config_dir.rglob("*.yaml"), *proj.config_dir.rglob("*.yml")])
    experiments = [experiment] if experiment else list_experiments(proj.config_dir)
    if problems:
        click.secho(f"{len(problems)} problem(s) in {proj.config_dir}:", fg="red", err=True)
        for problem in problems:
            click.echo(f"  {problem}", err=True)
        raise SystemExit(1)
    click.secho(
        f"OK: {files} files and {len(experiments)} experiment(s) in {proj.config_dir} are valid",
        fg="green",
    )
