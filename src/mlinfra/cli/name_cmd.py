"""``mlinfra name``: print the run name a stage gets from ``naming.yaml``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import click

from mlinfra.cli.common import handle_errors, parse_assignments, project_options
from mlinfra.config import Project
from mlinfra.core.platforms import PLATFORMS
from mlinfra.errors import ConfigError
from mlinfra.naming import (
    PROCESS_TYPES,
    STAGE_NAMES,
    NamingContext,
    build_mlflow_run_name,
    create_naming_context,
    load_naming_policy,
    process_type_for_stage,
)

__all__ = ["build_context", "name"]

_ALIASES = {"backbone": "model", "study_hash": "study_key_hash"}
_INTS = frozenset({"trial_number", "fold_idx", "variant"})
_FIELDS = frozenset(f.name for f in fields(NamingContext)) - {"process_type"}


def _parse_fields(pairs: tuple[str, ...]) -> dict[str, Any]:
    try:
        given = parse_assignments(pairs)
    except ConfigError as exc:
        raise click.BadParameter(exc.reason, param_hint="FIELDS") from None
    values: dict[str, Any] = {}
    for key, text in given.items():
        field = _ALIASES.get(key, key)
        if field not in _FIELDS:
            known = sorted(_FIELDS | set(_ALIASES))
            raise click.BadParameter(
                f"unknown field {key!r}; known: {', '.join(known)}", param_hint="FIELDS"
            )
        if field in values:
            raise click.BadParameter(f"{field} is given twice (as {key})", param_hint="FIELDS")
        if field in _INTS:
            try:
                values[field] = int(text)
            except ValueError:
                raise click.BadParameter(
                    f"{key} must be an integer, got {text!r}", param_hint="FIELDS"
                ) from None
        else:
            values[field] = text
    return values


def _process_and_stage(process: str) -> tuple[str, str | None]:
    if process in PROCESS_TYPES:
        return process, None
    if process in STAGE_NAMES:
        return process_type_for_stage(process), process
    raise click.BadParameter(
        f"unknown process {process!r}; use a process type ({', '.join(PROCESS_TYPES)}) or a "
        f"stage name ({', '.join(STAGE_NAMES)})",
        param_hint="PROCESS",
    )


def build_context(
    kind: str,
    stage: str | None,
    values: dict[str, Any],
    platform: str | None,
    environ: Mapping[str, str],
    *,
    process_text: str,
) -> NamingContext:
    """The naming context of a command line: PROCESS (as ``kind`` and ``stage``), parsed
    KEY=VALUE fields and ``--platform``; shared by ``mlinfra name`` and ``mlinfra runs find``.

    Raises:
        click.BadParameter: the fields contradict PROCESS or ``--platform`` (exit status 2).
        NamingError: the context itself is invalid.
    """
    if stage is not None and values.setdefault("stage", stage) != stage:
        raise click.BadParameter(
            f"stage={values['stage']} disagrees with {process_text}", param_hint="FIELDS"
        )
    if platform is not None:
        for key in ("environment", "storage_env"):
            if key in values:
                raise click.BadParameter(
                    f"give --platform or {key}=, not both", param_hint="--platform"
                )
        values["environment"] = values["storage_env"] = platform
    return create_naming_context(kind, environ=environ, **values)


@click.command("name")
@click.argument("process")
@click.argument("fields_", metavar="[FIELDS]...", nargs=-1)
@click.option(
    "--platform",
    type=click.Choice(PLATFORMS),
    help="The execution platform and storage environment (default: detected).",
)
@click.option(
    "--version",
    "version",
    type=click.IntRange(min=1),
    help="Append this version suffix (as the run-name registry would).",
)
@project_options
@handle_errors
def name(
    process: str,
    fields_: tuple[str, ...],
    platform: str | None,
    version: int | None,
    project: Path | None,
    config_dir: Path | None,
) -> None:
    """Print the run name of PROCESS from naming.yaml.

    PROCESS is a process type (hpo, hpo_refit, benchmarking, final_training, conversion,
    best_configurations) or a stage name (hpo_sweep, hpo_trial, training, ...). FIELDS are
    KEY=VALUE naming-context fields, for example model=distilbert study_hash=350a79aa
    trial_number=3 (backbone is another name for model, study_hash for study_key_hash).

    \b
    Example:
      mlinfra name hpo_trial model=distilbert study_hash=350a79aa trial_number=3 --platform local
    """
    kind, stage = _process_and_stage(process)
    proj = Project.discover(project=project, config_dir=config_dir)
    context = build_context(
        kind,
        stage,
        _parse_fields(fields_),
        platform,
        proj.environ,
        process_text=f"PROCESS {process!r}",
    )
    policy = load_naming_policy(proj.config_dir, environ=proj.environ)
    click.echo(build_mlflow_run_name(context, policy=policy, version=version))
