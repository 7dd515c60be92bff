"""``mlinfra azureml``: submit stages as AzureML jobs, follow them, set up the workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mlinfra.cli.common import handle_errors, pick_experiment, project_options
from mlinfra.config import Project

__all__ = ["azureml"]


def _say(message: str) -> None:
    click.echo(message, err=True)


def _client(project: Project) -> Any:
    from mlinfra.azureml.setup import load_infrastructure_config, ml_client_from_spec

    spec = load_infrastructure_config(project.config_dir, environ=project.environ)
    return ml_client_from_spec(spec, environ=project.environ)


def _follow(client: Any, name: str, *, stream: bool, silence_timeout: float) -> None:
    from mlinfra.azureml import wait_for_job

    try:
        job = wait_for_job(client, name, stream=stream, silence_timeout=silence_timeout, echo=_say)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    url = getattr(job, "studio_url", None)
    click.echo(f"job {name} completed" + (f": {url}" if url else ""))


@click.group("azureml")
def azureml() -> None:
    """Submit stages to AzureML, follow jobs, set up the workspace.

    Needs the azure extra: pip install 'mlinfra[azure]'. The workspace and credentials come from
    config/infrastructure.yaml, the environment and config.env at the project root.
    """


@azureml.command("submit")
@click.option("--experiment", "-e", help="The experiment (a file in config/experiment/).")
@click.option("--stage", "-s", required=True, help="The stage to run as a job.")
@click.option(
    "--workers",
    "-w",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Jobs working on the stage's study together (needs a database study storage and "
    "registry).",
)
@click.option("--wait", is_flag=True, help="Follow the job(s) until they end.")
@click.option("--dry-run", is_flag=True, help="Print the job YAML; submit nothing.")
@click.option(
    "--env",
    "env_name",
    default="azure",
    show_default=True,
    help="The env config for the job (config/env/<name>.yaml); '' keeps the experiment's.",
)
@click.option("--compute", help="The compute cluster (default: compute.cluster of the env config).")
@click.option(
    "--no-data-input", is_flag=True, help="Do not mount the data asset named by the data config."
)
@click.option(
    "--silence-timeout",
    type=click.FloatRange(min=1),
    default=600.0,
    show_default=True,
    help="Seconds without log output before following the job's status instead.",
)
@click.argument("overrides", nargs=-1)
@project_options
@handle_errors
def submit(
    experiment: str | None,
    stage: str,
    workers: int,
    wait: bool,
    dry_run: bool,
    env_name: str,
    compute: str | None,
    no_data_input: bool,
    silence_timeout: float,
    overrides: tuple[str, ...],
    project: Path | None,
    config_dir: Path | None,
) -> None:
    """Submit STAGE of an experiment as AzureML command job(s).

    A stage with an entrypoint runs `mlinfra run STAGE`, any other `mlinfra hpo`. OVERRIDES
    (KEY=VALUE, DOMAIN=NAME, ...) apply here and are passed on to the job.
    """
    from mlinfra.azureml import build_stage_jobs, job_to_yaml, submit_and_wait_for_job

    proj = Project.discover(project=project, config_dir=config_dir)
    name = pick_experiment(proj.config_dir, experiment)
    jobs = build_stage_jobs(
        proj,
        name,
        stage,
        workers=workers,
        overrides=overrides,
        env=env_name or None,
        compute=compute,
        data_input=not no_data_input,
    )
    if dry_run:
        click.echo("\n---\n".join(job_to_yaml(job) for job in jobs), nl=False)
        _say(f"dry run: {len(jobs)} job(s) built, nothing submitted")
        return
    client = _client(proj)
    names = []
    for job in jobs:
        created = submit_and_wait_for_job(client, job, wait=False, echo=_say)
        names.append(str(created.name))
        click.echo(created.name)
    if not wait:
        return
    for index, job_name in enumerate(names):
        # the first job's logs stream; the others are followed by their status
        _follow(client, job_name, stream=index == 0, silence_timeout=silence_timeout)


@azureml.command("wait")
@click.argument("job_name")
@click.option("--no-stream", is_flag=True, help="Only follow the status, without logs.")
@click.option(
    "--silence-timeout",
    type=click.FloatRange(min=1),
    default=600.0,
    show_default=True,
    help="Seconds without log output before following the job's status instead.",
)
@project_options
@handle_errors
def wait(
    job_name: str,
    no_stream: bool,
    silence_timeout: float,
    project: Path | None,
    config_dir: Path | None,
) -> None:
    """Follow the AzureML job JOB_NAME (submitted from here or elsewhere) until it ends.

    Exits 0 when it completed, 1 when it failed or was canceled (with the last log lines and the
    studio URL), 130 on Ctrl-C (after offering to cancel it).
    """
    from mlinfra.azureml._sdk import azure_ml

    azure_ml()
    proj = Project.discover(project=project, config_dir=config_dir)
    _follow(_client(proj), job_name, stream=not no_stream, silence_timeout=silence_timeout)


@azureml.command("setup")
@click.option("--dry-run", is_flag=True, help="Show what would be created; create nothing.")
@project_options
@handle_errors
def setup(dry_run: bool, project: Path | None, config_dir: Path | None) -> None:
    """Make sure the workspace, compute, environments and data assets of
    config/infrastructure.yaml exist; creates only what is missing."""
    from mlinfra.azureml._sdk import azure_ml
    from mlinfra.azureml.setup import (
        ensure_workspace_resources,
        load_infrastructure_config,
        ml_client_from_spec,
    )

    azure_ml()
    proj = Project.discover(project=project, config_dir=config_dir)
    spec = load_infrastructure_config(proj.config_dir, environ=proj.environ)
    client = ml_client_from_spec(spec, environ=proj.environ)
    report = ensure_workspace_resources(client, spec, dry_run=dry_run)
    for item in report:
        click.echo(str(item))
    created = sum(item.action != "exists" for item in report)
    verb = "would create" if dry_run else "created"
    click.echo(f"{len(report)} resource(s): {len(report) - created} exist, {created} {verb}")
